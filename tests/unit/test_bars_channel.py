"""The bars channel in the domain and the outbox: its stream names, its intervals, and a closed bar that is
never conflated away and never overtaken by a newer open bar of its stream."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from legend.adapters.clock.frozen import FrozenClock
from legend.adapters.memory.backplane import InMemoryBackplane
from legend.domain.bars import Bar
from legend.domain.channels import ChannelError, ChannelRegistry, Delivery
from legend.domain.envelope import Envelope, seal, unseal
from legend.domain.stats import Counters
from legend.domain.stream_name import InvalidStreamName, StreamName, bar_stream
from legend.services.streaming.outbox import Outbox
from legend.services.streaming.publisher import Publisher

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def test_a_bar_stream_reads_back_as_its_parts() -> None:
    name = StreamName("bars", "AAPL", None, "1m")
    assert name.format() == bar_stream("AAPL", "1m") == "bars:AAPL:1m"
    assert StreamName.parse("bars:AAPL:1m") == name
    assert StreamName.parse("bars:user:bob") == StreamName("bars", None, "bob")  # a private stream, as before
    with pytest.raises(InvalidStreamName, match="interval"):
        StreamName("bars", "user", None, "1m")  # would read back as user '1m''s stream
    with pytest.raises(InvalidStreamName, match="interval"):
        StreamName("bars", None, None, "1m")
    with pytest.raises(InvalidStreamName, match="interval"):
        StreamName("bars", "AAPL", "bob", "1m")


def test_the_bars_channel_needs_a_known_interval_and_the_others_take_none() -> None:
    registry = ChannelRegistry()
    spec, key = registry.resolve("bars", "aapl")
    assert key == "AAPL" and spec.interval_of("5m") == "5m"
    assert spec.streams(key, "amy", "5m") == ("bars:AAPL:5m",)
    assert spec.subscription_key(key, "5m") == "bars:AAPL:5m"
    with pytest.raises(
        ChannelError, match=r"Interval required for channel 'bars': one of 1m, 5m, 15m, 1h, 1d"
    ):
        spec.interval_of(None)
    with pytest.raises(ChannelError, match=r"Invalid interval for channel 'bars': '2m'"):
        spec.interval_of("2m")
    with pytest.raises(ChannelError, match="Channel 'ticker' takes no interval"):
        registry.get("ticker").interval_of("1m")
    assert spec.stream_name("bars:AAPL:1h").interval == "1h"
    for wrong in ("bars:AAPL", "bars:AAPL:2m", "bars:aapl:1m"):
        with pytest.raises(ChannelError):
            spec.stream_name(wrong)
    with pytest.raises(ChannelError):
        registry.get("ticker").stream_name("ticker:AAPL:1m")


def bar_env(seq: int, start: int, closed: bool) -> Envelope:
    body = msgspec.json.encode(
        {"type": "bar", "ticker": "AAPL", "time": str(start), "closed": closed, "channel": "bars:AAPL:1m"}
    )
    envelope = unseal(seal("bars:AAPL:1m", seq, "bar", body, "AAPL", final=closed).text.encode())
    assert envelope is not None and envelope.final is closed  # the wire text says it, on every instance
    return envelope


def seqs(box: Outbox, now: float) -> list[int]:
    out = []
    while True:
        text, _ = box.pop(now)
        if text is None:
            return out
        out.append(msgspec.json.decode(text)["seq"])


def test_a_closed_bar_is_never_conflated_away_and_keeps_its_place_in_the_stream() -> None:
    box = Outbox(max_per_second=10, capacity=100)
    for seq, start, closed in [(1, 0, False), (2, 0, False), (3, 0, True), (4, 1, False), (5, 1, False)]:
        box.push(bar_env(seq, start, closed), Delivery.CONFLATE)
    # the pending open bar (2, newest of 1 and 2) goes first, then the closed one, then the newest open one
    assert seqs(box, 0.0) == [2, 3, 5]
    assert box.conflated == 2


def test_the_share_of_conflated_messages_never_passes_a_waiting_closed_bar() -> None:
    box = Outbox(max_per_second=2, capacity=100, price_share=1)
    box.wrote(0.0, False)
    box.wrote(0.0, False)  # the budget is spent
    box.push(bar_env(1, 0, False), Delivery.CONFLATE)
    assert box.pop(0.0)[0] is None  # waits: the prices' share starts counted as used
    now = 1.05  # budget and share are free again
    for seq in (1, 2):
        box.push(seal("patterns", seq, "pattern_alert", b'{"channel":"patterns"}'), Delivery.RELIABLE)
    box.push(bar_env(2, 0, True), Delivery.CONFLATE)
    box.push(bar_env(3, 1, False), Delivery.CONFLATE)
    sent = []
    for _ in range(5):
        text, _ = box.pop(now)
        assert text is not None
        sent.append(msgspec.json.decode(text))
    # the two patterns spend the budget; the share would send open bar 3 next, ahead of bars 1 and 2
    assert [m["seq"] for m in sent if m["channel"] == "bars:AAPL:1m"] == [1, 2, 3]


def test_a_closed_bar_goes_out_at_once_whatever_the_budget() -> None:
    box = Outbox(max_per_second=1, capacity=100, price_share=1)
    box.wrote(0.0, False)
    box.wrote(0.0, True)
    assert box.offer(bar_env(1, 0, False), Delivery.CONFLATE, 0.0).name == "QUEUED"
    box2 = Outbox(max_per_second=1, capacity=100, price_share=1)
    box2.wrote(0.0, False)
    box2.wrote(0.0, True)
    assert box2.offer(bar_env(1, 0, True), Delivery.CONFLATE, 0.0).name == "WRITE"


async def test_publish_bar_conflates_open_bars_and_publishes_a_closed_one_once() -> None:
    clock = FrozenClock(START)
    backplane = InMemoryBackplane(clock)
    publisher = Publisher(backplane, ChannelRegistry(), clock, Counters(), history_size=100)
    bar = Bar(
        ticker="AAPL",
        interval="1m",
        start=START,
        open=10.0,
        high=11.0,
        low=9.5,
        close=10.5,
        volume=1200,
        regular=True,
    )
    opened = await publisher.publish_bar(bar)
    assert opened is not None and not opened.final and opened.stream == "bars:AAPL:1m"
    assert msgspec.json.decode(opened.text) == {
        "type": "bar",
        "ticker": "AAPL",
        "interval": "1m",
        "time": "2026-01-05T15:00:00.000Z",
        "open": 10.0,
        "high": 11.0,
        "low": 9.5,
        "close": 10.5,
        "volume": 1200,
        "closed": False,
        "channel": "bars:AAPL:1m",
        "seq": 1,
    }
    closed = msgspec.structs.replace(bar, closed=True)
    first = await publisher.publish_bar(closed)
    assert first is not None and first.final and first.seq == 2
    assert await publisher.publish_bar(closed) is None  # a successor's re-publish: dropped
    assert (await backplane.replay("bars:AAPL:1m", None)).last_seq == 2
    corrected = msgspec.structs.replace(closed, low=9.25, volume=1300)  # a late price corrected it
    correction = await publisher.publish_bar(corrected)
    assert correction is not None and correction.final and correction.seq == 3
    assert await publisher.publish_bar(corrected) is None
    with pytest.raises(ValueError, match="write the ticker as 'AAPL'"):
        await publisher.publish_bar(msgspec.structs.replace(bar, ticker="aapl"))
