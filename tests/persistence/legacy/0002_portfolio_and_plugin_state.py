"""Portfolio positions (the portfolio plugin) and a small key-value store per plugin.

Test data: revision 0002 as Legend shipped it before plugins owned their tables (it made the portfolio
plugin's table in the server's history). tests/persistence/test_migrations.py migrates a database with it,
as a server of then did, and upgrades that database to today's revisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-19
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from legend.adapters.sql.tables import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portfolio_positions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("average_cost", sa.Double(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_portfolio_positions"),
        sa.UniqueConstraint("user_id", "ticker", name="uq_portfolio_positions_user_id_ticker"),
        sa.CheckConstraint("average_cost >= 0", name="ck_portfolio_positions_average_cost"),
        sa.CheckConstraint("quantity <> 0", name="ck_portfolio_positions_quantity"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "plugin_state",
        sa.Column("plugin", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("plugin", "key", name="pk_plugin_state"),
    )


def downgrade() -> None:
    op.drop_table("plugin_state")
    op.drop_table("portfolio_positions")
