"""The single server's price log: every price and rule change, durable before the publish is answered.

With the in-memory backplane (one process, no Redis) alert evaluation reads this table instead of a log in
memory, so a crash loses no acknowledged price (docs/alerts.md). Entries are deleted once evaluated.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_price_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_price_log"),
    )


def downgrade() -> None:
    op.drop_table("alert_price_log")
