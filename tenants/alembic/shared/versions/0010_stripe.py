"""Stripe: each tenant's connected account and plan subscription, events as received, the
journal balance check

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23

``shared.stripe_event`` stores each verified event once (its id is the key); a job applies it.
``shared.journal_balanced()`` is the constraint trigger function of every tenant's
``journal_line``: at commit, each journal touched must balance (debits = credits).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenant", sa.Column("stripe_account_id", sa.String(64)), schema="shared")
    op.create_unique_constraint(
        op.f("uq_tenant_stripe_account_id"), "tenant", ["stripe_account_id"], schema="shared"
    )
    op.add_column("tenant", sa.Column("stripe_customer_id", sa.String(64)), schema="shared")
    op.create_unique_constraint(
        op.f("uq_tenant_stripe_customer_id"), "tenant", ["stripe_customer_id"], schema="shared"
    )
    op.add_column("tenant", sa.Column("stripe_subscription_id", sa.String(64)), schema="shared")
    op.add_column(
        "tenant",
        sa.Column("billing_status", sa.String(12), nullable=False, server_default="none"),
        schema="shared",
    )
    op.alter_column("tenant", "billing_status", server_default=None, schema="shared")
    op.add_column(
        "tenant", sa.Column("past_due_since", sa.DateTime(timezone=True)), schema="shared"
    )
    op.create_table(
        "stripe_event",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("account", sa.String(64)),
        sa.Column("tenant_id", sa.Uuid()),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        schema="shared",
    )
    op.create_index(
        "ix_stripe_event_pending",
        "stripe_event",
        ["received_at"],
        schema="shared",
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    op.execute("""
        CREATE FUNCTION shared.journal_balanced() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            journal uuid := COALESCE(NEW.journal_id, OLD.journal_id);
            diff bigint;
        BEGIN
            EXECUTE format('SELECT COALESCE(sum(debit), 0) - COALESCE(sum(credit), 0) '
                           'FROM %I.journal_line WHERE journal_id = $1', TG_TABLE_SCHEMA)
                INTO diff USING journal;
            IF diff <> 0 THEN
                RAISE EXCEPTION 'journal % does not balance (debits - credits = %)', journal, diff
                    USING ERRCODE = '23514';
            END IF;
            RETURN NULL;
        END $$
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION shared.journal_balanced()")
    op.drop_table("stripe_event", schema="shared")
    for column in ("past_due_since", "billing_status", "stripe_subscription_id"):
        op.drop_column("tenant", column, schema="shared")
    op.drop_constraint(op.f("uq_tenant_stripe_customer_id"), "tenant", schema="shared")
    op.drop_column("tenant", "stripe_customer_id", schema="shared")
    op.drop_constraint(op.f("uq_tenant_stripe_account_id"), "tenant", schema="shared")
    op.drop_column("tenant", "stripe_account_id", schema="shared")
