"""Subscriptions (认购): the rules. Never commits: the request or job owns the transaction.

A client subscribes a unit reserved for them: the price is locked from the unit's list price
less a discount (an amount or a percent, rounded to the minor unit). A discount above the
tenant's ``sales.max_discount_pct`` waits for someone else with
``sales.subscription.approve_discount`` (the subscription is ``pending_approval`` and the unit
stays reserved); otherwise, or once approved, the unit becomes ``subscribed`` under its row
lock, the contract is to be signed by the end of the day ``sales.sign_deadline_days`` later in
the tenant's time zone, and the client's active pledge for the project is converted. More days
are asked for and decided by someone else with ``sales.subscription.extend``. Changing unit
(换房) moves the subscription (and its deposit) to an available unit of the project and locks
the price again; withdrawing (退房) puts the unit back on sale and refunds the reservation's
deposit by ``sales.withdraw_refund_pct`` (the rest kept). See docs/sales.md."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.client import service as clients
from api.db import utcnow
from api.errors import Conflict, Forbidden, NotFound, ValidationFailed
from api.identity.auth import Principal
from api.ids import uuid7
from api.money import format_money
from api.payment import service as payments
from api.payment.models import Payment
from api.sales import subscription_repository as repo
from api.sales.models import (
    OPEN_SUBSCRIPTION,
    SUBSCRIPTION_STATUSES,
    Subscription,
    SubscriptionRequest,
)
from api.settings import Settings
from api.unit import service as units
from api.unit.models import Unit
from api.validate import text
from tenants.sessions import tenant_of

MAX_EXTENSION_DAYS = 30
MAX_PAGE = 100
HUNDRED = Decimal(100)
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Discount:
    """At most one of: an amount in minor units, or a percent of the list price (two
    decimals at most). Neither: no discount."""

    amount: int | None = None
    percent: Decimal | None = None


@dataclass(frozen=True, slots=True)
class LockedPrice:
    list_price: int
    discount: int
    discount_pct: Decimal  # shown, two decimals
    agreed_price: int
    needs_approval: bool


def lock_price(list_price: int | None, d: Discount, limit: Decimal, currency: str) -> LockedPrice:
    """The unit's list price less the discount. ``needs_approval`` when the discount is above
    ``limit`` percent of the list price (compared exactly, not rounded)."""
    if list_price is None or list_price <= 0:
        raise ValidationFailed("the unit has no list price", "unitId")
    if d.amount is not None and d.percent is not None:
        raise ValidationFailed("give a discount amount or a percent, not both", "discountAmount")
    discount = 0
    if d.amount is not None:
        if not 0 <= d.amount < list_price:
            top = format_money(list_price, currency)
            raise ValidationFailed(
                f"discountAmount is 0 or more and less than the list price ({top})",
                "discountAmount",
            )
        discount = d.amount
    elif d.percent is not None:
        pct = d.percent
        exponent = pct.as_tuple().exponent
        if (
            not pct.is_finite()
            or not isinstance(exponent, int)
            or exponent < -2
            or not 0 <= pct < HUNDRED
        ):
            raise ValidationFailed(
                "discountPercent is 0 or more and less than 100, with two decimals at most",
                "discountPercent",
            )
        discount = int((Decimal(list_price) * pct / HUNDRED).quantize(1, ROUND_HALF_UP))
        if discount >= list_price:  # 99.99% of one fen rounds to the whole price
            raise ValidationFailed("the discount leaves nothing to pay", "discountPercent")
    shown = (Decimal(discount) * HUNDRED / list_price).quantize(CENT, ROUND_HALF_UP)
    return LockedPrice(
        list_price=list_price,
        discount=discount,
        discount_pct=shown,
        agreed_price=list_price - discount,
        needs_approval=Decimal(discount) * HUNDRED > limit * list_price,
    )


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The last second of ``day`` in ``zone`` (a deadline: until the end of that day), in UTC
    (as it is stored and read back)."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone).astimezone(UTC)


def deadline(now: datetime, zone: ZoneInfo, days: int) -> datetime:
    """The end of the day ``days`` after ``now``'s local date."""
    return end_of_day(now.astimezone(zone).date() + timedelta(days=days), zone)


