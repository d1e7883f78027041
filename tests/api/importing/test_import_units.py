"""Importing units from CSV and XLSX: good rows in, bad rows reported, no duplicates."""

from __future__ import annotations

import io

from openpyxl import Workbook

from tests.api.helpers import create_project
from tests.api.importing.helpers import IMPORT_UNITS, upload
from tests.conftest import gql

CSV = """building,floor,number,gross_area,rooms,orientation,list_price,status,tags
B1,1,101,89.5,3,S,3000000,available,corner;quiet
B1,1,102,89.5,3,南,300万,available,
B1,2,201,,3,S,3100000,available,
B1,x,202,89.5,3,S,3100000,available,
B2,3,301,120,4,NS,4500000,planned,
"""


async def test_csv_import_reports_bad_rows_and_is_idempotent(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Harbour One")
    res = await upload(
        client, tenant.slug, IMPORT_UNITS, {"projectId": project["id"]}, "units.csv", CSV.encode()
    )
    report = res["data"]["importUnits"]
    assert report["__typename"] == "ImportReport", res
    assert (report["rowsTotal"], report["imported"], report["skipped"], report["failed"]) == (
        5,
        3,
        0,
        2,
    )
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(4, "grossArea"), (5, "floor")]

    again = await upload(
        client, tenant.slug, IMPORT_UNITS, {"projectId": project["id"]}, "units.csv", CSV.encode()
    )
    report = again["data"]["importUnits"]
    assert (report["imported"], report["skipped"], report["failed"]) == (0, 3, 2)

    query = (
        "{ units(first: 50) { edges { node { number orientation listPrice { minorUnits }"
        " building { name floors } } } } }"
    )
    res = await gql(client, query, tenant=tenant.slug)
    units = {e["node"]["number"]: e["node"] for e in res["data"]["units"]["edges"]}
    assert sorted(units) == ["101", "102", "301"]
    assert units["102"]["orientation"] == "S"
    assert units["102"]["listPrice"]["minorUnits"] == 300_000_000
    assert units["301"]["building"] == {"name": "B2", "floors": 3}


async def test_xlsx_with_chinese_headers(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Harbour One")
    book = Workbook()
    sheet = book.active
    sheet.append(["楼栋", "楼层", "房号", "建筑面积", "室", "总价", "状态"])
    sheet.append(["1栋", 5, "501", 95.25, 3, 3_200_000, "在售"])
    sheet.append(["1栋", 6, "601", 95.25, 3, None, "在售"])  # available needs a price
    buf = io.BytesIO()
    book.save(buf)
    res = await upload(
        client,
        tenant.slug,
        IMPORT_UNITS,
        {"projectId": project["id"]},
        "units.xlsx",
        buf.getvalue(),
    )
    report = res["data"]["importUnits"]
    assert (report["imported"], report["failed"]) == (1, 1), report
    assert report["errors"][0]["row"] == 3 and report["errors"][0]["field"] == "listPrice"
