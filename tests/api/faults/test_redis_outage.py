"""Redis stopped under a running gateway (issue #16, item 5).

The test starts a redis-server of its own (tests/api/processes.py) and a gateway process that
uses it for rate limits and the live bus. A WebSocket subscriber watches a building; Redis is
stopped: operations go on (the rate limiter counts in the process); Redis is started again:
the events of the changes made meanwhile reach the subscriber by themselves (no later change
needed to reveal them), then live events flow again, each exactly once, in sequence order."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tenants.provisioning import create_tenant
from tests.api.live.helpers import UNIT_CHANGES, live
from tests.api.processes import (
    Gateway,
    RedisServer,
    gateway_env,
    own_database,
    redis_server_or_skip,
)
from tests.api.unit.helpers import inventory, reserve
from tests.conftest import TOKENS, add_member, gql, unique_slug

ME = "{ me { roles } }"


@pytest.fixture
def own_redis(scratch):
    server = RedisServer(redis_server_or_skip(), scratch).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def faults_db(db_url, settings):
    async with own_database(db_url, settings, "faults") as db:
        yield db


def change_of(msg: dict) -> tuple[int, str, str]:
    assert msg["type"] == "next" and "errors" not in msg["payload"], msg
    change = msg["payload"]["data"]["unitChanges"]
    return change["seq"], change["unitId"], change["status"]


async def tenant_and_gateway(own_redis, faults_db, scratch, settings, kit) -> tuple[str, Gateway]:
    """A tenant with an admin, and a gateway (not started) using the test's own Redis."""
    url, engine = faults_db
    tenant = (await create_tenant(engine, unique_slug("rd"), "Redis Down Realty")).tenant
    _, TOKENS[tenant.slug] = await add_member(engine, kit, tenant, ["admin"], name="Admin")
    env = gateway_env(
        settings,
        url,
        ANJU_REDIS_URL=own_redis.url,
        ANJU_RATE_USER_PER_MINUTE="10000",
        ANJU_RATE_TENANT_PER_MINUTE="10000",
    )
    return tenant.slug, Gateway("gw", env, scratch)


async def test_redis_restart_under_a_running_gateway(own_redis, faults_db, scratch, settings, kit):
    slug, gw = await tenant_and_gateway(own_redis, faults_db, scratch, settings, kit)
    await asyncio.to_thread(gw.start)
    try:
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as c:
            inv = await inventory(c, slug, floors=1, per_floor=4)
            units = [u["id"] for u in inv["units"]]
            async with live(gw, slug) as ws:
                await ws.subscribe(UNIT_CHANGES, {"buildingId": inv["building"]["id"]})
                await ws.nothing(0.3)  # registered
                await reserve(c, slug, units[0])
                first = change_of(await ws.next())
                assert first[1:] == (units[0], "RESERVED")

                await asyncio.to_thread(own_redis.stop)
                # Operations go on: rate limits are counted in the process meanwhile.
                for unit in units[1:3]:
                    await reserve(c, slug, unit)
                assert "errors" not in await gql(c, ME, tenant=slug)

                await asyncio.to_thread(own_redis.start)
                # What was changed while Redis was down arrives by itself, in order, once.
                during = [change_of(await ws.next(30)) for _ in range(2)]
                await reserve(c, slug, units[3])  # and live events flow again
                after = change_of(await ws.next(30))
                await ws.nothing(1.0)  # no second copy of anything

        got = [first, *during, after]
        assert [seq for seq, _, _ in got] == list(range(first[0], first[0] + 4)), got
        assert [(u, s) for _, u, s in got] == [(u, "RESERVED") for u in units], got
    finally:
        await asyncio.to_thread(gw.stop)
    log = gw.log_tail(1_000_000)
    assert "Exception in ASGI application" not in log and "unexpected error" not in log, log
    assert "counting in this process" in log  # the limiter said why it did not use Redis


async def test_a_gateway_starts_while_redis_is_down(own_redis, faults_db, scratch, settings, kit):
    """Redis out of reach when the gateway starts costs nothing but sharing: it starts and
    serves; once Redis is up, its subscriber gets what was changed meanwhile, then live events,
    each once."""
    slug, gw = await tenant_and_gateway(own_redis, faults_db, scratch, settings, kit)
    await asyncio.to_thread(own_redis.stop)
    await asyncio.to_thread(gw.start)  # crashed in the startup hook before the fix
    try:
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as c:
            assert "errors" not in await gql(c, ME, tenant=slug)
            inv = await inventory(c, slug, floors=1, per_floor=2)
            units = [u["id"] for u in inv["units"]]
            async with live(gw, slug) as ws:
                await ws.subscribe(UNIT_CHANGES, {"buildingId": inv["building"]["id"]})
                await ws.nothing(0.3)  # registered
                await reserve(c, slug, units[0])  # while Redis is down

                await asyncio.to_thread(own_redis.start)
                during = change_of(await ws.next(30))  # arrives by itself
                await reserve(c, slug, units[1])
                after = change_of(await ws.next(30))
                await ws.nothing(1.0)  # no second copy of anything

        assert [during[1:], after[1:]] == [(units[0], "RESERVED"), (units[1], "RESERVED")]
        assert after[0] == during[0] + 1
    finally:
        await asyncio.to_thread(gw.stop)
    log = gw.log_tail(1_000_000)
    assert "Exception in ASGI application" not in log and "unexpected error" not in log, log
    assert "no redis subscription at start" in log, log
