"""The loop of a job the cluster runs on one instance at a time, from a position it stores.

Alert evaluation and bar building share it: hold the lease, take over when it was just gained (load what
the last holder stored), then work until the lease wants renewing; a ``PositionConflict`` (another holder
stored meanwhile) or any failure drops what was taken over, so the next round reloads (a failure after a
backoff delay). What differs (what is taken over, what one step is) the subclass says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from legend.ports.backplane import BackplaneUnavailable
from legend.ports.repositories import PositionConflict
from legend.runtime.backoff import Backoff

#: Takes or renews a lease (name, ttl in seconds); True while this instance holds it.
HoldLease = Callable[[str, float], Awaitable[bool]]


class LeasedLoop(ABC):
    """``run()`` forever on the lease ``lease``; ``job`` names the work in the log ("bar building").

    Its figures: ``holder`` (this instance took over and holds the lease), ``position_conflicts``,
    ``failures`` and ``last_error``.
    """

    def __init__(
        self, lease: str, job: str, hold_lease: HoldLease, lease_ttl: float, log: logging.Logger
    ) -> None:
        self.lease = lease
        self.job = job
        self.hold_lease = hold_lease
        self.lease_ttl = lease_ttl
        self.log = log
        self.holder = False
        self.position_conflicts = 0
        self.failures = 0
        self.last_error: str | None = None

    @abstractmethod
    async def take_over(self) -> None:
        """This instance holds the lease now: load where the last holder left off; set ``holder``."""

    @abstractmethod
    async def work(self, left: float) -> None:
        """One step of the work, ``left`` seconds before the lease is renewed."""

    async def run(self) -> None:
        """Forever: take the lease, take over, then work step after step while the lease holds."""
        backoff = Backoff(0.5, maximum=10.0)  # after a failed round, reset by a good one
        renew_every = self.lease_ttl / 3
        while True:
            try:
                held = await self.hold_lease(self.lease, self.lease_ttl)
            except BackplaneUnavailable as exc:
                held, self.last_error = False, f"lease: {exc}"
            if not held:
                self.holder = False
                await asyncio.sleep(renew_every)
                continue
            try:
                if not self.holder:
                    await self.take_over()
                renew_at = time.monotonic() + renew_every
                while (left := renew_at - time.monotonic()) > 0:
                    await self.work(left)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except PositionConflict:
                self.position_conflicts += 1
                self.log.warning("%s: another instance moved the log position; reloading", self.job)
                self.holder = False
            except Exception as exc:  # the store, the log or the backplane failed: nothing was stored
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = backoff.next()
                self.log.warning("%s failed (%s); reloading in %.1f s", self.job, self.last_error, delay)
                self.holder = False
                await asyncio.sleep(delay)
