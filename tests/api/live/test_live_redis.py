"""Live updates across gateway processes sharing Redis (issue #5).

Two real gateway processes (uvicorn, loopback) share one database and one Redis: a change made
through one reaches subscribers on both, once each, and never another tenant's; when the
process whose relay leads dies, the standby takes over. In process: the hub reads a gap in a
tenant's sequence back from the outbox, and RedisBus carries messages between instances.

The gateway processes use a database of their own (``<test database>_gateways``): a gateway
running in the test process (``live_server``, started by other modules of the suite) runs a
relay on the test database with an in-process bus, and, leading there, would publish the
processes' events where they never look."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from graphql import parse
from sqlalchemy import select, text

from api.graphql.schema import build_schema
from api.live.bus import LocalBus, RedisBus
from api.live.hub import Connection, Feed, Hub
from api.live.relay import LOCK_KEY, OUTBOX, Relay, wire
from api.live.schema import to_object
from tenants.provisioning import create_tenant
from tests.api.live.helpers import UNIT_CHANGES, live
from tests.api.processes import (
    Gateway,
    RedisServer,
    gateway_env,
    own_database,
    redis_server_or_skip,
)
from tests.api.unit.helpers import CHANGE_STATUS, inventory, ok, reserve
from tests.conftest import TOKENS, add_member, gql, unique_slug
from tests.conftest import test_settings as settings_for_tests


def _redis_url_or_skip() -> str:
    url = settings_for_tests().test_redis_url
    if not url:
        pytest.skip("no Redis: set ANJU_TEST_REDIS_URL (CI does)")
    return url


@pytest.fixture(scope="module")
def redis_url() -> str:
    return _redis_url_or_skip()


@pytest.fixture(scope="module")
async def gw_db(db_url, settings):
    """A database of the gateway processes' own, migrated: (url, engine)."""
    async with own_database(db_url, settings, "gateways") as db:
        yield db


@pytest.fixture(scope="module")
def gateway_pair(redis_url, gw_db, settings):
    """Two gateway processes on the gateways' database, sharing Redis; each runs the relay in
    process (one leads, the other stands by)."""
    url, _ = gw_db
    env = gateway_env(settings, url, ANJU_REDIS_URL=redis_url)
    with tempfile.TemporaryDirectory(prefix="anju-gateways-") as logs:
        pair = [Gateway("gw1", env, Path(logs)), Gateway("gw2", env, Path(logs))]
        try:
            for gw in pair:
                gw.spawn()
            for gw in pair:
                gw.wait_healthy()
            yield pair
        finally:
            for gw in pair:
                gw.stop()


@pytest.fixture
def gateways(gateway_pair) -> list[Gateway]:
    """The pair, each running (one a test killed is started again)."""
    for gw in gateway_pair:
        if gw.proc is None or gw.proc.poll() is not None:
            gw.start()
    return gateway_pair


@pytest.fixture
def gw_tenant(gw_db, kit):
    """``await gw_tenant()``: a tenant in the gateways' database whose admin token ``gql`` and
    ``live`` send by default."""
    _, engine = gw_db

    async def make():
        tenant = (await create_tenant(engine, unique_slug("rd"), "Redis Realty")).tenant
        _, TOKENS[tenant.slug] = await add_member(engine, kit, tenant, ["admin"], name="Admin")
        return tenant

    return make


@asynccontextmanager
async def http(gw: Gateway):
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as c:
        yield c


async def subscribed(ws, variables: dict) -> str:
    sid = await ws.subscribe(UNIT_CHANGES, variables)
    await ws.nothing(0.3)  # registered (a subscribe has no acknowledgement)
    return sid


def change_of(msg: dict) -> dict:
    assert msg["type"] == "next", msg
    assert "errors" not in msg["payload"], msg
    return msg["payload"]["data"]["unitChanges"]


