"""``create_app``: the Litestar application on top of the composition root."""

from __future__ import annotations

import gc
import importlib.util
import logging
import mimetypes
from collections.abc import Awaitable
from functools import partial
from pathlib import Path

from litestar import Litestar, MediaType, Response, Router, get
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import ValidationException
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.response import Redirect
from litestar.response.base import ASGIResponse
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client.registry import CollectorRegistry

from legend import __version__
from legend.adapters.auth import is_loopback
from legend.adapters.http.alerts_api import AlertController
from legend.adapters.http.api import HealthController, MarketController, PluginController, WebSocketController
from legend.adapters.http.auth_api import AuthController
from legend.adapters.http.bars_api import BarsController
from legend.adapters.http.errors import error_json, field_errors
from legend.adapters.http.metrics_api import MetricsController
from legend.adapters.http.notifications_api import NotificationController
from legend.adapters.http.rate_limit import ApiLimits
from legend.adapters.http.user_api import WatchlistController
from legend.adapters.http.ws import AsgiSocket, serve_stream, stream
from legend.adapters.prometheus.api import api as api_metrics
from legend.adapters.prometheus.collector import Section, metrics_registry, sections
from legend.bootstrap import Services, bootstrap
from legend.plugins.state import PluginState
from legend.settings import Settings, SettingsError, load_settings

log = logging.getLogger("legend")

DOCS_ASSETS = "/docs-assets"

API_DESCRIPTION = """\
Real-time market data over WebSockets: live prices, pattern detections, alert triggers and market status.

Connect to **`/api/ws`** (WebSocket; see the `websocket` tag and `docs/protocol.md`). Client frames:
`{"type":"subscribe","channel":"ticker","ticker":"AAPL"}`, `{"type":"subscribe","channel":"patterns"}`,
`alerts`, `market_status`, `{"type":"unsubscribe",...}`, `{"type":"ping"}`. Every channel message carries
`channel` and `seq`; subscribe with `"since": <seq>` to resume exactly where a connection dropped.

Admin endpoints (broadcast, stats, `/metrics` for Prometheus) need `Authorization: Bearer <admin token>`.

Requests to `/api/*` are limited per user and per client address (`security.api_rate`, `api_burst`,
`api_address_rate`, `api_address_burst`; 20/s with bursts of 60 per user by default): over the limit the
answer is **429** with `Retry-After` (seconds). Requests with the admin token are not limited.

Watchlists and alert rules (`watchlist` and `alerts` tags; `docs/alerts.md`) belong to the caller: a JWT in
`Authorization: Bearer` in production, `X-User-Id` or `?user_id=` in development. `GET /api/auth/config`
says which (`auth` tag); an administrator issues tokens with `legend token create --user ID`.

Plugins add channels and endpoints (`news`, `portfolio`, …; `docs/plugins.md`); `GET /api/plugins` lists them.
"""


def web_root() -> Path:
    """The dashboard files: packaged as ``legend.web`` in a wheel, ``web/`` in a checkout."""
    spec = importlib.util.find_spec("legend.web")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "static").is_dir():
            return Path(location)
    return Path(__file__).resolve().parent.parent / "web"


