"""Warming the lanes at start (tenants/warming.py): each lane connection plans its home tenants'
hot tables before the process is ready, within its budget of schemas; a failure to warm leaves
the process ready; /readyz answers 503 ``warming`` until the warm-up is done."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette

from api import health
from api.db import make_engine
from api.settings import Settings
from tenants.registry import TenantCache, list_tenants
from tenants.routing import SEEN, lane_order
from tenants.sessions import TenantDatabase
from tenants.warming import Warmup, warm


async def unit_tables_cached(conn: AsyncConnection) -> int:
    """Tenant ``unit`` tables whose primary key index this backend has in its relation cache
    (an "index info" memory context per cached index, named after the index)."""
    return (
        await conn.execute(
            text(
                "SELECT count(*) FROM pg_backend_memory_contexts "
                "WHERE name = 'index info' AND ident = 'pk_unit'"
            )
        )
    ).scalar_one()


async def test_each_lane_connection_meets_its_home_tenants_within_its_budget(
    db_url, make_tenant, engine
):
    # 2 lanes of 2; a connection warms at most 3/4 of 4 schemas: 3, a lane 6 (each tenant on
    # one of its connections). Tenants are made until each lane is home to more than that.
    def homes(schemas: list[str]) -> list[list[str]]:
        return [[s for s in schemas if lane_order(s, 2)[0] == lane] for lane in (0, 1)]

    for _ in range(100):
        schemas = [t.schema_name for t in await list_tenants(engine) if t.active]
        if all(len(h) > 6 for h in homes(schemas)):
            break
        await make_tenant()
    settings = Settings(env="test", db_pool_size=4, db_lane_size=2, db_max_schemas_per_connection=4)
    db = TenantDatabase.routed(make_engine(db_url, settings), settings)
    try:
        assert db.lanes is not None
        done = await warm(db, ["unit", "project", "no_such_table"], Warmup())
        assert done.ready and done.error is None
        assert done.connections == 4
        assert done.tenants == 4 * 3
        for lane, home in enumerate(homes(schemas)):
            eng = db.lanes.engines[lane]
            async with eng.connect() as c1, eng.connect() as c2:
                s1, s2 = c1.info[SEEN], c2.info[SEEN]
                # each connection its own three of the lane's tenants, none warmed twice
                assert len(s1) == len(s2) == 3 and not s1 & s2 and s1 | s2 <= set(home)
                for conn in (c1, c2):
                    # ... and the backend has their tables in its caches, no other tenant's.
                    assert await unit_tables_cached(conn) == 3
        async with make_engine(db_url, settings).connect() as cold:
            assert await unit_tables_cached(cold) == 0  # a backend that was not warmed
    finally:
        await db.dispose()
        await db.engine.dispose()


async def test_one_pool_and_an_empty_table_list_warm_nothing(db_url, make_tenant):
    await make_tenant()
    one = Settings(env="test", db_pool_size=4, db_lane_size=0)
    db = TenantDatabase.routed(make_engine(db_url, one), one)
    try:
        done = await warm(db, ["unit"], Warmup())
        assert done.ready and done.tenants == 0 and done.connections == 0
    finally:
        await db.engine.dispose()
    lanes = Settings(env="test", db_pool_size=4, db_lane_size=2)
    db = TenantDatabase.routed(make_engine(db_url, lanes), lanes)
    try:
        done = await warm(db, [], Warmup())
        assert done.ready and done.tenants == 0 and done.primed == 0
        # with a tenant cache, the registry read is kept even when no table is warmed
        cache = TenantCache(db.engine, ttl=60.0)
        done = await warm(db, [], Warmup(), cache)
        registry = await list_tenants(db.engine)
        assert done.tenants == 0 and done.primed == len(registry) > 0
        assert set(cache._entries) == {t.slug for t in registry}
    finally:
        await db.dispose()
        await db.engine.dispose()


async def test_a_failed_warm_up_is_logged_and_the_process_is_ready(db_url, caplog):
    settings = Settings(env="test", db_pool_size=4, db_lane_size=2, db_connect_timeout=2)
    nowhere = db_url.set(host="127.0.0.1", port=1)  # nothing listens there
    db = TenantDatabase.routed(make_engine(nowhere, settings), settings)
    try:
        done = await warm(db, ["unit"], Warmup())
    finally:
        await db.dispose()
        await db.engine.dispose()
    assert done.ready and done.error is not None
    assert "warming the lanes failed" in caplog.text


async def test_readyz_answers_warming_until_the_warm_up_is_done(engine, make_tenant):
    await make_tenant()
    warmup = Warmup()
    app = Starlette(routes=health.routes(engine, warmup))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://anju") as client:
        resp = await client.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["status"] == "warming"
        assert (await client.get("/healthz")).status_code == 200  # alive meanwhile
        warmup.done.set()
        resp = await client.get("/readyz")
        assert resp.status_code == 200 and resp.json()["status"] == "ready"


async def test_a_gateway_warms_its_lanes_then_says_ready(live_server_factory, make_tenant):
    await make_tenant()
    with live_server_factory(db_warm_tables=["unit"]) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for _ in range(300):
                resp = await client.get("/readyz")
                if resp.json()["status"] != "warming":
                    break
                await asyncio.sleep(0.1)
            assert resp.status_code == 200, resp.text
