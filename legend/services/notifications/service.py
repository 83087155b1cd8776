"""Alert delivery to the users' destinations (webhooks, Web Push, e-mail): each trigger to each destination
once in the cluster, every attempt accounted for, never in the way of evaluation or the fan-out.

Every instance runs the loop; the database hands each delivery to one of them at a time (a claim that
expires, so that a sender's crash resumes elsewhere or after its restart). A round plans the deliveries of
new triggers and claims as many due ones as there are free sending slots (``concurrency``); each is sent
in a task of its own, bounded by its sender's timeout, so a slow or dead receiver holds one slot and
delays its own deliveries only, never a round. What the attempts came to is stored in batches (one
transaction every ``RECORD_SECONDS`` at most) by the claims' owner (``after_attempt``: delivered, retrying
on the schedule, failed, removed).
A delivery claimed when its sender died is sent again: the receiver tells it by the ``alert_id``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import timedelta

from legend.domain.notifications import (
    AlertPayload,
    Channel,
    Delivery,
    DeliveryState,
    Destination,
    Outcome,
    SendResult,
    after_attempt,
    channel_of,
)
from legend.ports.clock import Clock
from legend.ports.notifications import NotificationRepository, Sender

log = logging.getLogger("legend.notifications")

BATCH = 100  # triggers planned, and deliveries claimed, per round at most
RECORD_SECONDS = 0.05  # outcomes wait at most this long to be stored together


class DeliveryFigures:
    """Counts and latency per channel, for stats and /metrics."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}
        self.failures: dict[str, int] = {}  # attempts that did not deliver
        self.seconds: dict[str, float] = {}  # total time of the attempts
        self.planned = 0

    def took(self, channel: str, delivered: bool, seconds: float) -> None:
        self.attempts[channel] = self.attempts.get(channel, 0) + 1
        if not delivered:
            self.failures[channel] = self.failures.get(channel, 0) + 1
        self.seconds[channel] = self.seconds.get(channel, 0.0) + seconds