async def _scope(session: AsyncSession, p: Principal) -> ColumnElement[bool]:
    """A subscription is seen by whoever sees its client (the client's data scope)."""
    return await clients.visible(session, p)


async def _visible(
    session: AsyncSession, p: Principal, subscription_id: uuid.UUID, *, lock: bool = False
) -> Subscription:
    row = await repo.visible_subscription(
        session, subscription_id, await _scope(session, p), lock=lock
    )
    if row is None:  # another scope's subscription and a missing one look the same
        raise NotFound("subscription not found", "subscriptionId")
    return row


async def _limit(session: AsyncSession) -> Decimal:
    from api.setting import service as tenant_settings

    limit: Decimal = await tenant_settings.get(session, "sales.max_discount_pct")
    return limit


def _price_of(sub: Subscription, price: LockedPrice) -> None:
    sub.list_price, sub.discount = price.list_price, price.discount
    sub.discount_pct, sub.agreed_price = price.discount_pct, price.agreed_price


def _discount_request(
    sub: Subscription, price: LockedPrice, actor: uuid.UUID, reason: str
) -> SubscriptionRequest:
    return SubscriptionRequest(
        id=uuid7(),
        subscription_id=sub.id,
        kind="discount",
        status="pending",
        unit_id=sub.unit_id,
        list_price=price.list_price,
        agreed_price=price.agreed_price,
        reason=reason,
        requested_by=actor,
        requested_at=utcnow(),
        decision_note="",
    )


async def _activate(
    session: AsyncSession, sub: Subscription, unit: Unit, actor: uuid.UUID | None
) -> None:
    """The price is agreed: the unit (locked, reserved) becomes subscribed, the signing clock
    starts (kept when it already runs: a changed unit), the client's active pledge for the
    project is converted."""
    from api.setting import service as tenant_settings

    units.deal_step(
        session,
        unit,
        "subscribed",
        actor_id=actor,
        reason="subscription",
        ref_id=sub.id,
        data={"subscription": "subscribed", "agreed_price": sub.agreed_price},
    )
    if sub.sign_deadline is None:
        days: int = await tenant_settings.get(session, "sales.sign_deadline_days")
        sub.sign_deadline = deadline(utcnow(), tenant_of(session).zone, days)
    sub.status = "active"
    if sub.pledge_id is None:
        pledge = await repo.active_pledge(session, sub.project_id, sub.client_id)
        if pledge is not None:
            pledge.status, pledge.version = "converted", pledge.version + 1
            sub.pledge_id = pledge.id


@dataclass(frozen=True, slots=True)
class SubscribeInput:
    unit_id: uuid.UUID
    client_id: uuid.UUID
    discount: Discount = Discount()
    note: str = ""


async def subscribe(session: AsyncSession, p: Principal, i: SubscribeInput) -> Subscription:
    """Subscribe the reserved unit for the client. Under the unit's row lock: of concurrent
    attempts on one unit exactly one wins, the others get CONFLICT."""
    note = text(i.note, "note", required=False, max_len=300)
    client = await clients.get_visible(session, p, i.client_id)
    unit = await units.lock_fresh(session, i.unit_id)
    if await repo.open_subscription_id(session, unit.id) is not None:
        raise Conflict("the unit already has a subscription", "unitId")
    if unit.status != "reserved":
        raise Conflict(
            f"a unit that is {unit.status} cannot be subscribed (it is reserved first)", "unitId"
        )
    deposit = await repo.paid_deposit(session, unit.id)
    if deposit is not None and deposit.client_id not in (None, client.id):
        raise Conflict("the unit is reserved for another client", "clientId")
    price = lock_price(unit.list_price, i.discount, await _limit(session), unit.currency)
    sub = Subscription(
        id=uuid7(),
        project_id=unit.project_id,
        unit_id=unit.id,
        client_id=client.id,
        agent_id=p.account_id,
        deposit_id=deposit.id if deposit is not None else None,
        status="pending_approval",
        currency=unit.currency,
        note=note,
        refunded=0,
        created_at=utcnow(),
        version=1,
    )
    _price_of(sub, price)
    if not price.needs_approval:  # written active at once (one live event: created)
        await _activate(session, sub, unit, p.account_id)
    try:
        async with session.begin_nested():
            await repo.add(session, sub)
    except IntegrityError as exc:  # (the unit's lock makes this the last word only)
        raise Conflict("the unit already has a subscription", "unitId") from exc
    if price.needs_approval:
        await repo.add(session, _discount_request(sub, price, p.account_id, note))
        units.deal_event(
            session,
            unit.id,
            actor_id=p.account_id,
            reason=note,
            ref_id=sub.id,
            data={"step": "discount_requested", "discount_pct": str(price.discount_pct)},
            price=price.agreed_price,
        )
    await session.flush()
    return sub


