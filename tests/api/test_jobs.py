"""The job worker (procrastinate on PostgreSQL): tenant jobs run in their tenant, jobs without
a valid tenant fail closed, and the periodic sweep reaches every active tenant."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import text, update

from api.db import utcnow
from api.jobs import make_app
from api.unit import tasks
from api.unit.models import Unit
from tenants.registry import TenantStatus, set_status
from tenants.sessions import TenantDatabase
from tests.api.processes import drain
from tests.api.unit.helpers import HOLD_UNIT, UNIT_QUERY, inventory
from tests.conftest import gql
from tests.conftest import test_settings as settings_for_tests


async def held_and_expired(client, engine, tenant) -> str:
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    unit_id = inv["units"][0]["id"]
    res = await gql(client, HOLD_UNIT, {"input": {"unitId": unit_id}}, tenant=tenant.slug)
    assert res["data"]["holdUnit"]["__typename"] == "UnitPayload", res
    async with TenantDatabase(engine).session(tenant) as session:
        past = utcnow() - timedelta(minutes=1)
        await session.execute(update(Unit).where(Unit.id == unit_id).values(hold_expires_at=past))
        await session.commit()
    return unit_id


async def status_of(client, slug: str, unit_id: str) -> tuple[str, list[str]]:
    res = await gql(client, UNIT_QUERY, {"id": unit_id}, tenant=slug)
    unit = res["data"]["unit"]
    return unit["status"], [e["kind"] for e in unit["timeline"]]


async def job_statuses(engine, task_name: str) -> list[tuple[str, dict]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT status, args FROM shared.procrastinate_jobs WHERE task_name = :n"
                " ORDER BY id"
            ),
            {"n": task_name},
        )
        return [(r.status, r.args) for r in rows]


async def test_sweep_releases_expired_holds_in_every_active_tenant(
    client, engine, db_url, make_tenant
):
    a, b, suspended = await make_tenant(), await make_tenant(), await make_tenant()
    ua = await held_and_expired(client, engine, a)
    ub = await held_and_expired(client, engine, b)
    us = await held_and_expired(client, engine, suspended)
    await set_status(engine, suspended.slug, TenantStatus.SUSPENDED)
    async with make_app(db_url).open_async():
        await tasks.sweep_expired_holds.defer_async(timestamp=0)
    await drain(engine, db_url)
    assert await status_of(client, a.slug, ua) == ("AVAILABLE", ["created", "hold", "hold_expired"])
    assert (await status_of(client, b.slug, ub))[0] == "AVAILABLE"
    await set_status(engine, suspended.slug, TenantStatus.ACTIVE)
    async with TenantDatabase(engine).session(suspended) as session:  # untouched while suspended
        assert (await session.get(Unit, us)).status == "on_hold"
    # Succeeded jobs are deleted; none failed, and the suspended tenant never got one.
    left = await job_statuses(engine, "unit:release_expired_holds")
    assert not [
        args for status, args in left if args.get("tenant") in (a.slug, b.slug, suspended.slug)
    ]


async def test_jobs_without_a_valid_tenant_fail_closed(client, engine, db_url, make_tenant):
    tenant = await make_tenant()
    unit_id = await held_and_expired(client, engine, tenant)
    async with make_app(db_url).open_async():
        await tasks.release_expired_holds.defer_async()  # no tenant
        await tasks.release_expired_holds.defer_async(tenant="no-such-tenant")
    await drain(engine, db_url)
    statuses = await job_statuses(engine, "unit:release_expired_holds")
    assert ("failed", {}) in statuses
    assert ("failed", {"tenant": "no-such-tenant"}) in statuses
    if (await status_of(client, tenant.slug, unit_id))[0] != "ON_HOLD":  # nothing ran, unless
        # the burst worker's periodic deferrer crossed a minute and the every-minute sweep
        # released it (for every active tenant, as it should): that sweep must be on record.
        async with engine.connect() as conn:
            swept = await conn.scalar(
                text(
                    "SELECT count(*) FROM shared.procrastinate_periodic_defers "
                    "WHERE task_name = 'unit:sweep_expired_holds' "
                    "AND defer_timestamp >= extract(epoch FROM now())::bigint - 120"
                )
            )
        assert swept, "the hold was released without a sweep"


async def wakeups(engine, tenant) -> dict[str, list]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT kind, due_at FROM shared.tenant_wakeup WHERE schema_name = :s "
                "ORDER BY kind, due_at"
            ),
            {"s": tenant.schema_name},
        )
        out: dict[str, list] = {}
        for kind, due in rows:
            out.setdefault(kind, []).append(due)
        return out


async def queued_for(engine, task_name: str, tenants) -> list[str]:
    slugs = {t.slug for t in tenants}
    return sorted(
        args["tenant"]
        for status, args in await job_statuses(engine, task_name)
        if status == "todo" and args.get("tenant") in slugs
    )


def _ceil_minute(t):
    floor = t.replace(second=0, microsecond=0)
    return floor if floor == t else floor + timedelta(minutes=1)


async def test_a_hold_records_when_its_tenant_next_needs_each_job(client, engine, make_tenant):
    """The unit's statement trigger writes the minute (rounded up) the hold expires, the
    minute its agent is to be warned (10 minutes before), and when a deposit on it would
    end; releasing the hold early leaves those to fire and find nothing."""
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    res = await gql(
        client, HOLD_UNIT, {"input": {"unitId": inv["units"][0]["id"]}}, tenant=tenant.slug
    )
    expires = datetime.fromisoformat(res["data"]["holdUnit"]["unit"]["holdExpiresAt"])
    got = await wakeups(engine, tenant)
    assert got == {
        "holds": [_ceil_minute(expires)],
        "deposit-expiry": [_ceil_minute(expires)],
        "hold-reminders": [_ceil_minute(expires - timedelta(minutes=10))],
    }, (got, expires)


async def test_sweeps_queue_jobs_only_for_tenants_with_work_due(
    client, engine, db_url, make_tenant, monkeypatch
):
    """An idle tenant gets no job from the every-minute sweeps; one whose hold expired gets
    the release job, which deletes the wake-up it served; a later hold's wake-up stays until
    it is due. A job that fails keeps its wake-up for the next sweep, and one that stops at
    its batch limit asks for the next minute."""
    from api.jobs import Runtime, defer_woken, set_runtime

    due, later, idle = await make_tenant(), await make_tenant(), await make_tenant()
    u_due = await held_and_expired(client, engine, due)
    inv = await inventory(client, later.slug, floors=1, per_floor=1)
    u_later = inv["units"][0]["id"]
    await gql(client, HOLD_UNIT, {"input": {"unitId": u_later}}, tenant=later.slug)
    await inventory(client, idle.slug, floors=1, per_floor=1)
    ours = (due, later, idle)
    assert await wakeups(engine, idle) == {}

    set_runtime(Runtime(settings_for_tests(), engine))
    try:
        async with make_app(db_url).open_async():
            await defer_woken(tasks.release_expired_holds)
            await defer_woken(tasks.release_expired_holds)  # queueing lock: still one
        name = "unit:release_expired_holds"
        assert await queued_for(engine, name, ours) == [due.slug]
        await drain(engine, db_url)
        assert (await status_of(client, due.slug, u_due))[0] == "AVAILABLE"
        # Served; what stays is the minute the hold was first due to end (a harmless check).
        assert all(t > utcnow() for t in (await wakeups(engine, due))["holds"])
        assert len((await wakeups(engine, later))["holds"]) == 1  # not due yet

        # The later hold runs out: its row's update records a wake-up due now.
        async with TenantDatabase(engine).session(later) as session:
            await session.execute(
                update(Unit)
                .where(Unit.id == u_later)
                .values(hold_expires_at=utcnow() - timedelta(minutes=2))
            )
            await session.commit()

        async def broken(session, **kw):
            raise RuntimeError("database went away")

        monkeypatch.setattr(tasks.service, "release_expired_holds", broken)
        async with make_app(db_url).open_async():
            await defer_woken(tasks.release_expired_holds)
        assert await queued_for(engine, name, ours) == [later.slug]
        await drain(engine, db_url)
        assert ("failed", {"tenant": later.slug}) in await job_statuses(engine, name)
        kept = (await wakeups(engine, later))["holds"]
        assert kept and min(kept) <= utcnow(), kept  # the failed job's wake-up is kept

        async def full_batch(session, **kw):
            return 1000

        monkeypatch.setattr(tasks.service, "release_expired_holds", full_batch)
        async with make_app(db_url).open_async():
            await defer_woken(tasks.release_expired_holds)
        await drain(engine, db_url)
        again = (await wakeups(engine, later))["holds"]
        assert again and all(t > utcnow() for t in again), again  # served, and next minute
        assert (await status_of(client, later.slug, u_later))[0] == "ON_HOLD"  # the fake ran
    finally:
        set_runtime(None)


def test_stall_settings_never_take_a_live_worker_for_dead():
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError, match="at least twice"):
        settings_for_tests(worker_heartbeat_seconds=10, worker_stalled_seconds=15)
    with pytest.raises(pydantic.ValidationError, match="not a cron expression"):
        settings_for_tests(worker_stalled_cron="every minute")
    fast = settings_for_tests(
        worker_heartbeat_seconds=0.5, worker_stalled_seconds=1, worker_stalled_cron="* * * * * */2"
    )
    assert (fast.worker_stalled_seconds, fast.worker_stalled_cron) == (1, "* * * * * */2")


async def test_a_stalled_job_at_the_attempts_cap_is_failed_not_retried(engine, db_url, make_tenant):
    """Jobs left ``doing`` by a dead worker (its heartbeat an hour old): one whose stalled run
    was its ``worker_stalled_max_attempts``-th (or later) is failed and logged as an error, so
    a job that kills every worker that runs it stops; one below the cap is retried (and runs)."""
    from structlog.testing import capture_logs

    from api.jobs import task_name

    tenant = await make_tenant()
    cap = 3
    name = task_name(tasks.release_expired_holds)
    async with engine.begin() as conn:
        dead = await conn.scalar(
            text(
                "INSERT INTO shared.procrastinate_workers (last_heartbeat) "
                "VALUES (now() - interval '1 hour') RETURNING id"
            )
        )
        jobs = {}
        for attempts in (cap - 2, cap - 1, cap):  # runs before the stalled one
            jobs[attempts] = await conn.scalar(
                text(
                    "INSERT INTO shared.procrastinate_jobs (queue_name, task_name, args, status, "
                    "attempts, worker_id) VALUES ('default', :n, "
                    "CAST(:a AS jsonb), 'doing', :t, :w) "
                    "RETURNING id"
                ),
                {"n": name, "a": json.dumps({"tenant": tenant.slug}), "t": attempts, "w": dead},
            )
        await conn.execute(
            text(
                "INSERT INTO shared.procrastinate_jobs (queue_name, task_name, args) "
                "VALUES ('default', 'jobs:retry_stalled_jobs', CAST(:a AS jsonb))"
            ),
            {"a": json.dumps({"timestamp": int(utcnow().timestamp())})},
        )

    with capture_logs() as logs:
        await drain(engine, db_url, settings_for_tests(worker_stalled_max_attempts=cap))

    async with engine.connect() as conn:
        rows = dict(
            (
                await conn.execute(
                    text(
                        "SELECT id, status || ':' || attempts FROM shared.procrastinate_jobs "
                        "WHERE id = ANY(:ids)"
                    ),
                    {"ids": list(jobs.values())},
                )
            ).all()
        )
    # Below the cap: back in the queue, run and done (done jobs are deleted).
    assert jobs[cap - 2] not in rows
    # At the cap: failed (the stalled run counted), never run again.
    assert rows == {jobs[cap - 1]: f"failed:{cap}", jobs[cap]: f"failed:{cap + 1}"}
    ours = [e for e in logs if e.get("job_id") in jobs.values()]  # other tests' dead workers
    failed = {e["job_id"]: e for e in ours if e["event"] == "stalled job failed: too many attempts"}
    assert set(failed) == {jobs[cap - 1], jobs[cap]}
    assert {(e["log_level"], e["task"], e["tenant"]) for e in failed.values()} == {
        ("error", name, tenant.slug)
    }
    assert [e["attempts"] for e in sorted(failed.values(), key=lambda e: e["job_id"])] == [
        cap,
        cap + 1,
    ]
    retried = [e["job_id"] for e in ours if e["event"] == "stalled job retried"]
    assert retried == [jobs[cap - 2]]
