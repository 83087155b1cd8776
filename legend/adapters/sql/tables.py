"""The server's tables (SQLAlchemy Core). ``migrations/`` creates exactly these; a test compares the two.

Plugins declare their own tables (``register_storage``), with ``UtcDateTime`` and ``NAMING`` from here
through ``legend.plugins``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from legend.domain.alert_rules import AlertKind, Rearm
from legend.domain.bars import INTERVALS

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out: ``timestamptz`` on PostgreSQL, naive UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _one_of(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


KIND_VALUES = [k.value for k in AlertKind]
REARM_VALUES = [r.value for r in Rearm]

watchlist_items = Table(
    "watchlist_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("ticker", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("user_id", "ticker"),
    sqlite_autoincrement=True,
)

alert_rules = Table(
    "alert_rules",
    metadata,
    # AUTOINCREMENT on SQLite: an id is never reused, so "{rule_id}:{generation}" stays a unique event key
    Column("id", Integer, primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("ticker", String(16), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("threshold", Double(), nullable=True),  # None: channels and moving-average crosses
    Column("rearm", String(16), nullable=False),
    Column("cooldown_seconds", Double(), nullable=True),
    Column("armed", Boolean(), nullable=False),
    Column("side", Boolean(), nullable=True),
    Column("lower", Double(), nullable=True),
    Column("upper", Double(), nullable=True),
    Column("window_seconds", Integer, nullable=True),
    Column("period", Integer, nullable=True),
    Column("interval", String(4), nullable=True),
    Column("evaluate", String(16), nullable=False, server_default="tick"),
    Column("session", String(16), nullable=False, server_default="any"),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("disarmed", String(16), nullable=True),
    Column("notify", String(40), nullable=True),  # revision 0008: "push,webhook" (null: every destination)
    Column("generation", Integer, nullable=False),
    Column("last_triggered_at", UtcDateTime(), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    CheckConstraint(_one_of("kind", KIND_VALUES), name="kind"),
    CheckConstraint(_one_of("rearm", REARM_VALUES), name="rearm"),
    CheckConstraint("generation >= 0", name="generation"),
    Index(None, "user_id", "id"),
    sqlite_autoincrement=True,
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alert_key", String(40), nullable=False),
    Column("rule_id", Integer, ForeignKey("alert_rules.id", ondelete="SET NULL"), nullable=True),
    Column("generation", Integer, nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("ticker", String(16), nullable=False),
    Column("alert_type", String(32), nullable=False),
    Column("threshold", Double(), nullable=False),
    Column("value", Double(), nullable=False),
    Column("price", Double(), nullable=False),
    Column("message", String(500), nullable=False),
    Column("triggered_at", UtcDateTime(), nullable=False),
    Column("published_at", UtcDateTime(), nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", UtcDateTime(), nullable=True),
    # revision 0008: its deliveries (alert_deliveries) are planned; false until the delivery service has
    Column("planned", Boolean(), nullable=False, server_default=false()),
    UniqueConstraint("alert_key"),
    Index(None, "user_id", "id"),
    Index(
        "ix_alert_events_unpublished",
        "id",
        sqlite_where=text("published_at IS NULL"),
        postgresql_where=text("published_at IS NULL"),
    ),
    sqlite_autoincrement=True,
)

# ───────────── revision 0002: a small key-value store per plugin (``PluginContext.store``) ─────────────
# (A plugin's own tables are its own: declared by its ``register_storage`` hook, migrated by its revisions.)

plugin_state = Table(
    "plugin_state",
    metadata,
    Column("plugin", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("value", Text(), nullable=False),  # JSON
    Column("updated_at", UtcDateTime(), nullable=False),
)

# ───────────── revision 0003: how far alert evaluation (and the bar builder) has read each price log ─────────────

alert_log_positions = Table(
    "alert_log_positions",
    metadata,
    # the log (e.g. the Redis stream key); the bar builder's are prefixed "bars:" (legend/adapters/sql/bars.py)
    Column("name", String(100), primary_key=True),
    Column("position", String(64), nullable=False),  # the last entry taken into account
    Column("updated_at", UtcDateTime(), nullable=False),
)

# ───────────── revision 0004: the single server's price log (the in-memory backplane's, made durable) ─────────────

alert_price_log = Table(
    "alert_price_log",
    metadata,
    # assigned by the one process that appends, gapless and increasing: the position alert evaluation
    # stores in alert_log_positions (as text, like a Redis stream id); on SQLite the rowid itself
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("at", Double(), nullable=False),  # epoch seconds when the entry was appended
    Column("kind", String(8), nullable=False),  # "price", "rule" or "status"
    Column("data", Text(), nullable=False),  # the price_update's or market_status's JSON, or the rule id
)

# ───────────── revision 0005: OHLCV bars (legend.domain.bars), kept per interval for a retention period ─────────────

bars = Table(
    "bars",
    metadata,
    Column("ticker", String(16), primary_key=True),
    Column("interval", String(4), primary_key=True),
    Column("start", UtcDateTime(), primary_key=True),
    Column("open", Double(), nullable=False),
    Column("high", Double(), nullable=False),
    Column("low", Double(), nullable=False),
    Column("close", Double(), nullable=False),
    Column("volume", BigInteger(), nullable=False),
    Column("regular", Boolean(), nullable=False),
    Column("closed", Boolean(), nullable=False),
    # where a successor takes the bar over (Bar.last_at, Bar.session_volume): null when not known
    Column("last_at", UtcDateTime(), nullable=True),
    Column("session_volume", BigInteger(), nullable=True),
    CheckConstraint(
        _one_of('"interval"', list(INTERVALS)), name="interval"
    ),  # quoted: a keyword in PostgreSQL
    # pruning: the bars of one interval older than its retention, across tickers
    Index(None, "interval", "start"),
    # a takeover's open_bars(): the few unfinished ones, never a scan of the table (the predicate as
    # SQLAlchemy writes NOT closed on each backend, so that the planner matches the query to it)
    Index("ix_bars_open", "ticker", sqlite_where=text("closed = 0"), postgresql_where=text("NOT closed")),
    # SQLite: the rows live in the primary key's B-tree, so "the last 500 of AAPL at 1m" is one range
    sqlite_with_rowid=False,
)

# ───────────── revision 0006: how far the bar backfill has fetched each ticker's history, per interval ─────────────

bar_backfill = Table(
    "bar_backfill",
    metadata,
    Column("ticker", String(16), primary_key=True),
    Column("interval", String(4), primary_key=True),
    # the stretch [start, end) fetched from the provider, contiguous; a restart fetches only outside it
    Column("start", UtcDateTime(), nullable=False),
    Column("end", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# ───────────── revision 0008: where alert triggers go besides the WebSocket (docs/alerts.md) ─────────────

notify_webhooks = Table(
    "notify_webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("secret", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index(None, "user_id", "id"),
    sqlite_autoincrement=True,
)

notify_push = Table(
    "notify_push",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("endpoint", String(2048), nullable=False),
    Column("p256dh", String(200), nullable=False),
    Column("auth", String(100), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("user_id", "endpoint"),
    sqlite_autoincrement=True,
)

notify_email = Table(
    "notify_email",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("address", String(320), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("user_id", "address"),
    sqlite_autoincrement=True,
)

# One row per trigger and destination: handed to one sender at a time (claimed), every attempt accounted
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, ForeignKey("alert_events.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("destination_id", Integer, nullable=False),
    Column("state", String(10), nullable=False),  # pending, retrying, delivered, failed, removed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=True),  # null once delivered, failed or removed
    Column("last_error", String(500), nullable=True),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("event_id", "channel", "destination_id"),
    CheckConstraint(
        _one_of("state", ["pending", "retrying", "delivered", "failed", "removed"]), name="state"
    ),
    Index("ix_alert_deliveries_due", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# Keys the server makes once and every instance shares (the Web Push VAPID key pair)
server_keys = Table(
    "server_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
