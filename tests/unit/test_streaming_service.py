"""The streaming service with in-memory adapters: fan-out shares one frame, limits, private streams,
history then live messages in order when the history read yields, half-dead and overflowing sessions."""

from __future__ import annotations

import asyncio
import json

from legend.adapters.memory.backplane import InMemoryBackplane
from legend.domain.inputs import AlertInput, PatternInput
from legend.ports.backplane import Replay
from legend.services.streaming.publisher import Publisher
from tests.support.loop import settle
from tests.support.streaming import build_streaming, send
from tests.support.transport import BrokenTransport, RecordingTransport, StuckTransport

PATTERN = PatternInput(
    ticker="AAPL", pattern_type="VCP", score=8.5, entry_price=150.5, stop_price=145, target_price=165
)


async def test_one_frame_object_is_shared_by_every_subscriber() -> None:
    streaming, publisher, _ = build_streaming()
    await streaming.start()
    transports = [RecordingTransport() for _ in range(3)]
    for transport in transports:
        session = streaming.open_session(transport, "u")
        await send(streaming, session, "subscribe", channel="patterns")
    await settle()
    envelope = await publisher.pattern(PATTERN)
    await settle()
    frames = [t.texts[-1] for t in transports]
    assert all(frame is envelope.text for frame in frames)  # the same str object: encoded once
    assert json.loads(frames[0])["risk_reward_ratio"] == 2.64


async def test_private_alerts_and_counters() -> None:
    streaming, publisher, _ = build_streaming()
    await streaming.start()
    alice, bob = RecordingTransport(), RecordingTransport()
    for transport, user in ((alice, "alice"), (bob, "bob")):
        session = streaming.open_session(transport, user)
        await send(streaming, session, "subscribe", channel="alerts")
    await publisher.alert(
        AlertInput(ticker="AAPL", alert_type="breakout", trigger_price=1, current_price=2, user_id="alice")
    )
    await settle()
    assert [m["channel"] for m in alice.of_type("alert_trigger")] == ["alerts:user:alice"]
    assert bob.of_type("alert_trigger") == []
    assert streaming.counters.messages_published == 1 and streaming.counters.total_connections == 2


async def test_subscription_limit_and_idempotent_resubscribe() -> None:
    streaming, _, _ = build_streaming(max_subscriptions=2)
    await streaming.start()
    transport = RecordingTransport()
    session = streaming.open_session(transport, "u")
    for ticker in ("A", "B", "A", "C"):
        await send(streaming, session, "subscribe", channel="ticker", ticker=ticker)
    await settle()
    assert [e["code"] for e in transport.of_type("error")] == ["subscription_limit"]
    assert streaming.tickers() == {"A": 1, "B": 1}


async def test_overflowing_must_deliver_closes_the_session_with_1013() -> None:
    streaming, publisher, _ = build_streaming(max_pending_messages=5)
    await streaming.start()

    stuck = StuckTransport()  # never completes a write, like a socket whose peer stopped reading
    session = streaming.open_session(stuck, "u")
    await send(streaming, session, "subscribe", channel="patterns")
    for _ in range(8):
        await publisher.pattern(PATTERN)
    await settle()
    assert stuck.closed is not None and stuck.closed[0] == 1013
    assert streaming.counters.slow_consumers_closed == 1 and not streaming.sessions


class RacingBackplane(InMemoryBackplane):
    """Like Redis: reading history is a round trip, and messages keep arriving meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.during_replay: list[PatternInput] = []
        self.publisher: Publisher | None = None

    async def replay(self, stream: str, since: int | None) -> Replay:
        snapshot = await super().replay(stream, since)
        assert self.publisher is not None
        for pattern in self.during_replay:  # published after the snapshot, before it is answered
            await self.publisher.pattern(pattern)
        await asyncio.sleep(0)
        return snapshot


async def test_live_messages_during_the_history_read_come_after_it_once() -> None:
    backplane = RacingBackplane()
    streaming, publisher, _ = build_streaming(backplane=backplane)
    backplane.publisher = publisher
    await streaming.start()
    for _ in range(3):
        await publisher.pattern(PATTERN)
    backplane.during_replay = [PATTERN, PATTERN]
    transport = RecordingTransport()
    session = streaming.open_session(transport, "u")
    await send(streaming, session, "subscribe", channel="patterns")
    await settle()
    kinds = [(f["type"], f.get("seq")) for f in transport.frames[1:]]
    assert kinds == [("subscription", None), ("history", 3), ("pattern_alert", 4), ("pattern_alert", 5)]
    assert [m["seq"] for m in transport.frames[2]["messages"]] == [1, 2, 3]  # type: ignore[index]


async def test_a_failed_writer_closes_everything_and_later_frames_do_nothing() -> None:
    streaming, _, _ = build_streaming()
    await streaming.start()

    broken = BrokenTransport()
    session = streaming.open_session(broken, "u")
    await settle()
    assert not streaming.sessions and session.closing
    await streaming.handle_frame(session, '{"type":"subscribe","channel":"ticker","ticker":"ZZZZ"}')
    assert streaming.tickers() == {} and streaming.subscribers("ticker:ZZZZ") == 0


async def test_an_overflowing_session_gets_one_close_and_stops_growing() -> None:
    streaming, publisher, _ = build_streaming(max_pending_messages=10)
    await streaming.start()

    stuck = StuckTransport()
    session = streaming.open_session(stuck, "u")
    await send(streaming, session, "subscribe", channel="patterns")
    closes = 0
    original = streaming.close_session

    async def counting(*args: object) -> None:
        nonlocal closes
        closes += 1
        await original(*args)  # type: ignore[arg-type]

    streaming.close_session = counting  # type: ignore[method-assign]
    for _ in range(500):
        await publisher.pattern(PATTERN)
    assert len(session.outbox) <= 12
    await settle()
    assert closes == 1 and stuck.closed is not None and stuck.closed[0] == 1013
