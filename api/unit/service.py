"""Business rules of units: creation, the status machine, holds, price adjustments.

Never commits: the request or job owns the transaction. Every status or price change takes the
unit's row lock first (``repository.lock_unit``), so of any number of concurrent attempts on one
unit exactly one wins and the rest see the winner's result."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from api.db import utcnow
from api.errors import Conflict, Forbidden, NotFound, ValidationFailed
from api.ids import uuid7
from api.live import outbox
from api.project import repository as project_repo
from api.project.models import Building, Project
from api.setting import service as settings
from api.unit import repository as repo
from api.unit.models import (
    ORIENTATIONS,
    JsonObject,
    PriceAdjustment,
    PriceAdjustmentLine,
    Unit,
    UnitEvent,
    UnitType,
    live_payload,
)
from api.unit.status import MARKETABLE, NEEDS_REASON, allowed
from api.validate import area, unique_texts
from api.validate import text as _text
from tenants.sessions import tenant_of

MAX_PRICE = 10**13  # minor units: a hundred billion in major units
MAX_BATCH = 5000


def _orientation(value: str | None, field_name: str = "orientation") -> str | None:
    if value is None or value == "":
        return None
    value = value.strip().upper()
    if value not in ORIENTATIONS:
        raise ValidationFailed(f"{field_name} must be one of {', '.join(ORIENTATIONS)}", field_name)
    return value


def _price(value: int | None, field_name: str = "listPrice") -> int | None:
    if value is not None and not 0 <= value <= MAX_PRICE:
        raise ValidationFailed(f"{field_name} must be between 0 and {MAX_PRICE}", field_name)
    return value


def search_text(project: Project, building: Building, number: str, type_name: str = "") -> str:
    parts = (project.name, project.district, project.city, building.name, number, type_name)
    return " ".join(p for p in parts if p).lower()


def _required_area(value: Decimal | None, field_name: str) -> Decimal:
    gross = area(value, field_name, required=True)
    assert gross is not None  # required=True refuses a missing area instead of returning None
    return gross


def _event(
    unit: Unit,
    kind: str,
    actor_id: uuid.UUID | None,
    now: datetime,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    old_price: int | None = None,
    new_price: int | None = None,
    reason: str = "",
    ref_id: uuid.UUID | None = None,
) -> UnitEvent:
    return UnitEvent(
        unit_id=unit.id,
        kind=kind,
        actor_id=actor_id,
        at=now,
        data={},
        from_status=from_status,
        to_status=to_status,
        old_price=old_price,
        new_price=new_price,
        reason=reason,
        ref_id=ref_id,
    )


# ---------------------------------------------------------------- unit types and units


@dataclass
class UnitTypeInput:
    project_id: uuid.UUID
    name: str
    rooms: int
    gross_area: Decimal
    living_rooms: int = 1
    bathrooms: int = 1
    net_area: Decimal | None = None
    orientation: str | None = None
    layout: str = ""
    floor_plan_url: str = ""
    vr_url: str = ""


def _url(value: str, field_name: str) -> str:
    value = _text(value, field_name, required=False, max_len=500)
    if value and not value.startswith(("https://", "http://")):
        raise ValidationFailed(f"{field_name} must be an http(s) URL", field_name)
    return value


async def create_unit_type(session: AsyncSession, data: UnitTypeInput) -> UnitType:
    name = _text(data.name, "name", required=True, max_len=100)
    if not 0 <= data.rooms <= 20:
        raise ValidationFailed("rooms must be between 0 and 20", "rooms")
    for value, label in ((data.living_rooms, "livingRooms"), (data.bathrooms, "bathrooms")):
        if not 0 <= value <= 20:
            raise ValidationFailed(f"{label} must be between 0 and 20", label)
    gross = _required_area(data.gross_area, "grossArea")
    net = area(data.net_area, "netArea", required=False)
    if net is not None and net > gross:
        raise ValidationFailed("netArea must not exceed grossArea", "netArea")
    if not await project_repo.projects_by_ids(session, [data.project_id]):
        raise NotFound("project not found", "projectId")
    if await repo.unit_type_name_taken(session, data.project_id, name):
        raise Conflict(f"unit type '{name}' already exists in this project", "name")
    row = UnitType(
        project_id=data.project_id,
        name=name,
        rooms=data.rooms,
        living_rooms=data.living_rooms,
        bathrooms=data.bathrooms,
        gross_area=gross,
        net_area=net,
        orientation=_orientation(data.orientation),
        layout=_text(data.layout, "layout", required=False, max_len=2000),
        floor_plan_url=_url(data.floor_plan_url, "floorPlanUrl"),
        vr_url=_url(data.vr_url, "vrUrl"),
    )
    await repo.add_all(session, [row])
    return row


@dataclass
class UnitInput:
    building_id: uuid.UUID
    floor: int
    number: str
    gross_area: Decimal | None = None
    net_area: Decimal | None = None
    unit_type_id: uuid.UUID | None = None
    orientation: str | None = None
    rooms: int | None = None
    list_price: int | None = None
    status: str = "planned"
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Place:
    """A building a batch of units goes into: its project, the unit numbers it already has
    (in the database) and those the batch has taken so far."""

    building: Building
    project: Project
    existing: set[str]
    batch: set[str]


class BuiltUnit(NamedTuple):
    """A checked unit and its ``created`` event, not written yet."""

    unit: Unit
    event: UnitEvent


class UnitBuilder:
    """Validates unit inputs one at a time and builds the rows (nothing is written): a
    creation checks all of them before writing any, an import reports each bad row."""

    def __init__(self, session: AsyncSession, *, actor_id: uuid.UUID | None):
        self.session = session
        self.actor_id = actor_id
        self.now = utcnow()
        self.places: dict[uuid.UUID, _Place] = {}
        self.types: dict[uuid.UUID, UnitType] = {}

    async def preload_types(self, ids: Iterable[uuid.UUID | None]) -> None:
        missing = [i for i in set(ids) if i is not None and i not in self.types]
        if missing:
            self.types.update(await repo.unit_types_by_ids(self.session, missing))

    async def _place(self, building_id: uuid.UUID) -> _Place:
        if building_id not in self.places:
            found = await repo.building_with_project(self.session, building_id)
            if found is None:
                raise NotFound("building not found", "buildingId")
            existing = await repo.unit_numbers(self.session, building_id)
            self.places[building_id] = _Place(*found, existing, set())
        return self.places[building_id]

    def add_draft_building(self, building: Building, project: Project) -> None:
        """A building not in the database yet (an import creates it once it has units)."""
        self.places[building.id] = _Place(building, project, set(), set())

    async def exists(self, building_id: uuid.UUID, number: str) -> bool:
        """Whether the building already has this unit number (in the database)."""
        return number.strip() in (await self._place(building_id)).existing

    async def build(self, item: UnitInput) -> BuiltUnit:
        place = await self._place(item.building_id)
        building, project = place.building, place.project
        number = _text(item.number, "number", required=True, max_len=20)
        if number in place.existing or number in place.batch:
            raise Conflict(f"unit {number} already exists in building {building.name}", "number")
        if not -10 <= item.floor <= building.floors or item.floor == 0:
            raise ValidationFailed(
                f"floor must be between -10 and {building.floors}, and not 0", "floor"
            )
        utype = None
        if item.unit_type_id is not None:
            await self.preload_types([item.unit_type_id])
            utype = self.types.get(item.unit_type_id)
            if utype is None or utype.project_id != project.id:
                raise NotFound("unit type not found in this project", "unitTypeId")
        gross = (
            item.gross_area if item.gross_area is not None else getattr(utype, "gross_area", None)
        )
        gross = _required_area(gross, "grossArea")
        net = item.net_area if item.net_area is not None else getattr(utype, "net_area", None)
        net = area(net, "netArea", required=False)
        if net is not None and net > gross:
            raise ValidationFailed("netArea must not exceed grossArea", "netArea")
        if item.status not in ("planned", "available"):
            raise ValidationFailed("a new unit is planned or available", "status")
        if item.status == "available" and item.list_price is None:
            raise ValidationFailed("an available unit needs a list price", "listPrice")
        rooms = item.rooms if item.rooms is not None else (utype.rooms if utype else None)
        if rooms is not None and not 0 <= rooms <= 20:
            raise ValidationFailed("rooms must be between 0 and 20", "rooms")
        now = self.now
        unit = Unit(
            id=uuid7(),
            project_id=project.id,
            building_id=building.id,
            unit_type_id=utype.id if utype else None,
            floor=item.floor,
            number=number,
            gross_area=gross,
            net_area=net,
            orientation=_orientation(item.orientation) or (utype.orientation if utype else None),
            rooms=rooms,
            list_price=_price(item.list_price),
            status=item.status,
            currency=tenant_of(self.session).currency,
            status_changed_at=now,
            version=1,
            tags=unique_texts(item.tags, "tags"),
            created_at=now,
            search_text=search_text(project, building, number, utype.name if utype else ""),
        )
        place.batch.add(number)
        event = _event(
            unit, "created", self.actor_id, now, to_status=unit.status, new_price=unit.list_price
        )
        return BuiltUnit(unit, event)


async def write_units(session: AsyncSession, built: Sequence[BuiltUnit]) -> None:
    await repo.add_all(session, [u for u, _ in built])
    await repo.add_all(session, [e for _, e in built])


async def create_units(
    session: AsyncSession, items: Sequence[UnitInput], *, actor_id: uuid.UUID | None
) -> list[Unit]:
    """Create units, all or none. Each gets a ``created`` event carrying its first price."""
    if len(items) > MAX_BATCH:
        raise ValidationFailed(f"at most {MAX_BATCH} units at once", "units")
    builder = UnitBuilder(session, actor_id=actor_id)
    await builder.preload_types(i.unit_type_id for i in items)
    built = [await builder.build(item) for item in items]
    await write_units(session, built)
    return [u for u, _ in built]


# ---------------------------------------------------------------- status


def _check_found(unit: Unit | None) -> Unit:
    if unit is None:
        raise NotFound("unit not found", "unitId")
    return unit


def _expired_hold(unit: Unit, now: datetime) -> datetime | None:
    """When the unit's hold expired, if it is on a hold that has expired."""
    expires = unit.hold_expires_at
    if unit.status == "on_hold" and expires is not None and expires <= now:
        return expires
    return None


