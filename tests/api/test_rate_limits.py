"""Rate limits: per caller, per tenant and per anonymous client, typed RATE_LIMITED errors
with Retry-After; in memory by default, and shared by two gateways through Redis."""

from __future__ import annotations

import uuid

import httpx
import pytest

from api.ratelimit import MemoryLimiter, RedisLimiter
from tests.api.processes import RedisServer, redis_server_or_skip
from tests.conftest import auth_headers, gql
from tests.conftest import test_settings as settings_for_tests

ME = "{ me { roles } }"


def limited(res: dict) -> int:
    """The retry-after of a RATE_LIMITED refusal (fails otherwise)."""
    assert res.get("data") is None, res
    [error] = res["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED", res
    return error["extensions"]["retryAfter"]


async def test_per_caller_and_per_tenant_limits(live_server_factory, make_tenant, member):
    tenant = await make_tenant()
    _, agent = await member(tenant, ["agent"])
    with live_server_factory(rate_user_per_minute=3, rate_tenant_per_minute=5) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _ in range(3):
                assert "errors" not in await gql(client, ME, tenant=tenant.slug)
            resp = await client.post(
                "/graphql", json={"query": ME}, headers=auth_headers(tenant.slug)
            )
            retry = limited(resp.json())
            assert 1 <= retry <= 60 and resp.headers["retry-after"] == str(retry)
            # another caller of the same tenant still has room until the tenant's 5 are used
            # (the admin's refused 4th call was stopped before it counted for the tenant)
            for _ in range(2):
                assert "errors" not in await gql(client, ME, tenant=tenant.slug, token=agent)
            message = (await gql(client, ME, tenant=tenant.slug, token=agent))["errors"][0]
            assert message["extensions"]["code"] == "RATE_LIMITED"
            assert "this tenant" in message["message"]
            other = await make_tenant()  # other tenants are not affected
            assert "errors" not in await gql(client, ME, tenant=other.slug)


async def test_anonymous_callers_are_limited_by_address(live_server_factory):
    with live_server_factory(rate_anonymous_per_minute=2) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _ in range(2):
                assert "errors" not in await gql(client, "{ apiVersion }")
            limited(await gql(client, "{ apiVersion }"))


async def test_memory_limiter_counts_per_key_and_window():
    limiter = MemoryLimiter()
    assert [(await limiter.hit("a", 2)).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.hit("b", 2)).allowed


@pytest.fixture
def redis_url():
    url = settings_for_tests().test_redis_url
    if not url:
        pytest.skip("no Redis: set ANJU_TEST_REDIS_URL (CI does)")
    return url


async def test_two_gateways_share_the_counts_through_redis(
    live_server_factory, make_tenant, redis_url
):
    tenant = await make_tenant()
    limits = {"redis_url": redis_url, "rate_user_per_minute": 3}
    with live_server_factory(**limits) as a, live_server_factory(**limits) as b:
        async with httpx.AsyncClient(base_url=a.url) as ca, httpx.AsyncClient(base_url=b.url) as cb:
            assert "errors" not in await gql(ca, ME, tenant=tenant.slug)
            assert "errors" not in await gql(cb, ME, tenant=tenant.slug)
            assert "errors" not in await gql(ca, ME, tenant=tenant.slug)
            limited(await gql(cb, ME, tenant=tenant.slug))  # the 4th, on the other gateway


async def test_redis_limiter_counts_atomically(redis_url):
    import asyncio

    limiter = RedisLimiter(redis_url)
    key = f"test-{uuid.uuid4()}"
    try:
        verdicts = await asyncio.gather(*(limiter.hit(key, 10) for _ in range(25)))
        assert sum(v.allowed for v in verdicts) == 10
    finally:
        await limiter.close()


async def test_redis_limiter_counts_in_process_while_redis_is_down(tmp_path):
    """Redis out of reach: calls are counted in this process (limits still hold per process),
    Redis is not asked again during the cooldown, and once it is back the counts are its own
    again."""
    redis = RedisServer(redis_server_or_skip(), tmp_path).start()
    limiter = RedisLimiter(redis.url, cooldown=3600)
    try:
        assert (await limiter.hit("k", 3)).allowed  # counted in Redis
        assert (limiter.attempts, limiter.uncounted) == (1, 0)
        redis.stop()
        verdicts = [(await limiter.hit("k", 3)).allowed for _ in range(5)]
        assert verdicts == [True, True, True, False, False]  # the process's own count
        assert (limiter.attempts, limiter.uncounted) == (2, 5)  # one attempt, then none

        redis.start()
        limiter._skip_until = 0.0  # the cooldown is over
        assert (await limiter.hit("k", 3)).allowed
        assert (limiter.attempts, limiter.uncounted) == (3, 5)
        keys = await limiter.redis.keys("anju:rl:k:*")
        # the new server kept nothing of the old one: this call is the first it counted
        assert [int(await limiter.redis.get(k)) for k in keys] == [1]
    finally:
        await limiter.close()
        redis.stop()