def readable_from_any_origin(app: ASGIApp) -> ASGIApp:
    """The dashboard's files are public, and a page of another origin may load the JS client (as a module
    script, which browsers fetch with CORS): answer them with ``Access-Control-Allow-Origin: *``. Whether
    that page may then open a WebSocket is ``security.allowed_origins``' business."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_readable(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)["access-control-allow-origin"] = "*"
            await send(message)

        await app(scope, receive, send_readable)

    return middleware


def check_security(settings: Settings) -> None:
    """Development identity (user id from the query string) is only for loopback binds."""
    security = settings.security
    if security.auth == "dev" and not is_loopback(settings.server.host) and not security.allow_insecure:
        raise SettingsError(
            f"server.host = {settings.server.host!r} is not a loopback address, and security.auth = 'dev' lets "
            "any client pick its user id: set security.auth = 'jwt', or security.allow_insecure = true "
            "for a trusted network"
        )


def _provide(value: object) -> Provide:
    """One service, the same object for every request."""
    return Provide(lambda: value, sync_to_thread=False, use_cache=True)


def metric_sections(services: Services) -> tuple[Section, ...]:
    """What ``GET /metrics`` reads, each section bound to the services it reads."""
    return sections(
        instance_id=services.instance_id,
        provider=services.provider,
        streaming=services.streaming,
        registry=services.registry,
        backplane=services.backplane,
        quote_poller=services.quote_poller,
        alerting=services.alerting,
        bar_building=services.bar_building,
        notifications=services.notifications.service if services.notifications is not None else None,
        plugins=services.plugins.summaries,
        plugin_states=[state.value for state in PluginState],
        supervisor=services.supervisor,
    )


def api_router(services: Services, metrics: CollectorRegistry) -> Router:
    """The server's own endpoints, each handler given the services it asks for by name (one ``Provide``
    each, on this router: the plugins' routes, mounted beside it, see none of them)."""
    return Router(
        path="/",
        route_handlers=[
            stream,
            WebSocketController,
            MarketController,
            BarsController,
            HealthController,
            WatchlistController,
            AlertController,
            NotificationController,
            PluginController,
            AuthController,
            MetricsController,
        ],
        dependencies={
            "streaming": _provide(services.streaming),
            "notifications": _provide(services.notifications),
            "publisher": _provide(services.publisher),
            "cluster": _provide(services.cluster),
            "backplane": _provide(services.backplane),
            "quote_poller": _provide(services.quote_poller),
            "calendar": _provide(services.calendar),
            "clock": _provide(services.clock),
            "watchlists": _provide(services.watchlists),
            "alerting": _provide(services.alerting),
            "bar_building": _provide(services.bar_building),  # None when bars are not built here
            "bar_backfill": _provide(services.bar_backfill),  # None without a provider with history
            "plugins": _provide(services.plugins),
            "service_status": _provide(services.status),
            "supervisor": _provide(services.supervisor),
            "instance_id": _provide(services.instance_id),
            "security": _provide(services.settings.security),
            "metrics": _provide(metrics),
            "database": _provide(services.database),  # None when the repositories were given as overrides
            "bar_store": _provide(services.bars),  # None without a database
            "ticker_check": _provide(services.ticker_check),
        },
    )


