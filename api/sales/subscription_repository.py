"""All queries of subscriptions (认购) and the requests they wait on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.client.models import Client
from api.payment.models import Payment
from api.sales.models import (
    OPEN_SUBSCRIPTION,
    Pledge,
    Subscription,
    SubscriptionRequest,
)


async def open_subscription_id(session: AsyncSession, unit_id: uuid.UUID) -> uuid.UUID | None:
    """The open subscription (pending approval or active) holding the unit, if any."""
    return await session.scalar(
        select(Subscription.id).where(
            Subscription.unit_id == unit_id, Subscription.status.in_(OPEN_SUBSCRIPTION)
        )
    )


async def visible_subscription(
    session: AsyncSession,
    subscription_id: uuid.UUID,
    scope: ColumnElement[bool],
    *,
    lock: bool = False,
) -> Subscription | None:
    """The subscription if its client is within ``scope`` (a WHERE clause on ``Client``)."""
    stmt = (
        select(Subscription)
        .join(Client, Client.id == Subscription.client_id)
        .where(Subscription.id == subscription_id, scope)
    )
    if lock:
        stmt = stmt.with_for_update(of=Subscription)
    return (await session.scalars(stmt)).first()


def overdue(now: datetime) -> ColumnElement[bool]:
    """An active subscription whose contract was not signed by its deadline."""
    return and_(Subscription.status == "active", Subscription.sign_deadline < now)


async def page(
    session: AsyncSession,
    scope: ColumnElement[bool],
    *,
    project_id: uuid.UUID | None,
    status: str | None,
    client_id: uuid.UUID | None,
    is_overdue: bool | None,
    now: datetime,
    after: uuid.UUID | None,
    limit: int,
) -> list[Subscription]:
    """Subscriptions the caller may see, newest first (ids are time-ordered), after ``after``."""
    stmt = (
        select(Subscription)
        .join(Client, Client.id == Subscription.client_id)
        .where(scope)
        .order_by(Subscription.id.desc())
        .limit(limit)
    )
    if project_id is not None:
        stmt = stmt.where(Subscription.project_id == project_id)
    if status is not None:
        stmt = stmt.where(Subscription.status == status)
    if client_id is not None:
        stmt = stmt.where(Subscription.client_id == client_id)
    if is_overdue is True:
        stmt = stmt.where(overdue(now))
    elif is_overdue is False:
        stmt = stmt.where(~overdue(now))
    if after is not None:
        stmt = stmt.where(Subscription.id < after)
    return list((await session.scalars(stmt)).all())


async def paid_deposit(session: AsyncSession, unit_id: uuid.UUID) -> Payment | None:
    """The unit's paid deposit (its reservation's), locked."""
    return (
        await session.scalars(
            select(Payment)
            .where(Payment.unit_id == unit_id, Payment.kind == "deposit", Payment.status == "paid")
            .order_by(Payment.paid_at.desc())
            .with_for_update()
        )
    ).first()


async def active_pledge(
    session: AsyncSession, project_id: uuid.UUID, client_id: uuid.UUID
) -> Pledge | None:
    return (
        await session.scalars(
            select(Pledge)
            .where(
                Pledge.project_id == project_id,
                Pledge.client_id == client_id,
                Pledge.status == "active",
            )
            .with_for_update()
        )
    ).first()


async def pending_request(
    session: AsyncSession, subscription_id: uuid.UUID, kind: str
) -> SubscriptionRequest | None:
    return (
        await session.scalars(
            select(SubscriptionRequest)
            .where(
                SubscriptionRequest.subscription_id == subscription_id,
                SubscriptionRequest.kind == kind,
                SubscriptionRequest.status == "pending",
            )
            .with_for_update()
        )
    ).first()


async def pending_requests(
    session: AsyncSession, subscription_id: uuid.UUID
) -> list[SubscriptionRequest]:
    return list(
        (
            await session.scalars(
                select(SubscriptionRequest)
                .where(
                    SubscriptionRequest.subscription_id == subscription_id,
                    SubscriptionRequest.status == "pending",
                )
                .with_for_update()
            )
        ).all()
    )


async def request_by_id(session: AsyncSession, request_id: uuid.UUID) -> SubscriptionRequest | None:
    return await session.get(
        SubscriptionRequest, request_id, with_for_update=True, populate_existing=True
    )


async def requests_of(
    session: AsyncSession, subscription_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[SubscriptionRequest]]:
    """The requests of each subscription, oldest first (one query: a DataLoader's batch)."""
    rows = await session.scalars(
        select(SubscriptionRequest)
        .where(SubscriptionRequest.subscription_id.in_(list(subscription_ids)))
        .order_by(SubscriptionRequest.id)
    )
    out: dict[uuid.UUID, list[SubscriptionRequest]] = {}
    for r in rows:
        out.setdefault(r.subscription_id, []).append(r)
    return out


async def add(session: AsyncSession, *rows: object) -> None:
    session.add_all(rows)
    await session.flush()


async def overdue_locked(session: AsyncSession, now: datetime, limit: int) -> list[Subscription]:
    """Active subscriptions past their deadline, locked (ones another transaction holds are
    skipped: the next run takes them)."""
    return list(
        (
            await session.scalars(
                select(Subscription)
                .where(overdue(now))
                .order_by(Subscription.sign_deadline)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