class NotificationService:
    """The delivery loop (``run``) and the test sends of ``POST /api/notifications/.../test``."""

    def __init__(
        self,
        repository: NotificationRepository,
        senders: Mapping[Channel, Sender],
        clock: Clock,
        *,
        instance_id: str,
        interval: float = 1.0,
        claim_seconds: float = 60.0,
        concurrency: int = 64,
        per_destination: int = 2,
    ) -> None:
        self.repository = repository
        self.senders = dict(senders)
        self.clock = clock
        self.instance_id = instance_id
        self.interval = interval
        self.claim = timedelta(seconds=claim_seconds)  # longer than any one send (its sender's timeout)
        self.concurrency = concurrency
        self.per_destination = per_destination  # sends in flight to one destination, at most
        self._busy: dict[tuple[str, int], int] = {}  # (channel, destination id) -> sends in flight
        self._sending: set[asyncio.Task[None]] = set()
        self._outcomes: list[tuple[Delivery, DeliveryState]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._unrecorded: set[int] = set()  # deliveries being sent or whose outcome is not stored yet
        self.figures = DeliveryFigures()
        self.rounds = 0
        self.failures = 0
        self.last_error: str | None = None

    async def run(self) -> None:
        """Forever: a round, then a pause of ``interval`` (shorter while there is more to do)."""
        while True:
            try:
                busy = await self.round(wait=False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database blinked: the claims expire, nothing is lost
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("alert delivery round failed (%s)", self.last_error)
                busy = False
            await asyncio.sleep(0.05 if busy else self.interval)

    async def round(self, wait: bool = True) -> bool:
        """Plan new triggers and start sending what is due, in as many free slots as there are; whether
        it filled them (there may be more). ``wait``: until what it started is sent and stored (the loop
        does not wait: the next round fills the slots that free up)."""
        now = self.clock.now()
        self.figures.planned += await self.repository.plan(now, BATCH)
        free = min(BATCH, self.concurrency - len(self._sending))
        full = [key for key, count in self._busy.items() if count >= self.per_destination]
        claimed = (
            await self.repository.claim_due(self.instance_id, now, now + self.claim, free, full)
            if free > 0
            else []
        )
        # one this instance is still sending (or storing) comes back if its claim ran out: never sent twice
        due, unsent = self._within_caps([d for d in claimed if d.id not in self._unrecorded])
        await self.repository.release(self.instance_id, [delivery.id for delivery in unsent])
        self._unrecorded.update(delivery.id for delivery in due)
        started = [asyncio.create_task(self._deliver(delivery)) for delivery in due]
        for task in started:
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        self.rounds += 1
        if wait and started:
            await asyncio.gather(*started)
            await self._flush()
        return (free > 0 and len(claimed) == free) or len(self._sending) >= self.concurrency

    def _within_caps(self, due: list[Delivery]) -> tuple[list[Delivery], list[Delivery]]:
        """The claimed deliveries to send now, at most ``per_destination`` in flight to each destination (a
        dead receiver holds two slots, not all of them), and those to give back for a later round."""
        taken, unsent = [], []
        for delivery in due:
            key = (delivery.channel, delivery.destination_id)
            if self._busy.get(key, 0) < self.per_destination:
                self._busy[key] = self._busy.get(key, 0) + 1
                taken.append(delivery)
            else:
                unsent.append(delivery)
        return taken, unsent

    async def _deliver(self, delivery: Delivery) -> None:
        key = (delivery.channel, delivery.destination_id)
        try:
            result = await self.send(delivery.channel, delivery.destination, delivery.payload)
        finally:
            left = self._busy.get(key, 1) - 1
            if left > 0:
                self._busy[key] = left
            else:
                self._busy.pop(key, None)
        self._outcomes.append((delivery, after_attempt(delivery, result, self.clock.now())))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_soon())

    async def _record_soon(self) -> None:
        await asyncio.sleep(RECORD_SECONDS)
        await self._flush()

    async def _flush(self) -> None:
        """Store the outcomes gathered so far in one transaction; remove the destinations found gone."""
        outcomes, self._outcomes = self._outcomes, []
        if not outcomes:
            return
        try:
            stored = await self.repository.record(
                self.instance_id, [(delivery.id, state) for delivery, state in outcomes], self.clock.now()
            )
        except Exception as exc:  # the claims run out and the deliveries are sent again: never lost
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "alert delivery: %d outcomes could not be stored (%s)", len(outcomes), self.last_error
            )
            return
        finally:
            self._unrecorded.difference_update(delivery.id for delivery, _ in outcomes)
        if stored < len(outcomes):
            log.warning(
                "alert delivery: %d claims ran out before their attempts were stored", len(outcomes) - stored
            )
        for delivery, state in outcomes:
            if state.state == "removed" and delivery.destination is not None:
                await self.repository.remove(delivery.channel, delivery.user_id, delivery.destination_id)

    async def send(
        self, channel: Channel, destination: Destination | None, payload: AlertPayload
    ) -> SendResult:
        """One attempt, timed and counted; never raises."""
        sender = self.senders.get(channel)
        if destination is None:
            return SendResult(outcome=Outcome.REMOVED, error="the destination was deleted")
        if sender is None:
            return SendResult(
                outcome=Outcome.FAILED, error=f"{channel} delivery is not configured on this server"
            )
        started = time.monotonic()
        try:
            result = await sender.send(destination, payload)
        except Exception as exc:  # a sender's bug must not stop the loop; the attempt counts as failing
            log.exception("alert delivery: the %s sender failed", channel)
            result = SendResult(outcome=Outcome.RETRY, error=f"{type(exc).__name__}: {exc}")
        self.figures.took(channel, result.outcome is Outcome.DELIVERED, time.monotonic() - started)
        return result

    async def test(self, destination: Destination) -> SendResult:
        """A test message to one destination, now (not queued, not retried)."""
        now = self.clock.now()
        payload = AlertPayload(
            alert_id=f"test:{destination.id}:{int(now.timestamp())}",
            rule_id=None,
            ticker="TEST",
            alert_type="test",
            threshold=0.0,
            value=0.0,
            trigger_price=0.0,
            current_price=0.0,
            message="Legend Realtime: a test of this destination",
            triggered_at=now,
        )
        return await self.send(channel_of(destination), destination, payload)

    async def close(self) -> None:
        """Stop sending (what is under way is sent again once its claim runs out), store what is known."""
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self._flush()
        for sender in self.senders.values():
            await sender.close()

    def status(self) -> dict[str, object]:
        figures = self.figures
        return {
            "channels": sorted(self.senders),
            "rounds": self.rounds,
            "planned": figures.planned,
            "attempts": dict(figures.attempts),
            "failures": dict(figures.failures),
            "round_failures": self.failures,
            "last_error": self.last_error,
        }
