"""Draining a stopping instance: the spread of its closes, the reconnect hint, and the connect rate that
admits the reconnects a drain announced while still limiting a flood (legend/services/streaming/drain.py)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.domain import closecodes
from legend.domain.channels import ChannelRegistry
from legend.domain.stats import Counters
from legend.services.streaming.admission import Admission, AdmissionLimits, Refusal
from legend.services.streaming.drain import (
    RECONNECT_AFTER_MS,
    RECONNECT_GRACE,
    drain_schedule,
    drain_window,
    going_away_reason,
    reconnect_hint,
)
from legend.services.streaming.limits import Limits
from legend.services.streaming.service import StreamingService
from legend.services.streaming.session import Session
from tests.support.loop import settle
from tests.support.transport import RecordingTransport

OFFICE = "203.0.113.7"  # one NAT address in front of a trading floor


def test_schedule_spreads_the_closes_evenly_over_the_window() -> None:
    assert drain_schedule(4, 2.0) == [0.0, 0.5, 1.0, 1.5]
    offsets = drain_schedule(300, 3.0)
    assert len(offsets) == 300 and offsets[0] == 0.0 and offsets[-1] == pytest.approx(2.99)
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(offsets)}
    assert gaps == {0.01}  # 100 closes a second, never two at once
    assert all(sum(1 for o in offsets if s <= o < s + 1) == 100 for s in (0, 1, 2))
    assert drain_schedule(5, 0.0) == [0.0] * 5  # no window: all at once
    assert drain_schedule(0, 3.0) == []


def test_window_ends_in_time_for_the_last_close_handshake() -> None:
    assert drain_window(2.0, 5.0, 3.0) == 2.0
    assert drain_window(10.0, 5.0, 3.0) == 2.0  # bounded by graceful_shutdown_seconds - close_timeout
    assert drain_window(10.0, 2.0, 3.0) == 0.0
    assert drain_window(0.0, 30.0, 3.0) == 0.0


def test_the_reason_carries_the_hint_and_fits_a_close_frame() -> None:
    reason = going_away_reason()
    assert reason == f"server shutting down; reconnect_after_ms={RECONNECT_AFTER_MS}"
    assert reason.startswith("server shutting down") and len(reason.encode()) <= 123
    assert reconnect_hint(reason) == RECONNECT_AFTER_MS
    assert reconnect_hint(going_away_reason(2500)) == 2500
    assert reconnect_hint("server shutting down") is None


class TimedTransport(RecordingTransport):
    """Notes the (frozen) clock time of its close."""

    def __init__(self, clock: FrozenClock) -> None:
        super().__init__()
        self.clock = clock
        self.closed_at: float | None = None

    async def close(self, code: int, reason: str) -> None:
        self.closed_at = self.clock.monotonic()
        await super().close(code, reason)


def streaming_service(clock: FrozenClock, limits: AdmissionLimits | None = None) -> StreamingService:
    backplane = InMemoryBackplane(clock)
    counters = Counters()
    admission = Admission(backplane, limits or AdmissionLimits(), counters)
    return StreamingService(backplane, ChannelRegistry(), clock, Limits(), counters, admission)


async def test_drain_closes_one_by_one_over_the_window_and_refuses_newcomers() -> None:
    clock = FrozenClock()
    streaming = streaming_service(clock)
    await streaming.start()
    transports = [TimedTransport(clock) for _ in range(10)]
    for i, transport in enumerate(transports):
        session = await streaming.connect(transport, f"trader{i}", OFFICE)
        assert isinstance(session, Session)
    waits: list[float] = []
    newcomer: list[Session | Refusal] = []

    async def sleep(seconds: float) -> None:  # time passes only here, exactly as asked
        await settle()  # the closes begun so far run now, as they would while really asleep
        waits.append(seconds)
        clock.advance(seconds)
        if not newcomer:  # a client arriving while the drain is under way
            newcomer.append(await streaming.connect(RecordingTransport(), "late", OFFICE))

    await streaming.drain(5.0, sleep=sleep)
    times = sorted(t.closed_at for t in transports if t.closed_at is not None)
    assert times == pytest.approx([0.5 * i for i in range(10)])
    assert waits == pytest.approx([0.5] * 9)
    assert {t.closed for t in transports} == {(closecodes.GOING_AWAY, going_away_reason())}
    assert streaming.sessions == {} and streaming.counters.drained == 10
    assert newcomer == [Refusal(going_away_reason(), closecodes.GOING_AWAY)]
    assert streaming.draining
    # the ten closed connections of the office were announced: ten reconnects are not a flood
    backplane = streaming.backplane
    assert [await backplane.take_reconnect(OFFICE) for _ in range(11)] == [True] * 10 + [False]


class NamedTransport(RecordingTransport):
    """Appends its name to ``order`` when closed."""

    def __init__(self, name: str, order: list[str]) -> None:
        super().__init__()
        self.name, self.order = name, order

    async def close(self, code: int, reason: str) -> None:
        self.order.append(self.name)
        await super().close(code, reason)


async def test_drain_closes_in_a_random_order() -> None:
    orders = set()
    for _ in range(5):
        streaming = streaming_service(FrozenClock())
        await streaming.start()
        closed: list[str] = []
        for i in range(8):
            streaming.open_session(NamedTransport(str(i), closed), f"u{i}")
        await streaming.drain(0.0)
        assert sorted(closed) == [str(i) for i in range(8)]
        orders.add(tuple(closed))
    assert len(orders) > 1  # the same order of 8 five times over: 1 in 40320**4


async def test_announced_reconnects_pass_the_connect_rate_and_a_flood_is_still_limited() -> None:
    clock = FrozenClock()
    backplane = InMemoryBackplane(clock)
    counters = Counters()
    admission = Admission(backplane, AdmissionLimits(), counters)  # 10/s, burst 50, 500 per address

    async def connects(count: int, start: int) -> int:
        refused = 0
        for i in range(count):
            if await admission.admit(f"c{start + i}", f"u{start + i}", OFFICE, clock.monotonic()) is not None:
                refused += 1
        return refused

    # a flood nobody announced: the burst, then refused
    assert await connects(60, 0) == 10
    assert counters.refused_connect_rate == 10
    # a drain elsewhere closed 300 of the office: all 300 come back at once without a 4429 ...
    await admission.expect_reconnects({OFFICE: 300}, 60.0)
    for i in range(50):  # the flood's connections left
        await admission.release(f"c{i}", f"u{i}", OFFICE)
    assert await connects(300, 1000) == 0
    assert counters.drain_reconnects == 300
    # ... and not one more: the office's next new connections meet the rate again
    assert await connects(5, 2000) == 5
    # announced reconnects that never came expire
    await admission.expect_reconnects({OFFICE: 10}, RECONNECT_GRACE)
    clock.advance(RECONNECT_GRACE + 1)
    assert await connects(60, 3000) == 10  # the bucket refilled: its burst, then refused again


class SlowReleases(InMemoryBackplane):
    """A registry whose releases take a round trip, as Redis's do."""

    async def release(self, connection_id: str, user_id: str, address: str) -> None:
        await asyncio.sleep(0.01)
        await super().release(connection_id, user_id, address)


async def test_drain_lets_the_releases_finish_so_no_registration_outlives_it() -> None:
    clock = FrozenClock()
    backplane = SlowReleases(clock)
    admission = Admission(backplane, AdmissionLimits(max_connections_per_ip=5), Counters())
    streaming = StreamingService(backplane, ChannelRegistry(), clock, Limits(), Counters(), admission)
    await streaming.start()
    for i in range(5):
        assert isinstance(await streaming.connect(RecordingTransport(), f"u{i}", OFFICE), Session)
    await streaming.drain(0.0)
    # the five places of the address are free again: on another instance they would be needed now
    assert await backplane.admit("next", "u9", OFFICE, 0, 5) is None
