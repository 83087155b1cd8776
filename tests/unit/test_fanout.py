"""The fan-out hot path: direct writes when nothing waits, queueing only what must wait, conflation per
(stream, key), and the prices' share of the budget during a flood of must-deliver messages."""

from __future__ import annotations

import asyncio

import msgspec

from legend.adapters.clock.frozen import FrozenClock
from legend.domain.channels import ChannelSpec, Delivery
from legend.domain.envelope import conflation_key, seal
from legend.domain.inputs import PatternInput, PriceInput
from legend.plugins.base import Message
from legend.services.streaming.outbox import Outbox, Pushed
from legend.services.streaming.publisher import Publisher
from legend.services.streaming.session import Session
from tests.support.loop import settle
from tests.support.streaming import build_streaming, send
from tests.support.transport import AwaitedTransport, RecordingTransport, StuckTransport

PATTERN = PatternInput(
    ticker="AAPL", pattern_type="VCP", score=8.5, entry_price=231.0, stop_price=224.0, target_price=250.0
)


class Quote(Message, tag="quote", kw_only=True):
    """A plugin message carrying several symbols on one stream."""

    symbol: str
    value: float


QUOTES = ChannelSpec(name="quotes", delivery=Delivery.CONFLATE, schema=Quote)


async def subscribed_to_patterns(transport: RecordingTransport) -> tuple[Publisher, Session]:
    """A started service (with QUOTES) and one session on ``transport`` subscribed to ``patterns``."""
    streaming, publisher, _ = build_streaming(channels=[QUOTES])
    await streaming.start()
    session = streaming.open_session(transport, "u")
    await send(streaming, session, "subscribe", channel="patterns")
    return publisher, session


async def test_an_idle_connection_gets_the_frame_written_at_once_without_a_task() -> None:
    transport = RecordingTransport()
    publisher, session = await subscribed_to_patterns(transport)
    await settle()
    assert session.writer is None  # the acknowledgement and the history went straight out too
    before = len(transport.texts)
    envelope = await publisher.pattern(PATTERN)
    # Written inside the publish: no await, no writer task, the very text the backplane made.
    assert transport.texts[before:] == [envelope.text] and transport.texts[-1] is envelope.text
    assert session.writer is None and len(session.outbox) == 0


async def test_a_busy_socket_gets_its_messages_queued_in_order_and_drained_by_a_writer() -> None:
    transport = AwaitedTransport()  # declines every synchronous write
    publisher, session = await subscribed_to_patterns(transport)
    sent = [await publisher.pattern(PATTERN) for _ in range(5)]
    assert session.writer is not None  # the socket would not take them at once
    await settle()
    assert [t for t in transport.texts if '"pattern_alert"' in t] == [e.text for e in sent]
    assert session.writer is None  # gone once the outbox is empty


async def test_a_queued_message_keeps_later_ones_behind_it() -> None:
    """While a session's writer has work, new messages queue behind it even if the socket has room:
    order per stream never depends on which path a message took."""
    transport = RecordingTransport()
    publisher, session = await subscribed_to_patterns(transport)
    await settle()
    accept = transport.write
    transport.write = lambda text: False  # type: ignore[method-assign]  # the buffer is full, once
    first = await publisher.pattern(PATTERN)
    transport.write = accept  # type: ignore[method-assign]
    second = await publisher.pattern(PATTERN)
    await settle()
    alerts = [t for t in transport.texts if '"pattern_alert"' in t]
    assert alerts == [first.text, second.text]


def test_conflation_keeps_the_newest_message_of_each_symbol_on_one_stream() -> None:
    box = Outbox(max_per_second=1, capacity=100)

    def quote(seq: int, symbol: str) -> object:
        body = b'{"type":"quote","channel":"quotes","symbol":"%s"}' % symbol.encode()
        return seal("quotes", seq, "quote", body, conflation_key(None, symbol))

    # WRITE takes the budget (1/s): spent
    assert box.offer(quote(1, "AAA"), Delivery.CONFLATE, 0.0) is Pushed.WRITE  # type: ignore[arg-type]
    for seq, symbol in enumerate(["AAA", "BBB", "AAA", "CCC", "BBB"], start=2):
        box.push(quote(seq, symbol), Delivery.CONFLATE)  # type: ignore[arg-type]
    assert box.conflated == 2  # AAA#2 by AAA#4, BBB#3 by BBB#6
    sent = []
    for second in range(1, 5):
        text, _ = box.pop(float(second))
        if text:
            sent.append(msgspec.json.decode(text)["seq"])
    assert sent == [4, 6, 5]  # the newest of each symbol, each keeping its place in line


async def test_a_plugin_stream_of_several_symbols_conflates_per_symbol_end_to_end() -> None:
    streaming, publisher, clock = build_streaming(channels=[QUOTES], max_messages_per_second=2)
    await streaming.start()
    transport = RecordingTransport()
    session = streaming.open_session(transport, "u")
    await send(streaming, session, "subscribe", channel="quotes")
    await settle()
    for value in range(1, 11):  # far above the budget, all in the same instant
        for symbol in ("AAA", "BBB", "CCC"):
            await publisher.publish("quotes", Quote(symbol=symbol, value=float(value), channel="quotes"))
    for _ in range(4):
        clock.advance(1.0)
        streaming.fanout.flush(session)  # its budget wait is on the loop's clock: flush it on the test's
        await settle()
    last = {}
    for frame in transport.of_type("quote"):
        last[frame["symbol"]] = frame["value"]
    assert last == {"AAA": 10.0, "BBB": 10.0, "CCC": 10.0}  # every symbol ends on its newest value


