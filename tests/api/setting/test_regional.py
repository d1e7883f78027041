"""A tenant's time zone, locale and currency: set at sign-up, read by every member, changed by
an admin (tenant.manage), and followed by the agent's day and by listing expiry."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.pool import NullPool

from api.db import make_engine
from tenants.models import Tenant
from tests.api.client.helpers import my_day, new_client, schedule
from tests.api.identity.helpers import SIGN_UP
from tests.api.listing.helpers import created, minimal
from tests.conftest import gql, unique_slug

REGIONAL = "{ regionalSettings { timeZone locale currency } }"
UPDATE = """
mutation($input: RegionalSettingsInput!) {
  updateRegionalSettings(input: $input) {
    __typename
    ... on RegionalSettings { timeZone locale currency }
    ... on UserError { code message field }
  }
}
"""
SHANGHAI = ZoneInfo("Asia/Shanghai")


def sign_up_input(slug: str, **regional) -> dict:
    return {
        "tenantSlug": slug,
        "tenantName": "Harbour Homes",
        "name": "Li Wei",
        "email": f"{slug}@example.com",
        "password": "correct horse battery 9",
        **regional,
    }


async def registry_row(engine, slug: str) -> tuple | None:
    async with engine.connect() as conn:
        stmt = select(Tenant.time_zone, Tenant.locale, Tenant.currency).where(Tenant.slug == slug)
        return (await conn.execute(stmt)).first()


async def test_sign_up_sets_them_and_every_member_reads_them(client, engine):
    slug = unique_slug("region")
    res = await gql(
        client,
        SIGN_UP,
        {"input": sign_up_input(slug, timeZone="Pacific/Kiritimati", locale="en", currency="usd")},
    )
    payload = res["data"]["signUp"]
    assert payload["__typename"] == "SignUpPayload", payload
    token = payload["tokens"]["accessToken"]
    got = await gql(client, REGIONAL, tenant=slug, token=token)
    assert got["data"]["regionalSettings"] == {
        "timeZone": "Pacific/Kiritimati",
        "locale": "en",
        "currency": "USD",
    }
    assert tuple(await registry_row(engine, slug)) == ("Pacific/Kiritimati", "en", "USD")


@pytest.mark.parametrize(
    ("regional", "field"),
    [
        ({"timeZone": "Mars/Olympus_Mons"}, "timeZone"),
        ({"timeZone": "localtime"}, "timeZone"),  # the server's own zone file
        ({"timeZone": "../../etc/passwd"}, "timeZone"),
        ({"locale": "fr"}, "locale"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "CN"}, "currency"),
    ],
)
async def test_sign_up_refuses_bad_ones_and_creates_nothing(client, engine, regional, field):
    slug = unique_slug("badregion")
    res = await gql(client, SIGN_UP, {"input": sign_up_input(slug, **regional)})
    payload = res["data"]["signUp"]
    assert (payload["__typename"], payload["code"], payload["field"]) == (
        "ValidationError",
        "BAD_USER_INPUT",
        field,
    )
    assert await registry_row(engine, slug) is None


async def test_defaults_and_an_admin_changes_them(client, engine, make_tenant, member):
    tenant = await make_tenant()
    _, agent = await member(tenant, ["agent"])
    got = await gql(client, REGIONAL, tenant=tenant.slug, token=agent)
    assert got["data"]["regionalSettings"] == {
        "timeZone": "Asia/Shanghai",
        "locale": "zh-CN",
        "currency": "CNY",
    }

    res = await gql(
        client, UPDATE, {"input": {"timeZone": "Europe/Paris"}}, tenant=tenant.slug, token=agent
    )
    assert res["data"]["updateRegionalSettings"]["__typename"] == "PermissionDeniedError"

    res = await gql(
        client,
        UPDATE,
        {"input": {"timeZone": "Nowhere/Else", "currency": "EUR"}},
        tenant=tenant.slug,
    )
    assert res["data"]["updateRegionalSettings"]["field"] == "timeZone"
    assert tuple(await registry_row(engine, tenant.slug)) == ("Asia/Shanghai", "zh-CN", "CNY")

    res = await gql(
        client,
        UPDATE,
        {"input": {"timeZone": "Europe/Paris", "currency": "eur"}},
        tenant=tenant.slug,
    )
    assert res["data"]["updateRegionalSettings"] == {
        "__typename": "RegionalSettings",
        "timeZone": "Europe/Paris",
        "locale": "zh-CN",
        "currency": "EUR",
    }
    got = await gql(client, REGIONAL, tenant=tenant.slug, token=agent)  # not a cached copy
    assert got["data"]["regionalSettings"]["timeZone"] == "Europe/Paris"
    assert tuple(await registry_row(engine, tenant.slug)) == ("Europe/Paris", "zh-CN", "EUR")


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Kiritimati"])
async def test_my_day_is_the_tenants_day(client, make_tenant, member, zone):
    """A follow-up due between the end of Shanghai's day and the end of the tenant's falls on
    the tenant's today (behind Shanghai) or tomorrow (ahead of it)."""
    tenant = await make_tenant(time_zone=zone)
    _, agent = await member(tenant, ["agent"])
    cid = await new_client(client, tenant.slug, agent, phone="13912345678")
    now = datetime.now(UTC)
    ends = tenant.midnight(tenant.today(now) + timedelta(days=1))
    shanghai_ends = datetime.combine(
        now.astimezone(SHANGHAI).date() + timedelta(days=1), datetime.min.time(), SHANGHAI
    )
    due = min(ends, shanghai_ends) + abs(ends - shanghai_ends) / 2
    await schedule(client, tenant.slug, agent, cid, due)
    day = await my_day(client, tenant.slug, agent)
    today = [f["clientId"] for f in day["today"]]
    if tenant.today(datetime.now(UTC)) == tenant.today(now):  # no midnight passed meanwhile
        assert today == ([cid] if due < ends else []), (zone, due, ends)
    assert day["overdue"] == []


