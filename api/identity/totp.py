"""TOTP second factor (RFC 6238, 30-second steps, 6 digits, one step of clock drift).

Enrolment: ``enroll`` stores a new encrypted secret (not yet active) and returns it with an
otpauth:// URI for the authenticator app; ``confirm`` with a valid code activates it. Sign-in:
a correct password for an account with TOTP gives a 5-minute challenge token instead of
tokens; ``complete_sign_in`` checks a code against it. A code is accepted once (its time step
is remembered), and wrong codes count towards the same lockout as wrong passwords."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pyotp
from sqlalchemy.ext.asyncio import AsyncSession

from api.identity import repository as repo
from api.identity.models import Account
from api.identity.service import (
    SHARED_SCOPE,
    AuthFailed,
    LockedOut,
    OnSuccess,
    Tokens,
    account_for_update,
    now,
    record_failure,
    start_session,
)
from api.security.kit import SecurityKit
from api.security.tokens import InvalidToken
from tenants.registry import TenantInfo

PURPOSE = "totp"
ISSUER = "Anju"


class Enrollment(NamedTuple):
    secret: str
    otpauth_uri: str


def _where(account_id: uuid.UUID) -> dict[str, Any]:
    return {"scope": SHARED_SCOPE, "table": "account", "column": "totp", "row_id": account_id}


def _secret(kit: SecurityKit, account: Account) -> str | None:
    if account.totp_secret_enc is None:
        return None
    return kit.cipher.decrypt(account.totp_secret_enc, **_where(account.id))


def check_code(kit: SecurityKit, account: Account, code: str) -> int | None:
    """The accepted time step, or None (wrong, malformed, or already used)."""
    secret = _secret(kit, account)
    code = (code or "").strip()
    if secret is None or not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    step_now = int(datetime.now(UTC).timestamp()) // totp.interval
    for step in (step_now - 1, step_now, step_now + 1):
        if totp.generate_otp(step) == code:
            if account.totp_last_step is not None and step <= account.totp_last_step:
                return None  # replay
            return step
    return None


async def enroll(
    session: AsyncSession, kit: SecurityKit, account_id: uuid.UUID, label: str
) -> Enrollment:
    account = await account_for_update(session, account_id)
    if account.totp_enabled_at is not None:
        raise AuthFailed("two-factor sign-in is already on; turn it off first", "code")
    secret = pyotp.random_base32()
    account.totp_secret_enc = kit.cipher.encrypt(secret, **_where(account.id))
    account.totp_last_step = None
    await session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name=ISSUER)
    return Enrollment(secret, uri)


async def confirm(
    session: AsyncSession, kit: SecurityKit, account_id: uuid.UUID, code: str
) -> None:
    account = await account_for_update(session, account_id)
    if account.totp_secret_enc is None:
        raise AuthFailed("start enrolment first", "code")
    step = check_code(kit, account, code)
    if step is None:
        raise AuthFailed("wrong code", "code")
    account.totp_last_step = step
    account.totp_enabled_at = now()
    await session.flush()


async def disable(
    session: AsyncSession, kit: SecurityKit, account_id: uuid.UUID, code: str
) -> None:
    account = await account_for_update(session, account_id)
    if account.totp_enabled_at is None:
        raise AuthFailed("two-factor sign-in is not on", "code")
    step = check_code(kit, account, code)
    if step is None:
        raise AuthFailed("wrong code", "code")
    account.totp_secret_enc = None
    account.totp_enabled_at = None
    account.totp_last_step = step
    await session.flush()


async def complete_sign_in(
    session: AsyncSession,
    kit: SecurityKit,
    tenant: TenantInfo,
    challenge: str,
    code: str,
    *,
    user_agent: str = "",
    ip: str = "",
    on_success: OnSuccess | None = None,
) -> Tokens:
    try:
        account_id = kit.tokens.verify_challenge(challenge or "", tenant.slug, PURPOSE)
    except InvalidToken as exc:
        raise AuthFailed("the sign-in challenge is invalid or expired; sign in again") from exc
    account = await repo.account_for_update(session, account_id)
    t = now()
    if account is None or account.totp_enabled_at is None:
        raise AuthFailed("sign in again")
    if account.locked_until and account.locked_until > t:
        retry = int((account.locked_until - t).total_seconds()) + 1
        raise LockedOut(f"too many failed attempts; try again in {retry} s", retry)
    step = check_code(kit, account, code)
    if step is None:
        await record_failure(session, kit, account, t)
        raise AuthFailed("wrong code", "code")
    member = await repo.membership(session, account.id, uuid.UUID(tenant.id))
    if member is None or member.status != "active":
        raise AuthFailed("sign in again")
    account.totp_last_step = step
    account.failed_logins = 0
    account.locked_until = None
    if on_success is not None:
        on_success(account.id)
    return await start_session(session, kit, account.id, tenant, user_agent=user_agent, ip=ip)
