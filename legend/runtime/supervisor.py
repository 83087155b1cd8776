"""The supervisor: the server's long-running background loops, each named, restarted when it fails, and
stopped within a bound.

``TaskSupervisor.start(name, run)`` runs ``run()`` in one asyncio task (no second task watches it: the
``asyncio_tasks`` figure of the stats stays what it was). When ``run`` raises, the failure is counted and
logged, and ``run`` is called again after a backoff (``Restart``: ``initial`` doubling up to ``maximum``,
and back to ``initial`` after a run that lasted ``healthy_after``); with ``restart=None`` the task ends
``failed``. When ``run`` returns, the task ends ``stopped``. ``stop`` cancels and waits at most
``stop_timeout``: a task that ignores its cancellation is abandoned with a warning, never waited for
forever. ``status()`` gives each task's state, restarts, failures and last error (``tasks`` in
``GET /api/ws/stats``).

Each part of the server starts its own loops here and stops them in its own ``stop``, in the order the
shutdown needs (the backplane's listener after the plugins' ``on_shutdown`` hooks, say); the owner of
the supervisor stops whatever is left at the end. It is not an ``asyncio.TaskGroup``: the loops start and
stop in separate calls (start-up, shutdown), not inside one ``async with``, and a TaskGroup cancels every
task when one fails, where here a failing loop restarts alone. Short tasks of one connection or one event
(a socket's writer, a subscribe callback) are not supervised: they are not loops of the server.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from legend.runtime.backoff import Backoff

log = logging.getLogger("legend.supervisor")

MAX_ERROR_TEXT = 500
STOP_TIMEOUT = 5.0  # seconds ``stop`` waits for cancelled tasks to end, by default

Run = Callable[[], Coroutine[Any, Any, object]]


class TaskState(enum.StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"  # failed; waiting out its backoff before it runs again
    STOPPED = "stopped"  # cancelled, or returned by itself
    FAILED = "failed"  # raised, and its policy says not to restart it


@dataclass(frozen=True)
class Restart:
    """When a task raises, it runs again after ``initial`` seconds, ``factor`` times longer after each
    failure in a row up to ``maximum`` (±``jitter``, a fraction); a run that lasted ``healthy_after``
    seconds or more before it failed restarts after ``initial`` again (None: never)."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    jitter: float = 0.0
    healthy_after: float | None = 60.0

    def backoff(self) -> Backoff:
        return Backoff(self.initial, factor=self.factor, maximum=self.maximum, jitter=self.jitter)


RESTART = Restart()  # the server's loops: they catch what they expect, so a failure here is a bug


def cancel_threadsafe(task: asyncio.Task[Any]) -> None:
    """Cancel a task from its own loop or from any other thread."""
    if task.done():
        return
    loop = task.get_loop()
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        task.cancel()
    elif not loop.is_closed():
        loop.call_soon_threadsafe(task.cancel)


