"""Deposits through Stripe, end to end: the real ``stripe`` library talks to a loopback Stripe
(tests/api/payment/stripe_server.py); events are signed with Stripe's scheme and POSTed to a
real gateway; a real burst worker applies them. After every scenario each journal balances."""

from __future__ import annotations

import asyncio
import time

import procrastinate
import pytest
from sqlalchemy import func, text, update

from api.payment import tasks
from api.payment.models import Payment
from tenants.sessions import TenantDatabase
from tests.api.payment.conftest import SECRET, STRIPE
from tests.api.payment.helpers import (
    books,
    deliver,
    die_after_first_refund,
    events,
    payment_rows,
    pi_of,
    start,
    tenant_with_unit,
    told,
    work,
)
from tests.api.unit.helpers import UNIT_QUERY, inventory
from tests.conftest import gql
from tests.conftest import test_settings as settings_with
from tests.randomness import rng

PAYMENTS = """
query($u: ID) { payments(unitId: $u) { id status amount refundedAmount refundReason failureCode } }
"""


async def unit_status(http, slug, unit_id) -> str:
    res = await gql(http, UNIT_QUERY, {"id": unit_id}, tenant=slug)
    return res["data"]["unit"]["status"]


# ---------------------------------------------------------------- the happy path


async def test_deposit_paid_reserves_the_unit_and_books_a_liability(
    http, fake, engine, db_url, make_tenant, member, worker_settings
):
    tenant, account, [unit] = await tenant_with_unit(http, engine, make_tenant)
    slug = tenant.slug
    agent_id, agent = await member(tenant, ["agent"])
    got = await start(http, slug, unit, agent, platform="ANDROID")
    assert got["__typename"] == "DepositPayload", got
    assert (got["publishableKey"], got["stripeAccountId"]) == ("pk_test_anju", account)
    assert got["payment"]["status"] == "PENDING" and got["payment"]["amount"] == 2_000_000
    assert got["holdExpiresAt"] is not None
    assert await unit_status(http, slug, unit) == "ON_HOLD"
    pi = pi_of(got)

    # What Stripe was asked: on the connected account, with our key and the plan's fee.
    def intents():
        return [
            c
            for c in fake.calls("POST", "/v1/payment_intents")
            if c.body["metadata"]["tenant_id"] == str(tenant.id)
        ]

    [call] = intents()
    assert call.headers["stripe-account"] == account
    assert call.headers["idempotency-key"] == f"deposit:{got['payment']['id']}"
    body = call.body
    assert body["amount"] == "2000000" and body["currency"] == "cny"
    assert body["allowed_payment_method_types"] == ["card", "alipay", "wechat_pay"]
    assert body["payment_method_options"] == {
        "wechat_pay": {"client": "android", "app_id": "wx_anju_test"}
    }
    assert body["application_fee_amount"] == "40000"  # free plan: 2%
    assert body["metadata"]["tenant_id"] == str(tenant.id)
    # Asking again while pending: the same payment, no second intent.
    again = await start(http, slug, unit, agent)
    assert again["payment"]["id"] == got["payment"]["id"] and pi_of(again) == pi
    assert len(intents()) == 1

    resp = await deliver(http, fake, fake.succeed(pi))
    assert resp.status_code == 200 and resp.json() == {"received": True, "duplicate": False}
    assert await unit_status(http, slug, unit) == "ON_HOLD"  # the endpoint only stores
    await work(worker_settings, engine, db_url)
    assert await unit_status(http, slug, unit) == "RESERVED"
    [p] = await payment_rows(engine, tenant)
    assert (p.status, p.paid_at is not None, p.agent_id) == ("paid", True, agent_id)
    balances, journals = await books(engine, tenant)
    assert journals == 1
    assert balances == {
        "stripe_balance": 1_960_000,
        "platform_fees": 40_000,
        "deposits_held": -2_000_000,
    }
    [ev] = await events(engine, account=account)
    assert ev.processed_at is not None and ev.outcome == "paid; unit reserved"
    assert await told(engine, tenant) == [(agent_id, "payment.received", "payments")]
    res = await gql(http, PAYMENTS, {"u": unit}, tenant=slug)  # finance and admins read them
    [row] = res["data"]["payments"]
    assert (row["status"], row["amount"], row["refundedAmount"]) == ("PAID", 2_000_000, 0)
    res = await gql(http, PAYMENTS, {"u": unit}, tenant=slug, token=agent)
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN", res