async def decide_discount(
    session: AsyncSession, p: Principal, subscription_id: uuid.UUID, *, approve: bool, note: str
) -> Subscription:
    """Approve (the unit becomes subscribed at the reviewed price) or reject a discount that
    waits. If the unit, its price or its status moved since the request, the request is
    ``stale``, nothing is applied and the subscription is rejected."""
    note = text(note, "note", required=False, max_len=300)
    sub = await _visible(session, p, subscription_id, lock=True)
    req = await repo.pending_request(session, sub.id, "discount")
    if sub.status != "pending_approval" or req is None:
        raise Conflict(
            f"the subscription is {sub.status}, not waiting for a discount approval",
            "subscriptionId",
        )
    if req.requested_by == p.account_id:
        raise Forbidden("a discount is approved or rejected by someone other than who asked")
    req.decided_by, req.decided_at, req.decision_note = p.account_id, utcnow(), note
    unit = await units.lock_fresh(session, sub.unit_id)
    moved = (
        req.unit_id != unit.id
        or unit.status != "reserved"
        or unit.list_price != req.list_price
        or sub.agreed_price != req.agreed_price
    )
    if not approve or moved:
        req.status = "stale" if approve else "rejected"
        if moved:
            req.decision_note = (note + " " if note else "") + "the unit changed since the request"
        sub.status, sub.version = "rejected", sub.version + 1
        step = "discount_stale" if approve else "discount_rejected"
        units.deal_event(
            session, unit.id, actor_id=p.account_id, reason=note, ref_id=sub.id, data={"step": step}
        )
    else:
        req.status = "approved"
        sub.version += 1
        await _activate(session, sub, unit, p.account_id)
    await session.flush()
    return sub


async def request_extension(
    session: AsyncSession, p: Principal, subscription_id: uuid.UUID, *, days: int, reason: str
) -> SubscriptionRequest:
    """Ask for ``days`` more to sign (after the current deadline); one pending at a time."""
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise ValidationFailed(f"an extension is 1 to {MAX_EXTENSION_DAYS} days", "days")
    reason = text(reason, "reason", required=True, max_len=300)
    sub = await _visible(session, p, subscription_id, lock=True)
    if sub.status != "active":
        raise Conflict(f"a subscription that is {sub.status} has no deadline", "subscriptionId")
    if await repo.pending_request(session, sub.id, "extension") is not None:
        raise Conflict("an extension already waits for a decision", "subscriptionId")
    req = SubscriptionRequest(
        id=uuid7(),
        subscription_id=sub.id,
        kind="extension",
        status="pending",
        days=days,
        reason=reason,
        requested_by=p.account_id,
        requested_at=utcnow(),
        decision_note="",
    )
    try:
        async with session.begin_nested():
            await repo.add(session, req)
    except IntegrityError as exc:
        raise Conflict("an extension already waits for a decision", "subscriptionId") from exc
    return req


@dataclass(frozen=True, slots=True)
class Decided:
    subscription: Subscription
    request: SubscriptionRequest