def describe(exc: BaseException) -> str:
    """``TypeName: message``, short enough for a status page."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


class Supervised:
    """One named task of a supervisor: its asyncio task and how it has gone so far (the counts are kept
    when the same name is started again)."""

    def __init__(self, supervisor: TaskSupervisor, name: str) -> None:
        self.supervisor = supervisor
        self.name = name
        self.state = TaskState.STOPPED
        self.restarts = 0  # times ``run`` was called again after a failure
        self.failures = 0  # times ``run`` raised
        self.last_error: str | None = None
        self.task: asyncio.Task[None] | None = None
        self._began = 0.0

    def began(self) -> None:
        """The loop's real work begins now (for a loop that first waits, for a lease say): ``healthy_after``
        counts from here rather than from the (re)start."""
        self._began = self.supervisor.monotonic()

    @property
    def done(self) -> bool:
        return self.task is None or self.task.done()

    def cancel(self) -> None:
        """Ask the task to stop (it ends ``stopped``) without waiting; safe from any thread."""
        if self.task is not None:
            cancel_threadsafe(self.task)

    async def stop(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - a bound, not a deadline
        """Cancel the task and wait for it, at most ``timeout`` (``stop_timeout`` by default); True when it
        ended."""
        return await self.supervisor.stop_tasks([self], timeout)

    def status(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "restarts": self.restarts,
            "failures": self.failures,
            "last_error": self.last_error,
        }

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() and task is self.task:  # also when cancelled before its first step
            self.state = TaskState.STOPPED

    async def _supervise(
        self, run: Run, restart: Restart | None, on_failure: Callable[[BaseException], bool] | None
    ) -> None:
        supervisor = self.supervisor
        backoff: Backoff | None = None  # made at the first failure that restarts
        try:
            while True:
                self.state = TaskState.RUNNING
                self.began()
                try:
                    await run()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.failures += 1
                    self.last_error = describe(exc)
                    if on_failure is not None and not on_failure(exc):
                        self.state = TaskState.STOPPED
                        return
                    if restart is None:
                        self.state = TaskState.FAILED
                        if on_failure is None:
                            log.error("%s failed; not restarted", self.name, exc_info=exc)
                        return
                    backoff = backoff or restart.backoff()
                    ran = supervisor.monotonic() - self._began
                    if restart.healthy_after is not None and ran >= restart.healthy_after:
                        backoff.reset()
                    self.state = TaskState.RESTARTING
                    delay = backoff.next()
                    if on_failure is None:  # else it was reported there
                        log.error("%s failed; restarting in %.2f s", self.name, delay, exc_info=exc)
                    else:
                        log.warning("%s restarts in %.2f s", self.name, delay)
                    await supervisor.sleep(delay)
                    self.restarts += 1
                    continue
                self.state = TaskState.STOPPED
                return
        except asyncio.CancelledError:
            self.state = TaskState.STOPPED
            raise
        except BaseException:
            self.state = TaskState.FAILED
            raise


class TaskSupervisor:
    """Named background tasks, each restarted by its policy, all stopped within a bound."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.monotonic = monotonic  # how long a run lasted (``Restart.healthy_after``)
        self.sleep = sleep  # waits out restart delays
        self.stop_timeout = stop_timeout
        self._tasks: dict[str, Supervised] = {}

    def start(
        self,
        name: str,
        run: Run,
        *,
        restart: Restart | None = RESTART,
        on_failure: Callable[[BaseException], bool] | None = None,
    ) -> Supervised:
        """Run ``run()`` as the task ``name`` on the running loop until it returns or is stopped.

        When it raises: ``on_failure`` (if given) is told first, and reports the error its own way;
        returning False ends the task (stopped) instead of restarting it. Then the task restarts by
        ``restart``, or ends failed when ``restart`` is None. A name whose task still runs cannot be
        started again; an ended one is, keeping its counts.
        """
        supervised = self._tasks.get(name)
        if supervised is None:
            supervised = self._tasks[name] = Supervised(self, name)
        elif not supervised.done:
            raise RuntimeError(f"task {name!r} is running already")
        supervised.state = TaskState.RUNNING
        task = asyncio.get_running_loop().create_task(
            supervised._supervise(run, restart, on_failure), name=name
        )
        task.add_done_callback(supervised._ended)
        supervised.task = task
        return supervised

    def get(self, name: str) -> Supervised | None:
        return self._tasks.get(name)

    def tasks(self) -> list[Supervised]:
        """Every task started here (ended ones too), by name."""
        return [self._tasks[name] for name in sorted(self._tasks)]

    async def stop_tasks(self, tasks: Iterable[Supervised], timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Cancel ``tasks`` and wait for them together, at most ``timeout`` (``stop_timeout`` by default);
        True when all ended. One that did not is abandoned (logged): the caller goes on."""
        running = [t for t in tasks if t.task is not None and not t.task.done()]
        pending: set[asyncio.Task[None]] = set()
        for supervised in running:
            assert supervised.task is not None
            supervised.task.cancel()
            pending.add(supervised.task)
        if not pending:
            return True
        bound = self.stop_timeout if timeout is None else timeout
        _, left = await asyncio.wait(pending, timeout=bound)
        for supervised in running:
            if supervised.task in left:
                log.warning(
                    "%s did not stop within %.1f s of its cancellation; abandoned", supervised.name, bound
                )
        return not left

    async def stop(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Stop every task (bounded, as ``stop_tasks``)."""
        return await self.stop_tasks(list(self._tasks.values()), timeout)

    def status(self) -> dict[str, dict[str, object]]:
        """Each task by name: ``state`` (running, restarting, stopped, failed), ``restarts``, ``failures``
        and ``last_error``."""
        return {task.name: task.status() for task in self.tasks()}