def _set_status(
    unit: Unit,
    to: str,
    actor_id: uuid.UUID | None,
    now: datetime,
    *,
    reason: str = "",
    kind: str = "status",
    data: JsonObject | None = None,
) -> UnitEvent:
    event = _event(unit, kind, actor_id, now, from_status=unit.status, to_status=to, reason=reason)
    if data:
        event.data = data
    unit.status = to
    unit.status_changed_at = now
    unit.version += 1
    if to != "on_hold":
        unit.hold_expires_at = None
        unit.held_by = None
    return event


async def _lock_fresh(session: AsyncSession, unit_id: uuid.UUID, now: datetime) -> Unit:
    """Lock the unit; an expired hold is released first, and that is recorded whatever the
    caller decides next (it is a fact), so every rule below sees the unit as it really is."""
    unit = _check_found(await repo.lock_unit(session, unit_id))
    if (expired := _expired_hold(unit, now)) is not None:
        data = {"held_by": str(unit.held_by), "expired_at": expired.isoformat()}
        session.add(_set_status(unit, "available", None, now, kind="hold_expired", data=data))
    return unit


async def change_status(
    session: AsyncSession,
    unit_id: uuid.UUID,
    to: str,
    *,
    actor_id: uuid.UUID | None,
    reason: str = "",
    expected_version: int | None = None,
) -> Unit:
    """A staff change of status along the allowed transitions (holds have their own calls)."""
    reason = _text(reason, "reason", required=False, max_len=500)
    now = utcnow()
    unit = await _lock_fresh(session, unit_id, now)
    if expected_version is not None and unit.version != expected_version:
        raise Conflict(
            f"the unit changed meanwhile (version {unit.version}, not {expected_version})",
            "expectedVersion",
        )
    if to == "on_hold":
        raise ValidationFailed("use holdUnit to put a unit on hold", "status")
    if not allowed(unit.status, to):
        raise Conflict(f"a unit that is {unit.status} cannot become {to}", "status")
    if (unit.status, to) in NEEDS_REASON and not reason:
        raise ValidationFailed(f"going from {unit.status} back to {to} needs a reason", "reason")
    if to == "available" and unit.list_price is None:
        raise ValidationFailed("an available unit needs a list price", "status")
    if to == "available" and await _held_by_subscription(session, unit.id):
        raise Conflict(
            "the unit's subscription holds it: withdraw the subscription or change its unit",
            "status",
        )
    if to == "available" and await _held_by_contract(session, unit.id):
        raise Conflict(
            "the unit's contract holds it: only canceling the contract frees it", "status"
        )
    session.add(_set_status(unit, to, actor_id, now, reason=reason))
    await session.flush()
    return unit


