"""role: custom roles of the tenant

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "role",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column(
            "permissions", postgresql.ARRAY(sa.String(64)), nullable=False, server_default="{}"
        ),
        sa.Column("scope", sa.String(8), nullable=False, server_default="own"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("key", name="pk_role"),
        sa.CheckConstraint("scope IN ('own', 'team', 'all')", name=op.f("ck_role_scope")),
    )


def downgrade() -> None:
    op.drop_table("role")
