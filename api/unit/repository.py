"""All queries of the unit domain: units, unit types, the timeline, price adjustments, search."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, cast

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api import search as search_kit
from api.db import TenantBase, rows_where_in
from api.project.models import Building, Project
from api.unit.models import PriceAdjustment, PriceAdjustmentLine, Unit, UnitEvent, UnitType

BIG = 2**63 - 1


# ---------------------------------------------------------------- by id (DataLoaders)


async def units_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Unit]:
    return {u.id: u for u in await rows_where_in(session, Unit.id, ids)}


async def unit_types_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, UnitType]:
    rows = await rows_where_in(session, UnitType.id, ids)
    return {t.id: t for t in rows}


async def unit_types_by_project_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[UnitType]]:
    rows = await session.scalars(
        select(UnitType).where(UnitType.project_id.in_(ids)).order_by(UnitType.name)
    )
    out: dict[uuid.UUID, list[UnitType]] = {i: [] for i in ids}
    for t in rows:
        out[t.project_id].append(t)
    return out


async def events_by_unit_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID], kinds: Sequence[str] | None = None
) -> dict[uuid.UUID, list[UnitEvent]]:
    stmt = select(UnitEvent).where(UnitEvent.unit_id.in_(ids))
    if kinds:
        stmt = stmt.where(UnitEvent.kind.in_(kinds))
    out: dict[uuid.UUID, list[UnitEvent]] = {i: [] for i in ids}
    for e in await session.scalars(stmt.order_by(UnitEvent.at, UnitEvent.id)):
        out[e.unit_id].append(e)
    return out


async def unit_type_name_taken(session: AsyncSession, project_id: uuid.UUID, name: str) -> bool:
    stmt = select(UnitType.id).where(UnitType.project_id == project_id, UnitType.name == name)
    return (await session.scalar(stmt)) is not None


async def unit_numbers(session: AsyncSession, building_id: uuid.UUID) -> set[str]:
    return set(await session.scalars(select(Unit.number).where(Unit.building_id == building_id)))


# ---------------------------------------------------------------- locking reads


async def lock_unit(session: AsyncSession, unit_id: uuid.UUID) -> Unit | None:
    """The unit, locked until the transaction ends. Under READ COMMITTED a waiter gets the row
    as the winner committed it, so status checks after this are race-free."""
    stmt = select(Unit).where(Unit.id == unit_id).with_for_update()
    return (await session.scalars(stmt.execution_options(populate_existing=True))).first()


async def lock_units(session: AsyncSession, stmt: Select[Unit]) -> list[Unit]:
    """Units matched by ``stmt``, locked in id order (two batches never deadlock)."""
    stmt = stmt.order_by(Unit.id).with_for_update()
    return list(await session.scalars(stmt.execution_options(populate_existing=True)))


async def lock_adjustment(session: AsyncSession, adj_id: uuid.UUID) -> PriceAdjustment | None:
    stmt = select(PriceAdjustment).where(PriceAdjustment.id == adj_id).with_for_update()
    return (await session.scalars(stmt.execution_options(populate_existing=True))).first()


async def adjustment_lines(session: AsyncSession, adj_id: uuid.UUID) -> list[PriceAdjustmentLine]:
    stmt = select(PriceAdjustmentLine).where(PriceAdjustmentLine.adjustment_id == adj_id)
    return list(await session.scalars(stmt.order_by(PriceAdjustmentLine.unit_id)))


async def adjustments(
    session: AsyncSession, *, project_id: uuid.UUID | None, status: str | None, limit: int
) -> Sequence[PriceAdjustment]:
    stmt = select(PriceAdjustment).order_by(PriceAdjustment.id.desc()).limit(limit)
    if project_id is not None:
        stmt = stmt.where(PriceAdjustment.project_id == project_id)
    if status is not None:
        stmt = stmt.where(PriceAdjustment.status == status)
    return (await session.scalars(stmt)).all()


class ExpiredHold(NamedTuple):
    """A hold the hold-release job ended: the unit as updated, the holder and expiry it had."""

    unit: Unit
    held_by: uuid.UUID | None
    expired_at: datetime


async def expire_holds(session: AsyncSession, now: datetime, limit: int) -> list[ExpiredHold]:
    """Put expired holds back to available; returns each with the holder and expiry it had."""
    due = (
        select(Unit.id)
        .where(Unit.status == "on_hold", Unit.hold_expires_at <= now)
        .order_by(Unit.hold_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    old = select(Unit.id, Unit.held_by, Unit.hold_expires_at).where(Unit.id.in_(due)).cte("old")
    stmt = (
        update(Unit)
        .where(Unit.id == old.c.id)
        .values(
            status="available",
            hold_expires_at=None,
            held_by=None,
            status_changed_at=now,
            version=Unit.version + 1,
        )
        .returning(Unit, old.c.held_by, old.c.hold_expires_at)
        .execution_options(synchronize_session=False)
    )
    return [ExpiredHold(*row) for row in await session.execute(stmt)]


# ---------------------------------------------------------------- search


@dataclass
class UnitSearch:
    project_ids: list[uuid.UUID] = field(default_factory=list)
    building_ids: list[uuid.UUID] = field(default_factory=list)
    unit_type_ids: list[uuid.UUID] = field(default_factory=list)
    districts: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    rooms: list[int] = field(default_factory=list)
    orientations: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    price_min: int | None = None
    price_max: int | None = None
    area_min: Decimal | None = None
    area_max: Decimal | None = None
    floor_min: int | None = None
    floor_max: int | None = None
    keyword: str | None = None
    near: search_kit.Near | None = None


def distance_km(lat: float, lng: float) -> ColumnElement[float]:
    return search_kit.distance_km(Project.latitude, Project.longitude, lat, lng)


def filtered(s: UnitSearch) -> Select[Unit]:
    stmt = select(Unit)
    if s.project_ids:
        stmt = stmt.where(Unit.project_id.in_(s.project_ids))
    if s.building_ids:
        stmt = stmt.where(Unit.building_id.in_(s.building_ids))
    if s.unit_type_ids:
        stmt = stmt.where(Unit.unit_type_id.in_(s.unit_type_ids))
    if s.districts:
        stmt = stmt.where(
            Unit.project_id.in_(select(Project.id).where(Project.district.in_(s.districts)))
        )
    if s.statuses:
        stmt = stmt.where(Unit.status.in_(s.statuses))
    if s.rooms:
        stmt = stmt.where(Unit.rooms.in_(s.rooms))
    if s.orientations:
        stmt = stmt.where(Unit.orientation.in_(s.orientations))
    if s.tags:
        stmt = stmt.where(Unit.tags.contains(s.tags))
    if s.price_min is not None:
        stmt = stmt.where(Unit.list_price >= s.price_min)
    if s.price_max is not None:
        stmt = stmt.where(Unit.list_price <= s.price_max)
    if s.area_min is not None:
        stmt = stmt.where(Unit.gross_area >= s.area_min)
    if s.area_max is not None:
        stmt = stmt.where(Unit.gross_area <= s.area_max)
    if s.floor_min is not None:
        stmt = stmt.where(Unit.floor >= s.floor_min)
    if s.floor_max is not None:
        stmt = stmt.where(Unit.floor <= s.floor_max)
    if s.keyword:
        stmt = stmt.where(Unit.search_text.ilike(search_kit.like(s.keyword)))
    if s.near is not None:
        stmt = stmt.join(Project, Project.id == Unit.project_id).where(
            Project.latitude.is_not(None),
            distance_km(s.near.latitude, s.near.longitude) <= s.near.radius_km,
        )
    return stmt


def _distance(s: UnitSearch) -> ColumnElement[float]:
    assert s.near is not None  # search_args refuses the DISTANCE sort without filter.near
    return distance_km(s.near.latitude, s.near.longitude)


# Sort name -> (key expression builder, descending). The id breaks ties in the same direction,
# so (key, id) is a total order and a cursor is just the last row's (key, id).
SORTS: dict[str, search_kit.SortSpec] = {
    "NEWEST": (None, True),
    "PRICE_ASC": (lambda s: func.coalesce(Unit.list_price, BIG), False),
    "PRICE_DESC": (lambda s: func.coalesce(Unit.list_price, -1), True),
    "AREA_ASC": (lambda s: Unit.gross_area, False),
    "AREA_DESC": (lambda s: Unit.gross_area, True),
    "PRICE_PER_M2_ASC": (lambda s: func.coalesce(Unit.price_per_m2, BIG), False),
    "FLOOR_ASC": (lambda s: Unit.floor, False),
    "DISTANCE": (_distance, False),
    "RELEVANCE": (lambda s: func.word_similarity(s.keyword, Unit.search_text), True),
}


async def search(
    session: AsyncSession,
    s: UnitSearch,
    *,
    sort: str,
    limit: int,
    after: tuple[object, ...] | None,
) -> list[tuple[Unit, object]]:
    """One page of units: (unit, sort key) pairs, ``limit`` of them at most."""
    rows = await search_kit.search(
        session, filtered(s), SORTS[sort], s, Unit.id, after=after, limit=limit
    )
    # search_kit.search is not generic: its entities are the rows of filtered(s), units.
    return cast(list[tuple[Unit, object]], rows)


async def count(session: AsyncSession, s: UnitSearch) -> int:
    return await search_kit.count(session, filtered(s))


async def building_with_project(
    session: AsyncSession, building_id: uuid.UUID
) -> tuple[Building, Project] | None:
    stmt = select(Building, Project).join(Project).where(Building.id == building_id)
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


def rule_units(
    project_id: uuid.UUID,
    *,
    building_ids: Sequence[uuid.UUID] = (),
    unit_type_ids: Sequence[uuid.UUID] = (),
    unit_ids: Sequence[uuid.UUID] = (),
    floor_min: int | None = None,
    floor_max: int | None = None,
    statuses: Sequence[str] = (),
) -> Select[Unit]:
    stmt = select(Unit).where(Unit.project_id == project_id, Unit.list_price.is_not(None))
    if building_ids:
        stmt = stmt.where(Unit.building_id.in_(building_ids))
    if unit_type_ids:
        stmt = stmt.where(Unit.unit_type_id.in_(unit_type_ids))
    if unit_ids:
        stmt = stmt.where(Unit.id.in_(unit_ids))
    if floor_min is not None:
        stmt = stmt.where(Unit.floor >= floor_min)
    if floor_max is not None:
        stmt = stmt.where(Unit.floor <= floor_max)
    if statuses:
        stmt = stmt.where(Unit.status.in_(statuses))
    return stmt


async def add_all(session: AsyncSession, objs: Sequence[TenantBase]) -> None:
    session.add_all(objs)
    await session.flush()


async def building_units(session: AsyncSession, building_id: uuid.UUID) -> Sequence[Unit]:
    """Every unit of a building, top floor first (a sales table's rows)."""
    stmt = (
        select(Unit).where(Unit.building_id == building_id).order_by(Unit.floor.desc(), Unit.number)
    )
    return (await session.scalars(stmt)).all()


async def event_head(session: AsyncSession, tenant_id: str | uuid.UUID) -> int:
    """The tenant's latest live-event sequence (0 before the first)."""
    from api.live.models import EventStream

    stmt = select(EventStream.last_seq).where(EventStream.tenant_id == uuid.UUID(str(tenant_id)))
    return (await session.scalar(stmt)) or 0
