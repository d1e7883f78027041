"""Deposits: a buyer pays to reserve a unit. Never commits.

``start_deposit`` holds the unit for the agent and creates the payment and its PaymentIntent
(idempotency key ``deposit:<payment id>``) in the tenant's currency, on the tenant's connected
account, with the platform fee of the tenant's plan. Stripe's events then decide
(``apply_intent``, from the event job, always on the PaymentIntent's *current* state, fetched
again):
- succeeded: the deposit is paid (ledger: held as a liability) and the unit reserved; if the
  unit went to someone else meanwhile, the payment is refunded at once (ledger reversed);
- failed or canceled: the payment is closed and the agent's hold released."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import stripe
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import utcnow
from api.errors import Conflict, NotFound
from api.identity.auth import Principal
from api.ids import uuid7
from api.notify.models import JsonObject
from api.payment import ledger, stripe_api
from api.payment.ledger import Line
from api.payment.models import FORFEITS, HELD, PAYMENT_PLATFORMS, Bill, Journal, Payment
from api.settings import Settings
from api.unit import service as units
from api.unit.models import Unit
from api.validate import https_url
from tenants.models import Tenant
from tenants.registry import TenantInfo
from tenants.sessions import tenant_of

PLATFORMS = PAYMENT_PLATFORMS


class RetryLater(Exception):
    """A prerequisite of an event has not arrived yet (the job retries)."""


async def require_account(session: AsyncSession, settings: Settings, tenant: TenantInfo) -> str:
    """The tenant's connected account, with payments configured; else PaymentsOff (before
    anything is held or created)."""
    account = await connected_account(session, tenant.id)
    if not account:
        raise stripe_api.PaymentsOff("this company does not take payments yet", None)
    stripe_api.client(settings)
    return account


async def connected_account(session: AsyncSession, tenant_id: str) -> str | None:
    return await session.scalar(
        select(Tenant.stripe_account_id).where(Tenant.id == uuid.UUID(str(tenant_id)))
    )


@dataclass(frozen=True, slots=True)
class Connected:
    """The tenant's connected account and where its admin finishes onboarding."""

    account_id: str
    onboarding_url: str


async def connect(
    session: AsyncSession,
    settings: Settings,
    tenant: TenantInfo,
    *,
    return_url: str,
    refresh_url: str,
) -> Connected:
    """The tenant's connected account (created once, key ``connect:<tenant id>``) and a link
    where its admin finishes onboarding on Stripe."""
    https_url(return_url, "returnUrl")
    https_url(refresh_url, "refreshUrl")
    account = await connected_account(session, tenant.id)
    if not account:
        made = await stripe_api.create_account(
            settings, tenant_id=str(tenant.id), name=tenant.name, key=f"connect:{tenant.id}"
        )
        account = made.id
        await session.execute(
            update(Tenant).where(Tenant.id == tenant.id).values(stripe_account_id=account)
        )
    link = await stripe_api.onboarding_link(
        settings, account=account, refresh_url=refresh_url, return_url=return_url
    )
    return Connected(account, link.url)


def platform_fee(settings: Settings, plan: str, amount: int) -> int:
    bps = settings.stripe_fee_bps.get(plan, settings.stripe_fee_bps.get("free", 0))
    return amount * bps // 10_000


@dataclass(frozen=True, slots=True)
class DepositStarted:
    payment: Payment
    client_secret: str
    hold_expires_at: datetime | None


