"""Types every domain uses: Node, Long, Money, PageInfo and opaque cursors; and the input
scalars, which refuse at the edge what no column or computation can hold (BAD_USER_INPUT
naming the argument, before any resolver runs)."""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, NewType, Protocol, TypeVar

import strawberry
from graphql import (
    GraphQLError,
    GraphQLID,
    GraphQLScalarType,
    GraphQLString,
    ValueNode,
    value_from_ast_untyped,
)
from strawberry.file_uploads import Upload
from strawberry.schema.types.base_scalars import DateTimeDefinition

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


if TYPE_CHECKING:
    # To Python code a Long is an int; the distinct object below only tells the schema which
    # scalar to use (``SCALARS``), so every int is a Long without a wrapping call.
    Long = int
else:
    Long = NewType("Long", int)


def clean_text(value: str) -> str:
    """``value`` if PostgreSQL can store it as text: no NUL character, no lone surrogate (the
    UTF-8 the database speaks has no encoding for one)."""
    if "\x00" in value:
        raise GraphQLError("text must not contain the NUL character (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise GraphQLError("text must be valid Unicode (a lone surrogate is not)") from exc
    return value


def _guard_text(scalar: GraphQLScalarType) -> None:
    """Every way ``scalar`` (String, ID) reads an input checks the text it reads. String and
    ID are graphql-core's own objects (the introspection types use them too, so a schema
    cannot hold another scalar of that name): the check is added to them, once."""
    if getattr(scalar, "_anju_clean_text", False):
        return
    for attr in ("coerce_input_value", "parse_value", "coerce_input_literal", "parse_literal"):
        read = getattr(scalar, attr, None)
        if read is None:
            continue

        def guarded(
            *args: Any, _read: Callable[..., Any] = read, _literal: bool = "literal" in attr
        ) -> Any:
            value = _read(*args)
            if not isinstance(value, str):
                return value
            try:
                return clean_text(value)
            except GraphQLError as exc:  # a literal: the error points at it in the document
                raise GraphQLError(exc.message, args[0] if _literal else None) from None

        setattr(scalar, attr, guarded)
    scalar._anju_clean_text = True  # type: ignore[attr-defined]  # our mark on graphql's object


_guard_text(GraphQLString)
_guard_text(GraphQLID)

# Decimal inputs (areas, coordinates, percentages) are finite, below 10^15 and carry at most 12
# decimal places: anything else is no area, coordinate or rate, and cannot reach a column.
DECIMAL_LIMIT = 10**15
DECIMAL_PLACES = 12


def _parse_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise GraphQLError("Decimal must be a number or a decimal string")
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise GraphQLError(f"Decimal cannot represent {str(value)[:40]!r}") from exc
    if not number.is_finite() or abs(number) >= DECIMAL_LIMIT:
        raise GraphQLError(f"Decimal must be finite and below {DECIMAL_LIMIT:.0e} in size")
    exponent = number.as_tuple().exponent  # an int: the letters are for non-finite numbers
    if isinstance(exponent, int) and exponent < -DECIMAL_PLACES:
        rounded = number.quantize(Decimal(1).scaleb(-DECIMAL_PLACES))
        if rounded != number:
            raise GraphQLError(f"Decimal takes at most {DECIMAL_PLACES} decimal places")
        number = rounded
    return number


# DateTime inputs name an instant: with a UTC offset (a time without one would be read in the
# server's zone by asyncpg, or refused by a service), between these (UTC): a time a person can
# mean, with room for the arithmetic the services do (a due date plus days, a window back from a
# start). Beyond them, converting to UTC or adding a day overflows Python's datetime.
DATETIME_MIN = dt.datetime(1900, 1, 1)
DATETIME_MAX = dt.datetime(3000, 1, 1)
DATETIME_EXAMPLE = "give a UTC offset, e.g. 2026-12-04T10:00:00+08:00"


def _parse_datetime(value: object) -> dt.datetime:
    iso_8601 = DateTimeDefinition.parse_value  # strawberry's own ISO 8601 reading
    assert iso_8601 is not None  # strawberry's DateTime defines it
    parsed: dt.datetime = iso_8601(value)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise GraphQLError(f"DateTime needs a UTC offset: {DATETIME_EXAMPLE}")
    try:
        utc = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError as exc:
        raise GraphQLError(f"DateTime cannot represent {str(value)[:40]!r}") from exc
    if not DATETIME_MIN <= utc < DATETIME_MAX:
        raise GraphQLError("DateTime must be between 1900-01-01 and 2999-12-31 (UTC)")
    return parsed


T = TypeVar("T")
LiteralReader = Callable[[ValueNode, dict[str, Any] | None], Any]


def _literal(parse: Callable[[object], T]) -> Callable[..., T]:
    """A scalar's literal reading: ``parse`` of the literal's value, and an error that points
    at the literal in the document."""

    def parse_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> T:
        try:
            return parse(value_from_ast_untyped(node, variables))
        except GraphQLError as exc:
            raise GraphQLError(exc.message, node) from None

    return parse_literal


def _parse_upload(value: object) -> object:
    """A file part of a GraphQL multipart request (anything else cannot be read)."""
    if callable(getattr(value, "read", None)):
        return value
    raise GraphQLError("Upload must be a file sent as a part of a multipart request")


def _upload_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> object:
    raise GraphQLError("Upload must be a file sent as a part of a multipart request", node)


# Custom scalars and the built-in ones made strict, given to the schema's config
# (``build_schema``).
SCALARS: dict[object, Any] = {
    Long: strawberry.scalar(
        name="Long",
        serialize=int,
        parse_value=_parse_long,
        description="A 64-bit integer (money in minor units), as a JSON number.",
    ),
    Decimal: strawberry.scalar(
        name="Decimal",
        serialize=str,
        parse_value=_parse_decimal,
        parse_literal=_literal(_parse_decimal),
        description="Decimal (fixed-point): finite, below 10^15, at most 12 decimal places.",
    ),
    dt.datetime: strawberry.scalar(
        name="DateTime",
        serialize=dt.datetime.isoformat,
        parse_value=_parse_datetime,
        parse_literal=_literal(_parse_datetime),
        description="Date with time (isoformat), between 1900-01-01 and 2999-12-31 UTC.",
    ),
    Upload: strawberry.scalar(
        name="Upload",
        serialize=lambda v: v,
        parse_value=_parse_upload,
        parse_literal=_upload_literal,
        description="Represents a file upload.",
    ),
}

# The most items one list in a request's variables may hold (the largest batch the API takes,
# createUnits, is 5,000). A longer list is refused before it is coerced: it would cost the
# gateway its time, and one statement takes at most 32,767 parameters.
MAX_LIST_ITEMS = 5000


def overlong_list(variables: object) -> str | None:
    """Why ``variables`` are refused: the path (``$name.field[3]``) of a list in them longer
    than ``MAX_LIST_ITEMS``; or None."""
    stack = (
        [(f"${k}", v) for k, v in (variables or {}).items()] if isinstance(variables, dict) else []
    )
    while stack:
        path, value = stack.pop()
        if isinstance(value, list):
            if len(value) > MAX_LIST_ITEMS:
                return f"{path} holds more than {MAX_LIST_ITEMS} items"
            stack.extend(
                (f"{path}[{i}]", v) for i, v in enumerate(value) if isinstance(v, dict | list)
            )
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}", v) for k, v in value.items())
    return None


