"""REST endpoints of the specification (docs/protocol.md): stats and the internal broadcast endpoints, plus market status and health."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
from litestar import Controller, Response, get, post
from litestar.exceptions import ServiceUnavailableException, ValidationException
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from legend.adapters.http.dependencies import Service
from legend.adapters.http.errors import invalid
from legend.adapters.http.security import admin_guard
from legend.domain.envelope import Envelope
from legend.domain.inputs import AlertInput, MarketStatusInput, PatternInput, PriceInput
from legend.domain.messages import MarketStatus
from legend.domain.timefmt import iso, iso_or_none
from legend.ports.backplane import Backplane, BackplaneUnavailable
from legend.ports.clock import Clock
from legend.ports.cluster import ClusterMembership
from legend.ports.market import MarketCalendar, MarketCalendarError
from legend.runtime.supervisor import TaskSupervisor
from legend.services.alerts.service import AlertingService
from legend.services.bars.backfill import BarBackfill
from legend.services.bars.building import BarBuilding
from legend.services.polling.quote_poller import QuotePoller
from legend.services.streaming.publisher import Publisher
from legend.services.streaming.service import StreamingService


class BroadcastAccepted(msgspec.Struct):
    """A broadcast accepted by the backplane."""

    status: str
    channel: str
    seq: int
    recipients: int  # subscribers on this instance at publish time


class DatabaseHealth(Protocol):
    """What ``GET /ready`` asks of the database."""

    async def health(self) -> dict[str, Any]:
        """``{"ok": bool, ...}``, with ``"error"`` when not ok."""
        ...


class PluginListing(Protocol):
    """What ``GET /api/plugins`` reads of the plugin manager."""

    def summaries(self) -> list[dict[str, Any]]:
        """Every plugin's name, version, hooks, state and errors, by name."""
        ...


async def _publish(streaming: StreamingService, publish: Any, data: Any) -> BroadcastAccepted:
    try:
        envelope: Envelope = await publish(data)
    except BackplaneUnavailable as exc:
        raise ServiceUnavailableException(
            detail=f"backplane unavailable, the message was not published: {exc}"
        ) from None
    return BroadcastAccepted(
        "published", envelope.stream, envelope.seq, streaming.subscribers(envelope.stream)
    )


def instant_param(key: str, text: str) -> datetime:
    """A query parameter's ISO-8601 instant (``Z``, and a ``+`` that the query string made a blank, are
    read; naive is UTC); a 400 naming ``key`` otherwise."""
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise invalid((key, f"not an ISO-8601 instant: {text!r}"), source="query") from None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


# Counters the specification's stats already show under their own names, in its order.
_SEED_COUNTERS = frozenset({"total_connections", "messages_sent", "messages_received", "errors"})


class WebSocketController(Controller):
    """Monitoring and internal broadcasting for the WebSocket streams (admin token required)."""

    path = "/api/ws"
    tags = ["websocket"]
    guards = [admin_guard]
    security = [{"adminToken": []}]

    @get("/stats", summary="Connection statistics")
    async def stats(
        self,
        streaming: Service[StreamingService],
        cluster: Service[ClusterMembership],
        backplane: Service[Backplane],
        quote_poller: Service[QuotePoller],
        alerting: Service[AlertingService],
        bar_building: Service[BarBuilding | None],
        bar_backfill: Service[BarBackfill | None],
        supervisor: Service[TaskSupervisor],
        instance_id: Service[str],
    ) -> dict[str, Any]:
        """The specification's statistics of this instance, plus delivery counters, quote poller state, bar
        building (``bars``: whether this instance builds them, its log position and lag), the
        background tasks (``tasks``) and, on Redis, cluster-wide figures (``cluster``: instances alive, connections and subscriptions across them)."""
        c = streaming.counters
        try:
            figures: dict[str, Any] = await cluster.cluster()
        except BackplaneUnavailable as exc:
            figures = {"error": str(exc)}
        return {
            "active_connections": len(streaming.sessions),
            "max_connections": streaming.max_connections,  # this process holds at most; 0: no cap
            "ticker_subscriptions": dict(sorted(streaming.tickers().items())),
            "pattern_subscribers": streaming.subscribers("patterns"),
            "alert_subscribers": streaming.channel_subscribers("alerts"),
            "market_status_subscribers": streaming.subscribers("market_status"),
            "total_connections": c.total_connections,
            "messages_sent": c.messages_sent,
            "messages_received": c.messages_received,
            "errors": c.errors,
            "uptime": int(streaming.uptime()),
            "instance_id": instance_id,
            # asyncio tasks alive in this server's event loop (this request's own included): one per open
            # WebSocket plus a few of the server's own; back where it was once connections leave.
            "asyncio_tasks": len(asyncio.all_tasks()),
            **{name: value for name, value in asdict(c).items() if name not in _SEED_COUNTERS},
            "send_latency": {  # reaching this instance -> written to the socket, upper bounds
                "count": streaming.send_latency.count,
                "p50_below": streaming.send_latency.quantile(0.5),
                "p99_below": streaming.send_latency.quantile(0.99),
            },
            "backplane": backplane.health(),
            "streamer": quote_poller.status(),
            "alerting": alerting.status(),
            "bars": bar_building.status() if bar_building is not None else {"enabled": False},
            # the past of the tickers asked for, from the provider's history (docs/bars.md, Backfill)
            "bar_backfill": bar_backfill.status() if bar_backfill is not None else {"enabled": False},
            # the supervised background loops: state (running, restarting, stopped, failed), restarts,
            # failures and last error of each, by name
            "tasks": supervisor.status(),
            "cluster": figures,
        }

    @post("/broadcast/price", summary="Broadcast a price update (internal)", status_code=HTTP_200_OK)
    async def broadcast_price(
        self,
        data: JSONBody[PriceInput],
        publisher: Service[Publisher],
        streaming: Service[StreamingService],
    ) -> BroadcastAccepted:
        """Publish a ``price_update`` on ``ticker:{TICKER}``; ``open_price`` is delivered as ``open``."""
        return await _publish(streaming, publisher.price, data)

    @post("/broadcast/pattern", summary="Broadcast a pattern alert (internal)", status_code=HTTP_200_OK)
    async def broadcast_pattern(
        self,
        data: JSONBody[PatternInput],
        publisher: Service[Publisher],
        streaming: Service[StreamingService],
    ) -> BroadcastAccepted:
        """Publish a ``pattern_alert`` on ``patterns``; ``risk_reward_ratio`` is computed when left out."""
        return await _publish(streaming, publisher.pattern, data)

    @post("/broadcast/alert", summary="Broadcast an alert trigger (internal)", status_code=HTTP_200_OK)
    async def broadcast_alert(
        self,
        data: JSONBody[AlertInput],
        publisher: Service[Publisher],
        streaming: Service[StreamingService],
    ) -> BroadcastAccepted:
        """Publish an ``alert_trigger``: to ``user_id``'s alerts only when given, else to every subscriber."""
        return await _publish(streaming, publisher.alert, data)

    @post("/broadcast/market_status", summary="Broadcast market status (internal)", status_code=HTTP_200_OK)
    async def broadcast_market_status(
        self,
        data: JSONBody[MarketStatusInput],
        publisher: Service[Publisher],
        streaming: Service[StreamingService],
    ) -> BroadcastAccepted:
        """Publish a ``market_status`` (for example a trading halt) on ``market_status``."""
        return await _publish(streaming, publisher.market_status, data)


