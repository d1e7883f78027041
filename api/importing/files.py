"""Reading an uploaded table (CSV or XLSX) into numbered rows keyed by canonical column names.

Headers may be English or Chinese (建筑面积, 房号...); each file's first row is its header.
CSV is read as UTF-8 (with or without BOM), falling back to GB18030, which is what Chinese
spreadsheet programs write."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from api.errors import ValidationFailed

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 20_000
csv.field_size_limit(MAX_BYTES)  # a cell may be as large as the file may be


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
    yield from csv.reader(io.StringIO(text, newline=""))


def _read_xlsx(data: bytes) -> Iterator[list]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # zip, XML or workbook structure: whatever the parser trips on
        raise ValidationFailed("the file is not a readable XLSX workbook", "file") from exc
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            return
        try:
            for row in sheet.iter_rows(values_only=True):
                yield ["" if v is None else v for v in row]
        except ValidationFailed:
            raise
        except Exception as exc:  # a sheet part that is not well-formed
            raise ValidationFailed("the file is not a readable XLSX workbook", "file") from exc
    finally:
        book.close()


def read_table(filename: str, data: bytes, aliases: dict[str, str]) -> list[tuple[int, dict]]:
    """(row number as the user sees it, {canonical column: value}) for each non-empty row.
    ``aliases`` maps normalised header texts to canonical names; unknown columns are ignored,
    and a file without any known column is refused."""
    if len(data) > MAX_BYTES:
        raise ValidationFailed(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB", "file")
    is_xlsx = filename.lower().endswith((".xlsx", ".xlsm")) or data[:4] == b"PK\x03\x04"
    rows = _read_xlsx(data) if is_xlsx else _read_csv(data)
    header = next(rows, None)
    if header is None:
        raise ValidationFailed("the file is empty", "file")
    columns = [aliases.get(_norm(h)) for h in header]
    if not any(columns):
        raise ValidationFailed("no known column in the header row", "file")
    out = []
    for number, raw in enumerate(rows, start=2):
        if not any(str(v).strip() for v in raw):
            continue
        record = {c: v for c, v in zip(columns, raw, strict=False) if c}
        out.append((number, record))
        if len(out) > MAX_ROWS:
            raise ValidationFailed(f"at most {MAX_ROWS} rows per file", "file")
    return out
