"""Pledges (认筹) and the per-project counter that numbers them; subscriptions (认购) and the
requests they wait on (a discount to approve, more days to sign)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db import JsonObject, TenantBase, utcnow
from api.ids import uuid7
from api.live.outbox import watch
from api.unit.models import _in


class PledgeStatus(enum.StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    CONVERTED = "converted"  # the client subscribed (认购) a unit of the project


class PledgeFeeStatus(enum.StrEnum):
    """Derived from the pledge's columns (``fee_status``), never stored."""

    NONE = "none"  # no fee asked
    UNPAID = "unpaid"
    PAID = "paid"
    REFUNDED = "refunded"  # withdrawn with a refund (all or the tenant's part of the fee)


PLEDGE_STATUSES = tuple(s.value for s in PledgeStatus)


class Pledge(TenantBase):
    """A client's registered intent for a project, with its place in the project's queue
    (gapless from 1, assigned once, kept when withdrawn) and an optional fee paid through
    Stripe (a payment of kind ``pledge``)."""

    __tablename__ = "pledge"
    __table_args__ = (
        CheckConstraint(_in("status", PLEDGE_STATUSES), name="status"),
        CheckConstraint("fee >= 0 AND refunded BETWEEN 0 AND fee", name="fee"),
        CheckConstraint("queue_number > 0", name="queue_number"),
        CheckConstraint("(status = 'withdrawn') = (withdrawn_at IS NOT NULL)", name="withdrawn"),
        UniqueConstraint("project_id", "queue_number"),
        # One active pledge per client and project (the service says CONFLICT first).
        Index(
            "ux_pledge_active_client",
            "project_id",
            "client_id",
            unique=True,
            postgresql_where="status = 'active'",
        ),
        Index("ix_pledge_client", "client_id"),
        Index("ix_pledge_payment", "payment_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)  # who registered it
    queue_number: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="active")
    fee: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)  # minor units
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    # The fee's latest payment (a failed or canceled one is replaced by the next attempt).
    payment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refunded: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdraw_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @property
    def fee_status(self) -> PledgeFeeStatus:
        if self.fee == 0:
            return PledgeFeeStatus.NONE
        if self.paid_at is None:
            return PledgeFeeStatus.UNPAID
        return PledgeFeeStatus.REFUNDED if self.refunded else PledgeFeeStatus.PAID


class PledgeQueue(TenantBase):
    """The last queue number given in a project: incremented in the registering transaction
    (the row stays locked until it ends, so numbers are gapless and never given twice)."""

    __tablename__ = "pledge_queue"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    last_number: Mapped[int] = mapped_column(Integer, nullable=False)


def live_payload(p: Pledge) -> JsonObject:
    """A pledge's live event (api/live): enough for a sales board to patch its counts."""
    return {
        "pledge_id": str(p.id),
        "project_id": str(p.project_id),
        "client_id": str(p.client_id),
        "queue_number": p.queue_number,
        "status": p.status,
        "fee": p.fee,
        "currency": p.currency,
        "paid": p.paid_at is not None,
        "version": p.version,
    }


watch(Pledge, "pledge", {"status": "status", "paid_at": "paid"}, live_payload, on_new=True)


# ---------------------------------------------------------------- subscriptions (认购)


class SubscriptionStatus(enum.StrEnum):
    PENDING_APPROVAL = "pending_approval"  # its discount waits; the unit stays reserved
    ACTIVE = "active"  # price agreed, unit subscribed, the contract to sign by the deadline
    REJECTED = "rejected"  # its discount was refused; the unit stays reserved
    WITHDRAWN = "withdrawn"  # 退房: the unit went back on sale
    EXPIRED = "expired"  # not signed by the deadline, ended by the job (sales.expire_overdue)
    CONTRACTED = "contracted"  # its contract was signed (the unit is contracted)


class RequestKind(enum.StrEnum):
    DISCOUNT = "discount"  # a discount above the tenant's limit, to approve
    EXTENSION = "extension"  # more days to sign the contract


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    STALE = "stale"  # the unit or its price moved since the request: nothing applied
    CANCELED = "canceled"  # the subscription was withdrawn (or its unit changed) meanwhile


SUBSCRIPTION_STATUSES = tuple(s.value for s in SubscriptionStatus)
OPEN_SUBSCRIPTION = ("pending_approval", "active")  # those that hold their unit
REQUEST_KINDS = tuple(k.value for k in RequestKind)
REQUEST_STATUSES = tuple(s.value for s in RequestStatus)


