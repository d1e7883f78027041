"""Each tenant's own plan through Stripe Billing (loopback Stripe): checkout, subscription and
invoice events applied from the subscription's current state, past due, suspension after the
grace period, restoration on payment (the job runs for a suspended tenant), cancellation."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from api.db import utcnow
from api.jobs import Runtime, set_runtime
from api.payment import tasks
from tenants.models import Tenant
from tests.api.payment.helpers import deliver, events, work
from tests.conftest import gql

CHECKOUT = """
mutation($plan: String!) {
  startPlanCheckout(plan: $plan, successUrl: "https://console.example/ok",
                    cancelUrl: "https://console.example/no") {
    __typename ... on PlanCheckoutPayload { url } ... on UserError { code message field }
  }
}
"""
BILLING = "{ billing { plan status pastDueSince } }"


async def tenant_row(engine, tenant):
    async with engine.connect() as conn:
        return (
            await conn.execute(select(Tenant).where(Tenant.id == uuid.UUID(str(tenant.id))))
        ).one()


async def suspend_sweep(engine, settings) -> list[str]:
    set_runtime(Runtime(settings, engine))
    try:
        return await tasks.suspend_unpaid_tenants(timestamp=0)
    finally:
        set_runtime(None)


async def test_plan_lifecycle_past_due_suspended_restored_canceled(
    http, fake, engine, db_url, make_tenant, worker_settings
):
    tenant = await make_tenant()
    slug = tenant.slug
    bad = await gql(http, CHECKOUT, {"plan": "platinum"}, tenant=slug)
    assert bad["data"]["startPlanCheckout"]["field"] == "plan"
    res = await gql(http, CHECKOUT, {"plan": "pro"}, tenant=slug)
    url = res["data"]["startPlanCheckout"]["url"]
    session_id = url.rsplit("/", 1)[1]
    row = await tenant_row(engine, tenant)
    customer = row.stripe_customer_id
    assert customer and fake.customers[customer]["metadata"]["tenant_id"] == str(tenant.id)
    again = await gql(http, CHECKOUT, {"plan": "standard"}, tenant=slug)  # same customer
    assert again["data"]["startPlanCheckout"]["url"]
    assert (await tenant_row(engine, tenant)).stripe_customer_id == customer

    session_event, created = fake.complete_checkout(session_id)
    sub = created["data"]["object"]["id"]
    r = await deliver(http, fake, session_event)
    assert r.json() == {"received": True, "ignored": "checkout.session.completed"}
    assert (await deliver(http, fake, created)).json()["duplicate"] is False
    await work(worker_settings, engine, db_url)
    got = (await gql(http, BILLING, tenant=slug))["data"]["billing"]
    assert (got["plan"], got["status"]) == ("pro", "active")

    # A payment fails: past due; within the grace period nothing else happens.
    await deliver(http, fake, fake.invoice(sub, paid=False))
    await work(worker_settings, engine, db_url)
    got = (await gql(http, BILLING, tenant=slug))["data"]["billing"]
    assert got["status"] == "past_due" and got["pastDueSince"] is not None
    assert slug not in await suspend_sweep(engine, worker_settings)
    async with engine.begin() as conn:  # eight days later
        await conn.execute(
            update(Tenant)
            .where(Tenant.slug == slug)
            .values(past_due_since=utcnow() - timedelta(days=8))
        )
    assert slug in await suspend_sweep(engine, worker_settings)
    row = await tenant_row(engine, tenant)
    assert (row.status, row.billing_status) == ("suspended", "suspended")
    resp = await http.post("/graphql", json={"query": BILLING}, headers={"X-Tenant": slug})
    assert resp.status_code == 403

    # Paid at last: the job runs although the tenant is suspended, and restores it.
    await deliver(http, fake, fake.invoice(sub, paid=True))
    await work(worker_settings, engine, db_url)
    row = await tenant_row(engine, tenant)
    assert (row.status, row.billing_status, row.plan, row.past_due_since) == (
        "active",
        "active",
        "pro",
        None,
    )

    # Cancelled: back to free. A late, repeated "created" event changes nothing.
    await deliver(http, fake, fake.set_subscription_status(sub, "canceled"))
    await deliver(http, fake, {**created, "id": "evt_late_" + uuid.uuid4().hex[:8]})
    await work(worker_settings, engine, db_url)
    row = await tenant_row(engine, tenant)
    assert (row.plan, row.billing_status, row.status) == ("free", "canceled", "active")
    mine = [e for e in await events(engine) if e.tenant_id == row.id]
    assert all(e.processed_at is not None for e in mine) and len(mine) == 5


async def test_billing_events_must_name_a_known_customer_on_the_platform(http, fake, engine):
    sub = {"id": "sub_x", "object": "subscription", "customer": "cus_nobody", "status": "active"}
    event = fake.event("customer.subscription.updated", sub)
    r = await deliver(http, fake, event)
    assert (r.status_code, r.json()["error"]) == (400, "unknown customer")
    r = await deliver(http, fake, {**event, "account": "acct_x"})
    assert r.json()["error"] == "a billing event is the platform's, about a customer"
    assert await events(engine, id=event["id"]) == []
