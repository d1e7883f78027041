"""Client records and their follow-ups (tenant schema)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db import TenantBase, ciphertext_column, utcnow
from api.ids import uuid7
from api.unit.models import _in


class ClientSource(enum.StrEnum):
    WALK_IN = "walk_in"
    PHONE = "phone"
    PORTAL = "portal"
    REFERRAL = "referral"
    CAMPAIGN = "campaign"
    EVENT = "event"
    OTHER = "other"


class ClientStage(enum.StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    SHOWING = "showing"
    NEGOTIATING = "negotiating"
    WON = "won"
    LOST = "lost"


class ContactKind(enum.StrEnum):
    CALL = "call"
    MESSAGE = "message"
    VISIT = "visit"
    SHOWING = "showing"
    NOTE = "note"


SOURCES = tuple(s.value for s in ClientSource)
STAGES = tuple(s.value for s in ClientStage)
GRADES = ("A", "B", "C")
KINDS = tuple(k.value for k in ContactKind)


class Client(TenantBase):
    __tablename__ = "client"
    __table_args__ = (
        CheckConstraint(_in("source", SOURCES), name="source"),
        CheckConstraint(_in("stage", STAGES), name="stage"),
        CheckConstraint("grade IS NULL OR " + _in("grade", GRADES), name="grade"),
        CheckConstraint("(stage = 'lost') = (lost_reason IS NOT NULL)", name="lost_reason"),
        Index("ix_client_phone_bidx", "phone_bidx"),
        Index("ix_client_id_number_bidx", "id_number_bidx"),
        Index("ix_client_owner_stage", "owner_id", "stage"),
        Index("ix_client_next_follow_up", "owner_id", "next_follow_up_at"),
        Index("ix_client_offer", "offer_expires_at", postgresql_where="offer_team_id IS NOT NULL"),
        CheckConstraint("(offer_team_id IS NULL) = (offer_expires_at IS NULL)", name="offer"),
        CheckConstraint(
            "suggested_grade IS NULL OR " + _in("suggested_grade", GRADES), name="suggested_grade"
        ),
        Index("ix_client_account", "account_id", postgresql_where="account_id IS NOT NULL"),
        Index("ix_client_owner_active", "owner_id", "last_active_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # Personal data: encrypted and bound to the row; a blind index finds duplicates; the
    # masked form is kept for lists (no decryption to show 138****5678).
    phone_enc: Mapped[bytes | None] = ciphertext_column("phone")
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_mask: Mapped[str] = mapped_column(String(24), nullable=False, default="")
    id_number_enc: Mapped[bytes | None] = ciphertext_column("id_number")
    id_number_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_mask: Mapped[str] = mapped_column(String(24), nullable=False, default="")
    # More phones (the encrypted values in client_phone); their masks here for lists.
    other_phone_masks: Mapped[list[str]] = mapped_column(
        ARRAY(String(24)), nullable=False, default=list
    )
    source: Mapped[str] = mapped_column(String(12), nullable=False, default="other")
    stage: Mapped[str] = mapped_column(String(12), nullable=False, default="new")
    lost_reason: Mapped[str | None] = mapped_column(String(300))
    grade: Mapped[str | None] = mapped_column(String(1))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the agent; None: the pool
    # budget_min/max (minor units), area_min/max, rooms, districts, purpose, must_haves
    needs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), nullable=False, default=list)
    notes: Mapped[str] = mapped_column(Text, nullable=False, default="")
    consent_marketing: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    language: Mapped[str] = mapped_column(String(16), nullable=False, default="")  # zh, en, yue
    # Offered by a routing rule to a team whose members may claim it until it expires (then
    # the rule's next fallback group, then the pool).
    offer_team_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    offer_route_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    offer_step: Mapped[int | None] = mapped_column(Integer)
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A record that matched an existing one when created (flagged for review or merge).
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Merged into another client: kept (its history moved there), hidden from lists.
    merged_into: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    stage_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    last_contact_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_follow_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The client's own app account (linked by phone), what it did there summarised
    # (api/client/profile.py), the grade that suggests, and when it was last active.
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    profile: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    suggested_grade: Mapped[str | None] = mapped_column(String(1))
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class ClientPhone(TenantBase):
    """One of a client's other phones: encrypted and bound to this row, with the same blind
    index as the main phone (duplicates are found through either)."""

    __tablename__ = "client_phone"
    __table_args__ = (
        Index("ix_client_phone_client", "client_id", "position"),
        Index("ix_client_phone_number_bidx", "phone_bidx"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    phone_enc: Mapped[bytes] = ciphertext_column("phone", nullable=False)
    phone_bidx: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    phone_mask: Mapped[str] = mapped_column(String(24), nullable=False)


class ActivityKind(enum.StrEnum):
    VIEW_UNIT = "view_unit"
    VIEW_LISTING = "view_listing"
    SEARCH = "search"


ACTIVITY_KINDS = tuple(k.value for k in ActivityKind)


class ClientActivity(TenantBase):
    """Something a client did in the app: a unit or listing viewed (with what it cost, its
    area, rooms and district then), or a search (its criteria). Kept under the account that
    did it; ``client_id`` once a client record is linked to that account."""

    __tablename__ = "client_activity"
    __table_args__ = (
        CheckConstraint(_in("kind", ACTIVITY_KINDS), name="kind"),
        CheckConstraint("seconds IS NULL OR seconds BETWEEN 0 AND 86400", name="seconds"),
        Index("ix_client_activity_client", "client_id", "at"),
        Index("ix_client_activity_account", "account_id", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # view: price (minor units), area, rooms, district, project_id; search: districts,
    # price_min/max, area_min/max, rooms, keyword
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    seconds: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class FollowUp(TenantBase):
    """A contact that happened (``happened_at``) or one scheduled (``due_at``, until done)."""

    __tablename__ = "client_follow_up"
    __table_args__ = (
        CheckConstraint(_in("kind", KINDS), name="kind"),
        CheckConstraint("happened_at IS NOT NULL OR due_at IS NOT NULL", name="when"),
        Index("ix_client_follow_up_client", "client_id", "id"),
        Index(
            "ix_client_follow_up_due",
            "assignee_id",
            "due_at",
            postgresql_where="due_at IS NOT NULL AND done_at IS NULL",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    outcome: Mapped[str] = mapped_column(Text, nullable=False, default="")
    next_step: Mapped[str] = mapped_column(Text, nullable=False, default="")
    happened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class Assignment(TenantBase):
    """Every change of a client's owner, with why (the app shows the reason)."""

    __tablename__ = "client_assignment"
    __table_args__ = (Index("ix_client_assignment_client", "client_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False
    )
    from_owner: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    to_owner: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # created, claimed, returned_to_pool (neglected), merged, assigned
    reason: Mapped[str] = mapped_column(String(30), nullable=False)
    detail: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class RouteMode(enum.StrEnum):
    ROUND_ROBIN = "round_robin"
    CLAIM = "claim"


ROUTE_MODES = tuple(m.value for m in RouteMode)


class LeadRoute(TenantBase):
    """A routing rule: leads matching its conditions (each empty condition matches all) go to
    its agent or team (round-robin, or offered for the first to claim), else to its fallback
    teams in order, else to the pool. Rules are tried by position."""

    __tablename__ = "lead_route"
    __table_args__ = (
        CheckConstraint(_in("mode", ROUTE_MODES), name="mode"),
        CheckConstraint("(team_id IS NULL) <> (agent_id IS NULL)", name="target"),
        CheckConstraint("claim_minutes BETWEEN 1 AND 1440", name="claim_minutes"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    sources: Mapped[list[str]] = mapped_column(ARRAY(String(12)), nullable=False, default=list)
    districts: Mapped[list[str]] = mapped_column(ARRAY(String(100)), nullable=False, default=list)
    languages: Mapped[list[str]] = mapped_column(ARRAY(String(16)), nullable=False, default=list)
    budget_min: Mapped[int | None] = mapped_column(BigInteger)
    budget_max: Mapped[int | None] = mapped_column(BigInteger)
    team_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    mode: Mapped[str] = mapped_column(String(12), nullable=False, default="round_robin")
    claim_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=15)
    fallback_team_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(Uuid), nullable=False, default=list
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class AgentRouting(TenantBase):
    """An agent's availability for routing, and when a rule last gave them a lead (round-robin
    goes to whoever waited longest)."""

    __tablename__ = "agent_routing"

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    paused_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pause_reason: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    last_assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


SHOWING_STATUSES = ("scheduled", "confirmed", "done", "cancelled")


class Showing(TenantBase):
    """A visit with a client to units or listings; the agent's calendar."""

    __tablename__ = "client_showing"
    __table_args__ = (
        CheckConstraint(_in("status", SHOWING_STATUSES), name="status"),
        CheckConstraint("ends_at > starts_at", name="span"),
        Index("ix_client_showing_agent", "agent_id", "starts_at"),
        Index("ix_client_showing_client", "client_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), nullable=False
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="scheduled")
    unit_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), nullable=False, default=list)
    listing_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), nullable=False, default=list)
    place: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    # [{"kind": "unit" | "listing", "id": "...", "rating": 1..5, "comment": "..."}]
    feedback: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, default=list)
    cancel_reason: Mapped[str | None] = mapped_column(String(300))
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class CalendarFeed(TenantBase):
    """An agent's private calendar URL: only the token's hash is stored; a new one (or a
    revocation) ends the old."""

    __tablename__ = "calendar_feed"

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