class Subscription(TenantBase):
    """A client's subscription (认购) of a reserved unit: the price locked from the unit's list
    price less a discount (one above ``sales.max_discount_pct`` waits for approval), and a
    deadline to sign the contract (``sales.sign_deadline_days``, end of that day in the
    tenant's time zone). At most one open subscription holds a unit."""

    __tablename__ = "subscription"
    __table_args__ = (
        CheckConstraint(_in("status", SUBSCRIPTION_STATUSES), name="status"),
        CheckConstraint(
            "list_price > 0 AND discount BETWEEN 0 AND list_price - 1 "
            "AND agreed_price = list_price - discount",
            name="price",
        ),
        CheckConstraint("refunded >= 0", name="refunded"),
        CheckConstraint("(status = 'withdrawn') = (withdrawn_at IS NOT NULL)", name="withdrawn"),
        CheckConstraint("status <> 'active' OR sign_deadline IS NOT NULL", name="deadline"),
        # Never two open subscriptions on one unit (the service says CONFLICT first, under
        # the unit's row lock).
        Index(
            "ux_subscription_open_unit",
            "unit_id",
            unique=True,
            postgresql_where="status IN ('pending_approval', 'active')",
        ),
        Index("ix_subscription_project_status", "project_id", "status"),
        Index("ix_subscription_client", "client_id"),
        Index("ix_subscription_deadline", "sign_deadline", postgresql_where="status = 'active'"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False
    )
    unit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("unit.id", ondelete="CASCADE"), nullable=False
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)  # who subscribed it
    pledge_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the pledge it converted
    deposit_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the reservation's deposit
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    list_price: Mapped[int] = mapped_column(BigInteger, nullable=False)  # minor units
    discount: Mapped[int] = mapped_column(BigInteger, nullable=False)  # minor units
    discount_pct: Mapped[Decimal] = mapped_column(Numeric(6, 2), nullable=False)
    agreed_price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    sign_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdraw_reason: Mapped[str | None] = mapped_column(String(300))
    refunded: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class SubscriptionRequest(TenantBase):
    """What a subscription waits for someone else to decide: a discount above the tenant's
    limit (the price lines reviewed, as a price adjustment keeps its lines) or more days to
    sign. Decided by someone other than its requester; one pending of each kind at a time."""

    __tablename__ = "subscription_request"
    __table_args__ = (
        CheckConstraint(_in("kind", REQUEST_KINDS), name="kind"),
        CheckConstraint(_in("status", REQUEST_STATUSES), name="status"),
        CheckConstraint(
            "(kind = 'discount') = (unit_id IS NOT NULL AND list_price IS NOT NULL "
            "AND agreed_price IS NOT NULL)",
            name="discount",
        ),
        CheckConstraint("(kind = 'extension') = (days IS NOT NULL)", name="extension"),
        Index(
            "ux_subscription_request_pending",
            "subscription_id",
            "kind",
            unique=True,
            postgresql_where="status = 'pending'",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscription.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="pending")
    # discount: the unit and its price as reviewed
    unit_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    list_price: Mapped[int | None] = mapped_column(BigInteger)
    agreed_price: Mapped[int | None] = mapped_column(BigInteger)
    # extension: days after the current deadline
    days: Mapped[int | None] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    requested_by: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    requested_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    decided_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str] = mapped_column(String(300), nullable=False, default="")


def subscription_payload(s: Subscription) -> JsonObject:
    """A subscription's live event: enough for a sales board to patch its row."""
    return {
        "subscription_id": str(s.id),
        "project_id": str(s.project_id),
        "unit_id": str(s.unit_id),
        "client_id": str(s.client_id),
        "status": s.status,
        "agreed_price": s.agreed_price,
        "currency": s.currency,
        "sign_deadline": s.sign_deadline.isoformat() if s.sign_deadline else None,
        "version": s.version,
    }


watch(
    Subscription,
    "subscription",
    {"status": "status", "unit_id": "unit", "agreed_price": "price", "sign_deadline": "deadline"},
    subscription_payload,
    on_new=True,
)


# ---------------------------------------------------------------- contracts (签约)


class ContractStatus(enum.StrEnum):
    DRAFT = "draft"  # drawn, its document hashed; waits for the buyer's signature
    SIGNED = "signed"  # signed by the buyer (SMS code, consent to the hash), sealed (PAdES)
    REGISTERED = "registered"  # 网签备案 recorded with the housing authority's number
    SUPERSEDED = "superseded"  # an amendment was signed in its place
    CANCELED = (
        "canceled"  # 解约 / 撤销: the unit went back on sale (signed ones), or a draft dropped
    )


