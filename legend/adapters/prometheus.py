"""Prometheus metrics of one instance, read from the live services when Prometheus scrapes.

Nothing is counted here. The domain keeps its counters as plain integers where the work happens
(``Counters``, the backplane's, the streamer's, the alerting's, each plugin's record); a scrape turns what
they say at that moment into metric families, so the per-message path pays nothing for metrics. Figures
that only exist as state (connections, subscriptions per channel, outbox depth) are counted at the scrape.
A counter the domain does not keep is left out, never made up. Metric names and their meaning:
docs/operations.md.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from legend import __version__
from legend.bootstrap import Services
from legend.plugins.state import PluginState

log = logging.getLogger("legend.metrics")

# Counters fields and the metric each becomes (a ``reason`` label where several mean one thing).
_CLOSES = {
    "slow_consumers_closed": "slow_consumer",
    "stale_connections_closed": "stale",
    "flood_closed": "inbound_flood",
}
_COUNTERS: Mapping[str, tuple[str, str]] = {
    "total_connections": ("legend_connections_opened", "WebSocket connections accepted since start."),
    "connections_aborted": (
        "legend_connections_aborted",
        "Connections dropped without a close handshake: the peer did not take the close frame within "
        "realtime.close_timeout.",
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
        "Messages this instance published to the backplane (broadcasts, the streamer, alerting, plugins).",
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

# Numeric fields of ``Backplane.health()`` (the Redis backplane has them all, the in-memory one none).
_BACKPLANE_COUNTERS: Mapping[str, tuple[str, str]] = {
    "reconnects": ("legend_backplane_reconnects", "Times the backplane connection was re-established."),
    "publish_failures": (
        "legend_backplane_publish_failures",
        "Backplane publish commands that failed (Redis down or too slow).",
    ),
    "delivered": (
        "legend_backplane_messages_received",
        "Messages received from the backplane and delivered here (duplicates skipped).",
    ),
    "delivery_errors": (
        "legend_backplane_delivery_errors",
        "Messages from the backplane whose local delivery raised.",
    ),
    "gap_filled": (
        "legend_backplane_gaps_filled",
        "Sequence gaps (messages missed while disconnected) filled from history.",
    ),
    "duplicates_skipped": (
        "legend_backplane_duplicates_skipped",
        "Messages received twice from the backplane and delivered once.",
    ),
}
_EXTERNAL = {
    "external_resequenced": "resequenced",
    "external_duplicates": "duplicate",
    "external_invalid": "invalid",
    "external_failed": "failed",
}
# Numeric fields of a vendor quote provider's ``stats()`` (finnhub, alpaca).
_PROVIDER_STATS: Mapping[str, tuple[str, str]] = {
    "requests": ("legend_provider_requests", "HTTP requests sent to the market-data vendor."),
    "rate_limited": ("legend_provider_rate_limited", "Vendor answers HTTP 429 (rate limited)."),
    "deferred": (
        "legend_provider_requests_deferred",
        "Requests not sent for lack of rate budget (sent first in the next fetch).",
    ),
    "errors": ("legend_provider_request_errors", "Failed vendor requests other than HTTP 429."),
}


def _number(value: object) -> float | None:
    """``value`` as a sample value, or None when it is not a number (booleans are 0/1)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class LegendCollector(Collector):
    """Yields this instance's metric families from ``services`` at each scrape (on the event loop, so the
    figures are read between two steps of the domain, never while one is half done)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.failures: dict[str, int] = {}  # section -> scrapes in which it raised

    def collect(self) -> Iterator[Metric]:
        sections: list[tuple[str, Callable[[], Iterable[Metric]]]] = [
            ("instance", self._instance),
            ("sessions", self._sessions),
            ("connections", self._connections),
            ("messages", self._messages),
            ("latency", self._latency),
            ("backplane", self._backplane),
            ("provider", self._provider),
            ("alerting", self._alerting),
            ("plugins", self._plugins),
        ]
        for section, collect in sections:
            try:
                families = list(collect())  # all of a section, or none of it
            except Exception:
                self.failures[section] = self.failures.get(section, 0) + 1
                if self.failures[section] == 1:
                    log.exception("metrics: collecting %s failed; left out of the scrape", section)
                continue
            yield from families
        failures = CounterMetricFamily(
            "legend_metrics_collect_errors",
            "Scrapes in which a section of these metrics could not be collected (the log has the first "
            "traceback).",
            labels=["section"],
        )
        for section, _ in sections:
            failures.add_metric([section], self.failures.get(section, 0))
        yield failures

    # ───────────── the instance ─────────────

    def _instance(self) -> Iterator[Metric]:
        services = self.services
        yield InfoMetricFamily(
            "legend_build",
            "Version of Legend Realtime and of Python.",
            value={"version": __version__, "python": platform.python_version()},
        )
        yield InfoMetricFamily(
            "legend_instance",
            "This instance: its id on the backplane (new at every start) and its quote provider.",
            value={"instance_id": services.instance_id, "provider": services.provider.name},
        )
        yield _gauge(
            "legend_uptime_seconds",
            "Seconds since the streaming service started.",
            services.streaming.uptime(),
        )

    # ───────────── connections and subscriptions ─────────────

    def _connections(self) -> Iterator[Metric]:
        counters = self.services.streaming.counters
        closed = CounterMetricFamily(
            "legend_connections_closed",
            "Connections the server closed, by reason: slow_consumer (1013), stale (4408), "
            "inbound_flood (1008).",
            labels=["reason"],
        )
        for field, reason in _CLOSES.items():
            closed.add_metric([reason], getattr(counters, field))
        yield closed
        refused = CounterMetricFamily(
            "legend_connections_limited",
            "Connections closed with 4429 because a connection limit was exceeded, by limit: user "
            "(max_connections_per_user), address (max_connections_per_ip), rate (connect_rate_per_ip).",
            labels=["limit"],
        )
        for field, limit in _REFUSED.items():
            refused.add_metric([limit], getattr(counters, field))
        yield refused

    def _sessions(self) -> Iterator[Metric]:
        """Figures of the open connections, counted in one pass over them and their subscriptions: the
        one part of a scrape whose cost grows with the load (docs/operations.md)."""
        services = self.services
        streaming = services.streaming
        subscriptions = dict.fromkeys(services.registry.names(), 0)
        connections = dict.fromkeys(subscriptions, 0)
        blocked = pending = longest = 0
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
            if session.send_started is not None:
                blocked += 1
        yield _gauge("legend_connections", "Open WebSocket connections.", len(streaming.sessions))
        yield _gauge(
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
        yield _gauge(
            "legend_tickers_watched",
            "Distinct tickers with a live subscriber on this instance.",
            len(streaming.tickers()),
        )
        yield _gauge(
            "legend_outbox_messages",
            "Messages waiting in connections' outboxes (budget spent, socket busy), summed.",
            pending,
        )
        yield _gauge(
            "legend_outbox_messages_max",
            "The longest outbox of any connection (realtime.max_pending_messages closes it with 1013).",
            longest,
        )

    # ───────────── messages ─────────────

    def _messages(self) -> Iterator[Metric]:
        counters = self.services.streaming.counters
        for field, (name, documentation) in _COUNTERS.items():
            value = getattr(counters, field, None)
            if isinstance(value, int):
                yield _counter(name, documentation, value)
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
                yield _counter(f"legend_{name}", f"Counters.{name} (not described yet).", value)

    def _latency(self) -> Iterator[Metric]:
        """The domain's delivery latency histogram (per-bucket counts, made cumulative here)."""
        histogram = self.services.streaming.send_latency
        buckets: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
            total += count
            buckets.append((_bound(bound), total))
        buckets.append(("+Inf", total + histogram.counts[-1]))
        yield HistogramMetricFamily(
            "legend_send_latency_seconds",
            "Seconds from a message reaching this instance (its publish, on the in-memory backplane) to "
            "its write to a client's socket.",
            buckets=buckets,
            sum_value=histogram.sum,
        )

    # ───────────── backplane and quote provider ─────────────

    def _backplane(self) -> Iterator[Metric]:
        health = self.services.backplane.health()
        backend = str(health.get("backend", "unknown"))
        up = GaugeMetricFamily(
            "legend_backplane_up",
            "1 while the backplane works (Redis: subscribed and the last command succeeded), else 0.",
            labels=["backend"],
        )
        up.add_metric([backend], 1.0 if health.get("ok") else 0.0)
        yield up
        for key, (name, documentation) in _BACKPLANE_COUNTERS.items():
            value = _number(health.get(key))
            if value is not None:
                yield _counter(name, documentation, value)
        external = CounterMetricFamily(
            "legend_backplane_external_messages",
            "Messages PUBLISHed to the backplane by other programs, by outcome: resequenced (delivered), "
            "duplicate, invalid, failed (lost).",
            labels=["outcome"],
        )
        for key, outcome in _EXTERNAL.items():
            value = _number(health.get(key))
            if value is not None:
                external.add_metric([outcome], value)
        if external.samples:
            yield external
        streams = health.get("streams")
        if isinstance(streams, int | float):
            yield _gauge(
                "legend_backplane_streams", "Streams the backplane tracks on this instance.", streams
            )

    def _provider(self) -> Iterator[Metric]:
        streamer = self.services.streamer
        provider = self.services.provider.name

        def family(
            kind: type[CounterMetricFamily | GaugeMetricFamily], name: str, documentation: str, value: float
        ) -> Metric:
            metric = kind(name, documentation, labels=["provider"])
            metric.add_metric([provider], value)
            return metric

        yield family(
            CounterMetricFamily, "legend_provider_polls", "Quote fetches by this instance.", streamer.polls
        )
        yield family(
            CounterMetricFamily,
            "legend_provider_errors",
            "Quote fetches that failed (the provider's error is in /api/ws/stats, streamer.last_error).",
            streamer.provider_errors,
        )
        yield family(
            GaugeMetricFamily,
            "legend_provider_consecutive_failures",
            "Quote fetches that failed in a row (0 after a success).",
            streamer.consecutive_failures,
        )
        yield family(
            CounterMetricFamily,
            "legend_quotes_published",
            "Prices published from quotes.",
            streamer.quotes_published,
        )
        if streamer.last_fetch is not None:
            yield family(
                GaugeMetricFamily,
                "legend_provider_last_fetch_timestamp_seconds",
                "When the last quote fetch succeeded (Unix time).",
                streamer.last_fetch.timestamp(),
            )
        yield _gauge(
            "legend_streamer_leader",
            "1 on the instance that polls the quote provider for the cluster, else 0.",
            float(streamer.leader),
        )
        state = streamer.last_state
        market = GaugeMetricFamily(
            "legend_market_status",
            "1 for the exchange's current status (open, closed, …) as the streamer last saw it.",
            labels=["status"],
        )
        market.add_metric([state.status if state else "unknown"], 1.0)
        yield market
        vendor = getattr(self.services.provider, "stats", None)
        figures = vendor() if callable(vendor) else None
        if isinstance(figures, Mapping):
            for key, (name, documentation) in _PROVIDER_STATS.items():
                value = _number(figures.get(key))
                if value is not None:
                    yield family(CounterMetricFamily, name, documentation, value)
            blocked = _number(figures.get("blocked_for"))
            if blocked is not None:
                yield family(
                    GaugeMetricFamily,
                    "legend_provider_blocked_seconds",
                    "Seconds the vendor still blocks requests after HTTP 429.",
                    blocked,
                )

    # ───────────── alerting ─────────────

    def _alerting(self) -> Iterator[Metric]:
        alerting = self.services.alerting
        if alerting is None:
            return
        evaluation = alerting.evaluation
        yield _gauge(
            "legend_alert_evaluation_holder",
            "1 on the instance that evaluates alert rules for the cluster, else 0.",
            float(evaluation.holder),
        )
        lag = evaluation.lag()
        if lag is not None:
            yield _gauge(
                "legend_alert_evaluation_lag_seconds",
                "How long the oldest price not yet evaluated against the alert rules has waited (0 when "
                "caught up; only on the evaluating instance).",
                lag,
            )
            yield _gauge("legend_alert_rules_armed", "Armed alert rules.", len(evaluation.evaluator))
        counters = {
            "legend_alert_prices_evaluated": (
                evaluation.prices_evaluated,
                "Prices evaluated against the rules.",
            ),
            "legend_alert_prices_invalid": (
                evaluation.prices_invalid,
                "Price log entries that could not be read.",
            ),
            "legend_alert_evaluation_log_gaps": (
                evaluation.prices_missed,
                "Times evaluation fell behind the price log and prices were trimmed unevaluated (raise "
                "alerts.log_size).",
            ),
            "legend_alert_evaluation_failures": (
                evaluation.failures,
                "Evaluation batches that failed (database or log unavailable) and were retried.",
            ),
            "legend_alert_rule_changes": (evaluation.rule_changes, "Rule changes evaluation took in."),
            "legend_alert_triggers_fired": (evaluation.triggers_fired, "Alert triggers fired by evaluation."),
            "legend_alert_triggers_published": (
                alerting.triggers_published,
                "Alert triggers published to their owners by this instance.",
            ),
            "legend_alert_publish_failures": (
                alerting.publish_failures,
                "Attempts to publish alert triggers that failed (retried every alerts.retry_interval).",
            ),
        }
        for name, (value, documentation) in counters.items():
            yield _counter(name, documentation, value)
        figures = alerting.status()
        yield _gauge(
            "legend_alert_backlog",
            "1 while triggers that failed to go out wait for a retry, else 0.",
            float(bool(figures.get("backlog"))),
        )
        unlogged = _number(figures.get("rule_changes_unlogged"))
        if unlogged is not None:
            yield _gauge(
                "legend_alert_rule_changes_unlogged",
                "Rule changes whose notice could not enter the price log yet (backplane down).",
                unlogged,
            )

    # ───────────── plugins ─────────────

    def _plugins(self) -> Iterator[Metric]:
        manager = self.services.plugins
        if manager is None:
            return
        records = [manager.records[name] for name in sorted(manager.records)]
        state = GaugeMetricFamily(
            "legend_plugin_state",
            "1 for each plugin's current state: enabled, disabled, blocked or failed.",
            labels=["plugin", "state"],
        )
        errors = CounterMetricFamily(
            "legend_plugin_errors",
            "Errors counted against a plugin (hooks, callbacks, feeds).",
            labels=["plugin"],
        )
        messages = CounterMetricFamily(
            "legend_plugin_messages",
            "Messages a plugin tried to publish, by outcome: published, rejected (invalid), refused (the "
            "plugin had failed).",
            labels=["plugin", "outcome"],
        )
        feed_runs = CounterMetricFamily(
            "legend_plugin_feed_restarts",
            "Times a plugin's feed was restarted after it ended or raised.",
            labels=["plugin", "feed"],
        )
        feed_errors = CounterMetricFamily(
            "legend_plugin_feed_errors", "Errors raised by a plugin's feed.", labels=["plugin", "feed"]
        )
        own = GaugeMetricFamily(
            "legend_plugin_metric",
            "A plugin's own numbers (PluginContext.metrics), by their name.",
            labels=["plugin", "metric"],
        )
        for record in records:
            for value in PluginState:
                state.add_metric([record.name, value.value], float(record.state is value))
            errors.add_metric([record.name], record.errors)
            messages.add_metric([record.name, "published"], record.messages_published)
            messages.add_metric([record.name, "rejected"], record.messages_rejected)
            messages.add_metric([record.name, "refused"], record.messages_refused)
            for feed, runner in sorted(record.feeds.items()):
                feed_runs.add_metric([record.name, feed], runner.restarts)
                feed_errors.add_metric([record.name, feed], runner.errors)
            if record.context is not None:
                for key, raw in sorted(record.context.metrics.items()):
                    number = _number(raw)
                    if number is not None:
                        own.add_metric([record.name, str(key)], number)
        yield from (
            family for family in (state, errors, messages, feed_runs, feed_errors, own) if family.samples
        )


def _bound(value: float) -> str:
    """A bucket bound as Prometheus writes ``le`` (``0.005``, ``1.0``)."""
    return repr(float(value))


def metrics_registry(services: Services) -> CollectorRegistry:
    """A registry of this instance's metrics plus the process's (CPU, memory, file descriptors) and the
    Python runtime's; one per app, so that several apps in one process never share figures."""
    registry = CollectorRegistry()
    registry.register(LegendCollector(services))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
