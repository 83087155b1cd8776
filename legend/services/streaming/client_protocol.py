"""The client protocol: what a client's frames do, and the replies.

A frame is rate limited, size limited and decoded (``messages.decode_client_message``: the tagged union of
the specification's client messages, docs/protocol.md); then ``subscribe`` (with the stream's history, or
exactly what was missed since ``since``), ``unsubscribe`` or ``ping``. Every reply is a control frame:
never throttled, never dropped, ahead of the connection's queued channel messages.
"""

from __future__ import annotations

import inspect
import logging

import msgspec

from legend.domain import closecodes
from legend.domain.channels import ChannelError, ChannelRegistry, ChannelSpec, Delivery
from legend.domain.filters import FilterError, compile_filter, either, message_fields
from legend.domain.messages import (
    Error,
    History,
    Ping,
    Pong,
    ProtocolError,
    Subscribe,
    Subscription,
    Unsubscribe,
    decode_client_message,
    encode,
)
from legend.domain.stats import Counters
from legend.domain.timefmt import iso
from legend.ports.backplane import Backplane, BackplaneUnavailable
from legend.ports.clock import Clock
from legend.services.streaming.fanout import Fanout
from legend.services.streaming.limits import Limits
from legend.services.streaming.outbox import Pushed
from legend.services.streaming.session import Session, SessionOwner, Subscribed, WatchlistRef
from legend.services.streaming.subscriptions import SubscriptionIndex
from legend.services.streaming.ticker_check import TickerCheck
from legend.services.streaming.watchlist_follower import WatchlistFollower, WatchlistUnavailable

log = logging.getLogger("legend.streaming")


# The channels keyed by a ticker the quote provider must know: their replies name it (``ticker``).
_TICKER_CHANNELS = frozenset({"ticker", "bars"})


