"""The streaming service: sessions, who is subscribed to what, fan-out, and the client protocol.

Fan-out writes the one text the backplane made to every subscriber's socket in one loop, without a task
switch per connection. A connection that cannot take a message now (budget spent, socket full, history
being read) gets it queued in its outbox and a writer task of its own until the outbox is empty, so a
slow socket only ever delays itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import math
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec

from legend.domain import closecodes
from legend.domain.admission import Admission, Refusal
from legend.domain.channels import ChannelError, ChannelRegistry, ChannelSpec, Delivery
from legend.domain.envelope import Envelope
from legend.domain.logcontext import HOSTILE, connection_id
from legend.domain.messages import (
    Connection,
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
from legend.domain.outbox import Outbox, Pushed
from legend.domain.session import Session, Subscribed
from legend.domain.stats import Counters, LatencyHistogram
from legend.domain.throttle import TokenBucket
from legend.domain.ticker_check import TickerCheck
from legend.domain.timefmt import iso
from legend.ports.backplane import Backplane, BackplaneUnavailable
from legend.ports.clock import Clock
from legend.ports.transport import Transport, TransportClosed

log = logging.getLogger("legend.streaming")

WHEEL_GRAIN = 0.005  # seconds: budget waits end on a 5 ms timer slot shared by every session due then

_CLOSE_COUNTERS = {
    closecodes.TRY_AGAIN_LATER: "slow_consumers_closed",
    closecodes.STALE: "stale_connections_closed",
    closecodes.POLICY_VIOLATION: "flood_closed",
}


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-connection limits (see ``[realtime]`` in the settings reference)."""

    max_messages_per_second: int = 10
    max_subscriptions: int = 50
    max_frame_bytes: int = 4096
    inbound_rate: float = 20.0
    inbound_burst: int = 40
    stale_after: float = 60.0
    max_pending_messages: int = 1000
    slow_consumer_timeout: float = 15.0
    close_timeout: float = 3.0
    price_share: int | None = None  # prices sent per second whatever else is queued (None: half the budget)


