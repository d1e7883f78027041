"""Changing and resetting a password.

* ``change_password``: a signed-in account gives its current password (a wrong one counts
  towards the sign-in lockout, and a locked account is refused) and a new one (the sign-up
  rules); the account's other sessions, in every tenant, are revoked; this one stays.
* A reset is requested with a phone (a one-time SMS code, the machinery of ``sms``) or an email
  (a one-time link: a random token, only its hash kept, single use, expiring). The answer is
  the same whether or not the phone or email belongs to an active member of the tenant, the
  same limits apply either way (per identifier, per IP), and the code or link goes out only
  once the request has committed, a sender's failure logged, not answered (an SMTP server
  that is down cannot tell a known address from an unknown one). Completing a reset sets the
  new password, clears the lockout and revokes every session of the account; it does not sign
  in (an account with TOTP still needs its second factor to sign in).
Never commits; a refused step keeps what it recorded (a wrong code's attempt, a failure)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ValidationFailed
from api.identity import repository as repo
from api.identity import sms
from api.identity.models import Account, PasswordReset, SmsCode
from api.identity.service import (
    SHARED_SCOPE,
    AuthFailed,
    OnSuccess,
    account_for_update,
    account_phone,
    now,
    parse_identifier,
    prove_password,
)
from api.ids import uuid7
from api.notify import Senders
from api.security.kit import SecurityKit
from api.security.passwords import hash_password, password_problem, verify_password
from api.security.tokens import new_refresh_token, refresh_hash
from tenants.registry import TenantInfo


def _new_password_problem(password: str) -> None:
    if problem := password_problem(password or ""):
        raise ValidationFailed(problem, "newPassword")


async def _set_password(
    session: AsyncSession,
    kit: SecurityKit,
    account: Account,
    password: str,
    t: datetime,
    keep: uuid.UUID | None,
) -> int:
    """New hash, lockout cleared, pending reset codes and links spent, sessions revoked."""
    account.password_hash = await hash_password(password)
    account.failed_logins = 0
    account.locked_until = None
    await session.execute(
        update(PasswordReset)
        .where(PasswordReset.account_id == account.id, PasswordReset.used_at.is_(None))
        .values(used_at=t)
    )
    phone = account_phone(kit, account)
    if phone is not None:
        bidx = kit.blind_index.digest(phone, scope=SHARED_SCOPE, column="phone")
        await session.execute(
            update(SmsCode)
            .where(
                SmsCode.phone_bidx == bidx, SmsCode.purpose == "reset", SmsCode.used_at.is_(None)
            )
            .values(used_at=t)
        )
    revoked = await repo.revoke_account_sessions(session, account.id, t, keep=keep)
    await session.flush()
    return revoked


async def change_password(
    session: AsyncSession,
    kit: SecurityKit,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    current: str,
    new: str,
) -> int:
    """Returns the number of other sessions revoked."""
    account = await account_for_update(session, account_id)
    t = now()
    await prove_password(session, kit, account, current, t)
    _new_password_problem(new)
    if await verify_password(account.password_hash, new):
        raise ValidationFailed("the new password must differ from the current one", "newPassword")
    return await _set_password(session, kit, account, new, t, keep=session_id)


async def request_reset(
    session: AsyncSession,
    kit: SecurityKit,
    senders: Senders,
    tenant: TenantInfo,
    identifier: str,
    ip: str,
    *,
    later: sms.Later | None = None,
) -> sms.CodeSent:
    """A code by SMS (phone) or a link by email. Returns (expires at, seconds before a resend),
    the same whether or not the identifier belongs to an active member here, and whether or
    not the message could be sent (``later``: see ``sms.send_quietly``)."""
    ident = parse_identifier(identifier)
    if ident.kind == "phone":
        return await sms.request_code(
            session, kit, senders.sms, tenant, ident.value, ip, purpose="reset", later=later
        )
    s = kit.settings
    bidx = kit.blind_index.digest(ident.value, scope=SHARED_SCOPE, column="email")
    t = await sms.check_send_limits(session, kit, PasswordReset, PasswordReset.email_bidx, bidx, ip)
    account = await sms.active_member(session, kit, tenant, ident)
    token, digest = new_refresh_token()
    row = PasswordReset(
        id=uuid7(),
        email_bidx=bidx,
        account_id=account.id if account else None,
        tenant_id=uuid.UUID(tenant.id),
        token_hash=digest,
        expires_at=t + timedelta(seconds=s.password_reset_ttl),
        ip=ip[:64],
        created_at=t,
    )
    session.add(row)
    await session.flush()
    if account is not None:
        link = f"{s.password_reset_url}?{urlencode({'tenant': tenant.slug, 'token': token})}"
        minutes = max(1, s.password_reset_ttl // 60)
        subject = f"Reset your {tenant.name} password on Anju"
        body = (
            f"Someone (we hope you) asked to reset the password of your Anju account at "
            f"{tenant.name}. Open this link within {minutes} minutes to choose a new one:\n"
            f"{link}\nIf it was not you, ignore this email; your password stays as it is."
        )
        await sms.send_quietly(
            later, lambda: senders.email.send(ident.value, subject, body), "reset link email"
        )
    return sms.CodeSent(row.expires_at, s.sms_resend_after)


async def reset_with_code(
    session: AsyncSession,
    kit: SecurityKit,
    tenant: TenantInfo,
    phone: str,
    code: str,
    new: str,
    *,
    on_success: OnSuccess | None = None,
) -> int:
    """Returns the number of sessions revoked."""
    _new_password_problem(new)
    found = await sms.spend_code(session, kit, tenant, phone, code, purpose="reset")
    account = await account_for_update(session, found.id)
    if on_success is not None:
        on_success(account.id)
    return await _set_password(session, kit, account, new, now(), keep=None)


async def reset_with_token(
    session: AsyncSession,
    kit: SecurityKit,
    tenant: TenantInfo,
    token: str,
    new: str,
    *,
    on_success: OnSuccess | None = None,
) -> int:
    """Returns the number of sessions revoked."""
    _new_password_problem(new)
    row = await session.scalar(
        select(PasswordReset)
        .where(PasswordReset.token_hash == refresh_hash(token or ""))
        .with_for_update()
    )
    t = now()
    if row is None or row.account_id is None or str(row.tenant_id) != tenant.id:
        raise AuthFailed("invalid reset link; ask for a new one", "token")
    if row.used_at is not None:
        raise AuthFailed("this reset link was already used; ask for a new one", "token")
    if row.expires_at <= t:
        raise AuthFailed("this reset link expired; ask for a new one", "token")
    row.used_at = t
    member = await repo.membership(session, row.account_id, row.tenant_id)
    if member is None or member.status != "active":
        raise AuthFailed("invalid reset link; ask for a new one", "token")
    account = await account_for_update(session, row.account_id)
    if on_success is not None:
        on_success(account.id)
    return await _set_password(session, kit, account, new, t, keep=None)
