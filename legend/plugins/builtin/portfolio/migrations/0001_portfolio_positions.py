"""Portfolio positions: each user's holdings, one per ticker.

A database migrated before plugins owned their tables has this table already (the server's own revision
0002 created it then), with its rows: it is kept as it is, the same table, and only recorded as migrated.

Revision ID: 0001
Revises:
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from legend.plugins import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("portfolio_positions"):
        return  # made by the server's revision 0002 of earlier versions: keep it, and its rows
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


def downgrade() -> None:
    op.drop_table("portfolio_positions")
