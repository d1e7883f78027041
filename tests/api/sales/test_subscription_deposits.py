"""Subscriptions of units reserved by a paid deposit, end to end against the loopback Stripe:
the deposit is the client's (another client cannot subscribe the unit), it moves with a
changed unit, and withdrawing (退房) refunds it by sales.withdraw_refund_pct through the same
refund machinery as pledge fees (the rest booked as deposit_forfeits). Every journal
balances."""

from __future__ import annotations

import httpx
import pytest

from tests.api.payment.helpers import books, deliver, payment_rows, pi_of, tenant_with_unit, work
from tests.api.sales.helpers import data, new_client
from tests.api.sales.subscription_helpers import (
    change_unit,
    set_settings,
    subscribe,
    subscribed,
    timeline,
    withdraw_sub,
)
from tests.conftest import gql

DEPOSIT = 2_000_000  # payments.deposit_amount's default: ¥20,000.00

START = """
mutation($u: ID!, $c: ID) {
  startDeposit(unitId: $u, platform: IOS, clientId: $c) {
    __typename
    ... on DepositPayload { clientSecret payment { id status amount } }
    ... on UserError { code message field }
  }
}
"""


@pytest.fixture
async def http(stripe_gateway):
    async with httpx.AsyncClient(base_url=stripe_gateway.url, timeout=30) as c:
        yield c


async def test_a_deposit_reserved_unit_is_subscribed_moved_and_withdrawn_with_the_refund_rule(
    http, fake_stripe, engine, db_url, make_tenant, member, stripe_worker_settings
):
    tenant, _, (unit, spare) = await tenant_with_unit(http, engine, make_tenant, n=2)
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    buyer = await new_client(http, slug, "Deposit payer", token=agent)
    other = await new_client(http, slug, "Someone else", token=agent)
    got = data(
        await gql(http, START, {"u": unit, "c": buyer}, tenant=slug, token=agent), "startDeposit"
    )
    assert got["__typename"] == "DepositPayload", got
    payment_id = got["payment"]["id"]
    assert (await deliver(http, fake_stripe, fake_stripe.succeed(pi_of(got)))).status_code == 200
    await work(stripe_worker_settings, engine, db_url)
    assert (await timeline(http, slug, unit))["status"] == "RESERVED"

    # The reservation is the buyer's.
    refused = await subscribe(http, slug, unit, other, agent)
    assert (refused["__typename"], refused["field"]) == ("ConflictError", "clientId"), refused
    sub = await subscribed(http, slug, unit, buyer, agent)
    assert (sub["depositId"], sub["status"]) == (payment_id, "ACTIVE")

    # 换房: the deposit goes with the subscription.
    moved = await change_unit(http, slug, sub["id"], spare, token=agent)
    assert moved["subscription"]["unitId"] == spare, moved
    [row] = await payment_rows(engine, tenant)
    assert (str(row.unit_id), row.status) == (spare, "paid")
    # The cancellation of a reservation does not go around the subscription either.
    res = await gql(
        http,
        'mutation($u: ID!) { cancelReservation(unitId: $u, reason: "x") { __typename'
        " ... on UserError { code field } } }",
        {"u": spare},
        tenant=slug,
    )
    assert res["data"]["cancelReservation"]["__typename"] == "ConflictError", res

    # 退房 with 40% back: the rest is kept.
    await set_settings(http, slug, withdraw_refund_pct=40)
    gone = await withdraw_sub(http, slug, sub["id"], "买家放弃", token=agent)
    assert gone["__typename"] == "WithdrawSubscriptionPayload", gone
    assert gone["refunded"] == {"minorUnits": DEPOSIT * 40 // 100, "currency": "CNY"}
    assert gone["subscription"]["refunded"]["minorUnits"] == DEPOSIT * 40 // 100
    [refund] = [
        c
        for c in fake_stripe.calls("POST", "/v1/refunds")
        if c.body["payment_intent"] == pi_of(got)
    ]
    assert refund.body["amount"] == str(DEPOSIT * 40 // 100)
    assert refund.headers["idempotency-key"] == f"refund:{payment_id}:subscription_withdrawn"
    [row] = await payment_rows(engine, tenant)
    assert (row.status, row.refunded_amount, row.refund_reason) == (
        "refunded",
        DEPOSIT * 40 // 100,
        "subscription_withdrawn",
    )
    fee = DEPOSIT * 2 // 100  # the free plan's platform fee
    balances, journals = await books(engine, tenant)
    assert journals == 2
    assert balances == {
        "deposits_held": 0,
        "deposit_forfeits": -(DEPOSIT * 60 // 100),
        "stripe_balance": DEPOSIT - fee - (DEPOSIT * 40 // 100 - fee * 40 // 100),
        "platform_fees": fee - fee * 40 // 100,
    }
    assert (await timeline(http, slug, spare))["status"] == "AVAILABLE"
