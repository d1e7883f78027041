"""Bulk import of units and resale listings from CSV or XLSX. Never commits.

Good rows are imported, bad rows are reported with their row number, column and reason, and a
row is never half-imported: every row is checked completely before anything is written, and
all writes happen in the caller's one transaction. Importing the same file again creates no
duplicates: a unit already in its building (same number), or a listing with the same reference
(the file's listing number, or a fingerprint of the row when it has none), is skipped."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import DomainError, NotFound, ValidationFailed
from api.ids import uuid7
from api.importing.files import Record, read_table_off_loop
from api.importing.models import ImportBatch
from api.listing import repository as listing_repo
from api.listing import service as listing_service
from api.project import repository as project_repo
from api.project.models import Building
from api.project.service import MAX_FLOORS
from api.security.kit import SecurityKit
from api.unit import service as unit_service
from api.unit.models import UnitType

MAX_STORED_ERRORS = 1000


def _aliases(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {alias: canonical for canonical, names in table.items() for alias in names}


UNIT_COLUMNS = _aliases(
    {
        "building": ("building", "楼栋", "楼号", "栋"),
        "floor": ("floor", "楼层"),
        "number": ("number", "unit", "unit_number", "房号", "房间号"),
        "unit_type": ("unit_type", "type", "户型"),
        "gross_area": ("gross_area", "area", "建筑面积", "面积"),
        "net_area": ("net_area", "套内面积"),
        "orientation": ("orientation", "朝向"),
        "rooms": ("rooms", "室", "房间数"),
        "list_price": ("list_price", "price", "总价", "价格"),
        "status": ("status", "状态"),
        "tags": ("tags", "标签"),
    }
)

LISTING_COLUMNS = _aliases(
    {
        "ref": ("ref", "listing_no", "房源编号"),
        "community": ("community", "小区"),
        "district": ("district", "区域"),
        "city": ("city", "城市"),
        "address": ("address", "地址"),
        "gross_area": ("gross_area", "area", "建筑面积", "面积"),
        "rooms": ("rooms", "室"),
        "living_rooms": ("living_rooms", "厅"),
        "bathrooms": ("bathrooms", "卫"),
        "floor": ("floor", "楼层"),
        "total_floors": ("total_floors", "总楼层"),
        "orientation": ("orientation", "朝向"),
        "year_built": ("year_built", "建成年代", "年代"),
        "decoration": ("decoration", "装修"),
        "asking_price": ("asking_price", "price", "挂牌价", "总价"),
        "seller_name": ("seller_name", "业主"),
        "seller_phone": ("seller_phone", "业主电话"),
        "tags": ("tags", "标签"),
        "description": ("description", "描述"),
    }
)

ORIENTATION_ZH = {
    "南": "S",
    "北": "N",
    "东": "E",
    "西": "W",
    "东南": "SE",
    "西南": "SW",
    "东北": "NE",
    "西北": "NW",
    "南北": "NS",
    "东西": "EW",
}
STATUS_ZH = {
    "计划": "planned",
    "未开盘": "planned",
    "待售": "planned",
    "在售": "available",
    "可售": "available",
}
DECORATION_ZH = {"毛坯": "rough", "简装": "simple", "精装": "fine", "豪装": "luxury"}


@dataclass
class RowError:
    row: int
    field: str
    message: str


@dataclass
class Report:
    batch_id: uuid.UUID
    rows_total: int = 0
    imported: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len({e.row for e in self.errors})


# ---------------------------------------------------------------- cell parsing


def _str(record: Record, key: str) -> str:
    value = record.get(key, "")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _required_int(record: Record, key: str) -> int:
    value = _int(record, key)
    if value is None:
        raise ValidationFailed(f"{key} is required", key)
    return value


def _int(record: Record, key: str) -> int | None:
    raw = _str(record, key)
    if not raw:
        return None
    try:
        value = Decimal(raw)
        if value != value.to_integral_value():
            raise InvalidOperation
        return int(value)
    except InvalidOperation:
        raise ValidationFailed(f"{key} must be a whole number, not '{raw}'", key) from None


def _decimal(record: Record, key: str) -> Decimal | None:
    raw = _str(record, key).replace(",", "")
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValidationFailed(f"{key} must be a number, not '{raw}'", key) from None
    if not value.is_finite():
        raise ValidationFailed(f"{key} must be a number, not '{raw}'", key)
    return value


def _money(record: Record, key: str) -> int | None:
    """A price in major units (yuan): "3000000", "3,000,000.50" or "300万"."""
    raw = _str(record, key).replace(",", "").replace("¥", "").replace("元", "")
    if not raw:
        return None
    factor = Decimal(1)
    if raw.endswith("万"):
        raw, factor = raw[:-1], Decimal(10000)
    try:
        minor = Decimal(raw) * factor * 100
    except InvalidOperation:
        raise ValidationFailed(f"{key} must be an amount, not '{_str(record, key)}'", key) from None
    if not minor.is_finite() or minor != minor.to_integral_value() or minor < 0:
        raise ValidationFailed(f"{key} must be an amount in yuan with at most 2 decimals", key)
    return int(minor)


def _tags(record: Record) -> list[str]:
    raw = _str(record, "tags")
    for sep in ("\uff1b", "\uff0c", "\u3001", ","):  # full-width ; and , and the enumeration comma
        raw = raw.replace(sep, ";")
    return [t.strip() for t in raw.split(";") if t.strip()]


def _default(value: int | None, default: int) -> int:
    return default if value is None else value


def _mapped(value: str, table: dict[str, str]) -> str:
    return table.get(value, value)


# ---------------------------------------------------------------- units


@dataclass(frozen=True, slots=True)
class UnitRow:
    """A unit row of a file, parsed: everything of a ``unit_service.UnitInput`` but the
    building, which the file names and pass 2 finds or creates."""

    row: int
    building: str
    floor: int
    number: str
    gross_area: Decimal | None
    net_area: Decimal | None
    unit_type_id: uuid.UUID | None
    orientation: str | None
    rooms: int | None
    list_price: int | None
    status: str
    tags: list[str]

    def input(self, building_id: uuid.UUID) -> unit_service.UnitInput:
        return unit_service.UnitInput(
            building_id=building_id,
            floor=self.floor,
            number=self.number,
            gross_area=self.gross_area,
            net_area=self.net_area,
            unit_type_id=self.unit_type_id,
            orientation=self.orientation,
            rooms=self.rooms,
            list_price=self.list_price,
            status=self.status,
            tags=self.tags,
        )


async def import_units(
    session: AsyncSession,
    project_id: uuid.UUID,
    filename: str,
    data: bytes,
    *,
    actor_id: uuid.UUID | None,
) -> Report:
    projects = await project_repo.projects_by_ids(session, [project_id])
    if not projects:
        raise NotFound("project not found", "projectId")
    rows = await read_table_off_loop(filename, data, UNIT_COLUMNS)
    report = Report(batch_id=uuid7(), rows_total=len(rows))
    buildings = {
        b.name: b
        for b in (await project_repo.buildings_by_project_ids(session, [project_id]))[project_id]
    }
    types = {
        t.name: t
        for t in await session.scalars(select(UnitType).where(UnitType.project_id == project_id))
    }
    # Pass 1: parse every row.
    parsed: list[UnitRow] = []
    for number, record in rows:
        try:
            name = _str(record, "building")
            if not name:
                raise ValidationFailed("building is required", "building")
            if len(name) > 100:
                raise ValidationFailed("building must be at most 100 characters", "building")
            floor = _required_int(record, "floor")
            type_name = _str(record, "unit_type")
            if type_name and type_name not in types:
                raise NotFound(f"unit type '{type_name}' not found in this project", "unit_type")
            status = _mapped(_str(record, "status") or "planned", STATUS_ZH).lower()
            item = UnitRow(
                row=number,
                building=name,
                floor=floor,
                number=_str(record, "number"),
                gross_area=_decimal(record, "gross_area"),
                net_area=_decimal(record, "net_area"),
                unit_type_id=types[type_name].id if type_name else None,
                orientation=_mapped(_str(record, "orientation"), ORIENTATION_ZH) or None,
                rooms=_int(record, "rooms"),
                list_price=_money(record, "list_price"),
                status=status,
                tags=_tags(record),
            )
        except DomainError as exc:
            report.errors.append(RowError(number, exc.field or "", exc.message))
            continue
        parsed.append(item)
    # Pass 2: build each row with the same rules as createUnits; skip what already exists.
    # A building named only by the file is a draft as high as a building may be; it is
    # created afterwards, as high as its highest good row, and only if it has one.
    builder = unit_service.UnitBuilder(session, actor_id=actor_id)
    drafts: dict[str, Building] = {}
    built: list[unit_service.BuiltUnit] = []
    for item in parsed:
        name = item.building
        building = buildings.get(name) or drafts.get(name)
        if building is None:
            building = drafts[name] = Building(
                id=uuid7(), project_id=project_id, name=name, floors=MAX_FLOORS
            )
            builder.add_draft_building(building, projects[project_id])
        try:
            if name in buildings and await builder.exists(building.id, item.number):
                report.skipped += 1
                continue
            built.append(await builder.build(item.input(building.id)))
        except DomainError as exc:
            report.errors.append(RowError(item.row, exc.field or "", exc.message))
    for building in drafts.values():
        floors = [u.floor for u, _ in built if u.building_id == building.id]
        if floors:
            building.floors = max(1, *floors)
            await project_repo.add(session, building)
    await unit_service.write_units(session, built)
    report.imported = len(built)
    await _record(session, report, "units", filename, data, actor_id)
    return report


# ---------------------------------------------------------------- listings


def _fingerprint(record: Record) -> str:
    keys = ("community", "address", "floor", "gross_area", "rooms", "seller_phone")
    raw = "|".join(_str(record, k).lower() for k in keys)
    return "h:" + hashlib.sha256(raw.encode()).hexdigest()[:40]


async def import_listings(
    session: AsyncSession,
    kit: SecurityKit,
    tenant_id: str,
    filename: str,
    data: bytes,
    *,
    actor_id: uuid.UUID | None,
) -> Report:
    rows = await read_table_off_loop(filename, data, LISTING_COLUMNS)
    report = Report(batch_id=uuid7(), rows_total=len(rows))
    refs = {number: (_str(record, "ref") or _fingerprint(record))[:100] for number, record in rows}
    existing = await listing_repo.by_source_refs(session, list(set(refs.values())))
    seen: dict[str, int] = {}
    for number, record in rows:
        ref = refs[number]
        if ref in existing:
            report.skipped += 1
            continue
        if ref in seen:
            report.errors.append(RowError(number, "ref", f"the same listing as row {seen[ref]}"))
            continue
        try:
            decoration = _mapped(_str(record, "decoration"), DECORATION_ZH).lower() or None
            data_in = listing_service.ListingInput(
                community=_str(record, "community"),
                district=_str(record, "district"),
                city=_str(record, "city"),
                address=_str(record, "address"),
                gross_area=_decimal(record, "gross_area"),
                rooms=_int(record, "rooms"),
                living_rooms=_default(_int(record, "living_rooms"), 1),
                bathrooms=_default(_int(record, "bathrooms"), 1),
                floor=_int(record, "floor"),
                total_floors=_int(record, "total_floors"),
                orientation=_mapped(_str(record, "orientation"), ORIENTATION_ZH) or None,
                year_built=_int(record, "year_built"),
                decoration=decoration,
                asking_price=_money(record, "asking_price") or 0,
                seller_name=_str(record, "seller_name"),
                seller_phone=_str(record, "seller_phone") or None,
                tags=_tags(record),
                description=_str(record, "description"),
                source_ref=ref,
            )
            async with session.begin_nested():  # a refused row leaves nothing behind
                await listing_service.create_listing(
                    session, kit, tenant_id, data_in, actor_id=actor_id
                )
        except DomainError as exc:
            report.errors.append(RowError(number, exc.field or "", exc.message))
            continue
        seen[ref] = number
        report.imported += 1
    await _record(session, report, "listings", filename, data, actor_id)
    return report


async def _record(
    session: AsyncSession,
    report: Report,
    kind: str,
    filename: str,
    data: bytes,
    actor_id: uuid.UUID | None,
) -> None:
    report.errors.sort(key=lambda e: e.row)
    session.add(
        ImportBatch(
            id=report.batch_id,
            kind=kind,
            filename=filename[:200],
            sha256=hashlib.sha256(data).hexdigest(),
            rows_total=report.rows_total,
            imported=report.imported,
            skipped=report.skipped,
            failed=report.failed,
            errors=[e.__dict__ for e in report.errors[:MAX_STORED_ERRORS]],
            actor_id=actor_id,
        )
    )
    await session.flush()
