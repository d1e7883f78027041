"""Background jobs of resale listings: listings past their expiry date become expired."""

from __future__ import annotations

import procrastinate

from api.jobs import defer_for_each_tenant, tenant_task
from api.listing import service

blueprint = procrastinate.Blueprint()


@tenant_task(blueprint)
async def expire_listings(session, tenant) -> int:
    return await service.expire_listings(session)


@blueprint.periodic(cron="*/15 * * * *", periodic_id="listings")
@blueprint.task(name="sweep_expired_listings")
async def sweep_expired_listings(timestamp: int) -> int:
    """Every quarter hour: one listing-expiry job per active tenant."""
    return await defer_for_each_tenant(expire_listings, lock_prefix="listings")
