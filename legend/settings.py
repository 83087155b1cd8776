"""Settings: one TOML file decoded into msgspec Structs, overridden by environment variables.

Unknown keys are errors (``forbid_unknown_fields``) so a typo in ``legend.toml`` stops the start with its
``$.path`` instead of being silently ignored.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from legend.address_checks import (
    bind_host,
    database_backend,
    http_url,
    jwks_url,
    redis_url,
    trusted_proxy,
)
from legend.bar_settings import BarSettings
from legend.notification_settings import NotificationSettings

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class SettingsError(ValueError):
    """The settings file or an environment override is invalid; the message names the key and the reason."""


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


MAX_WORKERS = 256  # server.workers on any machine; legend serve also refuses more than this one holds


class ServerSettings(_Section):
    """How ``legend serve`` binds and runs uvicorn."""

    host: str = "127.0.0.1"
    port: Port = 8000
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object per line (time, level, logger, …)
    # Per-message deflate for the clients that offer it (browsers do). Negotiated without server context
    # takeover, so that a message is compressed once for all its connections (docs/performance.md).
    ws_per_message_deflate: bool = True
    # Texts of fewer UTF-8 bytes go uncompressed even to a client with per-message deflate: the few bytes
    # deflate saves on them are not worth the client's decompressing (docs/performance.md).
    ws_deflate_min_bytes: Annotated[int, msgspec.Meta(ge=0, le=1024 * 1024)] = 128
    # Kernel send buffer (SO_SNDBUF) of each WebSocket, in bytes; Linux doubles it (bookkeeping) and caps
    # it at net.core.wmem_max. 256 KiB carries a dashboard at 20 Mbit/s over a 200 ms round trip (the
    # bandwidth-delay product) and bounds what a client that stops reading holds in the kernel. 0 keeps
    # the kernel's autotuning: several megabytes per such client before it is detected as slow.
    ws_send_buffer: Annotated[int, msgspec.Meta(ge=0, le=64 * 1024 * 1024)] = 256 * 1024
    # uvicorn's protocol-level WebSocket pings, in seconds; 0: off. Dead peers are found without them
    # (clients ping, realtime.stale_after closes the silent), and each costs a write and a read per
    # connection: 10,000 connections every 20 s is 500 pings a second.
    ws_ping_interval: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    graceful_shutdown_seconds: PositiveFloat = 5.0
    # On SIGTERM the clients are closed (1001, with a reconnect hint) one by one over this many seconds, so
    # that the other instances are not hit by all of them at once; at most graceful_shutdown_seconds minus
    # realtime.close_timeout, so that the last close handshake ends in time. 0: all at once.
    drain_seconds: Annotated[float, msgspec.Meta(ge=0)] = 2.0
    # Processes serving the one port (SO_REUSEPORT), each an instance on the Redis backplane; more than 1
    # needs redis.url. One per core scales the socket writes, which grow with the number of clients.
    # At most 256, and `legend serve` refuses more than the machine holds: 2 per usable CPU, 256 MiB of
    # available memory each (legend/capacity.py).
    workers: Annotated[int, msgspec.Meta(ge=1, le=MAX_WORKERS)] = 1
    # WebSocket connections one process holds at most; past it new ones get HTTP 503 before the upgrade and
    # /ready answers 503 "full". 0: the process's file-descriptor limit minus a reserve for everything
    # else it opens (legend/descriptors.py); more than that limit allows is refused at start.
    max_connections: Annotated[int, msgspec.Meta(ge=0)] = 0
    # The proxies (addresses, or networks in CIDR) whose X-Forwarded-For and X-Forwarded-Proto are believed:
    # the client address of the per-address limits and the logs is then the right-most forwarded address
    # not in this list. A peer not listed never chooses its address by sending the header. Behind a load
    # balancer list its addresses (docs/scaling.md), else every client counts as the balancer. ["*"]
    # trusts any peer: only when nothing but the balancer can reach the port. []: trust none.
    forwarded_allow_ips: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1", "::1"])

    def __post_init__(self) -> None:
        bind_host(self.host)  # raises ValueError with the reason
        for entry in self.forwarded_allow_ips:
            trusted_proxy(entry)  # raises ValueError naming the entry
        if "*" in self.forwarded_allow_ips and len(self.forwarded_allow_ips) > 1:
            raise ValueError("forwarded_allow_ips: '*' trusts every peer and cannot be combined with others")


class RealtimeSettings(_Section):
    """The streaming behaviour: intervals, budgets and limits."""

    update_interval: PositiveFloat = 5.0  # REALTIME_UPDATE_INTERVAL, seconds during market hours
    after_hours_interval: PositiveFloat = 60.0  # REALTIME_AFTER_HOURS_INTERVAL, seconds outside them
    max_messages_per_second: PositiveInt = 10  # data messages per connection
    history_size: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 100  # per channel
    max_subscriptions: PositiveInt = 50  # per connection
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=64)] = 4096  # a client frame larger gets an error
    inbound_rate: PositiveFloat = 20.0  # client frames per second, sustained
    inbound_burst: PositiveInt = 40  # client frames allowed in a burst
    stale_after: PositiveFloat = 60.0  # seconds of client silence before the connection is closed
    cleanup_interval: PositiveFloat = 5.0  # how often stale connections are looked for
    max_pending_messages: PositiveInt = 1000  # per connection, must-deliver and control messages
    # Characters of JSON a connection may have waiting in its outbox, whatever their kind; past it the
    # connection is closed 1013 (it resumes with since). With server.ws_send_buffer it bounds what a
    # client that stops reading costs (docs/reliability.md, "What a client that stops reading costs").
    max_pending_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 1024 * 1024
    slow_consumer_timeout: PositiveFloat = 15.0  # a socket write blocked this long closes the connection
    close_timeout: PositiveFloat = 3.0  # how long a close handshake may take before the socket is dropped
    # Prices sent per connection and second whatever else is queued, so a flood of must-deliver messages
    # delays prices but never freezes them; unset: half of max_messages_per_second.
    price_share: PositiveInt | None = None
    # Connection limits (closed with 4429 and a reason); 0 turns one off. Per user and per client address
    # across the cluster on Redis; the connection rate per address is kept by each instance.
    max_connections_per_user: Annotated[int, msgspec.Meta(ge=0)] = 20
    max_connections_per_ip: Annotated[int, msgspec.Meta(ge=0)] = 500
    connect_rate_per_ip: Annotated[float, msgspec.Meta(ge=0)] = 10.0  # new connections a second, sustained
    connect_burst_per_ip: PositiveInt = 50


class RedisSettings(_Section):
    """The Redis backplane; without ``url`` one process serves alone on the in-memory backplane."""

    url: str | None = None  # REDIS_URL
    key_prefix: str = "legend:"  # every key this deployment writes (seq, history, leases, interest)
    channel_prefix: str = ""  # topics "{channel_prefix}price_updates" …; "": the specification's names
    stream_ttl: Annotated[float, msgspec.Meta(ge=0)] = 604_800.0  # idle stream keys expire (0: never)
    interest_ttl: Annotated[float, msgspec.Meta(ge=1)] = 15.0  # a silent instance's interest expires
    lease_ttl: Annotated[float, msgspec.Meta(ge=1)] = 10.0  # longest a dead instance keeps a lease
    # The quote poller's lease: prices are back within about this (plus a quarter of it) of losing the
    # poller. Shorter than lease_ttl, renewed every third of it; a pause longer than it (GC, a stalled event
    # loop, a slow link) hands polling over, and fencing keeps the paused holder from publishing after.
    poller_lease_ttl: Annotated[float, msgspec.Meta(ge=0.5)] = 2.0
    external_dedupe_ttl: PositiveFloat = 60.0  # window in which one external message is sequenced once
    connect_timeout: PositiveFloat = 2.0  # seconds to open a connection
    socket_timeout: PositiveFloat = 2.0  # seconds any one command may take: publish fails after it
    health_check_interval: PositiveFloat = 5.0  # a silent pub/sub line is noticed within this
    max_connections: PositiveInt = 50  # command connections per instance (plus one for pub/sub)
    reconnect_min_delay: PositiveFloat = 0.1  # listener backoff after losing Redis, doubling …
    reconnect_max_delay: PositiveFloat = 5.0  # … up to this
    # Publishes remembered (stream, seq) so that a listener that was away replays exactly what it missed:
    # at least the publishes of the longest outage to ride out.
    journal_size: Annotated[int, msgspec.Meta(ge=100, le=100_000_000)] = 100_000
    # Seconds every must-deliver message (alerts, pattern alerts, closed bars, news) is kept in the archive
    # beyond its stream's history: an instance whose subscription was away up to this long misses none of
    # them. 0 turns the archive off (a gap is then told once the history is outrun).
    must_deliver_retention: Annotated[float, msgspec.Meta(ge=0, le=604_800)] = 600.0
    # Redis Sentinel: the sentinels' "host:port"; the primary of ``service_name`` is asked of them and
    # followed across failovers. ``url`` then only gives credentials, database and TLS (its host is ignored).
    sentinels: list[str] = msgspec.field(default_factory=list)
    service_name: str | None = None
    sentinel_username: str | None = None  # when the sentinels themselves require AUTH
    sentinel_password: str | None = None
    # Each publish waits (WAIT, up to wait_timeout) until this many replicas have it, so that a failover
    # right after an acknowledged publish does not lose it. 0: asynchronous replication.
    wait_replicas: Annotated[int, msgspec.Meta(ge=0, le=16)] = 0
    wait_timeout: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.1  # seconds; below socket_timeout

    def __post_init__(self) -> None:
        if self.url is not None:
            redis_url(self.url)
        for address in self.sentinels:
            sentinel_address(address)  # raises ValueError with the reason
        if self.sentinels and not self.service_name:
            raise ValueError("service_name: required with sentinels (the name the sentinels monitor)")
        if self.service_name and not self.sentinels:
            raise ValueError("service_name: only meaningful with sentinels")
        if self.wait_replicas and self.wait_timeout >= self.socket_timeout:
            raise ValueError("wait_timeout: must be below socket_timeout (the publish's own deadline)")

    @property
    def enabled(self) -> bool:
        """The Redis backplane is configured: a URL or sentinels."""
        return bool(self.url or self.sentinels)


def sentinel_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) of one sentinel; ValueError saying what is wrong."""
    host, sep, port = address.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sentinels: expected 'host:port', got {address!r}")
    return host, int(port)


