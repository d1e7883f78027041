"""Commission rules (per project and channel) and the commissions of signed contracts, with
their split lines (agents, teams, the channel). See docs/sales.md, "Commissions"."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db import JsonObject, TenantBase, utcnow
from api.ids import uuid7
from api.unit.models import _in


class RuleBasis(enum.StrEnum):
    FIXED = "fixed"  # an amount per contract (minor units)
    PERCENT = "percent"  # basis points of the contract price


class TierMeasure(enum.StrEnum):
    COUNT = "count"  # contracts signed under the rule in its period
    AMOUNT = "amount"  # their prices summed (minor units)


class RulePeriod(enum.StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class Condition(enum.StrEnum):
    SIGNED = "signed"  # payable when the contract is signed
    COLLECTED = "collected"  # payable once collected_bp of the price is collected


class SplitKind(enum.StrEnum):
    AGENT = "agent"
    TEAM = "team"
    CHANNEL = "channel"


class CommissionStatus(enum.StrEnum):
    PENDING = "pending"  # its condition is not met yet
    PAYABLE = "payable"  # condition met, waits for approval
    APPROVED = "approved"  # accrued in the ledger (expense / commissions payable)
    PAID = "paid"  # paid out (commissions payable / bank)
    REJECTED = "rejected"  # refused by the approver: never payable
    CANCELED = "canceled"  # the contract was canceled before anything was accrued
    CLAWED_BACK = "clawed_back"  # the contract was canceled after the accrual: reversed


RULE_BASES = tuple(b.value for b in RuleBasis)
TIER_MEASURES = tuple(m.value for m in TierMeasure)
RULE_PERIODS = tuple(p.value for p in RulePeriod)
CONDITIONS = tuple(c.value for c in Condition)
SPLIT_KINDS = tuple(k.value for k in SplitKind)
COMMISSION_STATUSES = tuple(s.value for s in CommissionStatus)
OPEN_COMMISSION = ("pending", "payable", "approved", "paid")  # counted in volumes


class CommissionRule(TenantBase):
    """How a contract of a project earns commission when a given channel (or none: the
    project's default rule) holds its buyer. Replacing a rule deactivates the old row, which
    the commissions made under it keep referring to."""

    __tablename__ = "commission_rule"
    __table_args__ = (
        CheckConstraint(_in("basis", RULE_BASES), name="basis"),
        CheckConstraint(_in("period", RULE_PERIODS), name="period"),
        CheckConstraint(_in("condition", CONDITIONS), name="condition"),
        CheckConstraint("tier_measure IS NULL OR " + _in("tier_measure", TIER_MEASURES), name="tm"),
        CheckConstraint(
            "(basis = 'fixed' AND amount > 0 AND rate_bp IS NULL) OR "
            "(basis = 'percent' AND rate_bp BETWEEN 1 AND 10000 AND amount IS NULL)",
            name="value",
        ),
        CheckConstraint(
            "(condition = 'collected') = (collected_bp IS NOT NULL) "
            "AND (collected_bp IS NULL OR collected_bp BETWEEN 1 AND 10000)",
            name="collected",
        ),
        Index(
            "ux_commission_rule_active",
            "project_id",
            text("COALESCE(channel_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
            unique=True,
            postgresql_where="active",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False
    )
    channel_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sales_channel.id", ondelete="CASCADE")
    )
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    basis: Mapped[str] = mapped_column(String(8), nullable=False)
    amount: Mapped[int | None] = mapped_column(BigInteger)  # fixed: minor units
    rate_bp: Mapped[int | None] = mapped_column(Integer)  # percent: basis points
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    tier_measure: Mapped[str | None] = mapped_column(String(8))
    period: Mapped[str] = mapped_column(String(8), nullable=False, default="month")
    # [{"from": int, "amount": int | None, "rate_bp": int | None}], ``from`` ascending
    tiers: Mapped[list[JsonObject]] = mapped_column(JSONB, nullable=False, default=list)
    # [{"kind": agent|team|channel, "account_id": str|None, "team_id": str|None,
    #   "share_bp": int}], shares summing to 10000
    splits: Mapped[list[JsonObject]] = mapped_column(JSONB, nullable=False)
    condition: Mapped[str] = mapped_column(String(10), nullable=False, default="signed")
    collected_bp: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class Commission(TenantBase):
    """What one signed contract earns under its rule: the amount (tier applied), its state,
    and its lines (``commission_line``). Ledger journals: ``commission:<id>:accrued``,
    ``:paid``, ``:clawback``."""

    __tablename__ = "commission"
    __table_args__ = (
        CheckConstraint(_in("status", COMMISSION_STATUSES), name="status"),
        CheckConstraint(_in("condition", CONDITIONS), name="condition"),
        CheckConstraint("amount > 0 AND price > 0", name="amount"),
        CheckConstraint("clawed_back BETWEEN 0 AND amount", name="clawed_back"),
        CheckConstraint("status <> 'paid' OR paid_at IS NOT NULL", name="paid"),
        CheckConstraint(
            "status NOT IN ('approved', 'paid') OR approved_at IS NOT NULL", name="approved"
        ),
        Index("ux_commission_contract", "contract_id", unique=True),
        Index("ix_commission_subscription", "subscription_id"),
        Index("ix_commission_project_status", "project_id", "status"),
        Index("ix_commission_rule_signed", "rule_id", "signed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contract.id", ondelete="CASCADE"), nullable=False
    )
    subscription_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False
    )
    unit_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    rule_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("commission_rule.id", ondelete="RESTRICT"), nullable=False
    )
    channel_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # who held the buyer
    registration_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    tier: Mapped[int | None] = mapped_column(SmallInteger)  # index in the rule's tiers
    volume: Mapped[int] = mapped_column(BigInteger, nullable=False)  # count or amount, with it
    rate_bp: Mapped[int | None] = mapped_column(Integer)  # as applied
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)  # minor units, all lines
    condition: Mapped[str] = mapped_column(String(10), nullable=False)
    collected_bp: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    payable_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    paid_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pay_reference: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    clawed_back: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class CommissionLine(TenantBase):
    """One payee's part of a commission: an agent, a team or the channel."""

    __tablename__ = "commission_line"
    __table_args__ = (
        CheckConstraint(_in("kind", SPLIT_KINDS), name="kind"),
        CheckConstraint("share_bp BETWEEN 1 AND 10000 AND amount >= 0", name="share"),
        CheckConstraint(
            "(kind = 'agent') = (account_id IS NOT NULL) AND (kind = 'team') = "
            "(team_id IS NOT NULL) AND (kind = 'channel') = (channel_id IS NOT NULL)",
            name="payee",
        ),
        Index("ix_commission_line_commission", "commission_id", "position", unique=True),
        Index("ix_commission_line_account", "account_id"),
        Index("ix_commission_line_channel", "channel_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    commission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("commission.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    team_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    channel_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    share_bp: Mapped[int] = mapped_column(Integer, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