async def start_deposit(
    session: AsyncSession,
    settings: Settings,
    tenant: TenantInfo,
    p: Principal,
    unit_id: uuid.UUID,
    *,
    client_id: uuid.UUID | None,
    platform: str,
) -> DepositStarted:
    """Hold the unit for the caller (or keep the caller's hold) and create the deposit's
    PaymentIntent. Asking again while it is pending gives the same payment."""
    from api.setting import service as tenant_settings

    if platform not in PLATFORMS:
        raise ValueError(platform)
    if client_id is not None:  # a client of this tenant the caller may see (NotFound otherwise)
        from api.client.service import get_visible

        await get_visible(session, p, client_id)
    account = await require_account(session, settings, tenant)
    pending = (
        await session.scalars(
            select(Payment)
            .where(
                Payment.unit_id == unit_id,
                Payment.kind == "deposit",
                Payment.status == "pending",
                Payment.agent_id == p.account_id,
            )
            .with_for_update()
        )
    ).first()
    unit = await _hold(session, unit_id, p.account_id)
    if pending is not None:
        intent = await stripe_api.retrieve_intent(settings, account, intent_of(pending))
        return DepositStarted(pending, stripe_api.client_secret(intent), unit.hold_expires_at)
    amount: int = await tenant_settings.get(session, "payments.deposit_amount")
    payment = Payment(
        id=uuid7(),
        kind="deposit",
        status="pending",
        amount=amount,
        currency=tenant_of(session).currency.lower(),  # the setting's amount is in it
        unit_id=unit.id,
        client_id=client_id,
        agent_id=p.account_id,
        stripe_account=account,
    )
    secret = await open_payment(
        session,
        settings,
        tenant,
        payment,
        platform=platform,
        metadata={"unit_id": str(unit.id)},
        description=f"Deposit for unit {unit.number}",
    )
    return DepositStarted(payment, secret, unit.hold_expires_at)


async def open_payment(
    session: AsyncSession,
    settings: Settings,
    tenant: TenantInfo,
    payment: Payment,
    *,
    platform: str,
    metadata: dict[str, str],
    description: str,
) -> str:
    """Add ``payment`` (pending; its kind, amount, currency and account set) with the plan's
    platform fee, and create its PaymentIntent (idempotency key ``<kind>:<payment id>``;
    metadata naming tenant, payment and kind, and ``metadata``). Returns the client secret
    the payer's app confirms it with. Deposits, fee bills and pledge fees start here."""
    payment.application_fee = platform_fee(settings, tenant.plan, payment.amount)
    session.add(payment)
    await session.flush()
    intent = await stripe_api.create_intent(
        settings,
        account=payment.stripe_account,
        amount=payment.amount,
        currency=payment.currency,
        platform=platform,
        fee=payment.application_fee,
        key=f"{payment.kind}:{payment.id}",
        metadata={
            "tenant_id": str(tenant.id),
            "payment_id": str(payment.id),
            "kind": payment.kind,
            **metadata,
        },
        description=description,
    )
    payment.stripe_payment_intent = intent.id
    await session.flush()
    return stripe_api.client_secret(intent)


def intent_of(payment: Payment) -> str:
    """The id of the payment's PaymentIntent. Every payment has one: it is created with the
    payment, and a failure to create it undoes the payment (the mutation's ``attempt``)."""
    assert payment.stripe_payment_intent is not None, f"payment {payment.id} has no intent"
    return payment.stripe_payment_intent


async def _hold(session: AsyncSession, unit_id: uuid.UUID, agent: uuid.UUID) -> Unit:
    try:
        return await units.hold_unit(session, unit_id, actor_id=agent)
    except Conflict:
        unit = await session.get(Unit, unit_id, populate_existing=True)
        if unit is not None and unit.status == "on_hold" and unit.held_by == agent:
            return unit  # the caller's own hold stands
        raise


async def payment_for(session: AsyncSession, intent: stripe.PaymentIntent) -> Payment | None:
    row = (
        await session.scalars(
            select(Payment).where(Payment.stripe_payment_intent == intent.id).with_for_update()
        )
    ).first()
    if row is None and "payment_id" in intent.metadata:
        try:
            pid = uuid.UUID(intent.metadata["payment_id"])
        except ValueError:
            return None
        row = await session.get(Payment, pid, with_for_update=True)
        if row is not None and row.stripe_payment_intent not in (None, intent.id):
            return None  # another intent's payment: not ours to touch
    return row


def _paid_lines(p: Payment) -> list[Line]:
    return [
        Line("stripe_balance", p.amount - p.application_fee, 0),
        Line("platform_fees", p.application_fee, 0),
        Line(HELD[p.kind], 0, p.amount),
    ]


