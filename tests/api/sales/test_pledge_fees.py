"""Pledge fees through Stripe, end to end: the real ``stripe`` library talks to the suite's
loopback Stripe, the payment's event is signed and POSTed to a real gateway and applied by a
real burst worker; withdrawing refunds by the company's rule. Every journal balances."""

from __future__ import annotations

import httpx
import pytest

from tests.api.payment.helpers import books, connect, deliver, events, payment_rows, pi_of, work
from tests.api.sales.helpers import (
    ONE,
    START_PAYMENT,
    data,
    live_events,
    new_client,
    registered,
    set_refund_pct,
    summary,
    withdraw,
)
from tests.api.unit.helpers import inventory
from tests.conftest import STRIPE, gql

FEE = 500_000  # ¥5,000.00


@pytest.fixture
async def http(stripe_gateway):
    async with httpx.AsyncClient(base_url=stripe_gateway.url, timeout=30) as c:
        yield c


async def pledge_with_fee(http, engine, make_tenant, member):
    """A tenant connected to Stripe, its agent's client and an unpaid pledge with a fee."""
    tenant = await make_tenant()
    account = await connect(engine, tenant)
    project = (await inventory(http, tenant.slug, floors=1, per_floor=1))["project"]["id"]
    _, agent = await member(tenant, ["agent"])
    client = await new_client(http, tenant.slug, "Fee payer", token=agent)
    pledge = await registered(http, tenant.slug, project, client, fee=FEE, token=agent)
    return tenant, account, project, agent, pledge


async def start(http, slug, pledge_id, token) -> dict:
    res = await gql(http, START_PAYMENT, {"p": pledge_id}, tenant=slug, token=token)
    return data(res, "startPledgePayment")


async def paid(http, fake_stripe, engine, db_url, settings, slug, pledge_id, token) -> str:
    """The pledge's fee paid at Stripe and the event applied; returns the PaymentIntent."""
    got = await start(http, slug, pledge_id, token)
    assert got["__typename"] == "PledgePaymentPayload", got
    pi = pi_of(got)
    assert (await deliver(http, fake_stripe, fake_stripe.succeed(pi))).status_code == 200
    await work(settings, engine, db_url)
    return pi


async def one(http, slug, pledge_id, token=None) -> dict:
    kw = {} if token is None else {"token": token}
    return data(await gql(http, ONE, {"id": pledge_id}, tenant=slug, **kw), "pledge")


