"""devices, notifications (the inbox), deliveries, preferences and quiet hours

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = "'leads', 'listing_updates', 'payments', 'property_notices', 'marketing', 'system'"


def _ts(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "device",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("app", sa.String(10), nullable=False),
        sa.Column("platform", sa.String(10), nullable=False),
        sa.Column("token", sa.String(4096), nullable=False),
        sa.Column("is_fid", sa.Boolean(), nullable=False),
        sa.Column("installation_id", sa.String(200), nullable=False),
        sa.Column("locale", sa.String(10), nullable=False),
        sa.Column("app_version", sa.String(40), nullable=False),
        _ts("created_at"),
        _ts("last_seen_at"),
        sa.CheckConstraint("app IN ('agent', 'owner', 'staff')", name="ck_device_app"),
        sa.CheckConstraint("platform IN ('ios', 'android', 'web')", name="ck_device_platform"),
    )
    op.create_index("uq_device_token", "device", ["token"], unique=True)
    op.create_index("ix_device_account", "device", ["account_id"])
    op.create_table(
        "notification",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("template", sa.String(50), nullable=False),
        sa.Column("params", postgresql.JSONB(), nullable=False),
        sa.Column("locale", sa.String(10), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        _ts("created_at"),
        _ts("read_at", True),
        sa.CheckConstraint(f"category IN ({CATEGORIES})", name="ck_notification_category"),
    )
    op.create_index("ix_notification_account", "notification", ["account_id", "id"])
    op.create_index(
        "ix_notification_unread",
        "notification",
        ["account_id"],
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.create_table(
        "notification_delivery",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "notification_id",
            sa.Uuid(),
            sa.ForeignKey("notification.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("device_id", sa.Uuid()),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        _ts("next_attempt_at", True),
        _ts("sent_at", True),
        sa.Column("last_error", sa.String(300), nullable=False),
        sa.CheckConstraint(
            "channel IN ('push', 'email', 'sms')", name="ck_notification_delivery_channel"
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'deferred', 'sent', 'collapsed', 'dropped', 'failed', "
            "'skipped')",
            name="ck_notification_delivery_status",
        ),
    )
    op.create_index(
        "ix_notification_delivery_notification", "notification_delivery", ["notification_id"]
    )
    op.create_index(
        "ix_notification_delivery_due",
        "notification_delivery",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'deferred')"),
    )
    op.create_index(
        "ix_notification_delivery_throttle",
        "notification_delivery",
        ["account_id", "category", "sent_at"],
        postgresql_where=sa.text("channel = 'push' AND status = 'sent'"),
    )
    op.create_table(
        "notification_preference",
        sa.Column("account_id", sa.Uuid(), primary_key=True),
        sa.Column("category", sa.String(20), primary_key=True),
        sa.Column("push", sa.Boolean(), nullable=False),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.Column("sms", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            f"category IN ({CATEGORIES})", name="ck_notification_preference_category"
        ),
    )
    op.create_table(
        "notification_quiet_hours",
        sa.Column("account_id", sa.Uuid(), primary_key=True),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "notification_quiet_hours",
        "notification_preference",
        "notification_delivery",
        "notification",
        "device",
    ):
        op.drop_table(table)
