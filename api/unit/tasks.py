"""Background jobs of units: expired holds go back on the market."""

from __future__ import annotations

import procrastinate

from api.jobs import defer_for_each_tenant, tenant_task
from api.unit import service

blueprint = procrastinate.Blueprint()


@tenant_task(blueprint)
async def release_expired_holds(session, tenant) -> int:
    """Every expired hold of the tenant becomes available again, with a timeline entry."""
    return await service.release_expired_holds(session)


@blueprint.periodic(cron="* * * * *", periodic_id="holds")
@blueprint.task(name="sweep_expired_holds")
async def sweep_expired_holds(timestamp: int) -> int:
    """Every minute: one hold-release job per active tenant."""
    return await defer_for_each_tenant(release_expired_holds, lock_prefix="holds")