async def test_the_same_event_ten_times_at_once_changes_state_once(
    http, fake, engine, db_url, make_tenant, member, worker_settings
):
    tenant, account, [unit] = await tenant_with_unit(http, engine, make_tenant)
    _, agent = await member(tenant, ["agent"])
    pi = pi_of(await start(http, tenant.slug, unit, agent))
    event = fake.succeed(pi)
    answers = await asyncio.gather(*(deliver(http, fake, event) for _ in range(10)))
    assert [r.status_code for r in answers] == [200] * 10
    assert sorted(r.json()["duplicate"] for r in answers) == [False] + [True] * 9
    async with engine.connect() as conn:
        jobs = await conn.scalar(
            text("SELECT count(*) FROM shared.procrastinate_jobs WHERE args->>'event_id' = :e"),
            {"e": event["id"]},
        )
    assert jobs == 1
    await work(worker_settings, engine, db_url)
    await deliver(http, fake, event)  # once more, after processing
    await work(worker_settings, engine, db_url)
    [p] = await payment_rows(engine, tenant)
    assert p.status == "paid"
    _, journals = await books(engine, tenant)
    assert journals == 1
    assert len(await events(engine, account=account)) == 1


async def test_events_in_shuffled_order_end_in_the_right_state(
    http, fake, engine, db_url, make_tenant, member, worker_settings
):
    """One deposit fails then succeeds with another card; one is canceled; one fails for
    good. Their events arrive in a random order, some twice: each ends as Stripe says now."""
    tenant, _, units = await tenant_with_unit(http, engine, make_tenant, n=3)
    _, agent = await member(tenant, ["agent"])
    retried, canceled, declined = [pi_of(await start(http, tenant.slug, u, agent)) for u in units]
    evs = [
        fake.fail(retried),
        fake.succeed(retried),
        fake.cancel(canceled),
        fake.fail(declined, "insufficient_funds"),
    ]
    order = rng("test_events_in_shuffled_order_end_in_the_right_state")
    evs += order.sample(evs, 2)
    order.shuffle(evs)
    for ev in evs:
        assert (await deliver(http, fake, ev)).status_code == 200
    await work(worker_settings, engine, db_url)
    by_pi = {p.stripe_payment_intent: p for p in await payment_rows(engine, tenant)}
    assert by_pi[retried].status == "paid"
    assert (by_pi[canceled].status, by_pi[canceled].failure_code) == ("canceled", "canceled")
    assert (by_pi[declined].status, by_pi[declined].failure_code) == (
        "failed",
        "insufficient_funds",
    )
    statuses = [await unit_status(http, tenant.slug, u) for u in units]
    assert statuses == ["RESERVED", "AVAILABLE", "AVAILABLE"]
    balances, journals = await books(engine, tenant)
    assert journals == 1 and balances["deposits_held"] == -2_000_000


# ---------------------------------------------------------------- late payments and crashes


async def test_a_late_payment_for_a_unit_sold_meanwhile_is_refunded(
    http, fake, engine, db_url, make_tenant, member, worker_settings
):
    tenant, account, [unit] = await tenant_with_unit(http, engine, make_tenant)
    slow_id, slow = await member(tenant, ["agent"])
    pi = pi_of(await start(http, tenant.slug, unit, slow))
    async with TenantDatabase(engine).session(tenant) as session:  # the hold runs out...
        await session.execute(
            text(
                f"UPDATE \"{tenant.schema_name}\".unit SET hold_expires_at = now() - interval '1 s'"
            )
        )
        await session.commit()
    res = await gql(
        http,
        "mutation($u: ID!) { reserveUnit(input: {unitId: $u}) { __typename } }",
        {"u": unit},
        tenant=tenant.slug,
    )  # ...and the manager sells it
    assert res["data"]["reserveUnit"]["__typename"] == "UnitPayload", res
    await deliver(http, fake, fake.succeed(pi))
    await work(worker_settings, engine, db_url)
    [p] = await payment_rows(engine, tenant)
    assert (p.status, p.refunded_amount, p.refund_reason) == (
        "refunded",
        2_000_000,
        "unit_unavailable",
    )
    [refund] = [c for c in fake.calls("POST", "/v1/refunds") if c.body["payment_intent"] == pi]
    assert refund.headers["stripe-account"] == account
    assert refund.body["payment_intent"] == pi and refund.body["amount"] == "2000000"
    assert await unit_status(http, tenant.slug, unit) == "RESERVED"  # still the other sale
    assert [t for _, t, _ in await told(engine, tenant)] == ["payment.received", "payment.refunded"]
    assert {a for a, _, _ in await told(engine, tenant)} == {slow_id}
    balances, journals = await books(engine, tenant)
    assert journals == 2 and all(v == 0 for v in balances.values()), balances