async def test_a_fee_paid_through_stripe_is_held_and_refunded_in_full_on_withdrawal(
    http, fake_stripe, engine, db_url, make_tenant, member, stripe_worker_settings
):
    tenant, account, project, agent, pledge = await pledge_with_fee(
        http, engine, make_tenant, member
    )
    slug = tenant.slug
    assert (pledge["fee"], pledge["feeStatus"], pledge["genuine"]) == (
        {"minorUnits": FEE, "currency": "CNY"},
        "UNPAID",
        False,
    )
    got = await start(http, slug, pledge["id"], agent)
    assert got["__typename"] == "PledgePaymentPayload", got
    payment = got["payment"]
    assert (payment["kind"], payment["status"], payment["amount"], payment["currency"]) == (
        "PLEDGE",
        "PENDING",
        FEE,
        "cny",
    )
    assert (got["publishableKey"], got["stripeAccountId"]) == (
        STRIPE["stripe_publishable_key"],
        account,
    )
    assert got["pledge"]["paymentId"] == payment["id"]
    pi = pi_of(got)
    [call] = [
        c
        for c in fake_stripe.calls("POST", "/v1/payment_intents")
        if c.body["metadata"].get("pledge_id") == pledge["id"]
    ]
    assert call.headers["stripe-account"] == account
    assert call.headers["idempotency-key"] == f"pledge:{payment['id']}"
    assert (call.body["amount"], call.body["currency"]) == (str(FEE), "cny")
    assert call.body["application_fee_amount"] == str(FEE * 2 // 100)  # free plan: 2%
    assert call.body["metadata"]["kind"] == "pledge"
    again = await start(http, slug, pledge["id"], agent)  # pending: the same payment
    assert again["payment"]["id"] == payment["id"] and pi_of(again) == pi

    await deliver(http, fake_stripe, fake_stripe.succeed(pi))
    assert (await one(http, slug, pledge["id"]))["feeStatus"] == "UNPAID"  # only stored yet
    await work(stripe_worker_settings, engine, db_url)
    now = await one(http, slug, pledge["id"], agent)
    assert (now["feeStatus"], now["genuine"], now["paidAt"] is not None) == ("PAID", True, True)
    assert (await summary(http, slug, project))["genuine"] == 1
    [ev] = await events(engine, account=account)
    assert ev.outcome == "paid; pledge 1", ev.outcome
    [row] = await payment_rows(engine, tenant)
    assert (row.kind, row.status, row.client_id is not None) == ("pledge", "paid", True)
    balances, journals = await books(engine, tenant)
    assert journals == 1
    assert balances == {"stripe_balance": 490_000, "platform_fees": 10_000, "pledges_held": -FEE}
    twice = await start(http, slug, pledge["id"], agent)
    assert (twice["__typename"], twice["field"]) == ("ConflictError", "pledgeId"), twice

    gone = await withdraw(http, slug, pledge["id"], "bought elsewhere", token=agent)
    assert gone["__typename"] == "WithdrawPledgePayload", gone
    assert gone["refunded"] == {"minorUnits": FEE, "currency": "CNY"}
    assert (gone["pledge"]["feeStatus"], gone["pledge"]["refunded"]) == (
        "REFUNDED",
        {"minorUnits": FEE},
    )
    [refund] = [
        c for c in fake_stripe.calls("POST", "/v1/refunds") if c.body["payment_intent"] == pi
    ]
    assert refund.body["amount"] == str(FEE)
    assert refund.headers["idempotency-key"] == f"refund:{payment['id']}:pledge_withdrawn"
    [row] = await payment_rows(engine, tenant)
    assert (row.status, row.refunded_amount, row.refund_reason) == (
        "refunded",
        FEE,
        "pledge_withdrawn",
    )
    balances, journals = await books(engine, tenant)
    assert journals == 2 and all(v == 0 for v in balances.values()), balances
    assert await live_events(engine, tenant, pledge["id"]) == [
        "pledge.created",
        "pledge.paid",
        "pledge.status",
    ]


async def test_withdrawal_refunds_the_companys_part_and_books_the_rest_as_income(
    http, fake_stripe, engine, db_url, make_tenant, member, stripe_worker_settings
):
    tenant, _, _, agent, pledge = await pledge_with_fee(http, engine, make_tenant, member)
    slug = tenant.slug
    await set_refund_pct(http, slug, 40)
    pi = await paid(
        http, fake_stripe, engine, db_url, stripe_worker_settings, slug, pledge["id"], agent
    )
    gone = await withdraw(http, slug, pledge["id"], token=agent)
    assert gone["refunded"]["minorUnits"] == 200_000, gone
    assert (gone["pledge"]["feeStatus"], gone["pledge"]["status"]) == ("REFUNDED", "WITHDRAWN")
    [refund] = [
        c for c in fake_stripe.calls("POST", "/v1/refunds") if c.body["payment_intent"] == pi
    ]
    assert refund.body["amount"] == "200000"
    balances, journals = await books(engine, tenant)
    assert journals == 2
    assert balances == {
        "pledges_held": 0,
        "pledge_forfeits": -300_000,
        "stripe_balance": 490_000 - 196_000,  # the platform fee comes back in proportion
        "platform_fees": 10_000 - 4_000,
    }


async def test_a_pending_fee_is_canceled_on_withdrawal_and_one_paid_meanwhile_goes_back_whole(
    http, fake_stripe, engine, db_url, make_tenant, member, stripe_worker_settings
):
    tenant, _, project, agent, pledge = await pledge_with_fee(http, engine, make_tenant, member)
    slug = tenant.slug
    await set_refund_pct(http, slug, 40)  # not for a fee paid after the pledge was withdrawn
    pi = pi_of(await start(http, slug, pledge["id"], agent))
    gone = await withdraw(http, slug, pledge["id"], token=agent)
    assert (gone["refunded"]["minorUnits"], gone["pledge"]["feeStatus"]) == (0, "UNPAID"), gone
    assert fake_stripe.payment_intent(pi)["status"] == "canceled"
    [row] = await payment_rows(engine, tenant)
    assert row.status == "canceled"

    # Another client: paid at Stripe, withdrawn before the event arrives.
    client = await new_client(http, slug, "Quick payer", token=agent)
    late = await registered(http, slug, project, client, fee=FEE, token=agent)
    pi = pi_of(await start(http, slug, late["id"], agent))
    event = fake_stripe.succeed(pi)
    gone = await withdraw(http, slug, late["id"], token=agent)
    assert gone["refunded"]["minorUnits"] == FEE, gone
    assert gone["pledge"]["feeStatus"] == "REFUNDED"
    [refund] = [
        c for c in fake_stripe.calls("POST", "/v1/refunds") if c.body["payment_intent"] == pi
    ]
    assert refund.body["amount"] == str(FEE)
    await deliver(http, fake_stripe, event)  # the event, late: nothing more happens
    await work(stripe_worker_settings, engine, db_url)
    balances, journals = await books(engine, tenant)
    assert journals == 2 and all(v == 0 for v in balances.values()), balances
    assert (await summary(http, slug, project))["withdrawn"] == 2
