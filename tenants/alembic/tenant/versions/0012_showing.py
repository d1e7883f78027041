"""showings of units and listings to clients, and agents' private calendar feeds

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_showing",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "client_id", sa.Uuid(), sa.ForeignKey("client.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("unit_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("listing_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("place", sa.String(300), nullable=False),
        sa.Column("feedback", postgresql.JSONB(), nullable=False),
        sa.Column("cancel_reason", sa.String(300)),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('scheduled', 'confirmed', 'done', 'cancelled')",
            name="ck_client_showing_status",
        ),
        sa.CheckConstraint("ends_at > starts_at", name="ck_client_showing_span"),
    )
    op.create_index("ix_client_showing_agent", "client_showing", ["agent_id", "starts_at"])
    op.create_index("ix_client_showing_client", "client_showing", ["client_id"])
    op.create_table(
        "calendar_feed",
        sa.Column("account_id", sa.Uuid(), primary_key=True),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("calendar_feed")
    op.drop_table("client_showing")
