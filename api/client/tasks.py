"""Background jobs of clients: reminders of follow-ups coming due (notification centre), the
shared pool, lead offers, and profiles rebuilt from behaviour."""

from __future__ import annotations

import uuid
from datetime import timedelta

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from api.client import profile, routing, service
from api.client.models import Client
from api.db import utcnow
from api.jobs import defer_for_each_tenant, defer_woken, tenant_task
from api.notify import service as notify
from tenants.registry import TenantInfo

blueprint = procrastinate.Blueprint()

REMIND_AHEAD = timedelta(minutes=15)


@tenant_task(blueprint, wakeup="follow-up-reminders", limit=service.REMINDER_BATCH)
async def remind_follow_ups(session: AsyncSession, tenant: TenantInfo) -> int:
    """Scheduled follow-ups due within 15 minutes: their agent gets one reminder each."""
    now = utcnow()
    due = await service.due_for_reminder(session, now, REMIND_AHEAD)
    for f, name in due:
        # due_for_reminder selects follow-ups with a due time and an assignee only
        assert f.due_at is not None and f.assignee_id is not None
        local = f.due_at.astimezone(tenant.zone).strftime("%H:%M")
        await notify.notify(
            session,
            tenant.slug,
            [f.assignee_id],
            "leads",
            "followup.due",
            {"time": local, "client": name, "note": f.next_step or ""},
            data={"kind": "client", "id": str(f.client_id)},
        )
        f.reminded_at = now
    await session.flush()
    return len(due)


@tenant_task(blueprint)
async def return_neglected(session: AsyncSession, tenant: TenantInfo) -> int:
    """Neglected clients back to the shared pool (the tenant's crm.neglect_days)."""
    from api.setting import service as settings

    return await service.return_neglected(
        session, days=await settings.get(session, "crm.neglect_days")
    )


@blueprint.periodic(cron="7 * * * *", periodic_id="client-pool")
@blueprint.task(name="sweep_neglected_clients")
async def sweep_neglected_clients(timestamp: int) -> int:
    """Hourly: neglected clients of every tenant return to the pool."""
    return await defer_for_each_tenant(return_neglected, lock_prefix="client-pool")


@blueprint.periodic(cron="* * * * *", periodic_id="client-reminders")
@blueprint.task(name="sweep_follow_up_reminders")
async def sweep_follow_up_reminders(timestamp: int) -> int:
    return await defer_woken(remind_follow_ups)


@tenant_task(blueprint, wakeup="lead-offers", limit=routing.OFFER_BATCH)
async def expire_lead_offers(session: AsyncSession, tenant: TenantInfo) -> int:
    """Leads nobody claimed in time go to the rule's next team (notified), or to the pool."""
    moved = await routing.expire_offers(session)
    for client, routed in moved:
        await routing.announce(session, client, routed)
    return len(moved)


@blueprint.periodic(cron="* * * * *", periodic_id="lead-offers")
@blueprint.task(name="sweep_lead_offers")
async def sweep_lead_offers(timestamp: int) -> int:
    return await defer_woken(expire_lead_offers)


async def _tell_if_warmer(
    session: AsyncSession, tenant: TenantInfo, done: tuple[Client, str | None] | None
) -> None:
    """The owner hears when a client's behaviour first suggests grade A."""
    if done is None:
        return
    client, before = done
    if client.suggested_grade == "A" and before != "A" and client.owner_id is not None:
        await notify.notify(
            session,
            tenant.slug,
            [client.owner_id],
            "leads",
            "client.hot",
            {"client": client.name},
            data={"kind": "client", "id": str(client.id)},
        )


@tenant_task(blueprint)
async def refresh_profile(session: AsyncSession, tenant: TenantInfo, client_id: str) -> str | None:
    """One client's profile and suggested grade, after what they did changed."""
    done = await profile.refresh(session, uuid.UUID(client_id))
    await _tell_if_warmer(session, tenant, done)
    return done[0].suggested_grade if done else None


@tenant_task(blueprint)
async def refresh_profiles(session: AsyncSession, tenant: TenantInfo) -> int:
    """Daily: the profiles that time alone changes (a grade fades when the client goes quiet)
    are queued for a rebuild, one small job each (spread over the workers, none holding many
    rows), and activity past its retention is deleted."""
    now = utcnow()
    ids = await profile.stale(session, now)
    await profile.queue_refresh(session, tenant.slug, ids)
    await profile.prune(session, now)
    return len(ids)


@blueprint.periodic(cron="30 18 * * *", periodic_id="client-profiles")  # 02:30 in Shanghai
@blueprint.task(name="sweep_client_profiles")
async def sweep_client_profiles(timestamp: int) -> int:
    return await defer_for_each_tenant(refresh_profiles, lock_prefix="client-profiles")