async def _held_by_subscription(session: AsyncSession, unit_id: uuid.UUID) -> bool:
    """Whether an open subscription (api/sales) holds the unit: only its own steps
    (``deal_step``) put the unit back on sale."""
    from api.sales import subscription_repository as sales

    return await sales.open_subscription_id(session, unit_id) is not None


async def _held_by_contract(session: AsyncSession, unit_id: uuid.UUID) -> bool:
    """Whether a contract in force (api/sales) holds the unit: only its cancellation puts
    the unit back on sale."""
    from api.sales import contract_repository as contracts

    return await contracts.open_contract_id(session, unit_id) is not None


async def lock_fresh(session: AsyncSession, unit_id: uuid.UUID) -> Unit:
    """The unit, locked (an expired hold released first and recorded); NotFound on unitId."""
    return await _lock_fresh(session, unit_id, utcnow())


def deal_step(
    session: AsyncSession,
    unit: Unit,
    to: str,
    *,
    actor_id: uuid.UUID | None,
    reason: str,
    ref_id: uuid.UUID,
    data: JsonObject,
) -> None:
    """A deal's step on a unit the caller has locked (``lock_fresh``; api/sales): along the
    status machine (CONFLICT otherwise), recorded as a ``status`` event naming the deal."""
    if not allowed(unit.status, to):
        raise Conflict(f"a unit that is {unit.status} cannot become {to}", "unitId")
    if to == "available" and unit.list_price is None:
        raise ValidationFailed("an available unit needs a list price", "unitId")
    event = _set_status(unit, to, actor_id, utcnow(), reason=reason, data=data)
    event.ref_id = ref_id
    session.add(event)


