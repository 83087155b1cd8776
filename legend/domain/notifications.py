"""Where alert triggers go besides the WebSocket: a user's destinations (webhooks, Web Push subscriptions,
an e-mail address), what each is sent, and what a send came to. Pure: no I/O.

Each trigger is handed to each of its destinations once in the cluster (a claimed queue in the database):
a send that failed for a reason that may pass (a timeout, a refused connection, 429, 5xx) is tried again
later (``retry_delay``: exponential backoff with full jitter, honouring ``Retry-After``) for up to
``RETRY_FOR``; one the destination refused for good (another 4xx, a forbidden address) fails; a push
subscription the push service no longer knows (404, 410) is removed.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import random
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from legend.domain.timefmt import iso

Channel = Literal["push", "webhook", "email"]
CHANNELS: tuple[Channel, ...] = ("push", "webhook", "email")

RETRY_FOR = timedelta(hours=24)  # a delivery is given up this long after the trigger
FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 3600.0


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    """A URL that receives a signed POST per trigger; ``secret`` signs it (``signature``)."""

    id: int
    user_id: str
    url: str
    secret: str
    created_at: datetime


class PushSubscription(msgspec.Struct, frozen=True, kw_only=True):
    """A browser's Web Push subscription (its PushSubscription JSON): the push service's endpoint and the
    keys the payload is encrypted to (RFC 8291), base64url."""

    id: int
    user_id: str
    endpoint: str
    p256dh: str
    auth: str
    created_at: datetime


class EmailAddress(msgspec.Struct, frozen=True, kw_only=True):
    """An address that receives one e-mail per trigger."""

    id: int
    user_id: str
    address: str
    created_at: datetime


Destination = Webhook | PushSubscription | EmailAddress


def channel_of(destination: Destination) -> Channel:
    if isinstance(destination, Webhook):
        return "webhook"
    if isinstance(destination, PushSubscription):
        return "push"
    return "email"


class AlertPayload(msgspec.Struct, frozen=True, kw_only=True):
    """What every channel carries of a trigger. ``alert_id`` (``{rule_id}:{n}``) is unique: receivers use
    it as the idempotency key."""

    alert_id: str
    rule_id: int | None
    ticker: str
    alert_type: str
    threshold: float
    value: float
    trigger_price: float
    current_price: float
    message: str
    triggered_at: datetime

    def body(self) -> bytes:
        """The JSON a webhook receives (and a push message carries): the fields, the time in ISO-8601."""
        return msgspec.json.encode({**msgspec.structs.asdict(self), "triggered_at": iso(self.triggered_at)})


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # may pass: try again later
    FAILED = "failed"  # refused for good
    REMOVED = "removed"  # the destination is gone (a push subscription the browser dropped)


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one attempt came to; ``retry_after``: seconds the receiver asked to wait (Retry-After)."""

    outcome: Outcome
    error: str | None = None
    status: int | None = None
    retry_after: float | None = None


DeliveryStateName = Literal["pending", "retrying", "delivered", "failed", "removed"]


class DeliveryState(msgspec.Struct, frozen=True, kw_only=True):
    """Where one trigger's delivery to one destination stands (``GET /api/alerts/events``)."""

    channel: Channel
    destination_id: int
    state: DeliveryStateName
    attempts: int = 0
    next_attempt_at: datetime | None = None  # when retrying (or pending)
    error: str | None = None  # the last attempt's, when it did not deliver
    delivered_at: datetime | None = None


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """A claimed delivery: one trigger to one destination (None: the destination was deleted meanwhile)."""

    id: int
    channel: Channel
    destination_id: int
    attempts: int
    destination: Destination | None
    payload: AlertPayload
    user_id: str


def after_attempt(
    delivery: Delivery, result: SendResult, now: datetime, rng: random.Random | None = None
) -> DeliveryState:
    """The state an attempt leaves a delivery in: delivered, removed, failed (refused for good, or still
    failing ``RETRY_FOR`` after the trigger), or retrying at the next time of the schedule."""
    attempts = delivery.attempts + 1
    common = {"channel": delivery.channel, "destination_id": delivery.destination_id, "attempts": attempts}
    if result.outcome is Outcome.DELIVERED:
        return DeliveryState(state="delivered", delivered_at=now, **common)  # type: ignore[arg-type]
    if result.outcome is Outcome.REMOVED:
        return DeliveryState(state="removed", error=result.error, **common)  # type: ignore[arg-type]
    if result.outcome is Outcome.RETRY:
        at = now + timedelta(seconds=retry_delay(attempts, result.retry_after, rng))
        if at < delivery.payload.triggered_at + RETRY_FOR:
            return DeliveryState(state="retrying", next_attempt_at=at, error=result.error, **common)  # type: ignore[arg-type]
        error = f"gave up after {RETRY_FOR.total_seconds() / 3600:.0f} h: {result.error}"
        return DeliveryState(state="failed", error=error, **common)  # type: ignore[arg-type]
    return DeliveryState(state="failed", error=result.error, **common)  # type: ignore[arg-type]


def retry_delay(attempts: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: full jitter over an exponential
    backoff (5 s, 10 s, 20 s ... at most an hour), never sooner than the receiver's ``Retry-After``."""
    ceiling = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1))
    delay = (rng or random).uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_SECONDS))
    return delay


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Legend-Signature`` header of a webhook (as Stripe signs): ``t=<unix seconds>,v1=<hex
    HMAC-SHA256 of "<t>.<raw body>" with the webhook's secret>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"