async def test_a_crash_mid_processing_is_retried_and_applied_once(
    http, fake, engine, db_url, make_tenant, member, worker_settings, monkeypatch
):
    """The refund reached Stripe, then the worker died before its commit: the retry refunds
    with the same idempotency key (Stripe answers the same refund) and books it once."""
    tenant, _, [unit] = await tenant_with_unit(http, engine, make_tenant)
    _, agent = await member(tenant, ["agent"])
    pi = pi_of(await start(http, tenant.slug, unit, agent))
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            text(
                f"UPDATE \"{tenant.schema_name}\".unit SET status = 'sold', "
                "hold_expires_at = NULL, held_by = NULL"
            )
        )
        await session.commit()
    event = fake.succeed(pi)
    await deliver(http, fake, event)

    crashes = die_after_first_refund(monkeypatch)
    # The retry waits an hour, so the first drain cannot run it however slow the machine is
    # (with the task's own 2 s back-off, a busy burst worker picked the retry up itself).
    monkeypatch.setattr(
        tasks.apply_stripe_event,
        "retry_strategy",
        procrastinate.RetryStrategy(max_attempts=12, wait=3600),
    )
    await work(worker_settings, engine, db_url)

    def refunds():
        return [c for c in fake.calls("POST", "/v1/refunds") if c.body["payment_intent"] == pi]

    assert crashes and len(refunds()) == 1
    [p] = await payment_rows(engine, tenant)
    assert p.status == "pending"  # rolled back with the crash
    [ev] = await events(engine, id=event["id"])
    assert ev.processed_at is None
    async with engine.begin() as conn:  # the retry is due now
        await conn.execute(
            text(
                "UPDATE shared.procrastinate_jobs SET scheduled_at = now() "
                "WHERE args->>'event_id' = :e"
            ),
            {"e": event["id"]},
        )
    await work(worker_settings, engine, db_url)
    [p] = await payment_rows(engine, tenant)
    assert (p.status, p.refunded_amount) == ("refunded", 2_000_000)
    assert len(refunds()) == 2 and len({c.headers["idempotency-key"] for c in refunds()}) == 1
    assert [r for r in fake.refunds.values() if r["payment_intent"] == pi] != []
    assert len([r for r in fake.refunds.values() if r["payment_intent"] == pi]) == 1
    balances, journals = await books(engine, tenant)
    assert journals == 2 and all(v == 0 for v in balances.values())


# ---------------------------------------------------------------- refusals


