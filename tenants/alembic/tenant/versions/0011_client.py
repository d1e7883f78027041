"""clients (CRM) and their follow-ups

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "client",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary()),
        sa.Column("phone_bidx", sa.LargeBinary()),
        sa.Column("phone_mask", sa.String(24), nullable=False),
        sa.Column("id_number_enc", sa.LargeBinary()),
        sa.Column("id_number_bidx", sa.LargeBinary()),
        sa.Column("id_number_mask", sa.String(24), nullable=False),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("stage", sa.String(12), nullable=False),
        sa.Column("lost_reason", sa.String(300)),
        sa.Column("grade", sa.String(1)),
        sa.Column("owner_id", sa.Uuid()),
        sa.Column("needs", postgresql.JSONB(), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.String(50)), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("consent_marketing", sa.Boolean(), nullable=False),
        sa.Column("duplicate_of", sa.Uuid()),
        sa.Column("merged_into", sa.Uuid()),
        sa.Column("created_by", sa.Uuid()),
        _ts("created_at", False),
        _ts("stage_changed_at", False),
        _ts("last_contact_at"),
        _ts("next_follow_up_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "source IN ('walk_in', 'phone', 'portal', 'referral', 'campaign', 'event', 'other')",
            name="ck_client_source",
        ),
        sa.CheckConstraint(
            "stage IN ('new', 'contacted', 'qualified', 'showing', 'negotiating', 'won', 'lost')",
            name="ck_client_stage",
        ),
        sa.CheckConstraint("grade IS NULL OR grade IN ('A', 'B', 'C')", name="ck_client_grade"),
        sa.CheckConstraint(
            "(stage = 'lost') = (lost_reason IS NOT NULL)", name="ck_client_lost_reason"
        ),
    )
    op.create_index("ix_client_phone_bidx", "client", ["phone_bidx"])
    op.create_index("ix_client_id_number_bidx", "client", ["id_number_bidx"])
    op.create_index("ix_client_owner_stage", "client", ["owner_id", "stage"])
    op.create_index("ix_client_next_follow_up", "client", ["owner_id", "next_follow_up_at"])
    op.create_table(
        "client_follow_up",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "client_id", sa.Uuid(), sa.ForeignKey("client.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("next_step", sa.Text(), nullable=False),
        _ts("happened_at"),
        _ts("due_at"),
        _ts("done_at"),
        sa.Column("assignee_id", sa.Uuid()),
        _ts("reminded_at"),
        sa.Column("created_by", sa.Uuid()),
        _ts("created_at", False),
        sa.CheckConstraint(
            "kind IN ('call', 'message', 'visit', 'showing', 'note')",
            name="ck_client_follow_up_kind",
        ),
        sa.CheckConstraint(
            "happened_at IS NOT NULL OR due_at IS NOT NULL", name="ck_client_follow_up_when"
        ),
    )
    op.create_index("ix_client_follow_up_client", "client_follow_up", ["client_id", "id"])
    op.create_index(
        "ix_client_follow_up_due",
        "client_follow_up",
        ["assignee_id", "due_at"],
        postgresql_where=sa.text("due_at IS NOT NULL AND done_at IS NULL"),
    )

    op.create_table(
        "client_assignment",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "client_id", sa.Uuid(), sa.ForeignKey("client.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("from_owner", sa.Uuid()),
        sa.Column("to_owner", sa.Uuid()),
        sa.Column("reason", sa.String(30), nullable=False),
        sa.Column("detail", sa.String(300), nullable=False),
        sa.Column("by_id", sa.Uuid()),
        _ts("at", False),
    )
    op.create_index("ix_client_assignment_client", "client_assignment", ["client_id", "id"])


def downgrade() -> None:
    op.drop_table("client_assignment")
    op.drop_table("client_follow_up")
    op.drop_table("client")
