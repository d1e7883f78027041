"""Reading an import file does not hold the gateway's event loop (issue #16, item 4): other
requests are answered while a workbook is being parsed, the request time limit stops the
reading, and every dimension of a file is bounded by a typed error.

The order of events is what is asserted, never a duration: the workbook's reader is held after
its header row until the other request has been answered (or a generous bound passes, so the
old code fails instead of hanging)."""

from __future__ import annotations

import asyncio
import io
import re
import threading
import zipfile

import httpx
from openpyxl import Workbook

from api.importing import files
from tests.api.helpers import create_project
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
from tests.conftest import gql

BOUND = 20.0  # seconds a held reader waits before it goes on by itself (the old code's fate)
ROWS = 3000


def _rows(n: int) -> list[list]:
    return [
        ["W", 1 + i // 50, f"{i:05d}", "", "80", "", "S", 2, "1000000", "available", ""]
        for i in range(n)
    ]


class HeldReader:
    """Replaces ``files._read_xlsx``: the real reader, held after the header row until
    ``release`` is set; records what happened in ``events``."""

    def __init__(self, monkeypatch) -> None:
        self.events: list[str] = []
        self.reading = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        real = files._read_xlsx

        def held(data: bytes):
            rows = real(data)
            try:
                yield next(rows)
                self.events.append("reading")
                self.reading.set()
                self.release.wait(BOUND)
                yield from rows
                self.events.append("read to the end")
            finally:
                self.finished.set()

        monkeypatch.setattr(files, "_read_xlsx", held)


async def test_a_query_is_answered_while_a_workbook_is_parsed(client, make_tenant, monkeypatch):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Wide and long")
    data = xlsx_bytes(_rows(ROWS))
    reader = HeldReader(monkeypatch)

    importing = asyncio.create_task(
        import_units(client, tenant.slug, project["id"], data, "units.xlsx")
    )
    assert await asyncio.to_thread(reader.reading.wait, BOUND), "the reader never started"
    query = "query($id: ID!) { project(id: $id) { name } }"
    res = await gql(client, query, {"id": project["id"]}, tenant=tenant.slug)
    assert res == {"data": {"project": {"name": "Wide and long"}}}, res
    reader.events.append("query answered")
    reader.release.set()
    report = report_of(await importing)
    reader.events.append("import answered")

    assert reader.events == ["reading", "query answered", "read to the end", "import answered"]
    assert counts(report) == (ROWS, ROWS, 0, 0), report


async def test_the_request_time_limit_stops_the_reading(
    client, live_server_factory, make_tenant, monkeypatch, engine
):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Timed out")
    reader = HeldReader(monkeypatch)
    # The limit only has to outlast the work before the reading (the reader is held until the
    # limit has answered) and fall well within BOUND.
    with live_server_factory(request_timeout=5, live_relay_in_process=False) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
            importing = asyncio.create_task(
                upload(
                    c,
                    tenant.slug,
                    IMPORT_UNITS,
                    {"projectId": project["id"]},
                    "units.xlsx",
                    xlsx_bytes(_rows(ROWS)),
                    expect_status=503,
                )
            )
            assert await asyncio.to_thread(reader.reading.wait, BOUND), "never started"
            body = await importing  # answered by the time limit while the reader is held
            reader.events.append("answered")
            assert body["errors"][0]["extensions"]["code"] == "INTERNAL", body
            reader.release.set()
            assert await asyncio.to_thread(reader.finished.wait, BOUND)
    # The reader stopped at its next row: it never read to the end, and nothing was written.
    assert reader.events == ["reading", "answered"], reader.events
    found = await db_counts(engine, tenant)
    assert (found["unit"], found["import_batch"]) == (0, 0), found


# ---------------------------------------------------------------- bounds


def _wide_xlsx(columns: int) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append([*HEADER, *(f"extra{i}" for i in range(columns - len(HEADER)))])
    sheet.append(["B", 1, "101", "", "80"])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _declared_huge_xlsx() -> bytes:
    """A small workbook whose sheet claims to span A1:XFD1048576."""
    src = zipfile.ZipFile(io.BytesIO(xlsx_bytes([["D", 1, "101", "", "80"] + [""] * 6])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                # openpyxl writes `<dimension ref="A1:K2" />`, or without the space when
                # lxml is installed (pyHanko brings it)
                body = re.sub(
                    rb'<dimension ref="A1:K2"\s*/>', b'<dimension ref="A1:XFD1048576"/>', body
                )
                assert b"XFD1048576" in body
            z.writestr(info, body)
    return out.getvalue()


async def test_each_bound_of_a_file_is_a_typed_error(client, make_tenant, monkeypatch, engine):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Bounds")
    pid = project["id"]
    long_cell = "x" * (files.MAX_CELL_CHARS + 1)
    refused = {
        "header too wide (xlsx)": ("units.xlsx", _wide_xlsx(files.MAX_COLUMNS + 1)),
        "header too wide (csv)": (
            "units.csv",
            csv_bytes([], [*HEADER, *(f"c{i}" for i in range(files.MAX_COLUMNS))]),
        ),
        "a cell too long (csv)": ("units.csv", csv_bytes([["B", 1, "101", "", "80", long_cell]])),
    }
    # (openpyxl cuts a workbook's cells at Excel's limit itself: the same bound.)
    for case, (filename, data) in refused.items():
        result = await import_units(client, tenant.slug, pid, data, filename)
        assert_file_error(result)
        assert (
            str(files.MAX_COLUMNS if "wide" in case else files.MAX_CELL_CHARS)
            in (result["message"])
        ), (case, result)

    # A workbook that unpacks to more than allowed is refused before it is parsed.
    monkeypatch.setattr(files, "MAX_UNPACKED_BYTES", 4096)
    result = await import_units(client, tenant.slug, pid, xlsx_bytes(_rows(50)), "units.xlsx")
    assert_file_error(result)
    assert "unpacks" in result["message"], result
    monkeypatch.undo()

    # Lines, blank ones included.
    monkeypatch.setattr(files, "MAX_LINES", 10)
    blanks = csv_bytes([_rows(1)[0], *([[""] * 11] * 20)])
    result = await import_units(client, tenant.slug, pid, blanks)
    assert_file_error(result)
    assert "10 lines" in result["message"], result
    monkeypatch.undo()
    assert set((await db_counts(engine, tenant)).values()) == {0}

    # Exactly at the bounds is fine; a declared dimension of a million rows is not believed.
    at = _rows(1)[0][:5] + [""] * 6 + ["y" * files.MAX_CELL_CHARS]  # in an ignored column
    header = [*HEADER, *(f"c{i}" for i in range(files.MAX_COLUMNS - len(HEADER)))]
    report = report_of(await import_units(client, tenant.slug, pid, csv_bytes([at], header)))
    assert counts(report) == (1, 1, 0, 0), report
    res = await upload(
        client, tenant.slug, IMPORT_UNITS, {"projectId": pid}, "units.xlsx", _declared_huge_xlsx()
    )
    report = report_of(res["data"]["importUnits"])
    assert counts(report) == (1, 1, 0, 0), report
