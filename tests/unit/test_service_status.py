"""``service_status``: every connection hears when live delivery degrades and recovers, once per change."""

from __future__ import annotations

import msgspec

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.adapters.redis import RedisBackplane
from legend.bootstrap import bootstrap
from legend.domain.channels import ChannelRegistry
from legend.domain.events import StreamGap
from legend.domain.messages import Gap, ServiceStatus, encode
from legend.services.streaming.limits import Limits
from legend.services.streaming.service import StreamingService
from legend.services.streaming.service_status import (
    INCOMPLETE_REASON,
    RECOVERED_REASON,
    ServiceStatusNotifier,
)
from legend.settings import RedisSettings, Settings
from tests.support.loop import settle
from tests.support.streaming import send
from tests.support.transport import AwaitedTransport, RecordingTransport


def notifier() -> tuple[StreamingService, ServiceStatusNotifier]:
    streaming = StreamingService(InMemoryBackplane(), ChannelRegistry(), FrozenClock(), Limits())
    return streaming, ServiceStatusNotifier(streaming)


def test_the_message_has_the_documented_shape() -> None:
    message = ServiceStatus(status="degraded", component="backplane", reason="r", timestamp="t")
    assert msgspec.json.decode(encode(message)) == {
        "type": "service_status",
        "status": "degraded",
        "component": "backplane",
        "reason": "r",
        "timestamp": "t",
    }


async def test_each_change_reaches_every_session_once() -> None:
    streaming, status = notifier()
    transports = [RecordingTransport() for _ in range(3)]
    for transport in transports:
        streaming.open_session(transport, "u")
    status.backplane_health(True)  # no change: healthy from the start
    status.backplane_health(False)
    status.backplane_health(False)  # no change
    status.backplane_health(True)
    await settle()
    for transport in transports:
        frames = transport.of_type("service_status")
        assert [f["status"] for f in frames] == ["degraded", "ok"]
        assert all(f["component"] == "backplane" and f["reason"] and f["timestamp"] for f in frames)
    assert status.changes == 2


async def test_a_session_opened_while_degraded_is_told_right_after_its_acknowledgement() -> None:
    streaming, status = notifier()
    healthy = RecordingTransport()
    status.greet(streaming.open_session(healthy, "u"))
    status.backplane_health(False)
    late = RecordingTransport()
    status.greet(streaming.open_session(late, "v"))
    await settle()
    assert [f["type"] for f in late.frames] == ["connection", "service_status"]
    assert late.frames[1]["status"] == "degraded"
    assert [f["type"] for f in healthy.frames] == ["connection", "service_status"]


async def test_a_session_whose_socket_is_busy_gets_it_through_its_writer() -> None:
    streaming, status = notifier()
    await streaming.start()
    transport = AwaitedTransport()  # every write waits for the session's writer task
    session = streaming.open_session(transport, "u")
    await send(streaming, session, "subscribe", channel="patterns")
    status.backplane_health(False)
    await settle()
    assert [f["status"] for f in transport.of_type("service_status")] == ["degraded"]


def test_bootstrap_wires_a_redis_backplane_and_leaves_the_in_memory_one_alone() -> None:
    on_redis = bootstrap(
        Settings(redis=RedisSettings(url="redis://127.0.0.1:1/0")), run_quote_poller=False, plugins={}
    )
    assert isinstance(on_redis.backplane, RedisBackplane)
    assert on_redis.backplane.connection.bus is on_redis.bus  # its health changes go on the server's bus
    transport = RecordingTransport()
    on_redis.streaming.open_session(transport, "u")
    on_redis.backplane.connection.note_health()  # not subscribed yet: the link reports itself down
    assert on_redis.status.degraded and on_redis.status.changes == 1
    assert [f["status"] for f in transport.of_type("service_status")] == ["degraded"]
    in_memory = bootstrap(Settings(), run_quote_poller=False, plugins={})
    assert isinstance(in_memory.backplane, InMemoryBackplane)  # it never degrades: nothing announces
    assert not in_memory.status.degraded and in_memory.status.changes == 0


# ───────────────────────── gaps ─────────────────────────


def test_the_gap_frame_and_the_incomplete_ok_have_the_documented_shape() -> None:
    gap = Gap(channel="patterns", from_seq=12, to_seq=40, timestamp="t")
    assert msgspec.json.decode(encode(gap)) == {
        "type": "gap",
        "channel": "patterns",
        "from_seq": 12,
        "to_seq": 40,
        "timestamp": "t",
    }
    _, status = notifier()
    assert msgspec.json.decode(encode(status.message())) == {
        "type": "service_status",
        "status": "ok",
        "component": "backplane",
        "reason": RECOVERED_REASON,
        "timestamp": status.message().timestamp,
        "complete": True,
    }
    incomplete = msgspec.json.decode(encode(status.message(["patterns"])))
    assert incomplete["complete"] is False and incomplete["gaps"] == ["patterns"]
    assert incomplete["reason"] == INCOMPLETE_REASON


