"""Resale (second-hand) listings and their timeline.

A listing may point at a unit the tenant sold earlier: the unit's timeline then shows the
listing and its sale too (``unit_event`` rows with ``ref_id`` = the listing)."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from api.db import TenantBase, ciphertext_column, utcnow
from api.ids import uuid7
from api.live.outbox import watch
from api.unit.models import ORIENTATIONS, JsonObject, _in


class ListingStatus(enum.StrEnum):
    """The local status of a resale listing."""

    ACTIVE = "active"
    UNDER_CONTRACT = "under_contract"
    SOLD = "sold"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class Decoration(enum.StrEnum):
    ROUGH = "rough"
    SIMPLE = "simple"
    FINE = "fine"
    LUXURY = "luxury"


class PropertyRight(enum.StrEnum):
    """The kind of property right on the title."""

    COMMODITY = "commodity"
    AFFORDABLE = "affordable"
    REFORMED_PUBLIC = "reformed_public"
    COLLECTIVE = "collective"
    OTHER = "other"


LISTING_STATUSES = tuple(s.value for s in ListingStatus)
DECORATIONS = tuple(d.value for d in Decoration)
RIGHTS = tuple(r.value for r in PropertyRight)


class Listing(TenantBase):
    __tablename__ = "listing"
    __mapper_args__ = {"eager_defaults": True}
    __table_args__ = (
        CheckConstraint(_in("status", LISTING_STATUSES), name="status"),
        CheckConstraint(f"decoration IS NULL OR {_in('decoration', DECORATIONS)}", name="deco"),
        CheckConstraint(f"property_right IS NULL OR {_in('property_right', RIGHTS)}", "right"),
        CheckConstraint(f"orientation IS NULL OR {_in('orientation', ORIENTATIONS)}", name="ori"),
        CheckConstraint("gross_area > 0 AND asking_price > 0", name="positive"),
        Index("ix_listing_status_district", "status", "district"),
        Index("ix_listing_asking_price", "asking_price"),
        Index("ix_listing_unit_id", "unit_id"),
        Index("ix_listing_tags", "tags", postgresql_using="gin"),
        Index(
            "ix_listing_search_text",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "public.gin_trgm_ops"},
        ),
        Index(
            "ix_listing_source_ref",
            "source_ref",
            unique=True,
            postgresql_where="source_ref IS NOT NULL",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("unit.id", ondelete="SET NULL"))
    city: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    district: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    community: Mapped[str] = mapped_column(String(200), nullable=False)
    address: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    latitude: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    longitude: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    gross_area: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    rooms: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    living_rooms: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=1)
    bathrooms: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=1)
    floor: Mapped[int | None] = mapped_column(SmallInteger)
    total_floors: Mapped[int | None] = mapped_column(SmallInteger)
    orientation: Mapped[str | None] = mapped_column(String(4))
    year_built: Mapped[int | None] = mapped_column(SmallInteger)
    decoration: Mapped[str | None] = mapped_column(String(16))
    # Title / property-rights facts.
    property_right: Mapped[str | None] = mapped_column(String(20))
    right_years: Mapped[int | None] = mapped_column(SmallInteger)  # 70, 50, 40
    title_registered_on: Mapped[date | None] = mapped_column(Date)
    mortgaged: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    only_home: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # The seller: name in clear, phone encrypted (bound to this row) with a blind index.
    seller_name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    seller_phone_enc: Mapped[bytes | None] = ciphertext_column("seller_phone")
    seller_phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary, index=True)
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    asking_price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="CNY")
    price_per_m2: Mapped[int] = mapped_column(
        BigInteger, Computed("round(asking_price / gross_area)::bigint", persisted=True)
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    verified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    verified_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), nullable=False, default=list)
    search_text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # An import's natural key (e.g. the source system's listing number): re-importing is a no-op.
    source_ref: Mapped[str | None] = mapped_column(String(100))
    listed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class ListingEvent(TenantBase):
    __tablename__ = "listing_event"
    __table_args__ = (Index("ix_listing_event_listing_id_at", "listing_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    listing_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("listing.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # created status price verified
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    old_price: Mapped[int | None] = mapped_column(BigInteger)
    new_price: Mapped[int | None] = mapped_column(BigInteger)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


def live_payload(x: Listing) -> JsonObject:
    """A listing's live event: its status and price, and what saved filters match on."""
    return {
        "listing_id": str(x.id),
        "unit_id": str(x.unit_id) if x.unit_id else None,
        "status": x.status or "active",
        "asking_price": x.asking_price,
        "currency": x.currency or "CNY",
        "version": x.version or 1,
        "verified": bool(x.verified),
        "city": x.city,
        "district": x.district,
        "community": x.community,
        "rooms": x.rooms,
        "gross_area": str(x.gross_area),
        "orientation": x.orientation,
        "decoration": x.decoration,
        "year_built": x.year_built,
        "tags": list(x.tags or ()),
        "agent_id": str(x.agent_id) if x.agent_id else None,
        "latitude": float(x.latitude) if x.latitude is not None else None,
        "longitude": float(x.longitude) if x.longitude is not None else None,
        "text": x.search_text,
    }


watch(
    Listing,
    "listing",
    {"status": "status", "asking_price": "price", "verified": "verified"},
    live_payload,
    on_new=True,
)
