"""One-time SMS codes, to sign in or to reset a password: 6 digits, valid 5 minutes, single
use, good only for what they were sent for, at most 5 attempts per code; codes per phone and
per IP are rate-limited (the counts live in the database, so the
limits hold across gateway processes)."""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import ColumnElement

from api.errors import ValidationFailed
from api.identity import repository as repo
from api.identity.models import Account, PasswordReset, SmsCode
from api.identity.service import (
    SHARED_SCOPE,
    AuthFailed,
    Identifier,
    LockedOut,
    OnSuccess,
    Tokens,
    find_account,
    normalize_phone,
    now,
    start_session,
)
from api.ids import uuid7
from api.notify.sms import SmsSender
from api.security.kit import SecurityKit
from tenants.registry import TenantInfo

log = structlog.get_logger("anju.identity")

Send = Callable[[], Awaitable[Any]]
Later = Callable[[Callable[[], Awaitable[None]]], None]
"""Runs ``await fn()`` once the caller's transaction has committed (``Context.after_commit``)."""


class CodeSent(NamedTuple):
    """The answer to a request for a code or a link, the same whether or not it went out."""

    expires_at: datetime
    resend_after: int


def _code_hmac(kit: SecurityKit, row_id: uuid.UUID, code: str) -> bytes:
    return kit.blind_index.digest(f"{row_id}:{code}", scope=SHARED_SCOPE, column="sms_code")


