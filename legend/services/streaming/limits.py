"""Per-connection limits of the streaming service."""

from __future__ import annotations

import msgspec


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-connection limits (see ``[realtime]`` in the settings reference)."""

    max_messages_per_second: int = 10
    max_subscriptions: int = 50
    max_frame_bytes: int = 4096
    inbound_rate: float = 20.0
    inbound_burst: int = 40
    stale_after: float = 60.0
    max_pending_messages: int = 1000
    max_pending_bytes: int = 1024 * 1024
    slow_consumer_timeout: float = 15.0
    close_timeout: float = 3.0
    price_share: int | None = None  # prices sent per second whatever else is queued (None: half the budget)
