"""How the server calls a plugin's code so that one plugin that raises, hangs or blocks cannot stop the others.

- ``call_bounded``: a register hook (or a provider factory) in a daemon thread, waited for at most a timeout;
- ``call_bounded_async``: ``on_startup``/``on_shutdown``: a plain function in a thread, a coroutine function
  on the event loop, stepped (``Stepped``) so that blocking the loop is measured per step;
- ``Worker`` and ``run_off_loop``: plain callbacks (prices, subscriptions, ``authorize``) in a daemon thread
  of the plugin's own, so the event loop never runs them;
- ``call_on_loop``: what still runs on the event loop (interest sources), timed.

A thread cannot be killed: a call that hangs is abandoned (its daemon thread never keeps the process from
exiting) and its plugin is marked failed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legend.plugins.state import PluginRecord


class HookTimeout(Exception):
    """A hook did not return within ``hook_timeout``."""


def is_async_callable(function: object) -> bool:
    """A coroutine function, or an object whose ``__call__`` is one (``functools.partial`` included)."""
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - the method itself is what is inspected
    )


def call_bounded(function: Callable[..., Any], kwargs: Mapping[str, Any], timeout: float) -> Any:
    """Call a plugin's function in a daemon thread and wait at most ``timeout`` seconds for it.

    A hanging call cannot be killed; it is abandoned (what it registers later is refused) and, being a
    daemon thread, never keeps the process from exiting.
    """
    outcome: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, function(**kwargs)))
        except BaseException as exc:
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(
        target=run, name=f"plugin hook {getattr(function, '__qualname__', function)}", daemon=True
    ).start()
    if not done.wait(timeout):
        raise HookTimeout(f"did not return within {timeout:g}s")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


class Stepped:
    """Awaits a coroutine step by step and keeps ``longest``: the longest time it held the event loop in one
    go. Time spent waiting in an ``await`` does not count, nor does time other tasks held the loop, so
    several plugins' coroutines can run concurrently and each is measured on its own."""

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.coroutine = coroutine
        self.longest = 0.0

    def _step(self, started: float) -> None:
        self.longest = max(self.longest, time.monotonic() - started)

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine = self.coroutine
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.monotonic()
            try:
                yielded = coroutine.send(value) if error is None else coroutine.throw(error)
            except StopIteration as stop:
                self._step(started)
                return stop.value
            except BaseException:
                self._step(started)
                raise
            self._step(started)
            error = None
            try:
                value = yield yielded  # the future it waits on, handed to the task that runs us
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # a cancellation (a timeout) goes on to the coroutine
                value, error = None, exc

    def check(self, timeout: float) -> None:
        """Raise HookTimeout when one step held the event loop for longer than ``timeout``."""
        if self.longest > timeout:
            raise HookTimeout(
                f"blocked the event loop for {self.longest:.2f}s (hook_timeout is {timeout:g}s)"
            )


async def await_bounded(awaitable: Any, timeout: float) -> Any:  # noqa: ASYNC109
    """Await a plugin's coroutine (or other awaitable) within ``timeout`` seconds, as a task of its own.

    A coroutine is stepped: one that blocked the event loop for longer than ``timeout`` in one go (which
    nothing can interrupt) raises HookTimeout as it returns. Time the loop was held up by someone else does
    not count against it: when the wait for it ends late, the deadline moves by that much (up to another
    ``timeout``). One that does not finish in time is cancelled and abandoned (never waited for) and
    HookTimeout raised.
    """
    stepped = Stepped(awaitable) if inspect.iscoroutine(awaitable) else None

    async def run() -> Any:
        return await (stepped if stepped is not None else awaitable)

    loop = asyncio.get_running_loop()
    task = loop.create_task(run(), name="plugin hook")
    deadline = loop.time() + timeout
    latest = deadline + timeout  # what being held up by others may add, at most
    try:
        while not task.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait({task}, timeout=remaining)
            late = loop.time() - deadline
            if not task.done() and late > 0:
                deadline = min(deadline + late, latest)  # the loop was held up: not the hook's time
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not task.done():
        task.cancel()
        task.add_done_callback(_ignore_outcome)
        raise HookTimeout(f"did not return within {timeout:g}s")
    result = task.result()
    if stepped is not None:
        stepped.check(timeout)
    return result


