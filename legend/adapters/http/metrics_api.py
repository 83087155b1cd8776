"""``GET /metrics``: this instance's metrics in the Prometheus text format (docs/operations.md)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, get
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from legend.adapters.http.dependencies import Service
from legend.adapters.http.security import metrics_guard


class MetricsController(Controller):
    """Prometheus scrapes (admin token required unless ``metrics.public = true``)."""

    tags = ["metrics"]
    guards = [metrics_guard]
    security = [{"adminToken": []}]

    @get(
        "/metrics",
        summary="Prometheus metrics of this instance",
        media_type=MediaType.TEXT,
        response_description="The Prometheus text format (OpenMetrics when the Accept header asks for it)",
    )
    async def metrics(
        self, request: Request[Any, Any, Any], metrics: Service[CollectorRegistry]
    ) -> Response[bytes]:
        """Connections, subscriptions per channel, messages in and out, conflated and dropped messages,
        closes by reason, outbox depth, publish→send latency, backplane, quote provider, alerting and
        plugin health, plus the process's CPU, memory and file descriptors. The admin token is required
        unless ``metrics.public = true``. Read at the scrape from the running services (an async handler,
        so on the event loop between two steps of the domain)."""
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        # The content type as the client library says (Litestar would append a second charset).
        return Response(encode(metrics), media_type=content_type, headers={"content-type": content_type})
