"""The ASGI layers ``legend serve`` puts around the Litestar application. None is a coroutine that awaits
the application: each hands back the application's own awaitable, so that no frame of theirs stays on
the stack of every WebSocket connection for the connection's life (about 300 bytes each)."""

from __future__ import annotations

from collections.abc import Awaitable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from legend.adapters.http.errors import error_json


def metrics_only(app: ASGIApp, port: int) -> ASGIApp:
    """``app``, but on connections to ``port`` only ``GET /metrics`` is served: anything else is 404 and
    WebSockets are refused, so a metrics port opened to Prometheus exposes nothing more."""
    body = error_json(404, "this port serves GET /metrics only")

    async def refuse(kind: str, receive: Receive, send: Send) -> None:
        if kind == ScopeType.WEBSOCKET:
            await receive()  # websocket.connect; a close before accept is an HTTP 403
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
        else:
            headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

    def serve(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        kind = scope["type"]
        elsewhere = kind in (ScopeType.HTTP, ScopeType.WEBSOCKET) and scope["path"] != "/metrics"
        if not elsewhere or (scope.get("server") or ("", None))[1] != port:
            return app(scope, receive, send)
        return refuse(kind, receive, send)

    return serve


async def _nothing(scope: Scope, receive: Receive, send: Send) -> None:
    return None


class ForwardedClient:
    """uvicorn's ``ProxyHeadersMiddleware`` (the client and scheme behind a trusted proxy), without a
    frame of its own on every connection's stack: uvicorn's middleware is a coroutine that awaits the
    application, so each WebSocket connection keeps its frame (about 300 bytes) for its whole life. Here
    uvicorn's own code rewrites the scope (run to its end at once: the app it awaits does nothing), and
    the application's awaitable is returned, not awaited."""

    def __init__(self, app: ASGIApp, trusted: list[str]) -> None:
        self.app = app
        self._rewrite = ProxyHeadersMiddleware(_nothing, trusted_hosts=trusted)  # type: ignore[arg-type]

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        step = self._rewrite(scope, receive, send)  # type: ignore[arg-type]
        try:
            step.send(None)
        except StopIteration:
            return self.app(scope, receive, send)
        step.close()
        raise RuntimeError("uvicorn's ProxyHeadersMiddleware awaited something else than the application")