async def test_a_gap_reaches_every_subscriber_of_the_stream_and_its_ok_names_it() -> None:
    streaming, status = notifier()
    await streaming.start()
    plain, filtered, other, later = (RecordingTransport() for _ in range(4))
    sessions = [streaming.open_session(t, u) for t, u in ((plain, "a"), (filtered, "b"), (other, "c"))]
    await send(streaming, sessions[0], "subscribe", channel="patterns")
    await send(streaming, sessions[1], "subscribe", channel="patterns", filter={"score": {"gte": 9}})
    await send(streaming, sessions[2], "subscribe", channel="market_status")
    status.backplane_health(False)
    streaming.open_session(later, "d")  # connected during the outage, subscribed to nothing
    status.gaps.stream_gap(StreamGap("patterns", 12, 40))
    status.gaps.stream_gap(StreamGap("ticker:AAPL", 3, 90))  # a conflated price stream: no loss
    status.backplane_health(True)
    await settle()
    for transport in (plain, filtered):  # a filtered one cannot know whether the lost ones matched
        [gap] = transport.of_type("gap")
        assert (gap["channel"], gap["from_seq"], gap["to_seq"]) == ("patterns", 12, 40)
        degraded, ok = transport.of_type("service_status")
        assert ok["status"] == "ok" and ok["complete"] is False and ok["gaps"] == ["patterns"]
        types = [f["type"] for f in transport.frames]
        assert types.index("gap") < len(types) - 1 and types[-1] == "service_status"  # gap first
    for transport in (other, later):
        assert not transport.of_type("gap")
        ok = transport.of_type("service_status")[-1]
        assert ok["status"] == "ok" and ok["complete"] is True and "gaps" not in ok
    assert status.gaps.sent == 2
    status.backplane_health(False)  # a blip: the gap is still open, no ok claims completeness
    status.backplane_health(True)
    await settle()
    assert plain.of_type("service_status")[-1]["gaps"] == ["patterns"]
    await send(streaming, sessions[0], "subscribe", channel="patterns")  # its history reloaded
    await send(streaming, sessions[1], "unsubscribe", channel="patterns")  # no longer listening
    status.backplane_health(False)
    status.backplane_health(True)
    await settle()
    for transport in (plain, filtered):
        last = transport.of_type("service_status")[-1]
        assert last["complete"] is True and "gaps" not in last


async def test_a_gap_in_bars_is_told_and_one_in_prices_is_not() -> None:
    streaming, status = notifier()
    await streaming.start()
    bars, prices = RecordingTransport(), RecordingTransport()
    await send(
        streaming,
        streaming.open_session(bars, "a"),
        "subscribe",
        channel="bars",
        ticker="AAPL",
        interval="1m",
    )
    await send(streaming, streaming.open_session(prices, "b"), "subscribe", channel="ticker", ticker="AAPL")
    status.gaps.stream_gap(StreamGap("bars:AAPL:1m", 5, 9))  # closed bars may be among them
    status.gaps.stream_gap(StreamGap("ticker:AAPL", 5, 9))
    status.gaps.stream_gap(StreamGap("patterns", 5, 9))  # no subscriber here: nobody to tell
    await settle()
    assert [(g["channel"], g["from_seq"], g["to_seq"]) for g in bars.of_type("gap")] == [
        ("bars:AAPL:1m", 5, 9)
    ]
    assert not prices.of_type("gap")
    registry = ChannelRegistry()
    assert [spec.name for spec in registry if not spec.must_deliver] == ["ticker"]


async def test_a_gap_with_every_final_kept_is_told_on_a_reliable_stream_only() -> None:
    """The archive was complete (``finals_kept``): a conflated stream with final messages lost only updates
    that later ones replace (no gap told); a reliable stream's range is still told, since every message of
    it must be delivered."""
    streaming, status = notifier()
    await streaming.start()
    bars, patterns = RecordingTransport(), RecordingTransport()
    await send(
        streaming,
        streaming.open_session(bars, "a"),
        "subscribe",
        channel="bars",
        ticker="AAPL",
        interval="1m",
    )
    await send(streaming, streaming.open_session(patterns, "b"), "subscribe", channel="patterns")
    status.gaps.stream_gap(StreamGap("bars:AAPL:1m", 5, 9, finals_kept=True))
    status.gaps.stream_gap(StreamGap("patterns", 5, 9, finals_kept=True))
    await settle()
    assert not bars.of_type("gap")
    assert [(g["channel"], g["from_seq"], g["to_seq"]) for g in patterns.of_type("gap")] == [
        ("patterns", 5, 9)
    ]
    registry = ChannelRegistry()
    assert [spec.name for spec in registry if spec.must_deliver and not spec.keeps(final=False)] == ["bars"]
