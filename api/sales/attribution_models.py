"""Channels (渠道: external agencies and individual brokers, 全民经纪人), their registrations of
clients (报备) with a visit code, and the disputes between two channels over one client.
No biometric data: a visit is confirmed by staff entering or scanning the code."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db import JsonObject, TenantBase, utcnow
from api.ids import uuid7
from api.unit.models import _in


class ChannelKind(enum.StrEnum):
    AGENCY = "agency"  # 渠道分销: an external agency
    BROKER = "broker"  # 全民经纪人: an individual (often an owner or a client) who refers


class RegistrationStatus(enum.StrEnum):
    REGISTERED = "registered"  # waiting for the visit (protected until expires_at)
    VISITED = "visited"  # the code was scanned at the site: the channel holds the client
    DISPUTED = "disputed"  # registered within another channel's protection: a manager decides
    LOST = "lost"  # another channel won the dispute
    REJECTED = "rejected"  # this registration lost its dispute


class DisputeStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


CHANNEL_KINDS = tuple(k.value for k in ChannelKind)
REGISTRATION_STATUSES = tuple(s.value for s in RegistrationStatus)
DISPUTE_STATUSES = tuple(s.value for s in DisputeStatus)
HOLDING = ("registered", "visited")  # may protect a client (registered: until it expires)


class SalesChannel(TenantBase):
    """An external channel that brings buyers: an agency or an individual broker. A broker
    with an account of the tenant (``account_id``) sees their own commissions."""

    __tablename__ = "sales_channel"
    __table_args__ = (
        CheckConstraint(_in("kind", CHANNEL_KINDS), name="kind"),
        Index("ux_sales_channel_name", "name", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class ChannelRegistration(TenantBase):
    """A channel's registration (报备) of a client for a project: a visit code for the site
    staff to scan, protected until ``expires_at`` (``sales.attribution_window_hours``)."""

    __tablename__ = "channel_registration"
    __table_args__ = (
        CheckConstraint(_in("status", REGISTRATION_STATUSES), name="status"),
        CheckConstraint("(visited_at IS NULL) = (visited_by IS NULL)", name="visit"),
        CheckConstraint("status <> 'visited' OR visited_at IS NOT NULL", name="visited"),
        Index("ux_channel_registration_code", "code", unique=True),
        Index("ix_channel_registration_client", "project_id", "client_id"),
        Index("ix_channel_registration_channel", "channel_id", "registered_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False
    )
    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sales_channel.id", ondelete="CASCADE"), nullable=False
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False
    )
    code: Mapped[str] = mapped_column(String(16), nullable=False)
    phone_mask: Mapped[str] = mapped_column(String(24), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="registered")
    registered_by: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    visited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    visited_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    note: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class AttributionDispute(TenantBase):
    """Two channels registered one client for one project within the first one's protection:
    the evidence (codes, times, who registered, visits) as it stood, for a manager to decide."""

    __tablename__ = "attribution_dispute"
    __table_args__ = (
        CheckConstraint(_in("status", DISPUTE_STATUSES), name="status"),
        CheckConstraint(
            "(status = 'resolved') = (winner_id IS NOT NULL AND resolved_at IS NOT NULL)",
            name="resolved",
        ),
        Index("ix_attribution_dispute_status", "status", "created_at"),
        Index("ux_attribution_dispute_second", "second_id", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False
    )
    first_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channel_registration.id", ondelete="CASCADE"), nullable=False
    )
    second_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channel_registration.id", ondelete="CASCADE"), nullable=False
    )
    evidence: Mapped[JsonObject] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="open")
    winner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_note: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
