"""Identity rules: accounts, sign-up, password sign-in with lockout, token rotation, sessions.
Never commits: the request owns the transaction (a refused sign-in still records the failure,
because refusals are returned as data and the operation commits)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Conflict, DomainError, ErrorCode, ValidationFailed
from api.identity import repository as repo
from api.identity.models import Account, Membership, RefreshToken
from api.ids import uuid7
from api.security.kit import SecurityKit
from api.security.passwords import hash_password, password_problem, verify_password
from api.security.tokens import new_refresh_token, refresh_hash
from tenants.provisioning import provision
from tenants.registry import (
    DEFAULT_CURRENCY,
    DEFAULT_LOCALE,
    DEFAULT_TIME_ZONE,
    TenantError,
    TenantInfo,
)

SHARED_SCOPE = "shared"

OnSuccess = Callable[[uuid.UUID], None]
"""Called with the account id once a sign-in step succeeds (the request records its actor)."""


class AuthFailed(DomainError):
    code = ErrorCode.UNAUTHENTICATED


class LockedOut(DomainError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, None)
        self.retry_after = retry_after


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- identifiers


def normalize_phone(raw: str, region: str = "CN") -> str:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed("invalid phone number", "phone") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed("invalid phone number", "phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationFailed("invalid email address", "email") from exc


@dataclass(frozen=True)
class Identifier:
    kind: str  # phone | email
    value: str


def parse_identifier(raw: str) -> Identifier:
    raw = (raw or "").strip()
    if not raw:
        raise ValidationFailed("phone or email is required", "identifier")
    if "@" in raw:
        try:
            return Identifier("email", normalize_email(raw))
        except ValidationFailed as exc:
            raise ValidationFailed("enter a valid phone number or email", "identifier") from exc
    try:
        return Identifier("phone", normalize_phone(raw))
    except ValidationFailed as exc:
        raise ValidationFailed("enter a valid phone number or email", "identifier") from exc


def _bidx(kit: SecurityKit, ident: Identifier) -> bytes:
    return kit.blind_index.digest(ident.value, scope=SHARED_SCOPE, column=ident.kind)


def _encrypt(kit: SecurityKit, account_id: uuid.UUID, column: str, value: str) -> bytes:
    return kit.cipher.encrypt(
        value, scope=SHARED_SCOPE, table="account", column=column, row_id=account_id
    )


def account_phone(kit: SecurityKit, account: Account) -> str | None:
    if account.phone_enc is None:
        return None
    return kit.cipher.decrypt(
        account.phone_enc, scope=SHARED_SCOPE, table="account", column="phone", row_id=account.id
    )


def account_email(kit: SecurityKit, account: Account) -> str | None:
    if account.email_enc is None:
        return None
    return kit.cipher.decrypt(
        account.email_enc, scope=SHARED_SCOPE, table="account", column="email", row_id=account.id
    )


async def find_account(
    session: AsyncSession, kit: SecurityKit, ident: Identifier
) -> Account | None:
    return await repo.account_by_bidx(session, ident.kind, _bidx(kit, ident))


async def account_for_update(session: AsyncSession, account_id: uuid.UUID) -> Account:
    """The account of a signed-in step, locked. Accounts are never deleted, so a token's
    account exists; should it not, the caller is told to sign in again."""
    account = await repo.account_for_update(session, account_id)
    if account is None:
        raise AuthFailed("sign in again")
    return account


async def create_account(
    session: AsyncSession,
    kit: SecurityKit,
    *,
    name: str,
    phone: str | None,
    email: str | None,
    password: str | None,
) -> Account:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("name is required", "name")
    if len(name) > 100:
        raise ValidationFailed("name must be at most 100 characters", "name")
    if not phone and not email:
        raise ValidationFailed("a phone number or an email is required", "phone")
    phone_n = normalize_phone(phone) if phone else None
    email_n = normalize_email(email) if email else None
    if password is not None and (problem := password_problem(password)):
        raise ValidationFailed(problem, "password")
    account = Account(id=uuid7(), name=name)
    for kind, value in (("phone", phone_n), ("email", email_n)):
        if value is None:
            continue
        ident = Identifier(kind, value)
        if await find_account(session, kit, ident) is not None:
            raise Conflict(f"an account with this {kind} already exists", kind)
        setattr(account, f"{kind}_enc", _encrypt(kit, account.id, kind, value))
        setattr(account, f"{kind}_bidx", _bidx(kit, ident))
    if password is not None:
        account.password_hash = await hash_password(password)
    try:
        async with session.begin_nested():
            session.add(account)
            await session.flush()
    except IntegrityError as exc:  # a concurrent twin
        raise Conflict("an account with this phone or email already exists", "phone") from exc
    return account


# ---------------------------------------------------------------- sessions and tokens


@dataclass(frozen=True)
class TotpChallenge:
    """Password accepted; send ``challenge_token`` with a TOTP code to finish signing in."""

    challenge_token: str
    expires_at: datetime


@dataclass(frozen=True)
class Tokens:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    session_id: uuid.UUID


async def _issue(
    session: AsyncSession,
    kit: SecurityKit,
    account_id: uuid.UUID,
    tenant: TenantInfo,
    family_id: uuid.UUID,
    *,
    user_agent: str,
    ip: str,
    refresh_expires_at: datetime | None = None,
) -> Tokens:
    token, digest = new_refresh_token()
    expires = refresh_expires_at or now() + timedelta(seconds=kit.settings.refresh_token_ttl)
    session.add(
        RefreshToken(
            family_id=family_id,
            account_id=account_id,
            tenant_id=uuid.UUID(tenant.id),
            token_hash=digest,
            issued_at=now(),
            expires_at=expires,
            user_agent=user_agent[:300],
            ip=ip[:64],
        )
    )
    await session.flush()
    access, exp = kit.tokens.issue(account_id, tenant.slug, family_id)
    return Tokens(access, datetime.fromtimestamp(exp, UTC), token, expires, family_id)


async def start_session(
    session: AsyncSession,
    kit: SecurityKit,
    account_id: uuid.UUID,
    tenant: TenantInfo,
    *,
    user_agent: str = "",
    ip: str = "",
) -> Tokens:
    return await _issue(session, kit, account_id, tenant, uuid7(), user_agent=user_agent, ip=ip)


async def rotate_refresh_token(
    session: AsyncSession,
    kit: SecurityKit,
    tenant: TenantInfo,
    token: str,
    *,
    user_agent: str = "",
    ip: str = "",
) -> Tokens:
    """Spend ``token`` and issue the next one of its family. A token spent before (stolen and
    replayed, or replayed by the thief after the owner refreshed) revokes the whole family."""
    row = await repo.refresh_token_for_update(session, refresh_hash(token or ""))
    t = now()
    if row is None or str(row.tenant_id) != tenant.id:
        raise AuthFailed("invalid refresh token")
    if row.revoked_at is not None:
        raise AuthFailed("this session was signed out")
    if row.used_at is not None:
        await repo.revoke_family(session, row.family_id, t)
        raise AuthFailed("refresh token reused: the session has been revoked, sign in again")
    if row.expires_at <= t:
        raise AuthFailed("the session expired, sign in again")
    roles = await repo.active_roles_in_session(
        session, row.account_id, uuid.UUID(tenant.id), row.family_id
    )
    if roles is None:
        raise AuthFailed("the membership is not active")
    row.used_at = t
    return await _issue(
        session,
        kit,
        row.account_id,
        tenant,
        row.family_id,
        user_agent=user_agent,
        ip=ip,
        refresh_expires_at=row.expires_at,  # rotation does not extend the session
    )


async def sign_out(session: AsyncSession, family_id: uuid.UUID) -> None:
    await repo.revoke_family(session, family_id, now())


async def revoke_own_session(
    session: AsyncSession, account_id: uuid.UUID, tenant_id: uuid.UUID, family_id: uuid.UUID
) -> bool:
    owner = await repo.family_owner(session, family_id)
    if owner != (account_id, tenant_id):
        return False
    await repo.revoke_family(session, family_id, now())
    return True


# ---------------------------------------------------------------- sign-up and sign-in


@dataclass(frozen=True, slots=True)
class SignUpForm:
    """What a new agency gives: its tenant, its first admin, and optionally the tenant's
    regional settings (None: the platform default)."""

    tenant_slug: str
    tenant_name: str
    name: str
    phone: str | None
    email: str | None
    password: str
    time_zone: str | None = None
    locale: str | None = None
    currency: str | None = None


class SignedUp(NamedTuple):
    tenant: TenantInfo
    account: Account
    tokens: Tokens


async def sign_up(
    session: AsyncSession,
    kit: SecurityKit,
    form: SignUpForm,
    *,
    user_agent: str = "",
    ip: str = "",
) -> SignedUp:
    """A new agency: tenant (provisioned with the form's regional settings), first admin
    account and membership, tokens; all in the caller's transaction."""
    if problem := password_problem(form.password or ""):
        raise ValidationFailed(problem, "password")
    account = await create_account(
        session, kit, name=form.name, phone=form.phone, email=form.email, password=form.password
    )
    conn = await session.connection()
    try:
        tenant = await provision(
            conn,
            form.tenant_slug,
            form.tenant_name,
            time_zone=DEFAULT_TIME_ZONE if form.time_zone is None else form.time_zone,
            locale=DEFAULT_LOCALE if form.locale is None else form.locale,
            currency=DEFAULT_CURRENCY if form.currency is None else form.currency,
        )
    except TenantError as exc:
        field = {"slug": "tenantSlug", "name": "tenantName"}.get(exc.field or "", exc.field)
        err = Conflict if exc.code == "CONFLICT" else ValidationFailed
        raise err(exc.message, field) from exc
    session.add(Membership(account_id=account.id, tenant_id=uuid.UUID(tenant.id), roles=["admin"]))
    await session.flush()
    tokens = await start_session(session, kit, account.id, tenant, user_agent=user_agent, ip=ip)
    return SignedUp(tenant, account, tokens)


async def sign_in_password(
    session: AsyncSession,
    kit: SecurityKit,
    tenant: TenantInfo,
    identifier: str,
    password: str,
    *,
    user_agent: str = "",
    ip: str = "",
    on_success: OnSuccess | None = None,
) -> Tokens | TotpChallenge:
    """Refusals say the same thing whether the account, the membership or the password is
    wrong. After ``login_max_failures`` failures the account is locked, for a time that doubles
    with each further failure (up to ``login_lockout_max``)."""
    ident = parse_identifier(identifier)
    found = await find_account(session, kit, ident)
    account = await repo.account_for_update(session, found.id) if found else None
    t = now()
    if account is not None:
        refuse_if_locked(account, t)
    ok = await verify_password(account.password_hash if account else None, password or "")
    member = await repo.membership(session, account.id, uuid.UUID(tenant.id)) if account else None
    if account is None or not ok or member is None or member.status != "active":
        if account is not None and not ok:
            await record_failure(session, kit, account, t)
        raise AuthFailed("wrong phone/email or password")
    if account.totp_enabled_at is not None:
        # Second step: the password was right; a TOTP code must follow.
        token, exp = kit.tokens.issue_challenge(account.id, tenant.slug, "totp")
        return TotpChallenge(token, datetime.fromtimestamp(exp, UTC))
    account.failed_logins = 0
    account.locked_until = None
    if on_success is not None:
        on_success(account.id)
    return await start_session(session, kit, account.id, tenant, user_agent=user_agent, ip=ip)


async def record_failure(
    session: AsyncSession, kit: SecurityKit, account: Account, t: datetime
) -> None:
    """Count a failed sign-in step; past the limit, lock the account for a doubling time."""
    s = kit.settings
    account.failed_logins += 1
    over = account.failed_logins - s.login_max_failures
    if over >= 0:
        lock = min(s.login_lockout_base * (2**over), s.login_lockout_max)
        account.locked_until = t + timedelta(seconds=lock)
    await session.flush()


def refuse_if_locked(account: Account, t: datetime) -> None:
    if account.locked_until and account.locked_until > t:
        retry = int((account.locked_until - t).total_seconds()) + 1
        raise LockedOut(f"too many failed attempts; try again in {retry} s", retry)


async def prove_password(
    session: AsyncSession,
    kit: SecurityKit,
    account: Account,
    password: str,
    t: datetime,
    message: str = "wrong password",
) -> None:
    """A signed-in step that re-checks the account's password: a locked account is refused, a
    wrong password counts towards the lockout (the caller must not undo that write: no
    savepoint around it), a right one clears the count."""
    refuse_if_locked(account, t)
    if not await verify_password(account.password_hash, password or ""):
        await record_failure(session, kit, account, t)
        raise AuthFailed(message, "password")
    account.failed_logins, account.locked_until = 0, None
