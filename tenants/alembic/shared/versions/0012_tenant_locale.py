"""tenants: time zone, locale and currency

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

Each tenant shows times in its own time zone (an IANA name; bills' due dates, receipts, the
agent's day, reminders, listing expiry), texts in its locale (zh-CN or en: the language of a
member without a device) and amounts in its currency (ISO 4217). They live in the registry, not
in the tenant's settings table, because jobs and the request's tenant lookup (cached per
process) need them before any tenant session is open. Existing tenants get the defaults the
code assumed so far (Asia/Shanghai, zh-CN, CNY).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE shared.tenant
            ADD COLUMN time_zone varchar(64) NOT NULL DEFAULT 'Asia/Shanghai',
            ADD COLUMN locale varchar(8) NOT NULL DEFAULT 'zh-CN',
            ADD COLUMN currency varchar(3) NOT NULL DEFAULT 'CNY',
            ADD CONSTRAINT ck_tenant_locale CHECK (locale IN ('zh-CN', 'en')),
            ADD CONSTRAINT ck_tenant_currency CHECK (currency ~ '^[A-Z]{3}$')
    """)


def downgrade() -> None:
    op.execute("""
        ALTER TABLE shared.tenant
            DROP CONSTRAINT ck_tenant_currency, DROP CONSTRAINT ck_tenant_locale,
            DROP COLUMN currency, DROP COLUMN locale, DROP COLUMN time_zone
    """)
