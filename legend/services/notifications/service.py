"""Alert delivery to the users' destinations (webhooks, Web Push, e-mail): each trigger to each destination
once in the cluster, every attempt accounted for, never in the way of evaluation or the fan-out.

Every instance runs the loop; the database hands each delivery to one of them at a time (a claim that
expires, so that a sender's crash resumes elsewhere or after its restart). A round plans the deliveries of
new triggers, claims those due, and sends them concurrently (``concurrency`` at most), each bounded by its
sender's timeout: a slow or dead receiver delays its own deliveries only. What an attempt came to is
stored with the claim's owner (``after_attempt``: delivered, retrying on the schedule, failed, removed).
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
        concurrency: int = 32,
    ) -> None:
        self.repository = repository
        self.senders = dict(senders)
        self.clock = clock
        self.instance_id = instance_id
        self.interval = interval
        self.claim = timedelta(seconds=claim_seconds)  # longer than any one send (its sender's timeout)
        self._slots = asyncio.Semaphore(concurrency)
        self.figures = DeliveryFigures()
        self.rounds = 0
        self.failures = 0
        self.last_error: str | None = None

    async def run(self) -> None:
        """Forever: a round, then a pause of ``interval`` (shorter while there is more to do)."""
        while True:
            try:
                busy = await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database blinked: the claims expire, nothing is lost
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("alert delivery round failed (%s)", self.last_error)
                busy = False
            await asyncio.sleep(0.05 if busy else self.interval)

    async def round(self) -> bool:
        """Plan new triggers, send what is due; whether a full batch was taken (there may be more)."""
        now = self.clock.now()
        self.figures.planned += await self.repository.plan(now, BATCH)
        due = await self.repository.claim_due(self.instance_id, now, now + self.claim, BATCH)
        if due:
            await asyncio.gather(*(self._deliver(delivery) for delivery in due))
        self.rounds += 1
        return len(due) == BATCH

    async def _deliver(self, delivery: Delivery) -> None:
        async with self._slots:
            result = await self.send(delivery.channel, delivery.destination, delivery.payload)
        state = after_attempt(delivery, result, self.clock.now())
        if not await self.repository.record(delivery.id, self.instance_id, state, self.clock.now()):
            log.warning("alert delivery %d: the claim ran out before the attempt was stored", delivery.id)
        if (
            state.state == "removed"
            and delivery.destination is not None
            and result.outcome is Outcome.REMOVED
        ):
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