async def test_bad_signatures_old_events_and_wrong_accounts_leave_nothing(
    http, fake, engine, db_url, make_tenant, member, worker_settings
):
    tenant, account, [unit] = await tenant_with_unit(http, engine, make_tenant)
    other, other_account, _ = await tenant_with_unit(http, engine, make_tenant)
    _, agent = await member(tenant, ["agent"])
    pi = pi_of(await start(http, tenant.slug, unit, agent))
    event = fake.succeed(pi)
    raw, _ = fake.sign(event, SECRET)

    tampered = raw.replace(b'"amount":2000000', b'"amount":1')
    assert tampered != raw
    r = await deliver(http, fake, event, body=tampered)
    assert (r.status_code, r.json()) == (400, {"error": "bad signature"})
    r = await deliver(http, fake, event, secret="whsec_someone_else")
    assert r.status_code == 400
    r = await deliver(http, fake, event, timestamp=int(time.time()) - 301)
    assert (r.status_code, r.json()) == (400, {"error": "bad signature"})
    r = await http.post("/webhooks/stripe", content=raw)  # no header
    assert r.status_code == 400
    r = await deliver(http, fake, {**event, "account": "acct_nobody"})
    assert (r.status_code, r.json()["error"]) == (400, "unknown connected account")
    # Signed, from the other tenant's account, but about this tenant's payment.
    r = await deliver(http, fake, {**event, "account": other_account})
    assert r.json()["error"] == "the event's object belongs to another tenant"
    r = await deliver(http, fake, "not json")
    assert (r.status_code, r.json()["error"]) == (400, "not a Stripe event")
    r = await deliver(http, fake, {**event, "type": "customer.created", "id": "evt_other"})
    assert (r.status_code, r.json()) == (200, {"received": True, "ignored": "customer.created"})
    assert await events(engine, account=account) == []
    assert await events(engine, account=other_account) == []
    assert await events(engine, id="evt_other") == []
    await work(worker_settings, engine, db_url)
    [p] = await payment_rows(engine, tenant)
    assert p.status == "pending" and await unit_status(http, tenant.slug, unit) == "ON_HOLD"
    assert await books(engine, tenant) == ({}, 0)
    assert other  # untouched


async def test_without_a_secret_the_endpoint_does_not_exist(client, fake):
    raw, header = fake.sign({"id": "evt_1", "type": "payment_intent.succeeded"}, SECRET)
    r = await client.post("/webhooks/stripe", content=raw, headers={"Stripe-Signature": header})
    assert r.status_code == 404


async def test_deposits_need_a_connected_account(http, make_tenant):
    tenant = await make_tenant()
    [unit] = (await inventory(http, tenant.slug, floors=1, per_floor=1))["units"]
    got = await start(http, tenant.slug, unit["id"])
    assert got["__typename"] == "ConflictError", got
    assert await unit_status(http, tenant.slug, unit["id"]) == "AVAILABLE"  # nothing held


async def test_stripe_refusing_the_intent_holds_nothing(http, fake, engine, make_tenant):
    tenant, _, [unit] = await tenant_with_unit(http, engine, make_tenant)
    fake.fail_next(
        402,
        {
            "error": {
                "type": "invalid_request_error",
                "code": "account_invalid",
                "message": "The account is not enabled.",
            }
        },
    )
    got = await start(http, tenant.slug, unit)
    assert got["__typename"] == "ConflictError" and "not enabled" in got["message"], got
    assert await unit_status(http, tenant.slug, unit) == "AVAILABLE"
    assert await payment_rows(engine, tenant) == []


async def test_the_ledger_refuses_an_unbalanced_journal(engine, make_tenant):
    tenant = await make_tenant()
    schema = tenant.schema_name
    with pytest.raises(Exception, match="does not balance"):
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    f'INSERT INTO "{schema}".journal (id, source, memo, currency, at) '
                    "VALUES (gen_random_uuid(), 'x', '', 'cny', now())"
                )
            )
            await conn.execute(
                text(
                    f'INSERT INTO "{schema}".journal_line (id, journal_id, account, debit, credit) '
                    f"SELECT gen_random_uuid(), id, 'stripe_balance', 5, 0 "
                    f'FROM "{schema}".journal'
                )
            )
    async with engine.connect() as conn:  # nothing was written
        assert await conn.scalar(text(f'SELECT count(*) FROM "{schema}".journal')) == 0


