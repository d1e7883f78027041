"""Uploading files through GraphQL multipart requests (the spec apps and consoles use), the CSV
and XLSX files the import tests upload, and reads of what an import left in the database."""

from __future__ import annotations

import csv
import io
import json

import httpx
from openpyxl import Workbook
from sqlalchemy import func, select

from api.importing.models import ImportBatch
from api.project.models import Building
from api.unit.models import Unit, UnitEvent
from tenants.sessions import TenantDatabase
from tests.conftest import auth_headers

IMPORT_UNITS = """
mutation($projectId: ID!, $file: Upload!) {
  importUnits(projectId: $projectId, file: $file) {
    __typename
    ... on ImportReport { batchId rowsTotal imported skipped failed errors { row field message } }
    ... on UserError { code message field }
  }
}
"""

IMPORT_LISTINGS = """
mutation($file: Upload!) {
  importListings(file: $file) {
    __typename
    ... on ImportReport { batchId rowsTotal imported skipped failed errors { row field message } }
    ... on UserError { code message field }
  }
}
"""


async def upload(
    client: httpx.AsyncClient,
    tenant: str,
    query: str,
    variables: dict,
    filename: str,
    data: bytes,
    *,
    token: str | None = None,
    content_type: str = "application/octet-stream",
    expect_status: int = 200,
) -> dict:
    """POST a GraphQL multipart request with one file bound to ``variables.file``."""
    operations = json.dumps({"query": query, "variables": {**variables, "file": None}})
    resp = await client.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.file"]})},
        files={"0": (filename, data, content_type)},
        headers=auth_headers(tenant, token),
    )
    assert resp.status_code == expect_status, resp.text
    return resp.json()


HEADER = [
    "building",
    "floor",
    "number",
    "unit_type",
    "gross_area",
    "net_area",
    "orientation",
    "rooms",
    "list_price",
    "status",
    "tags",
]


def csv_bytes(rows: list[list], header: list[str] = HEADER, encoding: str = "utf-8") -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list], header: list[str] = HEADER) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append([None if v == "" else v for v in row])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


async def import_units(
    client, slug: str, project_id: str, data: bytes, filename: str = "units.csv", **kw
) -> dict:
    res = await upload(client, slug, IMPORT_UNITS, {"projectId": project_id}, filename, data, **kw)
    assert "errors" not in res, res
    return res["data"]["importUnits"]


def report_of(result: dict) -> dict:
    assert result["__typename"] == "ImportReport", result
    return result


def counts(report: dict) -> tuple[int, int, int, int]:
    return report["rowsTotal"], report["imported"], report["skipped"], report["failed"]


async def db_counts(engine, tenant) -> dict[str, int]:
    async with TenantDatabase(engine).session(tenant) as session:
        return {
            model.__tablename__: await session.scalar(select(func.count()).select_from(model))
            for model in (Unit, UnitEvent, Building, ImportBatch)
        }


def assert_file_error(result: dict) -> None:
    assert (result["__typename"], result["code"], result["field"]) == (
        "ValidationError",
        "BAD_USER_INPUT",
        "file",
    ), result
    assert result["message"], result