class SecuritySettings(_Section):
    """Who may connect, as whom, and who may administer."""

    auth: Literal["dev", "jwt"] = "dev"
    jwt_secret: str | None = None  # HS256
    jwt_public_key: str | None = None  # RS256: a PEM string or a path to a PEM file
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 30.0
    # An OpenID Connect provider's key set (Auth0, Keycloak, Cognito, Entra ID): tokens are verified with
    # the key their ``kid`` names. https (http only to a loopback host); not with jwt_secret/jwt_public_key.
    jwks_url: str | None = None
    jwks_cache_seconds: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 300.0  # the key set is reused
    # an unknown kid refetches the key set at most this often (a rotated key waits up to this long)
    jwks_refetch_seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 30.0
    jwks_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    # REST limits on /api/* (token buckets kept by each instance; 0 turns one off): requests a second,
    # sustained, and at most ``burst`` at once, per user and per client address. Requests with the
    # admin token are not limited; /health, /ready, /metrics, /docs and static files never are.
    api_rate: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    api_burst: Annotated[int, msgspec.Meta(ge=1)] = 60
    api_address_rate: Annotated[float, msgspec.Meta(ge=0)] = 50.0
    api_address_burst: Annotated[int, msgspec.Meta(ge=1)] = 150
    admin_token: str | None = None  # LEGEND_ADMIN_TOKEN; generated and printed at start when unset
    # Origins allowed to open a WebSocket. Empty: same origin as the Host header (plus non-browser
    # clients, which send no Origin). ["*"] allows any.
    allowed_origins: list[str] = msgspec.field(default_factory=list)
    allow_insecure: bool = False  # serve on a non-loopback address without JWT (development only)
    # JWT mode: where the dashboard's "Sign in" button goes (your login service, which sends the user back
    # to /dashboard#token=<JWT>). An http(s) URL or a path on this server; unset: tokens are pasted.
    login_url: str | None = None

    def __post_init__(self) -> None:
        if self.jwks_url is not None:
            jwks_url(self.jwks_url)
            if self.jwt_secret or self.jwt_public_key:
                raise ValueError(
                    "jwks_url: the keys come from the identity provider; remove jwt_secret and "
                    "jwt_public_key (one source of keys)"
                )
        url = self.login_url
        if url is not None and not (url.startswith("/") and not url.startswith("//")):
            if not url.startswith(("https://", "http://")):
                raise ValueError(
                    f"login_url: expected an http(s):// URL or a path starting with /, got {url!r}"
                )
            http_url(url, "login_url")


