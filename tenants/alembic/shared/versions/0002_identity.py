"""identity: accounts, memberships, refresh tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.func.now()


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False, server_default=""),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_bidx", sa.LargeBinary(), nullable=True),
        sa.Column("email_enc", sa.LargeBinary(), nullable=True),
        sa.Column("email_bidx", sa.LargeBinary(), nullable=True),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_account"),
        sa.UniqueConstraint("phone_bidx", name="uq_account_phone_bidx"),
        sa.UniqueConstraint("email_bidx", name="uq_account_email_bidx"),
        schema="shared",
    )
    op.create_table(
        "membership",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("roles", postgresql.ARRAY(sa.String(64)), nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_membership"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["shared.account.id"],
            name="fk_membership_account_id_account",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["shared.tenant.id"],
            name="fk_membership_tenant_id_tenant",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("account_id", "tenant_id", name="uq_membership_account_id_tenant_id"),
        sa.CheckConstraint(
            "status IN ('invited', 'active', 'disabled')", name=op.f("ck_membership_status")
        ),
        schema="shared",
    )
    op.create_index("ix_shared_membership_tenant_id", "membership", ["tenant_id"], schema="shared")
    op.create_table(
        "refresh_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(300), nullable=False, server_default=""),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_token"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["shared.account.id"],
            name="fk_refresh_token_account_id_account",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["shared.tenant.id"],
            name="fk_refresh_token_tenant_id_tenant",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_hash", name="uq_refresh_token_token_hash"),
        schema="shared",
    )
    op.create_index(
        "ix_shared_refresh_token_family_id", "refresh_token", ["family_id"], schema="shared"
    )
    op.create_index(
        "ix_shared_refresh_token_account_id", "refresh_token", ["account_id"], schema="shared"
    )


def downgrade() -> None:
    op.drop_table("refresh_token", schema="shared")
    op.drop_table("membership", schema="shared")
    op.drop_table("account", schema="shared")
