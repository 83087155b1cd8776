"""Alert conditions: channels, moves within a window, moving averages, bar closes, sessions and expiry.

New columns on alert_rules (the condition's fields, when it is evaluated, why it is disarmed); threshold
becomes nullable (channels and moving-average crosses have none) and the kind check takes the new kinds.
Rules stored before keep what they did: evaluated on every price, around the clock (session ``any``); a
disarmed one was disarmed by its trigger if it fired, else by its owner.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from legend.adapters.sql.tables import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = (
    "price_above",
    "price_below",
    "breakout",
    "breakdown",
    "change_percent_above",
    "change_percent_below",
    "volume_above",
)
KINDS = (
    *OLD_KINDS,
    "crossing",
    "entering_channel",
    "exiting_channel",
    "moving_up",
    "moving_down",
    "moving_up_percent",
    "moving_down_percent",
    "sma_cross_up",
    "sma_cross_down",
    "volume_spike",
)


def _one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    # SQLite rebuilds the table for the nullable threshold and the new check: keep its AUTOINCREMENT
    with op.batch_alter_table("alert_rules", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("lower", sa.Double(), nullable=True))
        batch.add_column(sa.Column("upper", sa.Double(), nullable=True))
        batch.add_column(sa.Column("window_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("period", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("interval", sa.String(4), nullable=True))
        batch.add_column(sa.Column("evaluate", sa.String(16), nullable=False, server_default="tick"))
        batch.add_column(sa.Column("session", sa.String(16), nullable=False, server_default="any"))
        batch.add_column(sa.Column("expires_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("disarmed", sa.String(16), nullable=True))
        batch.alter_column("threshold", existing_type=sa.Double(), nullable=True)
        batch.drop_constraint("ck_alert_rules_kind", type_="check")
        batch.create_check_constraint("ck_alert_rules_kind", sa.text(_one_of("kind", KINDS)))
    op.execute(
        "UPDATE alert_rules SET disarmed = CASE WHEN generation > 0 THEN 'trigger' ELSE 'user' END "
        "WHERE NOT armed"
    )


def downgrade() -> None:
    op.execute(f"DELETE FROM alert_rules WHERE NOT ({_one_of('kind', OLD_KINDS)}) OR threshold IS NULL")
    with op.batch_alter_table("alert_rules", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint("ck_alert_rules_kind", type_="check")
        batch.create_check_constraint("ck_alert_rules_kind", sa.text(_one_of("kind", OLD_KINDS)))
        batch.alter_column("threshold", existing_type=sa.Double(), nullable=False)
        for name in ("disarmed", "expires_at", "session", "evaluate", "interval", "period", "window_seconds",
                     "upper", "lower"):  # fmt: skip
            batch.drop_column(name)
