"""Tenant isolation: identical GraphQL queries under different X-Tenant values only ever see
the rows of the tenant they name."""

from __future__ import annotations

from tests.api.helpers import create_building, create_project
from tests.conftest import gql

PROJECTS = "{ projects { id name buildings { id name project { id name } } } }"
PROJECT = """
query($id: ID!) {
  project(id: $id) { id name buildings { id name floors project { id } } }
}
"""
BUILDING = """
query($id: ID!) {
  building(id: $id) { id name project { id name buildings { id name } } }
}
"""


async def _populate(client, slug: str, tag: str) -> dict:
    """Two projects with two buildings each, all named after ``tag``."""
    out: dict = {"projects": {}, "buildings": {}}
    for p in ("north", "south"):
        project = await create_project(client, slug, f"{tag} {p}", city=tag)
        out["projects"][project["id"]] = project["name"]
        for b in ("A", "B"):
            building = await create_building(client, slug, project["id"], f"{tag} {p} {b}")
            assert building["project"] == {"id": project["id"], "name": project["name"]}
            out["buildings"][building["id"]] = (building["name"], project["id"])
    return out


async def test_identical_queries_see_only_own_tenant(client, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    data = {
        a.slug: await _populate(client, a.slug, "Alpha"),
        b.slug: await _populate(client, b.slug, "Beta"),
    }
    # Ids are application-made and unique across tenants.
    assert not set(data[a.slug]["projects"]) & set(data[b.slug]["projects"])

    for slug, own in data.items():
        res = await gql(client, PROJECTS, tenant=slug)
        assert "errors" not in res, res
        projects = res["data"]["projects"]
        assert {p["id"]: p["name"] for p in projects} == own["projects"]
        for p in projects:
            got = {bl["id"]: (bl["name"], bl["project"]["id"]) for bl in p["buildings"]}
            assert got == {k: v for k, v in own["buildings"].items() if v[1] == p["id"]}
            assert all(bl["project"]["name"] == p["name"] for bl in p["buildings"])

        for pid, name in own["projects"].items():
            res = await gql(client, PROJECT, {"id": pid}, tenant=slug)
            project = res["data"]["project"]
            assert project["id"] == pid and project["name"] == name
            assert {bl["id"] for bl in project["buildings"]} == {
                k for k, v in own["buildings"].items() if v[1] == pid
            }
            assert all(bl["project"]["id"] == pid for bl in project["buildings"])

        for bid, (name, pid) in own["buildings"].items():
            res = await gql(client, BUILDING, {"id": bid}, tenant=slug)
            building = res["data"]["building"]
            assert building["name"] == name and building["project"]["id"] == pid
            assert building["project"]["name"] == own["projects"][pid]
            assert bid in {bl["id"] for bl in building["project"]["buildings"]}


async def test_other_tenants_ids_resolve_to_null(client, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    pa = await create_project(client, a.slug, "Alpha Park")
    pb = await create_project(client, b.slug, "Beta Park")
    ba = await create_building(client, a.slug, pa["id"], "Tower A")
    bb = await create_building(client, b.slug, pb["id"], "Tower B")

    # Each id is found under its own tenant ...
    assert (await gql(client, PROJECT, {"id": pb["id"]}, tenant=b.slug))["data"]["project"]
    assert (await gql(client, BUILDING, {"id": ba["id"]}, tenant=a.slug))["data"]["building"]
    # ... and is invisible under the other one.
    for slug, pid, bid in ((a.slug, pb["id"], bb["id"]), (b.slug, pa["id"], ba["id"])):
        res = await gql(client, PROJECT, {"id": pid}, tenant=slug)
        assert res == {"data": {"project": None}}
        res = await gql(client, BUILDING, {"id": bid}, tenant=slug)
        assert res == {"data": {"building": None}}


async def test_building_in_other_tenants_project_is_not_found(client, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    pb = await create_project(client, b.slug, "Beta Park")
    res = await gql(
        client,
        "mutation($input: CreateBuildingInput!) { createBuilding(input: $input) "
        "{ __typename ... on UserError { code field } } }",
        {"input": {"projectId": pb["id"], "name": "Intruder", "floors": 3}},
        tenant=a.slug,
    )
    assert res["data"]["createBuilding"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "field": "projectId",
    }
    res = await gql(client, PROJECT, {"id": pb["id"]}, tenant=b.slug)
    assert res["data"]["project"]["buildings"] == []
