"""Guards for the REST API.

A guard cannot ask for dependencies, so ``create_app`` puts what these read in the app's state:
``authenticator`` (the ``Authenticator``) and ``metrics_public`` (``metrics.public``).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from legend.adapters.auth import Authenticator


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Admin surfaces (broadcasts, full stats) need ``Authorization: Bearer <admin token>``.

    Async on purpose: Litestar runs a sync guard in a worker thread on every request.
    """
    authenticator: Authenticator = connection.app.state.authenticator
    if not authenticator.is_admin(connection.headers.get("authorization")):
        raise NotAuthorizedException(
            detail="admin token required: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="legend-admin"'},
        )


async def metrics_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """``GET /metrics`` needs the admin token too, unless ``metrics.public = true``."""
    if not connection.app.state.metrics_public:
        await admin_guard(connection, handler)
