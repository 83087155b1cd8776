"""OHLCV bars, one row per (ticker, interval, start), upserted by the bar builder with its log position.

The primary key serves "the last N bars of a ticker at an interval" as one range read (on SQLite the rows
live in it: WITHOUT ROWID); (interval, start) serves pruning by retention; a partial index finds the open
bars at a takeover, which goes on from each bar's ``last_at`` and ``session_volume`` exactly.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from legend.adapters.sql.tables import UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bars",
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("interval", sa.String(4), nullable=False),
        sa.Column("start", UtcDateTime(), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("regular", sa.Boolean(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("last_at", UtcDateTime(), nullable=True),
        sa.Column("session_volume", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("\"interval\" IN ('1m', '5m', '15m', '1h', '1d')", name="ck_bars_interval"),
        sa.PrimaryKeyConstraint("ticker", "interval", "start", name="pk_bars"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_bars_interval_start", "bars", ["interval", "start"])
    op.create_index(
        "ix_bars_open",
        "bars",
        ["ticker"],
        sqlite_where=sa.text("closed = 0"),  # as SQLAlchemy writes NOT closed there
        postgresql_where=sa.text("NOT closed"),
    )


def downgrade() -> None:
    op.drop_index("ix_bars_open", table_name="bars")
    op.drop_index("ix_bars_interval_start", table_name="bars")
    op.drop_table("bars")
