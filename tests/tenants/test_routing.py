"""Tenant-affine routing (tenants/routing.py): a tenant's sessions stay on its lanes, a busy
tenant cannot take every connection from the others, a burst borrows within the tenant's reach
only, and a connection that has served too many schemas is replaced."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.db import make_engine
from api.settings import Settings
from tenants.registry import TenantInfo
from tenants.routing import LanePlan, Lanes, lane_order
from tenants.sessions import TenantDatabase


def test_the_plan_splits_the_pool_into_lanes_and_a_reach():
    plan = LanePlan.of(20, 2, 8, 1000)
    assert plan.sizes == (2,) * 10 and plan.reach == 4
    assert LanePlan.of(5, 2, 8, 10).sizes == (3, 2)  # every connection in a lane
    assert LanePlan.of(5, 2, 8, 10).reach == 2  # never more lanes than there are
    assert LanePlan.of(6, 2, 1, 10).reach == 1  # at least the home lane


def test_lane_order_is_stable_and_spreads_tenants_evenly():
    schemas = [f"t_tenant_{i}" for i in range(4000)]
    homes = Counter(lane_order(s, 10)[0] for s in schemas)
    assert sorted(homes) == list(range(10))
    assert all(300 <= n <= 500 for n in homes.values()), homes  # 400 each, give or take
    assert lane_order("t_a", 10) == lane_order("t_a", 10)
    assert sorted(lane_order("t_a", 10)) == list(range(10))
    # Rendezvous hashing: one more lane moves only the tenants the new lane wins.
    moved = sum(lane_order(s, 10)[0] != lane_order(s, 11)[0] for s in schemas)
    assert moved == sum(lane_order(s, 11)[0] == 10 for s in schemas)


@contextlib.asynccontextmanager
async def lanes_of(
    url: URL, settings: Settings, sizes: tuple[int, ...], reach: int, max_schemas: int = 1000
) -> AsyncIterator[Lanes]:
    engines = [
        make_engine(url, settings, pool_size=n, max_overflow=0, pool_use_lifo=True) for n in sizes
    ]
    lanes = Lanes(engines, LanePlan(sizes=sizes, reach=reach, max_schemas=max_schemas))
    try:
        yield lanes
    finally:
        await lanes.dispose()


def fake_tenant(n: int) -> TenantInfo:
    """A tenant of these tests: only its schema's name is read (by the routing)."""
    return TenantInfo(
        id=f"route-{n}",
        slug=f"r{n}",
        name=f"R{n}",
        schema_name=f"t_route_{n}",
        status="active",
        plan="trial",
    )


async def backend_of(db: TenantDatabase, tenant: TenantInfo, hold: asyncio.Event) -> int:
    """Run one statement in a tenant session and keep its connection until ``hold`` is set."""
    async with db.session(tenant) as session:
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await hold.wait()
        await session.rollback()
    return pid


def tenant_with_home(lanes: Lanes, want, start: int = 0) -> TenantInfo:
    """The first test tenant (from ``start``) whose lanes satisfy ``want(reach)``."""
    for i in range(start, start + 10_000):
        t = fake_tenant(i)
        if want(lanes.reach_of(t.schema_name)):
            return t
    raise AssertionError("no such tenant")


async def test_a_busy_tenant_cannot_take_every_connection(db_url, settings):
    # 6 connections in 3 lanes of 2; a tenant may use 2 lanes (4 connections).
    async with lanes_of(db_url, settings, (2, 2, 2), reach=2) as lanes:
        db = TenantDatabase(lanes.engines[0], lanes)
        busy = fake_tenant(0)
        busy_lanes = set(lanes.reach_of(busy.schema_name))
        # another tenant whose home lane is the one the busy tenant never reaches
        other = tenant_with_home(lanes, lambda r: r[0] not in busy_lanes, start=1)

        hold = asyncio.Event()
        burst = [asyncio.create_task(backend_of(db, busy, hold)) for _ in range(12)]
        await asyncio.sleep(0.5)  # the burst takes everything it may
        # The other tenant is served at once, while the burst still holds its connections.
        release = asyncio.Event()
        release.set()
        other_pid = await asyncio.wait_for(backend_of(db, other, release), 5)
        assert not any(t.done() for t in burst)
        hold.set()
        pids = await asyncio.gather(*burst)
    assert len(set(pids)) == 4, Counter(pids)  # two lanes of two, never the third
    assert other_pid not in pids
    assert lanes.stats.borrowed >= 2


async def test_without_lanes_the_same_burst_takes_the_whole_pool(db_url, settings):
    # The contrast the test above guards: one pool of 6 for every tenant.
    engine = make_engine(db_url, settings, pool_size=6, max_overflow=0)
    db = TenantDatabase(engine)
    try:
        hold = asyncio.Event()
        burst = [asyncio.create_task(backend_of(db, fake_tenant(0), hold)) for _ in range(12)]
        await asyncio.sleep(0.5)
        release = asyncio.Event()
        release.set()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(backend_of(db, fake_tenant(1), release), 1.5)
        hold.set()
        pids = await asyncio.gather(*burst)
        assert len(set(pids)) == 6
    finally:
        await engine.dispose()


async def test_a_tenant_stays_on_its_home_lane_when_it_is_free(db_url, settings):
    async with lanes_of(db_url, settings, (1, 1, 1, 1), reach=4) as lanes:
        db = TenantDatabase(lanes.engines[0], lanes)
        done = asyncio.Event()
        done.set()
        tenants = [fake_tenant(i) for i in range(12)]
        first = {t.slug: await backend_of(db, t, done) for t in tenants}
        for _ in range(3):
            for t in tenants:
                assert await backend_of(db, t, done) == first[t.slug]
        # 12 tenants over 4 one-connection lanes: each backend met only its own lane's.
        assert lanes.stats.most_schemas <= 12 - 3 and lanes.stats.borrowed == 0
        assert len(set(first.values())) > 1


async def test_a_connection_that_served_too_many_schemas_is_replaced(db_url, settings):
    async with lanes_of(db_url, settings, (1,), reach=1, max_schemas=3) as lanes:
        db = TenantDatabase(lanes.engines[0], lanes)
        done = asyncio.Event()
        done.set()
        pids = [await backend_of(db, fake_tenant(i), done) for i in range(8)]
    # schemas 1-3 on the first backend; the 4th marks it, the 5th checkout replaces it
    assert pids[0] == pids[3] and pids[4] != pids[3], pids
    assert pids[4] == pids[7] and lanes.stats.retired == 1
    assert lanes.stats.most_schemas == 4


async def test_the_gateway_routes_through_lanes_and_closes_them(db_url):
    settings = Settings(env="test", db_pool_size=4, db_lane_size=2, db_tenant_max_connections=2)
    db = TenantDatabase.routed(make_engine(db_url, settings), settings)
    try:
        assert db.lanes is not None and db.lanes.plan.sizes == (2, 2)
        assert db.engine.sync_engine.pool.size() == settings.db_shared_pool_size
    finally:
        await db.dispose()
        await db.engine.dispose()
    off = Settings(env="test", db_pool_size=4, db_lane_size=0)
    assert TenantDatabase.routed(make_engine(db_url, off), off).lanes is None