def deal_event(
    session: AsyncSession,
    unit_id: uuid.UUID,
    *,
    actor_id: uuid.UUID | None,
    reason: str,
    ref_id: uuid.UUID,
    data: JsonObject,
    price: int | None = None,
) -> None:
    """A deal's step that leaves the unit's status as it is (kind ``subscription``)."""
    session.add(
        UnitEvent(
            unit_id=unit_id,
            kind="subscription",
            actor_id=actor_id,
            at=utcnow(),
            data=data,
            new_price=price,
            reason=reason,
            ref_id=ref_id,
        )
    )


async def hold_unit(
    session: AsyncSession,
    unit_id: uuid.UUID,
    *,
    actor_id: uuid.UUID,
    minutes: int | None = None,
    client_ref: str = "",
) -> Unit:
    """Hold an available unit for the caller, for ``minutes`` (at most the tenant's setting)."""
    limit: int = await settings.get(session, "inventory.hold_minutes")
    if minutes is not None and not 1 <= minutes <= limit:
        raise ValidationFailed(f"a hold lasts between 1 and {limit} minutes", "minutes")
    now = utcnow()
    unit = await _lock_fresh(session, unit_id, now)
    if unit.status == "on_hold":
        who = "you" if unit.held_by == actor_id else "another agent"
        raise Conflict(f"the unit is already held by {who} until {unit.hold_expires_at}", "unitId")
    if not allowed(unit.status, "on_hold"):
        raise Conflict(f"a unit that is {unit.status} cannot be held", "unitId")
    client_ref = _text(client_ref, "clientRef", required=False, max_len=100)
    session.add(
        _set_status(
            unit,
            "on_hold",
            actor_id,
            now,
            kind="hold",
            data={"client_ref": client_ref} if client_ref else None,
        )
    )
    unit.hold_expires_at = now + timedelta(minutes=minutes or limit)
    unit.held_by = actor_id
    await session.flush()
    return unit


async def release_hold(
    session: AsyncSession, unit_id: uuid.UUID, *, actor_id: uuid.UUID, override: bool
) -> Unit:
    now = utcnow()
    unit = await _lock_fresh(session, unit_id, now)
    if unit.status != "on_hold":
        raise Conflict(f"the unit is {unit.status}, not on hold", "unitId")
    if unit.held_by != actor_id and not override:
        raise Forbidden("only the agent holding the unit, or staff who manage units, can release")
    session.add(_set_status(unit, "available", actor_id, now, kind="release"))
    await session.flush()
    return unit


async def reserve_unit(
    session: AsyncSession,
    unit_id: uuid.UUID,
    *,
    actor_id: uuid.UUID,
    override: bool,
    reason: str = "",
) -> Unit:
    """Reserve an available unit, or one the caller holds. Of concurrent attempts exactly one
    wins; the others get CONFLICT naming the unit's new status."""
    now = utcnow()
    unit = await _lock_fresh(session, unit_id, now)
    if unit.status == "on_hold" and unit.held_by != actor_id and not override:
        raise Conflict(f"the unit is held by another agent until {unit.hold_expires_at}", "unitId")
    if not allowed(unit.status, "reserved"):
        raise Conflict(f"a unit that is {unit.status} cannot be reserved", "unitId")
    reason = _text(reason, "reason", required=False, max_len=500)
    session.add(_set_status(unit, "reserved", actor_id, now, reason=reason))
    await session.flush()
    return unit


