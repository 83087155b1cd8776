"""Counters of one server instance, kept by the domain and shown by ``GET /api/ws/stats``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Counters:
    """Monotonic counters since start."""

    total_connections: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    errors: int = 0  # error replies sent plus transport failures
    messages_published: int = 0
    messages_delivered: int = 0  # envelopes fanned out to this instance's hub
    prices_conflated: int = 0
    publish_failures: int = 0
    slow_consumers_closed: int = 0
    connections_aborted: int = 0  # dropped without a close handshake: the peer did not take the close
    stale_connections_closed: int = 0
    inbound_rejected: int = 0
    flood_closed: int = 0
    auth_rejected: int = 0
