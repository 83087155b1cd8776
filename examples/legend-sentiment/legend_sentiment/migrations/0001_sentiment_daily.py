"""Each ticker's readings summed per day.

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
    op.create_table(
        "sentiment_daily",
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.Column("bullish", sa.Integer(), nullable=False),
        sa.Column("bearish", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Double(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ticker", "day", name="pk_sentiment_daily"),
    )


def downgrade() -> None:
    op.drop_table("sentiment_daily")