def _ignore_outcome(task: asyncio.Task[Any]) -> None:
    """An abandoned hook's outcome (it already failed its plugin): retrieved so asyncio does not log it."""
    if not task.cancelled():
        task.exception()


async def call_bounded_async(function: Callable[..., Any], kwargs: Mapping[str, Any], timeout: float) -> Any:  # noqa: ASYNC109
    """Call a plugin's ``on_startup`` or ``on_shutdown`` within ``timeout`` seconds.

    A plain function runs in a worker thread (``call_bounded``, awaited without holding up the loop): one
    that blocks is abandoned at the timeout. A coroutine function runs on the event loop under
    ``asyncio.timeout``, stepped: one that blocked the loop for longer than ``timeout`` in one go (which
    nothing can interrupt) raises HookTimeout once it returns.
    """
    if inspect.iscoroutinefunction(function):
        return await await_bounded(function(**kwargs), timeout)
    started = time.monotonic()
    result = await asyncio.to_thread(call_bounded, function, kwargs, timeout)
    if inspect.isawaitable(result):  # a plain function that returned a coroutine
        result = await await_bounded(result, max(timeout - (time.monotonic() - started), 0.0))
    return result


def call_on_loop(
    record: PluginRecord, where: str, function: Callable[..., Any], args: tuple[Any, ...], timeout: float
) -> tuple[bool, Any]:
    """Call a plugin's function that must run on the event loop and be quick (an interest source): (ok,
    result). One that raises, or blocks the loop for longer than ``timeout``, fails the plugin (it cannot be
    interrupted, but it is not called again)."""
    started = time.monotonic()
    try:
        result = function(*args)
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise HookTimeout(f"blocked the event loop for {elapsed:.2f}s (hook_timeout is {timeout:g}s)")
    except Exception as exc:
        record.fail(where, exc)
        return False, None
    return True, result


_Job = tuple[Callable[..., Any], tuple[Any, ...], "concurrent.futures.Future[Any]"]


class Worker:
    """A daemon thread that runs one plugin's plain callbacks, one at a time, in order.

    The thread starts on the first ``submit``. ``busy_for`` tells how long the current call has run, so a
    caller that must not queue behind a stuck call (``authorize``) can refuse at once. A call that never
    returns holds the thread for good; being a daemon, it never keeps the process from exiting.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._started_at: float | None = None  # time.monotonic() of the running call
        self._lock = threading.Lock()

    def submit(self, function: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, args=(self._jobs,), name=self.name, daemon=True
                )
                self._thread.start()
            self._jobs.put((function, args, future))
        return future

    def busy_for(self) -> float:
        """Seconds the running call has taken so far; 0 when idle."""
        started = self._started_at
        return 0.0 if started is None else time.monotonic() - started

    def close(self) -> None:
        """Let the thread end once it has run what was submitted (a later ``submit`` starts a new one)."""
        with self._lock:
            if self._thread is not None:
                self._jobs.put(None)
                self._thread = None
                self._jobs = queue.SimpleQueue()

    def _run(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            function, args, future = job
            if not future.set_running_or_notify_cancel():
                continue  # given up on before it started
            self._started_at = time.monotonic()
            try:
                result = function(*args)
            except BaseException as exc:
                self._started_at = None  # idle before anyone hears the answer, so the next call is taken
                future.set_exception(exc)
            else:
                self._started_at = None
                future.set_result(result)


async def run_off_loop(
    worker: Worker,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    timeout: float,  # noqa: ASYNC109 - bounds the worker thread, not an await
) -> Any:
    """Run ``function(*args)`` on ``worker`` and await its result for at most ``timeout`` seconds; the event
    loop goes on meanwhile. Raises HookTimeout when it took longer (the call is abandoned), else what the
    function raised."""
    wrapped = asyncio.wrap_future(worker.submit(function, *args))
    done, _ = await asyncio.wait({wrapped}, timeout=timeout)
    if not done:
        wrapped.cancel()
        raise HookTimeout(f"did not return within {timeout:g}s")
    return wrapped.result()