async def test_replay_stores_the_events_that_never_arrived(
    http, fake, engine, db_url, make_tenant, member, worker_settings
):
    from api.payment import webhook

    tenant, account, units = await tenant_with_unit(http, engine, make_tenant, n=2)
    _, agent = await member(tenant, ["agent"])
    first, second = [pi_of(await start(http, tenant.slug, u, agent)) for u in units]
    arrived = fake.succeed(first)
    await deliver(http, fake, arrived)
    since = int(time.time()) - 60
    fake.succeed(second)  # this one never reaches us
    counts = await webhook.replay(engine, worker_settings, since)
    # (other tests' accounts are replayed too: count this tenant's events)
    assert counts["stored"] >= 1 and counts["duplicate"] >= 1, counts
    mine = await events(engine, account=account)
    assert sorted(e.payload["data"]["object"]["id"] for e in mine) == sorted([first, second])
    await work(worker_settings, engine, db_url)
    assert {p.status for p in await payment_rows(engine, tenant)} == {"paid"}
    again = await webhook.replay(engine, worker_settings, since)
    assert again["stored"] == 0
    assert again["duplicate"] >= 2 and len(await events(engine, account=account)) == 2


async def test_replay_requeues_an_event_whose_job_failed_for_good(
    http, fake, engine, db_url, make_tenant, member, worker_settings, monkeypatch
):
    """Stripe was down while the event's job ran and it had no retries left: the event is
    stored but never applied. Replay queues it again (once: not while that job waits) and
    it is applied; an event applied already is a duplicate."""
    import stripe

    from api.payment import stripe_api, webhook

    tenant, _, [unit] = await tenant_with_unit(http, engine, make_tenant)
    _, agent = await member(tenant, ["agent"])
    pi = pi_of(await start(http, tenant.slug, unit, agent))
    since = int(time.time()) - 60
    event = fake.succeed(pi)
    await deliver(http, fake, event)

    async def down(*args, **kwargs):
        raise stripe.APIConnectionError("Stripe is unreachable")

    monkeypatch.setattr(stripe_api, "retrieve_intent", down)
    monkeypatch.setattr(tasks.apply_stripe_event, "retry_strategy", None)
    await work(worker_settings, engine, db_url)
    monkeypatch.undo()

    async def jobs() -> list[str]:
        async with engine.connect() as conn:
            return list(
                await conn.scalars(
                    text(
                        "SELECT status FROM shared.procrastinate_jobs WHERE args->>'event_id' = :e "
                        "ORDER BY id"
                    ),
                    {"e": event["id"]},
                )
            )

    assert await jobs() == ["failed"]
    [ev] = await events(engine, id=event["id"])
    assert ev.processed_at is None
    assert [p.status for p in await payment_rows(engine, tenant)] == ["pending"]

    counts = await webhook.replay(engine, worker_settings, since)
    assert counts["requeued"] >= 1, counts  # (other tests' accounts are replayed too)
    assert await jobs() == ["failed", "todo"]
    again = await webhook.replay(engine, worker_settings, since)  # its job is waiting
    assert await jobs() == ["failed", "todo"]
    await work(worker_settings, engine, db_url)
    assert [p.status for p in await payment_rows(engine, tenant)] == ["paid"]
    assert await unit_status(http, tenant.slug, unit) == "RESERVED"
    [ev] = await events(engine, id=event["id"])
    assert ev.processed_at is not None and ev.outcome == "paid; unit reserved"
    last = await webhook.replay(engine, worker_settings, since)
    assert await jobs() == ["failed"]  # applied: not queued again
    assert last["duplicate"] >= 1 and again["duplicate"] >= 1
    balances, journals = await books(engine, tenant)
    assert journals == 1 and balances["deposits_held"] == -2_000_000


# ---------------------------------------------------------------- cancellation and expiry

CANCEL = """
mutation($u: ID!, $r: String!) {
  cancelReservation(unitId: $u, reason: $r) {
    __typename
    ... on CancelReservationPayload { refunded payment { status refundedAmount } }
    ... on UserError { code message field }
  }
}
"""


async def paid_deposit(http, fake, engine, db_url, tenant, unit, token, settings) -> str:
    pi = pi_of(await start(http, tenant.slug, unit, token))
    await deliver(http, fake, fake.succeed(pi))
    await work(settings, engine, db_url)
    assert await unit_status(http, tenant.slug, unit) == "RESERVED"
    return pi


