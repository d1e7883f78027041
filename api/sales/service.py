"""Pledges (认筹): the rules. Never commits: the request or job owns the transaction.

A client registers intent for a project through an agent and gets the project's next queue
number (gapless from 1, given once, kept when the pledge is withdrawn). A client has at most
one active pledge per project. A pledge may ask a fee (minor units of the tenant's currency),
paid through Stripe like a deposit: a payment of kind ``pledge`` whose PaymentIntent the payer
confirms; Stripe's event marks the pledge paid (``fee_paid``, from ``apply_intent``). A
withdrawn pledge's paid fee is refunded by the tenant's rule (``sales.pledge_refund_pct``;
the rest is kept, booked as income). Genuine (诚意筹) or padded (水筹): ``repository.genuine``
and docs/sales.md."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.client import service as clients
from api.client.models import Client
from api.db import utcnow
from api.errors import Conflict, NotFound, ValidationFailed
from api.identity.auth import Principal
from api.ids import uuid7
from api.money import format_money
from api.payment import service as payments
from api.payment import stripe_api
from api.payment.models import PAYMENT_PLATFORMS, Payment
from api.project.models import Project
from api.sales import repository as repo
from api.sales.models import PLEDGE_STATUSES, Pledge
from api.sales.repository import PledgeCounts, PledgeRow
from api.settings import Settings
from api.validate import existing, text
from tenants.registry import TenantInfo
from tenants.sessions import tenant_of

MAX_FEE = 10_000_000_000  # minor units (as a bill)
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class PledgeInput:
    project_id: uuid.UUID
    client_id: uuid.UUID
    fee: int = 0  # minor units of the tenant's currency; 0: no fee


async def _scope(session: AsyncSession, p: Principal) -> ColumnElement[bool]:
    """A pledge is seen by whoever sees its client (the client's data scope)."""
    return await clients.visible(session, p)


async def _visible(
    session: AsyncSession, p: Principal, pledge_id: uuid.UUID, *, lock: bool = False
) -> Pledge:
    row = await repo.visible_pledge(session, pledge_id, await _scope(session, p), lock=lock)
    if row is None:  # another scope's pledge and a missing one look the same
        raise NotFound("pledge not found", "pledgeId")
    return row


async def register(
    session: AsyncSession, settings: Settings, p: Principal, i: PledgeInput
) -> PledgeRow:
    """Register the client's pledge for the project with the project's next queue number."""
    currency = tenant_of(session).currency
    if not 0 <= i.fee <= MAX_FEE:
        locale = tenant_of(session).locale
        raise ValidationFailed(
            f"a pledge fee is 0 to {format_money(MAX_FEE, currency, locale)}", "fee"
        )
    await existing(session, Project.id, [i.project_id], "project", "projectId")
    await clients.get_visible(session, p, i.client_id)
    if i.fee:  # a fee nobody could pay is refused now, not at payment time
        stripe_api.client(settings)
        if not await payments.connected_account(session, tenant_of(session).id):
            raise stripe_api.PaymentsOff("this company does not take payments yet", "fee")
    number = await repo.next_queue_number(session, i.project_id)
    # Checked under the project's counter lock: a concurrent registration of the same client
    # has committed (and is seen) by now. The unique index stays the last word.
    conflict = Conflict("the client already has an active pledge for this project", "clientId")
    if await repo.active_pledge_id(session, i.project_id, i.client_id) is not None:
        raise conflict
    pledge = Pledge(
        id=uuid7(),
        project_id=i.project_id,
        client_id=i.client_id,
        agent_id=p.account_id,
        queue_number=number,
        status="active",
        fee=i.fee,
        currency=currency,
        refunded=0,
    )
    try:
        async with session.begin_nested():
            await repo.add(session, pledge)
    except IntegrityError as exc:
        raise conflict from exc
    return await _row(session, pledge)


async def _row(session: AsyncSession, pledge: Pledge) -> PledgeRow:
    """The pledge as written so far, with whether it is genuine now."""
    await session.flush()
    return PledgeRow(pledge, await repo.is_genuine(session, pledge.id))


@dataclass(frozen=True, slots=True)
class PaymentStarted:
    row: PledgeRow
    payment: Payment
    client_secret: str


async def start_payment(
    session: AsyncSession,
    settings: Settings,
    tenant: TenantInfo,
    p: Principal,
    pledge_id: uuid.UUID,
    *,
    platform: str,
) -> PaymentStarted:
    """The PaymentIntent of the pledge's fee (asking again while it is pending gives the same
    payment; after a failed or canceled one, a new payment)."""
    if platform not in PAYMENT_PLATFORMS:
        raise ValueError(platform)
    pledge = await _visible(session, p, pledge_id, lock=True)
    if pledge.status != "active":
        raise Conflict(f"the pledge is {pledge.status}", "pledgeId")
    if not pledge.fee:
        raise Conflict("the pledge has no fee", "pledgeId")
    if pledge.paid_at is not None:
        raise Conflict("the pledge's fee is paid", "pledgeId")
    account = await payments.require_account(session, settings, tenant)
    if pledge.payment_id is not None:
        current = await session.get(Payment, pledge.payment_id, with_for_update=True)
        if current is not None and current.status == "pending":
            intent = await stripe_api.retrieve_intent(
                settings, current.stripe_account, payments.intent_of(current)
            )
            secret = stripe_api.client_secret(intent)
            return PaymentStarted(await _row(session, pledge), current, secret)
    client = await session.get(Client, pledge.client_id)
    payment = Payment(
        id=uuid7(),
        kind="pledge",
        status="pending",
        amount=pledge.fee,
        currency=pledge.currency.lower(),
        client_id=pledge.client_id,
        payer_id=client.account_id if client is not None else None,
        agent_id=p.account_id,
        stripe_account=account,
    )
    secret = await payments.open_payment(
        session,
        settings,
        tenant,
        payment,
        platform=platform,
        metadata={"pledge_id": str(pledge.id), "project_id": str(pledge.project_id)},
        description=f"Pledge no. {pledge.queue_number}",
    )
    pledge.payment_id, pledge.version = payment.id, pledge.version + 1
    return PaymentStarted(await _row(session, pledge), payment, secret)


async def fee_paid(
    session: AsyncSession, settings: Settings, payment: Payment, pledge_id: str | None
) -> str:
    """A pledge fee's payment succeeded (``apply_intent``; the payment is booked as held).
    The first payment to succeed pays an active pledge's fee; one for a pledge withdrawn
    meanwhile, or a second one, is refunded in full."""
    pledge = await repo.pledge_for_fee(session, payment.id, pledge_id)
    if pledge is not None and pledge.status == "active" and pledge.paid_at is None:
        pledge.payment_id, pledge.paid_at = payment.id, utcnow()
        pledge.version += 1
        await session.flush()
        return f"paid; pledge {pledge.queue_number}"
    refunded = await payments.refund_payment(session, settings, payment, reason="pledge_closed")
    if pledge is not None and pledge.payment_id == payment.id and pledge.paid_at is None:
        pledge.paid_at, pledge.refunded = utcnow(), refunded  # withdrawn while pending
        pledge.version += 1
        await session.flush()
    return f"paid; pledge closed: {refunded} refunded"


@dataclass(frozen=True, slots=True)
class Withdrawn:
    row: PledgeRow
    refunded: int


async def withdraw(
    session: AsyncSession, settings: Settings, p: Principal, pledge_id: uuid.UUID, *, reason: str
) -> Withdrawn:
    """The pledge leaves the queue (its number is kept, never given again). A paid fee is
    refunded by the tenant's rule: ``sales.pledge_refund_pct`` percent, the rest kept; a
    pending payment is canceled at Stripe (paid meanwhile: refunded in full)."""
    from api.setting import service as tenant_settings

    pledge = await _visible(session, p, pledge_id, lock=True)
    if pledge.status != "active":
        raise Conflict(f"a pledge that is {pledge.status} cannot be withdrawn", "pledgeId")
    why = text(reason, "reason", required=False, max_len=300)
    pledge.status, pledge.withdrawn_at, pledge.withdraw_reason = "withdrawn", utcnow(), why or None
    pledge.version += 1
    await session.flush()
    if pledge.payment_id is None:
        return Withdrawn(await _row(session, pledge), 0)
    payment = await session.get(
        Payment, pledge.payment_id, with_for_update=True, populate_existing=True
    )
    if payment is None:
        return Withdrawn(await _row(session, pledge), 0)
    if payment.status == "pending":
        intent = await stripe_api.cancel_intent(
            settings, payment.stripe_account, payments.intent_of(payment)
        )
        await payments.apply_intent(
            session,
            settings,
            intent,
            account=payment.stripe_account,
            received_at=payment.created_at,
        )
    elif payment.status == "paid" and pledge.paid_at is not None:
        pct: int = await tenant_settings.get(session, "sales.pledge_refund_pct")
        pledge.refunded = await payments.refund_payment(
            session,
            settings,
            payment,
            reason="pledge_withdrawn",
            amount=payment.amount * pct // 100,
        )
    return Withdrawn(await _row(session, pledge), pledge.refunded)


async def get(session: AsyncSession, p: Principal, pledge_id: uuid.UUID) -> PledgeRow | None:
    rows = await repo.visible_rows(session, [pledge_id], await _scope(session, p))
    return rows.get(pledge_id)


async def pledges(
    session: AsyncSession,
    p: Principal,
    *,
    project_id: uuid.UUID,
    status: str | None = None,
    genuine: bool | None = None,
    client_id: uuid.UUID | None = None,
    after: int | None = None,
    first: int = 50,
) -> list[PledgeRow]:
    """The project's pledges the caller may see, in queue order; ``first + 1`` rows at most
    (the extra one says there is a next page)."""
    if status is not None and status not in PLEDGE_STATUSES:
        raise ValueError(status)
    return await repo.page(
        session,
        await _scope(session, p),
        project_id=project_id,
        status=status,
        is_genuine=genuine,
        client_id=client_id,
        after=after,
        limit=max(0, min(first, MAX_PAGE)) + 1,
    )


async def summary(session: AsyncSession, project_id: uuid.UUID) -> PledgeCounts | None:
    """The project's pledges counted (every pledge, whoever's client: a manager's view), or
    None when there is no such project."""
    if not await session.get(Project, project_id):
        return None
    return await repo.counts(session, project_id)
