"""media visibility: private documents behind signed, expiring links

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04

``visibility`` is decided at upload: public (photos, floor plans: permanent URLs) or private
(documents such as contracts, ID scans and proofs of payment: only signed links that expire).
A new kind ``document`` (PDF or image) is always private.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "media", sa.Column("visibility", sa.String(8), nullable=False, server_default="public")
    )
    op.create_check_constraint(
        op.f("ck_media_visibility"), "media", "visibility IN ('public', 'private')"
    )
    # 0009 named it twice over (the naming convention prefixed an explicit name).
    op.drop_constraint(op.f("ck_media_ck_media_kind"), "media")
    op.create_check_constraint(
        op.f("ck_media_kind"), "media", "kind IN ('photo', 'video', 'floor_plan', 'vr', 'document')"
    )
    op.create_check_constraint(
        op.f("ck_media_document_private"), "media", "kind <> 'document' OR visibility = 'private'"
    )


def downgrade() -> None:
    op.execute("DELETE FROM media WHERE kind = 'document'")
    op.drop_constraint(op.f("ck_media_document_private"), "media")
    op.drop_constraint(op.f("ck_media_kind"), "media")
    op.create_check_constraint(
        op.f("ck_media_ck_media_kind"), "media", "kind IN ('photo', 'video', 'floor_plan', 'vr')"
    )
    op.drop_constraint(op.f("ck_media_visibility"), "media")
    op.drop_column("media", "visibility")
