"""sales: subscriptions (认购) of reserved units and the requests they wait on

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06

A subscription locks a reserved unit's price (list price less a discount) for a client and
sets a deadline to sign the contract; at most one open subscription (pending approval or
active) holds a unit. ``subscription_request`` keeps what waits for someone else's decision:
a discount above the tenant's limit (with the prices reviewed) or more days to sign.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscription",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "project_id", sa.Uuid(), sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "unit_id", sa.Uuid(), sa.ForeignKey("unit.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "client_id", sa.Uuid(), sa.ForeignKey("client.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("pledge_id", sa.Uuid()),
        sa.Column("deposit_id", sa.Uuid()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("list_price", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("discount_pct", sa.Numeric(6, 2), nullable=False),
        sa.Column("agreed_price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("sign_deadline", sa.DateTime(timezone=True)),
        sa.Column("note", sa.String(300), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("withdraw_reason", sa.String(300)),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending_approval', 'active', 'rejected', 'withdrawn', 'expired')",
            name="status",
        ),
        sa.CheckConstraint(
            "list_price > 0 AND discount BETWEEN 0 AND list_price - 1 "
            "AND agreed_price = list_price - discount",
            name="price",
        ),
        sa.CheckConstraint("refunded >= 0", name="refunded"),
        sa.CheckConstraint("(status = 'withdrawn') = (withdrawn_at IS NOT NULL)", name="withdrawn"),
        sa.CheckConstraint("status <> 'active' OR sign_deadline IS NOT NULL", name="deadline"),
    )
    op.create_index(
        "ux_subscription_open_unit",
        "subscription",
        ["unit_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending_approval', 'active')"),
    )
    op.create_index("ix_subscription_project_status", "subscription", ["project_id", "status"])
    op.create_index("ix_subscription_client", "subscription", ["client_id"])
    op.create_index(
        "ix_subscription_deadline",
        "subscription",
        ["sign_deadline"],
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "subscription_request",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "subscription_id",
            sa.Uuid(),
            sa.ForeignKey("subscription.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("unit_id", sa.Uuid()),
        sa.Column("list_price", sa.BigInteger()),
        sa.Column("agreed_price", sa.BigInteger()),
        sa.Column("days", sa.SmallInteger()),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Uuid()),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decision_note", sa.String(300), nullable=False),
        sa.CheckConstraint("kind IN ('discount', 'extension')", name="kind"),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'stale', 'canceled')", name="status"
        ),
        sa.CheckConstraint(
            "(kind = 'discount') = (unit_id IS NOT NULL AND list_price IS NOT NULL "
            "AND agreed_price IS NOT NULL)",
            name="discount",
        ),
        sa.CheckConstraint("(kind = 'extension') = (days IS NOT NULL)", name="extension"),
    )
    op.create_index(
        "ux_subscription_request_pending",
        "subscription_request",
        ["subscription_id", "kind"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("subscription_request")
    op.drop_table("subscription")
