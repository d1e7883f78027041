"""Permissions, declared next to each field (``permission_classes=[...]``), checked here.

- ``Public``: anyone (declared explicitly; a test fails for a root field with no permission).
- ``TenantRequired``: the request names an active tenant (e.g. sign-in).
- ``Authenticated``: a signed-in member of the request's tenant.
- ``requires("unit.read")``: a member whose roles grant that permission (catalogue in
  ``api/security/catalogue.py``).
A refusal raises, so the field fails with ``extensions.code`` UNAUTHENTICATED / FORBIDDEN /
BAD_USER_INPUT (no tenant)."""

from __future__ import annotations

from functools import cache
from typing import Any

import strawberry
from strawberry.permission import BasePermission

from api.errors import ErrorCode, Forbidden, Unauthenticated
from api.security.catalogue import PERMISSIONS


def _need_tenant(info: strawberry.Info) -> None:
    if info.context.tenant is None:
        from api.graphql.errors import QueryError

        raise QueryError(
            ErrorCode.BAD_USER_INPUT,
            "this field needs a tenant: send the X-Tenant header or use the tenant subdomain",
        )


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


class Authenticated(BasePermission):
    """A signed-in member of the request's tenant."""

    message = "sign in first"
    permission: str | None = None

    async def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        _need_tenant(info)
        if await info.context.principal() is None:
            raise Unauthenticated("sign in first")
        return True


@cache
def requires(permission: str) -> type[BasePermission]:
    """The permission class for one catalogue permission (one class per permission)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}: add it to the catalogue")

    async def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        _need_tenant(info)
        principal = await info.context.principal()
        if principal is None:
            raise Unauthenticated("sign in first")
        if principal.needs_totp:
            raise Forbidden("this tenant requires two-factor sign-in for admins: enrol first")
        if not principal.can(permission):
            raise Forbidden(f"your roles do not grant '{permission}'")
        return True

    return type(
        f"Requires_{permission.replace('.', '_')}",
        (BasePermission,),
        {"message": f"needs {permission}", "permission": permission,
         "has_permission": has_permission},
    )  # fmt: skip