RELEASE_BATCH = 1000  # expired holds released a job


async def release_expired_holds(
    session: AsyncSession, *, now: datetime | None = None, limit: int = RELEASE_BATCH
) -> int:
    """The hold-release job's work for one tenant: expired holds become available again."""
    now = now or utcnow()
    released = await repo.expire_holds(session, now, limit)
    events = [
        UnitEvent(
            unit_id=h.unit.id,
            kind="hold_expired",
            from_status="on_hold",
            to_status="available",
            at=now,
            data={"held_by": str(h.held_by), "expired_at": h.expired_at.isoformat()},
        )
        for h in released
    ]
    for h in released:  # a bulk update: the flush hook does not see it
        outbox.emit(session, "unit.status", h.unit.id, live_payload(h.unit))
    await repo.add_all(session, events)
    return len(released)


# ---------------------------------------------------------------- prices


@dataclass
class PriceRule:
    project_id: uuid.UUID
    building_ids: list[uuid.UUID] = field(default_factory=list)
    unit_type_ids: list[uuid.UUID] = field(default_factory=list)
    unit_ids: list[uuid.UUID] = field(default_factory=list)
    floor_min: int | None = None
    floor_max: int | None = None
    # Exactly one change: percent (+3 or -2.5), amount (minor units, signed), a new price per m²
    # (minor units), or a new price (minor units).
    percent: Decimal | None = None
    amount: int | None = None
    price_per_m2: int | None = None
    price: int | None = None

    def as_json(self) -> JsonObject:
        return {
            "project_id": str(self.project_id),
            "building_ids": [str(i) for i in self.building_ids],
            "unit_type_ids": [str(i) for i in self.unit_type_ids],
            "unit_ids": [str(i) for i in self.unit_ids],
            "floor_min": self.floor_min,
            "floor_max": self.floor_max,
            "percent": str(self.percent) if self.percent is not None else None,
            "amount": self.amount,
            "price_per_m2": self.price_per_m2,
            "price": self.price,
        }


