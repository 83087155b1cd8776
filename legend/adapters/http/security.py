"""Guards for the REST API."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from legend.bootstrap import Services


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Admin surfaces (broadcasts, full stats) need ``Authorization: Bearer <admin token>``.

    Async on purpose: Litestar runs a sync guard in a worker thread on every request.
    """
    services: Services = connection.app.state.services
    if not services.auth.is_admin(connection.headers.get("authorization")):
        raise NotAuthorizedException(
            detail="admin token required: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="legend-admin"'},
        )


async def metrics_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """``GET /metrics`` needs the admin token too, unless ``metrics.public = true``."""
    services: Services = connection.app.state.services
    if not services.settings.metrics.public:
        await admin_guard(connection, handler)
