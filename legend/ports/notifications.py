"""The senders of alert notifications: one per channel (webhook, Web Push, e-mail), each an adapter."""

from __future__ import annotations

from typing import Protocol

from legend.domain.notifications import AlertPayload, Channel, Destination, SendResult


class Sender(Protocol):
    """Sends one trigger to one destination of its channel. Never raises for what the destination or the
    network did (that is the ``SendResult``: delivered, retry, failed, removed); bounded in time (a slow
    receiver costs its own delivery, never another's)."""

    channel: Channel

    async def send(self, destination: Destination, payload: AlertPayload) -> SendResult: ...

    async def close(self) -> None:
        """Release connections (at shutdown)."""
        ...
