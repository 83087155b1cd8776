"""The streaming service of one instance: its sessions, and the parts that serve them.

``StreamingService`` is what the edges use (the WebSocket adapter, bootstrap, plugins). It owns the
sessions (connect, admission, close, the sweep of stale, stuck and expired ones) and builds the parts it
hands them to: the ``SubscriptionIndex`` (who is subscribed to what), the ``Fanout`` (envelopes to
sockets, the hot path) and the ``ClientProtocol`` (client frames and replies).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import msgspec

from legend.domain import closecodes
from legend.domain.channels import ChannelRegistry
from legend.domain.messages import Connection, encode
from legend.domain.stats import Counters, LatencyHistogram
from legend.domain.throttle import TokenBucket
from legend.domain.timefmt import iso
from legend.ports.backplane import Backplane
from legend.ports.clock import Clock
from legend.ports.transport import Transport
from legend.runtime.logcontext import HOSTILE, connection_id
from legend.runtime.message_bus import MessageBus
from legend.services.streaming.admission import Admission, Refusal
from legend.services.streaming.client_protocol import ClientProtocol
from legend.services.streaming.drain import RECONNECT_GRACE, drain_schedule, going_away_reason
from legend.services.streaming.fanout import Fanout
from legend.services.streaming.limits import Limits
from legend.services.streaming.outbox import Outbox
from legend.services.streaming.session import Session
from legend.services.streaming.subscriptions import SubscriptionIndex
from legend.services.streaming.ticker_check import TickerCheck
from legend.services.streaming.watchlist_follower import LoadWatchlist, WatchlistFollower

log = logging.getLogger("legend.streaming")

FULL_LOG_INTERVAL = 60.0  # seconds: reaching max_connections is logged at most this often
RELEASE_WAIT = 1.0  # seconds a drain waits for its closed connections' releases before it stops

_CLOSE_COUNTERS = {
    closecodes.TRY_AGAIN_LATER: "slow_consumers_closed",
    closecodes.STALE: "stale_connections_closed",
    closecodes.POLICY_VIOLATION: "flood_closed",
}


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
        bus: MessageBus | None = None,
        watchlists: LoadWatchlist | None = None,
    ) -> None:
        self.backplane = backplane
        self.registry = registry
        self.clock = clock
        self.limits = limits
        self.counters = counters or Counters()
        self.admission = admission  # connection limits; None: every connection is admitted
        self.sessions: dict[str, Session] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # what happens here is announced on ``bus``: new subscriptions, and each envelope delivered
        self.bus = bus if bus is not None else MessageBus()
        self.index = SubscriptionIndex(self.bus)
        self.fanout = Fanout(self, self.index, clock, self.counters, limits.max_pending_messages, self.bus)
        # ``watchlists``: a user's tickers, for the subscription filters that follow the watchlist
        self.watchlists = WatchlistFollower(watchlists, self.bus)
        self.protocol = ClientProtocol(
            self,
            self.index,
            self.fanout,
            backplane,
            registry,
            clock,
            limits,
            self.counters,
            ticker_check,
            self.watchlists,
        )
        self.started_at = clock.monotonic()
        self.draining = False  # stopping: new connections are refused with 1001, /ready answers 503
        # WebSocket connections this process holds at most (server.max_connections, or what its descriptor
        # limit leaves room for); 0: no cap. ``held`` counts them from the handshake to the handler's end.
        self.max_connections = 0
        self.held = 0
        self._full_logged = float("-inf")

    @property
    def send_latency(self) -> LatencyHistogram:
        """Seconds from a message reaching this instance to its write to a socket (the fan-out's)."""
        return self.fanout.send_latency

    # ───────────────────────── lifecycle ─────────────────────────

    async def start(self) -> None:
        self.draining = False
        await self.backplane.start(self.fanout.deliver)

    async def drain(
        self,
        window: float,
        reason: str | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """Stop taking connections and close every session with 1001, one by one over ``window`` seconds
        (``drain_schedule``), in a random order; then what ``shutdown`` does. Each address's closed
        connections are announced to the cluster first, so that their reconnects count as no flood."""
        self.draining = True
        reason = reason or going_away_reason()
        started = self.clock.monotonic()  # the schedule counts from here, the announcement included
        sessions = [session for session in self.sessions.values() if not session.closing]
        random.shuffle(sessions)
        if self.admission is not None:
            addresses = Counter(session.address for session in sessions if session.address is not None)
            await self.admission.expect_reconnects(addresses, window + RECONNECT_GRACE)
        if sessions:
            log.info("draining %d connections over %.1f s", len(sessions), window)
        closing: list[asyncio.Task[None]] = []
        for offset, session in zip(drain_schedule(len(sessions), window), sessions, strict=True):
            wait = started + offset - self.clock.monotonic()
            if wait > 0:
                await sleep(wait)
            if session.closing:
                continue
            self.counters.drained += 1
            closing.append(asyncio.ensure_future(self.close_session(session, closecodes.GOING_AWAY, reason)))
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)
        # Let the closed connections' releases reach the registry (``shutdown`` cancels what is left):
        # a registration left behind counts against max_connections_per_ip until it expires.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=RELEASE_WAIT)
        await self.shutdown(reason=reason)

    async def shutdown(self, code: int = closecodes.GOING_AWAY, reason: str | None = None) -> None:
        """Close every session at once with ``code`` (1001 by default) and wait for the closes, bounded."""
        self.draining = True
        reason = reason or going_away_reason()
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

    @property
    def full(self) -> bool:
        """At ``max_connections``: new connections are refused and ``/ready`` answers 503 \"full\"."""
        return 0 < self.max_connections <= self.held

    def hold(self) -> bool:
        """Take a place for a new connection, before anything else is spent on it; False (counted in
        ``refused_full``) when the process is full. A place taken is given back with ``let_go``."""
        if self.full:
            self.counters.refused_full += 1
            return False
        self.held += 1
        now = self.clock.monotonic()
        if self.held == self.max_connections and now - self._full_logged > FULL_LOG_INTERVAL:
            self._full_logged = now
            log.warning("full: %d connections; new ones are refused (HTTP 503) until some leave", self.held)
        return True

    def let_go(self) -> None:
        self.held -= 1

    async def connect(
        self, transport: Transport, user_id: str, address: str, expires_at: float | None = None
    ) -> Session | Refusal:
        """A new connection from ``address``: refused when over a connection limit (the caller closes
        it with the refusal's code and reason), else opened as ``open_session`` does."""
        if self.draining:  # this instance is stopping: come back, to another one
            return Refusal(going_away_reason(), closecodes.GOING_AWAY)
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
            outbox=Outbox(
                limits.max_messages_per_second,
                limits.max_pending_messages,
                limits.price_share,
                limits.max_pending_bytes,
            ),
            inbound=TokenBucket(limits.inbound_rate, limits.inbound_burst, now),
            now=now,
        )
        session.expires_at = expires_at
        self.sessions[session.id] = session
        self.counters.total_connections += 1
        check = self.protocol.ticker_check
        self.protocol.reply(
            session,
            Connection(
                status="connected",
                connection_id=session.id,
                user_id=user_id,
                timestamp=iso(self.clock.now()),
                heartbeat_timeout=limits.stale_after,
                quote_provider=check.provider.name if check is not None else None,
                simulated_prices=check.simulated if check is not None else False,
            ),
        )
        return session

    def end_session(self, session: Session) -> None:
        """Forget a session whose socket is gone (or is being closed); frames still arriving are ignored."""
        session.closing = True
        if self.sessions.pop(session.id, None) is None:
            return
        for sub in session.subscriptions.values():
            self.index.detach(session, sub)
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

    def close_later(self, session: Session, code: int, reason: str) -> None:
        """``close_session`` in a task of its own, for callers that must not wait (the fan-out)."""
        self._spawn(self.close_session(session, code, reason), session=session)

    def sweep(self) -> None:
        """Close connections silent for ``stale_after`` or stuck on one write for ``slow_consumer_timeout``."""
        now = self.clock.monotonic()
        wall = self.clock.now().timestamp()
        limits = self.limits
        for session in list(self.sessions.values()):
            if session.closing:
                continue
            if session.expires_at is not None and wall > session.expires_at:
                self.close_later(session, closecodes.UNAUTHORIZED, "token expired")
            elif (
                session.send_started is not None and now - session.send_started > limits.slow_consumer_timeout
            ):
                self.close_later(session, closecodes.TRY_AGAIN_LATER, "slow consumer: socket not reading")
            elif now - session.last_seen > limits.stale_after:
                self.close_later(
                    session, closecodes.STALE, f"stale: no message for {limits.stale_after:g} seconds"
                )

    # ───────────────────────── the parts, for the edges ─────────────────────────

    async def handle_frame(self, session: Session, frame: str | bytes) -> None:
        """Act on one client frame (``ClientProtocol.handle_frame``)."""
        await self.protocol.handle_frame(session, frame)

    def tickers(self) -> dict[str, int]:
        """Subscriber count per ticker on this instance: the quote poller's interest set."""
        return self.index.tickers()

    def subscribers(self, stream: str) -> int:
        return self.index.subscribers(stream)

    def subscribed_users(self, channel: str) -> set[str]:
        """The users with a subscription to ``channel`` (any key) on this instance."""
        return self.index.subscribed_users(channel)

    def channel_subscribers(self, channel: str) -> int:
        """Sessions subscribed to ``channel`` (any key)."""
        return sum(
            1
            for session in self.sessions.values()
            if any(s.spec.name == channel for s in session.subscriptions.values())
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
            self.fanout.push_control(target, text, kind)
        return len(targets)
