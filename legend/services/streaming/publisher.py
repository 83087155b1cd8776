"""The one way in for every message: validate, stamp, encode once, hand to the backplane."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from legend.domain.bars import Bar, bar_message
from legend.domain.channels import ChannelRegistry, ChannelSpec
from legend.domain.envelope import Envelope, conflation_key, is_final
from legend.domain.inputs import AlertInput, MarketStatusInput, PatternInput, PriceInput
from legend.domain.market import MarketState
from legend.domain.messages import (
    AlertTrigger,
    MarketStatus,
    PatternAlert,
    WatchlistUpdate,
    alert_text,
    encode,
)
from legend.domain.prices import price_update
from legend.domain.quotes import Quote
from legend.domain.stats import Counters
from legend.domain.stream_name import bar_stream, private_stream, ticker_stream
from legend.domain.symbols import normalize_ticker
from legend.domain.timefmt import iso, iso_or_none
from legend.ports.backplane import AlreadyPublished, Backplane, BackplaneUnavailable, Fenced, Outgoing
from legend.ports.clock import Clock

log = logging.getLogger("legend.publisher")

Fence = tuple[str, int] | None  # a lease and its fencing token (``Outgoing.fence``)


def _stamp(at: datetime | None, clock: Clock) -> str:
    if at is None:
        return iso(clock.now())
    return iso(at if at.tzinfo else at.replace(tzinfo=UTC))


class MirrorUnavailable(BackplaneUnavailable):
    """A message went out on its keyed stream (``envelope``) but not on the bare stream it is mirrored to
    (``stream``): publish it there again to complete it (publishing it on the keyed stream again would
    repeat it there)."""

    def __init__(self, envelope: Envelope, stream: str, cause: BackplaneUnavailable) -> None:
        super().__init__(f"published on {envelope.stream} but not mirrored to {stream}: {cause}")
        self.envelope = envelope
        self.stream = stream


class Publisher:
    """Builds the specification's messages and publishes them on their streams."""

    def __init__(
        self,
        backplane: Backplane,
        registry: ChannelRegistry,
        clock: Clock,
        counters: Counters,
        history_size: int,
        exchange: str = "XNYS",
    ) -> None:
        self._backplane = backplane
        self._registry = registry
        self._clock = clock
        self._counters = counters
        self._history_size = history_size
        self._exchange = exchange

    async def publish(
        self, stream: str, message: msgspec.Struct, once: str | None = None, fence: Fence = None
    ) -> Envelope:
        """Publish any server message (it must carry ``channel``) on ``stream``; raises BackplaneUnavailable,
        and InvalidMessage when the channel has a schema the message does not match (nothing is sent).
        With ``once``, a message already published under that key raises AlreadyPublished instead.

        On a ``mirror_keyed`` channel a message on a keyed stream is then published on the bare stream
        too, its ``channel`` set to that stream (each stream has its own ``seq``). When only that second
        publish fails, MirrorUnavailable (a BackplaneUnavailable) says which stream still misses it."""
        spec = self._registry.spec_of_stream(stream)
        if spec is None:
            raise ValueError(f"no channel is registered for stream {stream!r}")
        return await self._publish_on(spec, stream, message, once, fence)

    async def _publish_on(
        self,
        spec: ChannelSpec,
        stream: str,
        message: msgspec.Struct,
        once: str | None = None,
        fence: Fence = None,
    ) -> Envelope:
        """``publish`` on a stream of ``spec`` (the built-in messages know their channel: no parse)."""
        if spec.schema is not None:
            message = spec.conform(message)
        mirror = spec.mirror_stream(stream)
        envelope = await self._send(spec, stream, message, once, fence)
        if mirror is not None:
            if "channel" in message.__struct_fields__:
                message = msgspec.structs.replace(message, channel=mirror)
            try:
                await self._send(spec, mirror, message, fence=fence)
            except BackplaneUnavailable as exc:
                raise MirrorUnavailable(envelope, mirror, exc) from exc
        return envelope

    def _outgoing(
        self,
        spec: ChannelSpec,
        stream: str,
        message: msgspec.Struct,
        once: str | None = None,
        fence: Fence = None,
    ) -> Outgoing:
        size = self._history_size if spec.history_size is None else spec.history_size
        kind = type(message).__struct_config__.tag
        key = conflation_key(getattr(message, "ticker", None), getattr(message, "symbol", None))
        final = is_final(getattr(message, "closed", None))
        return Outgoing(
            stream, spec.topic, str(kind), encode(message), size, key, once, final, fence, spec.keeps(final)
        )

    async def _send(
        self,
        spec: ChannelSpec,
        stream: str,
        message: msgspec.Struct,
        once: str | None = None,
        fence: Fence = None,
    ) -> Envelope:
        try:
            envelope = await self._backplane.publish(self._outgoing(spec, stream, message, once, fence))
        except Fenced:
            raise  # refused on purpose (a lease taken over): counted as fenced, not as a backplane failure
        except BackplaneUnavailable:
            self._counters.publish_failures += 1
            raise
        self._counters.messages_published += 1
        return envelope

    async def price(self, data: PriceInput | Quote, fence: Fence = None) -> Envelope:
        """Publish a ``price_update``; with ``fence`` (the quote poller's lease) only while that holding
        is current (Fenced otherwise)."""
        stream = ticker_stream(data.ticker)
        message = price_update(data, self._clock.now(), stream)
        return await self._publish_on(self._registry.get("ticker"), stream, message, fence=fence)

    async def pattern(self, data: PatternInput, fence: Fence = None) -> Envelope:
        ratio = data.risk_reward_ratio
        if ratio is None:
            ratio = round(
                abs(data.target_price - data.entry_price) / abs(data.entry_price - data.stop_price), 2
            )
        message = PatternAlert(
            ticker=data.ticker,
            pattern_type=data.pattern_type,
            score=data.score,
            entry_price=data.entry_price,
            stop_price=data.stop_price,
            target_price=data.target_price,
            risk_reward_ratio=ratio,
            message=data.message or f"{data.pattern_type} pattern detected on {data.ticker}",
            timestamp=_stamp(data.timestamp, self._clock),
            channel="patterns",
        )
        return await self._publish_on(self._registry.get("patterns"), "patterns", message, fence=fence)

    async def alert(self, data: AlertInput, once: bool = False) -> Envelope:
        """Publish an ``alert_trigger``; with ``once``, its ``alert_id`` is published at most once
        (AlreadyPublished otherwise)."""
        stream, message = self._alert_message(data)
        once_key = data.alert_id if once else None
        return await self._publish_on(self._registry.get("alerts"), stream, message, once_key)

    def _alert_message(self, data: AlertInput) -> tuple[str, AlertTrigger]:
        stream = private_stream("alerts", data.user_id) if data.user_id else "alerts"
        return stream, AlertTrigger(
            ticker=data.ticker,
            alert_type=data.alert_type,
            trigger_price=data.trigger_price,
            current_price=data.current_price,
            message=data.message
            or alert_text(data.ticker, data.alert_type, data.trigger_price, data.current_price),
            timestamp=_stamp(data.timestamp, self._clock),
            alert_id=data.alert_id,
            channel=stream,
        )

    async def alerts_once(self, inputs: Sequence[AlertInput]) -> list[Envelope | None]:
        """Publish many ``alert_trigger``s in one round trip, in order, each ``alert_id`` at most once
        (None for one published already); raises BackplaneUnavailable (publish them again: at most once)."""
        spec = self._registry.get("alerts")
        outgoing = []
        for data in inputs:
            stream, message = self._alert_message(data)
            outgoing.append(self._outgoing(spec, stream, message, data.alert_id))
        try:
            published = await self._backplane.publish_many(outgoing)
        except BackplaneUnavailable:
            self._counters.publish_failures += 1
            raise
        self._counters.messages_published += sum(1 for envelope in published if envelope is not None)
        return published

    async def publish_bar(self, bar: Bar) -> Envelope | None:
        """Publish a ``bar`` on ``bars:{ticker}:{interval}``: an open bar is conflated (the newest wins in a
        slow client's outbox); a closed one is final (must-deliver, in history, resumable by ``seq``) and
        published at most once with the same figures: None for a closed bar published already (a
        successor rebuilds the same figures), while a correction (a late price changed them) goes out.
        Raises BackplaneUnavailable (publish it again), ValueError for a ticker not written as the Ticker
        rule writes it."""
        if normalize_ticker(bar.ticker) != bar.ticker:
            raise ValueError(f"bar of {bar.ticker!r}: write the ticker as {normalize_ticker(bar.ticker)!r}")
        stream = bar_stream(bar.ticker, bar.interval)
        once = None
        if bar.closed:
            figures = f"{bar.open!r}:{bar.high!r}:{bar.low!r}:{bar.close!r}:{bar.volume}"
            once = f"bar:{bar.ticker}:{bar.interval}:{iso(bar.start)}:closed:{figures}"
        try:
            return await self._publish_on(self._registry.get("bars"), stream, bar_message(bar, stream), once)
        except AlreadyPublished:
            return None

    async def watchlist(self, user_id: str, tickers: list[str]) -> Envelope:
        """Publish ``user_id``'s watchlist as it is now on the user's own ``watchlist`` stream: the user's
        other tabs, and the subscription filters that follow the watchlist on every instance, go by it."""
        spec = self._registry.get("watchlist")
        stream = private_stream("watchlist", user_id)
        message = WatchlistUpdate(tickers=tickers, timestamp=iso(self._clock.now()), channel=stream)
        return await self._publish_on(spec, stream, message)

    async def market_status(self, data: MarketStatusInput | MarketState, fence: Fence = None) -> Envelope:
        if isinstance(data, MarketState):
            message = MarketStatus(
                status=data.status,
                next_open=iso_or_none(data.next_open),
                next_close=iso_or_none(data.next_close),
                timestamp=iso(data.at),
                exchange=self._exchange,
                early_close=data.early_close if data.is_open else None,
                channel="market_status",
            )
        else:
            message = MarketStatus(
                status=data.status,
                next_open=iso_or_none(data.next_open),
                next_close=iso_or_none(data.next_close),
                timestamp=_stamp(data.timestamp, self._clock),
                exchange=self._exchange,
                channel="market_status",
            )
        return await self._publish_on(
            self._registry.get("market_status"), "market_status", message, fence=fence
        )
