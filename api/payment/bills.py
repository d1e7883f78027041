"""Fee bills (property, parking, service) that owners and clients pay in the app, in part or in
full, and their numbered receipts. Never commits.

Issuing a bill books the fee (accounts receivable / fee income); each payment that arrives
settles part of it (Stripe balance and platform fee / accounts receivable) and gets a receipt
numbered per tenant without gaps. A bill is overdue while it is open past its due date (in the
tenant's time zone); its payer is reminded once, three days before."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import utcnow
from api.errors import Conflict, NotFound, ValidationFailed
from api.identity.auth import Principal
from api.identity.teams import active_members
from api.ids import uuid7
from api.money import format_money, minor_digits
from api.payment import ledger, stripe_api
from api.payment.ledger import Line
from api.payment.models import BILL_KINDS, Bill, Counter, Payment, Receipt
from api.settings import Settings
from api.unit.models import Unit
from api.validate import existing, text
from tenants.registry import TenantInfo
from tenants.sessions import tenant_of

MAX_AMOUNT = 10_000_000_000  # minor units
REMIND_DAYS = 3


def today(session: AsyncSession) -> date:
    """The tenant's date now (due dates are dates in the tenant's time zone)."""
    return tenant_of(session).today(utcnow())


def min_payment(currency: str) -> int:
    """The least part of a bill one may pay: one major unit of its currency (¥1, $1, 1 yen),
    in minor units."""
    return 10 ** minor_digits(currency)


def shown(session: AsyncSession, minor: int, currency: str) -> str:
    """An amount in a message to the caller, in the tenant's locale."""
    return format_money(minor, currency, tenant_of(session).locale)


def overdue(bill: Bill, on: date) -> bool:
    return bill.status == "open" and bill.due_on < on


async def next_number(session: AsyncSession, name: str) -> int:
    """The next number of ``name`` (gapless: the row is locked until this transaction ends)."""
    number = await session.scalar(
        insert(Counter)
        .values(name=name, value=1)
        .on_conflict_do_update(index_elements=[Counter.name], set_={"value": Counter.value + 1})
        .returning(Counter.value)
    )
    assert number is not None, "an upsert returns its row"
    return int(number)


@dataclass(frozen=True, slots=True)
class BillInput:
    kind: str
    title: str
    payer_id: uuid.UUID
    amount: int
    due_on: date
    period: str = ""
    unit_id: uuid.UUID | None = None


async def issue(session: AsyncSession, p: Principal, i: BillInput) -> Bill:
    if i.kind not in BILL_KINDS:
        raise ValidationFailed(f"kind is one of {', '.join(BILL_KINDS)}", "kind")
    currency = tenant_of(session).currency.lower()
    if not 1 <= i.amount <= MAX_AMOUNT:
        raise ValidationFailed(
            f"an amount is {shown(session, 1, currency)} to {shown(session, MAX_AMOUNT, currency)}",
            "amount",
        )
    if i.due_on < today(session) - timedelta(days=366):
        raise ValidationFailed("a due date within the last year or later", "dueOn")
    if not await active_members(session, [i.payer_id]):
        raise NotFound("no active member with this id", "payerId")
    if i.unit_id is not None:
        await existing(session, Unit.id, [i.unit_id], "unit", "unitId")
    number = await next_number(session, "bill")
    bill = Bill(
        id=uuid7(),
        number=f"B{number:08d}",
        kind=i.kind,
        payer_id=i.payer_id,
        title=text(i.title, "title", required=True, max_len=200),
        period=text(i.period, "period", required=False, max_len=40),
        unit_id=i.unit_id,
        amount=i.amount,
        due_on=i.due_on,
        issued_by=p.account_id,
        currency=currency,
    )
    session.add(bill)
    await session.flush()
    await ledger.post(
        session,
        f"bill:{bill.id}:issued",
        f"bill {bill.number}",
        bill.currency,
        [Line("accounts_receivable", bill.amount, 0), Line("fee_income", 0, bill.amount)],
    )
    from api.payment.service import tell_bill

    await tell_bill(session, bill, "bill.issued")
    return bill


async def void(session: AsyncSession, bill_id: uuid.UUID, reason: str) -> Bill:
    bill = await session.get(Bill, bill_id, with_for_update=True)
    if bill is None:
        raise NotFound("bill not found", "billId")
    if bill.status != "open" or bill.paid_amount:
        raise Conflict("only an open bill with nothing paid can be voided", "billId")
    bill.void_reason = text(reason, "reason", required=True, max_len=300)
    bill.status, bill.version = "void", bill.version + 1
    await ledger.post(
        session,
        f"bill:{bill.id}:void",
        f"bill {bill.number} voided",
        bill.currency,
        [Line("fee_income", bill.amount, 0), Line("accounts_receivable", 0, bill.amount)],
    )
    await session.flush()
    return bill


async def bill_of(
    session: AsyncSession, p: Principal, bill_id: uuid.UUID, *, staff: bool, lock: bool = False
) -> Bill:
    """The bill, if it is the caller's (or the caller manages bills)."""
    stmt = select(Bill).where(Bill.id == bill_id)
    if not staff:
        stmt = stmt.where(Bill.payer_id == p.account_id)
    if lock:
        stmt = stmt.with_for_update()
    bill = (await session.scalars(stmt)).first()
    if bill is None:  # another payer's bill and a missing one look the same
        raise NotFound("bill not found", "billId")
    return bill


