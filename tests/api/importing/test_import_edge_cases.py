"""Units import edge cases over real multipart HTTP round trips: a file mixing good rows with
every kind of bad row, idempotency, GB18030 and BOM encodings, unit types by name, building
auto-creation, refused files, permissions and tenancy, and the recorded, audited batch."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile

import pytest
from sqlalchemy import select

from api.importing import files
from api.importing.models import ImportBatch
from tenants.sessions import TenantDatabase
from tests.api.helpers import create_building, create_project, typed_denial
from tests.api.importing.helpers import (
    HEADER,
    IMPORT_UNITS,
    assert_file_error,
    counts,
    csv_bytes,
    db_counts,
    import_units,
    report_of,
    upload,
    xlsx_bytes,
)
from tests.api.unit.helpers import CREATE_UNIT_TYPE
from tests.conftest import gql

UNITS = """
query($filter: UnitFilter) {
  units(filter: $filter, first: 100) {
    totalCount
    edges { node { number floor grossArea netArea orientation rooms status tags
      listPrice { minorUnits currency } building { name floors } unitType { name } } }
  }
}
"""
PROJECT = "query($id: ID!) { project(id: $id) { buildings { name floors } } }"
AUDIT_LOG = """
query($action: String!) {
  auditLog(filter: {action: $action}) { action outcome actorId details }
}
"""


def error_cells(report: dict) -> list[tuple[int, str]]:
    for e in report["errors"]:
        assert e["message"], report
    return [(e["row"], e["field"]) for e in report["errors"]]


async def units_of(client, slug: str, project_id: str) -> dict[tuple[str, str], dict]:
    res = await gql(client, UNITS, {"filter": {"projectIds": [project_id]}}, tenant=slug)
    assert "errors" not in res, res
    conn = res["data"]["units"]
    units = {(e["node"]["building"]["name"], e["node"]["number"]): e["node"] for e in conn["edges"]}
    assert conn["totalCount"] == len(units), conn  # no duplicates hiding behind one key
    return units


async def buildings_of(client, slug: str, project_id: str) -> list[tuple[str, int]]:
    res = await gql(client, PROJECT, {"id": project_id}, tenant=slug)
    assert "errors" not in res, res
    return sorted((b["name"], b["floors"]) for b in res["data"]["project"]["buildings"])


async def batch_rows(engine, tenant) -> list[ImportBatch]:
    async with TenantDatabase(engine).session(tenant) as session:
        rows = await session.scalars(select(ImportBatch).order_by(ImportBatch.created_at))
        return list(rows)


# ---------------------------------------------------------------- a mixed file

# (row as in the file, the field its error names, or None for a good row). Row 1 is the header.
MIXED: list[tuple[list, str | None]] = [
    (["A", 1, "101", "", "89.5", "80", "S", 3, "3000000", "available", "corner;quiet"], None),
    (["", 1, "102", "", "89.5", "", "", "", "", "", ""], "building"),
    (["A", 1, "103", "", "89.5", "", "N", 2, "", "planned", ""], None),
    (["A", 0, "001", "", "70", "", "", "", "", "", ""], "floor"),
    (["A", "two", "104", "", "70", "", "", "", "", "", ""], "floor"),
    (["A", 11, "1101", "", "70", "", "", "", "", "", ""], "floor"),  # A has 10 floors
    (["A", 2, "201", "", "95", "", "SE", 3, "3,100,000", "available", ""], None),
    (["A", 2, "202", "Penthouse", "", "", "", "", "", "", ""], "unit_type"),
    (["A", 2, "203", "", "", "", "", "", "", "", ""], "grossArea"),
    (["A", 2, "204", "", "90", "95", "", "", "", "", ""], "netArea"),
    (["A", 2, "205", "", "90", "", "UP", "", "", "", ""], "orientation"),
    (["A", 2, "206", "", "90", "", "", "", "1000.123", "", ""], "list_price"),
    (["A", 2, "207", "", "90", "", "", "", "-5", "", ""], "list_price"),
    (["A", 2, "208", "", "90", "", "", "", "2000000", "sold", ""], "status"),
    (["A", 2, "209", "", "90", "", "", "", "", "available", ""], "listPrice"),
    (["A", 3, "101", "", "90", "", "", "", "", "", ""], "number"),  # 101 is row 2's
    (["A", 3, "X" * 21, "", "90", "", "", "", "", "", ""], "number"),
    ([""] * 11, None),  # a blank line: not a row, but it keeps its number
    (["A", 2, "204", "", "90", "85", "W", 3, "", "", ""], None),  # row 11's refused number
    (["A", -1, "B01", "", "45", "", "", "", "", "", ""], None),
    (["A", 10, "1001", "", "140", "", "NS", 4, "5200000.50", "available", "top"], None),
    (["A", -11, "B11", "", "45", "", "", "", "", "", ""], "floor"),
    (["A", 3, "301", "", "90", "", "", 25, "", "", ""], "rooms"),
    (["B", 1, "101", "", "88", "", "E", 3, "", "", ""], None),  # 101 again, another building
    (["B", 4, "401", "", "88", "", "", "", "", "", ""], None),
    (["B", 4, "401", "", "88", "", "", "", "", "", ""], "number"),
    (["A", 4, "401", "", "100", "", "", "", "300万", "在售", "a、b"], None),
    (["A", 4, "402", "", "100", "", "s", "", "", "", ""], None),
    (["A", 5, "501", "", "100", "", "", "", "1000000", "available", ""], None),
    (["B", 5, "x1", "", "88", "", "", "", "", "planned", ""], None),
    (["", "", "", "", "", "", "", "", "", "", "note: unknown"], "building"),
]


async def test_mixed_file_imports_exactly_the_good_rows(client, make_tenant, engine):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Harbour One")
    await create_building(client, tenant.slug, project["id"], "A", floors=10)
    data = csv_bytes([row for row, _ in MIXED])
    report = report_of(await import_units(client, tenant.slug, project["id"], data))

    numbered = list(enumerate(MIXED, start=2))
    blank = {n for n, (row, _) in numbered if not any(str(v) for v in row)}
    bad = [(n, f) for n, (_, f) in numbered if f is not None]
    good = {(row[0], row[2]) for n, (row, f) in numbered if f is None and n not in blank}
    assert len(numbered) - len(blank) == 30 and len(good) == 12 and len(bad) == 18
    assert counts(report) == (30, 12, 0, 18), report
    assert error_cells(report) == bad  # each bad row once, sorted by row, its own field

    units = await units_of(client, tenant.slug, project["id"])
    assert set(units) == good
    a101 = units[("A", "101")]
    assert (a101["floor"], a101["grossArea"], a101["netArea"], a101["orientation"]) == (
        1,
        "89.50",
        "80.00",
        "S",
    )
    assert (a101["rooms"], a101["status"], a101["tags"]) == (3, "AVAILABLE", ["corner", "quiet"])
    assert a101["listPrice"] == {"minorUnits": 300_000_000, "currency": "CNY"}
    assert units[("A", "201")]["listPrice"]["minorUnits"] == 310_000_000
    assert units[("A", "1001")]["listPrice"]["minorUnits"] == 520_000_050
    assert units[("A", "103")]["listPrice"] is None and units[("A", "103")]["status"] == "PLANNED"
    assert units[("A", "204")]["netArea"] == "85.00"  # the good row, not the refused one
    assert units[("A", "B01")]["floor"] == -1
    a401 = units[("A", "401")]
    assert (a401["listPrice"]["minorUnits"], a401["status"], a401["tags"]) == (
        300_000_000,
        "AVAILABLE",
        ["a", "b"],
    )
    assert units[("A", "402")]["orientation"] == "S"
    # The existing building is reused as it was; the new one is as high as its good rows.
    assert await buildings_of(client, tenant.slug, project["id"]) == [("A", 10), ("B", 5)]
    # Nothing of a bad row was written: one unit and one creation event per good row.
    found = await db_counts(engine, tenant)
    assert (found["unit"], found["unit_event"], found["building"], found["import_batch"]) == (
        12,
        12,
        2,
        1,
    )


# ---------------------------------------------------------------- idempotency

FIRST = [
    ["T1", 1, "101", "", "80", "", "S", 2, "1000000", "available", ""],
    ["T1", 1, "102", "", "80", "", "S", 2, "", "", ""],
    ["T1", 2, "201", "", "80", "", "N", 2, "", "", ""],
    ["T1", 2, "202", "", "", "", "", "", "", "", ""],  # no area
    ["T2", 3, "301", "", "120", "", "", 4, "", "", ""],
]
MORE = [
    ["T1", 2, "203", "", "80", "", "", 2, "", "", ""],  # T1 now exists with 2 floors
    ["T2", 1, "101", "", "120", "", "", 4, "", "", ""],
    ["T3", 2, "201", "", "60", "", "", 1, "", "", ""],
]


async def test_importing_the_same_rows_again_creates_no_duplicates(client, make_tenant, engine):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Harbour Two")
    pid, data = project["id"], csv_bytes(FIRST)

    first = report_of(await import_units(client, tenant.slug, pid, data))
    assert counts(first) == (5, 4, 0, 1) and error_cells(first) == [(5, "grossArea")]
    again = report_of(await import_units(client, tenant.slug, pid, data))
    assert counts(again) == (5, 0, first["imported"], 1), again
    assert error_cells(again) == [(5, "grossArea")]
    assert len(await units_of(client, tenant.slug, pid)) == 4

    # A longer version of the file: only the added rows are new.
    longer = report_of(await import_units(client, tenant.slug, pid, csv_bytes(FIRST + MORE)))
    assert counts(longer) == (8, 3, 4, 1), longer
    units = await units_of(client, tenant.slug, pid)
    assert len(units) == 7 and {("T1", "203"), ("T2", "101"), ("T3", "201")} <= set(units)
    # The same rows as a workbook are the same units.
    book = report_of(
        await import_units(client, tenant.slug, pid, xlsx_bytes(FIRST + MORE), "units.xlsx")
    )
    assert counts(book) == (8, 0, 7, 1), book
    assert await buildings_of(client, tenant.slug, pid) == [("T1", 2), ("T2", 3), ("T3", 2)]
    found = await db_counts(engine, tenant)
    assert (found["unit"], found["unit_event"], found["import_batch"]) == (7, 7, 4)


# ---------------------------------------------------------------- encodings

ZH_HEADER = ["楼栋", "楼层", "房号", "建筑面积", "户型", "朝向", "总价", "状态", "标签"]


async def test_gb18030_csv_with_chinese_headers_and_values(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "翠湖天地")
    rows = [
        ["1号楼", 3, "301", "89.5", "", "南北", "350万", "在售", "南北通透、近地铁、学区"],
        ["1号楼", 5, "501", "120", "", "东南", "", "待售", ""],
        ["2号楼", 2, "201", "60", "", "北", "¥1,200,000元", "可售", "小户型"],
        ["2号楼", 2, "202", "60", "", "西北", "12.345万", "在售", ""],  # 123450.00 yuan: ok
        ["2号楼", 2, "203", "60", "", "上", "", "", ""],  # not an orientation
    ]
    data = csv_bytes(rows, ZH_HEADER, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # really GB18030 bytes, not UTF-8 that happens to decode
    report = report_of(await import_units(client, tenant.slug, project["id"], data))
    assert counts(report) == (5, 4, 0, 1), report
    assert error_cells(report) == [(6, "orientation")]

    units = await units_of(client, tenant.slug, project["id"])
    u301 = units[("1号楼", "301")]
    assert (u301["orientation"], u301["status"], u301["listPrice"]["minorUnits"]) == (
        "NS",
        "AVAILABLE",
        350_000_000,
    )
    assert (u301["grossArea"], u301["floor"]) == ("89.50", 3)
    assert u301["tags"] == ["南北通透", "近地铁", "学区"]
    u501 = units[("1号楼", "501")]
    assert (u501["orientation"], u501["status"], u501["listPrice"]) == ("SE", "PLANNED", None)
    u201 = units[("2号楼", "201")]
    assert (u201["orientation"], u201["status"]) == ("N", "AVAILABLE")
    assert u201["listPrice"]["minorUnits"] == 120_000_000
    assert units[("2号楼", "202")]["listPrice"]["minorUnits"] == 12_345_000
    assert await buildings_of(client, tenant.slug, project["id"]) == [("1号楼", 5), ("2号楼", 2)]


async def test_utf8_csv_with_bom_reads_its_first_column(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Harbour Three")
    # The first header cell is `building`: unrecognised if the BOM were kept.
    data = b"\xef\xbb\xbf" + csv_bytes(
        [["楼A", 1, "101", "", "70", "", "西", "", "", "", "阳台"]], HEADER
    )
    report = report_of(await import_units(client, tenant.slug, project["id"], data))
    assert counts(report) == (1, 1, 0, 0), report
    unit = (await units_of(client, tenant.slug, project["id"]))[("楼A", "101")]
    assert (unit["orientation"], unit["tags"]) == ("W", ["阳台"])

    zh = "\ufeff" + "楼栋,楼层,房号,面积\n楼B,2,201,66\n"
    report = report_of(await import_units(client, tenant.slug, project["id"], zh.encode()))
    assert counts(report) == (1, 1, 0, 0), report


# ---------------------------------------------------------------- unit types by name


async def test_rows_take_the_named_unit_types_area_and_rooms(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Typed")
    other = await create_project(client, tenant.slug, "Elsewhere")
    for pid, name in ((project["id"], "A1"), (other["id"], "Other")):
        fields = {
            "projectId": pid,
            "name": name,
            "rooms": 3,
            "grossArea": "89.5",
            "netArea": "75",
            "orientation": "S",
        }
        res = await gql(client, CREATE_UNIT_TYPE, {"input": fields}, tenant=tenant.slug)
        assert res["data"]["createUnitType"]["__typename"] == "UnitTypePayload", res
    rows = [
        ["T", 1, "101", "A1", "", "", "", "", "", "", ""],
        ["T", 1, "102", "A1", "95", "", "N", 4, "", "", ""],  # the row's own values win
        ["T", 1, "103", "Other", "", "", "", "", "", "", ""],  # another project's type
        ["T", 1, "104", "A1", "70", "", "", "", "", "", ""],  # type's net 75 > row's gross 70
        ["T", 1, "105", "", "", "", "", "", "", "", ""],  # no type, no area
    ]
    report = report_of(await import_units(client, tenant.slug, project["id"], csv_bytes(rows)))
    assert counts(report) == (5, 2, 0, 3), report
    assert error_cells(report) == [(4, "unit_type"), (5, "netArea"), (6, "grossArea")]

    units = await units_of(client, tenant.slug, project["id"])
    assert set(units) == {("T", "101"), ("T", "102")}
    u101, u102 = units[("T", "101")], units[("T", "102")]
    assert (u101["grossArea"], u101["netArea"], u101["rooms"], u101["orientation"]) == (
        "89.50",
        "75.00",
        3,
        "S",
    )
    assert u101["unitType"] == {"name": "A1"}
    assert (u102["grossArea"], u102["netArea"], u102["rooms"], u102["orientation"]) == (
        "95.00",
        "75.00",
        4,
        "N",
    )
    assert u102["unitType"] == {"name": "A1"}


# ---------------------------------------------------------------- buildings


async def test_new_buildings_are_created_and_existing_ones_reused(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Towers")
    await create_building(client, tenant.slug, project["id"], "E", floors=5)
    rows = [
        ["N1", 3, "301", "", "80", "", "", "", "", "", ""],
        ["N1", 7, "701", "", "80", "", "", "", "", "", ""],
        ["E", 5, "501", "", "80", "", "", "", "", "", ""],
        ["E", 6, "601", "", "80", "", "", "", "", "", ""],  # above E's 5 floors
        ["N1", 5, "501", "", "80", "", "", "", "", "", ""],
        ["N1", -2, "B201", "", "40", "", "", "", "", "", ""],
        ["N2", -1, "B101", "", "40", "", "", "", "", "", ""],  # only a basement
    ]
    report = report_of(await import_units(client, tenant.slug, project["id"], csv_bytes(rows)))
    assert counts(report) == (7, 6, 0, 1), report
    assert error_cells(report) == [(5, "floor")]
    assert await buildings_of(client, tenant.slug, project["id"]) == [
        ("E", 5),
        ("N1", 7),
        ("N2", 1),
    ]
    units = await units_of(client, tenant.slug, project["id"])
    assert units[("N1", "701")]["building"] == {"name": "N1", "floors": 7}

    # Next time N1 exists: its 7 floors now bound the rows.
    more = [
        ["N1", 8, "801", "", "80", "", "", "", "", "", ""],
        ["N1", 7, "702", "", "80", "", "", "", "", "", ""],
    ]
    report = report_of(await import_units(client, tenant.slug, project["id"], csv_bytes(more)))
    assert counts(report) == (2, 1, 0, 1) and error_cells(report) == [(2, "floor")], report
    assert ("N1", 7) in await buildings_of(client, tenant.slug, project["id"])


async def test_bad_rows_do_not_shape_new_buildings(client, make_tenant, engine):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Shaped")
    rows = [
        ["N", 3, "301", "", "80", "", "", "", "", "", ""],
        ["N", 30, "3001", "", "80", "", "", "", "2000000", "sold", ""],  # bad: status
        ["Ghost", 2, "201", "", "80", "90", "", "", "", "", ""],  # bad: net > gross
    ]
    report = report_of(await import_units(client, tenant.slug, project["id"], csv_bytes(rows)))
    assert counts(report) == (3, 1, 0, 2), report
    assert error_cells(report) == [(3, "status"), (4, "netArea")]
    assert await buildings_of(client, tenant.slug, project["id"]) == [("N", 3)]
    assert (await db_counts(engine, tenant))["building"] == 1


async def test_one_impossible_floor_does_not_sink_a_new_buildings_good_rows(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Sunk")
    rows = [
        ["N", 2, "201", "", "80", "", "", "", "", "", ""],
        ["N", 250, "25001", "", "80", "", "", "", "", "", ""],
    ]
    report = report_of(await import_units(client, tenant.slug, project["id"], csv_bytes(rows)))
    assert error_cells(report) == [(3, "floor")], report
    assert counts(report) == (2, 1, 0, 1), report
    assert await buildings_of(client, tenant.slug, project["id"]) == [("N", 2)]


# ---------------------------------------------------------------- refused files


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    return buf.getvalue()


def _padded_csv(size: int) -> bytes:
    """A units CSV of exactly ``size`` bytes: one good row, then blank lines of commas."""
    head = b"building,floor,number,gross_area\nP,1,101,80\n"
    line = b"," * 999 + b"\n"
    body = line * ((size - len(head)) // len(line))
    tail = size - len(head) - len(body)
    return head + body + b"," * (tail - 1) + b"\n" if tail else head + body


async def test_refused_files_are_typed_errors_and_write_nothing(client, make_tenant, engine):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Refusals")
    cases = {
        "empty": ("units.csv", b""),
        "only a BOM": ("units.csv", b"\xef\xbb\xbf"),
        "no known column": ("units.csv", b"foo,bar,baz\nB1,1,101\n"),
        "binary named .xlsx": ("units.xlsx", bytes(range(256)) * 64),
        "zip that is not a workbook": ("units.xlsx", _zip({"readme.txt": b"hello"})),
        "binary named .csv": ("units.csv", b"building,floor\x00\x01\x02\nB1,1\n"),
        "workbook without rows": ("units.xlsx", xlsx_bytes([], header=[])),
        "over 10 MB": ("units.csv", _padded_csv(files.MAX_BYTES + 1)),
    }
    for case, (filename, data) in cases.items():
        result = await import_units(client, tenant.slug, project["id"], data, filename)
        assert result["__typename"] == "ValidationError", (case, result)
        assert_file_error(result)
    found = await db_counts(engine, tenant)
    assert found == {"unit": 0, "unit_event": 0, "building": 0, "import_batch": 0}, found

    # The limit is inclusive: a file of exactly MAX_BYTES is read.
    data = _padded_csv(files.MAX_BYTES)
    assert len(data) == files.MAX_BYTES
    report = report_of(await import_units(client, tenant.slug, project["id"], data))
    assert counts(report) == (1, 1, 0, 0), report


async def test_more_than_max_rows_is_refused(client, make_tenant, engine, monkeypatch):
    monkeypatch.setattr(files, "MAX_ROWS", 3)
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Rows")
    rows = [["R", 1, f"10{i}", "", "80", "", "", "", "", "", ""] for i in range(1, 5)]
    # Exactly MAX_ROWS rows (blank lines do not count) are fine.
    three = csv_bytes([*rows[:2], [""] * 11, rows[2]])
    report = report_of(await import_units(client, tenant.slug, project["id"], three))
    assert counts(report) == (3, 3, 0, 0), report

    result = await import_units(client, tenant.slug, project["id"], csv_bytes(rows))
    assert_file_error(result)
    assert "3" in result["message"]
    found = await db_counts(engine, tenant)
    assert (found["unit"], found["building"], found["import_batch"]) == (3, 1, 1)


async def test_unknown_project_is_not_found(client, make_tenant, engine):
    tenant = await make_tenant()
    data = csv_bytes([["B", 1, "101", "", "80", "", "", "", "", "", ""]])
    for project_id in (str(uuid.uuid4()), "not-an-id"):
        result = await import_units(client, tenant.slug, project_id, data)
        assert (result["__typename"], result["code"], result["field"]) == (
            "NotFoundError",
            "NOT_FOUND",
            "projectId",
        ), result
    assert set((await db_counts(engine, tenant)).values()) == {0}


async def test_an_agent_cannot_import_units(client, make_tenant, member, engine):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Guarded")
    _, token = await member(tenant, ["agent"])
    data = csv_bytes([["B", 1, "101", "", "80", "", "", "", "", "", ""]])
    res = await upload(
        client,
        tenant.slug,
        IMPORT_UNITS,
        {"projectId": project["id"]},
        "units.csv",
        data,
        token=token,
    )
    typed_denial(res, "importUnits", "FORBIDDEN")
    assert set((await db_counts(engine, tenant)).values()) == {0}


async def test_another_tenants_project_is_not_found(client, make_tenant, engine):
    tenant_a, tenant_b = await make_tenant(), await make_tenant()
    project_a = await create_project(client, tenant_a.slug, "Tenant A's")
    await create_building(client, tenant_a.slug, project_a["id"], "B", floors=10)
    data = csv_bytes([["B", 1, "101", "", "80", "", "", "", "", "", ""]])
    result = await import_units(client, tenant_b.slug, project_a["id"], data)
    assert (result["__typename"], result["field"]) == ("NotFoundError", "projectId"), result
    assert await units_of(client, tenant_a.slug, project_a["id"]) == {}
    assert set((await db_counts(engine, tenant_b)).values()) == {0}
    found_a = await db_counts(engine, tenant_a)
    assert (found_a["unit"], found_a["building"], found_a["import_batch"]) == (0, 1, 0)


# ---------------------------------------------------------------- recorded and audited


async def test_import_is_recorded_and_audited(client, make_tenant, member, engine):
    tenant = await make_tenant()
    actor_id, token = await member(tenant, ["admin"])
    project = await create_project(client, tenant.slug, "Recorded")
    rows = [
        ["R", 1, "101", "", "80", "", "", "", "", "", ""],
        ["R", 1, "102", "", "80", "", "", "", "", "sold", ""],
        ["R", 2, "201", "", "80", "", "", "", "", "", ""],
    ]
    data = csv_bytes(rows)
    report = report_of(
        await import_units(client, tenant.slug, project["id"], data, "二期 units.csv", token=token)
    )
    assert counts(report) == (3, 2, 0, 1), report
    again = report_of(
        await import_units(client, tenant.slug, project["id"], data, "again.csv", token=token)
    )

    batches = await batch_rows(engine, tenant)
    assert [str(b.id) for b in batches] == [report["batchId"], again["batchId"]]
    first, second = batches
    assert (first.kind, first.filename, first.sha256) == (
        "units",
        "二期 units.csv",
        hashlib.sha256(data).hexdigest(),
    )
    assert (first.rows_total, first.imported, first.skipped, first.failed) == (3, 2, 0, 1)
    assert [(e["row"], e["field"]) for e in first.errors] == [(3, "status")]
    assert all(e["message"] for e in first.errors)
    assert first.actor_id == actor_id and first.created_at is not None
    assert (second.sha256, second.imported, second.skipped, second.failed) == (
        first.sha256,
        0,
        2,
        1,
    )

    res = await gql(client, AUDIT_LOG, {"action": "importUnits"}, tenant=tenant.slug)
    assert "errors" not in res, res
    entries = res["data"]["auditLog"]
    assert len(entries) == 2, entries
    entry = entries[-1]  # newest first: this is the first import's
    assert (entry["outcome"], entry["actorId"]) == ("ok", str(actor_id))
    args = entry["details"]["args"]["importUnits"]
    assert args["projectId"] == project["id"]
    assert args["file"]["filename"] == "二期 units.csv"
    assert "R,1,101" not in json.dumps(entry["details"])  # the file's content is not logged
    inserted = [c["table"] for c in entry["details"]["changes"] if c["op"] == "insert"]
    assert inserted.count("unit") == 2 and inserted.count("import_batch") == 1
    batch = next(c for c in entry["details"]["changes"] if c["table"] == "import_batch")
    assert batch["after"]["sha256"] == first.sha256 and batch["after"]["imported"] == 2

    # A refused file is audited with its outcome and leaves no batch.
    await import_units(client, tenant.slug, project["id"], b"", "empty.csv", token=token)
    res = await gql(client, AUDIT_LOG, {"action": "importUnits"}, tenant=tenant.slug)
    assert res["data"]["auditLog"][0]["outcome"] == "BAD_USER_INPUT", res
    assert len(await batch_rows(engine, tenant)) == 2


# ---------------------------------------------------------------- known defects


async def test_corrupt_workbook_xml_is_a_typed_error(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Corrupt")
    data = _zip({"[Content_Types].xml": b"<<not xml", "xl/workbook.xml": b"<<not xml"})
    res = await upload(
        client, tenant.slug, IMPORT_UNITS, {"projectId": project["id"]}, "units.xlsx", data
    )
    assert "errors" not in res, res
    assert_file_error(res["data"]["importUnits"])


async def test_a_long_cell_in_an_ignored_column_is_not_an_internal_error(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Long cell")
    data = csv_bytes(
        [["L", 1, "101", "80", "x" * 200_000]],
        ["building", "floor", "number", "gross_area", "remarks"],
    )
    res = await upload(
        client, tenant.slug, IMPORT_UNITS, {"projectId": project["id"]}, "units.csv", data
    )
    assert "errors" not in res, res
    result = res["data"]["importUnits"]
    assert result["__typename"] in ("ImportReport", "ValidationError"), result


async def test_batch_id_is_a_time_ordered_uuid7(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Ids")
    data = csv_bytes([["I", 1, "101", "", "80", "", "", "", "", "", ""]])
    report = report_of(await import_units(client, tenant.slug, project["id"], data))
    assert uuid.UUID(report["batchId"]).version == 7, report
