"""All queries of the identity domain (shared schema, plus the tenant's custom roles)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.identity.models import Account, Membership, RefreshToken, Role


async def account_by_bidx(session: AsyncSession, column: str, digest: bytes) -> Account | None:
    col = Account.phone_bidx if column == "phone" else Account.email_bidx
    return await session.scalar(select(Account).where(col == digest))


async def account(session: AsyncSession, account_id: uuid.UUID) -> Account | None:
    return await session.get(Account, account_id)


async def account_for_update(session: AsyncSession, account_id: uuid.UUID) -> Account | None:
    return await session.scalar(select(Account).where(Account.id == account_id).with_for_update())


async def membership(
    session: AsyncSession, account_id: uuid.UUID, tenant_id: uuid.UUID
) -> Membership | None:
    return await session.scalar(
        select(Membership).where(
            Membership.account_id == account_id, Membership.tenant_id == tenant_id
        )
    )


async def active_roles_in_session(
    session: AsyncSession, account_id: uuid.UUID, tenant_id: uuid.UUID, family_id: uuid.UUID
) -> list[str] | None:
    """Roles of an active membership whose sign-in session is not revoked; None otherwise."""
    row = await member_in_session(session, account_id, tenant_id, family_id)
    return row[0] if row else None


async def member_in_session(
    session: AsyncSession, account_id: uuid.UUID, tenant_id: uuid.UUID, family_id: uuid.UUID
) -> tuple[list[str], bool] | None:
    """(roles, TOTP on) of an active membership whose session is not revoked; None otherwise.
    One statement: it runs on every authenticated operation."""
    live = exists().where(
        RefreshToken.family_id == family_id,
        RefreshToken.account_id == account_id,
        RefreshToken.revoked_at.is_(None),
    )
    row = (
        await session.execute(
            select(Membership.roles, Account.totp_enabled_at.is_not(None))
            .join(Account, Account.id == Membership.account_id)
            .where(
                Membership.account_id == account_id,
                Membership.tenant_id == tenant_id,
                Membership.status == "active",
                live,
            )
        )
    ).first()
    return (list(row[0]), bool(row[1])) if row else None


async def custom_roles(session: AsyncSession, keys: Sequence[str]) -> Sequence[Role]:
    return (await session.scalars(select(Role).where(Role.key.in_(keys)))).all()


async def refresh_token_for_update(session: AsyncSession, token_hash: bytes) -> RefreshToken | None:
    return await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    )


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> int:
    res = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    # An UPDATE without RETURNING executes to a CursorResult; Session.execute is typed Result.
    return cast(CursorResult[Any], res).rowcount


class SessionRow(NamedTuple):
    family_id: uuid.UUID
    started_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str
    ip: str


async def sessions_of(
    session: AsyncSession, account_id: uuid.UUID, tenant_id: uuid.UUID, now: datetime
) -> list[SessionRow]:
    """One row per live session (family): started, last refreshed, expiry, device."""
    stmt = (
        select(
            RefreshToken.family_id,
            func.min(RefreshToken.issued_at).label("started_at"),
            func.max(RefreshToken.issued_at).label("last_used_at"),
            func.max(RefreshToken.expires_at).label("expires_at"),
            func.max(RefreshToken.user_agent).label("user_agent"),
            func.max(RefreshToken.ip).label("ip"),
        )
        .where(RefreshToken.account_id == account_id, RefreshToken.tenant_id == tenant_id)
        .group_by(RefreshToken.family_id)
        .having(func.bool_and(RefreshToken.revoked_at.is_(None)))
        .having(func.max(RefreshToken.expires_at) > now)
        .order_by(func.max(RefreshToken.issued_at).desc())
    )
    return [SessionRow(*row) for row in (await session.execute(stmt)).all()]


async def family_owner(
    session: AsyncSession, family_id: uuid.UUID
) -> tuple[uuid.UUID, uuid.UUID] | None:
    row = (
        await session.execute(
            select(RefreshToken.account_id, RefreshToken.tenant_id)
            .where(RefreshToken.family_id == family_id)
            .limit(1)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def revoke_account_sessions(
    session: AsyncSession, account_id: uuid.UUID, now: datetime, keep: uuid.UUID | None = None
) -> int:
    """Revoke every live session of an account, in every tenant (a password is global), except
    the session ``keep``; returns the number of sessions revoked."""
    stmt = (
        update(RefreshToken)
        .where(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(RefreshToken.family_id)
    )
    if keep is not None:
        stmt = stmt.where(RefreshToken.family_id != keep)
    return len(set((await session.execute(stmt)).scalars().all()))
