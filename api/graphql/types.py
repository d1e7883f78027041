"""Types every domain uses: Node, Long, Money, PageInfo and opaque cursors."""

from __future__ import annotations

import base64
import json
import math
import uuid
from decimal import Decimal
from typing import NewType

import strawberry
from graphql import GraphQLError

from api.money import major_units


@strawberry.interface(description="An object with a stable id that apps may cache by.")
class Node:
    id: strawberry.ID


def _parse_long(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise GraphQLError("Long must be an integer")
    try:
        number = int(value)
    except ValueError as exc:
        raise GraphQLError("Long must be an integer") from exc
    if not -(2**63) <= number < 2**63:
        raise GraphQLError("Long is out of range (64-bit)")
    return number


Long = NewType("Long", int)

# Custom scalars, given to the schema's config (``build_schema``).
SCALARS = {
    Long: strawberry.scalar(
        name="Long",
        serialize=int,
        parse_value=_parse_long,
        description="A 64-bit integer (money in minor units), as a JSON number.",
    )
}


@strawberry.type(description="An amount of money: minor units (fen, cents) and ISO currency.")
class Money:
    minor_units: Long
    currency: str

    @strawberry.field(description="The amount in major units, as a decimal string with the "
                      "currency's minor digits (123.45 CNY, 1500 JPY).")  # fmt: skip
    def amount(self) -> Decimal:
        return major_units(self.minor_units, self.currency)

    @classmethod
    def of(cls, minor: int | None, currency: str) -> Money | None:
        return None if minor is None else cls(minor_units=minor, currency=currency)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def encode_cursor(values: list) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list | None:
    """The values in a cursor, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return values if isinstance(values, list) else None


MAX_PAGE = 100


def parse_id(value) -> uuid.UUID | None:
    """The UUID an ID argument holds, or None when it holds none."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def require_id(value, what: str, field: str) -> uuid.UUID:
    """The UUID an ID argument holds; a malformed one names nothing: NOT_FOUND on ``field``."""
    from api.errors import NotFound

    parsed = parse_id(value)
    if parsed is None:
        raise NotFound(f"{what} not found", field)
    return parsed


def search_args(to_search, filter, sort, first: int, after: str | None, key_kind):
    """The checked arguments of a search connection: (criteria, page size, cursor values).
    Bad input fails the field with BAD_USER_INPUT: invalid filters, DISTANCE without
    filter.near, RELEVANCE without filter.keyword, a cursor of another search."""
    from api.errors import ErrorCode, ValidationFailed
    from api.graphql.errors import QueryError

    try:
        criteria = to_search(filter)
    except ValidationFailed as exc:
        raise QueryError(exc.code, exc.message) from exc
    if sort.value == "DISTANCE" and criteria.near is None:
        raise QueryError(ErrorCode.BAD_USER_INPUT, "sort DISTANCE needs filter.near")
    if sort.value == "RELEVANCE" and not criteria.keyword:
        raise QueryError(ErrorCode.BAD_USER_INPUT, "sort RELEVANCE needs filter.keyword")
    first = max(0, min(first, MAX_PAGE))
    return criteria, first, after_values(after, sort.value, key_kind)


def after_values(after: str | None, sort: str, key_kind: type | None) -> tuple | None:
    """The (key, id) a cursor of this ``sort`` carries, typed (``key_kind``: int, float,
    Decimal, or None for id-only sorts); raises BAD_USER_INPUT for anything else."""
    from api.errors import ErrorCode
    from api.graphql.errors import QueryError

    if after is None:
        return None
    values = decode_cursor(after)
    bad = QueryError(ErrorCode.BAD_USER_INPUT, "after is not a cursor of this search")
    if values is None or len(values) != 3 or values[0] != sort:
        raise bad
    try:
        row_id = uuid.UUID(str(values[2]))
        if key_kind is None:
            return (row_id,)
        key = key_kind(str(values[1]) if key_kind is Decimal else values[1])
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise bad from exc
    # A forged cursor must not reach the database with a value it cannot take.
    if key_kind is int and not -(2**63) <= key < 2**63:
        raise bad
    if key_kind is float and not math.isfinite(key):
        raise bad
    if key_kind is Decimal and (not key.is_finite() or abs(key) >= 10**12):
        raise bad
    return (key, row_id)


def edges_of(rows: list, first: int, sort: str, make) -> tuple[list, PageInfo]:
    """Edges (cursor, node) and PageInfo from ``first + 1`` (row, key) pairs; ``make`` builds
    an edge from (cursor, row)."""
    edges = [make(encode_cursor([sort, key, str(row.id)]), row) for row, key in rows[:first]]
    info = PageInfo(has_next_page=len(rows) > first,
                    end_cursor=edges[-1].cursor if edges else None)  # fmt: skip
    return edges, info
