"""The notification centre: devices, notify (inbox first, then deliveries per channel, handed
to the job worker in the same transaction), the inbox, preferences and quiet hours.

Nothing here sends anything: api/notify/delivery.py does, in the worker."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, Executable, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import utcnow
from api.errors import ValidationFailed
from api.ids import uuid7
from api.live import outbox
from api.notify.models import (
    APPS,
    CATEGORIES,
    PLATFORMS,
    Delivery,
    Device,
    JsonObject,
    Notification,
    Preference,
    QuietHours,
)
from api.notify.templates import locale_of, render
from api.validate import text
from tenants.registry import TenantError, TenantInfo, validate_time_zone
from tenants.sessions import tenant_of

DEVICE_IDLE_DAYS = 270
JOB_SIZE = 500  # deliveries per deliver job (one FCM batch)


@dataclass(frozen=True, slots=True)
class Channels:
    """The channels an account gets a category's notifications on."""

    push: bool
    email: bool
    sms: bool

    @classmethod
    def of(cls, p: Preference) -> Channels:
        return cls(push=p.push, email=p.email, sms=p.sms)


# Channels a category uses when the account has not chosen (marketing needs consent: off).
DEFAULTS = {c: Channels(push=c != "marketing", email=False, sms=False) for c in CATEGORIES}


# ---------------------------------------------------------------- devices


async def register_device(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    app: str,
    platform: str,
    token: str = "",
    installation_id: str = "",
    locale: str = "zh-CN",
    app_version: str = "",
) -> Device:
    """Register (or refresh) this device for the account: its FCM registration token, or
    only its Firebase installation ID (FCM then addresses the installation). An address is one
    device: one seen before moves to this account (the phone changed hands or signed in
    again); a new token for a known installation replaces the old one."""
    if app not in APPS:
        raise ValidationFailed(f"app is one of {', '.join(APPS)}", "app")
    if platform not in PLATFORMS:
        raise ValidationFailed(f"platform is one of {', '.join(PLATFORMS)}", "platform")
    token = text(token, "token", required=False, max_len=4096)
    installation_id = text(installation_id, "installationId", required=False, max_len=200)
    if not token and not installation_id:
        raise ValidationFailed("give the FCM registration token or the installation id", "token")
    is_fid = not token
    token = token or installation_id
    app_version = text(app_version, "appVersion", required=False, max_len=40)
    now = utcnow()
    if installation_id:  # one installation is one device: its older token goes
        await session.execute(
            delete(Device).where(
                Device.installation_id == installation_id,
                Device.token != token,
            )
        )
    values: dict[str, Any] = dict(
        account_id=account_id,
        app=app,
        platform=platform,
        is_fid=is_fid,
        installation_id=installation_id,
        locale=locale_of(locale),
        app_version=app_version,
        last_seen_at=now,
    )
    stmt = (
        insert(Device)
        .values(id=uuid7(), token=token, created_at=now, **values)
        .on_conflict_do_update(index_elements=[Device.token], set_=values)
        .returning(Device.id)
    )
    device_id = (await session.execute(stmt)).scalar_one()
    device = await session.get(Device, device_id, populate_existing=True)
    assert device is not None, "the device was just written"  # in this transaction
    return device


async def unregister_device(session: AsyncSession, account_id: uuid.UUID, token: str) -> bool:
    stmt = delete(Device).where(Device.account_id == account_id, Device.token == token)
    return bool(await _changed(session, stmt))


