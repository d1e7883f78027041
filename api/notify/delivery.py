"""Sending deliveries, in the job worker (never in a GraphQL request).

For each due delivery: a non-urgent push waits out the account's quiet hours (``deferred``,
then sent at their end), and at most one non-urgent push per account and category goes out an
hour (the rest are ``collapsed``: in the inbox only). Pushes go to FCM in batches of at most
500. Per FCM error:

- UNREGISTERED, SENDER_ID_MISMATCH, INVALID_ARGUMENT: the device's token is dropped;
- QUOTA_EXCEEDED: retried after at least 60 s (or FCM's Retry-After if longer);
- UNAVAILABLE, INTERNAL, other: retried with jittered exponential back-off, then ``failed``;
- THIRD_PARTY_AUTH_ERROR (APNs / web push credentials): an alert in the log, the tokens are
  kept, the delivery is ``failed``.

Email and SMS go through the same senders as the rest of the app (console / capture / SMTP)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import utcnow
from api.notify import Senders
from api.notify.models import Delivery, Device, Notification, QuietHours
from api.notify.push import PushMessage
from api.notify.service import quiet_until

if TYPE_CHECKING:
    from api.security.kit import SecurityKit

log = structlog.get_logger("anju.notify")

THROTTLE = timedelta(hours=1)
QUOTA_BACKOFF = 60.0
MAX_ATTEMPTS = 6
DROP = {"UNREGISTERED", "SENDER_ID_MISMATCH", "INVALID_ARGUMENT"}


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before retry ``attempts`` (1, 2, ...): 10 s doubling, jittered ±50%, ≤ 1 h."""
    base = min(3600.0, 10.0 * 2 ** (attempts - 1))
    return base * (rng or random).uniform(0.5, 1.5)


@dataclass
class Outcome:
    sent: int = 0
    deferred: int = 0
    collapsed: int = 0
    dropped: int = 0
    retry: int = 0
    failed: int = 0
    skipped: int = 0
    next_at: datetime | None = None  # the earliest retry or deferral: deliver again then

    def later(self, when: datetime) -> None:
        self.next_at = when if self.next_at is None else min(self.next_at, when)