class ClientProtocol:
    """Acts on the frames of the sessions of one instance."""

    def __init__(
        self,
        owner: SessionOwner,
        index: SubscriptionIndex,
        fanout: Fanout,
        backplane: Backplane,
        registry: ChannelRegistry,
        clock: Clock,
        limits: Limits,
        counters: Counters,
        ticker_check: TickerCheck | None = None,
        follower: WatchlistFollower | None = None,
    ) -> None:
        self.owner = owner  # closes the sessions that break the protocol's limits
        self.index = index
        self.fanout = fanout
        self.backplane = backplane
        self.registry = registry
        self.clock = clock
        self.limits = limits
        self.counters = counters
        self.ticker_check = ticker_check  # refuses tickers the quote provider has no prices for
        # the users' watchlists, for the filters that follow them
        self.follower = follower if follower is not None else WatchlistFollower(None, index.bus)

    def _now(self) -> str:
        return iso(self.clock.now())

    def reply(self, session: Session, message: msgspec.Struct) -> None:
        """Send a server message (a control frame) to ``session``."""
        kind = str(type(message).__struct_config__.tag)
        self.fanout.push_control(session, encode(message).decode(), kind)

    def error(
        self, session: Session, code: str, message: str, request: Subscribe | Unsubscribe | None = None
    ) -> None:
        """Send an ``error`` reply (the specification's shape, docs/protocol.md, plus a stable ``code``); one
        about a (un)subscribe names its ``channel`` (and ``ticker``, ``interval``) as the client sent them."""
        self.counters.errors += 1
        error = Error(message=message, code=code, timestamp=self._now())
        if request is not None:
            error.channel, error.ticker, error.interval = request.channel, request.ticker, request.interval
        self.reply(session, error)

    def refuse(self, session: Session, request: Subscribe | Unsubscribe, code: str, message: str) -> None:
        """An ``error`` about ``request``: a client with several subscribes in flight knows which one."""
        self.error(session, code, message, request)

    async def handle_frame(self, session: Session, frame: str | bytes) -> None:
        """Act on one client frame: rate limit, size limit, decode, then subscribe/unsubscribe/ping."""
        if session.closing:
            return
        now = self.clock.monotonic()
        session.last_seen = now
        self.counters.messages_received += 1
        limits = self.limits
        if not session.inbound.take(now):
            self.counters.inbound_rejected += 1
            session.strikes += 1
            if session.strikes > limits.inbound_burst:
                await self.owner.close_session(
                    session, closecodes.POLICY_VIOLATION, "inbound rate limit exceeded"
                )
                return
            self.error(
                session,
                "rate_limited",
                f"Rate limit exceeded: at most {limits.inbound_rate:g} messages per second",
            )
            return
        if session.strikes and session.inbound.full:
            session.strikes = 0
        size = (
            len(frame)
            if isinstance(frame, bytes) or len(frame) * 4 <= limits.max_frame_bytes
            else len(frame.encode())
        )
        if size > limits.max_frame_bytes:
            self.error(
                session, "too_large", f"Message too large: {size} bytes (limit {limits.max_frame_bytes})"
            )
            return
        received = self.counters.received_by_type
        try:
            message = decode_client_message(frame)
        except ProtocolError as exc:
            received["invalid"] = received.get("invalid", 0) + 1
            self.error(session, exc.code, exc.message)
            return
        kind = str(type(message).__struct_config__.tag)
        received[kind] = received.get(kind, 0) + 1
        if isinstance(message, Ping):
            self.reply(session, Pong(timestamp=self._now()))
        elif isinstance(message, Subscribe):
            await self.subscribe(session, message)
        elif isinstance(message, Unsubscribe):
            self.unsubscribe(session, message)

    def _resolve(
        self, session: Session, request: Subscribe | Unsubscribe
    ) -> tuple[ChannelSpec, str | None, str | None] | None:
        """The channel, key and interval a (un)subscribe names; None, with an error sent, when invalid."""
        try:
            spec, key = self.registry.resolve(request.channel, request.ticker)
            return spec, key, spec.interval_of(request.interval)
        except ChannelError as exc:
            self.refuse(session, request, "invalid_subscription", str(exc))
            return None

    async def subscribe(self, session: Session, request: Subscribe) -> None:
        """Subscribe, acknowledge, then send each stream's history (what was missed, with ``since``)."""
        if (resolved := self._resolve(session, request)) is None:
            return
        spec, key, interval = resolved
        note: str | None = None
        if spec.name in _TICKER_CHANNELS and key and self.ticker_check is not None:
            if await self.ticker_check.unknown(key):
                if not session.closing:
                    name = self.ticker_check.provider.name
                    self.refuse(
                        session,
                        request,
                        "unknown_ticker",
                        f"Unknown ticker: {key} (no prices for it from {name})",
                    )
                return
            note = self.ticker_check.note(key)
        if spec.authorize is not None:
            allowed = await self._authorized(spec, session.user_id, key)
            if session.closing:
                return
            if not allowed:
                self.refuse(session, request, "not_authorized", f"Not authorized for channel '{spec.name}'")
                return
        try:
            wanted = compile_filter(request.filter)
        except FilterError as exc:
            self.refuse(session, request, "invalid_filter", f"Invalid filter: {exc}")
            return
        watchlist: WatchlistRef | None = None
        if wanted is not None and wanted.follows_watchlist:
            try:
                watchlist = await self.follower.follow(session.user_id)
            except WatchlistUnavailable as exc:
                if not session.closing:
                    self.refuse(
                        session,
                        request,
                        "watchlist_unavailable",
                        f"Watchlist unavailable for the filter: {exc}",
                    )
                return
            if session.closing:
                return
        sub_key = spec.subscription_key(key, interval)
        existing = session.subscriptions.get(sub_key)
        try:
            combined = wanted if existing is None else either(existing.filter, wanted)
        except FilterError as exc:  # the or of both is over the limits
            self.refuse(
                session, request, "invalid_filter", f"Invalid filter with this channel's earlier one: {exc}"
            )
            return
        if combined is not None and combined.follows_watchlist and watchlist is None:
            watchlist = existing.watchlist if existing is not None else None
        if (
            sub_key not in session.subscriptions
            and len(session.subscriptions) >= self.limits.max_subscriptions
        ):
            self.refuse(
                session,
                request,
                "subscription_limit",
                f"Subscription limit reached: at most {self.limits.max_subscriptions} per connection",
            )
            return
        streams = spec.streams(key, session.user_id, interval)
        since = request.since
        since_of: dict[str, int] = {}
        if isinstance(since, int):
            since_of[streams[0]] = since
        elif isinstance(since, dict):
            since_of = {stream: seq for stream, seq in since.items() if stream in streams}
        outbox = session.outbox
        for stream in streams:
            outbox.hold(stream)  # live messages wait until the history reply is queued
        if existing is None:
            sub = Subscribed(spec, key, streams, combined, watchlist)
            session.subscriptions[sub_key] = sub
            self.index.attach(session, sub)
        elif existing.filter is not combined:
            self.index.refilter(session, existing, combined, watchlist)
        ticker = key if spec.name in _TICKER_CHANNELS else None
        self.reply(
            session,
            Subscription(
                action="subscribed",
                channel=spec.name,
                ticker=ticker,
                streams=list(streams),
                timestamp=self._now(),
                note=note,
                interval=interval,
                filter=combined.spec if combined is not None else None,
            ),
        )
        for stream in streams:
            resume = since_of.get(stream)
            try:
                replay = await self.backplane.replay(stream, resume)
            except BackplaneUnavailable as exc:
                if session.closing:
                    return
                outbox.release(stream)
                if resume is not None:  # a resume that cannot be answered: the client retries later
                    await self.owner.close_session(
                        session, closecodes.TRY_AGAIN_LATER, "history unavailable: resume later"
                    )
                    return
                self.refuse(
                    session, request, "history_unavailable", f"History unavailable for {stream}: {exc}"
                )
                self.fanout.flush(session)
                continue
            current = session.subscriptions.get(sub_key)
            if session.closing or current is None:
                return
            envelopes = replay.envelopes
            if current.filter is not None:  # what it does not match is left out: seq keeps the stream's
                envelopes = [env for env in envelopes if current.matches(message_fields(env.text))]
            self.reply(
                session,
                History(
                    channel=stream,
                    ticker=ticker,
                    messages=[msgspec.Raw(env.text.encode()) for env in envelopes],
                    seq=replay.last_seq,
                    recovered=None if resume is None else replay.complete,
                    timestamp=self._now(),
                    interval=interval,
                ),
            )
            if session.gaps:  # its history reloaded: the gap it was told of is no longer open
                session.gaps.discard(stream)
            if (
                spec.delivery is Delivery.STICKY
                and envelopes
                and (resume is None or resume < replay.last_seq)
            ):
                self.fanout.push_control(session, envelopes[-1].text, envelopes[-1].type)
            if outbox.covered(stream, replay.last_seq) is Pushed.OVERFLOW:
                await self.owner.close_session(
                    session, closecodes.TRY_AGAIN_LATER, "slow consumer: too many messages during subscribe"
                )
                return
            if not outbox.idle:
                self.fanout.flush(session)

    @staticmethod
    async def _authorized(spec: ChannelSpec, user_id: str, key: str | None) -> bool:
        """The channel's own rule (awaited when it answers with an awaitable); one that raises denies
        (and is logged)."""
        assert spec.authorize is not None
        try:
            allowed = spec.authorize(user_id, key)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            return bool(allowed)
        except Exception:
            log.exception("authorization of channel %r failed; access denied", spec.name)
            return False

    def unsubscribe(self, session: Session, request: Unsubscribe) -> None:
        """Leave a channel; acknowledged even when it was not subscribed (idempotent)."""
        if (resolved := self._resolve(session, request)) is None:
            return
        spec, key, interval = resolved
        sub_key = spec.subscription_key(key, interval)
        sub = session.subscriptions.pop(sub_key, None)
        if sub is not None:
            self.index.detach(session, sub)
        self.reply(
            session,
            Subscription(
                action="unsubscribed",
                channel=spec.name,
                ticker=key if spec.name in _TICKER_CHANNELS else None,
                streams=list(sub.streams) if sub else [],
                timestamp=self._now(),
                interval=interval,
            ),
        )
