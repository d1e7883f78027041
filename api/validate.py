"""Input checks shared by the domains' services."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Float, Integer, Numeric, SmallInteger
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from api.db import rows_where_in
from api.errors import NotFound, ValidationFailed

MAX_AREA = Decimal("100000")
CENTIARE = Decimal("0.01")

V = TypeVar("V")


def text(value: str, field: str, *, required: bool, max_len: int) -> str:
    """Trimmed text without control characters (tab and newline allowed), within ``max_len``."""
    value = (value or "").strip()
    if any(ord(c) < 32 and c not in "\t\n" for c in value):
        raise ValidationFailed(f"{field} must not contain control characters", field)
    if required and not value:
        raise ValidationFailed(f"{field} is required", field)
    if len(value) > max_len:
        raise ValidationFailed(f"{field} must be at most {max_len} characters", field)
    return value


def unique_texts(
    values: list[str], field: str, *, max_len: int = 50, max_count: int = 30
) -> list[str]:
    """Distinct non-empty texts (first occurrence kept), each and the count bounded."""
    out: list[str] = []
    for v in values:
        v = text(v, field, required=True, max_len=max_len)
        if v not in out:
            out.append(v)
    if len(out) > max_count:
        raise ValidationFailed(f"at most {max_count} {field}", field)
    return out


def https_url(value: str, field: str, *, max_len: int = 500) -> str:
    """A URL Stripe may send a browser back to: https, at most ``max_len`` characters."""
    if not value.startswith("https://") or len(value) > max_len:
        raise ValidationFailed("an https URL", field)
    return value


def area(value: Decimal | None, field: str, *, required: bool) -> Decimal | None:
    """An area in m², rounded to the 0.01 m² its columns keep: above zero once rounded (an area
    of 0.00 would divide a price by zero), at most ``MAX_AREA``."""
    if value is None:
        if required:
            raise ValidationFailed(f"{field} is required", field)
        return None
    if not value.is_finite() or not CENTIARE / 2 <= value <= MAX_AREA:
        raise ValidationFailed(f"{field} must be between 0.01 and {MAX_AREA} m²", field)
    return value.quantize(CENTIARE, rounding=ROUND_HALF_UP)


def _column_limit(column: QueryableAttribute[Any]) -> int | Decimal | None:
    """The bound (exclusive, both signs) of the values ``column``'s type holds."""
    kind = column.type
    if isinstance(kind, Numeric) and not isinstance(kind, Float) and kind.precision:
        return Decimal(10) ** (kind.precision - (kind.scale or 0))
    if isinstance(kind, SmallInteger):
        return 2**15
    if isinstance(kind, BigInteger):
        return 2**63
    if isinstance(kind, Integer):
        return 2**31
    return None


def fits(value: V, field: str, column: QueryableAttribute[Any]) -> V:
    """``value`` (a number, or a list of them) if ``column`` (a mapped attribute) can hold it:
    a filter compared with a column is bound as the column's type, so a value beyond it fails
    in the driver, not with a clear error. Refuses with BAD_USER_INPUT on ``field``."""
    if value is None:
        return value
    limit = _column_limit(column)
    values: Sequence[Any] = value if isinstance(value, list | tuple) else (value,)
    for v in values:
        if limit is not None and not (
            -limit <= v < limit if isinstance(limit, int) else -limit < v < limit
        ):
            raise ValidationFailed(f"{field} is out of range", field)
    return value


async def existing(
    session: AsyncSession,
    column: QueryableAttribute[Any],
    ids: Iterable[Any],
    what: str,
    field: str,
) -> list[Any]:
    """The rows of ``column``'s model that ``ids`` name, read in ``session`` (a tenant's, so
    another tenant's id names nothing); NOT_FOUND on ``field`` when one of them names none."""
    wanted = list(dict.fromkeys(ids))
    rows = await rows_where_in(session, column, wanted) if wanted else []
    if len(rows) != len(wanted):
        raise NotFound(f"{what} not found", field)
    return rows