@strawberry.type(description="An amount of money: minor units (fen, cents) and ISO currency.")
class Money:
    minor_units: Long
    currency: str

    @strawberry.field(
        description="The amount in major units, as a decimal string with the "
        "currency's minor digits (123.45 CNY, 1500 JPY)."
    )
    def amount(self) -> Decimal:
        return major_units(self.minor_units, self.currency)

    @classmethod
    def of(cls, minor: int | None, currency: str) -> Money | None:
        return None if minor is None else cls(minor_units=minor, currency=currency)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any] | None:
    """The values in a cursor, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return values if isinstance(values, list) else None


MAX_PAGE = 100


def parse_id(value: object) -> uuid.UUID | None:
    """The UUID an ID argument holds, or None when it holds none."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def require_id(value: object, what: str, field: str) -> uuid.UUID:
    """The UUID an ID argument holds; a malformed one names nothing: NOT_FOUND on ``field``."""
    from api.errors import NotFound

    parsed = parse_id(value)
    if parsed is None:
        raise NotFound(f"{what} not found", field)
    return parsed


class Criteria(Protocol):
    """What ``search_args`` reads of a search's criteria."""

    @property
    def near(self) -> object: ...

    @property
    def keyword(self) -> str | None: ...


F = TypeVar("F")
C = TypeVar("C", bound=Criteria)


def search_args(
    to_search: Callable[[F], C],
    filter: F,
    sort: enum.Enum,
    first: int,
    after: str | None,
    key_kind: type | None,
) -> tuple[C, int, tuple[Any, ...] | None]:
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


def after_values(after: str | None, sort: str, key_kind: type | None) -> tuple[Any, ...] | None:
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


class Edge(Protocol):
    @property
    def cursor(self) -> str: ...


E = TypeVar("E", bound=Edge)


def edges_of(
    rows: Sequence[tuple[Any, Any]], first: int, sort: str, make: Callable[[str, Any], E]
) -> tuple[list[E], PageInfo]:
    """Edges (cursor, node) and PageInfo from ``first + 1`` (row, key) pairs; ``make`` builds
    an edge from (cursor, row)."""
    edges = [make(encode_cursor([sort, key, str(row.id)]), row) for row, key in rows[:first]]
    info = PageInfo(has_next_page=len(rows) > first, end_cursor=edges[-1].cursor if edges else None)
    return edges, info