async def apply_intent(
    session: AsyncSession,
    settings: Settings,
    intent: stripe.PaymentIntent,
    *,
    account: str,
    received_at: datetime,
) -> str:
    """Bring our records in line with the PaymentIntent's current state. Returns what it did
    (stored with the event). Safe to run any number of times, in any order."""
    payment = await payment_for(session, intent)
    if payment is None:
        if (utcnow() - received_at).total_seconds() < 600:
            raise RetryLater(f"no payment for {intent.id} yet")
        if intent.status == "succeeded":  # money nobody can attribute: give it back
            await stripe_api.refund(
                settings,
                account=account,
                intent_id=intent.id,
                amount=intent.amount,
                key=f"refund:orphan:{intent.id}",
                reason="no_record",
            )
            return "refunded: no payment record"
        return "ignored: no payment record"
    if intent.status == "succeeded":
        if payment.status in ("paid", "refunded"):
            return f"already {payment.status}"
        payment.status, payment.paid_at, payment.failure_code = "paid", utcnow(), None
        payment.version += 1
        await ledger.post(
            session,
            f"payment:{payment.id}:paid",
            f"{payment.kind} paid",
            payment.currency,
            _paid_lines(payment),
            payment_id=payment.id,
        )
        await session.flush()
        if payment.kind == "fee":
            return await _settle_bill(session, settings, payment)
        if payment.kind == "pledge":
            from api.sales import service as sales

            pledge_id: str | None = None
            if "pledge_id" in intent.metadata:  # (the stubs give StripeObject no .get)
                pledge_id = intent.metadata["pledge_id"]
            return await sales.fee_paid(session, settings, payment, pledge_id)
        if payment.kind == "collection":  # money on a sale contract (回款)
            from api.sales import plan_service

            return await plan_service.collection_paid(session, settings, payment)
        await _tell(session, payment, "payment.received")
        if payment.unit_id is not None:
            return await _reserve_or_refund(session, settings, payment, payment.unit_id)
        return "paid"
    if intent.status in ("canceled", "requires_payment_method"):
        error = getattr(intent, "last_payment_error", None)
        if intent.status == "requires_payment_method" and not error:
            return "waiting: requires_payment_method"
        if payment.status != "pending":
            return f"already {payment.status}"
        payment.status = "canceled" if intent.status == "canceled" else "failed"
        payment.failure_code = (error["code"] if error and "code" in error else None) or (
            intent.status
        )
        payment.version += 1
        await _release(session, payment)
        await session.flush()
        return payment.status
    return f"waiting: {intent.status}"


async def _reserve_or_refund(
    session: AsyncSession, settings: Settings, payment: Payment, unit_id: uuid.UUID
) -> str:
    # A payment for a unit is a deposit (a fee payment settles its bill instead), and
    # start_deposit records the agent who started it.
    assert payment.agent_id is not None, f"deposit {payment.id} has no agent"
    try:
        await units.reserve_unit(
            session,
            unit_id,
            actor_id=payment.agent_id,
            override=False,
            reason=f"deposit {payment.id} paid",
        )
        return "paid; unit reserved"
    except (Conflict, NotFound):
        pass  # held by another agent, reserved, sold...: refund the whole deposit
    await refund_payment(session, settings, payment, reason="unit_unavailable")
    return "paid; unit unavailable: refunded"


async def refund_payment(
    session: AsyncSession,
    settings: Settings,
    payment: Payment,
    *,
    reason: str,
    amount: int | None = None,
) -> int:
    """Refund ``amount`` (default: all that is left) with the platform fee in proportion
    (idempotency key ``refund:<payment id>:<reason>``, journal of the same source); the part
    of a deposit or pledge fee not refunded is forfeited (income), the part of a fee payment
    not refunded stays paid on its bill. Returns the amount refunded."""
    left = payment.amount - payment.refunded_amount
    amount = left if amount is None else min(amount, left)
    forfeits = FORFEITS.get(payment.kind)
    kept = left - amount if forfeits is not None else 0
    if left <= 0 or (amount <= 0 and not kept):
        return 0
    if amount > 0:
        await stripe_api.refund(
            settings,
            account=payment.stripe_account,
            intent_id=intent_of(payment),
            amount=amount,
            key=f"refund:{payment.id}:{reason}",
            reason=reason,
        )
    fee = payment.application_fee * amount // payment.amount
    lines = [
        Line(HELD[payment.kind], amount + kept, 0),
        Line("stripe_balance", 0, amount - fee),
        Line("platform_fees", 0, fee),
    ]
    if forfeits is not None:
        lines.append(Line(forfeits, 0, kept))
    await ledger.post(
        session,
        _refund_source(payment, reason),
        f"refund ({reason})",
        payment.currency,
        lines,
        payment_id=payment.id,
    )
    payment.refunded_amount += amount
    if forfeits is not None or payment.refunded_amount == payment.amount:
        payment.status = "refunded"  # else part of a fee payment stays on its bill: paid
    payment.refund_reason = reason
    payment.version += 1
    await session.flush()
    if payment.kind == "deposit" and amount:
        await _tell(session, payment, "payment.refunded", amount=amount)
    return amount