class MarketSettings(_Section):
    """Which exchange calendar drives market hours."""

    calendar: str = "XNYS"
    # A directory where the calendar's schedule is kept between starts (legend/adapters/market_calendar.py).
    calendar_cache: str | None = None


class QuotesReplayFile(_Section):
    """One replayed file, when it needs its own start date: ``AAPL = { path = "…", start = 2017-01-03 }``."""

    path: str
    start: date | None = None  # first session replayed; overrides quotes.replay.start for this file


class QuotesReplaySettings(_Section):
    """``provider = "replay"``: real historical OHLCV bars from CSV files, one file per ticker.

    Without ``files`` the bundled sample replays: the real S&P 500 one-minute bars of 5–8 Nov 2019 as
    ticker ``SPX``. See docs/providers.md for the CSV layouts understood and how figures are derived.
    """

    files: dict[str, str | QuotesReplayFile] = msgspec.field(default_factory=dict)  # TICKER = path
    speed: PositiveFloat = 1.0  # bars per fetch (advance = "fetch") or per real second ("time")
    advance: Literal["fetch", "time"] = "fetch"
    loop: bool = True  # start again at the end; false holds the last bar
    start: date | None = None  # first session replayed in every file (default: the file's first bar)
    timezone: str = "America/New_York"  # of naive timestamps, and where a session's date is taken

    def __post_init__(self) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from legend.domain.symbols import InvalidSymbol, normalize_ticker

        files: dict[str, str | QuotesReplayFile] = {}
        for ticker, source in self.files.items():
            try:
                files[normalize_ticker(ticker)] = source
            except InvalidSymbol as exc:
                raise ValueError(f"files: {exc}") from None
            if not (source if isinstance(source, str) else source.path).strip():
                raise ValueError(f"files.{ticker}: the path is empty")
        self.files = files
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None


