"""Inviting staff: the admin names a phone or an email and roles; the person gets a link with a
single-use token (7 days), accepts it, sets a password (or proves the one of the account they
already have) and is signed in."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Conflict, Forbidden, ValidationFailed
from api.identity import repository as repo
from api.identity.auth import resolve_permissions
from api.identity.models import Account, Invitation, Membership
from api.identity.roles import validate_roles
from api.identity.service import (
    AuthFailed,
    Identifier,
    Tokens,
    create_account,
    find_account,
    normalize_email,
    normalize_phone,
    now,
    start_session,
)
from api.security.kit import SecurityKit
from api.security.passwords import hash_password, password_problem, verify_password
from api.security.tokens import new_refresh_token, refresh_hash
from tenants.registry import TenantInfo


async def invite(
    session: AsyncSession,
    kit: SecurityKit,
    senders,
    tenant: TenantInfo,
    inviter_id: uuid.UUID,
    *,
    name: str,
    phone: str | None,
    email: str | None,
    roles: list[str],
    inviter_permissions: frozenset[str] | None = None,
) -> tuple[Account, Membership]:
    """Create (or reuse) the person's account, an invited membership and an invitation, and
    send the link by SMS (phone) or email."""
    if not phone and not email:
        raise ValidationFailed("a phone number or an email is required", "phone")
    roles = await validate_roles(session, roles)
    if inviter_permissions is not None and "role.manage" not in inviter_permissions:
        granted, _ = await resolve_permissions(session, roles)
        extra = granted - set(inviter_permissions)
        if extra:
            raise Forbidden(
                "granting these roles needs role.manage (they carry permissions you do not "
                f"have: {', '.join(sorted(extra))})",
                "roles",
            )
    phone_n = normalize_phone(phone) if phone else None
    email_n = normalize_email(email) if email else None
    ident = Identifier("phone", phone_n) if phone_n else Identifier("email", email_n)
    account = await find_account(session, kit, ident)
    if account is None:
        account = await create_account(
            session, kit, name=name, phone=phone_n, email=email_n, password=None
        )
    tenant_id = uuid.UUID(tenant.id)
    member = await repo.membership(session, account.id, tenant_id)
    if member is not None and member.status == "active":
        raise Conflict("this person is already a member", "phone" if phone_n else "email")
    if member is None:
        member = Membership(account_id=account.id, tenant_id=tenant_id, roles=roles,
                            status="invited")  # fmt: skip
        session.add(member)
    else:
        member.roles, member.status = roles, "invited"
    token, digest = new_refresh_token()
    session.add(
        Invitation(
            tenant_id=tenant_id, account_id=account.id, token_hash=digest, invited_by=inviter_id,
            expires_at=now() + timedelta(seconds=kit.settings.invitation_ttl),
        )
    )  # fmt: skip
    await session.flush()
    link = f"{kit.settings.invitation_url}?{urlencode({'tenant': tenant.slug, 'token': token})}"
    text = f"{tenant.name} invited you to join them on Anju: {link}"
    if phone_n:
        await senders.sms.send(phone_n, f"[Anju] {text}")
    else:
        await senders.email.send(email_n, f"Join {tenant.name} on Anju", text)
    return account, member


async def accept(
    session: AsyncSession,
    kit: SecurityKit,
    tenant: TenantInfo,
    token: str,
    *,
    password: str,
    name: str | None = None,
    user_agent: str = "",
    ip: str = "",
) -> Tokens:
    inv = await session.scalar(
        select(Invitation)
        .where(Invitation.token_hash == refresh_hash(token or ""))
        .with_for_update()
    )
    t = now()
    if inv is None or str(inv.tenant_id) != tenant.id:
        raise AuthFailed("invalid invitation", "token")
    if inv.accepted_at is not None:
        raise AuthFailed("this invitation was already used", "token")
    if inv.expires_at <= t:
        raise AuthFailed("this invitation expired; ask for a new one", "token")
    account = await repo.account_for_update(session, inv.account_id)
    member = await repo.membership(session, inv.account_id, inv.tenant_id)
    if member is None or member.status != "invited":
        raise AuthFailed("this invitation was withdrawn", "token")
    if account.password_hash:
        # An existing person joining another tenant proves it is them.
        if not await verify_password(account.password_hash, password or ""):
            raise AuthFailed("enter the password of your existing Anju account", "password")
    else:
        if problem := password_problem(password or ""):
            raise ValidationFailed(problem, "password")
        account.password_hash = await hash_password(password)
    if name and name.strip():
        account.name = name.strip()[:100]
    member.status = "active"
    inv.accepted_at = t
    await session.flush()
    return await start_session(session, kit, account.id, tenant, user_agent=user_agent, ip=ip)
