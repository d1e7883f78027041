"""teams: company > office > team, and their members

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "team",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_team"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["team.id"], name="fk_team_parent_id_team", ondelete="RESTRICT"
        ),
        sa.CheckConstraint("kind IN ('company', 'office', 'team')", name=op.f("ck_team_kind")),
    )
    op.create_index("ix_team_parent_id", "team", ["parent_id"])
    op.create_table(
        "team_member",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "account_id", name="pk_team_member"),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name="fk_team_member_team_id_team", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_team_member_account_id", "team_member", ["account_id"])


def downgrade() -> None:
    op.drop_table("team_member")
    op.drop_table("team")
