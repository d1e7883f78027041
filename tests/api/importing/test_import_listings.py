"""Importing resale listings from CSV and XLSX over real multipart HTTP round trips: good rows
become listings of the caller, bad rows are reported and leave nothing, seller phones are
stored encrypted, the same listing (by reference or by fingerprint) is never imported twice,
Chinese headers, and who may import."""

from __future__ import annotations

import csv
import hashlib
import io

from openpyxl import Workbook
from sqlalchemy import func, select

from api.importing.models import ImportBatch
from api.listing.models import Listing, ListingEvent
from tenants.sessions import TenantDatabase
from tests.api.helpers import typed_denial
from tests.api.importing.helpers import IMPORT_LISTINGS, upload
from tests.conftest import gql

LISTINGS = """
{
  listings(first: 100) {
    totalCount
    edges { node { id community district city grossArea rooms livingRooms bathrooms floor
      totalFloors orientation decoration askingPrice { minorUnits currency } status
      agentId sellerName sellerPhone tags description } }
  }
}
"""

HEADER = [
    "房源编号",
    "community",
    "district",
    "gross_area",
    "rooms",
    "living_rooms",
    "bathrooms",
    "floor",
    "total_floors",
    "orientation",
    "decoration",
    "asking_price",
    "seller_name",
    "seller_phone",
    "tags",
]