async def test_cancelling_a_reservation_refunds_by_the_tenants_rules(
    http, fake, engine, db_url, make_tenant, member, worker_settings
):
    """Within 24 hours: all back. Later: half back, half kept (forfeited, booked as income).
    The platform fee comes back in proportion."""
    tenant, _, units = await tenant_with_unit(http, engine, make_tenant, n=2)
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    early, late = units
    pi_early = await paid_deposit(http, fake, engine, db_url, tenant, early, agent, worker_settings)
    pi_late = await paid_deposit(http, fake, engine, db_url, tenant, late, agent, worker_settings)
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            update(Payment)
            .where(Payment.stripe_payment_intent == pi_late)
            .values(paid_at=func.now() - text("interval '3 days'"))
        )
        await session.commit()
    res = await gql(
        http, CANCEL, {"u": early, "r": "buyer changed mind"}, tenant=slug, token=agent
    )  # agents may not refund
    assert res["data"]["cancelReservation"]["__typename"] == "PermissionDeniedError"
    got = (await gql(http, CANCEL, {"u": early, "r": "buyer changed mind"}, tenant=slug))["data"][
        "cancelReservation"
    ]
    assert (got["refunded"], got["payment"]["status"]) == (2_000_000, "REFUNDED"), got
    got = (await gql(http, CANCEL, {"u": late, "r": "no loan"}, tenant=slug))["data"][
        "cancelReservation"
    ]
    assert (got["refunded"], got["payment"]["refundedAmount"]) == (1_000_000, 1_000_000)
    assert [await unit_status(http, slug, u) for u in units] == ["AVAILABLE", "AVAILABLE"]
    amounts = {
        c.body["payment_intent"]: c.body["amount"] for c in fake.calls("POST", "/v1/refunds")
    }
    assert (amounts[pi_early], amounts[pi_late]) == ("2000000", "1000000")
    again = (await gql(http, CANCEL, {"u": early, "r": "again"}, tenant=slug))["data"]
    assert again["cancelReservation"]["__typename"] == "NotFoundError"
    balances, journals = await books(engine, tenant)
    assert journals == 4
    assert balances == {
        "deposits_held": 0,
        "deposit_forfeits": -1_000_000,
        "stripe_balance": 980_000,
        "platform_fees": 20_000,
    }


async def test_a_deposit_whose_hold_ran_out_is_cancelled_at_stripe(
    http, fake, engine, db_url, make_tenant, member, worker_settings
):
    from api.payment import tasks
    from api.unit import service as units

    tenant, _, [gone, paid_late] = await tenant_with_unit(http, engine, make_tenant, n=2)
    _, agent = await member(tenant, ["agent"])
    pi_gone = pi_of(await start(http, tenant.slug, gone, agent))
    pi_paid = pi_of(await start(http, tenant.slug, paid_late, agent))
    fake.succeed(pi_paid)  # paid, but its event has not arrived yet
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            text(
                f"UPDATE \"{tenant.schema_name}\".unit SET hold_expires_at = now() - interval '1 s'"
            )
        )
        assert await units.release_expired_holds(session) == 2
        await session.commit()
    from api.jobs import Runtime, set_runtime

    set_runtime(Runtime(worker_settings, engine))
    try:
        async with TenantDatabase(engine).session(tenant) as session:
            assert await tasks.expire_deposits.work(session, tenant) == 2
            await session.commit()
            assert await tasks.expire_deposits.work(session, tenant) == 0
    finally:
        set_runtime(None)
    assert fake.payment_intent(pi_gone)["status"] == "canceled"
    by_pi = {p.stripe_payment_intent: p for p in await payment_rows(engine, tenant)}
    assert by_pi[pi_gone].status == "canceled"
    assert by_pi[pi_paid].status == "paid"  # the unit was still free: reserved after all
    assert await unit_status(http, tenant.slug, paid_late) == "RESERVED"
    assert await unit_status(http, tenant.slug, gone) == "AVAILABLE"
    await books(engine, tenant)


def test_wechat_pay_is_offered_in_the_apps_only_with_an_app_id():
    from api.payment.stripe_api import methods_for

    bare = settings_with(**{**STRIPE, "stripe_wechat_app_id": ""})
    assert methods_for(bare, "ios") == ["card", "alipay"]
    assert methods_for(bare, "web") == ["card", "alipay", "wechat_pay"]
    assert methods_for(settings_with(**STRIPE), "android") == ["card", "alipay", "wechat_pay"]
