"""The leased loop gives its lease up after failing for longer than the lease's ttl (a holder whose
database is cut cannot do the job: another instance should), and never in a cluster of one."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.price_log import MemoryPriceLog
from legend.services.leased_loop import LeasedLoop

TTL = 0.3


class Broken(LeasedLoop):
    """A job whose every take-over fails (its store is cut), on a lease this instance keeps getting."""

    def __init__(self, others: bool) -> None:
        clock = FrozenClock()
        super().__init__(
            "job",
            "test job",
            self.hold,
            TTL,
            MemoryPriceLog(clock),
            10,
            clock,
            logging.getLogger("t"),
            self.release,
        )
        self.others = others  # whether another instance could take the lease
        self.attempts: list[float] = []
        self.released: list[tuple[str, float]] = []

    async def hold(self, name: str, ttl: float) -> bool:
        return True

    async def release(self, name: str) -> bool:
        self.released.append((name, time.monotonic()))
        return self.others

    async def take_over(self) -> None:
        self.attempts.append(time.monotonic())
        raise RuntimeError("no answer from the database")

    async def work(self, left: float) -> None:
        raise AssertionError("never reached")


async def run_for(loop: Broken, seconds: float) -> None:
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_holder_failing_for_longer_than_the_ttl_hands_the_lease_over_and_stays_away() -> None:
    loop = Broken(others=True)
    await run_for(loop, 2.0)
    assert loop.released, loop.attempts
    name, at = loop.released[0]
    assert name == "job" and at - loop.attempts[0] > TTL  # only once it failed for longer than the ttl
    assert loop.handed_over == len(loop.released)
    after = [t for t in loop.attempts if t > at]
    assert after and after[0] - at >= TTL  # a ttl away: time for another instance to take the lease
    assert loop.failures == len(loop.attempts)


async def test_a_cluster_of_one_counts_no_hand_over() -> None:
    loop = Broken(others=False)
    await run_for(loop, 1.5)
    assert loop.released and loop.handed_over == 0  # asked, but there is nobody to hand it to
    assert loop.failures == len(loop.attempts) >= 2
