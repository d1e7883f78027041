"""A worker killed inside a Stripe event's job (issue #16): real ``anju worker`` processes, the
loopback Stripe, a real gateway for the webhook.

The job is made to stop at a known point, deterministically: a trigger the test adds to the
tenant's ``receipt`` table takes a shared advisory lock the test holds exclusively, so the
worker's transaction waits there with the payment, the journal and the bill already written.
The test sees it waiting (``pg_locks``), SIGKILLs the worker and lets the lock go; the dead
worker's transaction never commits. A second worker's periodic sweep finds the job of a
worker that stopped heartbeating and retries it: the bill is paid once, one receipt, the books
balance."""

from __future__ import annotations

import asyncio
import inspect
import time

from sqlalchemy import select, text

from api.jobs import enqueue
from api.payment import tasks
from api.payment.models import StripeEvent
from tenants.sessions import TenantDatabase
from tests.api.payment.helpers import (
    books,
    connect,
    deliver,
    issue,
    mine,
    pay,
    payment_rows,
    pi,
    told,
    work,
)
from tests.api.processes import WorkerProcess
from tests.conftest import stripe_overrides

HOLD = (4242, 16)  # the advisory lock (two int keys) the trigger waits on
# Fast heartbeats and a short stall so the test takes seconds; the sweep every second.
FAST = {
    "worker_heartbeat_seconds": 0.5,
    "worker_stalled_seconds": 5,
    "worker_stalled_cron": "* * * * * *",
}


async def until(check, what: str, *workers: WorkerProcess, timeout: float = 90.0):
    """Poll ``check()`` (async or not) until it gives something true; fail with the
    workers' logs after ``timeout`` seconds or when one of them exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        for w in workers:
            if not w.alive:
                raise AssertionError(f"the worker exited waiting for {what}:\n{w.log()[-3000:]}")
        await asyncio.sleep(0.1)
    logs = "\n".join(w.log()[-3000:] for w in workers)
    raise AssertionError(f"{what}: not after {timeout} s\n{logs}")


async def test_a_worker_killed_inside_a_payment_job_is_retried_and_applied_once(
    http, fake, plans, engine, db_url, make_tenant, member, worker_settings, tmp_path
):
    tenant = await make_tenant()
    schema = tenant.schema_name
    await connect(engine, tenant)
    owner_id, owner = await member(tenant, ["owner"])
    bill = (await issue(http, tenant.slug, owner_id, amount=30_000))["bill"]
    started = await pay(http, tenant.slug, owner, bill["id"])
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f'CREATE FUNCTION "{schema}".hold_receipt() RETURNS trigger LANGUAGE plpgsql AS '
                f"$$ BEGIN PERFORM pg_advisory_xact_lock_shared({HOLD[0]}, {HOLD[1]}); "
                "RETURN NEW; END $$"
            )
        )
        await conn.execute(
            text(
                f'CREATE TRIGGER hold_receipt BEFORE INSERT ON "{schema}".receipt '
                f'FOR EACH ROW EXECUTE FUNCTION "{schema}".hold_receipt()'
            )
        )

    async def waiting() -> bool:
        async with engine.connect() as conn:
            return bool(
                await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                        "AND classid = :a AND objid = :b AND objsubid = 2"
                    ),
                    {"a": HOLD[0], "b": HOLD[1]},
                )
            )

    env = {**stripe_overrides(fake, plans), **FAST}
    first = WorkerProcess(db_url, tmp_path / "first.log", **env)
    second = WorkerProcess(db_url, tmp_path / "second.log", **env)
    holder = await engine.connect()
    try:
        await holder.execute(text("SELECT pg_advisory_lock(:a, :b)"), {"a": HOLD[0], "b": HOLD[1]})
        first.start()
        event = fake.succeed(pi(started))
        assert (await deliver(http, fake, event)).json() == {"received": True, "duplicate": False}
        await until(waiting, "the job to reach the receipt", first)

        async with engine.connect() as conn:
            [(job_id, status)] = (
                await conn.execute(
                    text(
                        "SELECT id, status FROM "
                        "shared.procrastinate_jobs WHERE args->>'event_id' = :e"
                    ),
                    {"e": event["id"]},
                )
            ).all()
        assert status == "doing"
        first.kill()  # inside the job: its transaction is open, never to commit
        await holder.execute(
            text("SELECT pg_advisory_unlock(:a, :b)"), {"a": HOLD[0], "b": HOLD[1]}
        )

        second.start()

        async def processed():
            async with engine.connect() as conn:
                return await conn.scalar(
                    select(StripeEvent.outcome).where(
                        StripeEvent.id == event["id"], StripeEvent.processed_at.is_not(None)
                    )
                )

        outcome = await until(processed, "the event to be applied by the second worker", second)
        assert outcome == f"paid; bill {bill['number']} paid"
        retried = await until(
            lambda: [e for e in second.events("stalled job retried") if e["job_id"] == job_id],
            "the sweep's log line",
            second,
        )
        assert retried[0]["task"] == "payment:apply_stripe_event"
    finally:
        first.kill()
        second.stop()
        await holder.close()

    async with engine.connect() as conn:  # done, and deleted as done: none left
        left = (
            await conn.execute(
                text("SELECT status FROM shared.procrastinate_jobs WHERE args->>'event_id' = :e"),
                {"e": event["id"]},
            )
        ).all()
    assert left == []
    # A job of the same event running once more (a worker that only looked dead) finds the
    # event processed and changes nothing.
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            enqueue(tasks.apply_stripe_event, tenant=tenant.slug, event_id=event["id"])
        )
        await session.commit()
    await work(worker_settings, engine, db_url)

    [got] = await mine(http, tenant.slug, owner)
    assert (got["status"], got["paidAmount"]) == ("PAID", 30_000)
    assert [(r["number"], r["amount"]) for r in got["receipts"]] == [("R00000001", 30_000)]
    [payment] = await payment_rows(engine, tenant)
    assert (payment.status, payment.refunded_amount) == ("paid", 0)
    balances, journals = await books(engine, tenant)
    assert journals == 2  # issued, paid: the killed run's journal was never committed
    assert balances == {
        "fee_income": -30_000,
        "accounts_receivable": 0,
        "stripe_balance": 29_400,
        "platform_fees": 600,
    }
    assert [t for _, t, _ in await told(engine, tenant)] == ["bill.issued", "bill.paid"]
    retrieved = fake.calls("GET", f"/v1/payment_intents/{pi(started)}")
    assert len(retrieved) >= 2  # the killed run and the retry each fetched it
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP TRIGGER hold_receipt ON "{schema}".receipt'))