async def deliver(
    session: AsyncSession,
    ids: list[uuid.UUID],
    *,
    senders: Senders,
    kit: SecurityKit | None = None,
    now: datetime | None = None,
) -> Outcome:
    now = now or utcnow()
    out = Outcome()
    rows = (
        await session.execute(
            select(Delivery, Notification)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(Delivery.id.in_(ids), Delivery.status.in_(("pending", "deferred")))
            .order_by(Delivery.id)
            .with_for_update(of=Delivery, skip_locked=True)
        )
    ).all()
    if not rows:
        return out
    accounts = {d.account_id for d, _ in rows}
    quiet = {
        q.account_id: q
        for q in (
            await session.scalars(select(QuietHours).where(QuietHours.account_id.in_(accounts)))
        ).all()
    }
    # Non-urgent pushes sent this hour, by (account, category): the notification that used
    # the hour's push (its other devices and retries still go).
    recent: dict[tuple[uuid.UUID, str], set[uuid.UUID]] = {}
    for account, category, notification in (
        await session.execute(
            select(Delivery.account_id, Delivery.category, Delivery.notification_id)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(
                Delivery.account_id.in_(accounts),
                Delivery.channel == "push",
                Delivery.status == "sent",
                Delivery.sent_at > now - THROTTLE,
                Notification.urgent.is_(False),
            )
        )
    ).all():
        recent.setdefault((account, category), set()).add(notification)
    devices = {
        d.id: d
        for d in (
            await session.scalars(
                select(Device).where(Device.id.in_([d.device_id for d, _ in rows if d.device_id]))
            )
        ).all()
    }
    pushes: list[tuple[Delivery, Device, PushMessage]] = []
    # (account, category) -> the notification pushed now
    this_run: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    for d, n in rows:
        if d.next_attempt_at is not None and d.next_attempt_at > now:
            out.later(d.next_attempt_at)  # not due yet (a retry or the end of quiet hours)
            continue
        if d.channel != "push":
            await _send_other(session, d, n, senders, kit, now, out)
            continue
        if not n.urgent:
            until = quiet_until(quiet.get(d.account_id), now)
            if until is not None:
                d.status, d.next_attempt_at = "deferred", until
                out.deferred += 1
                out.later(until)
                continue
            key = (d.account_id, d.category)
            if recent.get(key, set()) - {n.id} or this_run.get(key, n.id) != n.id:
                d.status = "collapsed"
                out.collapsed += 1
                continue
            this_run[key] = n.id
        device = devices.get(d.device_id) if d.device_id is not None else None
        if device is None:  # the token was dropped meanwhile
            d.status = "dropped"
            out.dropped += 1
            continue
        data = {
            "notificationId": str(n.id),
            "category": n.category,
            **{k: str(v) for k, v in (n.data or {}).items()},
        }
        message = PushMessage(
            device.token,
            n.title,
            n.body,
            data,
            n.urgent,
            collapse_key=n.category,
            fid=device.is_fid,
        )
        pushes.append((d, device, message))
    if pushes:
        # Only the job worker delivers, and its senders have the push sender.
        assert senders.push is not None, "deliveries are sent without a push sender"
        results = await senders.push.send([m for _, _, m in pushes])
        gone: set[uuid.UUID] = set()
        for (d, device, _), r in zip(pushes, results, strict=True):
            d.attempts += 1
            if r.ok:
                d.status, d.sent_at, d.last_error = "sent", now, ""
                out.sent += 1
                continue
            d.last_error = f"{r.code}: {r.detail}"[:300]
            if r.code in DROP:
                d.status = "dropped"
                gone.add(device.id)
                out.dropped += 1
            elif r.code == "THIRD_PARTY_AUTH_ERROR":
                log.error(
                    "ALERT push credentials refused by the platform (APNs / web push): "
                    "fix the Firebase project's settings; tokens kept",
                    device=str(device.id),
                    detail=r.detail,
                )
                d.status = "failed"
                out.failed += 1
            elif r.code == "QUOTA_EXCEEDED":
                _retry(d, now, max(QUOTA_BACKOFF, r.retry_after or 0), out)
            else:
                _retry(d, now, backoff(d.attempts), out)
        if gone:
            await session.execute(delete(Device).where(Device.id.in_(gone)))
    await session.flush()
    return out


def _retry(d: Delivery, now: datetime, seconds: float, out: Outcome) -> None:
    if d.attempts >= MAX_ATTEMPTS:
        d.status = "failed"
        out.failed += 1
        return
    d.status, d.next_attempt_at = "pending", now + timedelta(seconds=seconds)
    out.retry += 1
    out.later(d.next_attempt_at)


async def _send_other(
    session: AsyncSession,
    d: Delivery,
    n: Notification,
    senders: Senders,
    kit: SecurityKit | None,
    now: datetime,
    out: Outcome,
) -> None:
    from api.identity.models import Account
    from api.identity.service import account_email, account_phone

    account = await session.get(Account, d.account_id)
    address = None
    if account is not None and kit is not None:
        address = (account_email if d.channel == "email" else account_phone)(kit, account)
    if not address:
        d.status, d.last_error = "skipped", f"no {d.channel} address"
        out.skipped += 1
        return
    d.attempts += 1
    try:
        if d.channel == "email":
            await senders.email.send(address, n.title, n.body)
        else:
            await senders.sms.send(address, f"{n.title}: {n.body}")
    except Exception as exc:  # the server refused or is down: back off and retry
        d.last_error = f"{type(exc).__name__}: {exc}"[:300]
        _retry(d, now, backoff(d.attempts), out)
        return
    d.status, d.sent_at = "sent", now
    out.sent += 1