class QuotesVendorSettings(_Section):
    """What every HTTP market-data vendor adapter shares: where, how long, how fast, how to back off."""

    base_url: str = ""
    timeout: PositiveFloat = 5.0  # seconds for one HTTP request (connect, read, write)
    max_concurrency: PositiveInt = 4  # requests in flight at once
    requests_per_minute: PositiveInt = 60
    # A fetch waits this long at most for rate limits (the vendor's Retry-After, our pacing); what does not
    # fit is fetched first next time. Keep it under realtime.update_interval.
    fetch_budget: PositiveFloat = 4.0
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 2  # retries of one request after HTTP 429
    backoff_initial: PositiveFloat = 1.0  # seconds after a 429 without Retry-After, doubling …
    backoff_max: PositiveFloat = 60.0  # … up to this

    def __post_init__(self) -> None:
        http_url(self.base_url, "base_url")


class QuotesFinnhubSettings(QuotesVendorSettings):
    """``provider = "finnhub"``: Finnhub's REST quote endpoint, one request per ticker."""

    api_key: str | None = None  # else $FINNHUB_API_KEY
    base_url: str = "https://finnhub.io/api/v1"
    max_concurrency: PositiveInt = 8
    requests_per_second: PositiveInt = 30  # Finnhub's cap on every plan
    requests_per_minute: PositiveInt = 60  # the free plan; raise it with a paid plan


