"""The quote provider's and the quote poller's figures: polls, failures, prices published, the market status,
and a vendor provider's own request counts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from legend.adapters.prometheus.families import gauge, number
from legend.ports.quotes import QuoteProvider
from legend.services.polling.quote_poller import QuotePoller

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


def provider(quote_poller: QuotePoller, quotes: QuoteProvider) -> Iterator[Metric]:
    provider = quotes.name

    def family(
        kind: type[CounterMetricFamily | GaugeMetricFamily], name: str, documentation: str, value: float
    ) -> Metric:
        metric = kind(name, documentation, labels=["provider"])
        metric.add_metric([provider], value)
        return metric

    yield family(
        CounterMetricFamily, "legend_provider_polls", "Quote fetches by this instance.", quote_poller.polls
    )
    yield family(
        CounterMetricFamily,
        "legend_provider_errors",
        "Quote fetches that failed (the provider's error is in /api/ws/stats, streamer.last_error).",
        quote_poller.provider_errors,
    )
    yield family(
        GaugeMetricFamily,
        "legend_provider_consecutive_failures",
        "Quote fetches that failed in a row (0 after a success).",
        quote_poller.consecutive_failures,
    )
    yield family(
        CounterMetricFamily,
        "legend_quotes_published",
        "Prices published from quotes.",
        quote_poller.quotes_published,
    )
    if quote_poller.last_fetch is not None:
        yield family(
            GaugeMetricFamily,
            "legend_provider_last_fetch_timestamp_seconds",
            "When the last quote fetch succeeded (Unix time).",
            quote_poller.last_fetch.timestamp(),
        )
    yield gauge(
        "legend_streamer_leader",
        "1 on the instance that polls the quote provider for the cluster, else 0.",
        float(quote_poller.leader),
    )
    yield CounterMetricFamily(
        "legend_streamer_lease_lost",
        "Times this instance stopped polling because another instance took the quote poller's lease over.",
        value=quote_poller.lease_lost,
    )
    yield CounterMetricFamily(
        "legend_streamer_fenced",
        "Times a price or market status of this instance was refused: its lease had been taken over.",
        value=quote_poller.fenced,
    )
    state = quote_poller.last_state
    market = GaugeMetricFamily(
        "legend_market_status",
        "1 for the exchange's current status (open, closed, …) as the quote poller last saw it.",
        labels=["status"],
    )
    market.add_metric([state.status if state else "unknown"], 1.0)
    yield market
    vendor = getattr(quotes, "stats", None)
    figures = vendor() if callable(vendor) else None
    if isinstance(figures, Mapping):
        for key, (name, documentation) in _PROVIDER_STATS.items():
            value = number(figures.get(key))
            if value is not None:
                yield family(CounterMetricFamily, name, documentation, value)
        blocked = number(figures.get("blocked_for"))
        if blocked is not None:
            yield family(
                GaugeMetricFamily,
                "legend_provider_blocked_seconds",
                "Seconds the vendor still blocks requests after HTTP 429.",
                blocked,
            )
