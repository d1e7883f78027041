"""Error codes shared by every layer.

Query and subscription errors carry ``extensions.code`` from ``ErrorCode``. Mutations return user
mistakes as data (typed errors in a union, see ``api.graphql.errors``). Services raise
``DomainError`` subclasses; the GraphQL layer turns them into one or the other.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL = "INTERNAL"


class DomainError(Exception):
    """A refusal the caller can act on: a code, a message, and the input field at fault."""

    code: ErrorCode = ErrorCode.BAD_USER_INPUT

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    code = ErrorCode.BAD_USER_INPUT


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class Conflict(DomainError):
    code = ErrorCode.CONFLICT


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


class Unauthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED
