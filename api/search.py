"""Search building blocks shared by the domains: keyset pagination over (sort key, id),
literal LIKE patterns for trigram-indexed keyword search, and great-circle distance."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, func, tuple_


@dataclass
class Near:
    latitude: float
    longitude: float
    radius_km: float


def page(stmt: Select, key: ColumnElement | None, id_col, *, desc: bool, after: tuple | None,
         limit: int) -> Select:  # fmt: skip
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


async def fetch_page(session, stmt: Select, *, keyed: bool) -> list[tuple[object, object]]:
    """Rows of a ``page`` statement as (entity, sort key) pairs (key None when unkeyed)."""
    if keyed:
        return [(row[0], row[1]) for row in await session.execute(stmt)]
    return [(row, None) for row in await session.scalars(stmt)]


def like(value: str) -> str:
    """A LIKE pattern matching ``value`` literally anywhere (% and _ escaped)."""
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def distance_km(lat_col, lng_col, lat: float, lng: float) -> ColumnElement:
    """Great-circle distance (haversine) from a point to (lat_col, lng_col), in km."""
    dlat = func.radians(lat_col - lat) / 2
    dlng = func.radians(lng_col - lng) / 2
    a = func.power(func.sin(dlat), 2) + func.cos(func.radians(lat)) * func.cos(
        func.radians(lat_col)
    ) * func.power(func.sin(dlng), 2)
    return 2 * 6371.0 * func.asin(func.least(1.0, func.sqrt(a)))
