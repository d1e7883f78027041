"""Background jobs of notifications: delivering, retrying, waking deferred ones, reminders,
followers of a changed unit or listing, and dropping stale devices."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

import procrastinate
import structlog
from sqlalchemy import Insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from api.db import utcnow
from api.jobs import defer_for_each_tenant, defer_woken, enqueue, runtime, tenant_task
from api.live import outbox
from api.notify import delivery, service, templates
from api.notify.models import Delivery, JsonObject, Notification
from tenants.registry import TenantInfo

log = structlog.get_logger("anju.notify")
blueprint = procrastinate.Blueprint()

HOLD_WARNING = timedelta(minutes=10)
DELIVER_DUE_BATCH = 2000  # lost deliveries sent a job


def enqueue_delivery(tenant: str, ids: list[str], scheduled_at: datetime | None = None) -> Insert:
    """The statement that queues ``deliver`` in the caller's transaction."""
    return enqueue(deliver, tenant=tenant, ids=ids, scheduled_at=scheduled_at)


@tenant_task(blueprint)
async def deliver(session: AsyncSession, tenant: TenantInfo, ids: list[str]) -> JsonObject:
    """Send these deliveries (those still due); queue the next attempt when some wait. Not
    retried by the queue: failures are retried per delivery (and ``deliver_due`` sweeps up
    deliveries whose job failed), and a refused job (no tenant) can never succeed."""
    rt = runtime()
    out = await delivery.deliver(
        session, [uuid.UUID(i) for i in ids], senders=rt.senders, kit=rt.kit
    )
    if out.next_at is not None:
        await session.execute(enqueue_delivery(tenant.slug, ids, scheduled_at=out.next_at))
    return out.__dict__ | {"next_at": out.next_at.isoformat() if out.next_at else None}


@tenant_task(blueprint, wakeup="deliver-due", limit=DELIVER_DUE_BATCH)
async def deliver_due(session: AsyncSession, tenant: TenantInfo) -> int:
    """Safety net: deliveries due for over a minute that no job carries (a worker lost its
    queued job, or a deferral outlived the queue's retention) are sent now."""
    stale = utcnow() - timedelta(minutes=1)
    ids = list(
        await session.scalars(
            select(Delivery.id)
            .where(Delivery.status.in_(("pending", "deferred")), Delivery.next_attempt_at < stale)
            .limit(DELIVER_DUE_BATCH)
        )
    )
    if ids:
        rt = runtime()
        await delivery.deliver(session, ids, senders=rt.senders, kit=rt.kit)
    return len(ids)


@tenant_task(blueprint, wakeup="hold-reminders")
async def remind_expiring_holds(session: AsyncSession, tenant: TenantInfo) -> int:
    """A hold about to expire (within 10 minutes): tell its agent, once per hold."""
    from api.unit.models import Unit

    now = utcnow()
    units = (
        await session.scalars(
            select(Unit).where(
                Unit.status == "on_hold",
                Unit.hold_expires_at > now,
                Unit.hold_expires_at <= now + HOLD_WARNING,
                Unit.held_by.is_not(None),
            )
        )
    ).all()
    sent = 0
    for u in units:
        expires, agent = u.hold_expires_at, u.held_by
        if expires is None or agent is None:  # (neither is: the query asks for both)
            continue
        ref = f"hold:{u.id}:{expires.isoformat()}"
        seen = await session.scalar(
            select(Notification.id)
            .where(
                Notification.template == "hold.expiring", Notification.params["ref"].astext == ref
            )
            .limit(1)
        )
        if seen is not None:
            continue
        minutes = max(1, math.ceil((expires - now).total_seconds() / 60))
        await service.notify(
            session,
            tenant.slug,
            [agent],
            "system",
            "hold.expiring",
            {"number": u.number, "minutes": minutes, "ref": ref},
            urgent=True,
            data={"kind": "unit", "id": str(u.id)},
        )
        sent += 1
    return sent


@tenant_task(blueprint)
async def notify_followers(
    session: AsyncSession, tenant: TenantInfo, events: list[JsonObject]
) -> int:
    """Followers of a unit or listing whose status or price changed get a notification."""
    from api.follow.service import followers

    made = 0
    for ev in events:
        kind, change = ev["kind"].split(".", 1)
        p = ev["payload"]
        entity = uuid.UUID(ev["entity"])
        accounts = await followers(session, kind, entity)
        if not accounts:
            continue
        params: JsonObject
        if kind == "unit":
            params = {
                "number": p["number"],
                "status": p["status"],
                "price": templates.money(p["list_price"], p["currency"]),
            }
        else:
            params = {
                "community": p["community"],
                "rooms": p["rooms"],
                "status": p["status"],
                "price": templates.money(p["asking_price"], p["currency"]),
            }
        made += len(
            await service.notify(
                session,
                tenant.slug,
                accounts,
                "listing_updates",
                f"{kind}.{change}",
                params,
                data={"kind": kind, "id": str(entity)},
            )
        )
    return made


def _react(session: Session, events: list[JsonObject]) -> None:
    """Outbox reactor: status and price changes of units and listings queue one
    ``notify_followers`` job per flush, in the same transaction."""
    wanted = [e for e in events if e["kind"] in FOLLOWED_KINDS]
    slug = session.info.get("tenant_slug")
    if wanted and slug:
        session.execute(enqueue(notify_followers, tenant=slug, events=wanted))


FOLLOWED_KINDS = {"unit.status", "unit.price", "listing.status", "listing.price"}
outbox.react(_react)


@tenant_task(blueprint)
async def publish_notice(
    session: AsyncSession, tenant: TenantInfo, title: str, body: str, roles: list[str], urgent: bool
) -> int:
    """A tenant notice to its members: the fan-out runs here, not in the request."""
    return await service.publish_notice(
        session, tenant.slug, tenant.id, title=title, body=body, roles=roles, urgent=urgent
    )


@tenant_task(blueprint)
async def prune_devices(session: AsyncSession, tenant: TenantInfo) -> int:
    return await service.prune_devices(session)


@blueprint.periodic(cron="* * * * *", periodic_id="notify-minute")
@blueprint.task(name="sweep_notifications")
async def sweep_notifications(timestamp: int) -> int:
    """Every minute, for tenants with one due: hold reminders, and deliveries no job carries."""
    return await defer_woken(remind_expiring_holds) + await defer_woken(deliver_due)


@blueprint.periodic(cron="17 3 * * *", periodic_id="notify-devices")
@blueprint.task(name="sweep_devices")
async def sweep_devices(timestamp: int) -> int:
    """Daily: drop devices unused for 270 days."""
    return await defer_for_each_tenant(prune_devices, lock_prefix="prune-devices")