class QuotesAlpacaSettings(QuotesVendorSettings):
    """``provider = "alpaca"``: Alpaca market data v2 snapshots, many tickers per request."""

    key_id: str | None = None  # else $APCA_API_KEY_ID
    secret_key: str | None = None  # else $APCA_API_SECRET_KEY
    base_url: str = "https://data.alpaca.markets"
    feed: Literal["iex", "sip", "delayed_sip"] = "iex"  # iex on the free plan
    max_symbols_per_request: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    requests_per_minute: PositiveInt = 200  # the Basic plan


class QuotesSettings(_Section):
    """Which quote provider feeds the quote poller, and each provider's own table (docs/providers.md)."""

    # Built in: simulated, replay, finnhub, alpaca; a plugin may register others, so the name is checked when
    # the provider is built (at start), where the plugins are known.
    provider: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.\-]+$")] = "simulated"
    seed: int = 42  # simulated
    replay: QuotesReplaySettings = msgspec.field(default_factory=QuotesReplaySettings)
    finnhub: QuotesFinnhubSettings = msgspec.field(default_factory=QuotesFinnhubSettings)
    alpaca: QuotesAlpacaSettings = msgspec.field(default_factory=QuotesAlpacaSettings)


class DatabaseSettings(_Section):
    """Where watchlists, alert rules and alert triggers are stored."""

    # SQLAlchemy URL: sqlite+aiosqlite:///path/legend.db or postgresql+asyncpg://user:pass@host/db.
    # Unset: the embedded default, a SQLite file in data_dir (created on first start).
    url: str | None = None
    data_dir: str = "./data"
    # Apply migrations at start; unset means only for SQLite (run `legend db upgrade` for PostgreSQL).
    migrate_on_start: bool | None = None
    echo: bool = False  # log every SQL statement
    # PostgreSQL: seconds a statement (and opening a connection) may take before it fails. A link cut
    # silently would otherwise hold a query, and the work waiting on it (alert evaluation), forever.
    # `legend db upgrade` runs without it (a migration may take long). 0: no limit.
    command_timeout: Annotated[float, msgspec.Meta(ge=0)] = 15.0

    def __post_init__(self) -> None:
        if self.url is not None:
            database_backend(self.url)
        if not self.data_dir.strip():
            raise ValueError("data_dir: empty; use a directory such as ./data")


class WatchlistSettings(_Section):
    """Per-user watchlists."""

    max_tickers: PositiveInt = 200  # per user


class AlertSettings(_Section):
    """Per-user alert rules and the delivery of their triggers."""

    max_rules_per_user: PositiveInt = 200
    retry_interval: PositiveFloat = 5.0  # seconds between attempts to publish triggers that failed to go out
    claim_seconds: PositiveFloat = 30.0  # how long an instance owns a trigger it is publishing
    # Rule changes reach the evaluating instance through the price log at once; as a backstop (a change
    # whose notice could not be logged while Redis was down) it re-reads every rule this often; 0: never.
    reload_interval: Annotated[float, msgspec.Meta(ge=0)] = 300.0
    # Entries of the price log kept for evaluation (every price and rule change, cluster-wide): how far
    # evaluation may fall behind (a takeover, a slow database) before prices go unevaluated.
    log_size: Annotated[int, msgspec.Meta(ge=1000, le=100_000_000)] = 100_000
    # How long a published trigger is remembered so that a retry after a crash cannot send it twice.
    dedupe_seconds: PositiveFloat = 3600.0
    # Where the single server (the in-memory backplane) keeps its price log: "database" (durable: a price
    # is committed before its publish is answered, so a crash loses no crossing) or "memory" (a crash
    # loses the prices evaluation had not read yet). With Redis the log is Redis's.
    price_log: Literal["database", "memory"] = "database"


