"""The senders of alert notifications: one per channel (webhook, Web Push, e-mail), each an adapter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from legend.domain.notifications import (
    AlertPayload,
    Channel,
    Delivery,
    DeliveryState,
    Destination,
    SendResult,
)


class Sender(Protocol):
    """Sends one trigger to one destination of its channel. Never raises for what the destination or the
    network did (that is the ``SendResult``: delivered, retry, failed, removed); bounded in time (a slow
    receiver costs its own delivery, never another's)."""

    channel: Channel

    async def send(self, destination: Destination, payload: AlertPayload) -> SendResult: ...

    async def close(self) -> None:
        """Release connections (at shutdown)."""
        ...


class NotificationRepository(Protocol):
    """The users' destinations and the delivery queue (``adapters.sql.notifications``)."""

    async def add(
        self, channel: Channel, user_id: str, fields: dict[str, str], now: datetime
    ) -> Destination: ...

    async def destinations(self, user_id: str) -> list[Destination]: ...

    async def destination(
        self, channel: Channel, user_id: str, destination_id: int
    ) -> Destination | None: ...

    async def remove(self, channel: Channel, user_id: str, destination_id: int) -> bool:
        """Delete a destination of the user's; its open deliveries end ``removed``."""
        ...

    async def plan(self, now: datetime, limit: int) -> int:
        """Plan the deliveries of up to ``limit`` new triggers; how many deliveries."""
        ...

    async def claim_due(
        self, owner: str, now: datetime, until: datetime, limit: int, skip: Sequence[tuple[str, int]] = ()
    ) -> list[Delivery]:
        """Claim up to ``limit`` due deliveries, none to the destinations in ``skip``."""
        ...

    async def record(self, owner: str, outcomes: Sequence[tuple[int, DeliveryState]], now: datetime) -> int:
        """Store attempts' outcomes (delivery id, state) in one go, those ``owner`` still claims; how many."""
        ...

    async def release(self, owner: str, delivery_ids: Sequence[int]) -> None:
        """Give claims back unsent."""
        ...

    async def deliveries(self, event_ids: Sequence[int]) -> dict[int, list[DeliveryState]]: ...

    async def key(self, name: str, make: str, now: datetime) -> str:
        """The shared server key ``name`` (``make`` stored when there is none)."""
        ...