def create_app(settings: Settings | None = None, services: Services | None = None) -> Litestar:
    """The application; builds its services from settings unless given them."""
    if services is None:
        settings = settings or load_settings()
        services = bootstrap(settings)
    settings = services.settings
    check_security(settings)
    web = web_root()

    @get("/", include_in_schema=False)
    async def index() -> Redirect:
        return Redirect("/dashboard")

    @get("/redoc", include_in_schema=False)
    async def redoc() -> Redirect:
        return Redirect("/docs/redoc")

    @get("/dashboard", include_in_schema=False, media_type=MediaType.HTML)
    async def dashboard() -> Response[bytes]:
        page = web / "index.html"
        if not page.is_file():
            return Response(b"dashboard files are missing from this installation", status_code=404)
        return Response(page.read_bytes(), media_type=MediaType.HTML)

    api_limits = ApiLimits(settings.security)
    metrics = metrics_registry(
        (*metric_sections(services), ("api", partial(api_metrics, api_limits, services.auth)))
    )
    route_handlers: list[object] = [index, redoc, dashboard, api_router(services, metrics)]
    route_handlers.append(
        create_static_files_router(
            path=DOCS_ASSETS,
            directories=[Path(__file__).parent / "adapters" / "http" / "apidocs"],
            name="docs-assets",
            include_in_schema=False,
        )
    )
    if (web / "static").is_dir():
        # The dashboard is ES modules, which browsers run only when served with a JavaScript type; the
        # type of .js otherwise comes from the machine's tables (/etc/mime.types, the Windows registry),
        # some of which say text/plain.
        mimetypes.add_type("text/javascript", ".js")
        mimetypes.add_type("text/javascript", ".mjs")
        route_handlers.append(
            create_static_files_router(
                path="/static",
                directories=[web / "static"],
                name="static",
                middleware=[readable_from_any_origin],
            )
        )

    async def on_startup() -> None:
        await services.start()
        if services.auth.generated_admin_token:
            log.warning("no admin token configured; this run's admin token is: %s", services.auth.admin_token)
        # What start-up built (modules, the plugins, the rules, caches) lives as long as the server: moved
        # out of the collector's sight, a full collection no longer walks it. A full collection over that
        # heap paused the loop for up to 190 ms during an alert burst (docs/alerts.md, "Benchmark").
        gc.collect()
        gc.freeze()

    async def on_shutdown() -> None:
        await services.stop()
        services.auth.close()
        gc.unfreeze()  # process-wide: everything frozen may be collected again (tests start many apps)

    openapi = OpenAPIConfig(
        title="Legend Realtime",
        version=__version__,
        description=API_DESCRIPTION,
        path="/docs",
        # The UIs are served from the package (legend/adapters/http/apidocs), not a CDN: docs work offline.
        render_plugins=[
            SwaggerRenderPlugin(
                path="/",
                js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
                favicon="",
            ),
            RedocRenderPlugin(
                path="/redoc", js_url=f"{DOCS_ASSETS}/redoc.standalone.js", google_fonts=False, favicon=""
            ),
            JsonRenderPlugin(path="/openapi.json"),
        ],
        tags=[
            Tag(name="websocket", description="WebSocket streaming: statistics and internal broadcasts"),
            Tag(name="market", description="Exchange calendar"),
            Tag(name="health", description="Liveness and readiness"),
            Tag(name="watchlist", description="The caller's watchlist (the dashboard subscribes to it)"),
            Tag(name="alerts", description="The caller's alert rules and past alert triggers"),
            Tag(name="plugins", description="Installed plugins and their state (docs/plugins.md)"),
            Tag(name="auth", description="Sign-in: auth mode, login URL and the caller's identity"),
            Tag(
                name="metrics",
                description="Prometheus metrics (admin token unless metrics.public = true; docs/operations.md)",
            ),
        ],
        components=Components(
            security_schemes={
                "adminToken": SecurityScheme(type="http", scheme="bearer", description="The admin token"),
                "userToken": SecurityScheme(
                    type="http", scheme="bearer", bearer_format="JWT", description="security.auth = 'jwt'"
                ),
                "devUserId": SecurityScheme(
                    type="apiKey",
                    name="X-User-Id",
                    security_scheme_in="header",
                    description="security.auth = 'dev' (loopback only): the user id, or ?user_id=",
                ),
            }
        ),
    )

    def loopback_hosts_only(app: ASGIApp) -> ASGIApp:
        """Development identity trusts the client: refuse HTTP requests whose Host is not a loopback
        name, so a page whose DNS name was rebound to 127.0.0.1 cannot use it (WebSockets: see ws.py)."""

        body = error_json(400, "invalid host header: development mode serves loopback only")

        # Not a coroutine: it returns the next app's awaitable, so no frame of its own stays on the
        # stack of every WebSocket connection for the connection's life (about 300 bytes each).
        def middleware(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
            if scope["type"] == ScopeType.HTTP and not services.auth.host_allowed(
                Headers.from_scope(scope).get("host")
            ):
                refused = ASGIResponse(
                    body=body,
                    status_code=400,
                    media_type=MediaType.JSON,
                )
                return refused(scope, receive, send)
            return app(scope, receive, send)

        return middleware

    app = Litestar(
        route_handlers=route_handlers,  # type: ignore[arg-type]
        middleware=[loopback_hosts_only, api_limits.middleware(services.auth)],
        # what the plugins' routes may ask for too (``legend.plugins.web.current_user`` does)
        dependencies={"authenticator": _provide(services.auth)},
        # Every 400 names the field in ``key`` (the broadcast bodies said only "data" for an unknown or
        # missing field; found by schemathesis, tests/fuzz/test_api_schema.py).
        exception_handlers={ValidationException: field_errors},
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        openapi_config=openapi,
        logging_config=None,  # legend serve configures logging once for everything (adapters/logs.py)
        debug=False,
    )
    app.state.authenticator = services.auth  # the guards' (legend.adapters.http.security)
    app.state.metrics_public = settings.metrics.public
    app.state.api_limits = api_limits  # the per-user check (legend.adapters.http.user_api.identify)
    _mount_plugin_routes(app, services)
    return app


def _mount_plugin_routes(app: Litestar, services: Services) -> None:
    """Each plugin's routes in a router of their own (those of a failed plugin too: they answer 503); a
    plugin whose routes cannot be mounted (a path taken already) is marked failed, and the server starts
    without them."""
    for record in services.plugins.records.values():
        if not record.routes:
            continue
        from legend.plugins.web import plugin_router

        try:
            app.register(plugin_router(record))
        except Exception as exc:
            record.fail("register_routes", exc)


def stream_first(app: ASGIApp, services: Services) -> ASGIApp:
    """``app``, but the WebSocket endpoint ``/api/ws`` is handed its connections directly, not through
    Litestar's application, router, exception middlewares and route: each of those keeps a frame (and
    closures, a scope state) on the stack of every connection for its whole life, about 3 KB together.
    ``serve_stream`` is what the route runs too, with the same services. Not a coroutine itself, for the
    same reason."""
    (path,) = stream.paths
    streaming, authenticator, status = services.streaming, services.auth, services.status

    def serve(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == ScopeType.WEBSOCKET and scope["path"] == path:
            return serve_stream(AsgiSocket(scope, receive, send), streaming, authenticator, status)
        return app(scope, receive, send)

    return serve