class MetricsSettings(_Section):
    """``GET /metrics`` for Prometheus (docs/operations.md)."""

    public: bool = False  # scrape without the admin token (a trusted network, or a proxy that guards it)
    # Also serve GET /metrics, and nothing else, on this port: worker N of server.workers on port + N, so
    # that Prometheus scrapes each worker (on the shared port a scrape reaches one worker at random).
    # 0: only on the server's port.
    port: Port = 0


class Settings(_Section):
    """Everything ``legend.toml`` may hold."""

    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    realtime: RealtimeSettings = msgspec.field(default_factory=RealtimeSettings)
    redis: RedisSettings = msgspec.field(default_factory=RedisSettings)
    security: SecuritySettings = msgspec.field(default_factory=SecuritySettings)
    market: MarketSettings = msgspec.field(default_factory=MarketSettings)
    quotes: QuotesSettings = msgspec.field(default_factory=QuotesSettings)
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    watchlist: WatchlistSettings = msgspec.field(default_factory=WatchlistSettings)
    alerts: AlertSettings = msgspec.field(default_factory=AlertSettings)
    bars: BarSettings = msgspec.field(default_factory=BarSettings)
    notifications: NotificationSettings = msgspec.field(default_factory=NotificationSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    # [plugins]: which plugins run, plus one [plugins.<name>] table per plugin, validated by that plugin.
    plugins: dict[str, Any] = msgspec.field(default_factory=dict)


# The specification's own variable names, kept as they are, and where they land.
SEED_ENV: Mapping[str, tuple[str, str]] = {
    "REDIS_URL": ("redis", "url"),
    "REALTIME_UPDATE_INTERVAL": ("realtime", "update_interval"),
    "REALTIME_AFTER_HOURS_INTERVAL": ("realtime", "after_hours_interval"),
    "LEGEND_ADMIN_TOKEN": ("security", "admin_token"),
}
ENV_PREFIX = "LEGEND_"
CONFIG_ENV = "LEGEND_CONFIG"


def _env_value(raw: str) -> Any:
    """An environment value as TOML would read it: JSON lists/objects, numbers and booleans, else text."""
    text = raw.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return raw
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return raw


def _overrides(environ: Mapping[str, str]) -> list[tuple[str, str, str, Any]]:
    """(variable, section, key, value) for every recognised environment override."""
    found: list[tuple[str, str, str, Any]] = []
    for var, (section, key) in SEED_ENV.items():
        if environ.get(var):
            found.append((var, section, key, _env_value(environ[var])))
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or "__" not in var or var in SEED_ENV:
            continue
        section, _, key = var[len(ENV_PREFIX) :].lower().partition("__")
        found.append((var, section, key, _env_value(raw)))
    return found


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[tuple[str, str, str, Any]] = (),
) -> Settings:
    """Read ``path`` (or ``$LEGEND_CONFIG``, or nothing), apply environment overrides, then ``overrides``
    (``(label, section, key, value)``, the command line's ``--port`` …), validating after each step so
    that an error names where the bad value came from. Raises SettingsError."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    source = path if path is not None else env.get(CONFIG_ENV)
    if path is not None and not str(path).strip():
        raise SettingsError("--config: the path is empty")
    if source:
        file = Path(source)
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"settings file not found: {file}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"settings file {file} cannot be read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"settings file {file} is not valid TOML: {exc}") from None
    _validate(raw, f"{source}")
    labelled = [(f"environment variable {var}", *rest) for var, *rest in _overrides(env)]
    for label, section, key, value in [*labelled, *overrides]:
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise SettingsError(f"{label}: section {section!r} is not a table")
        table[key] = value
        _validate(raw, label)
    return msgspec.convert(raw, Settings, strict=False)


def _validate(raw: dict[str, Any], label: str) -> None:
    try:
        msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"{label}: {exc}") from None