async def prune_devices(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Drop devices not seen for 270 days (their tokens are stale)."""
    cutoff = (now or utcnow()) - timedelta(days=DEVICE_IDLE_DAYS)
    return await _changed(session, delete(Device).where(Device.last_seen_at < cutoff))


async def _changed(session: AsyncSession, stmt: Executable) -> int:
    """How many rows an UPDATE or DELETE changed. (``execute`` is typed as returning a Result;
    for these statements it is a CursorResult, which counts them.)"""
    result = cast("CursorResult[Any]", await session.execute(stmt))
    return result.rowcount or 0


# ---------------------------------------------------------------- notify


async def preferences(session: AsyncSession, account_id: uuid.UUID) -> dict[str, Channels]:
    """One account's channels for every category (defaults where it has not chosen)."""
    rows = (
        await session.scalars(select(Preference).where(Preference.account_id == account_id))
    ).all()
    chosen = {r.category: Channels.of(r) for r in rows}
    return {c: chosen.get(c, DEFAULTS[c]) for c in CATEGORIES}


async def quiet_hours(session: AsyncSession, account_id: uuid.UUID) -> QuietHours | None:
    """One account's quiet hours (None: none), read fresh (a write this operation made)."""
    return await session.get(QuietHours, account_id, populate_existing=True)


async def channels_of(
    session: AsyncSession, account_ids: Sequence[uuid.UUID], category: str
) -> dict[uuid.UUID, Channels]:
    rows = (
        await session.scalars(
            select(Preference).where(
                Preference.account_id.in_(list(account_ids)), Preference.category == category
            )
        )
    ).all()
    chosen = {r.account_id: Channels.of(r) for r in rows}
    return {a: chosen.get(a, DEFAULTS[category]) for a in account_ids}


async def notify(
    session: AsyncSession,
    tenant_slug: str,
    account_ids: Iterable[uuid.UUID],
    category: str,
    template: str,
    params: JsonObject,
    *,
    urgent: bool = False,
    data: JsonObject | None = None,
) -> list[Notification]:
    """Put a notification in each account's inbox (in its device's language), and a delivery
    per chosen channel (push: per device); the deliveries go to the worker with this
    transaction. Urgent ones ignore quiet hours and throttling."""
    from api.notify import tasks  # the deliver task (tasks imports this module)

    if category not in CATEGORIES:
        raise ValueError(f"unknown notification category {category!r}")
    accounts = list(dict.fromkeys(account_ids))
    if not accounts:
        return []
    devices: dict[uuid.UUID, list[Device]] = {a: [] for a in accounts}
    for d in (
        await session.scalars(
            select(Device)
            .where(Device.account_id.in_(accounts))
            .order_by(Device.last_seen_at.desc())
        )
    ).all():
        devices[d.account_id].append(d)
    wanted = await channels_of(session, accounts, category)
    now = utcnow()
    made: list[Notification] = []
    deliveries: list[Delivery] = []
    for account in accounts:
        locale = devices[account][0].locale if devices[account] else tenant_of(session).locale
        title, body = render(template, locale, params)
        n = Notification(
            id=uuid7(),
            account_id=account,
            category=category,
            urgent=urgent,
            template=template,
            params=params,
            locale=locale,
            title=title,
            body=body,
            data=data or {},
            created_at=now,
        )
        made.append(n)
        channels = wanted[account]
        if channels.push:
            deliveries += [
                Delivery(
                    id=uuid7(),
                    notification_id=n.id,
                    account_id=account,
                    category=category,
                    channel="push",
                    device_id=d.id,
                    next_attempt_at=now,
                )
                for d in devices[account]
            ]
        for channel, on in (("email", channels.email), ("sms", channels.sms)):
            if on:
                deliveries.append(
                    Delivery(
                        id=uuid7(),
                        notification_id=n.id,
                        account_id=account,
                        category=category,
                        channel=channel,
                        next_attempt_at=now,
                    )
                )
    session.add_all(made)
    await session.flush()
    session.add_all(deliveries)
    for n in made:  # the live inbox
        outbox.emit(session, "notification.created", n.id, inbox_payload(n))
    await session.flush()
    ids = [str(d.id) for d in deliveries]
    for start in range(0, len(ids), JOB_SIZE):  # several workers share a large notice
        await session.execute(tasks.enqueue_delivery(tenant_slug, ids[start : start + JOB_SIZE]))
    return made


def inbox_payload(n: Notification) -> JsonObject:
    return {
        "notification_id": str(n.id),
        "account_id": str(n.account_id),
        "category": n.category,
        "urgent": n.urgent,
        "title": n.title,
        "body": n.body,
        "data": n.data,
        "created_at": n.created_at.isoformat(),
    }


# ---------------------------------------------------------------- inbox


@dataclass(frozen=True, slots=True)
class InboxPage:
    items: list[Notification]
    has_more: bool


async def inbox(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    first: int,
    before: uuid.UUID | None,
    unread_only: bool,
) -> InboxPage:
    stmt = select(Notification).where(Notification.account_id == account_id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    if before is not None:
        stmt = stmt.where(Notification.id < before)
    rows = (await session.scalars(stmt.order_by(Notification.id.desc()).limit(first + 1))).all()
    return InboxPage(list(rows[:first]), len(rows) > first)


async def unread_count(session: AsyncSession, account_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(
        Notification.account_id == account_id, Notification.read_at.is_(None)
    )
    return (await session.scalar(stmt)) or 0


async def mark_read(
    session: AsyncSession, account_id: uuid.UUID, ids: list[uuid.UUID] | None
) -> int:
    """Mark the given notifications (None: all) of the account read; returns how many."""
    stmt = update(Notification).where(
        Notification.account_id == account_id, Notification.read_at.is_(None)
    )
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(ids))
    return await _changed(session, stmt.values(read_at=utcnow()))


# ---------------------------------------------------------------- preferences


async def set_preference(
    session: AsyncSession,
    account_id: uuid.UUID,
    category: str,
    *,
    push: bool,
    email: bool,
    sms: bool,
) -> None:
    if category not in CATEGORIES:
        raise ValidationFailed(f"category is one of {', '.join(CATEGORIES)}", "category")
    values = {"push": push, "email": email, "sms": sms}
    await session.execute(
        insert(Preference)
        .values(account_id=account_id, category=category, **values)
        .on_conflict_do_update(
            index_elements=[Preference.account_id, Preference.category], set_=values
        )
    )


async def set_quiet_hours(
    session: AsyncSession,
    account_id: uuid.UUID,
    start: int | None,
    end: int | None,
    time_zone: str | None = None,
) -> None:
    """Quiet hours as minutes after midnight (None, None: none), in ``time_zone`` (default: the
    tenant's)."""
    if start is None and end is None:
        await session.execute(delete(QuietHours).where(QuietHours.account_id == account_id))
        return
    time_zone = time_zone or tenant_of(session).time_zone
    check_quiet_hours(start, end, time_zone)
    values = {"start_minute": start, "end_minute": end, "time_zone": time_zone}
    await session.execute(
        insert(QuietHours)
        .values(account_id=account_id, **values)
        .on_conflict_do_update(index_elements=[QuietHours.account_id], set_=values)
    )


def check_quiet_hours(start: int | None, end: int | None, time_zone: str) -> None:
    if start is None or end is None or not (0 <= start < 1440 and 0 <= end < 1440) or start == end:
        raise ValidationFailed("quiet hours are two different times of day", "quietHours")
    try:
        validate_time_zone(time_zone)
    except TenantError as exc:
        raise ValidationFailed(exc.message, "timeZone") from exc


def quiet_until(q: QuietHours | None, now: datetime) -> datetime | None:
    """When the quiet hours that contain ``now`` end (None: not quiet now)."""
    if q is None:
        return None
    local = now.astimezone(ZoneInfo(q.time_zone))
    minute = local.hour * 60 + local.minute
    start, end = q.start_minute, q.end_minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    end_today = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if end_today <= local:
        end_today += timedelta(days=1)
    return end_today.astimezone(now.tzinfo)


# ---------------------------------------------------------------- notices


NOTICE_CHUNK = 1000  # recipients per notify() call of a notice
ROLE_NAME = re.compile(r"[a-z0-9_.:-]{1,64}")


async def notice_recipients(
    session: AsyncSession, tenant_id: str, roles: list[str]
) -> list[uuid.UUID]:
    """Active members of the tenant (with one of ``roles``, when given)."""
    from api.identity.models import Membership

    stmt = select(Membership.account_id).where(
        Membership.tenant_id == uuid.UUID(str(tenant_id)), Membership.status == "active"
    )
    if roles:
        stmt = stmt.where(Membership.roles.overlap(roles))
    return list(await session.scalars(stmt))


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice as checked (``check_notice``): ready to queue."""

    title: str
    body: str
    roles: list[str]  # without repeats; empty: every member
    urgent: bool = False


def check_notice(title: str, body: str, roles: list[str], *, urgent: bool = False) -> Notice:
    title = text(title, "title", required=True, max_len=100)
    body = text(body, "text", required=True, max_len=2000)
    if len(roles) > 20 or any(not ROLE_NAME.fullmatch(r or "") for r in roles):
        raise ValidationFailed("roles are at most 20 role names", "roles")
    return Notice(title, body, list(dict.fromkeys(roles)), urgent)


async def queue_notice(session: AsyncSession, tenant: TenantInfo, notice: Notice) -> int:
    """Queue a checked notice for the job (``publish_notice``), with this transaction; returns
    how many members it is for now."""
    from api.jobs import enqueue
    from api.notify import tasks  # tasks imports this module

    recipients = len(await notice_recipients(session, tenant.id, notice.roles))
    await session.execute(
        enqueue(
            tasks.publish_notice,
            tenant=tenant.slug,
            title=notice.title,
            body=notice.body,
            roles=notice.roles,
            urgent=notice.urgent,
        )
    )
    return recipients


async def publish_notice(
    session: AsyncSession,
    tenant_slug: str,
    tenant_id: str,
    *,
    title: str,
    body: str,
    roles: list[str],
    urgent: bool,
) -> int:
    """The notice job's work: every recipient gets it (in chunks, each queuing its own
    delivery jobs). Returns how many were notified."""
    accounts = await notice_recipients(session, tenant_id, roles)
    for start in range(0, len(accounts), NOTICE_CHUNK):
        await notify(
            session,
            tenant_slug,
            accounts[start : start + NOTICE_CHUNK],
            "property_notices",
            "notice",
            {"title": title, "text": body},
            urgent=urgent,
            data={"kind": "notice"},
        )
    return len(accounts)