async def decide_extension(
    session: AsyncSession, p: Principal, request_id: uuid.UUID, *, approve: bool, note: str
) -> Decided:
    """Approve (the deadline moves to the end of the day ``days`` after the current one, in
    the tenant's time zone) or reject an extension; not by its requester."""
    note = text(note, "note", required=False, max_len=300)
    found = await session.get(SubscriptionRequest, request_id)
    if found is None or found.kind != "extension":
        raise NotFound("extension request not found", "requestId")
    try:  # the subscription first, then its request (the order every other step takes)
        sub = await _visible(session, p, found.subscription_id, lock=True)
    except NotFound as exc:
        raise NotFound("extension request not found", "requestId") from exc
    req = await repo.request_by_id(session, request_id)
    assert req is not None  # (requests are deleted only with their subscription)
    if req.status != "pending":
        raise Conflict(f"the request is {req.status}, not waiting for a decision", "requestId")
    if req.requested_by == p.account_id:
        raise Forbidden("an extension is approved or rejected by someone other than who asked")
    req.decided_by, req.decided_at, req.decision_note = p.account_id, utcnow(), note
    if not approve:
        req.status = "rejected"
    elif sub.status != "active" or sub.sign_deadline is None:
        req.status = "stale"
    else:
        assert req.days is not None  # an extension's days (a check constraint)
        zone = tenant_of(session).zone
        old = sub.sign_deadline
        sub.sign_deadline = end_of_day(old.astimezone(zone).date() + timedelta(req.days), zone)
        sub.version += 1
        req.status = "approved"
        units.deal_event(
            session,
            sub.unit_id,
            actor_id=p.account_id,
            reason=req.reason,
            ref_id=sub.id,
            data={
                "step": "extended",
                "days": req.days,
                "sign_deadline": sub.sign_deadline.isoformat(),
            },
        )
    await session.flush()
    return Decided(sub, req)


@dataclass(frozen=True, slots=True)
class ChangeInput:
    subscription_id: uuid.UUID
    unit_id: uuid.UUID
    reason: str
    discount: Discount = Discount()


async def change_unit(session: AsyncSession, p: Principal, i: ChangeInput) -> Subscription:
    """换房: an active subscription moves to an available unit of its project (or one the
    caller holds). The old unit goes back on sale, the new one is reserved and the price is
    locked again from its list price (a discount above the limit waits for approval again;
    the unit stays reserved meanwhile). The deposit moves with it; the deadline stays."""
    reason = text(i.reason, "reason", required=True, max_len=300)
    sub = await _visible(session, p, i.subscription_id, lock=True)
    if sub.status != "active":
        raise Conflict(f"a subscription that is {sub.status} cannot change unit", "subscriptionId")
    if i.unit_id == sub.unit_id:
        raise ValidationFailed("the subscription already has this unit", "unitId")
    locked: dict[uuid.UUID, Unit] = {}
    for uid in sorted((sub.unit_id, i.unit_id)):  # id order: two changes never deadlock
        locked[uid] = await units.lock_fresh(session, uid)
    old, new = locked[sub.unit_id], locked[i.unit_id]
    if new.project_id != sub.project_id:
        raise ValidationFailed("the new unit is not in the subscription's project", "unitId")
    held_by_caller = new.status == "on_hold" and new.held_by == p.account_id
    if new.status != "available" and not held_by_caller:
        raise Conflict(f"a unit that is {new.status} cannot be subscribed", "unitId")
    price = lock_price(new.list_price, i.discount, await _limit(session), new.currency)
    units.deal_step(
        session,
        old,
        "available",
        actor_id=p.account_id,
        reason=reason,
        ref_id=sub.id,
        data={"subscription": "changed_out", "to_unit": str(new.id)},
    )
    units.deal_step(
        session,
        new,
        "reserved",
        actor_id=p.account_id,
        reason=reason,
        ref_id=sub.id,
        data={"subscription": "changed_in", "from_unit": str(old.id)},
    )
    sub.unit_id, sub.version = new.id, sub.version + 1
    _price_of(sub, price)
    if sub.deposit_id is not None:
        deposit = await session.get(Payment, sub.deposit_id, with_for_update=True)
        if deposit is not None and deposit.status == "paid" and deposit.unit_id == old.id:
            deposit.unit_id, deposit.version = new.id, deposit.version + 1
    await session.flush()  # the unit moves before the new one is taken (the unique index)
    if price.needs_approval:
        sub.status = "pending_approval"
        await repo.add(session, _discount_request(sub, price, p.account_id, reason))
        units.deal_event(
            session,
            new.id,
            actor_id=p.account_id,
            reason=reason,
            ref_id=sub.id,
            data={"step": "discount_requested", "discount_pct": str(price.discount_pct)},
            price=price.agreed_price,
        )
    else:
        await _activate(session, sub, new, p.account_id)
    await session.flush()
    return sub


@dataclass(frozen=True, slots=True)
class Withdrawn:
    subscription: Subscription
    refunded: int


