"""Who is calling: the access token checked against the request's tenant, then the caller's
membership and roles read fresh for each operation (so a role change or a sign-out takes effect
on the next request)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Unauthenticated
from api.identity import repository as repo
from api.security.catalogue import BUILTIN_ROLES, SCOPES
from api.security.kit import SecurityKit
from api.security.tokens import InvalidToken
from tenants.registry import TenantInfo


@dataclass(frozen=True)
class Principal:
    account_id: uuid.UUID
    tenant_id: uuid.UUID
    session_id: uuid.UUID
    roles: tuple[str, ...]
    permissions: frozenset[str]
    scope: str  # widest data scope of the caller's roles: own | team | all
    # An admin of a tenant that requires TOTP for admins, without TOTP on: may only enrol.
    needs_totp: bool = False

    def can(self, permission: str) -> bool:
        return permission in self.permissions and not self.needs_totp


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def resolve_permissions(
    session: AsyncSession, roles: list[str]
) -> tuple[frozenset[str], str]:
    perms: set[str] = set()
    widest = 0
    custom = [r for r in roles if r not in BUILTIN_ROLES]
    for r in roles:
        if r in BUILTIN_ROLES:
            perms |= BUILTIN_ROLES[r]["permissions"]
            widest = max(widest, SCOPES.index(BUILTIN_ROLES[r]["scope"]))
    if custom:
        for role in await repo.custom_roles(session, custom):
            perms |= set(role.permissions)
            widest = max(widest, SCOPES.index(role.scope))
    return frozenset(perms), SCOPES[widest]


async def authenticate(
    session: AsyncSession, kit: SecurityKit, tenant: TenantInfo, token: str
) -> Principal:
    """Raises Unauthenticated for a bad, expired, foreign-tenant or revoked token."""
    try:
        claims = kit.tokens.verify(token, tenant.slug)
    except InvalidToken as exc:
        raise Unauthenticated(f"invalid access token ({exc})") from exc
    tenant_id = uuid.UUID(tenant.id)
    found = await repo.member_in_session(session, claims.account_id, tenant_id, claims.session_id)
    if found is None:
        raise Unauthenticated("the session was signed out or the membership is not active")
    roles, totp_on = found
    perms, scope = await resolve_permissions(session, roles)
    needs_totp = tenant.require_admin_totp and "admin" in roles and not totp_on
    return Principal(
        claims.account_id, tenant_id, claims.session_id, tuple(roles), perms, scope, needs_totp
    )
