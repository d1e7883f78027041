"""Recommendations: units and listings ranked against a client's needs, with the reasons.

Candidates come from SQL (on the market, price and area in a widened window, at most
``CANDIDATES`` of each kind, closest to the budget first); the score is computed here so every
point can be explained. Scores are out of 100:

| factor | points | full when | partial |
|---|---|---|---|
| budget | 35 | price within the budget | over by up to 10%: falls to 0; under: 25 |
| area | 20 | area within the range | outside by up to 15%: falls to 0 |
| rooms | 15 | rooms as wanted | one room off: 7 |
| district | 15 | in a wanted district | - |
| must-haves | 15 | every must-have met (unit tags, project facilities, listing tags) | share met |

A factor the client left open scores half its points for every candidate, so it ranks nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from api.client import profile
from api.client import service as clients
from api.identity.auth import Principal
from api.listing.models import Listing
from api.money import format_money
from api.project.models import Project
from api.unit.models import Unit

CANDIDATES = 500

Ts = TypeVarTuple("Ts")


@dataclass(frozen=True, slots=True)
class Needs:
    budget_min: int | None = None
    budget_max: int | None = None
    area_min: Decimal | None = None
    area_max: Decimal | None = None
    rooms: list[int] = field(default_factory=list)
    districts: list[str] = field(default_factory=list)
    must_haves: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AskedNeeds:
    """``Needs`` as asked for: a field left None is not given (an empty list is)."""

    budget_min: int | None = None
    budget_max: int | None = None
    area_min: Decimal | None = None
    area_max: Decimal | None = None
    rooms: list[int] | None = None
    districts: list[str] | None = None
    must_haves: list[str] | None = None


async def client_needs(
    session: AsyncSession, p: Principal, client_id: uuid.UUID, given: AskedNeeds
) -> AskedNeeds:
    """The needs for a client in the caller's scope: each value ``given`` (not None) wins,
    then the client's stated needs, then what the profile shows (``needs_from``).
    NotFound for a client outside the scope."""
    wanted = profile.needs_from(await clients.get_visible(session, p, client_id))
    filled: dict[str, Any] = {}  # values of the client's JSON needs, by field name
    for key in (f.name for f in fields(AskedNeeds)):
        if getattr(given, key) is None and wanted.get(key) is not None:
            value = wanted[key]
            filled[key] = Decimal(str(value)) if key in ("area_min", "area_max") else value
    return dataclasses.replace(given, **filled)


@dataclass
class Reason:
    factor: str
    points: float
    text: str


@dataclass
class Scored:
    kind: str  # unit | listing
    row: Unit | Listing
    score: float
    reasons: list[Reason]


def _budget(price: int | None, currency: str, n: Needs) -> Reason:
    if n.budget_min is None and n.budget_max is None:
        return Reason("budget", 17.5, "no budget given")
    if price is None:
        return Reason("budget", 0, "no price yet")
    low, high = n.budget_min or 0, n.budget_max
    shown = format_money(price, currency, "en")
    if high is not None and price > high:
        over = (price - high) / high if high else 1
        points = max(0.0, 35 * (1 - over / 0.10))
        return Reason("budget", round(points, 1), f"{shown} is {over:.0%} over budget")
    if price < low:
        return Reason("budget", 25, f"{shown} is under the budget")
    return Reason("budget", 35, f"{shown} is within budget")


def _range(
    value: Decimal,
    low: Decimal | None,
    high: Decimal | None,
    points: float,
    what: str,
    slack: float,
) -> Reason:
    if low is None and high is None:
        return Reason(what, points / 2, f"no {what} given")
    v = float(value)
    lo, hi = float(low) if low is not None else None, float(high) if high is not None else None
    if (lo is None or v >= lo) and (hi is None or v <= hi):
        return Reason(what, points, f"{v:g} m² as wanted")
    if lo is not None and v < lo:
        gap = (lo - v) / lo
    else:
        assert hi is not None  # outside the range, not below it: above its upper end
        gap = (v - hi) / hi
    got = max(0.0, points * (1 - gap / slack))
    return Reason(what, round(got, 1), f"{v:g} m² is {gap:.0%} outside the wanted {what}")


def _rooms(rooms: int | None, n: Needs) -> Reason:
    if not n.rooms:
        return Reason("rooms", 7.5, "no rooms given")
    if rooms is None:
        return Reason("rooms", 0, "rooms unknown")
    if rooms in n.rooms:
        return Reason("rooms", 15, f"{rooms} rooms as wanted")
    if any(abs(rooms - r) == 1 for r in n.rooms):
        return Reason("rooms", 7, f"{rooms} rooms, one off")
    return Reason("rooms", 0, f"{rooms} rooms")


def _district(district: str, n: Needs) -> Reason:
    if not n.districts:
        return Reason("district", 7.5, "no district given")
    if district in n.districts:
        return Reason("district", 15, f"in {district}")
    return Reason("district", 0, f"in {district or 'an unknown district'}, not a wanted one")


def _must(features: set[str], n: Needs) -> Reason:
    if not n.must_haves:
        return Reason("must_haves", 7.5, "no must-haves given")
    met = [m for m in n.must_haves if m in features]
    missing = [m for m in n.must_haves if m not in features]
    text = ("has " + ", ".join(met)) if met else "none of the must-haves"
    if missing and met:
        text += "; lacks " + ", ".join(missing)
    return Reason("must_haves", round(15 * len(met) / len(n.must_haves), 1), text)


def score(
    kind: str,
    row: Unit | Listing,
    *,
    price: int | None,
    area: Decimal,
    rooms: int | None,
    district: str,
    features: set[str],
    needs: Needs,
) -> Scored:
    reasons = [
        _budget(price, row.currency, needs),
        _range(area, needs.area_min, needs.area_max, 20, "area", 0.15),
        _rooms(rooms, needs),
        _district(district, needs),
        _must(features, needs),
    ]
    return Scored(kind, row, round(sum(r.points for r in reasons), 1), reasons)


def _window(
    stmt: Select[*Ts],
    price_col: QueryableAttribute[int] | QueryableAttribute[int | None],
    area_col: QueryableAttribute[Decimal],
    n: Needs,
) -> Select[*Ts]:
    if n.budget_max is not None:
        stmt = stmt.where(price_col <= int(n.budget_max * 1.10))
    if n.area_min is not None:
        stmt = stmt.where(area_col >= n.area_min * Decimal("0.85"))
    if n.area_max is not None:
        stmt = stmt.where(area_col <= n.area_max * Decimal("1.15"))
    target = n.budget_max or n.budget_min
    order = func.abs(price_col - target) if target is not None else price_col
    return stmt.order_by(order, area_col).limit(CANDIDATES)


async def recommend(
    session: AsyncSession, needs: Needs, *, units: bool, listings: bool, first: int
) -> list[Scored]:
    out: list[Scored] = []
    if units:
        stmt = _window(
            select(Unit, Project.district, Project.facilities)
            .join(Project, Project.id == Unit.project_id)
            .where(Unit.status == "available", Unit.list_price.is_not(None)),
            Unit.list_price,
            Unit.gross_area,
            needs,
        )
        for unit, district, facilities in await session.execute(stmt):
            out.append(
                score(
                    "unit",
                    unit,
                    price=unit.list_price,
                    area=unit.gross_area,
                    rooms=unit.rooms,
                    district=district,
                    features=set(unit.tags) | set(facilities),
                    needs=needs,
                )
            )
    if listings:
        listings_stmt = _window(
            select(Listing).where(Listing.status == "active"),
            Listing.asking_price,
            Listing.gross_area,
            needs,
        )
        for x in await session.scalars(listings_stmt):
            out.append(
                score(
                    "listing",
                    x,
                    price=x.asking_price,
                    area=x.gross_area,
                    rooms=x.rooms,
                    district=x.district,
                    features=set(x.tags),
                    needs=needs,
                )
            )
    out.sort(key=lambda s: (-s.score, str(s.row.id)))
    return out[:first]
