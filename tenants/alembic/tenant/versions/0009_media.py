"""media of projects, unit types, units and listings

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("storage_key", sa.String(200)),
        sa.Column("thumb_key", sa.String(200)),
        sa.Column("link_url", sa.String(500)),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("caption", sa.String(200), nullable=False),
        sa.Column("created_by", sa.Uuid()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_media"),
        sa.CheckConstraint(
            "owner_kind IN ('project', 'unit_type', 'unit', 'listing')", name="ck_media_owner_kind"
        ),
        sa.CheckConstraint("kind IN ('photo', 'video', 'floor_plan', 'vr')", name="ck_media_kind"),
        sa.CheckConstraint("(storage_key IS NULL) <> (link_url IS NULL)", name="ck_media_source"),
    )
    op.create_index("ix_media_owner", "media", ["owner_id", "kind", "position"])


def downgrade() -> None:
    op.drop_table("media")
