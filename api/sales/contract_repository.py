"""All queries of contracts (签约) and their templates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.client.models import Client
from api.sales.models import OPEN_CONTRACT, Contract, ContractTemplate


async def visible_contract(
    session: AsyncSession,
    contract_id: uuid.UUID,
    scope: ColumnElement[bool],
    *,
    lock: bool = False,
) -> Contract | None:
    """The contract if its client is within ``scope`` (a WHERE clause on ``Client``)."""
    stmt = (
        select(Contract)
        .join(Client, Client.id == Contract.client_id)
        .where(Contract.id == contract_id, scope)
    )
    if lock:
        stmt = stmt.with_for_update(of=Contract)
    return (await session.scalars(stmt)).first()


async def open_contracts_of_unit(session: AsyncSession, unit_id: uuid.UUID) -> Sequence[Contract]:
    """Drafts and contracts in force on the unit (locked)."""
    stmt = (
        select(Contract)
        .where(Contract.unit_id == unit_id, Contract.status.in_(OPEN_CONTRACT))
        .order_by(Contract.id)
        .with_for_update()
    )
    return (await session.scalars(stmt)).all()


async def draft_of_subscription(
    session: AsyncSession, subscription_id: uuid.UUID
) -> Contract | None:
    stmt = (
        select(Contract)
        .where(Contract.subscription_id == subscription_id, Contract.status == "draft")
        .with_for_update()
    )
    return (await session.scalars(stmt)).first()


async def draft_amendment(session: AsyncSession, contract_id: uuid.UUID) -> Contract | None:
    stmt = (
        select(Contract)
        .where(Contract.amends_id == contract_id, Contract.status == "draft")
        .with_for_update()
    )
    return (await session.scalars(stmt)).first()


async def open_contract_id(session: AsyncSession, unit_id: uuid.UUID) -> uuid.UUID | None:
    """The contract in force (signed or registered) on the unit, if any."""
    return await session.scalar(
        select(Contract.id).where(
            Contract.unit_id == unit_id, Contract.status.in_(("signed", "registered"))
        )
    )


async def template(session: AsyncSession, template_id: uuid.UUID) -> ContractTemplate | None:
    return await session.get(ContractTemplate, template_id)


async def default_template(session: AsyncSession, locale: str) -> ContractTemplate | None:
    return await session.scalar(
        select(ContractTemplate).where(
            ContractTemplate.locale == locale, ContractTemplate.is_default.is_(True)
        )
    )


async def templates(session: AsyncSession) -> Sequence[ContractTemplate]:
    stmt = select(ContractTemplate).order_by(ContractTemplate.locale, ContractTemplate.name)
    return (await session.scalars(stmt)).all()


async def template_by_name(
    session: AsyncSession, locale: str, name: str
) -> ContractTemplate | None:
    return await session.scalar(
        select(ContractTemplate)
        .where(ContractTemplate.locale == locale, ContractTemplate.name == name)
        .with_for_update()
    )


async def page(
    session: AsyncSession,
    scope: ColumnElement[bool],
    *,
    subscription_id: uuid.UUID | None,
    unit_id: uuid.UUID | None,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> Sequence[Contract]:
    """Contracts within ``scope``, newest first."""
    stmt = select(Contract).join(Client, Client.id == Contract.client_id).where(scope)
    if subscription_id is not None:
        stmt = stmt.where(Contract.subscription_id == subscription_id)
    if unit_id is not None:
        stmt = stmt.where(Contract.unit_id == unit_id)
    if status is not None:
        stmt = stmt.where(Contract.status == status)
    if after is not None:
        stmt = stmt.where(Contract.id < after)
    return (await session.scalars(stmt.order_by(Contract.id.desc()).limit(limit))).all()


async def add(session: AsyncSession, row: object) -> None:
    session.add(row)
    await session.flush()
