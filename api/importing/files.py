"""Reading an uploaded table (CSV or XLSX) into numbered rows keyed by canonical column names.

Headers may be English or Chinese (建筑面积, 房号...); each file's first row is its header.
CSV is read as UTF-8 (with or without BOM), falling back to GB18030, which is what Chinese
spreadsheet programs write.

Reading is CPU work (an XLSX is a zip of XML): ``read_table_off_loop`` runs it in a thread of
a small pool of its own, so the gateway's event loop keeps serving other requests meanwhile,
and a request that is cancelled (its time limit) stops the reading at the next row. Every
dimension of a file is bounded, and each bound is a typed error (BAD_USER_INPUT, field
``file``): its size, its size unpacked (a workbook is compressed), lines, rows, header
columns and the length of a cell."""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import threading
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from api.errors import ValidationFailed

MAX_BYTES = 10 * 1024 * 1024
MAX_UNPACKED_BYTES = 64 * 1024 * 1024  # a workbook's parts, uncompressed
MAX_ROWS = 20_000  # rows with a value
MAX_LINES = 100_000  # rows read, blank ones included
MAX_COLUMNS = 200  # header columns (cells further right are never read)
MAX_CELL_CHARS = 32_767  # Excel's own limit for a cell
csv.field_size_limit(MAX_CELL_CHARS)

# Files being read at once per process: the others wait (the reading holds the GIL most of
# the time, so more threads would not read faster, only slow the event loop down more).
_READERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="anju-import")


# A cell's value: text from a CSV file; from a workbook, what openpyxl reads (numbers, dates,
# times, durations, booleans; an empty cell is "").
Cell = str | int | float | bool | datetime | date | time | timedelta
Record = dict[str, Cell]  # canonical column name -> cell


class TableRow(NamedTuple):
    number: int  # the row's number as the user sees it (the header is row 1)
    record: Record


class _Stopped(Exception):
    """The request that wanted this file read is gone."""


def _norm(header: object) -> str:
    return str(header or "").strip().lower().replace(" ", "_").replace("-", "_")


def _read_csv(data: bytes) -> Iterator[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ValidationFailed("the file is not text in UTF-8 or GB18030", "file")
    if "\x00" in text:
        raise ValidationFailed("the file is not a CSV table", "file")
    try:
        yield from csv.reader(io.StringIO(text, newline=""))
    except csv.Error as exc:  # a field longer than MAX_CELL_CHARS, or a broken quote
        if "field larger than field limit" in str(exc):
            raise ValidationFailed(_too_long(), "file") from None
        raise ValidationFailed(f"the file is not a readable CSV table ({exc})", "file") from None


def _too_long() -> str:
    return f"a cell is longer than {MAX_CELL_CHARS} characters"


def _check_unpacked(data: bytes) -> None:
    """A workbook whose parts would unpack to more than MAX_UNPACKED_BYTES is refused before
    any is read (a zip reader never reads a member past its declared size)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unpacked = sum(info.file_size for info in z.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ValidationFailed("the file is not a readable XLSX workbook", "file") from exc
    if unpacked > MAX_UNPACKED_BYTES:
        raise ValidationFailed(
            f"the workbook unpacks to more than {MAX_UNPACKED_BYTES // (1024 * 1024)} MB", "file"
        )


def _read_xlsx(data: bytes) -> Iterator[list[Cell]]:
    from openpyxl import load_workbook

    _check_unpacked(data)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # zip, XML or workbook structure: whatever the parser trips on
        raise ValidationFailed("the file is not a readable XLSX workbook", "file") from exc
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            return
        # The sheet's declared dimension is not trusted (it could name a million empty rows
        # or columns); one cell more than allowed is read to tell a too-wide header.
        sheet.reset_dimensions()
        try:
            for row in sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True):
                yield ["" if v is None else v for v in row]
        except ValidationFailed:
            raise
        except Exception as exc:  # a sheet part that is not well-formed
            raise ValidationFailed("the file is not a readable XLSX workbook", "file") from exc
    finally:
        book.close()


def _check_cells(row: Sequence[Cell]) -> None:
    for v in row:
        if isinstance(v, str) and len(v) > MAX_CELL_CHARS:
            raise ValidationFailed(_too_long(), "file")


def read_table(
    filename: str, data: bytes, aliases: dict[str, str], *, stop: threading.Event | None = None
) -> list[TableRow]:
    """(row number as the user sees it, {canonical column: value}) for each non-empty row.
    ``aliases`` maps normalised header texts to canonical names; unknown columns are ignored,
    and a file without any known column is refused. CPU work: call it through
    ``read_table_off_loop`` from the event loop. ``stop`` set: it gives up at the next row."""
    if len(data) > MAX_BYTES:
        raise ValidationFailed(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB", "file")
    is_xlsx = filename.lower().endswith((".xlsx", ".xlsm")) or data[:4] == b"PK\x03\x04"
    rows: Iterator[Sequence[Cell]] = _read_xlsx(data) if is_xlsx else _read_csv(data)
    header = next(rows, None)
    if header is None:
        raise ValidationFailed("the file is empty", "file")
    while header and not str(header[-1]).strip():
        header = header[:-1]  # trailing empty cells
    if len(header) > MAX_COLUMNS:
        raise ValidationFailed(f"at most {MAX_COLUMNS} columns per file", "file")
    _check_cells(header)
    columns = [aliases.get(_norm(h)) for h in header]
    if not any(columns):
        raise ValidationFailed("no known column in the header row", "file")
    out: list[TableRow] = []
    for number, raw in enumerate(rows, start=2):
        if stop is not None and stop.is_set():
            raise _Stopped
        if number > MAX_LINES:
            raise ValidationFailed(f"at most {MAX_LINES} lines per file", "file")
        _check_cells(raw)
        if not any(str(v).strip() for v in raw):
            continue
        record = {c: v for c, v in zip(columns, raw, strict=False) if c}
        out.append(TableRow(number, record))
        if len(out) > MAX_ROWS:
            raise ValidationFailed(f"at most {MAX_ROWS} rows per file", "file")
    return out


async def read_table_off_loop(
    filename: str, data: bytes, aliases: dict[str, str]
) -> list[TableRow]:
    """``read_table`` in a reading thread: the event loop serves other requests meanwhile.
    If the caller is cancelled, the thread stops at the next row."""
    stop = threading.Event()
    job = functools.partial(read_table, filename, data, aliases, stop=stop)
    try:
        return await asyncio.get_running_loop().run_in_executor(_READERS, job)
    finally:
        stop.set()
