"""Regressions found in review: history/live ordering when the history read yields, half-dead sessions,
one close per overflowing session, bounded stream memory."""

from __future__ import annotations

import asyncio

from legend.adapters.memory_backplane import InMemoryBackplane
from legend.domain.channels import Delivery
from legend.domain.envelope import seal
from legend.domain.history import StreamLog
from legend.domain.inputs import PatternInput
from legend.domain.messages import Subscribe
from legend.ports.backplane import Replay
from legend.services.streaming.outbox import Outbox, Pushed
from legend.services.streaming.publisher import Publisher
from tests.support.loop import settle
from tests.support.streaming import build_streaming
from tests.support.transport import BrokenTransport, RecordingTransport, StuckTransport

PATTERN = PatternInput(
    ticker="AAPL", pattern_type="VCP", score=8, entry_price=10, stop_price=9, target_price=13
)


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
    await streaming.subscribe(session, Subscribe(channel="patterns"))
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
    await streaming.subscribe(session, Subscribe(channel="patterns"))
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


def test_outbox_hold_and_release() -> None:
    box = Outbox(max_per_second=10, capacity=5)

    def env(seq: int) -> object:
        return seal("patterns", seq, "pattern_alert", b'{"type":"pattern_alert","channel":"patterns"}')

    box.hold("patterns")
    assert box.push(env(4), Delivery.RELIABLE) is Pushed.DEFERRED  # type: ignore[arg-type]
    assert box.push(env(5), Delivery.RELIABLE) is Pushed.DEFERRED  # type: ignore[arg-type]
    assert len(box) == 0
    assert box.covered("patterns", 4) is Pushed.QUEUED
    assert [box.pop(0)[0] for _ in range(2)] == [env(5).text, None]  # type: ignore[attr-defined]
    box.hold("patterns")
    for seq in range(6, 13):
        box.push(env(seq), Delivery.RELIABLE)  # type: ignore[arg-type]
    assert box.overflowed  # held messages count against capacity too


def test_stream_log_forgets_the_least_recently_published_streams() -> None:
    log = StreamLog(max_streams=3)
    for name in ("a", "b", "c", "a", "d"):
        log.append(name, "x", b'{"type":"x","channel":"%s"}' % name.encode(), history_size=5)
    assert log.streams() == 3 and log.last_seq("b") == 0 and log.last_seq("a") == 2
    assert log.after("b", 1) == ([], False)  # a client resuming a forgotten stream is told so
