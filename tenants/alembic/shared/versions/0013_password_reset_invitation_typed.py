"""password reset (SMS code purpose, email reset tokens); invitations keep what was typed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

* ``sms_code.purpose``: a code sent for signing in cannot reset a password, nor the reverse.
* ``password_reset``: one-time email links (only the token's hash is kept). A request for an
  email that has no account still writes a row (no account id, nothing sent), so the limits and
  the answer are the same either way.
* ``invitation``: an invitation no longer points at an account until it is accepted; it keeps
  the name, roles and phone or email the inviter typed (encrypted, with a blind index), so
  inviting someone who already has an account reveals nothing about it. ``account_id`` stays
  for invitations made before (and is set on acceptance).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "sms_code",
        sa.Column("purpose", sa.String(16), nullable=False, server_default="sign_in"),
        schema="shared",
    )
    op.create_check_constraint(
        op.f("ck_sms_code_purpose"), "sms_code", "purpose IN ('sign_in', 'reset')", schema="shared"
    )
    op.create_table(
        "password_reset",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email_bidx", sa.LargeBinary(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_password_reset"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["shared.tenant.id"],
            name="fk_password_reset_tenant_id_tenant",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["shared.account.id"],
            name="fk_password_reset_account_id_account",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_hash", name="uq_password_reset_token_hash"),
        schema="shared",
    )
    op.create_index(
        "ix_shared_password_reset_email_bidx", "password_reset", ["email_bidx"], schema="shared"
    )
    op.create_index("ix_shared_password_reset_ip", "password_reset", ["ip"], schema="shared")

    op.alter_column("invitation", "account_id", nullable=True, schema="shared")
    for column in (
        sa.Column("name", sa.String(100), nullable=False, server_default=""),
        sa.Column("roles", ARRAY(sa.String(64)), nullable=False, server_default="{}"),
        sa.Column("ident_kind", sa.String(8), nullable=True),
        sa.Column("ident_enc", sa.LargeBinary(), nullable=True),
        sa.Column("ident_bidx", sa.LargeBinary(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column("invitation", column, schema="shared")
    op.create_index(
        "ix_shared_invitation_tenant_ident",
        "invitation",
        ["tenant_id", "ident_bidx"],
        schema="shared",
    )


def downgrade() -> None:
    op.drop_index("ix_shared_invitation_tenant_ident", "invitation", schema="shared")
    for name in ("withdrawn_at", "ident_bidx", "ident_enc", "ident_kind", "roles", "name"):
        op.drop_column("invitation", name, schema="shared")
    op.execute("DELETE FROM shared.invitation WHERE account_id IS NULL")
    op.alter_column("invitation", "account_id", nullable=False, schema="shared")
    op.drop_table("password_reset", schema="shared")
    op.drop_constraint(op.f("ck_sms_code_purpose"), "sms_code", schema="shared")
    op.drop_column("sms_code", "purpose", schema="shared")
