"""Background jobs of sales: subscriptions not signed by their deadline end (when the tenant
asks for it: ``sales.expire_overdue``)."""

from __future__ import annotations

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from api.jobs import defer_for_each_tenant, runtime, tenant_task
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
