"""The Stripe event job: one per stored event, for its tenant. It locks the event, applies it
from the object's current state (fetched again from Stripe), and marks it processed in the
same transaction: a crash before the commit leaves it to the retry, and a processed event is
never applied again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import procrastinate
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import utcnow
from api.jobs import JobRefused, defer_for_each_tenant, defer_woken, runtime, tenant_task
from api.payment import billing, bills, service, stripe_api
from api.payment.models import StripeEvent
from tenants.models import Tenant
from tenants.registry import TenantInfo

blueprint = procrastinate.Blueprint()


@tenant_task(blueprint, retry=procrastinate.RetryStrategy(max_attempts=12, exponential_wait=2))
async def apply_stripe_event(session: AsyncSession, tenant: TenantInfo, event_id: str) -> str:
    row = (
        await session.scalars(
            select(StripeEvent).where(StripeEvent.id == event_id).with_for_update()
        )
    ).first()
    if row is None or row.processed_at is not None:
        return "already processed" if row is not None else "no such event"
    if str(row.tenant_id) != str(tenant.id):
        raise JobRefused(f"event {event_id} is not {tenant.slug}'s")
    settings = runtime().settings
    obj = row.payload["data"]["object"]
    if row.type.startswith("payment_intent."):
        # A payment event is stored with its connected account (webhook.store refuses it else).
        assert row.account is not None, f"payment event {row.id} without its account"
        intent = await stripe_api.retrieve_intent(settings, row.account, obj["id"])
        outcome = await service.apply_intent(
            session, settings, intent, account=row.account, received_at=row.received_at
        )
    else:
        outcome = f"ignored: {row.type}"
    row.processed_at, row.outcome, row.attempts = utcnow(), outcome, row.attempts + 1
    await session.flush()
    return outcome


@tenant_task(blueprint, retry=procrastinate.RetryStrategy(max_attempts=12, exponential_wait=2))
async def refund_payment(
    session: AsyncSession, tenant: TenantInfo, payment_id: str, amount: int, reason: str
) -> str:
    """A refund an event's job decided (``service.refund_later``): made at Stripe with the
    decided amount and booked, once, however many times this runs."""
    return await service.make_refund(
        session, runtime().settings, uuid.UUID(payment_id), amount=amount, reason=reason
    )


@tenant_task(blueprint)
async def remind_bills(session: AsyncSession, tenant: TenantInfo) -> int:
    """Open bills due within three days: their payer is reminded, once per bill."""
    due = await bills.due_for_reminder(session, tenant.today(utcnow()))
    for bill in due:
        await service.tell_bill(session, bill, "bill.due")
    await bills.mark_reminded(session, due, utcnow())
    return len(due)


REMIND_HOUR = 9  # bill reminders go out once a day at this hour of the tenant's clock


def reminder_hour(tenant: TenantInfo, at: datetime) -> bool:
    return at.astimezone(tenant.zone).hour == REMIND_HOUR


@blueprint.periodic(cron="0 * * * *", periodic_id="bill-reminders")
@blueprint.task(name="sweep_bill_reminders")
async def sweep_bill_reminders(timestamp: int) -> int:
    """Hourly: the tenants whose local time is 09:xx get their bill reminders."""
    at = datetime.fromtimestamp(timestamp, UTC)
    return await defer_for_each_tenant(
        remind_bills, lock_prefix="bill-reminders", where=lambda t: reminder_hour(t, at)
    )


@tenant_task(blueprint, wakeup="deposit-expiry", limit=service.EXPIRE_BATCH)
async def expire_deposits(session: AsyncSession, tenant: TenantInfo) -> int:
    return await service.expire_deposits(session, runtime().settings)


@blueprint.periodic(cron="*/5 * * * *", periodic_id="deposit-expiry")
@blueprint.task(name="sweep_expired_deposits")
async def sweep_expired_deposits(timestamp: int) -> int:
    """Every 5 minutes, for tenants with one due: deposits whose hold ran out are cancelled
    at Stripe."""
    return await defer_woken(expire_deposits)


@blueprint.task(
    name="apply_billing_event",
    retry=procrastinate.RetryStrategy(max_attempts=12, exponential_wait=2),
)
async def apply_billing_event(*, tenant: str | None = None, event_id: str) -> str:
    """A plan event of one tenant. It works on the shared schema (the tenant's plan and
    status), so it runs for a suspended tenant too: paying is how one gets restored."""
    if not tenant:
        raise JobRefused("apply_billing_event: a job without a tenant is refused")
    rt = runtime()
    async with rt.engine.begin() as conn:
        row = (
            await conn.execute(
                select(StripeEvent.tenant_id, StripeEvent.payload, StripeEvent.processed_at)
                .where(StripeEvent.id == event_id)
                .with_for_update()
            )
        ).first()
        if row is None or row.processed_at is not None:
            return "already processed" if row is not None else "no such event"
        slug = await conn.scalar(select(Tenant.slug).where(Tenant.id == row.tenant_id))
        if slug != tenant:
            raise JobRefused(f"event {event_id} is not {tenant}'s")
        outcome = await billing.apply(conn, rt.settings, row.tenant_id, row.payload)
        await conn.execute(
            update(StripeEvent)
            .where(StripeEvent.id == event_id)
            .values(processed_at=utcnow(), outcome=outcome, attempts=StripeEvent.attempts + 1)
        )
    return outcome


@blueprint.periodic(cron="17 * * * *", periodic_id="billing-suspensions")
@blueprint.task(name="suspend_unpaid_tenants")
async def suspend_unpaid_tenants(timestamp: int) -> list[str]:
    """Hourly: tenants past due beyond the grace period are suspended."""
    rt = runtime()
    async with rt.engine.begin() as conn:
        return await billing.suspend_unpaid(conn, rt.settings)
