"""Background jobs of units: expired holds go back on the market."""

from __future__ import annotations

import procrastinate

from api.jobs import defer_woken, tenant_task
from api.unit import service

blueprint = procrastinate.Blueprint()


@tenant_task(blueprint, wakeup="holds", limit=service.RELEASE_BATCH)
async def release_expired_holds(session, tenant) -> int:
    """Every expired hold of the tenant becomes available again, with a timeline entry."""
    return await service.release_expired_holds(session)


@blueprint.periodic(cron="* * * * *", periodic_id="holds")
@blueprint.task(name="sweep_expired_holds")
async def sweep_expired_holds(timestamp: int) -> int:
    """Every minute: a hold-release job for each tenant with a hold expired."""
    return await defer_woken(release_expired_holds)
