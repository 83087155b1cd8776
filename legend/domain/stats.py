"""Counters of one server instance, kept by the domain and shown by ``GET /api/ws/stats`` and ``/metrics``."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# Upper bounds (seconds) of the delivery latency histogram; a last bucket takes everything above.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


@dataclass(slots=True)
class Counters:
    """Monotonic counters since start."""

    total_connections: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    errors: int = 0  # error replies sent plus transport failures
    messages_published: int = 0
    messages_delivered: int = 0  # envelopes fanned out to this instance's hub
    prices_conflated: int = 0  # pending prices replaced by a newer one before they were sent
    messages_deferred: int = 0  # held while a subscription's history was read, or already in it
    messages_dropped: int = 0  # not queued for a connection that is being closed (overflowed)
    messages_filtered: int = 0  # not sent to a subscriber whose subscription filter it did not match
    publish_failures: int = 0
    slow_consumers_closed: int = 0
    connections_aborted: int = 0  # dropped without a close handshake: the peer did not take the close
    stale_connections_closed: int = 0
    inbound_rejected: int = 0
    flood_closed: int = 0
    auth_rejected: int = 0
    refused_user_limit: int = 0  # closed 4429: the user held max_connections_per_user already
    refused_address_limit: int = 0  # closed 4429: the address held max_connections_per_ip already
    refused_connect_rate: int = 0  # closed 4429: the address opened connections too fast
    refused_full: int = 0  # HTTP 503 before the upgrade: the process held server.max_connections already
    drained: int = 0  # closed 1001 one by one by a drain (the instance was stopping)
    drain_reconnects: int = 0  # admitted over the connect rate: a reconnect a draining instance announced
    sent_by_type: dict[str, int] = field(default_factory=dict)  # frames written, per message type
    received_by_type: dict[str, int] = field(default_factory=dict)  # client frames, per type ("invalid")


class LatencyHistogram:
    """How long messages took from reaching this instance to being written to a socket: per bucket of
    ``LATENCY_BUCKETS`` (not cumulative), with their sum and count."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float, times: int = 1) -> None:
        """``times`` messages that each took ``seconds``."""
        seconds = max(seconds, 0.0)
        self.counts[bisect_left(self.bounds, seconds)] += times
        self.sum += seconds * times
        self.count += times

    def quantile(self, q: float) -> float | None:
        """An upper bound of the ``q`` quantile (the bound of its bucket); None before any observation."""
        if not self.count:
            return None
        rank, seen = q * self.count, 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            seen += count
            if seen >= rank:
                return bound
        return float("inf")
