"""A restart storm's connects ask the connection registry at most ``MAX_CHECKS`` at a time: the others
wait their turn, and one that waits ``CHECK_WAIT`` is admitted unchecked rather than filling the backplane's
connection pool (where the resumes' history reads and the publishes wait too)."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.domain.stats import Counters
from legend.services.streaming import admission as admission_module
from legend.services.streaming.admission import MAX_CHECKS, Admission, AdmissionLimits


class SlowRegistry(InMemoryBackplane):
    """A registry whose admits take ``delay`` each; counts how many are under way at once."""

    def __init__(self, clock: FrozenClock, delay: float) -> None:
        super().__init__(clock)
        self.delay = delay
        self.under_way = 0
        self.most = 0
        self.asked = 0

    async def admit(
        self, connection_id: str, user_id: str, address: str, max_per_user: int, max_per_address: int
    ) -> Literal["user", "address"] | None:
        self.under_way += 1
        self.asked += 1
        self.most = max(self.most, self.under_way)
        try:
            await asyncio.sleep(self.delay)
            return await super().admit(connection_id, user_id, address, max_per_user, max_per_address)
        finally:
            self.under_way -= 1


def storm_limits() -> AdmissionLimits:
    return AdmissionLimits(connect_rate_per_ip=0)  # the rate is not what is tested here


async def test_at_most_max_checks_ask_at_once_and_every_one_is_asked_when_turns_come_quickly() -> None:
    registry = SlowRegistry(FrozenClock(), delay=0.01)
    admission = Admission(registry, storm_limits(), Counters())
    verdicts = await asyncio.gather(
        *(admission.admit(f"c{i}", f"u{i}", f"10.0.{i // 200}.{i % 200}", 0.0) for i in range(200))
    )
    assert verdicts == [None] * 200
    assert registry.most == MAX_CHECKS and registry.asked == 200 and admission.unchecked == 0


async def test_a_connect_that_waits_too_long_for_its_turn_is_admitted_unchecked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admission_module, "CHECK_WAIT", 0.05)
    registry = SlowRegistry(FrozenClock(), delay=0.2)
    admission = Admission(registry, storm_limits(), Counters())
    verdicts = await asyncio.gather(*(admission.admit(f"c{i}", "u", "10.0.0.1", 0.0) for i in range(40)))
    # the first MAX_CHECKS were asked (the user limit of 20 refuses none of 16); the rest had no turn
    assert registry.asked == MAX_CHECKS and admission.unchecked == 40 - MAX_CHECKS
    assert verdicts == [None] * 40
    assert registry.most == MAX_CHECKS


async def test_the_limits_still_hold_for_those_asked() -> None:
    registry = SlowRegistry(FrozenClock(), delay=0.001)
    admission = Admission(registry, storm_limits(), Counters())
    verdicts = await asyncio.gather(
        *(admission.admit(f"c{i}", "same-user", "10.0.0.1", 0.0) for i in range(25))
    )
    refused = [v for v in verdicts if v is not None]
    assert len(refused) == 5 and all("at most 20" in v.reason for v in refused)
