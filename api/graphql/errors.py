"""Typed user errors (mutation payload unions) and the error policy of query errors.

Every error in a response carries ``extensions.code`` from the fixed set in ``api.errors``.
Expected refusals keep their message; anything unexpected becomes INTERNAL with a correlation id,
and its traceback goes to the log, never to the response."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from api.errors import DomainError, ErrorCode

log = structlog.get_logger("anju.graphql")

GqlErrorCode = strawberry.enum(ErrorCode, name="ErrorCode")


class QueryError(Exception):
    """Raise in a resolver to fail a query field with a given code."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code


@strawberry.interface(description="A mistake the user can fix; returned as data by mutations.")
class UserError:
    code: GqlErrorCode
    message: str
    field: str | None = strawberry.field(description="The input field at fault, if one is.")


@strawberry.type
class ValidationError(UserError):
    pass


@strawberry.type
class NotFoundError(UserError):
    pass


@strawberry.type
class ConflictError(UserError):
    pass


@strawberry.type(description="Sign-in refused, or a token that is not (or no longer) valid.")
class AuthError(UserError):
    pass


@strawberry.type(description="Too many attempts; try again after retryAfter seconds.")
class RateLimitedError(UserError):
    retry_after: int


@strawberry.type(description="The caller's roles do not allow this.")
class PermissionDeniedError(UserError):
    pass


_BY_CODE = {
    ErrorCode.BAD_USER_INPUT: ValidationError,
    ErrorCode.NOT_FOUND: NotFoundError,
    ErrorCode.CONFLICT: ConflictError,
    ErrorCode.UNAUTHENTICATED: AuthError,
    ErrorCode.FORBIDDEN: PermissionDeniedError,
}


def user_error(exc: DomainError) -> UserError:
    from api.graphql.context import note_user_error

    note_user_error(exc.code)
    if exc.code == ErrorCode.RATE_LIMITED:
        return RateLimitedError(
            code=exc.code, message=exc.message, field=exc.field,
            retry_after=getattr(exc, "retry_after", 60),
        )  # fmt: skip
    cls = _BY_CODE.get(exc.code, ValidationError)
    return cls(code=exc.code, message=exc.message, field=exc.field)


async def attempt(session, fn):
    """Run ``fn()`` in a savepoint: a DomainError undoes what it wrote and comes back as a
    typed error (the operation still commits, since a user mistake is data). Returns
    (result, None) or (None, error)."""
    try:
        async with session.begin_nested():
            return await fn(), None
    except DomainError as exc:
        return None, user_error(exc)


def _classify(error: GraphQLError) -> tuple[ErrorCode, bool]:
    """(code, keep message) for one error."""
    ext = error.extensions or {}
    original = error.original_error
    if original is None:
        # Parse and validation errors, and permission refusals (which set their code).
        code = ext.get("code")
        if code in ErrorCode.__members__:
            return ErrorCode(code), True
        return ErrorCode.BAD_USER_INPUT, True
    if isinstance(original, QueryError):
        return original.code, True
    if isinstance(original, DomainError):
        return original.code, True
    if isinstance(original, GraphQLError):  # e.g. variable coercion
        return ErrorCode.BAD_USER_INPUT, True
    return ErrorCode.INTERNAL, False


def apply_error_policy(errors: list[GraphQLError]) -> list[GraphQLError]:
    from api import unavailable

    out = []
    for error in errors:
        code, keep = _classify(error)
        if keep:
            error.extensions = {**(error.extensions or {}), "code": code.value}
            out.append(error)
            continue
        if unavailable.unavailable(error.original_error):  # not a bug: try again shortly
            unavailable.note(error.original_error, "graphql")
            out.append(GraphQLError(
                unavailable.MESSAGE, nodes=error.nodes, source=error.source,
                positions=error.positions, path=error.path, extensions=unavailable.EXTENSIONS,
            ))  # fmt: skip
            continue
        correlation_id = str(uuid.uuid4())
        log.error(
            "unexpected error",
            correlation_id=correlation_id,
            path=error.path,
            exc_info=error.original_error,
        )
        out.append(
            GraphQLError(
                f"Internal error (correlation id {correlation_id})",
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions={"code": ErrorCode.INTERNAL.value, "correlationId": correlation_id},
            )
        )
    return out


class ErrorPolicy(SchemaExtension):
    """Runs once per operation (no per-field hook)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and getattr(result, "errors", None):
            result.errors = apply_error_policy(result.errors)
            answer_unavailable(self.execution_context.context, result.errors)
        pre = self.execution_context.pre_execution_errors
        if pre:
            self.execution_context.pre_execution_errors = apply_error_policy(pre)
            answer_unavailable(self.execution_context.context, pre)


def answer_unavailable(context, errors: list[GraphQLError]) -> None:
    """An HTTP operation that failed because the database is out of reach is answered 503
    with Retry-After (api/unavailable.py)."""
    from api import unavailable

    response = getattr(context, "response", None)
    if response is None or not hasattr(response, "status_code"):
        return  # a WebSocket operation: the error message says it
    if any((e.extensions or {}).get("reason") == unavailable.REASON for e in errors):
        response.status_code = 503
        response.headers["Retry-After"] = str(unavailable.RETRY_AFTER)