async def withdraw(
    session: AsyncSession,
    settings: Settings,
    p: Principal,
    subscription_id: uuid.UUID,
    *,
    reason: str,
) -> Withdrawn:
    """退房: the subscription is withdrawn, its unit goes back on sale (a ``status`` event
    with the reason), requests waiting are canceled, and the reservation's paid deposit is
    refunded by ``sales.withdraw_refund_pct`` percent (the rest kept, booked as
    ``deposit_forfeits``), the same refund machinery as a pledge's fee."""
    reason = text(reason, "reason", required=True, max_len=300)
    sub = await _visible(session, p, subscription_id, lock=True)
    if sub.status not in OPEN_SUBSCRIPTION:
        raise Conflict(f"a subscription that is {sub.status} cannot be withdrawn", "subscriptionId")
    await _end(session, settings, sub, "withdrawn", actor=p.account_id, reason=reason)
    return Withdrawn(sub, sub.refunded)


async def _end(
    session: AsyncSession,
    settings: Settings,
    sub: Subscription,
    status: str,
    *,
    actor: uuid.UUID | None,
    reason: str,
) -> None:
    """The subscription (locked, open) ends as ``status`` (withdrawn or expired): requests
    waiting are canceled, the unit goes back on sale, the deposit is refunded by
    ``sales.withdraw_refund_pct`` (the rest kept)."""
    from api.setting import service as tenant_settings

    now = utcnow()
    for req in await repo.pending_requests(session, sub.id):
        req.status, req.decided_at, req.decision_note = "canceled", now, status
    unit = await units.lock_fresh(session, sub.unit_id)
    units.deal_step(
        session,
        unit,
        "available",
        actor_id=actor,
        reason=reason,
        ref_id=sub.id,
        data={"subscription": status},
    )
    sub.status, sub.version = status, sub.version + 1
    if status == "withdrawn":
        sub.withdrawn_at, sub.withdraw_reason = now, reason
    await session.flush()
    if sub.deposit_id is not None:
        deposit = await session.get(
            Payment, sub.deposit_id, with_for_update=True, populate_existing=True
        )
        if deposit is not None and deposit.status == "paid":
            pct: int = await tenant_settings.get(session, "sales.withdraw_refund_pct")
            sub.refunded = await payments.refund_payment(
                session,
                settings,
                deposit,
                reason=f"subscription_{status}",
                amount=deposit.amount * pct // 100,
            )
            await session.flush()


EXPIRE_BATCH = 200  # subscriptions ended a job
LAPSED = "the contract was not signed by the deadline"


async def expire_overdue(
    session: AsyncSession,
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = EXPIRE_BATCH,
) -> int:
    """The expiry job's work for one tenant: when the tenant's ``sales.expire_overdue`` is
    ``expire``, active subscriptions past their deadline end as ``expired`` (as a
    withdrawal: the unit back on sale, the deposit refunded by the withdrawal rule).
    Returns how many ended."""
    from api.setting import service as tenant_settings

    if await tenant_settings.get(session, "sales.expire_overdue") != "expire":
        return 0
    rows = await repo.overdue_locked(session, now or utcnow(), limit)
    for sub in rows:
        await _end(session, settings, sub, "expired", actor=None, reason=LAPSED)
    return len(rows)


async def get(
    session: AsyncSession, p: Principal, subscription_id: uuid.UUID
) -> Subscription | None:
    return await repo.visible_subscription(session, subscription_id, await _scope(session, p))


async def subscriptions(
    session: AsyncSession,
    p: Principal,
    *,
    project_id: uuid.UUID | None = None,
    status: str | None = None,
    client_id: uuid.UUID | None = None,
    overdue: bool | None = None,
    after: uuid.UUID | None = None,
    first: int = 50,
) -> list[Subscription]:
    """The subscriptions the caller may see, newest first; ``first + 1`` rows at most (the
    extra one says there is a next page). ``overdue``: active and past the deadline now."""
    if status is not None and status not in SUBSCRIPTION_STATUSES:
        raise ValueError(status)
    return await repo.page(
        session,
        await _scope(session, p),
        project_id=project_id,
        status=status,
        client_id=client_id,
        is_overdue=overdue,
        now=utcnow(),
        after=after,
        limit=max(0, min(first, MAX_PAGE)) + 1,
    )