CONTRACT_STATUSES = tuple(s.value for s in ContractStatus)
OPEN_CONTRACT = ("draft", "signed", "registered")  # those that hold their unit
IN_FORCE = ("signed", "registered")


class ContractTemplate(TenantBase):
    """A tenant's contract template in one locale: a title and clauses (text blocks with
    named ``{placeholders}``, filled from the contract's facts, never evaluated). The default
    template of a locale is used when a contract names none; without one, the built-in
    template (``api/sales/contract_document.py``)."""

    __tablename__ = "contract_template"
    __table_args__ = (
        CheckConstraint("locale IN ('zh-CN', 'en')", name="locale"),
        UniqueConstraint("locale", "name"),
        Index(
            "ux_contract_template_default",
            "locale",
            unique=True,
            postgresql_where="is_default",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    locale: Mapped[str] = mapped_column(String(5), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    clauses: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class Contract(TenantBase):
    """A sale contract (商品房买卖合同) drawn from an active subscription: its document (PDF,
    stored privately, its SHA-256 kept) is what the buyer consents to; signing seals it
    (PAdES) and moves the unit to ``contracted``. An amendment is a new contract (``revision``
    + 1, ``amends_id``) signed again; when signed, the one it amends is superseded."""

    __tablename__ = "contract"
    __table_args__ = (
        CheckConstraint(_in("status", CONTRACT_STATUSES), name="status"),
        CheckConstraint("price > 0", name="price"),
        CheckConstraint("revision > 0", name="revision"),
        CheckConstraint(
            "(status IN ('signed', 'registered', 'superseded')) <= (signed_at IS NOT NULL)",
            name="signed",
        ),
        CheckConstraint(
            "(status = 'registered') <= (registration_number IS NOT NULL)", name="registered"
        ),
        CheckConstraint("(status = 'canceled') = (canceled_at IS NOT NULL)", name="canceled"),
        # One contract in force per unit, one draft per subscription (the service says
        # CONFLICT first, under the subscription's row lock).
        Index(
            "ux_contract_unit_in_force",
            "unit_id",
            unique=True,
            postgresql_where="status IN ('signed', 'registered')",
        ),
        Index(
            "ux_contract_draft_subscription",
            "subscription_id",
            unique=True,
            postgresql_where="status = 'draft'",
        ),
        UniqueConstraint("number", "revision"),
        Index("ix_contract_unit", "unit_id"),
        Index("ix_contract_client", "client_id"),
        Index("ix_contract_project_status", "project_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    number: Mapped[str] = mapped_column(String(32), nullable=False)  # kept by amendments
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    amends_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscription.id", ondelete="CASCADE"), nullable=False
    )
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False
    )
    unit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("unit.id", ondelete="CASCADE"), nullable=False
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)  # who drew it
    template_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # None: the built-in one
    locale: Mapped[str] = mapped_column(String(5), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="draft")
    price: Mapped[int] = mapped_column(BigInteger, nullable=False)  # minor units
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    # [{"label": str, "amount": int (minor units), "due": "YYYY-MM-DD"}], summing to price
    payment_plan: Mapped[list[JsonObject]] = mapped_column(JSONB, nullable=False)
    extra_clauses: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list)
    note: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    document_key: Mapped[str] = mapped_column(String(300), nullable=False)
    document_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    signed_key: Mapped[str | None] = mapped_column(String(300))
    signed_sha256: Mapped[str | None] = mapped_column(String(64))
    certificate_key: Mapped[str | None] = mapped_column(String(300))
    certificate: Mapped[JsonObject | None] = mapped_column(JSONB)
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    registration_number: Mapped[str | None] = mapped_column(String(64))
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


def contract_payload(c: Contract) -> JsonObject:
    """A contract's live event: enough for a sales board to patch its row."""
    return {
        "contract_id": str(c.id),
        "number": c.number,
        "revision": c.revision,
        "project_id": str(c.project_id),
        "unit_id": str(c.unit_id),
        "client_id": str(c.client_id),
        "status": c.status,
        "price": c.price,
        "currency": c.currency,
        "version": c.version,
    }


watch(Contract, "contract", {"status": "status"}, contract_payload, on_new=True)


# Payment plans, collections and mortgage cases have their own module (loaded with these).
# Commissions and channel attribution (报备) live in their own modules; imported here so that
# loading the domain's models (migrations, the models-match test) loads them too.
from api.sales import attribution_models as _attribution_models  # noqa: E402, F401
from api.sales import commission_models as _commission_models  # noqa: E402, F401
from api.sales import plan_models as _plan_models  # noqa: E402,F401