def csv_bytes(header: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


async def import_listings(
    client, slug: str, data: bytes, filename: str = "listings.csv", **kw
) -> dict:
    res = await upload(client, slug, IMPORT_LISTINGS, {}, filename, data, **kw)
    assert "errors" not in res, res
    return res["data"]["importListings"]


def report_of(result: dict) -> dict:
    assert result["__typename"] == "ImportReport", result
    return result


def counts(report: dict) -> tuple[int, int, int, int]:
    return report["rowsTotal"], report["imported"], report["skipped"], report["failed"]


def error_cells(report: dict) -> list[tuple[int, str]]:
    for e in report["errors"]:
        assert e["message"], report
    return [(e["row"], e["field"]) for e in report["errors"]]


async def listings_of(client, slug: str, token: str | None = None) -> dict[str, dict]:
    """The tenant's listings by community (each test uses distinct communities)."""
    kw = {"token": token} if token else {}
    res = await gql(client, LISTINGS, tenant=slug, **kw)
    assert "errors" not in res, res
    conn = res["data"]["listings"]
    found = {e["node"]["community"]: e["node"] for e in conn["edges"]}
    assert conn["totalCount"] == len(found), conn
    return found


async def db_counts(engine, tenant) -> tuple[int, int, int]:
    async with TenantDatabase(engine).session(tenant) as session:
        return tuple(
            [
                await session.scalar(select(func.count()).select_from(model))
                for model in (Listing, ListingEvent, ImportBatch)
            ]
        )


# ---------------------------------------------------------------- a file with references

WITH_REFS = [
    [
        "L-001",
        "Sunny Garden",
        "Pudong",
        "89.5",
        3,
        2,
        1,
        5,
        18,
        "S",
        "fine",
        "5200000",
        "Zhang San",
        "138 0013 8000",
        "metro;school",
    ],  # 2: good
    ["L-002", "", "Pudong", "89.5", 3, 2, 1, 5, 18, "S", "", "5200000", "", "", ""],  # community
    ["L-003", "Lake View", "Xuhui", "70", 2, 1, 1, 3, 6, "", "", "0", "", "", ""],  # price 0
    [
        "L-004",
        "Hill Top",
        "Xuhui",
        "70",
        2,
        1,
        1,
        3,
        6,
        "",
        "",
        "3000000",
        "Li",
        "12345",
        "",
    ],  # 5: bad phone
    [
        "L-005",
        "Sky Tower",
        "Jingan",
        "120",
        4,
        2,
        2,
        20,
        18,
        "",
        "",
        "9000000",
        "",
        "",
        "",
    ],  # 6: floor above the building
    [
        "L-006",
        "Old Town",
        "Jingan",
        "60",
        2,
        1,
        1,
        2,
        6,
        "",
        "palace",
        "2000000",
        "",
        "",
        "",
    ],  # 7: decoration
    [
        "L-007",
        "River Side",
        "Minhang",
        "100",
        3,
        1,
        2,
        8,
        11,
        "南北",
        "毛坯",
        "300万",
        "Wang",
        "+86 139-0013-9000",
        "南北通透",
    ],  # 8: good
    [
        "L-008",
        "Quiet Court",
        "Minhang",
        "55",
        1,
        1,
        1,
        "",
        "",
        "",
        "",
        "1500000.5",
        "",
        "",
        "",
    ],  # 9: good, no phone
    [
        "L-001",
        "Sunny Garden",
        "Pudong",
        "89.5",
        3,
        2,
        1,
        5,
        18,
        "S",
        "fine",
        "5300000",
        "",
        "",
        "",
    ],  # 10: the same reference as row 2
]


async def test_listing_rows_import_with_their_errors(client, make_tenant, member, engine, kit):
    tenant = await make_tenant()
    admin_id, token = await member(tenant, ["admin"])
    data = csv_bytes(HEADER, WITH_REFS)
    report = report_of(await import_listings(client, tenant.slug, data, token=token))
    assert counts(report) == (9, 3, 0, 6), report
    cells = error_cells(report)
    assert [row for row, _ in cells] == [3, 4, 5, 6, 7, 10]
    assert cells == [
        (3, "community"),
        (4, "askingPrice"),
        (5, "sellerPhone"),
        (6, "floor"),
        (7, "decoration"),
        (10, "ref"),
    ]
    assert report["errors"][-1]["message"] == "the same listing as row 2"

    found = await listings_of(client, tenant.slug)
    assert set(found) == {"Sunny Garden", "River Side", "Quiet Court"}
    sunny = found["Sunny Garden"]
    assert (sunny["district"], sunny["grossArea"], sunny["rooms"], sunny["livingRooms"]) == (
        "Pudong",
        "89.50",
        3,
        2,
    )
    assert (sunny["bathrooms"], sunny["floor"], sunny["totalFloors"]) == (1, 5, 18)
    assert (sunny["orientation"], sunny["decoration"], sunny["status"]) == ("S", "FINE", "ACTIVE")
    assert sunny["askingPrice"] == {"minorUnits": 520_000_000, "currency": "CNY"}
    assert (sunny["sellerName"], sunny["sellerPhone"]) == ("Zhang San", "+8613800138000")
    assert sunny["tags"] == ["metro", "school"]
    river = found["River Side"]
    assert (river["orientation"], river["decoration"]) == ("NS", "ROUGH")
    assert river["askingPrice"]["minorUnits"] == 300_000_000
    assert river["sellerPhone"] == "+8613900139000"
    quiet = found["Quiet Court"]
    assert (quiet["sellerPhone"], quiet["floor"], quiet["askingPrice"]["minorUnits"]) == (
        None,
        None,
        150_000_050,
    )
    # The caller is the agent of every imported listing.
    assert {x["agentId"] for x in found.values()} == {str(admin_id)}

    # A bad row left nothing: one listing and one creation event per good row.
    assert await db_counts(engine, tenant) == (3, 3, 1)
    # Seller phones are stored encrypted (with a blind index), never in clear.
    async with TenantDatabase(engine).session(tenant) as session:
        rows = {r.community: r for r in await session.scalars(select(Listing))}
        batch = await session.scalar(select(ImportBatch))
    for community in ("Sunny Garden", "River Side"):
        row = rows[community]
        assert row.seller_phone_enc is not None and row.seller_phone_bidx is not None
        assert b"13800138000" not in bytes(row.seller_phone_enc)
        assert b"13900139000" not in bytes(row.seller_phone_enc)
    assert rows["Sunny Garden"].seller_phone_enc != rows["River Side"].seller_phone_enc
    assert rows["Quiet Court"].seller_phone_enc is None
    assert {r.source_ref for r in rows.values()} == {"L-001", "L-007", "L-008"}
    assert (batch.kind, batch.sha256) == ("listings", hashlib.sha256(data).hexdigest())
    assert (batch.rows_total, batch.imported, batch.skipped, batch.failed) == (9, 3, 0, 6)
    assert batch.actor_id == admin_id

    # Importing the file again adds nothing; the bad rows are still bad, and row 10 (L-001
    # again) now names a listing that exists, so it is skipped with rows 2, 8 and 9.
    again = report_of(await import_listings(client, tenant.slug, data, token=token))
    assert counts(again) == (9, 0, 4, 5), again
    assert [row for row, _ in error_cells(again)] == [3, 4, 5, 6, 7]
    # A file with the bad rows fixed and a new one imports exactly those.
    fixed = [
        ["L-002", "Second Try", "Pudong", "89.5", 3, 2, 1, 5, 18, "", "", "5200000", "", "", ""],
        WITH_REFS[0],
        ["L-009", "New One", "Pudong", "60", 2, 1, 1, "", "", "", "精装", "200万", "", "", ""],
    ]
    more = report_of(await import_listings(client, tenant.slug, csv_bytes(HEADER, fixed)))
    assert counts(more) == (3, 2, 1, 0), more
    assert await db_counts(engine, tenant) == (5, 5, 3)


# ---------------------------------------------------------------- fingerprinted rows

NO_REF_HEADER = [
    "community",
    "address",
    "gross_area",
    "rooms",
    "floor",
    "asking_price",
    "seller_phone",
]


async def test_rows_without_a_reference_are_fingerprinted(client, make_tenant, engine):
    tenant = await make_tenant()
    rows = [
        ["Maple Court", "1 Maple Rd", "80", 2, 3, "2000000", "13800138000"],
        ["Maple Court", "1 Maple Rd", "80", 2, 4, "2100000", "13800138000"],  # another floor
        ["Maple Court", "1 Maple Rd", "80", 2, 3, "2000000", "13800138000"],  # = row 2
        ["Birch Court", "2 Birch Rd", "95", 3, 6, "3000000", ""],
        ["Maple Court", "1 Maple Rd", "80", 2, 3, "2000000", "13800138000"],  # = row 2
    ]
    data = csv_bytes(NO_REF_HEADER, rows)
    report = report_of(await import_listings(client, tenant.slug, data))
    assert counts(report) == (5, 3, 0, 2), report
    assert error_cells(report) == [(4, "ref"), (6, "ref")]
    assert {e["message"] for e in report["errors"]} == {"the same listing as row 2"}
    assert await db_counts(engine, tenant) == (3, 3, 1)

    again = report_of(await import_listings(client, tenant.slug, data))
    assert counts(again) == (5, 0, 5, 0), again
    assert await db_counts(engine, tenant) == (3, 3, 2)
    # Case and surrounding spaces do not make another listing.
    variant = [[" maple court ", "1 MAPLE RD", "80", "2", "3", "2000000", "13800138000"]]
    report = report_of(
        await import_listings(client, tenant.slug, csv_bytes(NO_REF_HEADER, variant))
    )
    assert counts(report) == (1, 0, 1, 0), report


# ---------------------------------------------------------------- XLSX with Chinese headers

ZH_HEADER = [
    "小区",
    "区域",
    "建筑面积",
    "室",
    "厅",
    "卫",
    "楼层",
    "总楼层",
    "朝向",
    "装修",
    "挂牌价",
    "业主",
    "业主电话",
]


async def test_xlsx_with_chinese_headers(client, make_tenant, engine):
    tenant = await make_tenant()
    book = Workbook()
    sheet = book.active
    sheet.append(ZH_HEADER)
    sheet.append(
        ["翠湖花园", "浦东", 89.5, 3, 2, 1, 6, 18, "南北", "精装", "520万", "李四", 13900139000]
    )
    sheet.append(
        [
            "静安公寓",
            "静安",
            "120.25",
            "4",
            "2",
            "2",
            "12",
            "30",
            "东南",
            "豪装",
            8800000,
            "王五",
            "13700137000",
        ]
    )
    sheet.append(["徐汇小筑", "徐汇", 60, 2, 1, 1, 3, 6, "南", "精装", "abc万", "", None])
    sheet.append([None] * 13)  # an empty row: skipped, not counted
    sheet.append(["长宁里", "长宁", 60, 2, 1, 1, 9, 6, "北", "简装", "200万", "", None])
    buf = io.BytesIO()
    book.save(buf)
    report = report_of(await import_listings(client, tenant.slug, buf.getvalue(), "房源.xlsx"))
    assert counts(report) == (4, 2, 0, 2), report
    assert error_cells(report) == [(4, "asking_price"), (6, "floor")]

    found = await listings_of(client, tenant.slug)
    assert set(found) == {"翠湖花园", "静安公寓"}
    a = found["翠湖花园"]
    assert (a["district"], a["grossArea"], a["rooms"], a["livingRooms"], a["bathrooms"]) == (
        "浦东",
        "89.50",
        3,
        2,
        1,
    )
    assert (a["floor"], a["totalFloors"]) == (6, 18)
    assert (a["orientation"], a["decoration"]) == ("NS", "FINE")
    assert a["askingPrice"]["minorUnits"] == 520_000_000
    assert (a["sellerName"], a["sellerPhone"]) == ("李四", "+8613900139000")
    b = found["静安公寓"]
    assert (b["grossArea"], b["rooms"], b["floor"], b["totalFloors"]) == ("120.25", 4, 12, 30)
    assert (b["orientation"], b["decoration"]) == ("SE", "LUXURY")
    assert b["askingPrice"]["minorUnits"] == 880_000_000
    assert await db_counts(engine, tenant) == (2, 2, 1)


# ---------------------------------------------------------------- who may import

ONE_LISTING = csv_bytes(
    ["ref", "community", "gross_area", "rooms", "asking_price", "seller_phone"],
    [["A-1", "Agent Court", "70", 2, "1800000", "13600136000"]],
)


async def test_an_agent_imports_listings_as_their_own(client, make_tenant, member, engine):
    tenant = await make_tenant()
    agent_id, token = await member(tenant, ["agent"])
    report = report_of(await import_listings(client, tenant.slug, ONE_LISTING, token=token))
    assert counts(report) == (1, 1, 0, 0), report
    mine = (await listings_of(client, tenant.slug, token=token))["Agent Court"]
    # The agent is the listing's agent, so sees the seller's phone unmasked.
    assert (mine["agentId"], mine["sellerPhone"]) == (str(agent_id), "+8613600136000")
    async with TenantDatabase(engine).session(tenant) as session:
        batch = await session.scalar(select(ImportBatch))
    assert (batch.kind, batch.actor_id, batch.imported) == ("listings", agent_id, 1)
    # The admin (pii.read) reads the phone too; another agent sees it masked.
    assert (await listings_of(client, tenant.slug))["Agent Court"]["sellerPhone"] == (
        "+8613600136000"
    )
    _, other = await member(tenant, ["agent"])
    masked = (await listings_of(client, tenant.slug, token=other))["Agent Court"]["sellerPhone"]
    assert masked and masked != "+8613600136000" and "13600136000" not in masked


async def test_a_client_cannot_import_listings(client, make_tenant, member, engine):
    tenant = await make_tenant()
    _, token = await member(tenant, ["client"])
    res = await upload(
        client, tenant.slug, IMPORT_LISTINGS, {}, "listings.csv", ONE_LISTING, token=token
    )
    typed_denial(res, "importListings", "FORBIDDEN")
    assert await db_counts(engine, tenant) == (0, 0, 0)


# ---------------------------------------------------------------- known defects


async def test_bad_seller_phone_names_its_column(client, make_tenant):
    tenant = await make_tenant()
    data = csv_bytes(
        ["community", "gross_area", "rooms", "asking_price", "seller_phone"],
        [["Phone Court", "70", 2, "1800000", "12345"]],
    )
    report = report_of(await import_listings(client, tenant.slug, data))
    [(row, field)] = error_cells(report)
    assert (row, field in ("sellerPhone", "seller_phone")) == (2, True), report
