"""The double-entry journal. Each posting names its source (unique): posting the same source
twice writes nothing the second time. Lines balance, or the commit fails (a deferred
constraint trigger, ``shared.journal_balanced``)."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.ids import uuid7
from api.payment.models import ACCOUNTS, Journal, JournalLine


class Line(NamedTuple):
    """One line of a posting: an account (``ACCOUNTS``), debited or credited (minor units)."""

    account: str
    debit: int
    credit: int


async def post(
    session: AsyncSession,
    source: str,
    memo: str,
    currency: str,
    lines: list[Line],
    *,
    payment_id: uuid.UUID | None = None,
) -> bool:
    """Post ``lines`` of (account, debit, credit); zero lines are left out. Returns False when
    this source was posted already."""
    lines = [line for line in lines if line.debit or line.credit]
    if any(a not in ACCOUNTS for a, _, _ in lines):
        raise ValueError(f"unknown ledger account in {lines}")
    if sum(d for _, d, _ in lines) != sum(c for _, _, c in lines):
        raise ValueError(f"journal {source} does not balance: {lines}")
    journal_id = uuid7()
    made = await session.scalar(
        insert(Journal)
        .values(
            id=journal_id,
            source=source,
            memo=memo[:300],
            currency=currency,
            payment_id=payment_id,
            at=func.now(),
        )
        .on_conflict_do_nothing(index_elements=[Journal.source])
        .returning(Journal.id)
    )
    if made is None:
        return False
    await session.execute(
        insert(JournalLine),
        [
            {"id": uuid7(), "journal_id": journal_id, "account": a, "debit": d, "credit": c}
            for a, d, c in lines
        ],
    )
    return True


async def balances(session: AsyncSession) -> dict[str, int]:
    """Debits minus credits per account."""
    rows = await session.execute(
        select(JournalLine.account, func.sum(JournalLine.debit - JournalLine.credit)).group_by(
            JournalLine.account
        )
    )
    return {a: int(v) for a, v in rows.all()}


async def unbalanced(session: AsyncSession) -> list[uuid.UUID]:
    """Journals whose lines do not balance (none, ever: the trigger refuses them)."""
    rows = await session.scalars(
        select(JournalLine.journal_id)
        .group_by(JournalLine.journal_id)
        .having(func.sum(JournalLine.debit) != func.sum(JournalLine.credit))
    )
    return list(rows)
