"""GraphQL types, queries and mutations of units, unit types and price adjustments."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from api import search as search_kit
from api.errors import NotFound, ValidationFailed
from api.graphql.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    ValidationError,
    attempt,
)
from api.graphql.loading import batch_loader, now_or_later, selected_paths, then
from api.graphql.permissions import requires
from api.graphql.types import (
    Long,
    Money,
    Node,
    PageInfo,
    edges_of,
    parse_id,
    require_id,
    search_args,
)
from api.media.schema import Media, first_photo_of, media_of, prefetch_first_photos
from api.project.schema import Building, Project, building_loader, project_loader
from api.unit import repository as repo
from api.unit import service
from api.unit.models import PriceAdjustment as AdjustmentRow
from api.unit.models import Unit as UnitRow
from api.unit.models import UnitEvent as EventRow
from api.unit.models import UnitStatus
from api.unit.models import UnitType as UnitTypeRow
from api.unit.status import RESO
from api.validate import fits

MAX_PAGE = 100

strawberry.enum(
    UnitStatus, description="The local status of a unit (finer than RESO StandardStatus)."
)


@strawberry.enum(description="RESO Data Dictionary StandardStatus.")
class StandardStatus(enum.Enum):
    ACTIVE = "Active"
    ACTIVE_UNDER_CONTRACT = "Active Under Contract"
    PENDING = "Pending"
    CLOSED = "Closed"
    COMING_SOON = "Coming Soon"
    HOLD = "Hold"
    WITHDRAWN = "Withdrawn"
    EXPIRED = "Expired"
    CANCELED = "Canceled"


@strawberry.enum(description="How the search orders units.")
class UnitSort(enum.Enum):
    NEWEST = "NEWEST"
    PRICE_ASC = "PRICE_ASC"
    PRICE_DESC = "PRICE_DESC"
    AREA_ASC = "AREA_ASC"
    AREA_DESC = "AREA_DESC"
    PRICE_PER_M2_ASC = "PRICE_PER_M2_ASC"
    FLOOR_ASC = "FLOOR_ASC"
    DISTANCE = strawberry.enum_value("DISTANCE", description="Needs filter.near")
    RELEVANCE = strawberry.enum_value("RELEVANCE", description="Needs filter.keyword")


# The type of each sort's key in a cursor (None: the id alone).
SORT_KEYS = {
    UnitSort.NEWEST: None,
    UnitSort.PRICE_ASC: int,
    UnitSort.PRICE_DESC: int,
    UnitSort.AREA_ASC: Decimal,
    UnitSort.AREA_DESC: Decimal,
    UnitSort.PRICE_PER_M2_ASC: int,
    UnitSort.FLOOR_ASC: int,
    UnitSort.DISTANCE: float,
    UnitSort.RELEVANCE: float,
}


def _ids(values: list[strawberry.ID] | None, field: str) -> list[uuid.UUID]:
    out = []
    for v in values or ():
        parsed = parse_id(v)
        if parsed is None:
            raise ValidationFailed(f"{field} holds an id that is not one", field)
        out.append(parsed)
    return out


# ---------------------------------------------------------------- loaders


unit_loader = batch_loader(repo.units_by_ids)
unit_type_loader = batch_loader(repo.unit_types_by_ids)


_events_loader = batch_loader(repo.events_by_unit_ids, list)


types_of_project_loader = batch_loader(repo.unit_types_by_project_ids, list)


async def prefetch(info: strawberry.Info, units: list, prefix: str) -> None:
    """Load the relations the query selects under ``prefix`` for a page of units, one batch
    each, before the page resolves: its relation fields then resolve without awaiting."""
    if not units:
        return
    paths = selected_paths(info)
    loaders = info.context.loaders
    if prefix + "building" in paths:
        await loaders.get("building.by_id", building_loader).load_many(
            list({u.building_id for u in units})
        )
    if prefix + "project" in paths or prefix + "building.project" in paths:
        await loaders.get("project.by_id", project_loader).load_many(
            list({u.project_id for u in units})
        )
    if prefix + "unitType" in paths:
        await loaders.get("unit_type.by_id", unit_type_loader).load_many(
            list({u.unit_type_id for u in units if u.unit_type_id is not None})
        )
    if prefix + "firstPhoto" in paths:
        await prefetch_first_photos(info, [(u.id, u.unit_type_id) for u in units])


# ---------------------------------------------------------------- types


@strawberry.type(description="A unit type (户型): rooms, area, layout, floor plan, VR link.")
class UnitType(Node):
    id: strawberry.ID
    name: str
    rooms: int
    living_rooms: int
    bathrooms: int
    gross_area: Decimal
    net_area: Decimal | None
    orientation: str | None
    layout: str
    floor_plan_url: str
    vr_url: str
    project_id: strawberry.Private[uuid.UUID]

    @classmethod
    def of(cls, row: UnitTypeRow) -> UnitType:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            rooms=row.rooms,
            living_rooms=row.living_rooms,
            bathrooms=row.bathrooms,
            gross_area=row.gross_area,
            net_area=row.net_area,
            orientation=row.orientation,
            layout=row.layout,
            floor_plan_url=row.floor_plan_url,
            vr_url=row.vr_url,
            project_id=row.project_id,
        )

    @strawberry.field(permission_classes=[requires("project.read")])
    async def project(self, info: strawberry.Info) -> Project:
        row = await info.context.loaders.get("project.by_id", project_loader).load(self.project_id)
        return Project.of(row)

    @strawberry.field(permission_classes=[requires("unit.read")])
    async def media(self, info: strawberry.Info) -> list[Media]:
        return await media_of(info, uuid.UUID(self.id))


@strawberry.type(description="One line of a unit's timeline (its whole life).")
class UnitEvent:
    id: strawberry.ID
    kind: str = strawberry.field(
        description="created, status, hold, release, hold_expired, price, subscription (a "
        "subscription's step that keeps the status; data.step says which), ..."
    )
    from_status: UnitStatus | None
    to_status: UnitStatus | None
    old_price: Money | None
    new_price: Money | None
    actor_id: strawberry.ID | None
    reason: str
    ref_id: strawberry.ID | None
    data: JSON
    at: datetime

    @classmethod
    def of(cls, row: EventRow, currency: str) -> UnitEvent:
        return cls(
            id=strawberry.ID(str(row.id)),
            kind=row.kind,
            from_status=UnitStatus(row.from_status) if row.from_status else None,
            to_status=UnitStatus(row.to_status) if row.to_status else None,
            old_price=Money.of(row.old_price, currency),
            new_price=Money.of(row.new_price, currency),
            actor_id=strawberry.ID(str(row.actor_id)) if row.actor_id else None,
            reason=row.reason,
            ref_id=strawberry.ID(str(row.ref_id)) if row.ref_id else None,
            data=JSON(row.data),
            at=row.at,
        )


@strawberry.type(description="One flat, house or shop, for its whole life.")
class Unit(Node):
    id: strawberry.ID
    number: str
    floor: int
    gross_area: Decimal
    net_area: Decimal | None
    orientation: str | None
    rooms: int | None
    list_price: Money | None
    price_per_m2: Money | None
    status: UnitStatus
    standard_status: StandardStatus
    hold_expires_at: datetime | None
    held_by: strawberry.ID | None
    status_changed_at: datetime
    version: int = strawberry.field(description="Bumped by every change; for optimistic checks.")
    tags: list[str]
    created_at: datetime
    project_id: strawberry.Private[uuid.UUID]
    building_id: strawberry.Private[uuid.UUID]
    unit_type_id: strawberry.Private[uuid.UUID | None]
    currency: strawberry.Private[str]

    @classmethod
    def of(cls, row: UnitRow) -> Unit:
        return cls(
            id=strawberry.ID(str(row.id)),
            number=row.number,
            floor=row.floor,
            gross_area=row.gross_area,
            net_area=row.net_area,
            orientation=row.orientation,
            rooms=row.rooms,
            list_price=Money.of(row.list_price, row.currency),
            price_per_m2=Money.of(row.price_per_m2, row.currency),
            status=UnitStatus(row.status),
            standard_status=StandardStatus(RESO[row.status]),
            hold_expires_at=row.hold_expires_at,
            held_by=strawberry.ID(str(row.held_by)) if row.held_by else None,
            status_changed_at=row.status_changed_at,
            version=row.version,
            tags=list(row.tags),
            created_at=row.created_at,
            project_id=row.project_id,
            building_id=row.building_id,
            unit_type_id=row.unit_type_id,
            currency=row.currency,
        )

    @strawberry.field(permission_classes=[requires("project.read")])
    def project(self, info: strawberry.Info) -> Project:
        loader = info.context.loaders.get("project.by_id", project_loader)
        return then(now_or_later(loader, self.project_id), Project.of)

    @strawberry.field(permission_classes=[requires("project.read")])
    def building(self, info: strawberry.Info) -> Building:
        loader = info.context.loaders.get("building.by_id", building_loader)
        return then(now_or_later(loader, self.building_id), Building.of)

    @strawberry.field(permission_classes=[requires("unit.read")])
    def unit_type(self, info: strawberry.Info) -> UnitType | None:
        if self.unit_type_id is None:
            return None
        loader = info.context.loaders.get("unit_type.by_id", unit_type_loader)
        return then(
            now_or_later(loader, self.unit_type_id), lambda r: UnitType.of(r) if r else None
        )

    @strawberry.field(permission_classes=[requires("unit.read")])
    async def media(self, info: strawberry.Info) -> list[Media]:
        return await media_of(info, uuid.UUID(self.id))

    @strawberry.field(
        permission_classes=[requires("unit.read")],
        description="The unit's first photo, else its unit type's (for lists).",
    )
    def first_photo(self, info: strawberry.Info) -> Media | None:
        return first_photo_of(info, uuid.UUID(self.id), self.unit_type_id)

    @strawberry.field(
        permission_classes=[requires("unit.history")],
        description="The unit's whole life, oldest first: creation, status, holds, prices...",
    )
    async def timeline(self, info: strawberry.Info) -> list[UnitEvent]:
        rows = await info.context.loaders.get("unit.events", _events_loader).load(
            uuid.UUID(self.id)
        )
        return [UnitEvent.of(r, self.currency) for r in rows]

    @strawberry.field(
        permission_classes=[requires("unit.history")],
        description="List price changes, oldest first.",
    )
    async def price_history(self, info: strawberry.Info) -> list[UnitEvent]:
        rows = await info.context.loaders.get("unit.events", _events_loader).load(
            uuid.UUID(self.id)
        )
        return [UnitEvent.of(r, self.currency) for r in rows if r.new_price is not None]


@strawberry.type
class UnitEdge:
    cursor: str
    node: Unit


@strawberry.type(description="A page of units (Relay connection).")
class UnitConnection:
    edges: list[UnitEdge]
    page_info: PageInfo
    search: strawberry.Private[repo.UnitSearch]

    @strawberry.field(description="How many units match the filter (one more query, on demand).")
    async def total_count(self, info: strawberry.Info) -> int:
        return await repo.count(info.context.session, self.search)


@strawberry.type
class PriceAdjustmentLine:
    unit_id: strawberry.ID
    old_price: Long
    new_price: Long


@strawberry.type(description="A batch price change by rule; may wait for approval.")
class PriceAdjustment(Node):
    id: strawberry.ID
    project_id: strawberry.ID
    status: str = strawberry.field(description="pending_approval, applied, rejected or stale")
    reason: str
    rule: JSON
    unit_count: int
    max_discount_pct: Decimal
    requested_by: strawberry.ID | None
    decided_by: strawberry.ID | None
    decided_at: datetime | None
    decision_note: str
    created_at: datetime

    @classmethod
    def of(cls, row: AdjustmentRow) -> PriceAdjustment:
        def sid(v):
            return strawberry.ID(str(v)) if v else None

        return cls(
            id=sid(row.id),
            project_id=sid(row.project_id),
            status=row.status,
            reason=row.reason,
            rule=JSON(row.rule),
            unit_count=row.unit_count,
            max_discount_pct=row.max_discount_pct,
            requested_by=sid(row.requested_by),
            decided_by=sid(row.decided_by),
            decided_at=row.decided_at,
            decision_note=row.decision_note,
            created_at=row.created_at,
        )

    @strawberry.field(permission_classes=[requires("unit.read")])
    async def lines(self, info: strawberry.Info) -> list[PriceAdjustmentLine]:
        rows = await repo.adjustment_lines(info.context.session, uuid.UUID(self.id))
        return [
            PriceAdjustmentLine(
                unit_id=strawberry.ID(str(r.unit_id)),
                old_price=Long(r.old_price),
                new_price=Long(r.new_price),
            )
            for r in rows
        ]


# ---------------------------------------------------------------- inputs


@strawberry.input
class NearInput:
    latitude: float
    longitude: float
    radius_km: float = 5.0


@strawberry.input(description="Every given filter must hold (lists: any of the values).")
class UnitFilter:
    project_ids: list[strawberry.ID] | None = None
    building_ids: list[strawberry.ID] | None = None
    unit_type_ids: list[strawberry.ID] | None = None
    districts: list[str] | None = None
    statuses: list[UnitStatus] | None = None
    rooms: list[int] | None = None
    orientations: list[str] | None = None
    tags: list[str] | None = strawberry.field(default=None, description="All of these tags.")
    price_min: Long | None = None
    price_max: Long | None = None
    area_min: Decimal | None = None
    area_max: Decimal | None = None
    floor_min: int | None = None
    floor_max: int | None = None
    keyword: str | None = None
    near: NearInput | None = None


def to_search(f: UnitFilter | None) -> repo.UnitSearch:
    f = f or UnitFilter()
    for name in (
        "districts",
        "rooms",
        "orientations",
        "tags",
        "project_ids",
        "building_ids",
        "unit_type_ids",
        "statuses",
    ):
        if len(getattr(f, name) or ()) > 100:
            raise ValidationFailed(f"at most 100 values in {name}", name)
    keyword = (f.keyword or "").strip().lower()[:100] or None
    near = None
    if f.near is not None:
        near = search_kit.near(f.near.latitude, f.near.longitude, f.near.radius_km)
    return repo.UnitSearch(
        project_ids=_ids(f.project_ids, "projectIds"),
        building_ids=_ids(f.building_ids, "buildingIds"),
        unit_type_ids=_ids(f.unit_type_ids, "unitTypeIds"),
        districts=list(f.districts or ()),
        statuses=[s.value for s in f.statuses or ()],
        rooms=fits(list(f.rooms or ()), "rooms", UnitRow.rooms),
        orientations=[o.upper() for o in f.orientations or ()],
        tags=list(f.tags or ()),
        price_min=f.price_min,
        price_max=f.price_max,
        area_min=fits(f.area_min, "areaMin", UnitRow.gross_area),
        area_max=fits(f.area_max, "areaMax", UnitRow.gross_area),
        floor_min=fits(f.floor_min, "floorMin", UnitRow.floor),
        floor_max=fits(f.floor_max, "floorMax", UnitRow.floor),
        keyword=keyword,
        near=near,
    )


@strawberry.input
class CreateUnitTypeInput:
    project_id: strawberry.ID
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


@strawberry.input
class UnitInput:
    building_id: strawberry.ID
    floor: int
    number: str
    gross_area: Decimal | None = strawberry.field(default=None, description="Default: the type's")
    net_area: Decimal | None = None
    unit_type_id: strawberry.ID | None = None
    orientation: str | None = None
    rooms: int | None = None
    list_price: Long | None = None
    status: UnitStatus = UnitStatus.PLANNED
    tags: list[str] = strawberry.field(default_factory=list)


@strawberry.input
class ChangeUnitStatusInput:
    unit_id: strawberry.ID
    status: UnitStatus
    reason: str = ""
    expected_version: int | None = None


@strawberry.input
class HoldUnitInput:
    unit_id: strawberry.ID
    minutes: int | None = strawberry.field(default=None, description="Default: tenant setting")
    client_ref: str = ""


@strawberry.input
class ReserveUnitInput:
    unit_id: strawberry.ID
    reason: str = ""


@strawberry.input(description="Which units (within one project) and exactly one change.")
class AdjustPricesInput:
    project_id: strawberry.ID
    reason: str
    building_ids: list[strawberry.ID] | None = None
    unit_type_ids: list[strawberry.ID] | None = None
    unit_ids: list[strawberry.ID] | None = None
    floor_min: int | None = None
    floor_max: int | None = None
    percent: Decimal | None = strawberry.field(default=None, description="e.g. 3 or -2.5")
    amount: Long | None = strawberry.field(default=None, description="Minor units, signed")
    price_per_m2: Long | None = None
    price: Long | None = None


@strawberry.input
class DecidePriceAdjustmentInput:
    id: strawberry.ID
    approve: bool
    note: str = ""


# ---------------------------------------------------------------- payloads


@strawberry.type
class UnitTypePayload:
    unit_type: UnitType


@strawberry.type
class UnitsPayload:
    units: list[Unit]


@strawberry.type
class UnitPayload:
    unit: Unit


@strawberry.type
class PriceAdjustmentPayload:
    adjustment: PriceAdjustment


_Refusals = ValidationError | NotFoundError | ConflictError | PermissionDeniedError | AuthError
CreateUnitTypeResult = Annotated[
    UnitTypePayload | _Refusals, strawberry.union("CreateUnitTypeResult")
]
CreateUnitsResult = Annotated[UnitsPayload | _Refusals, strawberry.union("CreateUnitsResult")]
UnitResult = Annotated[UnitPayload | _Refusals, strawberry.union("UnitResult")]
PriceAdjustmentResult = Annotated[
    PriceAdjustmentPayload | _Refusals, strawberry.union("PriceAdjustmentResult")
]


async def _actor(info) -> uuid.UUID:
    return (await info.context.principal()).account_id


async def _can(info, permission: str) -> bool:
    return (await info.context.principal()).can(permission)


# ---------------------------------------------------------------- root fields


@strawberry.type(description="How many units of the table have one status.")
class StatusCount:
    status: UnitStatus
    count: int


@strawberry.type(
    description="A building's sales table (销控表): every unit with its status and price, read "
    "in one round trip. Subscribe to unitChanges(buildingId, since: seq) to keep it current: "
    "no change made after this read is missed."
)
class SalesTable:
    building: Building
    seq: Long = strawberry.field(description="The tenant's live-event sequence at the read.")
    units: list[Unit] = strawberry.field(description="Top floor first, then by number.")
    counts: list[StatusCount]


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("unit.read")],
        description="A building's sales table; null when there is no such building.",
    )
    async def sales_table(
        self, info: strawberry.Info, building_id: strawberry.ID
    ) -> SalesTable | None:
        bid = parse_id(building_id)
        if bid is None:
            return None
        session = info.context.session
        # The sequence first: every change numbered up to it committed before the units are
        # read, so the table holds it; a later one comes through the subscription.
        seq = await repo.event_head(session, info.context.tenant.id)
        building = await info.context.loaders.get("building.by_id", building_loader).load(bid)
        if building is None:
            return None
        rows = await repo.building_units(session, bid)
        await prefetch(info, list(rows), "units.")
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.status] = counts.get(r.status, 0) + 1
        return SalesTable(
            building=Building.of(building),
            seq=Long(seq),
            units=[Unit.of(r) for r in rows],
            counts=[StatusCount(status=UnitStatus(k), count=v) for k, v in sorted(counts.items())],
        )

    @strawberry.field(permission_classes=[requires("unit.read")])
    async def unit(self, info: strawberry.Info, id: strawberry.ID) -> Unit | None:
        uid = parse_id(id)
        row = await info.context.loaders.get("unit.by_id", unit_loader).load(uid) if uid else None
        return Unit.of(row) if row else None

    @strawberry.field(permission_classes=[requires("unit.read")])
    async def unit_type(self, info: strawberry.Info, id: strawberry.ID) -> UnitType | None:
        tid = parse_id(id)
        loader = info.context.loaders.get("unit_type.by_id", unit_type_loader)
        row = await loader.load(tid) if tid else None
        return UnitType.of(row) if row else None

    @strawberry.field(
        permission_classes=[requires("unit.read")],
        description="Search units: filters, keyword, distance, sort, cursor pagination.",
    )
    async def units(
        self,
        info: strawberry.Info,
        filter: UnitFilter | None = None,
        sort: UnitSort = UnitSort.NEWEST,
        first: int = 20,
        after: str | None = None,
    ) -> UnitConnection:
        search, first, cursor = search_args(to_search, filter, sort, first, after, SORT_KEYS[sort])
        rows = await repo.search(
            info.context.session, search, sort=sort.value, limit=first + 1, after=cursor
        )
        await prefetch(info, [u for u, _ in rows[:first]], "edges.node.")
        edges, page_info = edges_of(
            rows, first, sort.value, lambda c, u: UnitEdge(cursor=c, node=Unit.of(u))
        )
        return UnitConnection(edges=edges, page_info=page_info, search=search)

    @strawberry.field(permission_classes=[requires("unit.price.adjust")])
    async def price_adjustments(
        self,
        info: strawberry.Info,
        project_id: strawberry.ID | None = None,
        status: str | None = None,
        first: int = 50,
    ) -> list[PriceAdjustment]:
        pid = parse_id(project_id) if project_id is not None else None
        if project_id is not None and pid is None:
            raise QueryError(ValidationFailed.code, "projectId is not an id")
        rows = await repo.adjustments(
            info.context.session,
            project_id=pid,
            status=status,
            limit=max(0, min(first, MAX_PAGE)),
        )
        return [PriceAdjustment.of(r) for r in rows]


# A status call releases an expired hold before its own checks (service._lock_fresh): the
# release is a fact, recorded even when the call is then refused.
EXPIRED_HOLD = "an expired hold's release, recorded before the call's own checks"


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[requires("unit.write")])
    async def create_unit_type(
        self, info: strawberry.Info, input: CreateUnitTypeInput
    ) -> CreateUnitTypeResult:
        async def work():
            pid = parse_id(input.project_id)
            if pid is None:
                raise NotFound("project not found", "projectId")
            row = await service.create_unit_type(
                info.context.session,
                service.UnitTypeInput(
                    project_id=pid,
                    name=input.name,
                    rooms=input.rooms,
                    gross_area=input.gross_area,
                    living_rooms=input.living_rooms,
                    bathrooms=input.bathrooms,
                    net_area=input.net_area,
                    orientation=input.orientation,
                    layout=input.layout,
                    floor_plan_url=input.floor_plan_url,
                    vr_url=input.vr_url,
                ),
            )
            return UnitTypePayload(unit_type=UnitType.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("unit.write")],
        description="Create units (up to 5,000), all or none.",
    )
    async def create_units(
        self, info: strawberry.Info, units: list[UnitInput]
    ) -> CreateUnitsResult:
        async def work():
            items = []
            for u in units:
                bid = parse_id(u.building_id)
                if bid is None:
                    raise NotFound("building not found", "buildingId")
                tid = parse_id(u.unit_type_id) if u.unit_type_id else None
                if u.unit_type_id and tid is None:
                    raise NotFound("unit type not found in this project", "unitTypeId")
                items.append(
                    service.UnitInput(
                        building_id=bid,
                        floor=u.floor,
                        number=u.number,
                        gross_area=u.gross_area,
                        net_area=u.net_area,
                        unit_type_id=tid,
                        orientation=u.orientation,
                        rooms=u.rooms,
                        list_price=u.list_price,
                        status=u.status.value,
                        tags=u.tags,
                    )
                )
            rows = await service.create_units(
                info.context.session, items, actor_id=await _actor(info)
            )
            return UnitsPayload(units=[Unit.of(r) for r in rows])

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(permission_classes=[requires("unit.write")])
    async def change_unit_status(
        self, info: strawberry.Info, input: ChangeUnitStatusInput
    ) -> UnitResult:
        async def work():
            row = await service.change_status(
                info.context.session,
                require_id(input.unit_id, "unit", "unitId"),
                input.status.value,
                actor_id=await _actor(info),
                reason=input.reason,
                expected_version=input.expected_version,
            )
            return UnitPayload(unit=Unit.of(row))

        result, error = await attempt(info.context.session, work, keeps=EXPIRED_HOLD)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("unit.hold")],
        description="Hold an available unit for yourself until the hold expires.",
    )
    async def hold_unit(self, info: strawberry.Info, input: HoldUnitInput) -> UnitResult:
        async def work():
            row = await service.hold_unit(
                info.context.session,
                require_id(input.unit_id, "unit", "unitId"),
                actor_id=await _actor(info),
                minutes=input.minutes,
                client_ref=input.client_ref,
            )
            return UnitPayload(unit=Unit.of(row))

        result, error = await attempt(info.context.session, work, keeps=EXPIRED_HOLD)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("unit.hold")],
        description="Release your hold (staff with unit.write may release anyone's).",
    )
    async def release_unit_hold(self, info: strawberry.Info, unit_id: strawberry.ID) -> UnitResult:
        async def work():
            row = await service.release_hold(
                info.context.session,
                require_id(unit_id, "unit", "unitId"),
                actor_id=await _actor(info),
                override=await _can(info, "unit.write"),
            )
            return UnitPayload(unit=Unit.of(row))

        result, error = await attempt(info.context.session, work, keeps=EXPIRED_HOLD)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("unit.hold")],
        description="Reserve an available unit or one you hold. Exactly one of concurrent "
        "attempts wins; the others get CONFLICT.",
    )
    async def reserve_unit(self, info: strawberry.Info, input: ReserveUnitInput) -> UnitResult:
        async def work():
            row = await service.reserve_unit(
                info.context.session,
                require_id(input.unit_id, "unit", "unitId"),
                actor_id=await _actor(info),
                override=await _can(info, "unit.write"),
                reason=input.reason,
            )
            return UnitPayload(unit=Unit.of(row))

        result, error = await attempt(info.context.session, work, keeps=EXPIRED_HOLD)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("unit.price.adjust")],
        description="Change prices by rule. A decrease beyond the tenant's limit "
        "(inventory.max_discount_pct) waits for approval.",
    )
    async def adjust_prices(
        self, info: strawberry.Info, input: AdjustPricesInput
    ) -> PriceAdjustmentResult:
        async def work():
            pid = parse_id(input.project_id)
            if pid is None:
                raise NotFound("project not found", "projectId")
            rule = service.PriceRule(
                project_id=pid,
                building_ids=_ids(input.building_ids, "buildingIds"),
                unit_type_ids=_ids(input.unit_type_ids, "unitTypeIds"),
                unit_ids=_ids(input.unit_ids, "unitIds"),
                floor_min=input.floor_min,
                floor_max=input.floor_max,
                percent=input.percent,
                amount=input.amount,
                price_per_m2=input.price_per_m2,
                price=input.price,
            )
            row = await service.adjust_prices(
                info.context.session, rule, reason=input.reason, actor_id=await _actor(info)
            )
            return PriceAdjustmentPayload(adjustment=PriceAdjustment.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("unit.price.approve")],
        description="Approve or reject a pending price adjustment (not your own).",
    )
    async def decide_price_adjustment(
        self, info: strawberry.Info, input: DecidePriceAdjustmentInput
    ) -> PriceAdjustmentResult:
        async def work():
            aid = parse_id(input.id)
            if aid is None:
                raise NotFound("price adjustment not found", "id")
            row = await service.decide_adjustment(
                info.context.session,
                aid,
                approve=input.approve,
                actor_id=await _actor(info),
                note=input.note,
            )
            return PriceAdjustmentPayload(adjustment=PriceAdjustment.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result
