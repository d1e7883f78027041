"""the transactional outbox of live events, and each tenant's event sequence

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

A change writes its event row in its own transaction (``shared.outbox``, keyed by tenant). The
relay (api/live/relay.py) numbers committed rows per tenant from ``shared.event_stream``,
publishes them, and marks them published. A statement trigger wakes the relay at commit
(NOTIFY is transactional: a rolled-back change wakes nobody, and PostgreSQL folds the
notifications of one transaction into one).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_stream",
        sa.Column(
            "tenant_id",
            sa.Uuid(),
            sa.ForeignKey("shared.tenant.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("last_seq", sa.BigInteger(), nullable=False, server_default="0"),
        # Events up to this sequence were deleted (retention): a resume from before it refetches.
        sa.Column("pruned_through", sa.BigInteger(), nullable=False, server_default="0"),
        schema="shared",
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.Uuid(),
            sa.ForeignKey("shared.tenant.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger()),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        # The database clock at insert: the relay numbers rows in this order.
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("clock_timestamp()"),
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        schema="shared",
    )
    op.create_index(
        "uq_outbox_tenant_seq",
        "outbox",
        ["tenant_id", "seq"],
        unique=True,
        schema="shared",
        postgresql_where=sa.text("seq IS NOT NULL"),
    )
    op.create_index(
        "ix_outbox_unsequenced",
        "outbox",
        ["created_at", "id"],
        schema="shared",
        postgresql_where=sa.text("seq IS NULL"),
    )
    pending = sa.text("published_at IS NULL AND seq IS NOT NULL")
    op.create_index(
        "ix_outbox_unpublished", "outbox", ["seq"], schema="shared", postgresql_where=pending
    )
    op.create_index(
        "ix_outbox_published_at",
        "outbox",
        ["published_at"],
        schema="shared",
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )
    op.execute("""
        CREATE FUNCTION shared.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('anju_outbox', '');
          RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER outbox_notify AFTER INSERT ON shared.outbox
          FOR EACH STATEMENT EXECUTE FUNCTION shared.outbox_notify()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON shared.outbox")
    op.execute("DROP FUNCTION IF EXISTS shared.outbox_notify()")
    op.drop_table("outbox", schema="shared")
    op.drop_table("event_stream", schema="shared")
