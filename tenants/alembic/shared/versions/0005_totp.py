"""totp second factor; tenant flag requiring it for admins

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
    op.add_column("account", sa.Column("totp_secret_enc", sa.LargeBinary()), schema="shared")
    op.add_column(
        "account", sa.Column("totp_enabled_at", sa.DateTime(timezone=True)), schema="shared"
    )
    op.add_column("account", sa.Column("totp_last_step", sa.BigInteger()), schema="shared")
    op.add_column(
        "tenant",
        sa.Column("require_admin_totp", sa.Boolean(), nullable=False, server_default="false"),
        schema="shared",
    )


def downgrade() -> None:
    op.drop_column("tenant", "require_admin_totp", schema="shared")
    op.drop_column("account", "totp_last_step", schema="shared")
    op.drop_column("account", "totp_enabled_at", schema="shared")
    op.drop_column("account", "totp_secret_enc", schema="shared")
