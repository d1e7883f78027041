"""Permissions, declared next to each field (``permission_classes=[...]``), checked here.

- ``Public``: anyone (declared explicitly; a test fails for a root field with no permission).
- ``TenantRequired``: the request names an active tenant (e.g. sign-in).
- ``Authenticated``: a signed-in member of the request's tenant.
- ``requires("unit.read")``: a member whose roles grant that permission (catalogue in
  ``api/security/catalogue.py``).
A refusal of a root mutation whose result union has ``PermissionDeniedError`` (FORBIDDEN) or
``AuthError`` (UNAUTHENTICATED) comes back as that typed error, as data; any other refusal fails
the field with ``extensions.code`` UNAUTHENTICATED / FORBIDDEN / BAD_USER_INPUT (no tenant)."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from functools import cache
from typing import Any

import strawberry
from graphql import GraphQLUnionType, get_nullable_type
from strawberry.permission import BasePermission

from api.errors import DomainError, ErrorCode, Forbidden, Unauthenticated
from api.identity.auth import Principal
from api.security.catalogue import PERMISSIONS


def _need_tenant(info: strawberry.Info) -> None:
    if info.context.tenant is None:
        from api.graphql.errors import QueryError

        raise QueryError(
            ErrorCode.BAD_USER_INPUT,
            "this field needs a tenant: send the X-Tenant header or use the tenant subdomain",
        )


# The refusal of the field being checked, handed from has_permission to on_unauthorized
# (both run in the field's own task, one after the other).
_denied: ContextVar[DomainError | None] = ContextVar("anju_denied", default=None)


def _typed_denial(info: strawberry.Info, exc: DomainError) -> bool:
    """A root mutation whose result union has a type for this refusal returns it as data;
    anything else fails as a field error with the code."""
    raw = info._raw_info  # graphql-core's info: the schema types, not the Python ones
    if raw.parent_type.name != "Mutation":
        return False
    union = get_nullable_type(raw.return_type)
    if not isinstance(union, GraphQLUnionType):
        return False
    wanted = "PermissionDeniedError" if exc.code == ErrorCode.FORBIDDEN else "AuthError"
    return any(t.name == wanted for t in union.types)


class _Guard(BasePermission):
    """Runs ``check``; a refusal becomes a typed error (mutations whose union has one) or a
    field error with extensions.code."""

    message = "forbidden"
    permission: str | None = None

    def check(self, info: strawberry.Info) -> None:
        raise NotImplementedError

    # Synchronous on purpose: the caller is read once when the operation starts
    # (OperationScope), so a check is a lookup, and a field stays synchronous when its
    # resolver is: no task, no await per guarded field.
    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        try:
            self.check(info)
        except (Forbidden, Unauthenticated) as exc:
            if _typed_denial(info, exc):
                _denied.set(exc)
                return False
            raise
        return True

    def on_unauthorized(self) -> Any:
        from api.graphql.errors import user_error

        exc = _denied.get()
        _denied.set(None)
        if exc is None:  # cannot happen: has_permission sets it before returning False
            raise Forbidden("forbidden")
        return user_error(exc)


class Public(BasePermission):
    """Open to anyone."""

    message = "forbidden"
    permission: str | None = None

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return True


class TenantRequired(BasePermission):
    """The request named an active tenant; no sign-in needed."""

    message = "this field needs a tenant"
    permission: str | None = None

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        _need_tenant(info)
        return True


class Authenticated(_Guard):
    """A signed-in member of the request's tenant."""

    message = "sign in first"

    def check(self, info: strawberry.Info) -> None:
        _need_tenant(info)
        if info.context.principal_now() is None:
            raise Unauthenticated("sign in first")


@cache
def requires(permission: str) -> type[BasePermission]:
    """The permission class for one catalogue permission (one class per permission)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}: add it to the catalogue")

    def check(self: BasePermission, info: strawberry.Info) -> None:
        _need_tenant(info)
        check_principal(info.context.principal_now(), permission)

    return type(
        f"Requires_{permission.replace('.', '_')}",
        (_Guard,),
        {"message": f"needs {permission}", "permission": permission, "check": check},
    )


def check_principal(principal: Principal | None, permission: str | None) -> None:
    """The rule of ``requires(permission)`` (``None``: any signed-in member) for a caller."""
    if principal is None:
        raise Unauthenticated("sign in first")
    if permission is None:
        return
    if principal.needs_totp:
        raise Forbidden("this tenant requires two-factor sign-in for admins: enrol first")
    if not principal.can(permission):
        raise Forbidden(f"your roles do not grant '{permission}'")


def check_classes(classes: Iterable[type[BasePermission]], principal: Principal | None) -> None:
    """The field's declared permission classes, for a caller known outside a GraphQL
    execution (a WebSocket subscription, tenant already resolved). Raises a DomainError."""
    for cls in classes:
        if cls in (Public, TenantRequired):
            continue
        if cls is Authenticated or issubclass(cls, _Guard):
            check_principal(principal, getattr(cls, "permission", None))
            continue
        raise Forbidden(f"permission class {cls.__name__} cannot be checked here")
