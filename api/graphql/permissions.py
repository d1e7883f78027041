"""Permissions, declared next to each field (``permission_classes=[...]``) and checked here.

Sign-in arrives with the identity issue; until then the only rule is that tenant data needs a
resolved, active tenant. Every field and mutation still names its permission, so tightening a
permission later is a change in one place."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.permission import BasePermission

from api.errors import ErrorCode


class Public(BasePermission):
    """Open to anyone (health-style fields with no tenant data)."""

    message = "forbidden"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return True


class TenantRequired(BasePermission):
    """The request named an active tenant (X-Tenant header or subdomain)."""

    message = "this field needs a tenant: send the X-Tenant header or use the tenant subdomain"
    error_extensions = {"code": ErrorCode.BAD_USER_INPUT.value}

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return info.context.tenant is not None


# What a tenant member may read / write. Same rule as TenantRequired until roles exist.
class CanRead(TenantRequired):
    pass


class CanWrite(TenantRequired):
    pass
