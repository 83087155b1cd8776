"""A small key-value store per plugin.

Until plugins owned their tables, this revision also created ``portfolio_positions``: the portfolio
plugin's own first revision (``legend/plugins/builtin/portfolio/migrations``) creates it now, and keeps it
with its rows in a database that this revision made before.

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
        "plugin_state",
        sa.Column("plugin", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("plugin", "key", name="pk_plugin_state"),
    )


def downgrade() -> None:
    op.drop_table("plugin_state")
