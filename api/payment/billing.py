"""Each tenant's own Anju plan, paid through Stripe Billing.

A tenant admin starts a Checkout for a plan (``startPlanCheckout``); the tenant becomes a Stripe
customer once (metadata: the tenant id). Subscription and invoice events (platform events, no
connected account) are stored like the others and applied by a job from the subscription's
current state, fetched again:
- active or trialing: the plan of its price, billing ``active``; a tenant suspended for not
  paying is restored;
- past due or unpaid: billing ``past_due`` since the first such event; a sweep suspends the
  tenant once that lasts longer than ``ANJU_STRIPE_BILLING_GRACE_DAYS``;
- canceled (or its first payment never made): back to the free plan, billing ``canceled``,
  restored if it was suspended for not paying.
The job runs on the shared schema, so it works for a suspended tenant too."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.db import utcnow
from api.errors import ValidationFailed
from api.payment import stripe_api
from api.payment.models import JsonObject
from api.settings import Settings
from api.validate import https_url
from tenants.models import Tenant
from tenants.registry import TenantInfo

ACTIVE = ("active", "trialing")
PAST_DUE = ("past_due", "unpaid")
ENDED = ("canceled", "incomplete_expired")


@dataclass(frozen=True, slots=True)
class BillingStatus:
    plan: str
    billing_status: str
    past_due_since: datetime | None
    stripe_account_id: str | None


async def status_of(session: AsyncSession, tenant_id: str) -> BillingStatus:
    """The tenant's plan, billing status (and since when past due) and connected account."""
    stmt = select(
        Tenant.plan, Tenant.billing_status, Tenant.past_due_since, Tenant.stripe_account_id
    ).where(Tenant.id == tenant_id)
    row = (await session.execute(stmt)).one()
    return BillingStatus(row.plan, row.billing_status, row.past_due_since, row.stripe_account_id)


async def start_checkout(
    session: AsyncSession,
    settings: Settings,
    tenant: TenantInfo,
    plan: str,
    *,
    success_url: str,
    cancel_url: str,
) -> str:
    """A Checkout page (URL) where the tenant's admin subscribes to ``plan``."""
    price = settings.stripe_plan_prices.get(plan)
    if not price:
        raise ValidationFailed(f"plan is one of {', '.join(settings.stripe_plan_prices)}", "plan")
    https_url(success_url, "successUrl")
    https_url(cancel_url, "cancelUrl")
    api = stripe_api.client(settings)
    row = await session.get(Tenant, uuid.UUID(str(tenant.id)), with_for_update=True)
    assert row is not None, f"no tenant {tenant.id}"  # the request's tenant, resolved before
    try:
        if not row.stripe_customer_id:
            customer = await api.v1.customers.create_async(
                {"name": row.name, "metadata": {"tenant_id": str(row.id), "slug": row.slug}},
                {"idempotency_key": f"customer:{row.id}"},
            )
            row.stripe_customer_id = customer.id
            await session.flush()
        meta = {"tenant_id": str(row.id)}
        checkout = await api.v1.checkout.sessions.create_async(
            {
                "mode": "subscription",
                "customer": row.stripe_customer_id,
                "line_items": [{"price": price, "quantity": 1}],
                "success_url": success_url,
                "cancel_url": cancel_url,
                "client_reference_id": str(row.id),
                "metadata": meta,
                "subscription_data": {"metadata": meta},
            }
        )
    except stripe.StripeError as exc:
        raise stripe_api.failed(exc) from exc
    # A hosted Checkout Session (the default ui_mode, ours) always comes with its page's URL.
    assert checkout.url is not None, f"checkout session {checkout.id} without a URL"
    return checkout.url


def _subscription_id(event: JsonObject) -> str | None:
    obj = event["data"]["object"]
    if obj.get("object") == "subscription":
        return obj.get("id")
    parent = obj.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return details.get("subscription") or obj.get("subscription")


def _plan_of(settings: Settings, sub: stripe.Subscription) -> str | None:
    by_price = {price: plan for plan, price in settings.stripe_plan_prices.items()}
    for item in sub["items"]["data"]:
        price = item["price"]
        key = getattr(price, "lookup_key", None)
        plan = by_price.get(price["id"]) or by_price.get(key or "")
        if plan:
            return plan
    return None


async def apply(
    conn: AsyncConnection, settings: Settings, tenant_id: uuid.UUID, event: JsonObject
) -> str:
    """Bring the tenant's plan and billing status in line with its subscription now."""
    sub_id = _subscription_id(event)
    if not sub_id:
        return "ignored: no subscription"
    sub = await stripe_api.client(settings).v1.subscriptions.retrieve_async(sub_id)
    row = (
        await conn.execute(
            select(
                Tenant.stripe_customer_id,
                Tenant.stripe_subscription_id,
                Tenant.billing_status,
                Tenant.status,
                Tenant.plan,
                Tenant.past_due_since,
            )
            .where(Tenant.id == tenant_id)
            .with_for_update()
        )
    ).first()
    assert row is not None, f"no tenant {tenant_id}"  # the job found its slug, under this lock
    if row.stripe_customer_id and sub["customer"] != row.stripe_customer_id:
        return "ignored: another customer's subscription"
    if (
        row.stripe_subscription_id
        and sub_id != row.stripe_subscription_id
        and (sub["status"] not in ACTIVE)
    ):
        return "ignored: an older subscription"
    values: dict[str, Any] = {"stripe_subscription_id": sub_id}
    suspended_for_billing = row.billing_status == "suspended"
    if sub["status"] in ACTIVE:
        values.update(
            plan=_plan_of(settings, sub) or row.plan, billing_status="active", past_due_since=None
        )
        if suspended_for_billing:
            values["status"] = "active"
    elif sub["status"] in PAST_DUE:
        if not suspended_for_billing:
            values["billing_status"] = "past_due"
        values["past_due_since"] = row.past_due_since or utcnow()
    elif sub["status"] in ENDED:
        values.update(plan="free", billing_status="canceled", past_due_since=None)
        if suspended_for_billing:
            values["status"] = "active"
    else:
        return f"waiting: {sub['status']}"
    await conn.execute(update(Tenant).where(Tenant.id == tenant_id).values(**values))
    return f"subscription {sub['status']}: plan {values.get('plan', row.plan)}"


async def suspend_unpaid(conn: AsyncConnection, settings: Settings) -> list[str]:
    """Tenants past due beyond the grace period are suspended (slugs)."""
    cutoff = utcnow() - timedelta(days=settings.stripe_billing_grace_days)
    rows = await conn.execute(
        update(Tenant)
        .where(
            Tenant.billing_status == "past_due",
            Tenant.past_due_since < cutoff,
            Tenant.status == "active",
        )
        .values(status="suspended", billing_status="suspended")
        .returning(Tenant.slug)
    )
    return list(rows.scalars())
