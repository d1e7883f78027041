"""Roles: built-in ones from the catalogue, custom ones the tenant's admins define, and their
assignment to members. A change takes effect on the members' next request (permissions are
read per operation)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Conflict, NotFound, ValidationFailed
from api.identity.models import Account, Invitation, Membership, RefreshToken, Role
from api.security.catalogue import BUILTIN_ROLES, SCOPES, unknown_permissions

ROLE_KEY_RE = re.compile(r"[a-z][a-z0-9_]{1,63}")


@dataclass(frozen=True)
class RoleView:
    key: str
    name: str
    permissions: tuple[str, ...]
    scope: str
    builtin: bool


def _view(role: Role) -> RoleView:
    return RoleView(role.key, role.name, tuple(sorted(role.permissions)), role.scope, False)


def builtin_views() -> list[RoleView]:
    return [
        RoleView(k, v["name"], tuple(sorted(v["permissions"])), v["scope"], True)
        for k, v in BUILTIN_ROLES.items()
    ]


async def list_roles(session: AsyncSession) -> list[RoleView]:
    custom = (await session.scalars(select(Role).order_by(Role.key))).all()
    return builtin_views() + [_view(r) for r in custom]


def _check(name: str | None, permissions: list[str] | None, scope: str | None) -> None:
    if name is not None and not (1 <= len(name.strip()) <= 100):
        raise ValidationFailed("name must be 1 to 100 characters", "name")
    if permissions is not None and (bad := unknown_permissions(permissions)):
        raise ValidationFailed(f"unknown permissions: {', '.join(bad)}", "permissions")
    if scope is not None and scope not in SCOPES:
        raise ValidationFailed(f"dataScope must be one of {', '.join(SCOPES)}", "dataScope")


async def create_role(
    session: AsyncSession, key: str, name: str, permissions: list[str], scope: str
) -> RoleView:
    if not ROLE_KEY_RE.fullmatch(key or ""):
        raise ValidationFailed("key must be 2-64 characters: a-z, 0-9 and _", "key")
    if key in BUILTIN_ROLES:
        raise Conflict(f"'{key}' is a built-in role", "key")
    _check(name, permissions, scope)
    if await session.get(Role, key) is not None:
        raise Conflict(f"role '{key}' already exists", "key")
    role = Role(key=key, name=name.strip(), permissions=sorted(set(permissions)), scope=scope)
    session.add(role)
    await session.flush()
    return _view(role)


async def update_role(
    session: AsyncSession,
    key: str,
    *,
    name: str | None = None,
    permissions: list[str] | None = None,
    scope: str | None = None,
) -> RoleView:
    if key in BUILTIN_ROLES:
        raise Conflict("built-in roles cannot be changed; create a custom role", "key")
    role = await session.get(Role, key, with_for_update=True)
    if role is None:
        raise NotFound(f"role '{key}' not found", "key")
    _check(name, permissions, scope)
    if name is not None:
        role.name = name.strip()
    if permissions is not None:
        role.permissions = sorted(set(permissions))
    if scope is not None:
        role.scope = scope
    await session.flush()
    return _view(role)


async def delete_role(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> None:
    if key in BUILTIN_ROLES:
        raise Conflict("built-in roles cannot be deleted", "key")
    role = await session.get(Role, key, with_for_update=True)
    if role is None:
        raise NotFound(f"role '{key}' not found", "key")
    holders = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.tenant_id == tenant_id, Membership.roles.contains([key]))
    )
    if holders:
        raise Conflict(f"role '{key}' is assigned to {holders} member(s); unassign it first", "key")
    await session.delete(role)
    await session.flush()


async def validate_roles(session: AsyncSession, roles: list[str]) -> list[str]:
    """The roles, deduplicated and sorted, when each is built in or a custom role here."""
    roles = sorted(set(roles))
    if not roles:
        raise ValidationFailed("at least one role is required", "roles")
    custom = [r for r in roles if r not in BUILTIN_ROLES]
    if custom:
        # KEY SHARE: a concurrent deleteRole waits for this assignment, then sees it.
        found = set(
            await session.scalars(
                select(Role.key).where(Role.key.in_(custom)).with_for_update(key_share=True)
            )
        )
        if missing := [r for r in custom if r not in found]:
            raise ValidationFailed(f"unknown roles: {', '.join(missing)}", "roles")
    return roles


async def _lock_admins(session: AsyncSession, tenant_id: uuid.UUID) -> list[Membership]:
    """Lock the tenant's active admin memberships, so two demotions cannot both pass."""
    return list(
        await session.scalars(
            select(Membership)
            .where(
                Membership.tenant_id == tenant_id,
                Membership.status == "active",
                Membership.roles.contains(["admin"]),
            )
            .with_for_update()
        )
    )


async def disable_member(
    session: AsyncSession, tenant_id: uuid.UUID, actor_id: uuid.UUID, account_id: uuid.UUID
) -> Membership:
    """Disable a membership and end its sessions at once."""
    if account_id == actor_id:
        raise Conflict("you cannot disable yourself", "accountId")
    admins = await _lock_admins(session, tenant_id)
    member = await session.scalar(
        select(Membership)
        .where(Membership.tenant_id == tenant_id, Membership.account_id == account_id)
        .with_for_update()
    )
    if member is None:
        raise NotFound("member not found", "accountId")
    if member in admins and len(admins) <= 1:
        raise Conflict("the tenant must keep at least one admin", "accountId")
    member.status = "disabled"
    account = await session.get(Account, account_id)
    assert account is not None  # a membership's account exists (accounts are never deleted)
    await withdraw_invitations(session, tenant_id, account)
    await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.account_id == account_id,
            RefreshToken.tenant_id == tenant_id,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
    )
    await session.flush()
    return member


async def withdraw_invitations(
    session: AsyncSession, tenant_id: uuid.UUID, account: Account
) -> None:
    """Withdraw the tenant's pending invitations to the account's phone or email (the account
    was just disabled: an older invitation must not bring it back)."""
    digests = [d for d in (account.phone_bidx, account.email_bidx) if d is not None]
    await session.execute(
        update(Invitation)
        .where(
            Invitation.tenant_id == tenant_id,
            Invitation.accepted_at.is_(None),
            Invitation.withdrawn_at.is_(None),
            Invitation.ident_bidx.in_(digests),
        )
        .values(withdrawn_at=func.now())
    )


async def assign_roles(
    session: AsyncSession, tenant_id: uuid.UUID, account_id: uuid.UUID, roles: list[str]
) -> Membership:
    roles = await validate_roles(session, roles)
    admins = await _lock_admins(session, tenant_id)
    member = await session.scalar(
        select(Membership)
        .where(Membership.tenant_id == tenant_id, Membership.account_id == account_id)
        .with_for_update()
    )
    if member is None:
        raise NotFound("member not found", "accountId")
    if "admin" in member.roles and "admin" not in roles and len(admins) <= 1:
        raise Conflict("the tenant must keep at least one admin", "roles")
    member.roles = roles
    await session.flush()
    return member


async def list_members(
    session: AsyncSession, tenant_id: uuid.UUID
) -> Sequence[Row[Membership, Account]]:
    stmt = (
        select(Membership, Account)
        .join(Account, Account.id == Membership.account_id)
        # Invited people appear once they accept (invitations made before kept an invited
        # membership).
        .where(Membership.tenant_id == tenant_id, Membership.status != "invited")
        .order_by(Account.name, Account.id)
    )
    return (await session.execute(stmt)).all()
