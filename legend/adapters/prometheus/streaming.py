"""The streaming service's figures: connections and why they closed, subscriptions per channel, outboxes,
messages by type, and the delivery latency histogram. ``sessions`` is the one part of a scrape whose cost
grows with the load (one pass over the open connections)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from legend.adapters.prometheus.families import by_label, counter, gauge, le_label
from legend.domain.channels import ChannelRegistry
from legend.domain.stats import Counters
from legend.services.streaming.service import StreamingService

# Counters fields and the metric each becomes (a ``reason`` label where several mean one thing).
_CLOSES = {
    "slow_consumers_closed": "slow_consumer",
    "stale_connections_closed": "stale",
    "flood_closed": "inbound_flood",
    "drained": "drain",
}
_COUNTERS: Mapping[str, tuple[str, str]] = {
    "total_connections": ("legend_connections_opened", "WebSocket connections accepted since start."),
    "drain_reconnects": (
        "legend_drain_reconnects_admitted",
        "Connections admitted over realtime.connect_rate_per_ip because a draining instance had closed "
        "as many of that address (docs/scaling.md, deploys).",
    ),
    "connections_aborted": (
        "legend_connections_aborted",
        "Connections dropped without a close handshake: the peer did not take the close frame within "
        "realtime.close_timeout.",
    ),
    "refused_full": (
        "legend_connections_refused_full",
        "WebSocket handshakes answered HTTP 503 because this process held server.max_connections already.",
    ),
    "auth_rejected": (
        "legend_auth_rejected",
        "WebSocket handshakes refused: origin not allowed, credentials missing, invalid or expired.",
    ),
    "errors": ("legend_errors", "Error replies sent to clients, plus failed socket writes."),
    "inbound_rejected": (
        "legend_inbound_rate_limited",
        "Client frames refused by the inbound rate limit (realtime.inbound_rate).",
    ),
    "messages_published": (
        "legend_messages_published",
        "Messages this instance published to the backplane (broadcasts, the quote poller, alerting, plugins).",
    ),
    "publish_failures": (
        "legend_publish_failures",
        "Publishes refused because the backplane was unavailable (the caller got an error).",
    ),
    "messages_delivered": (
        "legend_fanout_messages",
        "Messages that reached this instance from the backplane and were handed to its subscribers.",
    ),
    "prices_conflated": (
        "legend_prices_conflated",
        "Pending prices replaced by a newer price of the same ticker before they were sent (summed over "
        "connections).",
    ),
    "messages_deferred": (
        "legend_messages_deferred",
        "Messages held back while a subscription's history was read, or left out because that history "
        "already held them (summed over connections).",
    ),
    "messages_dropped": (
        "legend_messages_dropped",
        "Messages not queued for a connection that was already being closed (it overflowed: 1013).",
    ),
    "messages_filtered": (
        "legend_messages_filtered",
        "Messages not sent to a subscriber because its subscription's filter did not match them (summed "
        "over connections; they cost the connection nothing).",
    ),
}
# Counters fields exported with a label, as {field: (metric, label, help)}; the field is a dict.
_BY_LABEL: Mapping[str, tuple[str, str, str]] = {
    "sent_by_type": ("legend_messages_sent", "type", "Frames sent to clients, by message type."),
    "received_by_type": (
        "legend_messages_received",
        "type",
        "Frames received from clients, by message type.",
    ),
}
# Totals that are the sums of a breakdown above (legend_messages_sent_total summed over ``type``).
_SUMMED = frozenset({"messages_sent", "messages_received"})
# Connections refused by a limit (closed 4429), by limit.
_REFUSED = {
    "refused_user_limit": "user",
    "refused_address_limit": "address",
    "refused_connect_rate": "rate",
}


def connections(counters: Counters) -> Iterator[Metric]:
    yield by_label(
        "legend_connections_closed",
        "Connections the server closed, by reason: slow_consumer (1013), stale (4408), inbound_flood (1008), "
        "drain (1001, spread over server.drain_seconds while stopping).",
        "reason",
        {reason: getattr(counters, field) for field, reason in _CLOSES.items()},
    )
    yield by_label(
        "legend_connections_limited",
        "Connections closed with 4429 because a connection limit was exceeded, by limit: user "
        "(max_connections_per_user), address (max_connections_per_ip), rate (connect_rate_per_ip).",
        "limit",
        {limit: getattr(counters, field) for field, limit in _REFUSED.items()},
    )


def sessions(streaming: StreamingService, registry: ChannelRegistry) -> Iterator[Metric]:
    """Figures of the open connections, counted in one pass over them and their subscriptions: the
    one part of a scrape whose cost grows with the load (docs/operations.md)."""
    subscriptions = dict.fromkeys(registry.names(), 0)
    connections = dict.fromkeys(subscriptions, 0)
    blocked = pending = longest = heaviest = 0
    for session in streaming.sessions.values():
        if session.subscriptions:
            seen: set[str] = set()
            for sub in session.subscriptions.values():
                name = sub.spec.name
                subscriptions[name] = subscriptions.get(name, 0) + 1
                seen.add(name)
            for name in seen:
                connections[name] = connections.get(name, 0) + 1
        depth = len(session.outbox)
        if depth:
            pending += depth
            longest = max(longest, depth)
        heaviest = max(heaviest, session.outbox.pending_bytes)  # held ones too (history being read)
        if session.send_started is not None:
            blocked += 1
    yield gauge("legend_connections", "Open WebSocket connections.", len(streaming.sessions))
    yield gauge(
        "legend_connections_max",
        "WebSocket connections this process holds at most (server.max_connections, or its file-descriptor "
        "limit minus a reserve); 0: no cap.",
        streaming.max_connections,
    )
    yield gauge(
        "legend_connections_send_blocked",
        "Connections whose socket write is blocked right now (slow consumers in the making; closed "
        "after realtime.slow_consumer_timeout).",
        blocked,
    )
    by_channel = GaugeMetricFamily(
        "legend_subscriptions",
        "Subscriptions by channel (a connection watching 5 tickers counts 5 on ticker).",
        labels=["channel"],
    )
    subscribed = GaugeMetricFamily(
        "legend_subscribed_connections",
        "Connections with at least one subscription to the channel.",
        labels=["channel"],
    )
    for name in sorted(subscriptions):
        by_channel.add_metric([name], subscriptions[name])
        subscribed.add_metric([name], connections[name])
    yield by_channel
    yield subscribed
    yield gauge(
        "legend_tickers_watched",
        "Distinct tickers with a live subscriber on this instance.",
        len(streaming.tickers()),
    )
    yield gauge(
        "legend_outbox_messages",
        "Messages waiting in connections' outboxes (budget spent, socket busy), summed.",
        pending,
    )
    yield gauge(
        "legend_outbox_messages_max",
        "The longest outbox of any connection (realtime.max_pending_messages closes it with 1013).",
        longest,
    )
    yield gauge(
        "legend_outbox_bytes_max",
        "The outbox of any connection with the most bytes waiting (realtime.max_pending_bytes closes it "
        "with 1013).",
        heaviest,
    )


def messages(counters: Counters) -> Iterator[Metric]:
    for field, (name, documentation) in _COUNTERS.items():
        value = getattr(counters, field, None)
        if isinstance(value, int):
            yield counter(name, documentation, value)
    for field, (name, label, documentation) in _BY_LABEL.items():
        values = getattr(counters, field, None)
        if isinstance(values, Mapping):
            family = CounterMetricFamily(name, documentation, labels=[label])
            for key, value in sorted(values.items()):
                family.add_metric([str(key)], value)
            yield family
    # A counter the domain added that has no name here yet still shows, under its own.
    known = {*_COUNTERS, *_BY_LABEL, *_SUMMED, *_CLOSES, *_REFUSED}
    for declared in dataclasses.fields(counters):
        name = declared.name
        if name in known:
            continue
        value = getattr(counters, name)
        if isinstance(value, int) and not isinstance(value, bool):
            yield counter(f"legend_{name}", f"Counters.{name} (not described yet).", value)


def latency(streaming: StreamingService) -> Iterator[Metric]:
    """The domain's delivery latency histogram (per-bucket counts, made cumulative here; read from the
    service at each scrape, as the histogram it holds may be replaced)."""
    histogram = streaming.send_latency
    buckets: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
        total += count
        buckets.append((le_label(bound), total))
    buckets.append(("+Inf", total + histogram.counts[-1]))
    yield HistogramMetricFamily(
        "legend_send_latency_seconds",
        "Seconds from a message reaching this instance (its publish, on the in-memory backplane) to "
        "its write to a client's socket.",
        buckets=buckets,
        sum_value=histogram.sum,
    )
