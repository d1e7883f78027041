"""All queries of the sales domain (pledges)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, any_, func, not_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.client.models import Client, Showing
from api.payment.models import Payment
from api.sales.models import Pledge, PledgeQueue
from api.unit.models import Unit


@dataclass(frozen=True, slots=True)
class PledgeRow:
    """A pledge and whether it is genuine (诚意筹) now, computed by the query."""

    pledge: Pledge
    genuine: bool

    @property
    def id(self) -> uuid.UUID:
        return self.pledge.id


@dataclass(frozen=True, slots=True)
class PledgeCounts:
    """A project's pledges by status; the active ones split into genuine and padded."""

    active: int
    genuine: int
    padded: int
    withdrawn: int
    converted: int
    last_queue_number: int


def genuine() -> ColumnElement[bool]:
    """True for a pledge whose client did something for its project (docs/sales.md):
    a showing of one of the project's units that is done, a paid deposit on one of its units,
    or the pledge's own fee paid. A SQL expression, correlated to ``Pledge``."""
    showing_done = (
        select(Showing.id)
        .join(Unit, Unit.id == any_(Showing.unit_ids))
        .where(
            Showing.client_id == Pledge.client_id,
            Showing.status == "done",
            Unit.project_id == Pledge.project_id,
        )
        .exists()
    )
    deposit_paid = (
        select(Payment.id)
        .join(Unit, Unit.id == Payment.unit_id)
        .where(
            Payment.client_id == Pledge.client_id,
            Payment.kind == "deposit",
            Payment.status == "paid",
            Unit.project_id == Pledge.project_id,
        )
        .exists()
    )
    return Pledge.paid_at.is_not(None) | showing_done | deposit_paid


async def is_genuine(session: AsyncSession, pledge_id: uuid.UUID) -> bool:
    found = await session.scalar(select(genuine()).where(Pledge.id == pledge_id))
    return bool(found)


async def next_queue_number(session: AsyncSession, project_id: uuid.UUID) -> int:
    """The project's next queue number. The counter row stays locked until the transaction
    ends: concurrent registrations for one project take numbers one after the other, and a
    rolled-back registration gives its number back (gapless, never given twice)."""
    number = await session.scalar(
        insert(PledgeQueue)
        .values(project_id=project_id, last_number=1)
        .on_conflict_do_update(
            index_elements=[PledgeQueue.project_id],
            set_={"last_number": PledgeQueue.last_number + 1},
        )
        .returning(PledgeQueue.last_number)
    )
    assert number is not None, "an upsert returns its row"
    return int(number)


async def active_pledge_id(
    session: AsyncSession, project_id: uuid.UUID, client_id: uuid.UUID
) -> uuid.UUID | None:
    return await session.scalar(
        select(Pledge.id).where(
            Pledge.project_id == project_id,
            Pledge.client_id == client_id,
            Pledge.status == "active",
        )
    )


async def visible_pledge(
    session: AsyncSession, pledge_id: uuid.UUID, scope: ColumnElement[bool], *, lock: bool = False
) -> Pledge | None:
    """The pledge if its client is within ``scope`` (a WHERE clause on ``Client``)."""
    stmt = (
        select(Pledge)
        .join(Client, Client.id == Pledge.client_id)
        .where(Pledge.id == pledge_id, scope)
    )
    if lock:
        stmt = stmt.with_for_update(of=Pledge)
    return (await session.scalars(stmt)).first()


async def visible_rows(
    session: AsyncSession, ids: Sequence[uuid.UUID], scope: ColumnElement[bool]
) -> dict[uuid.UUID, PledgeRow]:
    rows = await session.execute(
        select(Pledge, genuine())
        .join(Client, Client.id == Pledge.client_id)
        .where(Pledge.id.in_(list(ids)), scope)
    )
    return {p.id: PledgeRow(p, bool(g)) for p, g in rows}


async def page(
    session: AsyncSession,
    scope: ColumnElement[bool],
    *,
    project_id: uuid.UUID,
    status: str | None,
    is_genuine: bool | None,
    client_id: uuid.UUID | None,
    after: int | None,
    limit: int,
) -> list[PledgeRow]:
    """A project's pledges in queue order, after queue number ``after``."""
    g = genuine()
    stmt = (
        select(Pledge, g)
        .join(Client, Client.id == Pledge.client_id)
        .where(Pledge.project_id == project_id, scope)
        .order_by(Pledge.queue_number)
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(Pledge.status == status)
    if is_genuine is not None:
        stmt = stmt.where(g if is_genuine else not_(g))
    if client_id is not None:
        stmt = stmt.where(Pledge.client_id == client_id)
    if after is not None:
        stmt = stmt.where(Pledge.queue_number > after)
    rows = await session.execute(stmt)
    return [PledgeRow(p, bool(x)) for p, x in rows]


async def counts(session: AsyncSession, project_id: uuid.UUID) -> PledgeCounts:
    """One query: every pledge of the project counted by status, the active ones by whether
    they are genuine."""
    g = genuine()
    active = Pledge.status == "active"
    row = (
        await session.execute(
            select(
                func.count().filter(active),
                func.count().filter(and_(active, g)),
                func.count().filter(and_(active, not_(g))),
                func.count().filter(Pledge.status == "withdrawn"),
                func.count().filter(Pledge.status == "converted"),
                func.coalesce(func.max(Pledge.queue_number), 0),
            ).where(Pledge.project_id == project_id)
        )
    ).one()
    return PledgeCounts(*(int(v) for v in row))


async def pledge_of_payment(session: AsyncSession, payment_id: uuid.UUID) -> Pledge | None:
    return (
        await session.scalars(
            select(Pledge).where(Pledge.payment_id == payment_id).with_for_update()
        )
    ).first()


async def add(session: AsyncSession, pledge: Pledge) -> None:
    session.add(pledge)
    await session.flush()


async def pledge_for_fee(
    session: AsyncSession, payment_id: uuid.UUID, pledge_id: str | None
) -> Pledge | None:
    """The pledge a fee payment is for, locked: the pledge whose payment it is, else the one
    its PaymentIntent names (an earlier attempt paid after a newer one was started)."""
    row = await pledge_of_payment(session, payment_id)
    if row is not None or pledge_id is None:
        return row
    try:
        wanted = uuid.UUID(pledge_id)
    except ValueError:
        return None
    return await session.get(Pledge, wanted, with_for_update=True)