async def test_a_listing_expires_at_the_tenants_midnight(client, make_tenant):
    tenant = await make_tenant(time_zone="Pacific/Kiritimati")
    before = datetime.now(UTC)
    got = await created(client, tenant.slug, **minimal(expiresInDays=30))
    after = datetime.now(UTC)
    expires = datetime.fromisoformat(got["expiresAt"])
    local = expires.astimezone(tenant.zone)
    assert (local.hour, local.minute, local.second) == (0, 0, 0), local
    assert local.date() in {tenant.today(at) + timedelta(days=31) for at in (before, after)}


async def test_the_cached_tenant_is_dropped_after_the_change_is_committed(
    client, live_server, db_url, settings, make_tenant, monkeypatch
):
    """Dropped before the commit, a request reading the tenant in between would cache the old
    settings again: when the gateway drops its copy, the new ones are already committed."""
    tenant = await make_tenant()
    cache = live_server.server.config.app.state.tenant_cache
    drop, seen = cache.invalidate, []

    async def committed(slug: str) -> tuple | None:  # what any other connection reads now
        engine = make_engine(db_url, settings, poolclass=NullPool)
        try:
            return tuple(await registry_row(engine, slug))
        finally:
            await engine.dispose()

    def watching(slug: str | None = None) -> None:  # runs in the gateway's thread, at the drop
        if slug == tenant.slug:
            with ThreadPoolExecutor(1) as pool:
                seen.append(pool.submit(asyncio.run, committed(slug)).result())
        drop(slug)

    monkeypatch.setattr(cache, "invalidate", watching)
    res = await gql(client, UPDATE, {"input": {"timeZone": "Europe/Paris"}}, tenant=tenant.slug)
    assert res["data"]["updateRegionalSettings"]["timeZone"] == "Europe/Paris", res
    assert seen == [("Europe/Paris", "zh-CN", "CNY")]