async def leader(gateways: list[Gateway], engine, timeout: float = 10.0) -> int:
    """Index of the gateway whose relay holds the advisory lock: the lock's backend names its
    process (application_name anju-relay-<pid>)."""
    deadline = time.monotonic() + timeout
    found: list = []
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            found = (
                (
                    await conn.execute(
                        text(
                            "SELECT a.application_name FROM pg_locks l JOIN "
                            "pg_stat_activity a ON a.pid = l.pid"
                            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                            " AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
                            " AND l.database = (SELECT oid FROM pg_database "
                            "WHERE datname = current_database())"
                        ),
                        {"hi": LOCK_KEY >> 32, "lo": LOCK_KEY & 0xFFFFFFFF},
                    )
                )
                .scalars()
                .all()
            )
        if len(found) == 1:
            owners = [
                i
                for i, gw in enumerate(gateways)
                if gw.proc is not None
                and gw.proc.poll() is None
                and found[0] == f"anju-relay-{gw.pid}"
            ]
            if len(owners) == 1:
                return owners[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no single gateway leads the relay (lock holders: {found})")


# ---------------------------------------------------------------- across processes


async def test_a_change_through_either_gateway_reaches_subscribers_on_both_once(
    gateways, gw_tenant, gw_db
):
    g1, g2 = gateways
    tenant = await gw_tenant()
    slug = tenant.slug
    assert await leader(gateways, gw_db[1]) in (0, 1)  # both run a relay: exactly one leads
    async with http(g1) as c1, http(g2) as c2:
        inv = await inventory(c1, slug, floors=1, per_floor=2)
        u1, u2 = (u["id"] for u in inv["units"])
        variables = {"buildingId": inv["building"]["id"]}
        async with live(g1, slug) as w1, live(g2, slug) as w2:
            await subscribed(w1, variables)
            await subscribed(w2, variables)

            await reserve(c1, slug, u1)  # through gateway 1
            first = [change_of(await ws.next()) for ws in (w1, w2)]
            assert first[0] == first[1]
            assert first[0]["unitId"] == u1 and first[0]["status"] == "RESERVED"

            await reserve(c2, slug, u2)  # through gateway 2
            second = [change_of(await ws.next()) for ws in (w1, w2)]
            assert second[0] == second[1]
            assert second[0]["unitId"] == u2 and second[0]["status"] == "RESERVED"
            assert second[0]["seq"] == first[0]["seq"] + 1

            for ws in (w1, w2):  # once each: no second copy from the other process's relay
                await ws.nothing(0.7)


async def test_no_cross_tenant_delivery_under_load(gateways, gw_tenant):
    g1, g2 = gateways
    a, b = await gw_tenant(), await gw_tenant()
    async with http(g1) as c1, http(g2) as c2:
        inv_a = await inventory(c1, a.slug, floors=10, per_floor=5)  # 50 units
        inv_b = await inventory(c2, b.slug, floors=1, per_floor=1)
        project_a, project_b = inv_a["project"]["id"], inv_b["project"]["id"]
        units = [u["id"] for u in inv_a["units"]]
        async with (
            live(g1, a.slug) as wa1,
            live(g2, a.slug) as wa2,
            live(g1, b.slug) as wb1,
            live(g2, b.slug) as wb2,
            live(g2, b.slug) as wb_foreign,
        ):
            for ws in (wa1, wa2):
                await ws.subscribe(UNIT_CHANGES, {"projectId": project_a})
            for ws in (wb1, wb2):
                await ws.subscribe(UNIT_CHANGES, {"projectId": project_b})
            # B naming A's project: not found (in B), and it must hear nothing of A after
            sid = await wb_foreign.subscribe(UNIT_CHANGES, {"projectId": project_a})
            refusal = await wb_foreign.recv()
            assert refusal["id"] == sid and refusal["type"] == "error", refusal
            assert refusal["payload"][0]["extensions"]["code"] == "NOT_FOUND", refusal
            await asyncio.gather(*(ws.nothing(0.3) for ws in (wa1, wa2, wb1, wb2, wb_foreign)))

            async def deal(i: int, unit: str) -> None:
                c = (c1, c2)[i % 2]  # half the units through each gateway
                await reserve(c, a.slug, unit)
                to = {"input": {"unitId": unit, "status": "SUBSCRIBED"}}
                res = await gql(c, CHANGE_STATUS, to, tenant=a.slug)
                ok(res, "changeUnitStatus", "UnitPayload")

            await asyncio.gather(*(deal(i, u) for i, u in enumerate(units)))  # 100 changes

            streams = []
            for ws in (wa1, wa2):
                streams.append([change_of(await ws.next(15)) for _ in range(2 * len(units))])
            assert streams[0] == streams[1]
            seqs = [c["seq"] for c in streams[0]]
            assert seqs == list(range(seqs[0], seqs[0] + 2 * len(units)))  # gapless, no repeats
            final: dict[str, list[tuple[int, str]]] = {}
            for c in streams[0]:
                final.setdefault(c["unitId"], []).append((c["seq"], c["status"]))
            assert set(final) == set(units)
            for unit, events in final.items():  # each unit: reserved, then subscribed
                assert [s for _, s in events] == ["RESERVED", "SUBSCRIBED"], (unit, events)

            # B's subscribers heard nothing of A: the first thing they hear is B's own change
            await reserve(c2, b.slug, inv_b["units"][0]["id"])
            for ws in (wb1, wb2):
                got = change_of(await ws.next())
                assert got["unitId"] == inv_b["units"][0]["id"], got
            await wb_foreign.nothing(0.5)
            for ws in (wa1, wa2, wb1, wb2):
                await ws.nothing(0.2)


async def test_standby_relay_takes_over_when_the_leader_dies(gateways, gw_tenant, gw_db):
    engine = gw_db[1]
    lead = await leader(gateways, engine)
    dead, survivor = gateways[lead], gateways[1 - lead]
    tenant = await gw_tenant()
    slug = tenant.slug
    async with http(survivor) as c:
        inv = await inventory(c, slug, floors=1, per_floor=2)
        u1, u2 = (u["id"] for u in inv["units"])
        async with live(survivor, slug) as ws:
            await subscribed(ws, {"buildingId": inv["building"]["id"]})
            await reserve(c, slug, u1)
            before = change_of(await ws.next())
            assert before["unitId"] == u1

            dead.kill()
            t0 = time.monotonic()
            await reserve(c, slug, u2)  # made with no leader: the standby must take over
            after = change_of(await ws.next(10))
            took = time.monotonic() - t0
            assert after["unitId"] == u2 and after["status"] == "RESERVED"
            assert after["seq"] == before["seq"] + 1
            assert took < 6.0, f"the standby took {took:.1f} s to publish"
            await ws.nothing(0.5)
    assert await leader(gateways, engine) == 1 - lead


# ---------------------------------------------------------------- the hub, in process


class _Collecting:
    """An ASGI ``send`` that keeps what is written."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.arrived = asyncio.Event()

    async def __call__(self, message: dict) -> None:
        self.sent.append(json.loads(message["text"]))
        self.arrived.set()

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[dict]:
        async with asyncio.timeout(timeout):
            while len(self.sent) < n:
                self.arrived.clear()
                await self.arrived.wait()
        return self.sent


async def test_hub_reads_a_gap_back_from_the_outbox(live_server_factory, make_tenant, engine):
    tenant = await make_tenant()
    with live_server_factory(live_relay_in_process=False) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            inv = await inventory(c, tenant.slug, floors=1, per_floor=3)
            for unit in inv["units"]:
                await reserve(c, tenant.slug, unit["id"])
    await Relay(engine, LocalBus()).number()
    tid = uuid.UUID(tenant.id)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(OUTBOX).where(OUTBOX.c.tenant_id == tid).order_by(OUTBOX.c.seq)
            )
        ).all()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert [str(r.entity_id) for r in rows] == [u["id"] for u in inv["units"]]
    events = [json.loads(json.dumps(wire(r), default=str)) for r in rows]

    hub = Hub(build_schema(settings_for_tests())._schema, engine, to_object=to_object)
    send = _Collecting()
    conn = Connection(send, tenant.id, principal=None)
    hub.connections.add(conn)
    variables = {"buildingId": inv["building"]["id"]}
    shape = hub.shape(("gap", None, "{}"), parse(UNIT_CHANGES), None, variables)
    hub.register(
        Feed(
            conn,
            "1",
            shape,
            {(tenant.id, "building", inv["building"]["id"])},
            lambda ev: ev["kind"].startswith("unit."),
        )
    )
    hub.start()
    try:
        hub.on_bus([events[0]])
        hub.on_bus([events[2]])  # seq 2 never came over the bus
        got = await send.wait_for(3)
        hub.on_bus([events[1], events[2]])  # late or repeated: dropped
        await asyncio.sleep(0.2)
    finally:
        await hub.stop()
    assert [m["id"] for m in got] == ["1", "1", "1"] and len(got) == 3
    changes = [m["payload"]["data"]["unitChanges"] for m in got]
    assert [c["seq"] for c in changes] == [1, 2, 3]
    assert [c["unitId"] for c in changes] == [u["id"] for u in inv["units"]]
    assert all(c["status"] == "RESERVED" for c in changes)


# ---------------------------------------------------------------- RedisBus


@asynccontextmanager
async def two_buses(url: str):
    """Two RedisBus instances on a channel of this test's own."""
    channel = f"anju:test:{uuid.uuid4().hex}"
    a, b = RedisBus(url, channel), RedisBus(url, channel)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


class _Received:
    def __init__(self, fail_on: set[int] = frozenset()) -> None:
        self.seqs: list[int] = []
        self.fail_on = fail_on
        self.arrived = asyncio.Event()

    def __call__(self, events: list[dict]) -> None:
        self.seqs += [e["seq"] for e in events]
        self.arrived.set()
        if any(e["seq"] in self.fail_on for e in events):
            raise RuntimeError("handler failed")

    async def until(self, cond, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not cond():
                self.arrived.clear()
                await self.arrived.wait()


async def test_redis_bus_carries_messages_between_instances_in_order(redis_url):
    async with two_buses(redis_url) as (a, b):
        got = _Received()
        await b.start(got)
        for seq in range(1, 51):
            await a.publish([{"tenant": "t", "seq": seq}])
        await b.publish([{"tenant": "t", "seq": 51}, {"tenant": "t", "seq": 52}])
        await got.until(lambda: len(got.seqs) >= 52)
        assert got.seqs == list(range(1, 53))


async def test_redis_bus_drops_a_message_that_is_not_json(redis_url):
    async with two_buses(redis_url) as (a, b):
        got = _Received()
        await b.start(got)
        await a._redis.publish(a.channel, b"not json")
        await a.publish([{"seq": 1}])
        await got.until(lambda: got.seqs)
        assert got.seqs == [1]


async def test_redis_bus_message_after_a_handler_error_is_not_lost(redis_url):
    """A handler that raises on one message does not cost the subscription: the next
    message is delivered (a handler's fault is logged, not taken for a lost connection)."""
    async with two_buses(redis_url) as (a, b):
        got = _Received(fail_on={1})
        await b.start(got)
        await a.publish([{"seq": 1}])
        await a.publish([{"seq": 2}])
        await got.until(lambda: 2 in got.seqs, timeout=1.0)
        assert got.seqs == [1, 2]


async def test_redis_bus_subscribes_again_and_resumes_after_redis_restarts(tmp_path):
    """A Redis restart costs the subscription; it is made again by itself, the hub is told
    when it was lost (to read back what was published meanwhile), and messages flow again."""
    redis = RedisServer(redis_server_or_skip(), tmp_path).start()
    resumed: list[float] = []
    got = _Received()
    try:
        async with two_buses(redis.url) as (a, b):
            await b.start(got, resumed.append)
            await a.publish([{"seq": 1}])
            await got.until(lambda: got.seqs == [1])
            before = time.time()
            redis.stop()
            with pytest.raises(Exception):  # noqa: B017 - whatever redis-py raises for it
                await a.publish([{"seq": 2}])  # nobody to publish to: the relay keeps it
            redis.start()
            async with asyncio.timeout(30):
                while not resumed:
                    await asyncio.sleep(0.05)
            assert len(resumed) == 1 and resumed[0] >= before
            await a.publish([{"seq": 3}])
            await got.until(lambda: 3 in got.seqs)
            assert got.seqs == [1, 3]
    finally:
        redis.stop()


async def test_hub_catches_up_after_the_bus_resumes(live_server_factory, make_tenant, engine):
    """After a lost subscription the hub reads back, without any later event to reveal the gap,
    what was numbered meanwhile: after its last sequence for a tenant it knows, and what was
    written since shortly before the loss for a tenant it has subscribers of but no event yet."""
    known, fresh = await make_tenant(), await make_tenant()
    invs = {}
    with live_server_factory(live_relay_in_process=False) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            lost_at = time.time()
            for tenant in (known, fresh):
                invs[tenant.id] = inv = await inventory(c, tenant.slug, floors=1, per_floor=3)
                for unit in inv["units"]:
                    await reserve(c, tenant.slug, unit["id"])
    await Relay(engine, LocalBus()).number()

    hub = Hub(build_schema(settings_for_tests())._schema, engine, to_object=to_object)
    sends = {}
    for tenant in (known, fresh):
        sends[tenant.id] = send = _Collecting()
        conn = Connection(send, tenant.id, principal=None)
        hub.connections.add(conn)
        building = invs[tenant.id]["building"]["id"]
        shape = hub.shape(
            ("resume", tenant.id, "{}"), parse(UNIT_CHANGES), None, {"buildingId": building}
        )
        hub.register(
            Feed(
                conn,
                "1",
                shape,
                {(tenant.id, "building", building)},
                lambda ev: ev["kind"].startswith("unit."),
            )
        )
    hub.last_seq[known.id] = 1  # seq 1 came over the bus before the loss
    hub.start()
    try:
        hub.on_resume(lost_at)
        got_known = await sends[known.id].wait_for(2)
        got_fresh = await sends[fresh.id].wait_for(3)
        await asyncio.sleep(0.2)  # nothing more
    finally:
        await hub.stop()
    changes = {
        t: [m["payload"]["data"]["unitChanges"] for m in got]
        for t, got in ((known.id, got_known), (fresh.id, got_fresh))
    }
    assert [c["seq"] for c in changes[known.id]] == [2, 3], changes
    assert [c["seq"] for c in changes[fresh.id]] == [1, 2, 3], changes
    for tenant_id, skip in ((known.id, 1), (fresh.id, 0)):
        units = [u["id"] for u in invs[tenant_id]["units"]][skip:]
        assert [c["unitId"] for c in changes[tenant_id]] == units
    assert hub.last_seq == {known.id: 3, fresh.id: 3}
