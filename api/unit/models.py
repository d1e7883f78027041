"""Units (one flat, house or shop for its whole life), unit types, the unit's timeline, price
adjustments, and tenant settings.

A unit keeps the finer local status; the API maps it to RESO StandardStatus at the edge
(``api.unit.status``). Every status and price change appends a row to ``unit_event``: that table
is the unit's timeline and its price history."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
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

from api.db import JsonObject, TenantBase, Timestamped, utcnow
from api.ids import uuid7
from api.live.outbox import watch


class UnitStatus(enum.StrEnum):
    """The local status of a unit (finer than RESO StandardStatus)."""

    PLANNED = "planned"
    AVAILABLE = "available"
    ON_HOLD = "on_hold"
    RESERVED = "reserved"
    SUBSCRIBED = "subscribed"
    CONTRACTED = "contracted"
    SOLD = "sold"
    DELIVERED = "delivered"


STATUSES = tuple(s.value for s in UnitStatus)
ORIENTATIONS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW", "NS", "EW")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UnitType(Timestamped, TenantBase):
    __tablename__ = "unit_type"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        CheckConstraint("rooms BETWEEN 0 AND 20", name="rooms"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    rooms: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    living_rooms: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=1)
    bathrooms: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=1)
    gross_area: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    net_area: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    orientation: Mapped[str | None] = mapped_column(String(4))
    layout: Mapped[str] = mapped_column(Text, nullable=False, default="")
    floor_plan_url: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    vr_url: Mapped[str] = mapped_column(String(500), nullable=False, default="")


class Unit(TenantBase):
    __tablename__ = "unit"
    # The generated price per m² comes back with every INSERT/UPDATE (RETURNING).
    __mapper_args__ = {"eager_defaults": True}
    __table_args__ = (
        UniqueConstraint("building_id", "number"),
        CheckConstraint(_in("status", STATUSES), name="status"),
        CheckConstraint(f"orientation IS NULL OR {_in('orientation', ORIENTATIONS)}", name="ori"),
        CheckConstraint("gross_area > 0 AND (net_area IS NULL OR net_area <= gross_area)", "area"),
        CheckConstraint("list_price IS NULL OR list_price >= 0", name="price"),
        CheckConstraint("status <> 'on_hold' OR hold_expires_at IS NOT NULL", name="hold"),
        Index("ix_unit_project_id_status", "project_id", "status"),
        Index("ix_unit_building_id_floor", "building_id", "floor"),
        Index("ix_unit_list_price", "list_price"),
        Index("ix_unit_gross_area", "gross_area"),
        Index("ix_unit_hold_expires_at", "hold_expires_at", postgresql_where="status = 'on_hold'"),
        Index("ix_unit_tags", "tags", postgresql_using="gin"),
        Index(
            "ix_unit_search_text",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "public.gin_trgm_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False
    )
    building_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("building.id", ondelete="CASCADE"), nullable=False
    )
    unit_type_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("unit_type.id", ondelete="SET NULL"), index=True
    )
    floor: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    number: Mapped[str] = mapped_column(String(20), nullable=False)
    gross_area: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    net_area: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    orientation: Mapped[str | None] = mapped_column(String(4))
    rooms: Mapped[int | None] = mapped_column(SmallInteger)
    list_price: Mapped[int | None] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="CNY")
    price_per_m2: Mapped[int | None] = mapped_column(
        BigInteger, Computed("round(list_price / gross_area)::bigint", persisted=True)
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="planned")
    hold_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    held_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(String(50)), nullable=False, default=list, server_default="{}"
    )
    # Denormalised for keyword search (trigram index): project, district, building, number, type.
    search_text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class UnitEvent(TenantBase):
    """One line of a unit's timeline: created, status, price, delivery, listing..."""

    __tablename__ = "unit_event"
    __table_args__ = (Index("ix_unit_event_unit_id_at", "unit_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    unit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("unit.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    old_price: Mapped[int | None] = mapped_column(BigInteger)
    new_price: Mapped[int | None] = mapped_column(BigInteger)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    ref_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    data: Mapped[JsonObject] = mapped_column(JSONB, nullable=False, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class PriceAdjustment(Timestamped, TenantBase):
    """A batch price change by rule. A decrease beyond the tenant's limit waits for approval;
    the computed lines are kept so that approval applies exactly what was reviewed."""

    __tablename__ = "price_adjustment"
    __table_args__ = (
        CheckConstraint(
            _in("status", ("pending_approval", "applied", "rejected", "stale")), name="status"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), index=True, nullable=False
    )
    rule: Mapped[JsonObject] = mapped_column(JSONB, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    unit_count: Mapped[int] = mapped_column(Integer, nullable=False)
    max_discount_pct: Mapped[Decimal] = mapped_column(Numeric(6, 2), nullable=False)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str] = mapped_column(Text, nullable=False, default="")


class PriceAdjustmentLine(TenantBase):
    __tablename__ = "price_adjustment_line"

    adjustment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("price_adjustment.id", ondelete="CASCADE"), primary_key=True
    )
    unit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True
    )
    old_price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    new_price: Mapped[int] = mapped_column(BigInteger, nullable=False)


def live_payload(u: Unit) -> JsonObject:
    """A unit's live event (api/live): what a sales table needs to patch its row."""
    return {
        "unit_id": str(u.id),
        "project_id": str(u.project_id),
        "building_id": str(u.building_id),
        "number": u.number,
        "floor": u.floor,
        "status": u.status,
        "list_price": u.list_price,
        "currency": u.currency,
        "version": u.version,
        "hold_expires_at": u.hold_expires_at.isoformat() if u.hold_expires_at else None,
    }


watch(Unit, "unit", {"status": "status", "list_price": "price"}, live_payload)
