"""PostgreSQL restarted under a running gateway (issue #16, item 5).

The test starts a PostgreSQL of its own (tests/api/processes.py) and a gateway process on it
(with its job worker and live relay), then:

1. restarts PostgreSQL while the gateway's pool holds idle connections: the next requests all
   succeed (pre-ping replaces the connections the restart closed);
2. stops it under load: every answer is either a success or, at once, HTTP 503 with
   Retry-After and the typed body (never a 500, never a hang past the client's bound);
3. starts it again: requests succeed with no manual step, the job worker runs jobs again and
   the live relay delivers events to a WebSocket that stayed open."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.pool import NullPool

from api.db import ensure_database, make_engine, utcnow
from api.jobs import enqueue
from api.unit import tasks
from api.unit.models import Unit
from tenants.migrate import upgrade_shared
from tenants.provisioning import create_tenant
from tenants.sessions import TenantDatabase
from tests.api.live.helpers import UNIT_CHANGES, live
from tests.api.processes import Gateway, Postgres, gateway_env
from tests.api.unit.helpers import HOLD_UNIT, UNIT_QUERY, inventory, ok, reserve
from tests.conftest import TOKENS, add_member, auth_headers, gql, unique_slug

BOUND = 20.0  # seconds any answer may take (the client's timeout): a hang fails the test
UNITS = "query { units(first: 1) { totalCount } }"


@pytest.fixture
async def own_postgres(scratch, settings):
    """(server, url, engine): a PostgreSQL of this test's own with a migrated database."""
    pg = await asyncio.to_thread(Postgres(scratch / "pg").start)
    url = pg.url("anju_faults")
    try:
        await ensure_database(url)
        engine = make_engine(url, settings, poolclass=NullPool)
        await upgrade_shared(engine)
        yield pg, url, engine
        await engine.dispose()
    finally:
        await asyncio.to_thread(pg.stop)


async def post(c: httpx.AsyncClient, slug: str, query: str, variables=None) -> httpx.Response:
    return await c.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=auth_headers(slug)
    )


def outcome(resp: httpx.Response) -> str:
    """ "ok", "unavailable" (503, Retry-After, typed body), or what else came back."""
    if resp.status_code == 200 and "errors" not in resp.json():
        return "ok"
    if resp.status_code == 503:
        body = resp.json()
        ext = body["errors"][0]["extensions"]
        if (resp.headers.get("retry-after"), ext) == (
            "5",
            {
                "code": "INTERNAL",
                "reason": "SERVICE_UNAVAILABLE",
                "retryAfter": 5,
            },
        ) and body["errors"][0]["message"]:
            return "unavailable"
    return f"{resp.status_code}: {resp.text[:300]}"


async def test_postgresql_restart_under_a_running_gateway(own_postgres, scratch, settings, kit):
    pg, url, engine = own_postgres
    tenant = (await create_tenant(engine, unique_slug("pg"), "Restart Realty")).tenant
    slug = tenant.slug
    _, TOKENS[slug] = await add_member(engine, kit, tenant, ["admin"], name="Admin")
    other = (await create_tenant(engine, unique_slug("pg"), "Other Realty")).tenant
    _, TOKENS[other.slug] = await add_member(engine, kit, other, ["admin"], name="Admin")
    # Tenants stay cached: a request for ``slug`` reaches GraphQL while the database is down,
    # one for ``other`` (never asked before) fails in tenant resolution.
    env = gateway_env(
        settings,
        url,
        ANJU_WORKER_IN_PROCESS="true",
        ANJU_DB_POOL_SIZE="8",
        ANJU_TENANT_CACHE_TTL="3600",
    )
    gw = Gateway("gw", env, scratch)
    await asyncio.to_thread(gw.start)
    try:
        async with httpx.AsyncClient(base_url=gw.url, timeout=BOUND) as c:
            inv = await inventory(c, slug, floors=1, per_floor=3)
            u1, u2, u3 = (u["id"] for u in inv["units"])
            async with live(gw, slug) as ws:
                await ws.subscribe(UNIT_CHANGES, {"buildingId": inv["building"]["id"]})
                await ws.nothing(0.3)  # registered

                # 1. A restart while the pool holds idle connections.
                burst = [post(c, slug, UNITS) for _ in range(8)]
                assert {outcome(r) for r in await asyncio.gather(*burst)} == {"ok"}
                await asyncio.to_thread(pg.stop)
                await asyncio.to_thread(pg.start)
                burst = [post(c, slug, UNITS) for _ in range(8)]
                assert [outcome(r) for r in await asyncio.gather(*burst)] == ["ok"] * 8

                # 2. Stopped under load: every answer is a success or a typed 503.
                seen: list[str] = []
                running = True

                async def load() -> None:
                    while running:
                        seen.append(outcome(await post(c, slug, UNITS)))

                loaders = [asyncio.create_task(load()) for _ in range(4)]
                await asyncio.to_thread(pg.stop)
                down = await asyncio.gather(
                    post(c, slug, UNITS),  # a query's field
                    post(c, slug, HOLD_UNIT, {"input": {"unitId": u1}}),  # a mutation
                    post(c, other.slug, UNITS),  # tenant resolution
                    c.post("/graphql", json={"query": "{ __typename }"}),  # no database
                )
                assert [outcome(r) for r in down] == ["unavailable"] * 3 + ["ok"], down
                await asyncio.to_thread(pg.start)

                # 3. Back: requests succeed, no manual step.
                after = [outcome(await post(c, slug, UNITS)) for _ in range(3)]
                running = False
                await asyncio.gather(*loaders)
                assert after == ["ok"] * 3
                assert "unavailable" in seen, seen  # the load met the outage...
                assert set(seen) <= {"ok", "unavailable"}, set(seen)  # ...and only as a 503

                # The live relay reconnected: a change reaches the open WebSocket.
                await reserve(c, slug, u3)
                msg = await ws.next(30)
                change = msg["payload"]["data"]["unitChanges"]
                assert (change["unitId"], change["status"]) == (u3, "RESERVED"), msg

            # The job worker reconnected: a hold that expired is released by a job.
            res = await gql(c, HOLD_UNIT, {"input": {"unitId": u2}}, tenant=slug)
            ok(res, "holdUnit", "UnitPayload")
            async with TenantDatabase(engine).session(tenant) as session:
                past = utcnow() - timedelta(minutes=1)
                await session.execute(
                    update(Unit).where(Unit.id == u2).values(hold_expires_at=past)
                )
                await session.execute(enqueue(tasks.release_expired_holds, tenant=slug))
                await session.commit()
            async with asyncio.timeout(60):
                while True:
                    res = await gql(c, UNIT_QUERY, {"id": u2}, tenant=slug)
                    if res["data"]["unit"]["status"] == "AVAILABLE":
                        break
                    await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(gw.stop)
    log = gw.log_tail(1_000_000)  # no request failed with a traceback (500, or INTERNAL)
    assert "Exception in ASGI application" not in log and "unexpected error" not in log, log