class MarketController(Controller):
    """The exchange calendar, public."""

    path = "/api/market"
    tags = ["market"]

    @get("/status", summary="Market status now or at an instant", sync_to_thread=False)
    def status(
        self,
        clock: Service[Clock],
        calendar: Service[MarketCalendar],
        at: str | None = Parameter(
            default=None, description="ISO-8601 instant (default: now); naive times are UTC", required=False
        ),
    ) -> MarketStatus:
        """The specification's ``market_status`` message for now, or for ``at``."""
        instant = clock.now() if at is None else instant_param("at", at)
        try:
            state = calendar.state_at(instant)
        except MarketCalendarError as exc:
            raise ValidationException(
                detail="Validation failed", extra=[{"key": "at", "message": str(exc)}]
            ) from None
        return MarketStatus(
            status=state.status,
            next_open=iso_or_none(state.next_open),
            next_close=iso_or_none(state.next_close),
            timestamp=iso(instant),
            exchange=calendar.name,
            early_close=state.early_close if state.is_open else None,
        )


class HealthController(Controller):
    """Liveness and readiness for load balancers."""

    tags = ["health"]

    @get("/health", summary="Liveness", sync_to_thread=False)
    def health(self) -> dict[str, str]:
        """The process is up and serving HTTP."""
        return {"status": "ok"}

    @get("/ready", summary="Readiness")
    async def ready(
        self,
        backplane: Service[Backplane],
        database: Service[DatabaseHealth | None],
        streaming: Service[StreamingService],
    ) -> Response[dict[str, Any]]:
        """Ready when the backplane is healthy and the database answers ``SELECT 1`` (within 2 s, checked
        at most every 1.5 s whatever the number of probes); 503 with the reason of each when degraded, and
        503 ``draining`` once the instance is stopping (SIGTERM), and ``full`` while it holds
        ``server.max_connections``, so that a load balancer sends no one new."""
        health = backplane.health()
        body: dict[str, Any] = {"status": "ready", "backplane": health}
        ok = bool(health.get("ok"))
        if database is not None:
            body["database"] = await database.health()
            ok = ok and bool(body["database"].get("ok"))
        full = streaming.full
        body["status"] = (
            "draining" if streaming.draining else "degraded" if not ok else "full" if full else "ready"
        )
        ready = ok and not streaming.draining and not full
        return Response(body, status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE)


class PluginController(Controller):
    """Installed plugins and how they are doing (admin token required)."""

    path = "/api/plugins"
    tags = ["plugins"]
    guards = [admin_guard]
    security = [{"adminToken": []}]

    @get("/", summary="Plugins: name, version, hooks, state and errors", sync_to_thread=False)
    def plugins(self, plugins: Service[PluginListing]) -> dict[str, Any]:
        """Every discovered plugin with its ``state`` (``enabled``, ``disabled``, ``blocked`` by
        ``LEGEND_DISABLED_PLUGINS``, or ``failed``), the hooks it implements, its channels, routes, feeds
        and their state, the ``errors`` counted against it and the ``last_error``."""
        return {"plugins": plugins.summaries()}
