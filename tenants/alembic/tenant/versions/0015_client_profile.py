"""client profiles from behaviour: what the client's own app account did (views, searches),
the link from a client record to that account, the profile and the suggested grade

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("client", sa.Column("account_id", sa.Uuid()))
    op.add_column(
        "client",
        sa.Column(
            "profile", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
    )
    op.alter_column("client", "profile", server_default=None)
    op.add_column("client", sa.Column("suggested_grade", sa.String(1)))
    op.add_column("client", sa.Column("last_active_at", sa.DateTime(timezone=True)))
    op.create_check_constraint(
        op.f("ck_client_suggested_grade"),
        "client",
        "suggested_grade IS NULL OR suggested_grade IN ('A', 'B', 'C')",
    )
    op.create_index(
        "ix_client_account",
        "client",
        ["account_id"],
        postgresql_where=sa.text("account_id IS NOT NULL"),
    )
    op.create_index("ix_client_owner_active", "client", ["owner_id", "last_active_at"])
    op.create_table(
        "client_activity",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), sa.ForeignKey("client.id", ondelete="CASCADE")),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("subject_id", sa.Uuid()),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("seconds", sa.Integer()),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('view_unit', 'view_listing', 'search')", name="ck_client_activity_kind"
        ),
        sa.CheckConstraint(
            "seconds IS NULL OR seconds BETWEEN 0 AND 86400", name="ck_client_activity_seconds"
        ),
    )
    op.create_index("ix_client_activity_client", "client_activity", ["client_id", "at"])
    op.create_index("ix_client_activity_account", "client_activity", ["account_id", "at"])


def downgrade() -> None:
    op.drop_table("client_activity")
    op.drop_index("ix_client_owner_active", "client")
    op.drop_index("ix_client_account", "client")
    op.drop_constraint(op.f("ck_client_suggested_grade"), "client")
    for column in ("last_active_at", "suggested_grade", "profile", "account_id"):
        op.drop_column("client", column)
