"""Document limits and production mode: each attack is refused quickly, with a typed error,
and the server keeps serving; production shows no schema to strangers."""

from __future__ import annotations

import time

import httpx
import pytest

from api.graphql.limits import LIST_FACTOR, MAX_PAGE
from tests.conftest import gql, production_overrides


def codes(res: dict) -> list[str]:
    return [e["extensions"]["code"] for e in res.get("errors", [])]


async def refused(client, query: str, tenant: str | None = None, variables=None) -> dict:
    """The document is refused before anything runs: BAD_USER_INPUT, no data, fast."""
    t0 = time.perf_counter()
    res = await gql(client, query, variables, tenant=tenant)
    elapsed = time.perf_counter() - t0
    assert res.get("data") is None and codes(res) and set(codes(res)) == {"BAD_USER_INPUT"}, res
    assert elapsed < 2.0, elapsed  # generous: the point is that nothing was executed
    return res


async def still_serving(client) -> None:
    assert (await gql(client, "{ apiVersion }"))["data"] == {"apiVersion": "0.1.0"}


async def test_depth_50_is_refused(client, make_tenant):
    tenant = await make_tenant()
    inner = "name"
    for _ in range(25):
        inner = f"buildings {{ project {{ {inner} }} }}"
    res = await refused(client, f"{{ projects {{ {inner} }} }}", tenant.slug)
    assert "exceeds maximum operation depth" in res["errors"][0]["message"]
    await still_serving(client)


async def test_circular_fragments_are_refused(client, make_tenant):
    tenant = await make_tenant()
    query = """
    query { projects { ...A } }
    fragment A on Project { name buildings { project { ...B } } }
    fragment B on Project { buildings { project { ...A } } }
    """
    res = await refused(client, query, tenant.slug)
    assert any("Cannot spread fragment" in e["message"] for e in res["errors"])
    await still_serving(client)


async def test_1000_aliases_are_refused(client, make_tenant):
    tenant = await make_tenant()
    query = "{ " + " ".join(f"a{i}: apiVersion" for i in range(1000)) + " }"
    res = await refused(client, query, tenant.slug)
    assert "aliases" in res["errors"][0]["message"]


async def test_sms_code_brute_force_through_aliases_is_refused(client, make_tenant):
    tenant = await make_tenant()
    attempts = " ".join(
        f'c{i}: signInWithSmsCode(phone: "13812345678", code: "{i:06d}") {{ __typename }}'
        for i in range(500)
    )
    await refused(client, "mutation { " + attempts + " }", tenant.slug)


async def test_10000_tokens_are_refused(client):
    query = "{ " + "a " * 10_000 + "}"  # 20,000 characters: under the length limit
    res = await refused(client, query)
    assert "tokens" in res["errors"][0]["message"]


async def test_a_list_query_over_the_cost_limit_is_refused(client, make_tenant):
    tenant = await make_tenant()
    # 100 projects x 10 buildings x 1 project x 10 buildings: far over 5,000
    query = "{ projects(first: 100) { buildings { project { buildings { name } } } } }"
    res = await refused(client, query, tenant.slug)
    ext = res["errors"][0]["extensions"]
    assert ext["maxCost"] == 5000 and ext["cost"] > 5000
    # a page size given by a variable counts as the largest page
    query = (
        "query($n: Int!) { projects(first: $n) { buildings { project { buildings { name } } } } }"
    )
    res = await refused(client, query, tenant.slug, {"n": 1})
    # projects: 1 + 100 x buildings (1 + 10 x project (1 + buildings (1 + 10 x name)))
    per_project = 1 + LIST_FACTOR * (1 + (1 + LIST_FACTOR * 1))
    assert res["errors"][0]["extensions"]["cost"] == 1 + MAX_PAGE * per_project
    # the same shape with a small literal page is fine
    ok = await gql(
        client, "{ projects(first: 5) { buildings { project { name } } } }", tenant=tenant.slug
    )
    assert "errors" not in ok, ok


async def test_a_search_page_is_well_within_the_cost_limit(client, make_tenant):
    tenant = await make_tenant()
    query = """{ units(first: 100) { totalCount edges { cursor node { id number listPrice
      { minorUnits } building { name project { name } } unitType { name } firstPhoto { url } } }
      pageInfo { hasNextPage } } }"""
    res = await gql(client, query, tenant=tenant.slug)
    assert "errors" not in res, res


async def test_batches_are_refused(client):
    resp = await client.post("/graphql", json=[{"query": "{ apiVersion }"}] * 2)
    assert resp.status_code == 400


@pytest.fixture(scope="module")
def production(live_server_factory):
    with live_server_factory(**production_overrides()) as server:
        yield server


async def test_production_hides_the_schema(production):
    """Strangers learn nothing: every full document is refused before it is read (the
    production replays are in tests/api/test_production_mode.py)."""
    async with httpx.AsyncClient(base_url=production.url, timeout=30) as client:
        for query in ("{ __schema { types { name } } }", "{ apiVersio }", "{ apiVersion }"):
            res = await gql(client, query)
            assert res["data"] is None and codes(res) == ["FORBIDDEN"], res
            assert "apiVersio" not in str(res) and "traceback" not in str(res).lower()
        resp = await client.get("/graphql", headers={"accept": "text/html"})
        assert resp.status_code != 200 or "graphiql" not in resp.text.lower()
