"""building

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "building",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("floors", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_building"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name="fk_building_project_id_project",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_building_project_id_name"),
        sa.CheckConstraint("floors BETWEEN 1 AND 200", name=op.f("ck_building_floors")),
    )
    op.create_index("ix_building_project_id", "building", ["project_id"])


def downgrade() -> None:
    op.drop_table("building")