class StreamingService:
    """Owns every session of this instance and routes envelopes to them."""

    def __init__(
        self,
        backplane: Backplane,
        registry: ChannelRegistry,
        clock: Clock,
        limits: Limits,
        counters: Counters | None = None,
        admission: Admission | None = None,
        ticker_check: TickerCheck | None = None,
    ) -> None:
        self.backplane = backplane
        self.registry = registry
        self.clock = clock
        self.limits = limits
        self.counters = counters or Counters()
        self.admission = admission  # connection limits; None: every connection is admitted
        self.ticker_check = ticker_check  # refuses tickers the quote provider has no prices for
        self.send_latency = LatencyHistogram()  # reaching this instance -> written to a socket
        self.sessions: dict[str, Session] = {}
        self._streams: dict[str, dict[str, Session]] = {}
        self._delivery: dict[str, Delivery] = {}
        self._tickers: dict[str, int] = {}
        self._channel_users: dict[str, dict[str, int]] = {}  # channel -> user -> subscriptions
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wheel: dict[int, list[Session]] = {}  # timer slot -> sessions waiting for budget then
        self.on_new_ticker: Callable[[str], None] | None = None  # the streamer polls it without waiting
        # Called with (user_id, channel, key) after each new subscription (plugins: send a first snapshot).
        # A listener that raises is logged and skipped.
        self.subscribe_listeners: list[Callable[[str, str, str | None], None]] = []
        # Called with every envelope of a message type as it reaches this instance (plugins: the price
        # stream on every instance of a cluster). Listeners must be quick and must not raise.
        self.taps: dict[str, list[Callable[[Envelope], None]]] = {}
        self.started_at = clock.monotonic()

    # ───────────────────────── lifecycle ─────────────────────────

    async def start(self) -> None:
        await self.backplane.start(self.deliver)

    async def shutdown(self, code: int = closecodes.GOING_AWAY, reason: str = "server shutting down") -> None:
        """Close every session with ``code`` (1001 by default) and wait for the closes, bounded."""
        closing = [self.close_session(session, code, reason) for session in list(self.sessions.values())]
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any], session: Session | None = None) -> None:
        """Run ``coro`` in a task of its own; on behalf of ``session`` (its id on every log line)."""
        context = contextvars.copy_context()
        if session is not None:
            context.run(connection_id.set, session.id)
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ───────────────────────── sessions ─────────────────────────

    async def connect(
        self, transport: Transport, user_id: str, address: str, expires_at: float | None = None
    ) -> Session | Refusal:
        """A new connection from ``address``: refused when over a connection limit (the caller closes
        it with the refusal's code and reason), else opened as ``open_session`` does."""
        session_id = f"{user_id}_{secrets.token_hex(6)}"
        if self.admission is not None:
            refusal = await self.admission.admit(session_id, user_id, address, self.clock.monotonic())
            if refusal is not None:
                log.info(
                    "refused a connection of %s from %s: %s", user_id, address, refusal.reason, extra=HOSTILE
                )
                return refusal
        session = self.open_session(transport, user_id, expires_at, session_id)
        session.address = address
        return session

    def open_session(
        self,
        transport: Transport,
        user_id: str,
        expires_at: float | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Register a new connection and send its acknowledgement. ``expires_at`` (epoch seconds) is
        when its credentials run out: the sweep closes it then."""
        now = self.clock.monotonic()
        limits = self.limits
        session = Session(
            session_id=session_id or f"{user_id}_{secrets.token_hex(6)}",
            user_id=user_id,
            transport=transport,
            outbox=Outbox(limits.max_messages_per_second, limits.max_pending_messages, limits.price_share),
            inbound=TokenBucket(limits.inbound_rate, limits.inbound_burst, now),
            now=now,
        )
        session.expires_at = expires_at
        self.sessions[session.id] = session
        self.counters.total_connections += 1
        self._reply(
            session,
            Connection(
                status="connected",
                connection_id=session.id,
                user_id=user_id,
                timestamp=self._now(),
                heartbeat_timeout=limits.stale_after,
            ),
        )
        return session

    def end_session(self, session: Session) -> None:
        """Forget a session whose socket is gone (or is being closed); frames still arriving are ignored."""
        session.closing = True
        if self.sessions.pop(session.id, None) is None:
            return
        for sub in session.subscriptions.values():
            self._detach(session, sub)
        session.subscriptions.clear()
        if session.address is not None and self.admission is not None:
            self._spawn(self.admission.release(session.id, session.user_id, session.address), session=session)
        writer = session.writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()

    async def close_session(self, session: Session, code: int, reason: str) -> None:
        """Close with a close frame; a peer that does not take it within ``close_timeout`` is dropped
        (its socket aborted), so that it stops costing memory and a file descriptor."""
        if session.closing:
            return
        counted = _CLOSE_COUNTERS.get(code)
        if counted is not None:
            setattr(self.counters, counted, getattr(self.counters, counted) + 1)
            log.log(
                logging.DEBUG if code == closecodes.STALE else logging.INFO,
                "closing %s (%d): %s",
                session.id,
                code,
                reason,
            )
        self.end_session(session)
        transport = session.transport
        try:
            async with asyncio.timeout(self.limits.close_timeout):
                if code != closecodes.TRY_AGAIN_LATER:  # a slow consumer would not take them anyway
                    for text in session.outbox.take_control():  # e.g. the errors that explain the close
                        await transport.send_text(text)
                await transport.close(code, reason)
            return
        except TimeoutError:
            # The peer does not read, so not even a close frame gets through.
            log.info(
                "close of %s did not complete within %ss: dropped", session.id, self.limits.close_timeout
            )
            self.counters.connections_aborted += 1
        except Exception as exc:  # the socket is already gone
            log.debug("close of %s failed: %r", session.id, exc)
        transport.abort()
        # Stop its receive loop, so that nothing of ours waits on this peer any longer.
        reader = session.reader
        if reader is not None and not reader.done() and reader is not asyncio.current_task():
            reader.cancel()

    def flush(self, session: Session) -> None:
        """Write what the session's outbox can send now, without waiting. What has to wait for budget
        is put on the shared timer wheel (no task of its own); a socket too full to take the next frame
        gets a writer task until it drains."""
        if session.closing or session.writer is not None:
            return  # the writer takes what was queued meanwhile
        outbox, transport = session.outbox, session.transport
        now = self.clock.monotonic()
        while True:
            text, wait = outbox.pop(now)
            if text is None:
                if wait is not None:
                    self._later(session, wait)
                return
            try:
                written = transport.write(text)
            except TransportClosed:
                self.end_session(session)  # its receive loop ends too
                return
            if not written:
                session.writer = asyncio.get_running_loop().create_task(self._write(session, text))
                return
            self._sent(outbox)

    def _sent(self, outbox: Outbox) -> None:
        """Count a frame ``outbox.pop`` handed out that is now written."""
        counters = self.counters
        counters.messages_sent += 1
        by_type, kind = counters.sent_by_type, outbox.popped_type
        by_type[kind] = by_type.get(kind, 0) + 1
        envelope = outbox.popped
        if envelope is not None:
            self.send_latency.observe(time.monotonic() - envelope.at)

    def _later(self, session: Session, wait: float) -> None:
        """Flush ``session`` again in ``wait`` seconds: one timer per slot of ``WHEEL_GRAIN`` shared by
        every session due then, so a budget wait costs a list append, not a task."""
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + wait) / WHEEL_GRAIN)
        if session.due is not None and session.due <= slot:
            return
        session.due = slot
        due = self._wheel.get(slot)
        if due is None:
            due = self._wheel[slot] = []
            loop.call_at(slot * WHEEL_GRAIN, self._turn, slot)
        due.append(session)

    def _turn(self, slot: int) -> None:
        for session in self._wheel.pop(slot, ()):
            if session.due == slot:  # not moved to an earlier slot meanwhile
                session.due = None
                self.flush(session)

    async def _write(self, session: Session, text: str) -> None:
        """Wait until the socket takes ``text``, then go on writing the outbox while it must be awaited;
        ends as soon as the rest can be written directly or must wait for budget."""
        connection_id.set(session.id)  # this task works for this connection only
        outbox, transport, clock = session.outbox, session.transport, self.clock
        try:
            while True:
                session.send_started = clock.monotonic()
                await transport.send_text(text)
                session.send_started = None
                self._sent(outbox)
                next_text, wait = outbox.pop(clock.monotonic())
                while next_text is not None and transport.write(next_text):
                    self._sent(outbox)
                    next_text, wait = outbox.pop(clock.monotonic())
                if next_text is None:
                    if wait is not None:
                        self._later(session, wait)
                    return
                text = next_text
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket went away under us: close it all, reader included
            log.debug("writer of %s stopped: %r", session.id, exc)
            session.writer = None
            await self.close_session(session, closecodes.INTERNAL_ERROR, "send failed")
        finally:
            if session.writer is asyncio.current_task():
                session.writer = None

    def sweep(self) -> None:
        """Close connections silent for ``stale_after`` or stuck on one write for ``slow_consumer_timeout``."""
        now = self.clock.monotonic()
        wall = self.clock.now().timestamp()
        limits = self.limits
        for session in list(self.sessions.values()):
            if session.closing:
                continue
            if session.expires_at is not None and wall > session.expires_at:
                self._spawn(
                    self.close_session(session, closecodes.UNAUTHORIZED, "token expired"), session=session
                )
            elif (
                session.send_started is not None and now - session.send_started > limits.slow_consumer_timeout
            ):
                self._spawn(
                    self.close_session(
                        session, closecodes.TRY_AGAIN_LATER, "slow consumer: socket not reading"
                    ),
                    session=session,
                )
            elif now - session.last_seen > limits.stale_after:
                self._spawn(
                    self.close_session(
                        session, closecodes.STALE, f"stale: no message for {limits.stale_after:g} seconds"
                    ),
                    session=session,
                )

    # ───────────────────────── fan-out ─────────────────────────

    def deliver(self, envelope: Envelope) -> None:
        """Hand one envelope to every local subscriber of its stream (called by the backplane).

        The common case costs one budget check and one socket write per subscriber, all of the same
        text: the transport frames it once. Only a subscriber with something already pending, no budget
        left or a full socket gets the message queued, and its writer task started.
        """
        self.counters.messages_delivered += 1
        if self.taps:
            for tap in self.taps.get(envelope.type, ()):
                try:
                    tap(envelope)
                except Exception:  # a listener never stops delivery
                    log.exception("tap %r failed", tap)
        subscribers = self._streams.get(envelope.stream)
        if not subscribers:
            return
        delivery = self._delivery[envelope.stream]
        conflate = delivery is Delivery.CONFLATE
        text = envelope.text
        now = self.clock.monotonic()
        written = conflated = deferred = dropped = 0
        waiting: list[Session] = []
        overflowed: list[Session] = []
        gone: list[Session] = []
        for session in subscribers.values():
            outbox = session.outbox
            if outbox.overflowed:
                dropped += 1
                continue  # its close is already on the way
            if session.writer is None:
                pushed = outbox.offer(envelope, delivery, now)
                if pushed is Pushed.WRITE:
                    try:
                        if session.transport.write(text):
                            outbox.wrote(now, conflate)
                            written += 1
                            continue
                    except TransportClosed:
                        gone.append(session)
                        continue
                    pushed = outbox.push(envelope, delivery)  # the socket is busy: queue it
            else:
                pushed = outbox.push(envelope, delivery)
            if pushed is Pushed.QUEUED:
                waiting.append(session)
            elif pushed is Pushed.MERGED:
                conflated += 1
            elif pushed is Pushed.DEFERRED:
                deferred += 1
            elif pushed is Pushed.OVERFLOW:
                overflowed.append(session)
        counters = self.counters
        counters.messages_sent += written
        counters.prices_conflated += conflated
        counters.messages_deferred += deferred
        counters.messages_dropped += dropped
        if written:
            by_type = counters.sent_by_type
            by_type[envelope.type] = by_type.get(envelope.type, 0) + written
            # every direct write of this message happened by now: its latency is at most this
            self.send_latency.observe(time.monotonic() - envelope.at, written)
        for session in waiting:
            self.flush(session)
        for session in gone:
            self.end_session(session)
        for session in overflowed:
            self._spawn(
                self.close_session(
                    session,
                    closecodes.TRY_AGAIN_LATER,
                    f"slow consumer: more than {self.limits.max_pending_messages} messages pending",
                ),
                session=session,
            )

    def _attach(self, session: Session, sub: Subscribed) -> None:
        for stream in sub.streams:
            self._streams.setdefault(stream, {})[session.id] = session
            self._delivery[stream] = sub.spec.delivery
        users = self._channel_users.setdefault(sub.spec.name, {})
        users[session.user_id] = users.get(session.user_id, 0) + 1
        if sub.spec.name == "ticker" and sub.key:
            count = self._tickers.get(sub.key, 0)
            self._tickers[sub.key] = count + 1
            if count == 0 and self.on_new_ticker is not None:
                self.on_new_ticker(sub.key)

    def _detach(self, session: Session, sub: Subscribed) -> None:
        for stream in sub.streams:
            members = self._streams.get(stream)
            if members is not None:
                members.pop(session.id, None)
                if not members:
                    del self._streams[stream]
                    self._delivery.pop(stream, None)
            session.outbox.forget(stream)
        users = self._channel_users.get(sub.spec.name)
        if users is not None:
            left = users.get(session.user_id, 0) - 1
            if left > 0:
                users[session.user_id] = left
            else:
                users.pop(session.user_id, None)
        if sub.spec.name == "ticker" and sub.key:
            left = self._tickers.get(sub.key, 0) - 1
            if left > 0:
                self._tickers[sub.key] = left
            else:
                self._tickers.pop(sub.key, None)

    def tickers(self) -> dict[str, int]:
        """Subscriber count per ticker on this instance: the streamer's interest set."""
        return dict(self._tickers)

    def subscribers(self, stream: str) -> int:
        return len(self._streams.get(stream, ()))

    def subscribed_users(self, channel: str) -> set[str]:
        """The users with a subscription to ``channel`` (any key) on this instance."""
        return set(self._channel_users.get(channel, ()))

    def channel_subscribers(self, channel: str) -> int:
        """Sessions subscribed to ``channel`` (any key)."""
        return sum(
            1
            for session in self.sessions.values()
            if any(s.spec.name == channel for s in session.subscriptions.values())
        )

    # ───────────────────────── client protocol ─────────────────────────

    def _now(self) -> str:
        return iso(self.clock.now())

    def _reply(self, session: Session, message: msgspec.Struct) -> None:
        kind = str(type(message).__struct_config__.tag)
        self._push_control_text(session, encode(message).decode(), kind)

    def _push_control_text(self, session: Session, text: str, kind: str) -> None:
        outbox = session.outbox
        if session.closing or outbox.overflowed:
            return
        if session.writer is None and outbox.idle:
            try:
                if session.transport.write(text):
                    counters = self.counters
                    counters.messages_sent += 1
                    counters.sent_by_type[kind] = counters.sent_by_type.get(kind, 0) + 1
                    return
            except TransportClosed:
                return  # its receive loop ends the session
        if outbox.push_control(text, kind):
            self.flush(session)
        else:
            self._spawn(
                self.close_session(session, closecodes.TRY_AGAIN_LATER, "slow consumer: replies pending"),
                session=session,
            )

    def error(self, session: Session, code: str, message: str) -> None:
        """Send an ``error`` reply (the seed's shape, plus a stable ``code``)."""
        self.counters.errors += 1
        self._reply(session, Error(message=message, code=code, timestamp=self._now()))

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
                await self.close_session(session, closecodes.POLICY_VIOLATION, "inbound rate limit exceeded")
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
            self._reply(session, Pong(timestamp=self._now()))
        elif isinstance(message, Subscribe):
            await self.subscribe(session, message)
        elif isinstance(message, Unsubscribe):
            self.unsubscribe(session, message)

    async def subscribe(self, session: Session, request: Subscribe) -> None:
        """Subscribe, acknowledge, then send each stream's history (what was missed, with ``since``)."""
        try:
            spec, key = self.registry.resolve(request.channel, request.ticker)
        except ChannelError as exc:
            self.error(session, "invalid_subscription", str(exc))
            return
        note: str | None = None
        if spec.name == "ticker" and key and self.ticker_check is not None:
            if await self.ticker_check.unknown(key):
                if not session.closing:
                    name = self.ticker_check.provider.name
                    self.error(
                        session, "unknown_ticker", f"Unknown ticker: {key} (no prices for it from {name})"
                    )
                return
            if self.ticker_check.simulated:
                note = (
                    f"Prices of {key} are simulated (quotes.provider = {self.ticker_check.provider.name!r})"
                )
        if spec.authorize is not None:
            allowed = await self._authorized(spec, session.user_id, key)
            if session.closing:
                return
            if not allowed:
                self.error(session, "not_authorized", f"Not authorized for channel '{spec.name}'")
                return
        sub_key = spec.subscription_key(key)
        if (
            sub_key not in session.subscriptions
            and len(session.subscriptions) >= self.limits.max_subscriptions
        ):
            self.error(
                session,
                "subscription_limit",
                f"Subscription limit reached: at most {self.limits.max_subscriptions} per connection",
            )
            return
        streams = spec.streams(key, session.user_id)
        since = request.since
        since_of: dict[str, int] = {}
        if isinstance(since, int):
            since_of[streams[0]] = since
        elif isinstance(since, dict):
            since_of = {stream: seq for stream, seq in since.items() if stream in streams}
        outbox = session.outbox
        for stream in streams:
            outbox.hold(stream)  # live messages wait until the history reply is queued
        if sub_key not in session.subscriptions:
            sub = Subscribed(spec, key, streams)
            session.subscriptions[sub_key] = sub
            self._attach(session, sub)
            for listener in self.subscribe_listeners:
                try:
                    listener(session.user_id, spec.name, key)
                except Exception:
                    log.exception("subscribe listener %r failed", listener)
        ticker = key if spec.name == "ticker" else None
        self._reply(
            session,
            Subscription(
                action="subscribed",
                channel=spec.name,
                ticker=ticker,
                streams=list(streams),
                timestamp=self._now(),
                note=note,
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
                    await self.close_session(
                        session, closecodes.TRY_AGAIN_LATER, "history unavailable: resume later"
                    )
                    return
                self.error(session, "history_unavailable", f"History unavailable for {stream}: {exc}")
                self.flush(session)
                continue
            if session.closing or sub_key not in session.subscriptions:
                return
            self._reply(
                session,
                History(
                    channel=stream,
                    ticker=ticker,
                    messages=[msgspec.Raw(env.text.encode()) for env in replay.envelopes],
                    seq=replay.last_seq,
                    recovered=None if resume is None else replay.complete,
                    timestamp=self._now(),
                ),
            )
            if (
                spec.delivery is Delivery.STICKY
                and replay.envelopes
                and (resume is None or resume < replay.last_seq)
            ):
                self._push_control_text(session, replay.envelopes[-1].text, replay.envelopes[-1].type)
            if outbox.covered(stream, replay.last_seq) is Pushed.OVERFLOW:
                await self.close_session(
                    session, closecodes.TRY_AGAIN_LATER, "slow consumer: too many messages during subscribe"
                )
                return
            if not outbox.idle:
                self.flush(session)

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
        try:
            spec, key = self.registry.resolve(request.channel, request.ticker)
        except ChannelError as exc:
            self.error(session, "invalid_subscription", str(exc))
            return
        sub_key = spec.subscription_key(key)
        sub = session.subscriptions.pop(sub_key, None)
        if sub is not None:
            self._detach(session, sub)
        self._reply(
            session,
            Subscription(
                action="unsubscribed",
                channel=spec.name,
                ticker=key if spec.name == "ticker" else None,
                streams=list(sub.streams) if sub else [],
                timestamp=self._now(),
            ),
        )

    # ───────────────────────── figures ─────────────────────────

    def figures(self) -> dict[str, int]:
        """This instance's connections and subscriptions (summed across the cluster for stats)."""
        return {
            "connections": len(self.sessions),
            "subscriptions": sum(len(s.subscriptions) for s in self.sessions.values()),
        }

    def uptime(self) -> float:
        return self.clock.monotonic() - self.started_at

    # ───────────────────────── announcements ─────────────────────────

    def send_control(self, message: msgspec.Struct, session: Session | None = None) -> int:
        """Send a control message (``service_status``) to ``session``, or to every session of this
        instance, ahead of its queued channel messages like any reply; returns how many it went to."""
        text, kind = encode(message).decode(), str(type(message).__struct_config__.tag)
        targets = [session] if session is not None else list(self.sessions.values())
        for target in targets:
            self._push_control_text(target, text, kind)
        return len(targets)