def _round_major(value: Decimal) -> int:
    """Computed prices are rounded to a whole major unit (yuan), half up."""
    return int((value / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 100


def new_price(rule: PriceRule, unit: Unit) -> int:
    old = Decimal(unit.list_price or 0)
    if rule.percent is not None:
        return _round_major(old * (1 + rule.percent / 100))
    if rule.amount is not None:
        return int(old) + rule.amount
    if rule.price_per_m2 is not None:
        return _round_major(Decimal(rule.price_per_m2) * unit.gross_area)
    assert rule.price is not None
    return rule.price


def _validate_rule(rule: PriceRule) -> None:
    changes = [
        c for c in (rule.percent, rule.amount, rule.price_per_m2, rule.price) if c is not None
    ]
    if len(changes) != 1:
        raise ValidationFailed("give exactly one of percent, amount, pricePerM2, price", "change")
    if rule.percent is not None and (
        not rule.percent.is_finite() or not Decimal(-90) <= rule.percent <= Decimal(100)
    ):
        raise ValidationFailed("percent must be between -90 and 100", "percent")
    if rule.amount is not None and abs(rule.amount) > MAX_PRICE:
        raise ValidationFailed("amount is too large", "amount")
    _price(rule.price_per_m2, "pricePerM2")
    _price(rule.price, "price")
    if (
        rule.floor_min is not None
        and rule.floor_max is not None
        and rule.floor_min > rule.floor_max
    ):
        raise ValidationFailed("floorMin must not exceed floorMax", "floorMin")


class PriceLine(NamedTuple):
    """A unit's price change in an adjustment: the price it had and the one it gets."""

    unit: Unit
    old_price: int
    new_price: int


def _discount_pct(old: int, new: int) -> Decimal:
    if new >= old or old == 0:
        return Decimal("0.00")
    return (Decimal(old - new) * 100 / old).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


async def adjust_prices(
    session: AsyncSession, rule: PriceRule, *, reason: str, actor_id: uuid.UUID | None
) -> PriceAdjustment:
    """Apply a price rule to the marketable units it matches, or, when it lowers any price by
    more than the tenant's limit, store it for approval with the computed lines."""
    _validate_rule(rule)
    reason = _text(reason, "reason", required=True, max_len=500)
    if not await project_repo.projects_by_ids(session, [rule.project_id]):
        raise NotFound("project not found", "projectId")
    stmt = repo.rule_units(
        rule.project_id,
        building_ids=rule.building_ids,
        unit_type_ids=rule.unit_type_ids,
        unit_ids=rule.unit_ids,
        floor_min=rule.floor_min,
        floor_max=rule.floor_max,
        statuses=sorted(MARKETABLE),
    )
    units = await repo.lock_units(session, stmt)
    if not units:
        raise ValidationFailed("the rule matches no unit on the market with a price", "rule")
    if len(units) > MAX_BATCH:
        raise ValidationFailed(f"the rule matches more than {MAX_BATCH} units", "rule")
    lines: list[PriceLine] = []
    for unit in units:
        price = new_price(rule, unit)
        if not 0 < price <= MAX_PRICE:
            raise ValidationFailed(f"unit {unit.number} would get price {price}", "change")
        assert unit.list_price is not None  # rule_units matches units with a price only
        lines.append(PriceLine(unit, unit.list_price, price))
    worst = max(_discount_pct(ln.old_price, ln.new_price) for ln in lines)
    limit: Decimal = await settings.get(session, "inventory.max_discount_pct")
    adj = PriceAdjustment(
        id=uuid7(),
        project_id=rule.project_id,
        rule=rule.as_json(),
        reason=reason,
        status="pending_approval" if worst > limit else "applied",
        unit_count=len(lines),
        max_discount_pct=worst,
        requested_by=actor_id,
        decision_note="",
    )
    await repo.add_all(session, [adj])
    await repo.add_all(
        session,
        [
            PriceAdjustmentLine(
                adjustment_id=adj.id,
                unit_id=ln.unit.id,
                old_price=ln.old_price,
                new_price=ln.new_price,
            )
            for ln in lines
        ],
    )
    if adj.status == "applied":
        adj.decided_at = utcnow()
        await _apply(session, adj, lines, actor_id)
    return adj


async def _apply(
    session: AsyncSession,
    adj: PriceAdjustment,
    lines: Sequence[PriceLine],
    actor_id: uuid.UUID | None,
) -> None:
    """Give each unit its new price (the old one in its event is the price it has now)."""
    now = utcnow()
    events = []
    for unit, _, price in lines:
        events.append(
            _event(
                unit,
                "price",
                actor_id,
                now,
                old_price=unit.list_price,
                new_price=price,
                reason=adj.reason,
                ref_id=adj.id,
            )
        )
        unit.list_price = price
        unit.version += 1
    await repo.add_all(session, events)


async def decide_adjustment(
    session: AsyncSession, adj_id: uuid.UUID, *, approve: bool, actor_id: uuid.UUID, note: str = ""
) -> PriceAdjustment:
    """Approve (apply exactly the reviewed lines) or reject a pending adjustment. The approver
    must not be the requester. If any unit's price or status moved since the request, the
    adjustment becomes ``stale`` and nothing is applied."""
    note = _text(note, "note", required=False, max_len=500)
    adj = await repo.lock_adjustment(session, adj_id)
    if adj is None:
        raise NotFound("price adjustment not found", "id")
    if adj.status != "pending_approval":
        raise Conflict(f"the adjustment is {adj.status}, not waiting for approval", "id")
    if adj.requested_by == actor_id:
        raise Forbidden("an adjustment is approved or rejected by someone other than its requester")
    adj.decided_by, adj.decided_at, adj.decision_note = actor_id, utcnow(), note
    if not approve:
        adj.status = "rejected"
        return adj
    lines = await repo.adjustment_lines(session, adj.id)
    stmt = repo.rule_units(adj.project_id, unit_ids=[ln.unit_id for ln in lines])
    units = {u.id: u for u in await repo.lock_units(session, stmt)}
    moved = [
        ln
        for ln in lines
        if (u := units.get(ln.unit_id)) is None
        or u.list_price != ln.old_price
        or u.status not in MARKETABLE
    ]
    if moved:
        adj.status = "stale"
        adj.decision_note = (note + " " if note else "") + (
            f"{len(moved)} unit(s) changed since the request; nothing applied"
        )
        return adj
    adj.status = "applied"
    await _apply(
        session,
        adj,
        [PriceLine(units[ln.unit_id], ln.old_price, ln.new_price) for ln in lines],
        actor_id,
    )
    return adj
