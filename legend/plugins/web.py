"""HTTP for plugins: how their routes are mounted, and helpers for writing them.

Each plugin's handlers are mounted in a Router of their own that injects ``plugin`` (the plugin's
``PluginContext``), answers 503 once the plugin has failed, and counts an unexpected exception in a
handler against the plugin (the client gets a plain 500).

For authors::

    from legend.plugins.web import Conflict, admin_guard, current_user, field_errors, invalid

- ``guards=[admin_guard]``: the caller must send ``Authorization: Bearer <admin token>``;
- ``dependencies={"user_id": current_user}``: the caller's user id (a JWT's ``sub``, or the development
  id), 401 when there is none;
- ``exception_handlers={ValidationException: field_errors}``: 400s that name the field in ``key``;
- ``raise invalid(("quantity", "must not be 0"))``: a 400 in that same shape;
- ``raise Conflict(detail=...)``: a 409 (Litestar ships none); for a 503, Litestar's
  ``ServiceUnavailableException``.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.exceptions import ServiceUnavailableException
from litestar.handlers.base import BaseRouteHandler
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from legend.adapters.http.errors import Conflict, error_body, field_errors, invalid
from legend.adapters.http.security import admin_guard
from legend.adapters.http.user_api import provide_user_id
from legend.plugins.state import PluginRecord

__all__ = [
    "Conflict",
    "admin_guard",
    "current_user",
    "field_errors",
    "invalid",
    "is_route_handler",
    "plugin_router",
]

current_user = Provide(provide_user_id)


def is_route_handler(value: object) -> bool:
    """A Litestar route handler, controller class or router."""
    if isinstance(value, BaseRouteHandler | Router):
        return True
    return isinstance(value, type) and issubclass(value, Controller)


def plugin_router(record: PluginRecord) -> Router:
    """The plugin's handlers, with ``plugin`` injected, a 503 once it failed, and 500s counted."""
    context = record.context

    def available(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if not record.active:
            raise ServiceUnavailableException(
                detail=f"plugin {record.name} is {record.state.value}: {record.last_error or 'not running'}"
            )

    def crashed(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
        record.error(f"route {request.method} {request.url.path}", exc)
        return Response(
            error_body(HTTP_500_INTERNAL_SERVER_ERROR, "Internal Server Error"),
            status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        )

    return Router(
        path="/",
        route_handlers=list(record.routes),  # type: ignore[arg-type]
        dependencies={"plugin": Provide(lambda: context, sync_to_thread=False)},
        guards=[available],
        exception_handlers={HTTP_500_INTERNAL_SERVER_ERROR: crashed},
    )
