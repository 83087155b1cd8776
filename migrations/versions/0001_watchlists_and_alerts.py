"""Watchlists, alert rules with their evaluation state, and alert trigger events (the outbox).

Revision ID: 0001
Revises:
Create Date: 2026-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from legend.adapters.sql.tables import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = (
    "price_above",
    "price_below",
    "breakout",
    "breakdown",
    "change_percent_above",
    "change_percent_below",
    "volume_above",
)
REARMS = ("once", "recross", "cooldown")


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "watchlist_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_watchlist_items"),
        sa.UniqueConstraint("user_id", "ticker", name="uq_watchlist_items_user_id_ticker"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("rearm", sa.String(16), nullable=False),
        sa.Column("cooldown_seconds", sa.Double(), nullable=True),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("side", sa.Boolean(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("last_triggered_at", UtcDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_rules"),
        sa.CheckConstraint(_one_of("kind", KINDS), name="ck_alert_rules_kind"),
        sa.CheckConstraint(_one_of("rearm", REARMS), name="ck_alert_rules_rearm"),
        sa.CheckConstraint("generation >= 0", name="ck_alert_rules_generation"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alert_rules_user_id_id", "alert_rules", ["user_id", "id"])
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_key", sa.String(40), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("alert_type", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("triggered_at", UtcDateTime(), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
        sa.UniqueConstraint("alert_key", name="uq_alert_events_alert_key"),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.id"], name="fk_alert_events_rule_id_alert_rules", ondelete="SET NULL"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alert_events_user_id_id", "alert_events", ["user_id", "id"])
    op.create_index(
        "ix_alert_events_unpublished",
        "alert_events",
        ["id"],
        sqlite_where=sa.text("published_at IS NULL"),
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_alert_events_unpublished", table_name="alert_events")
    op.drop_index("ix_alert_events_user_id_id", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_index("ix_alert_rules_user_id_id", table_name="alert_rules")
    op.drop_table("alert_rules")
    op.drop_table("watchlist_items")
