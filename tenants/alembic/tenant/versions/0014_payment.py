"""payments through Stripe, fee bills and receipts, and the double-entry journal (balanced
at commit)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("application_fee", sa.BigInteger(), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("unit_id", sa.Uuid()),
        sa.Column("bill_id", sa.Uuid()),
        sa.Column("client_id", sa.Uuid()),
        sa.Column("payer_id", sa.Uuid()),
        sa.Column("agent_id", sa.Uuid()),
        sa.Column("stripe_account", sa.String(64), nullable=False),
        sa.Column("stripe_payment_intent", sa.String(64), unique=True),
        sa.Column("failure_code", sa.String(64)),
        sa.Column("refund_reason", sa.String(64)),
        sa.Column("paid_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('deposit', 'fee')", name="ck_payment_kind"),
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'failed', 'canceled', 'refunded')",
            name="ck_payment_status",
        ),
        sa.CheckConstraint(
            "amount > 0 AND refunded_amount BETWEEN 0 AND amount", name="ck_payment_amounts"
        ),
    )
    op.create_index("ix_payment_unit", "payment", ["unit_id"])
    op.create_index("ix_payment_bill_id", "payment", ["bill_id"])
    op.create_table(
        "bill",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(20), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("period", sa.String(40), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid()),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("paid_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("void_reason", sa.String(300)),
        sa.Column("issued_by", sa.Uuid()),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('property_fee', 'parking_fee', 'service_fee')", name="ck_bill_kind"
        ),
        sa.CheckConstraint("status IN ('open', 'paid', 'void')", name="ck_bill_status"),
        sa.CheckConstraint(
            "amount > 0 AND paid_amount BETWEEN 0 AND amount", name="ck_bill_amounts"
        ),
    )
    op.create_index("ix_bill_payer", "bill", ["payer_id", "status"])
    op.create_index("ix_bill_due", "bill", ["due_on"], postgresql_where=sa.text("status = 'open'"))
    op.create_table(
        "receipt",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(20), nullable=False, unique=True),
        sa.Column("payment_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("bill_id", sa.Uuid()),
        sa.Column("payer_id", sa.Uuid()),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_receipt_bill_id", "receipt", ["bill_id"])
    op.create_table(
        "counter",
        sa.Column("name", sa.String(20), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "journal",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("source", sa.String(120), nullable=False, unique=True),
        sa.Column("memo", sa.String(300), nullable=False),
        sa.Column("payment_id", sa.Uuid()),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_journal_payment_id", "journal", ["payment_id"])
    op.create_table(
        "journal_line",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "journal_id", sa.Uuid(), sa.ForeignKey("journal.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("account", sa.String(40), nullable=False),
        sa.Column("debit", sa.BigInteger(), nullable=False),
        sa.Column("credit", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "debit >= 0 AND credit >= 0 AND (debit = 0) <> (credit = 0)",
            name="ck_journal_line_one_side",
        ),
    )
    op.create_index("ix_journal_line_journal_id", "journal_line", ["journal_id"])
    op.execute(
        "CREATE CONSTRAINT TRIGGER journal_balanced AFTER INSERT OR UPDATE OR DELETE "
        "ON journal_line DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        "EXECUTE FUNCTION shared.journal_balanced()"
    )


def downgrade() -> None:
    op.drop_table("counter")
    op.drop_table("receipt")
    op.drop_table("bill")
    op.drop_table("journal_line")
    op.drop_table("journal")
    op.drop_table("payment")