@dataclass(frozen=True, slots=True)
class ReservationCanceled:
    """The unit's paid deposit and how much of it was refunded."""

    payment: Payment
    refunded: int


async def cancel_reservation(
    session: AsyncSession, settings: Settings, p: Principal, unit_id: uuid.UUID, *, reason: str
) -> ReservationCanceled:
    """A reserved unit goes back on sale and its paid deposit is refunded by the tenant's
    rules: in full within ``payments.refund_full_hours`` of paying, else
    ``payments.refund_late_pct`` percent (the rest is forfeited)."""
    from api.setting import service as tenant_settings

    payment = (
        await session.scalars(
            select(Payment)
            .where(Payment.unit_id == unit_id, Payment.kind == "deposit", Payment.status == "paid")
            .with_for_update()
        )
    ).first()
    if payment is None:
        raise NotFound("no paid deposit for this unit", "unitId")
    await units.change_status(session, unit_id, "available", actor_id=p.account_id, reason=reason)
    hours: int = await tenant_settings.get(session, "payments.refund_full_hours")
    # apply_intent sets paid_at with the status "paid".
    assert payment.paid_at is not None, f"paid deposit {payment.id} without paid_at"
    if (utcnow() - payment.paid_at).total_seconds() <= hours * 3600:
        amount = payment.amount
    else:
        pct: int = await tenant_settings.get(session, "payments.refund_late_pct")
        amount = payment.amount * pct // 100
    refunded = await refund_payment(
        session, settings, payment, reason="reservation_canceled", amount=amount
    )
    return ReservationCanceled(payment, refunded)


async def _settle_bill(session: AsyncSession, settings: Settings, payment: Payment) -> str:
    """The bill takes what it still owes of the payment; the rest goes back (all of it when
    the bill was paid or voided meanwhile), whichever order its payments arrive in. The
    refund is decided here, with the settlement it follows from, and made by its own job
    (``refund_later``)."""
    from api.payment import bills

    settled = await bills.settle(session, payment)
    bill, applied = settled.bill, settled.applied
    if bill is None or not applied:  # paid by another payment, or voided meanwhile: give it back
        left = payment.amount - payment.refunded_amount
        await refund_later(session, payment, reason="bill_closed", amount=left)
        return f"paid; bill closed: {left} to refund"
    await tell_bill(session, bill, "bill.paid", amount=applied)
    outcome = f"paid; bill {bill.number} {bill.status}"
    excess = payment.amount - applied
    if excess:  # more than the bill still owed: the excess goes back
        await refund_later(session, payment, reason="bill_overpaid", amount=excess)
        outcome += f"; {excess} over: to refund"
    return outcome


async def refund_later(
    session: AsyncSession, payment: Payment, *, reason: str, amount: int
) -> None:
    """Queue the refund of ``amount`` of ``payment`` (job ``payment:refund_payment``) in the
    caller's transaction. The decision travels in the job's arguments, committed with what it
    was decided from (the bill's settlement), and the job never decides again: however many
    times it runs, and whatever other payments do to the bill meanwhile, Stripe is sent one
    key (``refund:<payment id>:<reason>``) with one amount."""
    from api.jobs import enqueue
    from api.payment import tasks

    job = enqueue(
        tasks.refund_payment,
        tenant=tenant_of(session).slug,
        payment_id=str(payment.id),
        amount=amount,
        reason=reason,
    )
    await session.execute(job)


async def make_refund(
    session: AsyncSession, settings: Settings, payment_id: uuid.UUID, *, amount: int, reason: str
) -> str:
    """The refund ``refund_later`` queued: sent to Stripe and booked, once (its journal is the
    mark, checked first under the payment's lock); the payer of a bill is told."""
    payment = await session.get(Payment, payment_id, with_for_update=True, populate_existing=True)
    if payment is None:
        return "no such payment"
    if await session.scalar(
        select(Journal.id).where(Journal.source == _refund_source(payment, reason))
    ):
        return "already refunded"
    refunded = await refund_payment(session, settings, payment, reason=reason, amount=amount)
    bill = await session.get(Bill, payment.bill_id) if payment.bill_id is not None else None
    if bill is not None and refunded:
        await tell_bill(session, bill, "bill.refunded", amount=refunded)
    return f"refunded {refunded}"