async def _lock(session: AsyncSession, digest: bytes) -> None:
    """A transaction-scoped advisory lock keyed by a digest."""
    key = int.from_bytes(digest[:8], "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def _retry(until: datetime, t: datetime) -> int:
    return max(1, int((until - t).total_seconds()) + 1)


async def check_send_limits(
    session: AsyncSession,
    kit: SecurityKit,
    model: type[SmsCode] | type[PasswordReset] | type[Any],  # any table with created_at and ip
    bidx_column: InstrumentedAttribute[bytes],
    bidx: bytes,
    ip: str,
    *same_kind: ColumnElement[bool],
) -> datetime:
    """Refuse a new code or link to ``bidx`` (a phone's or an email's blind index) sent too
    soon after the last one of the same kind (``same_kind``: extra conditions), beyond the
    hourly count for the identifier (all kinds), or beyond the hourly count from ``ip``.
    Requests for one identifier and from one address are serialised (advisory locks), so two
    concurrent ones cannot both pass. Returns the time now."""
    s = kit.settings
    await _lock(session, bidx)
    if ip:
        await _lock(session, kit.blind_index.digest(ip[:64], scope=SHARED_SCOPE, column="sms_ip"))
    t = now()
    hour_ago = t - timedelta(hours=1)
    last = await session.scalar(
        select(func.max(model.created_at)).where(bidx_column == bidx, *same_kind)
    )
    if last is not None and (t - last).total_seconds() < s.sms_resend_after:
        until = last + timedelta(seconds=s.sms_resend_after)
        raise LockedOut("a code was just sent; wait before asking again", _retry(until, t))
    recent = (
        await session.scalars(
            select(model.created_at)
            .where(bidx_column == bidx, model.created_at > hour_ago)
            .order_by(model.created_at)
        )
    ).all()
    if len(recent) >= s.sms_codes_per_phone_hour:
        until = recent[0] + timedelta(hours=1)
        raise LockedOut("too many requests for this phone or email; try later", _retry(until, t))
    if ip:
        by_ip = (
            await session.execute(
                select(func.count()).where(model.ip == ip[:64], model.created_at > hour_ago)
            )
        ).scalar_one()
        if by_ip >= s.sms_codes_per_ip_hour:
            raise LockedOut("too many requests from this network; try later", 3600)
    return t


async def active_member(
    session: AsyncSession, kit: SecurityKit, tenant: TenantInfo, ident: Identifier
) -> Account | None:
    """The account of ``ident`` when it is an active member of ``tenant``; None otherwise."""
    account = await find_account(session, kit, ident)
    member = await repo.membership(session, account.id, uuid.UUID(tenant.id)) if account else None
    return account if member is not None and member.status == "active" else None


MESSAGES = {
    "sign_in": "[Anju] {tenant}: your sign-in code is {code}, valid {minutes} minutes.",
    "reset": "[Anju] {tenant}: your password reset code is {code}, valid {minutes} minutes. "
    "If you did not ask for it, ignore this message.",
}


async def request_code(
    session: AsyncSession,
    kit: SecurityKit,
    sender: SmsSender,
    tenant: TenantInfo,
    phone_raw: str,
    ip: str,
    purpose: str = "sign_in",
    *,
    later: Later | None = None,
) -> CodeSent:
    """Send a code (for signing in, or for a password reset) when the phone belongs to an
    active member of the tenant. The answer is the same either way (no account enumeration).
    Returns (expires at, seconds before a resend). ``later``: see ``send_quietly``."""
    s = kit.settings
    phone = normalize_phone(phone_raw or "")
    bidx = kit.blind_index.digest(phone, scope=SHARED_SCOPE, column="phone")
    t = await check_send_limits(
        session, kit, SmsCode, SmsCode.phone_bidx, bidx, ip, SmsCode.purpose == purpose
    )
    code = f"{secrets.randbelow(10**6):06d}"
    row = SmsCode(
        id=uuid7(),
        phone_bidx=bidx,
        tenant_id=uuid.UUID(tenant.id),
        expires_at=t + timedelta(seconds=s.sms_code_ttl),
        ip=ip[:64],
        created_at=t,
        purpose=purpose,
    )
    row.code_hmac = _code_hmac(kit, row.id, code)
    session.add(row)
    await session.flush()
    if await active_member(session, kit, tenant, Identifier("phone", phone)) is not None:
        minutes = max(1, s.sms_code_ttl // 60)
        text = MESSAGES[purpose].format(tenant=tenant.name, code=code, minutes=minutes)
        await send_quietly(later, lambda: sender.send(phone, text), f"sms {purpose} code")
    return CodeSent(row.expires_at, s.sms_resend_after)


async def send_quietly(later: Later | None, send: Send, what: str) -> None:
    """Send a code or link that only a known identifier gets, so that the answer cannot tell
    whether it went out: after the caller's transaction commits when ``later`` is given (the
    GraphQL operation's ``after_commit``; the row that counts the request is kept whatever
    happens to the message), at once otherwise; a sender's failure (SMTP or SMS provider down,
    a timeout) is logged, never raised."""

    async def run() -> None:
        try:
            await send()
        except Exception as exc:
            # The error's text may name the address: only its type is logged.
            log.warning("message not sent", what=what, error=type(exc).__name__)

    if later is None:
        await run()
    else:
        later(run)


async def spend_code(
    session: AsyncSession,
    kit: SecurityKit,
    tenant: TenantInfo,
    phone_raw: str,
    code: str,
    purpose: str = "sign_in",
) -> Account:
    """Check the latest code of ``purpose`` sent to the phone for this tenant and spend it;
    returns the active member it was sent to. A wrong code counts an attempt (kept even though
    the step is refused); the fifth wrong one burns the code."""
    try:
        phone = normalize_phone(phone_raw or "")
    except ValidationFailed as exc:
        raise ValidationFailed("invalid phone number", "phone") from exc
    bidx = kit.blind_index.digest(phone, scope=SHARED_SCOPE, column="phone")
    t = now()
    row = await session.scalar(
        select(SmsCode)
        .where(
            SmsCode.phone_bidx == bidx,
            SmsCode.tenant_id == uuid.UUID(tenant.id),
            SmsCode.purpose == purpose,
            SmsCode.used_at.is_(None),
        )
        .order_by(SmsCode.created_at.desc())
        .limit(1)
        .with_for_update()
    )
    if row is None or row.expires_at <= t:
        raise AuthFailed("the code expired or was never sent; request a new one", "code")
    if row.attempts >= kit.settings.sms_code_max_attempts:
        raise AuthFailed("too many wrong codes; request a new one", "code")
    given = (code or "").strip()
    if not (len(given) == 6 and given.isdigit()) or not hmac.compare_digest(
        _code_hmac(kit, row.id, given), row.code_hmac
    ):
        row.attempts += 1
        await session.flush()
        raise AuthFailed("wrong code", "code")
    row.used_at = t
    account = await active_member(session, kit, tenant, Identifier("phone", phone))
    if account is None:
        raise AuthFailed("wrong code", "code")
    return account


async def sign_in_with_code(
    session: AsyncSession,
    kit: SecurityKit,
    tenant: TenantInfo,
    phone_raw: str,
    code: str,
    *,
    user_agent: str = "",
    ip: str = "",
    on_success: OnSuccess | None = None,
) -> Tokens:
    """Sign in with the latest sign-in code sent to the phone (see ``spend_code``)."""
    account = await spend_code(session, kit, tenant, phone_raw, code)
    if on_success is not None:
        on_success(account.id)
    return await start_session(session, kit, account.id, tenant, user_agent=user_agent, ip=ip)