async def listing(
    session: AsyncSession,
    *,
    payer_id: uuid.UUID | None,
    status: str | None,
    first: int,
    overdue_only: bool = False,
) -> list[Bill]:
    stmt = select(Bill).order_by(Bill.due_on, Bill.number).limit(first)
    if payer_id is not None:
        stmt = stmt.where(Bill.payer_id == payer_id)
    if status is not None:
        stmt = stmt.where(Bill.status == status)
    if overdue_only:
        stmt = stmt.where(Bill.status == "open", Bill.due_on < today(session))
    return list((await session.scalars(stmt)).all())


async def receipts(
    session: AsyncSession, bill_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Receipt]]:
    out: dict[uuid.UUID, list[Receipt]] = {b: [] for b in bill_ids}
    if bill_ids:
        rows = await session.scalars(
            select(Receipt).where(Receipt.bill_id.in_(bill_ids)).order_by(Receipt.number)
        )
        for r in rows:
            assert r.bill_id is not None  # selected by it
            out[r.bill_id].append(r)
    return out


@dataclass(frozen=True, slots=True)
class PaymentStarted:
    payment: Payment
    client_secret: str


async def pay(
    session: AsyncSession,
    settings: Settings,
    tenant: TenantInfo,
    p: Principal,
    bill_id: uuid.UUID,
    *,
    amount: int | None,
    platform: str,
) -> PaymentStarted:
    """Start paying the caller's bill: all that is left, or part of it (at least one major unit
    of its currency, ``min_payment``). Asking again for the same amount while it is pending
    gives the same payment."""
    from api.payment.service import intent_of, open_payment, require_account

    account = await require_account(session, settings, tenant)
    bill = await bill_of(session, p, bill_id, staff=False, lock=True)
    if bill.status != "open":
        raise Conflict(f"this bill is {bill.status}", "billId")
    left = bill.amount - bill.paid_amount
    amount = left if amount is None else amount
    least = min(min_payment(bill.currency), left)
    if not least <= amount <= left:
        raise ValidationFailed(
            f"pay between {shown(session, least, bill.currency)} and "
            f"{shown(session, left, bill.currency)}",
            "amount",
        )
    pending = (
        await session.scalars(
            select(Payment).where(
                Payment.bill_id == bill.id,
                Payment.status == "pending",
                Payment.payer_id == p.account_id,
                Payment.amount == amount,
            )
        )
    ).first()
    if pending is not None:
        intent = await stripe_api.retrieve_intent(settings, account, intent_of(pending))
        return PaymentStarted(pending, stripe_api.client_secret(intent))
    payment = Payment(
        id=uuid7(),
        kind="fee",
        status="pending",
        amount=amount,
        currency=bill.currency,
        bill_id=bill.id,
        unit_id=bill.unit_id,
        payer_id=p.account_id,
        stripe_account=account,
    )
    secret = await open_payment(
        session,
        settings,
        tenant,
        payment,
        platform=platform,
        metadata={"bill_id": str(bill.id)},
        description=f"Bill {bill.number}: {bill.title}"[:200],
    )
    return PaymentStarted(payment, secret)


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a fee payment settled: its bill (None: gone) and the amount applied to it."""

    bill: Bill | None
    applied: int


async def settle(session: AsyncSession, payment: Payment) -> Settlement:
    """A fee payment arrived: settle its bill by what it covers and number a receipt for
    that. Returns the bill and the amount applied: all of the payment, or only what was left
    when it pays more than that (the caller refunds the excess), or 0 when the bill was paid
    or voided meanwhile (the caller refunds it all)."""
    bill = (
        await session.get(Bill, payment.bill_id, with_for_update=True)
        if payment.bill_id is not None
        else None
    )
    if bill is None or bill.status != "open":
        return Settlement(bill, 0)
    applied = min(payment.amount, bill.amount - bill.paid_amount)
    bill.paid_amount += applied
    if bill.paid_amount == bill.amount:
        bill.status = "paid"
    bill.version += 1
    number = await next_number(session, "receipt")
    session.add(
        Receipt(
            id=uuid7(),
            number=f"R{number:08d}",
            payment_id=payment.id,
            bill_id=bill.id,
            payer_id=payment.payer_id,
            amount=applied,
            currency=payment.currency,
        )
    )
    await session.flush()
    return Settlement(bill, applied)


async def due_for_reminder(session: AsyncSession, on: date) -> list[Bill]:
    """Open bills due within three days (and not yet overdue), not reminded yet (locked)."""
    return list(
        (
            await session.scalars(
                select(Bill)
                .where(
                    Bill.status == "open",
                    Bill.reminded_at.is_(None),
                    Bill.due_on >= on,
                    Bill.due_on <= on + timedelta(days=REMIND_DAYS),
                )
                .with_for_update(skip_locked=True)
                .limit(1000)
            )
        ).all()
    )


async def mark_reminded(session: AsyncSession, bills: list[Bill], at: datetime) -> None:
    if bills:
        await session.execute(
            update(Bill).where(Bill.id.in_([b.id for b in bills])).values(reminded_at=at)
        )
