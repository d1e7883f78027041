"""Inviting staff: the admin names a phone or an email and roles; the person gets a link with a
single-use token (7 days), accepts it, sets a password (or proves the one of the account they
already have) and is signed in.

An invitation keeps only what the inviter typed (name, roles, phone and/or email, encrypted)
and points at no account until it is accepted: inviting a phone or email that already has an
Anju account (a member of another tenant, say) shows the inviter nothing about that account,
and the person appears among the tenant's members only once they accept. The one thing an
inviter learns is that someone is already an active member of their own tenant."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Conflict, Forbidden, NotFound, ValidationFailed
from api.identity import repository as repo
from api.identity.auth import resolve_permissions
from api.identity.models import Account, Invitation, Membership
from api.identity.roles import validate_roles
from api.identity.service import (
    SHARED_SCOPE,
    AuthFailed,
    Identifier,
    Tokens,
    create_account,
    find_account,
    normalize_email,
    normalize_phone,
    now,
    prove_password,
    start_session,
)
from api.ids import uuid7
from api.notify import Senders
from api.security.kit import SecurityKit
from api.security.passwords import hash_password, password_problem
from api.security.tokens import new_refresh_token, refresh_hash
from tenants.registry import TenantInfo


@dataclass(frozen=True)
class InvitationView:
    """An invitation as the inviter typed it."""

    id: uuid.UUID
    name: str
    phone: str | None
    email: str | None
    roles: list[str]
    expires_at: datetime


def _typed(kit: SecurityKit, inv: Invitation) -> dict[str, str]:
    if inv.ident_enc is None:
        return {}
    return json.loads(
        kit.cipher.decrypt(
            inv.ident_enc, scope=SHARED_SCOPE, table="invitation", column="ident", row_id=inv.id
        )
    )


def view(kit: SecurityKit, inv: Invitation) -> InvitationView:
    typed = _typed(kit, inv)
    return InvitationView(
        inv.id, inv.name, typed.get("phone"), typed.get("email"), list(inv.roles), inv.expires_at
    )


async def invite(
    session: AsyncSession,
    kit: SecurityKit,
    senders: Senders,
    tenant: TenantInfo,
    inviter_id: uuid.UUID,
    *,
    name: str,
    phone: str | None,
    email: str | None,
    roles: list[str],
    inviter_permissions: frozenset[str] | None = None,
) -> InvitationView:
    """Record an invitation (replacing an earlier pending one for the same phone or email)
    and send the link by SMS (phone) or email."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("name must be 1 to 100 characters", "name")
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
    if phone_n:
        ident = Identifier("phone", phone_n)
    else:
        assert email_n is not None  # a phone or an email was required above
        ident = Identifier("email", email_n)
    tenant_id = uuid.UUID(tenant.id)
    account = await find_account(session, kit, ident)
    member = await repo.membership(session, account.id, tenant_id) if account else None
    if member is not None and member.status == "active":
        raise Conflict("this person is already a member", ident.kind)
    bidx = kit.blind_index.digest(ident.value, scope=SHARED_SCOPE, column=ident.kind)
    t = now()
    await session.execute(
        update(Invitation)
        .where(
            Invitation.tenant_id == tenant_id,
            Invitation.ident_bidx == bidx,
            Invitation.accepted_at.is_(None),
            Invitation.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=t)
    )
    token, digest = new_refresh_token()
    inv = Invitation(
        id=uuid7(),
        tenant_id=tenant_id,
        token_hash=digest,
        invited_by=inviter_id,
        name=name,
        roles=roles,
        ident_kind=ident.kind,
        ident_bidx=bidx,
        expires_at=t + timedelta(seconds=kit.settings.invitation_ttl),
    )
    typed = {k: v for k, v in (("phone", phone_n), ("email", email_n)) if v}
    inv.ident_enc = kit.cipher.encrypt(
        json.dumps(typed), scope=SHARED_SCOPE, table="invitation", column="ident", row_id=inv.id
    )
    session.add(inv)
    await session.flush()
    link = f"{kit.settings.invitation_url}?{urlencode({'tenant': tenant.slug, 'token': token})}"
    text = f"{tenant.name} invited you to join them on Anju: {link}"
    if phone_n:
        await senders.sms.send(phone_n, f"[Anju] {text}")
    else:
        assert email_n is not None  # a phone or an email was required above
        await senders.email.send(email_n, f"Join {tenant.name} on Anju", text)
    return view(kit, inv)


