"""Metrics of the REST API's request limits and of the identity provider's key fetches."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from legend.adapters.auth import Authenticator
from legend.adapters.http.rate_limit import ApiLimits
from legend.adapters.prometheus.families import counter


def api(limits: ApiLimits, authenticator: Authenticator) -> Iterator[Metric]:
    refused = CounterMetricFamily(
        "legend_api_requests_limited",
        "REST requests answered 429 by a request limit, by limit: user (security.api_rate), "
        "address (security.api_address_rate).",
        labels=["limit"],
    )
    refused.add_metric(["user"], limits.refused_user)
    refused.add_metric(["address"], limits.refused_address)
    yield refused
    fetches = authenticator.key_fetches
    if fetches is not None:
        yield counter(
            "legend_jwks_fetches",
            "Requests for the identity provider's key set (security.jwks_url), failed ones included.",
            fetches,
        )
