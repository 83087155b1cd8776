"""The loop of a job the cluster runs on one instance at a time, from a position it stores.

Alert evaluation and bar building share it, each reading the price log in batches from a position: hold
the lease, take over when it was just gained (load what the last holder stored), then work until the
lease wants renewing; a ``PositionConflict`` (another holder stored meanwhile) or any failure drops what
was taken over, so the next round reloads (a failure after a backoff delay). A holder that has failed
for longer than ``lease_ttl`` gives the lease up (``release_lease``) and stays away for a ttl: another
instance, whose database or log may work, takes the job over instead of waiting for this one to heal.
What differs (what is taken over, what one step is) the subclass says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from legend.ports.backplane import BackplaneUnavailable
from legend.ports.clock import Clock
from legend.ports.price_log import LogRead, PriceLog
from legend.ports.repositories import PositionConflict
from legend.runtime.backoff import Backoff
from legend.runtime.supervisor import describe

#: Takes or renews a lease (name, ttl in seconds); True while this instance holds it.
HoldLease = Callable[[str, float], Awaitable[bool]]
#: Gives a held lease up at once (name); whether another instance may take it (not in a cluster of one).
ReleaseLease = Callable[[str], Awaitable[bool]]


class LeasedLoop(ABC):
    """``run()`` forever on the lease ``lease``; ``job`` names the work in the log ("bar building").

    Its figures: ``holder`` (this instance took over and holds the lease), ``position_conflicts``,
    ``failures``, ``last_error``, ``log_gaps``, and ``lag()`` from ``waiting_since``, which the work sets to the log
    time of the oldest entry it read and has not done yet (None when caught up).
    """

    def __init__(
        self,
        lease: str,
        job: str,
        hold_lease: HoldLease,
        lease_ttl: float,
        price_log: PriceLog,
        batch: int,
        clock: Clock,
        log: logging.Logger,
        release_lease: ReleaseLease | None = None,
    ) -> None:
        self.lease, self.job, self.hold_lease, self.lease_ttl = lease, job, hold_lease, lease_ttl
        self.release_lease = release_lease
        self.price_log, self.batch, self.clock, self.log = price_log, batch, clock, log
        self.holder = False
        self.position: str | None = None  # the last log entry done
        self.waiting_since: float | None = None
        self.log_gaps = 0  # the log was trimmed past the position (the work fell behind)
        self.position_conflicts = 0
        self.failures = 0
        self.last_error: str | None = None
        self.handed_over = 0  # times the lease was given up after failing for longer than its ttl

    @abstractmethod
    async def take_over(self) -> None:
        """This instance holds the lease now: load where the last holder left off; set ``holder``."""

    @abstractmethod
    async def work(self, left: float) -> None:
        """One step of the work, ``left`` seconds before the lease is renewed."""

    async def read_log(self, wait: float, lost: str) -> LogRead:
        """The next batch of the log after ``position`` (waiting up to ``wait`` for one). A gap (the log
        was trimmed past the position) is counted and logged; ``lost``: what the trimmed prices missed."""
        read = await self.price_log.read(self.position, self.batch, wait)
        if read.missed:
            self.log_gaps += 1
            self.log.error(
                "%s fell behind the price log (%s): prices after %s were trimmed before they were %s; "
                "raise alerts.log_size",
                self.job,
                self.price_log.name,
                self.position,
                lost,
            )
        return read

    def lag(self) -> float | None:
        """Seconds the oldest entry read from the log but not yet done has waited since it was logged (0
        when caught up; None on an instance that does not hold the lease). Unlike the age of the last
        entry, it stays 0 while no prices come (market closed) and grows while a batch is stuck."""
        if not self.holder:
            return None
        since = self.waiting_since
        return 0.0 if since is None else max(0.0, self.clock.now().timestamp() - since)

    async def run(self) -> None:
        """Forever: take the lease, take over, then work step after step while the lease holds."""
        backoff = Backoff(0.5, maximum=10.0)  # after a failed round, reset by a good one
        renew_every = self.lease_ttl / 3
        failing_since: float | None = None  # when the rounds began to fail, one after another
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
                failing_since = None
            except asyncio.CancelledError:
                raise
            except PositionConflict:
                self.position_conflicts += 1
                self.log.warning("%s: another instance moved the log position; reloading", self.job)
                self.holder = False
            except Exception as exc:  # the store, the log or the backplane failed: nothing was stored
                self.failures += 1
                self.last_error = describe(exc)
                delay = backoff.next()
                self.log.warning("%s failed (%s); reloading in %.1f s", self.job, self.last_error, delay)
                self.holder = False
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if self.release_lease is not None and now - failing_since > self.lease_ttl:
                    failing_since = None
                    if await self._hand_over():
                        delay = max(delay, self.lease_ttl)  # long enough for another instance to take it
                await asyncio.sleep(delay)

    async def _hand_over(self) -> bool:
        """Give the lease up after failing for longer than its ttl (best effort: it lapses anyway);
        whether another instance may take it."""
        assert self.release_lease is not None
        try:
            if not await self.release_lease(self.lease):
                return False
        except BackplaneUnavailable as exc:
            self.log.warning("%s: could not give the lease up (%s); it lapses on its own", self.job, exc)
            return True
        self.handed_over += 1
        self.log.warning(
            "%s has failed for over %.0f s; lease handed over to another instance", self.job, self.lease_ttl
        )
        return True
