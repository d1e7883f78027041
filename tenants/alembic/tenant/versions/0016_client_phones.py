"""a client's other phones (encrypted, blind-indexed like the main one; their masks on the
client row for lists)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "client",
        sa.Column(
            "other_phone_masks",
            postgresql.ARRAY(sa.String(24)),
            nullable=False,
            server_default="{}",
        ),
    )
    op.alter_column("client", "other_phone_masks", server_default=None)
    op.create_table(
        "client_phone",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "client_id", sa.Uuid(), sa.ForeignKey("client.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=False),
        sa.Column("phone_bidx", sa.LargeBinary(), nullable=False),
        sa.Column("phone_mask", sa.String(24), nullable=False),
    )
    op.create_index("ix_client_phone_client", "client_phone", ["client_id", "position"])
    op.create_index("ix_client_phone_number_bidx", "client_phone", ["phone_bidx"])


def downgrade() -> None:
    op.drop_table("client_phone")
    op.drop_column("client", "other_phone_masks")
