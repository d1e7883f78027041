"""sales: payment plans of contracts, collections (回款), mortgage cases, declared workdays

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06

A contract's structured payment plan (full, instalments, commercial or provident-fund mortgage,
or a combination) and its lines due on working days; money collected on a contract (a Stripe
payment of the new kind ``collection``, a bank transfer with proof, a mortgage disbursement);
mortgage cases with their documents checklist and stage; the days a tenant declares worked or
off over the official calendar.
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "payment_plan",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "contract_id",
            sa.Uuid(),
            sa.ForeignKey("contract.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        _ts("created_at", False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('full', 'instalments', 'commercial_mortgage', 'provident_mortgage', "
            "'combination')",
            name="kind",
        ),
        sa.CheckConstraint("price > 0", name="price"),
    )
    op.create_table(
        "payment_plan_line",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "plan_id",
            sa.Uuid(),
            sa.ForeignKey("payment_plan.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("loan", sa.String(10)),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("scheduled_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.CheckConstraint("kind IN ('down_payment', 'instalment', 'loan_part')", name="kind"),
        sa.CheckConstraint("loan IS NULL OR loan IN ('commercial', 'provident')", name="loan"),
        sa.CheckConstraint("(kind = 'loan_part') = (loan IS NOT NULL)", name="loan_part"),
        sa.CheckConstraint("amount > 0", name="amount"),
        sa.CheckConstraint("due_on >= scheduled_on", name="due"),
        sa.UniqueConstraint("plan_id", "seq"),
    )
    op.create_table(
        "sales_collection",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "contract_id",
            sa.Uuid(),
            sa.ForeignKey("contract.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("source", sa.String(14), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_id", sa.Uuid()),
        sa.Column("proof_media_id", sa.Uuid()),
        sa.Column("mortgage_case_id", sa.Uuid()),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("note", sa.String(300), nullable=False),
        sa.Column("idempotency_key", sa.String(64), unique=True),
        sa.Column("recorded_by", sa.Uuid()),
        _ts("created_at", False),
        _ts("recorded_at"),
        sa.CheckConstraint("source IN ('stripe', 'bank_transfer', 'mortgage')", name="source"),
        sa.CheckConstraint("status IN ('pending', 'recorded', 'refunded')", name="status"),
        sa.CheckConstraint("amount > 0", name="amount"),
        sa.CheckConstraint("(source = 'stripe') = (payment_id IS NOT NULL)", name="stripe"),
        sa.CheckConstraint(
            "(source = 'bank_transfer') = (proof_media_id IS NOT NULL)", name="proof"
        ),
        sa.CheckConstraint(
            "(source = 'mortgage') = (mortgage_case_id IS NOT NULL)", name="mortgage"
        ),
        sa.CheckConstraint("(status = 'recorded') = (recorded_at IS NOT NULL)", name="recorded"),
    )
    op.create_index("ix_sales_collection_number", "sales_collection", ["number", "status"])
    op.create_index("ix_sales_collection_payment", "sales_collection", ["payment_id"])
    op.create_table(
        "mortgage_case",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "contract_id",
            sa.Uuid(),
            sa.ForeignKey("contract.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("loan", sa.String(10), nullable=False),
        sa.Column("bank", sa.String(100), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("stage", sa.String(10), nullable=False),
        sa.Column("documents", postgresql.JSONB(), nullable=False),
        sa.Column("note", sa.String(300), nullable=False),
        _ts("submitted_at"),
        _ts("approved_at"),
        _ts("disbursed_at"),
        _ts("refused_at"),
        sa.Column("refused_reason", sa.String(300)),
        sa.Column("collection_id", sa.Uuid()),
        _ts("reminded_at"),
        _ts("created_at", False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("loan IN ('commercial', 'provident')", name="loan"),
        sa.CheckConstraint(
            "stage IN ('collecting', 'submitted', 'approved', 'disbursed', 'refused')",
            name="stage",
        ),
        sa.CheckConstraint("amount > 0", name="amount"),
        sa.CheckConstraint("(stage = 'refused') = (refused_at IS NOT NULL)", name="refused"),
        sa.CheckConstraint("(stage = 'disbursed') = (collection_id IS NOT NULL)", name="disbursed"),
    )
    op.create_index(
        "ux_mortgage_case_open",
        "mortgage_case",
        ["number", "loan"],
        unique=True,
        postgresql_where=sa.text("stage IN ('collecting', 'submitted', 'approved')"),
    )
    op.create_index("ix_mortgage_case_stage", "mortgage_case", ["stage"])
    op.create_table(
        "sales_workday",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(100), nullable=False),
        sa.Column("created_by", sa.Uuid()),
        _ts("created_at", False),
    )
    op.drop_constraint(op.f("ck_payment_kind"), "payment")
    op.create_check_constraint(
        op.f("ck_payment_kind"), "payment", "kind IN ('deposit', 'fee', 'pledge', 'collection')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM payment WHERE kind = 'collection'")
    op.drop_constraint(op.f("ck_payment_kind"), "payment")
    op.create_check_constraint(
        op.f("ck_payment_kind"), "payment", "kind IN ('deposit', 'fee', 'pledge')"
    )
    op.drop_table("sales_workday")
    op.drop_table("mortgage_case")
    op.drop_table("sales_collection")
    op.drop_table("payment_plan_line")
    op.drop_table("payment_plan")
