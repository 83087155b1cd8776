"""Supervised background feeds: a feed that raises is logged, counted and restarted with backoff (each
feed is a task of the server's supervisor, ``legend.runtime.supervisor``, named ``plugin <name>: feed <feed>``).

A feed runs on one instance of a cluster at a time (a cluster lease ``plugin:<plugin>:<feed>``, renewed
while it runs and taken over when its holder dies), unless it was registered with ``every_instance=True``
(work that serves this instance's own connections).

Each time a feed (re)starts, it was just given the lease (again): state another instance changed meanwhile
must be re-read then. Once its plugin has failed a feed is stopped and never restarted.

A leased feed's publishes are fenced (``FEED_FENCE``, read by the plugin context): a holder that was frozen
or cut past its lease cannot publish once another instance took the feed over. Such a publish raises
``Fenced`` in the feed; the feed is stopped here and waits for the lease again (not a plugin error).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from typing import TYPE_CHECKING, Any

from legend.plugins.fence import FEED_FENCE
from legend.ports.backplane import BackplaneUnavailable, Fenced
from legend.runtime.supervisor import Restart, Supervised, describe

if TYPE_CHECKING:
    from legend.plugins.context import FeedFunction, PluginContext
    from legend.plugins.status import PluginStatus

log = logging.getLogger("legend.plugins")

HEALTHY_AFTER = 60.0  # a feed that ran this long before failing restarts after the initial delay again


class FeedRunner:
    """Runs one feed of one plugin until stopped, as a task of the server's supervisor."""

    def __init__(
        self,
        record: PluginStatus,
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
        self.errors = 0
        self.fenced = 0  # runs stopped by a fenced publish: another instance had taken the feed over
        self.last_error: str | None = None
        self._task: Supervised | None = None  # while started
        self._supervised: Supervised | None = None  # the last one started: its counts stay

    @property
    def lease(self) -> str:
        return f"plugin:{self.record.name}:{self.name}"

    @property
    def restarts(self) -> int:
        """Times the feed ran again after it raised (the supervisor counts them)."""
        return self._supervised.restarts if self._supervised is not None else 0

    def start(self) -> None:
        if self._task is None:
            self._task = self._supervised = self.context.runtime.supervisor.start(
                f"plugin {self.record.name}: feed {self.name}",
                self._serve,
                # ±20 %: the instances of a cluster whose feeds failed together do not retry together
                restart=Restart(
                    initial=self.restart_delay,
                    maximum=self.restart_max_delay,
                    jitter=0.2,
                    healthy_after=HEALTHY_AFTER,
                ),
                on_failure=self._failed,
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await task.stop()
        if self.state != "finished":
            self.state = "stopped"

    def halt(self) -> None:
        """Cancel the feed at once because its plugin failed (it is not restarted); safe from any thread."""
        task = self._task
        if task is None or task.done:
            return
        self.state = "stopped"
        task.cancel()

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
            "fenced": self.fenced,
        }

    async def _serve(self) -> None:
        """The feed, for as long as this instance may run it; returns when it is done (or its plugin
        failed). What it raises goes to the supervisor, which restarts it (``_failed``)."""
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
            assert self._supervised is not None
            self._supervised.began()  # a healthy run counts from here, not from the wait for the lease
            if self.every_instance:
                await self.feed(self.context)
            elif not await self._run_leased():
                continue  # the lease was lost (or the plugin failed): wait for it again
            self.state = "finished"
            log.info("plugin %s: feed %s finished", self.record.name, self.name)
            return

    def _failed(self, exc: BaseException) -> bool:
        """The feed raised: counted against its plugin, and restarted unless the plugin failed meanwhile."""
        if not self.record.active:
            self.state = "stopped"
            return False
        self.errors += 1
        self.last_error = describe(exc)
        self.record.error(f"feed {self.name}", exc)
        self.state = "restarting"
        return True

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
        fenced = contextvars.copy_context()
        fenced.run(FEED_FENCE.set, self.context.runtime.cluster.fence(self.lease))
        inner: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self.feed(self.context), context=fenced
        )
        try:
            while True:
                done, _ = await asyncio.wait({inner}, timeout=self.lease_ttl / 3)
                if done:
                    try:
                        inner.result()  # raises the feed's exception
                    except Fenced as exc:  # another instance took the feed over: not the plugin's fault
                        self.fenced += 1
                        log.warning(
                            "plugin %s: feed %s was fenced (%s); stopping it here",
                            self.record.name,
                            self.name,
                            exc,
                        )
                        return False
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
