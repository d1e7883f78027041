"""Payments (tenant schema), the double-entry journal (tenant schema) and Stripe's events as
received (shared schema: an event is stored once, whichever tenant it belongs to)."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db import JsonObject, SharedBase, TenantBase, utcnow
from api.ids import uuid7
from api.unit.models import _in


class PaymentKind(enum.StrEnum):
    DEPOSIT = "deposit"
    FEE = "fee"
    PLEDGE = "pledge"  # a pledge's fee (api/sales)
    COLLECTION = "collection"  # money on a sale contract (回款, api/sales/plan_service.py)


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    CANCELED = "canceled"
    REFUNDED = "refunded"


class PaymentPlatform(enum.StrEnum):
    """Where the buyer pays (WeChat Pay needs to know)."""

    IOS = "ios"
    ANDROID = "android"
    WEB = "web"


PAYMENT_KINDS = tuple(k.value for k in PaymentKind)
PAYMENT_STATUSES = tuple(s.value for s in PaymentStatus)
PAYMENT_PLATFORMS = tuple(p.value for p in PaymentPlatform)
# Where a paid payment is held until it is refunded or kept, and where a kept part goes.
HELD = {
    "deposit": "deposits_held",
    "pledge": "pledges_held",
    "fee": "accounts_receivable",
    "collection": "sale_receipts",
}
FORFEITS = {"deposit": "deposit_forfeits", "pledge": "pledge_forfeits"}
ACCOUNTS = {
    # code: (name, type)
    "stripe_balance": ("Stripe balance", "asset"),
    "accounts_receivable": ("Fees billed, not yet paid", "asset"),
    "deposits_held": ("Deposits held for reservations", "liability"),
    "pledges_held": ("Pledge fees held for pledges in the queue", "liability"),
    "fee_income": ("Fee income", "income"),
    "deposit_forfeits": ("Deposits kept on cancelled reservations", "income"),
    "pledge_forfeits": ("Pledge fees kept on withdrawn pledges", "income"),
    "platform_fees": ("Platform fees", "expense"),
    "bank": (
        "Bank account: transfers and loan disbursements received, payouts made outside Stripe",
        "asset",
    ),
    "sale_receipts": (
        "Money received on sale contracts before delivery (预收房款 / contract liabilities)",
        "liability",
    ),
    # sales commissions (api/sales/commission.py)
    "commission_expense": ("Sales commissions", "expense"),
    "commissions_payable": ("Commissions approved, not yet paid out", "liability"),
    "commission_clawbacks": ("Commissions paid on canceled contracts, to recover", "asset"),
}


class Payment(TenantBase):
    """Money a client pays the tenant through Stripe (a PaymentIntent on the tenant's
    connected account)."""

    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint(_in("kind", PAYMENT_KINDS), name="kind"),
        CheckConstraint(_in("status", PAYMENT_STATUSES), name="status"),
        CheckConstraint("amount > 0 AND refunded_amount BETWEEN 0 AND amount", name="amounts"),
        Index("ix_payment_unit", "unit_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="pending")
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)  # minor units
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="cny")
    application_fee: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    unit_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    bill_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    client_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    payer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the account paying, if any
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # who started it (holds the unit)
    stripe_account: Mapped[str] = mapped_column(String(64), nullable=False)
    stripe_payment_intent: Mapped[str | None] = mapped_column(String(64), unique=True)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    refund_reason: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class BillKind(enum.StrEnum):
    PROPERTY_FEE = "property_fee"
    PARKING_FEE = "parking_fee"
    SERVICE_FEE = "service_fee"


class BillStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"


BILL_KINDS = tuple(k.value for k in BillKind)
BILL_STATUSES = tuple(s.value for s in BillStatus)


class Bill(TenantBase):
    """A fee an owner or client owes (paid in the app, in part or in full)."""

    __tablename__ = "bill"
    __table_args__ = (
        CheckConstraint(_in("kind", BILL_KINDS), name="kind"),
        CheckConstraint(_in("status", BILL_STATUSES), name="status"),
        CheckConstraint("amount > 0 AND paid_amount BETWEEN 0 AND amount", name="amounts"),
        Index("ix_bill_payer", "payer_id", "status"),
        Index("ix_bill_due", "due_on", postgresql_where="status = 'open'"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    number: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    period: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    payer_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    unit_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    paid_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="cny")
    due_on: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False, default="open")
    void_reason: Mapped[str | None] = mapped_column(String(300))
    issued_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    issued_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class Receipt(TenantBase):
    """A numbered receipt for a payment that arrived (numbers per tenant, without gaps)."""

    __tablename__ = "receipt"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    number: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, unique=True)
    bill_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    payer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    issued_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class Counter(TenantBase):
    """Gapless numbering (bills, receipts): incremented in the transaction that uses it."""

    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class Journal(TenantBase):
    """One business event in the ledger; its lines balance (checked at commit)."""

    __tablename__ = "journal"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    # What posted it, unique: posting the same thing twice is refused (e.g. a repeated event).
    source: Mapped[str] = mapped_column(String(120), nullable=False, unique=True)
    memo: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    payment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class JournalLine(TenantBase):
    __tablename__ = "journal_line"
    __table_args__ = (
        CheckConstraint(
            "debit >= 0 AND credit >= 0 AND (debit = 0) <> (credit = 0)", name="one_side"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    journal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("journal.id", ondelete="CASCADE"), nullable=False, index=True
    )
    account: Mapped[str] = mapped_column(String(40), nullable=False)
    debit: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    credit: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class StripeEvent(SharedBase):
    """A Stripe event as received (signature verified), stored once by its id; a job applies
    it. ``tenant_id`` is the tenant of its connected account (None: the platform's own)."""

    __tablename__ = "stripe_event"
    __table_args__ = (
        Index("ix_stripe_event_pending", "received_at", postgresql_where="processed_at IS NULL"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    account: Mapped[str | None] = mapped_column(String(64))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created: Mapped[int] = mapped_column(BigInteger, nullable=False)
    payload: Mapped[JsonObject] = mapped_column(JSONB, nullable=False)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    outcome: Mapped[str] = mapped_column(Text, nullable=False, default="")
