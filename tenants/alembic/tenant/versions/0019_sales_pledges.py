"""sales: pledges (认筹) numbered per project, and payments of kind pledge

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

A pledge is a client's registered intent for a project, with a queue number per project
(``pledge_queue`` holds the last one given: incremented in the registering transaction, so
numbers are gapless and never given twice) and an optional fee paid through Stripe as a
payment of the new kind ``pledge``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pledge_queue",
        sa.Column(
            "project_id",
            sa.Uuid(),
            sa.ForeignKey("project.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("last_number", sa.Integer(), nullable=False),
    )
    op.create_table(
        "pledge",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "project_id", sa.Uuid(), sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "client_id", sa.Uuid(), sa.ForeignKey("client.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("queue_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_id", sa.Uuid()),
        sa.Column("paid_at", sa.DateTime(timezone=True)),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("withdraw_reason", sa.String(300)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'withdrawn', 'converted')", name="status"),
        sa.CheckConstraint("fee >= 0 AND refunded BETWEEN 0 AND fee", name="fee"),
        sa.CheckConstraint("queue_number > 0", name="queue_number"),
        sa.CheckConstraint("(status = 'withdrawn') = (withdrawn_at IS NOT NULL)", name="withdrawn"),
        sa.UniqueConstraint("project_id", "queue_number"),
    )
    op.create_index(
        "ux_pledge_active_client",
        "pledge",
        ["project_id", "client_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_pledge_client", "pledge", ["client_id"])
    op.create_index("ix_pledge_payment", "pledge", ["payment_id"])
    # 0014 named it twice over (the naming convention prefixed an explicit name).
    op.drop_constraint(op.f("ck_payment_ck_payment_kind"), "payment")
    op.create_check_constraint(
        op.f("ck_payment_kind"), "payment", "kind IN ('deposit', 'fee', 'pledge')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM payment WHERE kind = 'pledge'")
    op.drop_constraint(op.f("ck_payment_kind"), "payment")
    op.create_check_constraint(
        op.f("ck_payment_ck_payment_kind"), "payment", "kind IN ('deposit', 'fee')"
    )
    op.drop_table("pledge")
    op.drop_table("pledge_queue")
