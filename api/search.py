"""Search building blocks shared by the domains: keyset pagination over (sort key, id),
literal LIKE patterns for trigram-indexed keyword search, and great-circle distance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from api.errors import ValidationFailed

AnySelect = Select[*tuple[Any, ...]]
Column = ColumnElement[Any] | QueryableAttribute[Any]
SortSpec = tuple[Callable[[Any], Column] | None, bool]
"""A domain's sort: (key builder taking the criteria, or None for the id alone; descending)."""
E = TypeVar("E")


@dataclass
class Near:
    latitude: float
    longitude: float
    radius_km: float


def page(
    stmt: AnySelect,
    key: Column | None,
    id_col: Column,
    *,
    desc: bool,
    after: tuple[Any, ...] | None,
    limit: int,
) -> AnySelect:
    """``stmt`` ordered by (key, id) in one direction, after the cursor values, ``limit`` rows.
    With a key, each row also carries it as ``sort_key`` (the next cursor is built from it)."""
    cols = (key, id_col) if key is not None else (id_col,)
    if after is not None:
        left = tuple_(*cols) if key is not None else id_col
        right = tuple_(*after) if key is not None else after[-1]
        stmt = stmt.where(left < right if desc else left > right)
    stmt = stmt.order_by(*(c.desc() if desc else c.asc() for c in cols)).limit(limit)
    if key is not None:
        stmt = stmt.add_columns(key.label("sort_key"))
    return stmt


async def search(
    session: AsyncSession,
    stmt: Select[E],
    sort_spec: SortSpec,
    criteria: object,
    id_col: Column,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[tuple[E, Any]]:
    """One page of ``stmt``'s rows as (entity, sort key) pairs. ``sort_spec`` is a domain's
    (key builder taking ``criteria``, or None for the id alone; descending)."""
    key_of, desc = sort_spec
    key = key_of(criteria) if key_of is not None else None
    paged = page(stmt, key, id_col, desc=desc, after=after, limit=limit)
    if key is not None:
        return [(row[0], row[1]) for row in await session.execute(paged)]
    return [(row, None) for row in await session.scalars(paged)]


async def count(session: AsyncSession, stmt: AnySelect) -> int:
    """How many rows ``stmt`` matches (counted over it as a subquery, so a statement without
    any WHERE still names its table)."""
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return int(total or 0)


def near(latitude: float, longitude: float, radius_km: float) -> Near:
    """A checked search point: a real position and a radius up to 500 km."""
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180 and 0 < radius_km <= 500):
        raise ValidationFailed("near needs a valid point and a radius up to 500 km", "near")
    return Near(latitude, longitude, radius_km)


def like(value: str) -> str:
    """A LIKE pattern matching ``value`` literally anywhere (% and _ escaped)."""
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def distance_km(lat_col: Column, lng_col: Column, lat: float, lng: float) -> ColumnElement[float]:
    """Great-circle distance (haversine) from a point to (lat_col, lng_col), in km."""
    dlat = func.radians(lat_col - lat) / 2
    dlng = func.radians(lng_col - lng) / 2
    a = func.power(func.sin(dlat), 2) + func.cos(func.radians(lat)) * func.cos(
        func.radians(lat_col)
    ) * func.power(func.sin(dlng), 2)
    return 2 * 6371.0 * func.asin(func.least(1.0, func.sqrt(a)))
