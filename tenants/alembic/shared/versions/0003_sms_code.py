"""sms sign-in codes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_code",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("phone_bidx", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("code_hmac", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sms_code"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["shared.tenant.id"],
            name="fk_sms_code_tenant_id_tenant",
            ondelete="CASCADE",
        ),
        schema="shared",
    )
    op.create_index("ix_shared_sms_code_phone_bidx", "sms_code", ["phone_bidx"], schema="shared")
    op.create_index("ix_shared_sms_code_ip", "sms_code", ["ip"], schema="shared")


def downgrade() -> None:
    op.drop_table("sms_code", schema="shared")
