"""All queries of resale listings."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api import search as search_kit
from api.db import rows_where_in
from api.listing.models import Listing, ListingEvent
from api.unit.models import JsonObject

BIG = 2**63 - 1


async def listings_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Listing]:
    return {x.id: x for x in await rows_where_in(session, Listing.id, ids)}


async def listings_by_unit_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Listing]]:
    out: dict[uuid.UUID, list[Listing]] = {i: [] for i in ids}
    stmt = select(Listing).where(Listing.unit_id.in_(ids)).order_by(Listing.listed_at)
    for x in await session.scalars(stmt):
        assert x.unit_id is not None  # matched by unit_id IN ids
        out[x.unit_id].append(x)
    return out


async def events_by_listing_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ListingEvent]]:
    out: dict[uuid.UUID, list[ListingEvent]] = {i: [] for i in ids}
    stmt = select(ListingEvent).where(ListingEvent.listing_id.in_(ids))
    for e in await session.scalars(stmt.order_by(ListingEvent.at, ListingEvent.id)):
        out[e.listing_id].append(e)
    return out


async def lock_listing(session: AsyncSession, listing_id: uuid.UUID) -> Listing | None:
    stmt = select(Listing).where(Listing.id == listing_id).with_for_update()
    return (await session.scalars(stmt.execution_options(populate_existing=True))).first()


async def by_source_refs(session: AsyncSession, refs: Sequence[str]) -> set[str]:
    stmt = select(Listing.source_ref).where(Listing.source_ref.in_(refs))
    return set(await session.scalars(stmt))


async def expire_due(session: AsyncSession, now: datetime, limit: int) -> list[Listing]:
    """Active listings past their expiry become expired; returns them (as updated)."""
    due = (
        select(Listing.id)
        .where(Listing.status == "active", Listing.expires_at <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(Listing)
        .where(Listing.id.in_(due))
        .values(status="expired", status_changed_at=now, version=Listing.version + 1)
        .returning(Listing)
        .execution_options(synchronize_session=False)
    )
    return list(await session.scalars(stmt))


@dataclass
class ListingSearch:
    districts: list[str] = field(default_factory=list)
    communities: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    rooms: list[int] = field(default_factory=list)
    orientations: list[str] = field(default_factory=list)
    decorations: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    agent_ids: list[uuid.UUID] = field(default_factory=list)
    price_min: int | None = None
    price_max: int | None = None
    area_min: Decimal | None = None
    area_max: Decimal | None = None
    built_after: int | None = None
    verified_only: bool = False
    keyword: str | None = None
    near: search_kit.Near | None = None

    @classmethod
    def from_json(cls, doc: JsonObject) -> ListingSearch:
        """A search from its JSON form (``dataclasses.asdict`` through JSON, as a saved search
        keeps it); a key it lacks takes its default."""

        def listed(name: str) -> list[Any]:
            return list(doc.get(name) or ())

        def whole(name: str) -> int | None:
            value = doc.get(name)
            return None if value is None else int(value)

        def decimal(name: str) -> Decimal | None:
            value = doc.get(name)
            return None if value is None else Decimal(str(value))

        near = doc.get("near")
        return cls(
            districts=listed("districts"),
            communities=listed("communities"),
            statuses=listed("statuses"),
            rooms=listed("rooms"),
            orientations=listed("orientations"),
            decorations=listed("decorations"),
            tags=listed("tags"),
            agent_ids=[uuid.UUID(str(a)) for a in listed("agent_ids")],
            price_min=whole("price_min"),
            price_max=whole("price_max"),
            area_min=decimal("area_min"),
            area_max=decimal("area_max"),
            built_after=whole("built_after"),
            verified_only=bool(doc.get("verified_only")),
            keyword=doc.get("keyword") or None,
            near=search_kit.Near(
                float(near["latitude"]), float(near["longitude"]), float(near["radius_km"])
            )
            if near
            else None,
        )


def distance_km(lat: float, lng: float) -> ColumnElement[float]:
    return search_kit.distance_km(Listing.latitude, Listing.longitude, lat, lng)


def filtered(s: ListingSearch) -> Select[Listing]:
    stmt = select(Listing)
    for values, col in (
        (s.districts, Listing.district),
        (s.communities, Listing.community),
        (s.statuses, Listing.status),
        (s.rooms, Listing.rooms),
        (s.orientations, Listing.orientation),
        (s.decorations, Listing.decoration),
        (s.agent_ids, Listing.agent_id),
    ):
        if values:
            stmt = stmt.where(col.in_(values))
    if s.tags:
        stmt = stmt.where(Listing.tags.contains(s.tags))
    if s.price_min is not None:
        stmt = stmt.where(Listing.asking_price >= s.price_min)
    if s.price_max is not None:
        stmt = stmt.where(Listing.asking_price <= s.price_max)
    if s.area_min is not None:
        stmt = stmt.where(Listing.gross_area >= s.area_min)
    if s.area_max is not None:
        stmt = stmt.where(Listing.gross_area <= s.area_max)
    if s.built_after is not None:
        stmt = stmt.where(Listing.year_built >= s.built_after)
    if s.verified_only:
        stmt = stmt.where(Listing.verified.is_(True))
    if s.keyword:
        stmt = stmt.where(Listing.search_text.ilike(search_kit.like(s.keyword)))
    if s.near is not None:
        stmt = stmt.where(
            Listing.latitude.is_not(None),
            distance_km(s.near.latitude, s.near.longitude) <= s.near.radius_km,
        )
    return stmt


def _distance(s: ListingSearch) -> ColumnElement[float]:
    assert s.near is not None  # search_args refuses the DISTANCE sort without filter.near
    return distance_km(s.near.latitude, s.near.longitude)


# Sort name -> (key expression builder, descending); the id breaks ties (api.search).
SORTS: dict[str, search_kit.SortSpec] = {
    "NEWEST": (None, True),
    "PRICE_ASC": (lambda s: Listing.asking_price, False),
    "PRICE_DESC": (lambda s: Listing.asking_price, True),
    "AREA_ASC": (lambda s: Listing.gross_area, False),
    "AREA_DESC": (lambda s: Listing.gross_area, True),
    "PRICE_PER_M2_ASC": (lambda s: Listing.price_per_m2, False),
    "DISTANCE": (_distance, False),
    "RELEVANCE": (lambda s: func.word_similarity(s.keyword, Listing.search_text), True),
}


async def search(
    session: AsyncSession,
    s: ListingSearch,
    *,
    sort: str,
    limit: int,
    after: tuple[object, ...] | None,
) -> list[tuple[Listing, object]]:
    rows = await search_kit.search(
        session, filtered(s), SORTS[sort], s, Listing.id, after=after, limit=limit
    )
    # search_kit.search is not generic: its entities are the rows of filtered(s), listings.
    return cast(list[tuple[Listing, object]], rows)


async def count(session: AsyncSession, s: ListingSearch) -> int:
    return await search_kit.count(session, filtered(s))
