"""Payment plans of contracts (付款方式), their schedule lines, collections (回款) and mortgage
cases (按揭), and the days a tenant declares worked or off (tenant migration 0022)."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db import JsonObject, TenantBase, utcnow
from api.ids import uuid7
from api.unit.models import _in


class PlanKind(enum.StrEnum):
    FULL = "full"  # 一次性付款
    INSTALMENTS = "instalments"  # 分期付款: an optional down payment, then equal instalments
    COMMERCIAL_MORTGAGE = "commercial_mortgage"  # 商业贷款: down payment + a bank loan
    PROVIDENT_MORTGAGE = "provident_mortgage"  # 公积金贷款: down payment + a provident loan
    COMBINATION = "combination"  # 组合贷款: down payment + provident + commercial


class LineKind(enum.StrEnum):
    DOWN_PAYMENT = "down_payment"
    INSTALMENT = "instalment"
    LOAN_PART = "loan_part"


class LoanKind(enum.StrEnum):
    COMMERCIAL = "commercial"
    PROVIDENT = "provident"


class CollectionSource(enum.StrEnum):
    STRIPE = "stripe"  # paid through a PaymentIntent (the webhook records it)
    BANK_TRANSFER = "bank_transfer"  # recorded by finance with proof
    MORTGAGE = "mortgage"  # a mortgage case's disbursement


class CollectionStatus(enum.StrEnum):
    PENDING = "pending"  # a Stripe payment under way (counts against what is outstanding)
    RECORDED = "recorded"  # money in, posted to the ledger
    REFUNDED = "refunded"  # a Stripe payment that arrived for nothing left: sent back


class MortgageStage(enum.StrEnum):
    COLLECTING = "collecting"  # documents being gathered
    SUBMITTED = "submitted"  # the file is with the bank
    APPROVED = "approved"
    DISBURSED = "disbursed"  # the loan was paid to the company (a collection)
    REFUSED = "refused"


PLAN_KINDS = tuple(k.value for k in PlanKind)
LINE_KINDS = tuple(k.value for k in LineKind)
LOAN_KINDS = tuple(k.value for k in LoanKind)
SOURCES = tuple(s.value for s in CollectionSource)
COLLECTION_STATUSES = tuple(s.value for s in CollectionStatus)
STAGES = tuple(s.value for s in MortgageStage)
OPEN_STAGES = ("collecting", "submitted", "approved")


class PaymentPlan(TenantBase):
    """The structured payment plan of one contract revision; its lines sum to the price. It
    is set while the contract is a draft (an original or an amendment), and printed in the
    contract's document (``contract.payment_plan``)."""

    __tablename__ = "payment_plan"
    __table_args__ = (
        CheckConstraint(_in("kind", PLAN_KINDS), name="kind"),
        CheckConstraint("price > 0", name="price"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contract.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    price: Mapped[int] = mapped_column(BigInteger, nullable=False)  # minor units
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class PlanLine(TenantBase):
    """One line of a plan: an amount due on a working day (the tenant's local date)."""

    __tablename__ = "payment_plan_line"
    __table_args__ = (
        CheckConstraint(_in("kind", LINE_KINDS), name="kind"),
        CheckConstraint("loan IS NULL OR loan IN ('commercial', 'provident')", name="loan"),
        CheckConstraint("(kind = 'loan_part') = (loan IS NOT NULL)", name="loan_part"),
        CheckConstraint("amount > 0", name="amount"),
        CheckConstraint("due_on >= scheduled_on", name="due"),
        UniqueConstraint("plan_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("payment_plan.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    loan: Mapped[str | None] = mapped_column(String(10))
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    scheduled_on: Mapped[date] = mapped_column(Date, nullable=False)  # before rolling
    due_on: Mapped[date] = mapped_column(Date, nullable=False)  # a working day


class Collection(TenantBase):
    """Money received on a contract (回款). Keyed by the contract's number, so amendments (new
    revisions, same number) keep what was collected; ``contract_id`` is the revision in force
    when it was recorded. Allocated to the schedule oldest-due first (computed)."""

    __tablename__ = "sales_collection"
    __table_args__ = (
        CheckConstraint(_in("source", SOURCES), name="source"),
        CheckConstraint(_in("status", COLLECTION_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount"),
        CheckConstraint("(source = 'stripe') = (payment_id IS NOT NULL)", name="stripe"),
        CheckConstraint("(source = 'bank_transfer') = (proof_media_id IS NOT NULL)", name="proof"),
        CheckConstraint("(source = 'mortgage') = (mortgage_case_id IS NOT NULL)", name="mortgage"),
        CheckConstraint("(status = 'recorded') = (recorded_at IS NOT NULL)", name="recorded"),
        Index("ix_sales_collection_number", "number", "status"),
        Index("ix_sales_collection_payment", "payment_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contract.id", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[str] = mapped_column(String(32), nullable=False)  # the contract's number
    source: Mapped[str] = mapped_column(String(14), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    proof_media_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    mortgage_case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reference: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    note: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    # A client-supplied key: asking again with it gives the same collection.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MortgageCase(TenantBase):
    """A buyer's loan application for a contract: the bank, the amount, the documents the
    bank asks for (each received or not) and its stage. One open case per contract and loan
    kind."""

    __tablename__ = "mortgage_case"
    __table_args__ = (
        CheckConstraint(_in("loan", LOAN_KINDS), name="loan"),
        CheckConstraint(_in("stage", STAGES), name="stage"),
        CheckConstraint("amount > 0", name="amount"),
        CheckConstraint("(stage = 'refused') = (refused_at IS NOT NULL)", name="refused"),
        CheckConstraint("(stage = 'disbursed') = (collection_id IS NOT NULL)", name="disbursed"),
        Index(
            "ux_mortgage_case_open",
            "number",
            "loan",
            unique=True,
            postgresql_where="stage IN ('collecting', 'submitted', 'approved')",
        ),
        Index("ix_mortgage_case_stage", "stage"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contract.id", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[str] = mapped_column(String(32), nullable=False)  # the contract's number
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    agent_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)  # who opened it
    loan: Mapped[str] = mapped_column(String(10), nullable=False)
    bank: Mapped[str] = mapped_column(String(100), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    stage: Mapped[str] = mapped_column(String(10), nullable=False, default="collecting")
    # [{"code": str, "label": str, "received_at": iso str | None}]
    documents: Mapped[list[JsonObject]] = mapped_column(JSONB, nullable=False)
    note: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disbursed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refused_reason: Mapped[str | None] = mapped_column(String(300))
    collection_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class Workday(TenantBase):
    """A day the tenant declares worked (``working``) or off, over the official calendar."""

    __tablename__ = "sales_workday"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean, nullable=False)
    note: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
