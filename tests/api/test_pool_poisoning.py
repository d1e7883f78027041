"""Pool poisoning: one pooled connection serves every tenant in turn. Thousands of interleaved
concurrent requests (queries and mutations, random tenant order) must each see only the tenant
they name; a connection that kept another tenant's state (search_path, cached plans, session
identity map, DataLoader cache) would leak rows here."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from tests.api.helpers import RawHTTPPool
from tests.conftest import auth_headers

TENANTS = 20
# ~5 ms of server CPU each (strawberry + SQLAlchemy, sharing this process with the client).
REQUESTS = 2000
CONCURRENCY = 50

LIST = "{ projects { id name buildings { name } } }"
BY_ID = "query($id: ID!) { project(id: $id) { id name } }"
BUILDING_BY_ID = "query($id: ID!) { building(id: $id) { name project { name } } }"
ADD_PROJECT = """
mutation($name: String!) {
  createProject(input: {name: $name}) { ... on ProjectPayload { project { id name } } }
}
"""
ADD_BUILDING = """
mutation($input: CreateBuildingInput!) {
  createBuilding(input: $input) {
    __typename
    ... on BuildingPayload { building { id name project { id name } } }
    ... on UserError { code message }
  }
}
"""


def project_name(slug: str) -> str:
    return f"project of {slug}"


def building_input(project_id: str, name: str) -> dict:
    return {"input": {"projectId": project_id, "name": name, "floors": 3}}


POOLS = {
    # one connection for every tenant
    "one_connection": {"db_pool_size": 1, "db_lane_size": 0},
    # tenant-affine routing (tenants/routing.py): 3 lanes of one connection, each tenant may
    # borrow its next lane, so every connection still serves many tenants in turn
    "lanes": {"db_pool_size": 3, "db_lane_size": 1, "db_tenant_max_connections": 2},
}


@pytest.mark.parametrize("pool", sorted(POOLS))
async def test_pooled_connections_never_leak_rows(pool, live_server_factory, make_tenant):
    tenants = await asyncio.gather(*(make_tenant() for _ in range(TENANTS)))
    slugs = [t.slug for t in tenants]
    rng = random.Random(20240601)

    # Few connections, so each serves many tenants. Tenant resolution is cached as in
    # production, so the pool serves tenant sessions only.
    with live_server_factory(db_max_overflow=0, tenant_cache_ttl=60, **POOLS[pool]) as server:
        async with RawHTTPPool(server.port, CONCURRENCY) as http:

            async def post(slug: str, query: str, variables: dict | None = None) -> dict:
                body = {"query": query, "variables": variables or {}}
                status, res = await http.post_json("/graphql", body, auth_headers(slug))
                assert status == 200, res
                return res

            async def setup(slug: str) -> tuple[str, str]:
                res = await post(slug, ADD_PROJECT, {"name": project_name(slug)})
                pid = res["data"]["createProject"]["project"]["id"]
                res = await post(slug, ADD_BUILDING, building_input(pid, f"{slug}/b0"))
                payload = res["data"]["createBuilding"]
                assert payload["__typename"] == "BuildingPayload", (slug, payload)
                return pid, payload["building"]["id"]

            ids = dict(zip(slugs, await asyncio.gather(*map(setup, slugs)), strict=True))
            project_id = {s: ids[s][0] for s in slugs}
            building_id = {s: ids[s][1] for s in slugs}

            kinds = ["list", "own", "foreign", "foreign_building", "mutate"]
            plan = []
            for i in range(REQUESTS):
                slug = rng.choice(slugs)
                other = rng.choice([s for s in slugs if s != slug])
                plan.append((i, rng.choices(kinds, [3, 3, 3, 2, 1])[0], slug, other))
            assert {p[1] for p in plan} == set(kinds)

            sem = asyncio.Semaphore(CONCURRENCY)
            failures: list[str] = []
            created: Counter[str] = Counter()

            async def one(i: int, kind: str, slug: str, other: str) -> None:
                if kind == "list":
                    query, variables = LIST, None
                elif kind == "own":
                    query, variables = BY_ID, {"id": project_id[slug]}
                elif kind == "foreign":
                    query, variables = BY_ID, {"id": project_id[other]}
                elif kind == "foreign_building":
                    query, variables = BUILDING_BY_ID, {"id": building_id[other]}
                else:
                    name = f"{slug}/b{i + 1}"
                    query, variables = ADD_BUILDING, building_input(project_id[slug], name)
                async with sem:
                    res = await post(slug, query, variables)
                if res.get("errors") or not res.get("data"):
                    failures.append(f"{i} {kind} {slug}: {res}")
                    return
                data, mine = res["data"], project_name(slug)
                if kind == "list":
                    ps = data["projects"]
                    if [(p["id"], p["name"]) for p in ps] != [(project_id[slug], mine)]:
                        failures.append(f"{i} list {slug}: saw {[p['name'] for p in ps]}")
                    elif any(not b["name"].startswith(slug + "/") for b in ps[0]["buildings"]):
                        failures.append(f"{i} list {slug}: saw {ps[0]['buildings']}")
                elif kind == "own":
                    if data["project"] != {"id": project_id[slug], "name": mine}:
                        failures.append(f"{i} own {slug}: saw {data['project']}")
                elif kind in ("foreign", "foreign_building"):
                    got = data["project" if kind == "foreign" else "building"]
                    if got is not None:
                        failures.append(f"{i} {kind} {slug}: saw {other}'s row {got}")
                else:
                    payload = data["createBuilding"]
                    expected = {
                        "id": payload.get("building", {}).get("id"),
                        "name": f"{slug}/b{i + 1}",
                        "project": {"id": project_id[slug], "name": mine},
                    }
                    if payload.get("building") != expected:
                        failures.append(f"{i} mutate {slug}: got {payload}")
                    else:
                        created[slug] += 1

            await asyncio.gather(*(one(*p) for p in plan))
            assert failures == [], f"{len(failures)} bad responses, e.g. {failures[:5]}"
            assert sum(created.values()) == sum(1 for p in plan if p[1] == "mutate")

            # Every committed building is in its own tenant and nowhere else.
            for s in slugs:
                [p] = (await post(s, LIST))["data"]["projects"]
                names = {b["name"] for b in p["buildings"]}
                assert len(names) == created[s] + 1
                assert all(n.startswith(s + "/") for n in names)
