"""Tenant-affine routing (tenants/routing.py): a tenant's sessions stay on its lanes, a busy
tenant cannot take every connection from the others, a burst borrows within the tenant's reach
only, a connection that has served too many schemas is replaced, and the sessions waiting for a
lane are served by tenant in turn (the fair queue)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, exc, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_, greenlet_spawn

from api.db import make_engine
from api.settings import Settings
from tenants.registry import TenantInfo
from tenants.routing import LANE_TENANT, FairQueuePool, LanePlan, Lanes, lane_engine, lane_order
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
    engines = [lane_engine(url, settings, n) for n in sizes]
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


# ---------------------------------------------------------------- the fair queue of a lane
#
# Each waiter below holds its connection until the test lets it go (one at a time, through
# ``turns``), so the order in which the waiters get the connection is read, not timed.

Turns = asyncio.Queue[tuple[str, asyncio.Event]]


async def session_turn(db: TenantDatabase, tenant: TenantInfo, name: str, turns: Turns) -> None:
    """A tenant session that, once it has a connection, reports ``name`` and holds it until
    released."""
    async with db.session(tenant) as session:
        await session.execute(text("SELECT 1"))
        done = asyncio.Event()
        await turns.put((name, done))
        await done.wait()
        await session.rollback()


async def connection_turn(engine: AsyncEngine, tenant: str | None, name: str, turns: Turns) -> None:
    """The same with a bare lane connection, the tenant named as ``Lanes.pick`` names it."""
    LANE_TENANT.set(tenant)
    async with engine.connect():
        done = asyncio.Event()
        await turns.put((name, done))
        await done.wait()


async def next_turn(turns: Turns) -> tuple[str, asyncio.Event]:
    """The next waiter to get the connection (a test that goes wrong fails, not hangs)."""
    return await asyncio.wait_for(turns.get(), 10)


async def until(condition) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def waiting(pool) -> int:
    """Checkouts waiting in ``pool`` (for the plain pool of the contrast: its queue's getters)."""
    if isinstance(pool, FairQueuePool):
        return pool.waiting()
    return len(pool._pool._queue._getters)


async def served_order(pool, arrivals) -> list[str]:
    """Start ``arrivals`` (coroutine factories taking ``turns``) one after the other, the first
    holding the pool's only connection and each next one waiting, then release them one at a
    time: the names in the order they got the connection."""
    turns: Turns = asyncio.Queue()
    tasks = [asyncio.create_task(arrivals[0](turns))]
    first, release = await next_turn(turns)
    for i, arrival in enumerate(arrivals[1:], start=1):
        tasks.append(asyncio.create_task(arrival(turns)))
        await until(lambda i=i: waiting(pool) == i)
    order = [first]
    release.set()
    for _ in arrivals[1:]:
        name, release = await next_turn(turns)
        order.append(name)
        release.set()
    await asyncio.gather(*tasks)
    return order


def settled(pool: FairQueuePool) -> bool:
    return pool.checkedout() == 0 and pool.waiting() == 0 and pool.granted() == 0


async def test_a_busy_tenant_does_not_starve_a_tenant_sharing_its_lane(db_url, settings):
    # One lane of one connection; tenant A holds it and queues 10 more sessions, then B asks.
    a, b = fake_tenant(0), fake_tenant(1)
    queue = [(a, f"a{i}") for i in range(11)] + [(b, "b1")]

    def arrivals(db):
        return [lambda turns, t=t, n=n: session_turn(db, t, n, turns) for t, n in queue]

    async with lanes_of(db_url, settings, (1,), reach=1) as lanes:
        db = TenantDatabase(lanes.engines[0], lanes)
        pool = Lanes.pool_of(lanes.engines[0])
        fair = await served_order(pool, arrivals(db))
        assert settled(pool) and lanes.stats.waited == 11
    # B is served after one more session of A, the rest of A's queue after B.
    assert fair == ["a0", "a1", "b1"] + [f"a{i}" for i in range(2, 11)]

    # The contrast: the same arrivals on a plain pool of one connection (first come, first
    # served across requests), where B waits for all of A's queue.
    engine = make_engine(db_url, settings, pool_size=1, max_overflow=0)
    try:
        assert isinstance(engine.sync_engine.pool, AsyncAdaptedQueuePool)
        fifo = await served_order(engine.sync_engine.pool, arrivals(TenantDatabase(engine)))
    finally:
        await engine.dispose()
    assert fifo == [f"a{i}" for i in range(11)] + ["b1"]


async def test_tenants_are_served_in_turn_and_each_tenant_in_order(db_url, settings):
    a, b, c, h = (fake_tenant(i) for i in range(4))
    arrivals = ["h", "a1", "a2", "a3", "b1", "c1", "b2", "c2", "c3"]
    tenant = {"h": h, "a": a, "b": b, "c": c}
    queue = [(tenant[n[0]], n) for n in arrivals]
    async with lanes_of(db_url, settings, (1,), reach=1) as lanes:
        db = TenantDatabase(lanes.engines[0], lanes)
        pool = Lanes.pool_of(lanes.engines[0])
        order = await served_order(
            pool, [lambda turns, t=t, n=n: session_turn(db, t, n, turns) for t, n in queue]
        )
        assert settled(pool)
    # A, B, C in the order they first waited; a tenant that runs out leaves the rotation.
    assert order == ["h", "a1", "b1", "c1", "a2", "b2", "c2", "a3", "c3"]


async def test_a_waiter_cancelled_leaves_its_line_and_the_others_keep_their_turn(db_url, settings):
    engine = lane_engine(db_url, settings, 1)
    pool = Lanes.pool_of(engine)
    try:
        turns: Turns = asyncio.Queue()
        holder = asyncio.create_task(connection_turn(engine, "t_h", "h", turns))
        _, release = await next_turn(turns)
        waiters = {}
        for tenant, name in (("t_a", "a1"), ("t_b", "b1"), ("t_a", "a2")):
            waiters[name] = asyncio.create_task(connection_turn(engine, tenant, name, turns))
            await until(lambda n=len(waiters): pool.waiting() == n)
        waiters["a1"].cancel()
        await until(lambda: pool.waiting() == 2)
        assert pool.granted() == 0 and pool.checkedout() == 1
        release.set()
        order = []
        for _ in range(2):
            name, release = await next_turn(turns)
            order.append(name)
            release.set()
        assert order == ["a2", "b1"]  # A keeps its place in the rotation, with its next waiter
        await asyncio.gather(holder, waiters["b1"], waiters["a2"])
        with pytest.raises(asyncio.CancelledError):
            await waiters["a1"]
        assert settled(pool)
        async with engine.connect() as conn:  # the connection is there for the next one
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_waiter_cancelled_after_its_grant_passes_the_connection_on(db_url, settings):
    engine = lane_engine(db_url, settings, 1)
    pool = Lanes.pool_of(engine)
    try:
        turns: Turns = asyncio.Queue()
        conn = await engine.connect()  # held by the test itself
        granted = asyncio.create_task(connection_turn(engine, "t_a", "a1", turns))
        await until(lambda: pool.waiting() == 1)
        other = asyncio.create_task(connection_turn(engine, "t_b", "b1", turns))
        await until(lambda: pool.waiting() == 2)
        await conn.close()  # grants the connection to a1; a1 has not run since
        assert pool.granted() == 1 and pool.waiting() == 1 and not granted.done()
        assert not pool.has_room()  # reserved for a1: an arrival now would wait
        granted.cancel()
        name, release = await next_turn(turns)
        assert name == "b1" and pool.granted() == 0 and pool.checkedout() == 1
        release.set()
        await other
        with pytest.raises(asyncio.CancelledError):
            await granted
        assert settled(pool) and turns.empty()
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_waiter_past_the_pool_timeout_fails_and_leaves_the_queue(db_url, settings):
    engine = lane_engine(db_url, settings, 1, pool_timeout=0.2)
    pool = Lanes.pool_of(engine)
    try:
        turns: Turns = asyncio.Queue()
        holder = asyncio.create_task(connection_turn(engine, "t_h", "h", turns))
        _, release = await next_turn(turns)
        late = [asyncio.create_task(connection_turn(engine, t, t, turns)) for t in ("t_a", "t_b")]
        for task in late:
            with pytest.raises(exc.TimeoutError):
                await task
        assert pool.waiting() == 0 and pool.granted() == 0 and pool.checkedout() == 1
        release.set()
        await holder
        assert settled(pool) and pool.has_room() and turns.empty()
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


class Refused(Exception):
    pass


async def test_a_connection_that_fails_to_open_lets_the_next_waiter_open_one(db_url, settings):
    engine = lane_engine(db_url, settings, 2)
    pool = Lanes.pool_of(engine)
    opening = asyncio.Event()
    attempts = []

    @event.listens_for(engine.sync_engine, "do_connect")
    def second_fails(dialect, record, cargs, cparams):
        attempts.append(len(attempts) + 1)
        if len(attempts) == 2:  # held until a third checkout waits, then refused
            await_(opening.wait())
            raise Refused

    try:
        turns: Turns = asyncio.Queue()
        first = asyncio.create_task(connection_turn(engine, "t_a", "a1", turns))
        _, release_first = await next_turn(turns)
        failing = asyncio.create_task(connection_turn(engine, "t_a", "a2", turns))
        await until(lambda: len(attempts) == 2)
        waiter = asyncio.create_task(connection_turn(engine, "t_b", "b1", turns))
        await until(lambda: pool.waiting() == 1)
        opening.set()
        with pytest.raises(Refused):
            await failing
        name, release = await next_turn(turns)  # the failed connection's place went to b1
        assert name == "b1" and len(attempts) == 3 and pool.granted() == 0
        release.set()
        release_first.set()
        await asyncio.gather(first, waiter)
        assert settled(pool)
    finally:
        await engine.dispose()


async def test_disposing_a_lane_serves_its_waiters_and_starts_a_clean_pool(db_url, settings):
    async with lanes_of(db_url, settings, (1,), reach=1) as lanes:
        engine = lanes.engines[0]
        old = Lanes.pool_of(engine)
        turns: Turns = asyncio.Queue()
        holder = asyncio.create_task(connection_turn(engine, "t_h", "h", turns))
        _, release_holder = await next_turn(turns)
        waiter = asyncio.create_task(connection_turn(engine, "t_a", "a1", turns))
        await until(lambda: old.waiting() == 1)
        await engine.dispose()  # the waiter is not left behind in the old pool
        name, release = await next_turn(turns)
        assert name == "a1" and old.waiting() == 0 and old.granted() == 0
        new = Lanes.pool_of(engine)
        assert new is not old and new.stats is lanes.stats and settled(new)
        release.set()
        release_holder.set()
        await asyncio.gather(holder, waiter)
        await greenlet_spawn(old.dispose)  # the old pool's idle connection
        assert lanes.stats.waited == 1


async def test_a_tenant_returns_to_the_connection_of_its_lane_that_knows_it(db_url, settings):
    # One lane of two connections: with both idle, each tenant is served by the backend that
    # served it before (not by the most recently used one), and a new tenant goes to the
    # backend that knows fewer tenants, so each backend learns half of the lane's tenants.
    async with lanes_of(db_url, settings, (2,), reach=1) as lanes:
        db = TenantDatabase(lanes.engines[0], lanes)
        a, b = fake_tenant(0), fake_tenant(1)
        hold = asyncio.Event()
        first = [asyncio.create_task(backend_of(db, t, hold)) for t in (a, b)]
        await asyncio.sleep(0.3)  # both connections open, one tenant on each
        hold.set()
        home = dict(zip(("a", "b"), await asyncio.gather(*first), strict=True))
        assert home["a"] != home["b"]
        done = asyncio.Event()
        done.set()
        for _ in range(3):
            assert await backend_of(db, a, done) == home["a"]
            assert await backend_of(db, b, done) == home["b"]
        # two new tenants, one after the other: one on each backend
        new = {await backend_of(db, fake_tenant(i), done) for i in (2, 3)}
        assert new == set(home.values())
    assert lanes.stats.most_schemas == 2
    assert lanes.stats.cold == 2  # the two new tenants; every later checkout found its backend


def test_the_statement_cache_grows_with_the_schema_budget():
    # A statement's text names its tenant's schema: a connection that may serve more schemas
    # needs room for more statements, unless the operator sized the cache.
    assert Settings(env="test").statement_cache_size == 2000
    assert Settings(env="test", db_max_schemas_per_connection=1500).statement_cache_size == 6000
    assert Settings(env="test", db_max_schemas_per_connection=10).statement_cache_size == 1024
    fixed = Settings(env="test", db_max_schemas_per_connection=1500, db_statement_cache_size=64)
    assert fixed.statement_cache_size == 64
