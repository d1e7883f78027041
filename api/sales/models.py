"""Pledges (认筹) and the per-project counter that numbers them."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.db import JsonObject, TenantBase, utcnow
from api.ids import uuid7
from api.live.outbox import watch
from api.unit.models import _in


class PledgeStatus(enum.StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    CONVERTED = "converted"  # became a subscription (认购): the next slice of sales


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
