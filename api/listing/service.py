"""Business rules of resale listings. Never commits.

A listing of a unit the tenant sold earlier writes into that unit's timeline as well (listed,
price changes, resold), so the unit shows its whole life."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from api.db import utcnow
from api.errors import Conflict, Forbidden, NotFound, ValidationFailed
from api.identity.service import normalize_phone
from api.ids import uuid7
from api.listing import repository as repo
from api.listing.models import DECORATIONS, RIGHTS, Listing, ListingEvent, live_payload
from api.live import outbox
from api.project import repository as project_repo
from api.security.kit import SecurityKit
from api.unit import repository as unit_repo
from api.unit.models import ORIENTATIONS, JsonObject, UnitEvent
from api.validate import area as area_of
from api.validate import text, unique_texts
from tenants.registry import TenantInfo
from tenants.sessions import tenant_of

TRANSITIONS: dict[str, frozenset[str]] = {
    "active": frozenset({"under_contract", "sold", "withdrawn", "expired"}),
    "under_contract": frozenset({"active", "sold", "withdrawn"}),
    "withdrawn": frozenset({"active"}),
    "expired": frozenset({"active"}),
    "sold": frozenset(),
}
RESO = {
    "active": "Active",
    "under_contract": "Active Under Contract",
    "sold": "Closed",
    "withdrawn": "Withdrawn",
    "expired": "Expired",
}
MAX_PRICE = 10**13


@dataclass
class ListingInput:
    community: str = ""
    asking_price: int = 0
    gross_area: Decimal | None = None
    rooms: int | None = None
    unit_id: uuid.UUID | None = None
    city: str = ""
    district: str = ""
    address: str = ""
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    living_rooms: int = 1
    bathrooms: int = 1
    floor: int | None = None
    total_floors: int | None = None
    orientation: str | None = None
    year_built: int | None = None
    decoration: str | None = None
    property_right: str | None = None
    right_years: int | None = None
    title_registered_on: date | None = None
    mortgaged: bool = False
    only_home: bool = False
    seller_name: str = ""
    seller_phone: str | None = None
    agent_id: uuid.UUID | None = None
    description: str = ""
    tags: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
    source_ref: str | None = None


def expiry(days: int, tenant: TenantInfo, now: datetime) -> datetime:
    """When a listing listed for ``days`` more days expires: the tenant's midnight that ends the
    ``days``-th day after its today (computed in UTC from the tenant's zone)."""
    return tenant.midnight(tenant.today(now) + timedelta(days=days + 1))


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in allowed:
        raise ValidationFailed(f"{name} must be one of {', '.join(allowed)}", name)
    return value


def _bounded(value: int, low: int, high: int, name: str) -> int:
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be between {low} and {high}", name)
    return value


def _int(value: int | None, low: int, high: int, name: str) -> int | None:
    return None if value is None else _bounded(value, low, high, name)


def phone_scope(tenant_id: str) -> str:
    return str(uuid.UUID(tenant_id))


class EncryptedPhone(NamedTuple):
    """A seller's phone as stored: its ciphertext and its blind index (for lookups)."""

    ciphertext: bytes
    blind_index: bytes


def encrypt_phone(
    kit: SecurityKit, tenant_id: str, listing_id: uuid.UUID, phone: str
) -> EncryptedPhone:
    scope = phone_scope(tenant_id)
    return EncryptedPhone(
        kit.cipher.encrypt(
            phone, scope=scope, table="listing", column="seller_phone", row_id=listing_id
        ),
        kit.blind_index.digest(phone, scope=scope, column="seller_phone"),
    )


def seller_phone(kit: SecurityKit, tenant_id: str, row: Listing) -> str | None:
    if row.seller_phone_enc is None:
        return None
    return kit.cipher.decrypt(
        row.seller_phone_enc,
        scope=phone_scope(tenant_id),
        table="listing",
        column="seller_phone",
        row_id=row.id,
    )


def search_text(x: Listing) -> str:
    parts = (x.community, x.district, x.city, x.address, " ".join(x.tags))
    return " ".join(p for p in parts if p).lower()


async def create_listing(
    session: AsyncSession,
    kit: SecurityKit,
    tenant_id: str,
    data: ListingInput,
    *,
    actor_id: uuid.UUID | None,
) -> Listing:
    now = utcnow()
    unit = None
    if data.unit_id is not None:
        unit = (await unit_repo.units_by_ids(session, [data.unit_id])).get(data.unit_id)
        if unit is None:
            raise NotFound("unit not found", "unitId")
        if unit.status not in ("sold", "delivered"):
            raise Conflict(
                f"only a sold unit can be listed for resale (it is {unit.status})", "unitId"
            )
    project = None
    if unit is not None:
        project = (await project_repo.projects_by_ids(session, [unit.project_id]))[unit.project_id]
    row = Listing(
        id=uuid7(),
        listed_at=now,
        status_changed_at=now,
        version=1,
        status="active",
        unit_id=unit.id if unit else None,
    )
    row.community = text(
        data.community or (project.name if project else ""), "community", required=True, max_len=200
    )
    row.city = text(
        data.city or (project.city if project else ""), "city", required=False, max_len=100
    )
    row.district = text(
        data.district or (project.district if project else ""),
        "district",
        required=False,
        max_len=100,
    )
    row.address = text(
        data.address or (project.address if project else ""), "address", required=False, max_len=300
    )
    lat, lng = data.latitude, data.longitude
    if lat is None and project is not None:
        lat, lng = project.latitude, project.longitude
    if (lat is None) != (lng is None):
        raise ValidationFailed("latitude and longitude go together", "latitude")
    if lat is not None and lng is not None and not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise ValidationFailed("latitude/longitude out of range", "latitude")
    row.latitude, row.longitude = lat, lng
    area = data.gross_area if data.gross_area is not None else (unit.gross_area if unit else None)
    gross = area_of(area, "grossArea", required=True)
    assert gross is not None  # required=True refuses a missing area instead of returning None
    row.gross_area = gross
    rooms = data.rooms if data.rooms is not None else (unit.rooms if unit else None)
    if rooms is None:
        raise ValidationFailed("rooms is required", "rooms")
    row.rooms = _bounded(rooms, 0, 20, "rooms")
    row.living_rooms = _bounded(data.living_rooms, 0, 20, "livingRooms")
    row.bathrooms = _bounded(data.bathrooms, 0, 20, "bathrooms")
    row.floor = _int(
        data.floor if data.floor is not None else (unit.floor if unit else None), -10, 200, "floor"
    )
    row.total_floors = _int(data.total_floors, 1, 200, "totalFloors")
    if row.floor is not None and row.total_floors is not None and row.floor > row.total_floors:
        raise ValidationFailed("floor must not exceed totalFloors", "floor")
    ori = (
        data.orientation.strip().upper()
        if data.orientation
        else (unit.orientation if unit else None)
    )
    row.orientation = _choice(ori, ORIENTATIONS, "orientation")
    row.year_built = _int(data.year_built, 1900, now.year + 5, "yearBuilt")
    row.decoration = _choice(data.decoration, DECORATIONS, "decoration")
    row.property_right = _choice(data.property_right, RIGHTS, "propertyRight")
    row.right_years = _int(data.right_years, 1, 99, "rightYears")
    if data.title_registered_on is not None and data.title_registered_on > now.date():
        raise ValidationFailed("titleRegisteredOn must not be in the future", "titleRegisteredOn")
    row.title_registered_on = data.title_registered_on
    row.mortgaged, row.only_home = data.mortgaged, data.only_home
    row.seller_name = text(data.seller_name, "sellerName", required=False, max_len=100)
    if data.seller_phone:
        try:
            phone = normalize_phone(data.seller_phone)
        except ValidationFailed as exc:
            raise ValidationFailed(exc.message, "sellerPhone") from None
        row.seller_phone_enc, row.seller_phone_bidx = encrypt_phone(kit, tenant_id, row.id, phone)
    row.agent_id = data.agent_id or actor_id
    if not 0 < data.asking_price <= MAX_PRICE:
        raise ValidationFailed(f"askingPrice must be between 1 and {MAX_PRICE}", "askingPrice")
    row.asking_price = data.asking_price
    row.currency = tenant_of(session).currency
    row.description = text(data.description, "description", required=False, max_len=5000)
    row.tags = unique_texts(data.tags, "tags")
    if data.expires_at is not None and data.expires_at <= now:
        raise ValidationFailed("expiresAt must be in the future", "expiresAt")
    row.expires_at = data.expires_at
    row.source_ref = text(data.source_ref or "", "sourceRef", required=False, max_len=100) or None
    row.search_text = search_text(row)
    session.add(row)
    session.add(
        ListingEvent(
            listing_id=row.id,
            kind="created",
            to_status="active",
            new_price=row.asking_price,
            actor_id=actor_id,
            at=now,
        )
    )
    if unit is not None:
        session.add(
            UnitEvent(
                unit_id=unit.id,
                kind="listed",
                actor_id=actor_id,
                at=now,
                ref_id=row.id,
                new_price=row.asking_price,
                reason="resale listing",
                data={"listing_id": str(row.id)},
            )
        )
    await session.flush()
    return row


async def _locked(
    session: AsyncSession, listing_id: uuid.UUID, *, actor_id: uuid.UUID, can_all: bool
) -> Listing:
    row = await repo.lock_listing(session, listing_id)
    if row is None:
        raise NotFound("listing not found", "listingId")
    if not can_all and row.agent_id != actor_id:
        raise Forbidden("only the listing agent, or staff who manage all listings, can change it")
    return row


async def change_price(
    session: AsyncSession,
    listing_id: uuid.UUID,
    price: int,
    *,
    reason: str,
    actor_id: uuid.UUID,
    can_all: bool,
) -> Listing:
    if not 0 < price <= MAX_PRICE:
        raise ValidationFailed(f"askingPrice must be between 1 and {MAX_PRICE}", "askingPrice")
    reason = text(reason, "reason", required=False, max_len=500)
    row = await _locked(session, listing_id, actor_id=actor_id, can_all=can_all)
    if row.status not in ("active", "under_contract"):
        raise Conflict(f"a listing that is {row.status} has no asking price to change", "status")
    if price == row.asking_price:
        return row
    now = utcnow()
    session.add(
        ListingEvent(
            listing_id=row.id,
            kind="price",
            old_price=row.asking_price,
            new_price=price,
            actor_id=actor_id,
            reason=reason,
            at=now,
        )
    )
    if row.unit_id is not None:
        session.add(
            UnitEvent(
                unit_id=row.unit_id,
                kind="listing_price",
                actor_id=actor_id,
                at=now,
                ref_id=row.id,
                old_price=row.asking_price,
                new_price=price,
                reason=reason,
                data={"listing_id": str(row.id)},
            )
        )
    row.asking_price = price
    row.version += 1
    await session.flush()
    return row


async def change_status(
    session: AsyncSession,
    listing_id: uuid.UUID,
    to: str,
    *,
    reason: str,
    actor_id: uuid.UUID,
    can_all: bool,
    expected_version: int | None = None,
) -> Listing:
    reason = text(reason, "reason", required=False, max_len=500)
    row = await _locked(session, listing_id, actor_id=actor_id, can_all=can_all)
    if expected_version is not None and row.version != expected_version:
        raise Conflict(f"the listing changed meanwhile (version {row.version})", "expectedVersion")
    if to not in TRANSITIONS.get(row.status, ()):
        raise Conflict(f"a listing that is {row.status} cannot become {to}", "status")
    now = utcnow()
    session.add(
        ListingEvent(
            listing_id=row.id,
            kind="status",
            from_status=row.status,
            to_status=to,
            actor_id=actor_id,
            reason=reason,
            at=now,
        )
    )
    if row.unit_id is not None and to == "sold":
        session.add(
            UnitEvent(
                unit_id=row.unit_id,
                kind="resold",
                actor_id=actor_id,
                at=now,
                ref_id=row.id,
                new_price=row.asking_price,
                reason=reason,
                data={"listing_id": str(row.id)},
            )
        )
    row.status, row.status_changed_at = to, now
    row.version += 1
    await session.flush()
    return row


async def verify(
    session: AsyncSession, listing_id: uuid.UUID, *, actor_id: uuid.UUID, note: str = ""
) -> Listing:
    row = await repo.lock_listing(session, listing_id)
    if row is None:
        raise NotFound("listing not found", "listingId")
    if row.verified:
        raise Conflict("the listing is already verified", "listingId")
    now = utcnow()
    row.verified, row.verified_by, row.verified_at = True, actor_id, now
    row.version += 1
    session.add(
        ListingEvent(
            listing_id=row.id,
            kind="verified",
            actor_id=actor_id,
            at=now,
            reason=text(note, "note", required=False, max_len=500),
        )
    )
    await session.flush()
    return row


async def expire_listings(
    session: AsyncSession, *, now: datetime | None = None, limit: int = 1000
) -> int:
    """The listing-expiry job's work for one tenant."""
    now = now or utcnow()
    expired = await repo.expire_due(session, now, limit)
    for row in expired:  # a bulk update: the flush hook does not see it
        outbox.emit(session, "listing.status", row.id, live_payload(row))
    session.add_all(
        ListingEvent(
            listing_id=row.id,
            kind="status",
            from_status="active",
            to_status="expired",
            at=now,
            reason="expired",
        )
        for row in expired
    )
    await session.flush()
    return len(expired)


def matches(search: JsonObject, p: JsonObject) -> bool:
    """Does a listing's live payload (models.live_payload) match a saved search (the JSON of a
    ``repository.ListingSearch``)? See ``search_matches``."""
    return search_matches(repo.ListingSearch.from_json(search), p)


def search_matches(s: repo.ListingSearch, p: JsonObject) -> bool:
    """Does a listing's live payload (models.live_payload) match a search? The same rules as
    the search query, in Python."""

    def among(wanted: Sequence[object], value: object) -> bool:
        return not wanted or value in wanted

    if not (
        among(s.districts, p["district"])
        and among(s.communities, p["community"])
        and among(s.statuses, p["status"])
        and among(s.rooms, p["rooms"])
        and among(s.orientations, p["orientation"])
        and among(s.decorations, p["decoration"])
        and among([str(a) for a in s.agent_ids], p["agent_id"])
    ):
        return False
    if not set(s.tags).issubset(p["tags"] or ()):
        return False
    price = p["asking_price"]
    if s.price_min is not None and price < s.price_min:
        return False
    if s.price_max is not None and price > s.price_max:
        return False
    area = Decimal(p["gross_area"])
    if s.area_min is not None and area < s.area_min:
        return False
    if s.area_max is not None and area > s.area_max:
        return False
    if s.built_after is not None and (p["year_built"] or 0) < s.built_after:
        return False
    if s.verified_only and not p["verified"]:
        return False
    if s.keyword and s.keyword not in (p["text"] or "").lower():
        return False
    if s.near is not None:
        if p["latitude"] is None or p["longitude"] is None:
            return False
        if _km(s.near.latitude, s.near.longitude, p["latitude"], p["longitude"]) > (
            s.near.radius_km
        ):
            return False
    return True


def _km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    dlat, dlng = math.radians(lat2 - lat1) / 2, math.radians(lng2 - lng1) / 2
    a = math.sin(dlat) ** 2 + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * (
        math.sin(dlng) ** 2
    )
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))