async def pending(
    session: AsyncSession, kit: SecurityKit, tenant_id: uuid.UUID
) -> list[InvitationView]:
    """The tenant's pending invitations, newest first. Those made before shared 0013 kept
    nothing typed: they are listed (so they can be withdrawn) with the name of the account
    they made and the roles of its invited membership, and no phone or email."""
    rows = await session.execute(
        select(Invitation, Account.name, Membership.roles)
        .outerjoin(Account, Account.id == Invitation.account_id)
        .outerjoin(
            Membership,
            (Membership.account_id == Invitation.account_id)
            & (Membership.tenant_id == Invitation.tenant_id),
        )
        .where(
            Invitation.tenant_id == tenant_id,
            Invitation.accepted_at.is_(None),
            Invitation.withdrawn_at.is_(None),
            Invitation.expires_at > now(),
            Invitation.ident_enc.is_not(None) | (Membership.status == "invited"),
        )
        .order_by(Invitation.created_at.desc())
    )
    return [
        view(kit, inv)
        if inv.ident_enc is not None
        else InvitationView(inv.id, name, None, None, list(roles), inv.expires_at)
        for inv, name, roles in rows
    ]


async def withdraw(session: AsyncSession, tenant_id: uuid.UUID, invitation_id: uuid.UUID) -> None:
    inv = await session.get(Invitation, invitation_id, with_for_update=True)
    if inv is None or inv.tenant_id != tenant_id or inv.accepted_at or inv.withdrawn_at:
        raise NotFound("no pending invitation with this id", "id")
    inv.withdrawn_at = now()
    await session.flush()


async def _invitee(
    session: AsyncSession, kit: SecurityKit, inv: Invitation
) -> tuple[Account | None, dict[str, str]]:
    """(account or None, typed identifiers): the account the invitation is for, found only now."""
    if inv.account_id is not None:  # an invitation made before invitations kept what was typed
        return await repo.account_for_update(session, inv.account_id), {}
    typed = _typed(kit, inv)
    # Invitations without an account are those that keep what was typed: they name its kind.
    assert inv.ident_kind is not None
    found = await find_account(session, kit, Identifier(inv.ident_kind, typed[inv.ident_kind]))
    return (await repo.account_for_update(session, found.id) if found else None), typed


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
    if inv.withdrawn_at is not None:
        raise AuthFailed("this invitation was withdrawn", "token")
    if inv.expires_at <= t:
        raise AuthFailed("this invitation expired; ask for a new one", "token")
    account, typed = await _invitee(session, kit, inv)
    member = await repo.membership(session, account.id, inv.tenant_id) if account else None
    if inv.account_id is not None and (member is None or member.status != "invited"):
        raise AuthFailed("this invitation was withdrawn", "token")
    if account is not None and account.password_hash:
        # An existing person joining another tenant proves it is them. Outside any savepoint
        # (the resolver has none): a wrong password counts towards the sign-in lockout, as
        # on signIn, and a locked account is refused.
        await prove_password(
            session, kit, account, password, t, "enter the password of your existing Anju account"
        )
    elif problem := password_problem(password or ""):
        raise ValidationFailed(problem, "password")
    # Nothing was written above but a counted failure; what follows refuses nothing.
    if account is None:
        # A new account gets only the identifier the link was sent to (accepting proves it).
        # The other one the inviter may have typed was never verified: attached, it would let
        # an inviter who typed their own address reset this account's password through it.
        kind = inv.ident_kind
        assert kind is not None  # no account: an invitation that keeps what was typed (_invitee)
        link: dict[str, str | None] = {"phone": None, "email": None, kind: typed[kind]}
        account = await create_account(
            session,
            kit,
            name=(name or "").strip() or inv.name,
            phone=link["phone"],
            email=link["email"],
            password=password,
        )
    else:
        if not account.password_hash:
            # Made by an invitation from before 0013 with all the inviter typed, and never
            # used: it keeps only the identifier this link went to (the phone, when those
            # invitations had one), for the same reason as above.
            account.password_hash = await hash_password(password)
            sent_to = inv.ident_kind or ("phone" if account.phone_enc is not None else "email")
            other = "email" if sent_to == "phone" else "phone"
            setattr(account, f"{other}_enc", None)
            setattr(account, f"{other}_bidx", None)
        if name and name.strip():
            account.name = name.strip()[:100]
    if member is None:
        member = Membership(
            account_id=account.id, tenant_id=inv.tenant_id, roles=list(inv.roles), status="active"
        )
        session.add(member)
    elif member.status != "active":  # invited (an invitation made before), or disabled and
        # invited again (disabling withdraws the pending invitations of the person)
        member.status = "active"
        if inv.account_id is None:  # those from before 0013 keep the roles of the membership
            member.roles = list(inv.roles)
    inv.accepted_at, inv.account_id = t, account.id
    await session.flush()
    return await start_session(session, kit, account.id, tenant, user_agent=user_agent, ip=ip)
