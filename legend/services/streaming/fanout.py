"""Fan-out: one envelope written to every local subscriber of its stream, in one loop.

Fan-out writes the one text the backplane made to every subscriber's socket without a task switch per
connection. A connection that cannot take a message now (budget spent, socket full, history being read)
gets it queued in its outbox and a writer task of its own until the outbox is empty, so a slow socket only
ever delays itself. A budget wait costs no task either: it is a slot on one timer wheel shared by every
session due then.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable

from legend.domain import closecodes
from legend.domain.envelope import Envelope
from legend.domain.events import MessageDelivered
from legend.domain.filters import message_fields
from legend.domain.stats import Counters, LatencyHistogram
from legend.ports.clock import Clock
from legend.ports.transport import TransportClosed
from legend.runtime.logcontext import connection_id
from legend.runtime.message_bus import MessageBus
from legend.services.streaming.outbox import CONFLATE, DEFERRED, MERGED, OVERFLOW, QUEUED, WRITE, Outbox
from legend.services.streaming.session import Session, SessionOwner
from legend.services.streaming.subscriptions import FilterGroup, SubscriptionIndex

log = logging.getLogger("legend.streaming")

WHEEL_GRAIN = 0.005  # seconds: budget waits end on a 5 ms timer slot shared by every session due then


class Fanout:
    """Delivers envelopes and replies to the sessions of one instance, and counts what it wrote."""

    def __init__(
        self,
        owner: SessionOwner,
        index: SubscriptionIndex,
        clock: Clock,
        counters: Counters,
        max_pending: int,
        bus: MessageBus | None = None,
    ) -> None:
        self.owner = owner  # closes the sessions that overflow or whose socket fails
        self.clock = clock
        self.counters = counters
        self.max_pending = max_pending
        self.send_latency = LatencyHistogram()  # reaching this instance -> written to a socket
        # Every envelope is announced as it reaches this instance (``MessageDelivered``: plugins see the
        # prices on every instance of a cluster); once per message, never per connection.
        self._bus = bus if bus is not None else MessageBus()
        self._members = index.members  # the index changes them in place: read here for every message
        self._delivery = index.delivery
        self._groups = index.groups
        self._ordered = index.ordered
        self._wheel: dict[int, list[Session]] = {}  # timer slot -> sessions waiting for budget then

    def deliver(self, envelope: Envelope) -> None:
        """Hand one envelope to every local subscriber of its stream (called by the backplane).

        The common case costs one budget check and one socket write per subscriber, all of the same
        text: the transport frames it once. Only a subscriber with something already pending, no budget
        left or a full socket gets the message queued, and its writer task started.
        """
        self.counters.messages_delivered += 1
        bus = self._bus
        if bus.wants(MessageDelivered):  # a handler that raises is logged by the bus: delivery goes on
            bus.publish(MessageDelivered(envelope))
        subscribers: Iterable[Session] | None
        members = self._members.get(envelope.stream)
        groups = self._groups.get(envelope.stream)
        if groups is not None:
            subscribers = self._matching(envelope, self._ordered[envelope.stream], groups)
        elif members:
            subscribers = members.values()
        else:
            return
        delivery = self._delivery[envelope.stream]
        conflate = delivery is CONFLATE and not envelope.final  # a final one is must-deliver
        text = envelope.text
        now = self.clock.monotonic()
        written = conflated = deferred = dropped = 0
        waiting: list[Session] = []
        overflowed: list[Session] = []
        gone: list[Session] = []
        for session in subscribers:
            outbox = session.outbox
            if outbox.overflowed:
                dropped += 1
                continue  # its close is already on the way
            if session.writer is None:
                pushed = outbox.offer(envelope, delivery, now)
                if pushed is WRITE:  # its budget is taken
                    try:
                        if session.transport.write(text):
                            written += 1
                            continue
                    except TransportClosed:
                        gone.append(session)
                        continue
                    outbox.refund(conflate)
                    pushed = outbox.push(envelope, delivery)  # the socket is busy: queue it
            else:
                pushed = outbox.push(envelope, delivery)
            if pushed is QUEUED:
                waiting.append(session)
            elif pushed is MERGED:
                conflated += 1
            elif pushed is DEFERRED:
                deferred += 1
            elif pushed is OVERFLOW:
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
            self.owner.end_session(session)
        for session in overflowed:
            reason = session.outbox.overflow_reason or f"more than {self.max_pending} messages pending"
            self.owner.close_later(session, closecodes.TRY_AGAIN_LATER, f"slow consumer: {reason}")

    def _matching(
        self,
        envelope: Envelope,
        ordered: dict[str, tuple[Session, FilterGroup | None]],
        groups: dict[str, FilterGroup],
    ) -> list[Session]:
        """The unfiltered subscribers and those whose filter matches, in the order they subscribed: the
        message is decoded once and each distinct filter evaluated once, however many connections share
        it. A subscriber it does not match is not offered it at all: no budget, no queue space."""
        message = message_fields(envelope.text)  # decoded once, whatever the number of filters
        for group in groups.values():
            group.hit = group.matches(message)
        subscribers = [session for session, group in ordered.values() if group is None or group.hit]
        self.counters.messages_filtered += len(ordered) - len(subscribers)
        return subscribers

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
                self.owner.end_session(session)  # its receive loop ends too
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
            await self.owner.close_session(session, closecodes.INTERNAL_ERROR, "send failed")
        finally:
            if session.writer is asyncio.current_task():
                session.writer = None

    def push_control(self, session: Session, text: str, kind: str) -> None:
        """Send a control frame (a reply, ``service_status``) ahead of the session's queued channel
        messages: written at once when nothing waits, else queued first."""
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
            reason = outbox.overflow_reason or "replies pending"
            self.owner.close_later(session, closecodes.TRY_AGAIN_LATER, f"slow consumer: {reason}")