async def test_prices_keep_flowing_at_their_share_during_a_flood_of_alerts() -> None:
    """2,000 must-deliver alerts queued on a socket that drains 100 frames a second used to hold every
    price back until the last alert was written (20 s). Prices now get their share of the budget."""
    clock = FrozenClock()
    streaming, publisher, _ = build_streaming(
        clock, channels=[QUOTES], max_messages_per_second=10, max_pending_messages=5000
    )
    await streaming.start()

    class Draining(AwaitedTransport):
        async def send_text(self, text: str) -> None:  # 100 frames per second
            self.texts.append(text)
            clock.advance(0.01)
            await asyncio.sleep(0)

    transport = Draining()
    session = streaming.open_session(transport, "u")
    for ticker in ("AAA", "BBB", "CCC"):
        await send(streaming, session, "subscribe", channel="ticker", ticker=ticker)
    await send(streaming, session, "subscribe", channel="patterns")
    for _ in range(2000):
        await publisher.pattern(PATTERN)
    price = 100.0
    for _ in range(10_000):  # a price per ticker for each frame the socket takes, until all went out
        price += 0.01
        for ticker in ("AAA", "BBB", "CCC"):
            await publisher.price(PriceInput(ticker=ticker, price=round(price, 2)))
        await asyncio.sleep(0)
        if session.writer is None:
            break
    await settle()
    frames = transport.frames
    last_alert = max(i for i, f in enumerate(frames) if f["type"] == "pattern_alert")
    during = [f for f in frames[:last_alert] if f["type"] == "price_update"]
    drained_for = 2000 * 0.01
    share = 10 // 2
    assert len(during) >= share * drained_for * 0.8, len(during)  # about 5 a second, for 20 s
    assert {f["ticker"] for f in during} == {"AAA", "BBB", "CCC"}  # every ticker, not one
    alerts = [f["seq"] for f in frames if f["type"] == "pattern_alert"]
    assert alerts == sorted(alerts) and len(alerts) == 2000  # and no alert lost or reordered


async def test_the_budget_still_holds_prices_to_ten_a_second_on_the_direct_path() -> None:
    streaming, publisher, clock = build_streaming(channels=[QUOTES])
    await streaming.start()
    transport = RecordingTransport()
    session = streaming.open_session(transport, "u")
    await send(streaming, session, "subscribe", channel="ticker", ticker="AAA")
    await settle()
    for step in range(100):  # 100 prices in one second
        await publisher.price(PriceInput(ticker="AAA", price=100.0 + step / 100))
        clock.advance(0.01)
    assert len(transport.of_type("price_update")) == 10  # the first ten went straight out
    assert session.writer is None and session.due is not None  # the rest waits on the timer wheel
    streaming.fanout.flush(session)  # a second after the first: the newest of the other 90 goes out
    prices = transport.of_type("price_update")
    assert len(prices) == 11 and prices[-1]["price"] == 100.99


async def test_a_stuck_socket_is_closed_1013_once_its_outbox_passes_max_pending_bytes() -> None:
    """Far fewer messages than max_pending_messages, but more bytes than max_pending_bytes: closed as a
    slow consumer (it resumes with since), the reason naming the bound that was passed."""
    streaming, publisher, _ = build_streaming(
        channels=[QUOTES], max_pending_messages=1000, max_pending_bytes=8192
    )
    await streaming.start()
    stuck = StuckTransport()
    session = streaming.open_session(stuck, "u")
    await send(streaming, session, "subscribe", channel="patterns")
    big = msgspec.structs.replace(PATTERN, message="x" * 500)
    for _ in range(20):  # about 20 x 750 characters
        await publisher.pattern(big)
    await settle()
    assert stuck.closed == (1013, "slow consumer: more than 8192 bytes pending")
    assert streaming.counters.slow_consumers_closed == 1 and session.id not in streaming.sessions


async def test_filtered_subscribers_get_what_matches_in_subscription_order_and_leave_no_trace() -> None:
    """Filtered and unfiltered subscribers of one stream are walked in the order they subscribed; what a
    filter does not match is counted, never offered; unsubscribing (and a filter widened by a second
    subscribe) leaves the index's tables exactly as before."""
    streaming, publisher, _ = build_streaming()
    await streaming.start()
    index = streaming.index
    sessions = []
    for i, spec in enumerate(
        [None, {"score": {"gte": 8}}, None, {"ticker": {"eq": "MSFT"}}, {"score": {"gte": 8}}]
    ):
        transport = RecordingTransport()
        session = streaming.open_session(transport, f"u{i}")
        await send(streaming, session, "subscribe", channel="patterns", **({"filter": spec} if spec else {}))
        sessions.append((session, transport))
    await settle()
    assert list(index.ordered["patterns"]) == [s.id for s, _ in sessions]
    assert len(index.groups["patterns"]) == 2 and index.subscribers("patterns") == 5
    before = streaming.counters.messages_filtered
    await publisher.pattern(PATTERN)  # AAPL, 8.5: all but the MSFT filter
    await settle()
    got = [len(t.of_type("pattern_alert")) for _, t in sessions]
    assert got == [1, 1, 1, 0, 1]
    assert streaming.counters.messages_filtered - before == 1
    await send(streaming, sessions[3][0], "subscribe", channel="patterns", filter={"score": {"gte": 8}})
    await settle()  # widened to the or of both: a group of its own, and its old one is gone
    assert sorted(index.groups["patterns"]) == [
        '{"or":[{"ticker":{"eq":"MSFT"}},{"score":{"gte":8}}]}',
        '{"score":{"gte":8}}',
    ]
    assert list(index.ordered["patterns"]) == [s.id for s, _ in sessions]  # its place kept
    for session, _ in sessions:
        await send(streaming, session, "unsubscribe", channel="patterns")
    await settle()
    assert "patterns" not in index.ordered and "patterns" not in index.groups
    assert "patterns" not in index.members and "patterns" not in index.delivery
