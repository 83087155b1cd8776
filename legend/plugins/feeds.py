"""Supervised background feeds: a feed that raises is logged, counted and restarted with backoff.

A feed runs on one instance of a cluster at a time (a cluster lease ``plugin:<plugin>:<feed>``, renewed
while it runs and taken over when its holder dies), unless it was registered with ``every_instance=True``
(work that serves this instance's own connections).

Each time a feed (re)starts, it was just given the lease (again): state another instance changed meanwhile
must be re-read then. Once its plugin has failed a feed is stopped and never restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING, Any

from legend.plugins.state import describe
from legend.ports.backplane import BackplaneUnavailable

if TYPE_CHECKING:
    from legend.plugins.context import FeedFunction, PluginContext
    from legend.plugins.state import PluginRecord

log = logging.getLogger("legend.plugins")

HEALTHY_AFTER = 60.0  # a feed that ran this long before failing restarts after the initial delay again


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


class FeedRunner:
    """Runs one feed of one plugin until stopped."""

    def __init__(
        self,
        record: PluginRecord,
        context: PluginContext,
        name: str,
        feed: FeedFunction,
        *,
        every_instance: bool,
        restart_delay: float,
        restart_max_delay: float,
        lease_ttl: float,
    ) -> None:
        self.record = record
        self.context = context
        self.name = name
        self.feed = feed
        self.every_instance = every_instance
        self.restart_delay = restart_delay
        self.restart_max_delay = restart_max_delay
        self.lease_ttl = lease_ttl
        self.state = "idle"  # idle, waiting (for the lease), running, restarting, finished, stopped
        self.runs = 0
        self.restarts = 0
        self.errors = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def lease(self) -> str:
        return f"plugin:{self.record.name}:{self.name}"

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(
                self._supervise(), name=f"plugin {self.record.name}: feed {self.name}"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.state != "finished":
            self.state = "stopped"

    def halt(self) -> None:
        """Cancel the feed at once because its plugin failed (it is not restarted); safe from any thread."""
        task = self._task
        if task is None or task.done():
            return
        self.state = "stopped"
        cancel_threadsafe(task)

    @property
    def running(self) -> bool:
        """The feed runs on this instance now (for a leased feed: this instance holds the lease)."""
        return self.state == "running" and self.record.active

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "every_instance": self.every_instance,
            "runs": self.runs,
            "restarts": self.restarts,
            "errors": self.errors,
            "last_error": self.last_error,
        }

    async def _supervise(self) -> None:
        clock = self.context.clock
        delay = self.restart_delay
        while True:
            if not self.record.active:
                self.state = "stopped"
                return
            if not self.every_instance:
                self.state = "waiting"
                await self._acquire()
                if not self.record.active:
                    continue
            self.state = "running"
            self.runs += 1
            started = clock.monotonic()
            try:
                if self.every_instance:
                    await self.feed(self.context)
                else:
                    finished = await self._run_leased()
                    if not finished:
                        continue  # the lease was lost (or the plugin failed): wait for it again
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self.record.active:
                    continue  # the plugin failed meanwhile: stopped above, not restarted
                self.errors += 1
                self.last_error = describe(exc)
                self.record.error(f"feed {self.name}", exc)
                if clock.monotonic() - started >= HEALTHY_AFTER:
                    delay = self.restart_delay
                self.state = "restarting"
                wait = delay * random.uniform(0.8, 1.2)
                log.warning("plugin %s: feed %s restarts in %.2fs", self.record.name, self.name, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.restart_max_delay)
                self.restarts += 1
                continue
            self.state = "finished"
            log.info("plugin %s: feed %s finished", self.record.name, self.name)
            return

    async def _hold(self) -> bool:
        try:
            return await self.context.runtime.cluster.hold_lease(self.lease, self.lease_ttl)
        except BackplaneUnavailable as exc:
            log.warning("plugin %s: feed %s: lease unavailable: %s", self.record.name, self.name, exc)
            return False

    async def _acquire(self) -> None:
        """Until this instance holds the lease (another instance runs the feed meanwhile)."""
        while self.record.active and not await self._hold():  # noqa: ASYNC110 - a lease held elsewhere
            await asyncio.sleep(self.lease_ttl / 3)

    async def _run_leased(self) -> bool:
        """Run the feed while this instance holds its lease; True when the feed returned by itself."""
        inner: asyncio.Task[None] = asyncio.get_running_loop().create_task(self.feed(self.context))
        try:
            while True:
                done, _ = await asyncio.wait({inner}, timeout=self.lease_ttl / 3)
                if done:
                    inner.result()  # raises the feed's exception
                    return True
                if not self.record.active:
                    return False  # the plugin failed: the supervisor stops it
                if not await self._hold():
                    log.warning(
                        "plugin %s: feed %s lost its lease; stopping it here", self.record.name, self.name
                    )
                    inner.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await inner
                    return False
        finally:
            if not inner.done():
                inner.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await inner
