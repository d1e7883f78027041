"""Typed user errors (mutation payload unions) and the error policy of query errors.

Every error in a response carries ``extensions.code`` from the fixed set in ``api.errors``.
Expected refusals keep their message; anything unexpected becomes INTERNAL with a correlation id,
and its traceback goes to the log, never to the response."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import strawberry
import structlog
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension

from api.errors import DomainError, ErrorCode

log = structlog.get_logger("anju.graphql")

# Registers api.errors.ErrorCode with the schema (strawberry.enum returns the class itself).
GqlErrorCode = strawberry.enum(ErrorCode, name="ErrorCode")


class QueryError(Exception):
    """Raise in a resolver to fail a query field with a given code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@strawberry.interface(description="A mistake the user can fix; returned as data by mutations.")
class UserError:
    code: ErrorCode
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


_BY_CODE: dict[ErrorCode, type[UserError]] = {
    ErrorCode.BAD_USER_INPUT: ValidationError,
    ErrorCode.NOT_FOUND: NotFoundError,
    ErrorCode.CONFLICT: ConflictError,
    ErrorCode.UNAUTHENTICATED: AuthError,
    ErrorCode.FORBIDDEN: PermissionDeniedError,
}
_BY_EXCEPTION: dict[type[DomainError], type[UserError]] = {}


def typed_as(exc_cls: type[DomainError], error_cls: type[UserError]) -> None:
    """Return refusals of ``exc_cls`` as ``error_cls`` rather than the type of their code
    (e.g. media's StorageUnavailable, a StorageUnavailableError)."""
    _BY_EXCEPTION[exc_cls] = error_cls


def user_error(exc: DomainError) -> UserError:
    """The typed error of a refusal. A mutation does not call this itself: ``attempt`` does."""
    from api.graphql.context import note_user_error

    note_user_error(exc.code)
    if exc.code == ErrorCode.RATE_LIMITED:
        return RateLimitedError(
            code=exc.code,
            message=exc.message,
            field=exc.field,
            retry_after=getattr(exc, "retry_after", 60),
        )
    cls = next((e for k, e in _BY_EXCEPTION.items() if isinstance(exc, k)), None)
    cls = cls or _BY_CODE.get(exc.code, ValidationError)
    return cls(code=exc.code, message=exc.message, field=exc.field)


async def attempt(
    session: AsyncSession, fn: Callable[[], Awaitable[Any]], *, keeps: str | None = None
) -> tuple[Any, Any]:
    """The one way a mutation runs its work: ``await fn()``, a refusal (DomainError) coming
    back as its typed error. Returns (result, None) or (None, error). Either way the operation
    commits (a user mistake is data; its audit entry records the refusal). Both are typed Any:
    the caller returns the error as a member of its own result union (which names the
    UserError types its refusals may be) and uses the result once there is no error.

    By default ``fn`` runs in a savepoint: a refusal undoes everything ``fn`` wrote, whatever
    the order of its checks and writes.

    ``keeps="..."`` is the opt-out, for a refusal that is itself a fact to record (a failed
    sign-in counted towards the lockout, a wrong code's attempt, a session revoked on token
    reuse): no savepoint, so what ``fn`` wrote before refusing commits. Name what is kept;
    everything else ``fn`` writes must come after its last refusal. See docs/architecture.md."""
    if keeps is not None and not keeps.strip():
        raise ValueError("attempt(keeps=...) names what a refusal keeps")
    try:
        if keeps is not None:
            return await fn(), None
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
        if isinstance(code, str) and code in ErrorCode.__members__:
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

    out: list[GraphQLError] = []
    for error in errors:
        code, keep = _classify(error)
        if keep:
            error.extensions = {**(error.extensions or {}), "code": code.value}
            out.append(error)
            continue
        original = error.original_error
        if original is not None and unavailable.unavailable(original):  # try again shortly
            unavailable.note(original, "graphql")
            out.append(
                GraphQLError(
                    unavailable.MESSAGE,
                    nodes=error.nodes,
                    source=error.source,
                    positions=error.positions,
                    path=error.path,
                    extensions=unavailable.EXTENSIONS,
                )
            )
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
        if result is not None and result.errors:
            result.errors = apply_error_policy(result.errors)
            answer_unavailable(self.execution_context.context, result.errors)
        pre = self.execution_context.pre_execution_errors
        if pre:
            self.execution_context.pre_execution_errors = apply_error_policy(pre)
            answer_unavailable(self.execution_context.context, pre)


def answer_unavailable(context: object, errors: list[GraphQLError]) -> None:
    """An HTTP operation that failed because the database is out of reach is answered 503
    with Retry-After (api/unavailable.py)."""
    from api import unavailable

    response = getattr(context, "response", None)
    if response is None or not hasattr(response, "status_code"):
        return  # a WebSocket operation: the error message says it
    if any((e.extensions or {}).get("reason") == unavailable.REASON for e in errors):
        response.status_code = 503
        response.headers["Retry-After"] = str(unavailable.RETRY_AFTER)