def _refund_source(payment: Payment, reason: str) -> str:
    """The refund's journal source (unique: a refund is booked once)."""
    return f"payment:{payment.id}:refund:{reason}"


async def tell_bill(
    session: AsyncSession, bill: Bill, template: str, *, amount: int | None = None
) -> None:
    """The payer hears of a bill: issued, due, paid (a receipt), refunded."""
    from api.notify import service as notify
    from api.notify.templates import money

    slug = session.info.get("tenant_slug")
    if slug is None:
        return
    params: JsonObject = {
        "number": bill.number,
        "title": bill.title,
        "due": bill.due_on.isoformat(),
        "amount": money(bill.amount if amount is None else amount, bill.currency),
        "left": money(bill.amount - bill.paid_amount, bill.currency),
    }
    await notify.notify(
        session,
        slug,
        [bill.payer_id],
        "payments",
        template,
        params,
        data={"kind": "bill", "id": str(bill.id)},
    )


REASONS = {
    "unit_unavailable": "the unit is no longer available",
    "reservation_canceled": "the reservation was canceled",
}


async def _tell(
    session: AsyncSession, payment: Payment, template: str, *, amount: int | None = None
) -> None:
    """The payer and the agent hear of it (category payments; it opens the payment)."""
    from api.notify import service as notify
    from api.notify.templates import money

    slug = session.info.get("tenant_slug")
    people = [a for a in (payment.payer_id, payment.agent_id) if a is not None]
    if slug is None or not people:
        return
    number = await session.scalar(select(Unit.number).where(Unit.id == payment.unit_id))
    shown = payment.amount if amount is None else amount
    reason = payment.refund_reason or ""
    params: JsonObject = {
        "number": number or "-",
        "amount": money(shown, payment.currency),
        "reason": REASONS.get(reason, reason),
    }
    await notify.notify(
        session,
        slug,
        people,
        "payments",
        template,
        params,
        data={"kind": "payment", "id": str(payment.id)},
    )


async def _release(session: AsyncSession, payment: Payment) -> None:
    """The agent's hold for this deposit ends (if it is still theirs and on hold)."""
    agent = payment.agent_id
    if payment.kind != "deposit" or payment.unit_id is None or agent is None:
        return  # (a deposit always has its agent: start_deposit)
    unit = await session.get(Unit, payment.unit_id, populate_existing=True)
    if unit is not None and unit.status == "on_hold" and unit.held_by == agent:
        await units.release_hold(session, unit.id, actor_id=agent, override=True)


EXPIRE_BATCH = 200  # deposits closed a job


async def expire_deposits(
    session: AsyncSession, settings: Settings, limit: int = EXPIRE_BATCH
) -> int:
    """Pending deposits whose hold is over (expired or released): cancel their PaymentIntent
    so nobody pays for a unit that is no longer kept for them, and close them. One paid
    meanwhile is applied as paid instead (reserved, or refunded if the unit is gone)."""
    rows = (
        await session.scalars(
            select(Payment)
            .join(Unit, Unit.id == Payment.unit_id)
            .where(
                Payment.kind == "deposit",
                Payment.status == "pending",
                Payment.stripe_payment_intent.is_not(None),
                ~(
                    (Unit.status == "on_hold")
                    & (Unit.held_by == Payment.agent_id)
                    & (Unit.hold_expires_at > utcnow())
                ),
            )
            .with_for_update(of=Payment, skip_locked=True)
            .limit(limit)
        )
    ).all()
    for payment in rows:
        intent = await stripe_api.cancel_intent(
            settings, payment.stripe_account, intent_of(payment)
        )
        await apply_intent(
            session,
            settings,
            intent,
            account=payment.stripe_account,
            received_at=payment.created_at,
        )
    return len(rows)


async def payments(
    session: AsyncSession, p: Principal, *, unit_id: uuid.UUID | None, first: int
) -> list[Payment]:
    stmt = select(Payment).order_by(Payment.id.desc()).limit(first)
    if unit_id is not None:
        stmt = stmt.where(Payment.unit_id == unit_id)
    return list((await session.scalars(stmt)).all())
