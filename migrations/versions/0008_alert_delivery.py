"""Where alert triggers go besides the WebSocket: the users' destinations (webhooks, Web Push subscriptions,
e-mail addresses), one delivery row per trigger and destination, the keys the server makes once (VAPID),
a rule's channels (``notify``) and whether a trigger's deliveries are planned. Triggers stored before are
marked planned: they are not sent anywhere after the upgrade.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from legend.adapters.sql.tables import UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notify_webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notify_webhooks"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notify_webhooks_user_id_id", "notify_webhooks", ["user_id", "id"])
    op.create_table(
        "notify_push",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("p256dh", sa.String(200), nullable=False),
        sa.Column("auth", sa.String(100), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notify_push"),
        sa.UniqueConstraint("user_id", "endpoint", name="uq_notify_push_user_id_endpoint"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "notify_email",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notify_email"),
        sa.UniqueConstraint("user_id", "address", name="uq_notify_email_user_id_address"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("destination_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["alert_events.id"],
            name="fk_alert_deliveries_event_id_alert_events",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "event_id",
            "channel",
            "destination_id",
            name="uq_alert_deliveries_event_id_channel_destination_id",
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'retrying', 'delivered', 'failed', 'removed')",
            name="ck_alert_deliveries_state",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["next_attempt_at"])
    op.create_table(
        "server_keys",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_server_keys"),
    )
    with op.batch_alter_table("alert_rules", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("notify", sa.String(40), nullable=True))
    with op.batch_alter_table("alert_events", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("planned", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE alert_events SET planned = TRUE")


def downgrade() -> None:
    with op.batch_alter_table("alert_events", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("planned")
    with op.batch_alter_table("alert_rules", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("notify")
    op.drop_table("server_keys")
    op.drop_index("ix_alert_deliveries_due", "alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_table("notify_email")
    op.drop_table("notify_push")
    op.drop_index("ix_notify_webhooks_user_id_id", "notify_webhooks")
    op.drop_table("notify_webhooks")
