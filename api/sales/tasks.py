"""Background jobs of sales: subscriptions not signed by their deadline end (when the tenant
asks for it: ``sales.expire_overdue``); mortgage cases still collecting documents remind the
agent and the buyer of what is missing, once a day at 09:xx of the tenant's clock."""

from __future__ import annotations

from datetime import UTC, datetime

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from api.jobs import defer_for_each_tenant, runtime, tenant_task
from api.sales import (
    commission,  # registers the outbox reactor of collections in workers too
    plan_service,
)
from api.sales import subscription_service as service
from tenants.registry import TenantInfo

blueprint = procrastinate.Blueprint()


@tenant_task(blueprint)
async def expire_subscriptions(session: AsyncSession, tenant: TenantInfo) -> int:
    return await service.expire_overdue(session, runtime().settings)


@blueprint.periodic(cron="23 * * * *", periodic_id="subscription-expiry")
@blueprint.task(name="sweep_overdue_subscriptions")
async def sweep_overdue_subscriptions(timestamp: int) -> int:
    """Hourly (deadlines are the end of a day): one subscription-expiry job per active tenant
    (one that keeps overdue subscriptions finds its setting and stops)."""
    return await defer_for_each_tenant(expire_subscriptions, lock_prefix="subscriptions")


REMIND_HOUR = 9  # mortgage reminders go out at this hour of the tenant's clock


@tenant_task(blueprint)
async def remind_mortgage_documents(session: AsyncSession, tenant: TenantInfo) -> int:
    return await plan_service.remind_missing_documents(session)


@blueprint.periodic(cron="41 * * * *", periodic_id="mortgage-reminders")
@blueprint.task(name="sweep_mortgage_reminders")
async def sweep_mortgage_reminders(timestamp: int) -> int:
    """Hourly: the tenants whose local time is 09:xx get their mortgage reminders (a case is
    reminded at most once in 20 hours)."""
    at = datetime.fromtimestamp(timestamp, UTC)
    return await defer_for_each_tenant(
        remind_mortgage_documents,
        lock_prefix="mortgage-reminders",
        where=lambda t: at.astimezone(t.zone).hour == REMIND_HOUR,
    )


@tenant_task(blueprint)
async def apply_collection(
    session: AsyncSession,
    tenant: TenantInfo,
    contract_id: str,
    collected_total_minor: int,
    price_minor: int,
) -> int:
    """A collection was recorded on a contract (outbox event ``sales.collection.recorded``,
    queued by ``api.sales.commission``'s reactor in the same transaction): its pending
    commissions whose share of the price is now collected become payable."""
    import uuid

    moved = await commission.on_collection(
        session, uuid.UUID(contract_id), collected_total_minor, price_minor
    )
    return len(moved)
