"""The project domain over GraphQL: typed user errors as data, concurrency on the unique
building name, the operation owning its transaction, and bounded SQL round trips."""

from __future__ import annotations

import asyncio
import re
import threading

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from api.app import create_app
from api.db import make_engine
from api.project import repository
from tests.api.helpers import (
    CREATE_BUILDING,
    CREATE_PROJECT,
    create_building,
    create_project,
)
from tests.conftest import LiveServer, gql
from tests.conftest import test_settings as gateway_settings


async def project_result(client, slug: str, **fields) -> dict:
    res = await gql(client, CREATE_PROJECT, {"input": fields}, tenant=slug)
    assert "errors" not in res, res
    return res["data"]["createProject"]


async def building_result(client, slug: str, project_id: str, name: str, floors: int) -> dict:
    res = await gql(
        client,
        CREATE_BUILDING,
        {"input": {"projectId": project_id, "name": name, "floors": floors}},
        tenant=slug,
    )
    assert "errors" not in res, res
    return res["data"]["createBuilding"]


async def project_names(client, slug: str) -> list[str]:
    res = await gql(client, "{ projects { name } }", tenant=slug)
    return [p["name"] for p in res["data"]["projects"]]


async def test_create_and_read_project(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(
        client,
        tenant.slug,
        "  Harbour One  ",
        district="Nanshan",
        latitude="22.5",
        longitude="113.9",
    )
    assert project["name"] == "Harbour One"  # trimmed
    assert (project["latitude"], project["longitude"]) == ("22.500000", "113.900000")
    res = await gql(client, "{ projects { id name district } }", tenant=tenant.slug)
    assert res["data"]["projects"] == [
        {"id": project["id"], "name": "Harbour One", "district": "Nanshan"}
    ]


# ---------------------------------------------------------------- typed errors as data


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": ""}, "name", "name is required"),
        ({"name": "   "}, "name", "name is required"),
        ({"name": "x" * 201}, "name", "name must be at most 200 characters"),
        ({"name": "P", "city": "c" * 101}, "city", "city must be at most 100 characters"),
        ({"name": "P", "latitude": "22.5"}, "latitude", "latitude and longitude go together"),
        ({"name": "P", "longitude": "113.9"}, "latitude", "latitude and longitude go together"),
        ({"name": "P", "latitude": "90.5", "longitude": "1"}, "latitude", None),
        ({"name": "P", "latitude": "1", "longitude": "-180.5"}, "longitude", None),
    ],
)
async def test_create_project_validation_errors_are_data(
    client, make_tenant, fields, field, message
):
    tenant = await make_tenant()
    result = await project_result(client, tenant.slug, **fields)
    assert result["__typename"] == "ValidationError"
    assert result["code"] == "BAD_USER_INPUT"
    assert result["field"] == field
    if message:
        assert result["message"] == message
    assert await project_names(client, tenant.slug) == []


async def test_create_building_errors_are_data(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Garden")

    unknown = await building_result(
        client, tenant.slug, "01900000-0000-7000-8000-000000000000", "A", 10
    )
    assert unknown == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": "project not found",
        "field": "projectId",
    }
    not_an_id = await building_result(client, tenant.slug, "not-a-uuid", "A", 10)
    assert not_an_id["__typename"] == "NotFoundError" and not_an_id["field"] == "projectId"

    for floors in (0, -1, 201):
        res = await building_result(client, tenant.slug, project["id"], "A", floors)
        assert res["__typename"] == "ValidationError", res
        assert (res["code"], res["field"]) == ("BAD_USER_INPUT", "floors")
    for floors in (1, 200):  # the bounds themselves are fine
        await create_building(client, tenant.slug, project["id"], f"F{floors}", floors)

    empty = await building_result(client, tenant.slug, project["id"], "  ", 3)
    assert (empty["__typename"], empty["field"]) == ("ValidationError", "name")

    await create_building(client, tenant.slug, project["id"], "Tower 1", 30)
    for name in ("Tower 1", " Tower 1 "):  # the name is trimmed before the check
        dup = await building_result(client, tenant.slug, project["id"], name, 12)
        assert dup["__typename"] == "ConflictError", dup
        assert (dup["code"], dup["field"]) == ("CONFLICT", "name")
        assert "Tower 1" in dup["message"]

    # The same name in another project is fine.
    other = await create_project(client, tenant.slug, "Garden II")
    await create_building(client, tenant.slug, other["id"], "Tower 1", 30)

    res = await gql(
        client,
        "query($id: ID!) { project(id: $id) { buildings { name floors } } }",
        {"id": project["id"]},
        tenant=tenant.slug,
    )
    assert res["data"]["project"]["buildings"] == [
        {"name": "F1", "floors": 1},
        {"name": "F200", "floors": 200},
        {"name": "Tower 1", "floors": 30},
    ]


async def test_concurrent_duplicate_buildings_one_wins(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Race")
    results = await asyncio.gather(
        *(building_result(client, tenant.slug, project["id"], "Twin", 5 + i) for i in range(10))
    )
    kinds = sorted(r["__typename"] for r in results)
    assert kinds == ["BuildingPayload"] + ["ConflictError"] * 9, results
    for r in results:
        if r["__typename"] == "ConflictError":
            assert (r["code"], r["field"]) == ("CONFLICT", "name")
    [winner] = [r["building"] for r in results if r["__typename"] == "BuildingPayload"]
    res = await gql(
        client,
        "query($id: ID!) { project(id: $id) { buildings { id name floors } } }",
        {"id": project["id"]},
        tenant=tenant.slug,
    )
    assert res["data"]["project"]["buildings"] == [
        {"id": winner["id"], "name": "Twin", "floors": winner["floors"]}
    ]


async def test_nul_character_in_name_is_bad_user_input(client, make_tenant):
    """No text column holds a NUL: the String scalar refuses it before anything runs (a
    request error naming the variable and field; tests/api/graphql/test_hostile_inputs.py)."""
    tenant = await make_tenant()
    res = await gql(
        client, CREATE_PROJECT, {"input": {"name": "Harbour\x00One"}}, tenant=tenant.slug
    )
    assert res["data"] is None, res
    [error] = res["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and ".name" in error["message"], res


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity"])
async def test_nan_coordinates_are_bad_user_input(client, make_tenant, value):
    """The Decimal scalar refuses a value that is no number before anything runs."""
    tenant = await make_tenant()
    res = await gql(
        client,
        CREATE_PROJECT,
        {"input": {"name": "P", "latitude": value, "longitude": "1"}},
        tenant=tenant.slug,
    )
    assert res["data"] is None, res
    [error] = res["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "latitude" in error["message"]


# ---------------------------------------------------------------- the operation's transaction


async def test_operation_with_an_error_rolls_back_everything(client, make_tenant, monkeypatch):
    """Mutations of one operation share its transaction: when a later one fails unexpectedly,
    the row an earlier one already wrote is rolled back too."""
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Existing")
    seen_in_transaction: list[str] = []

    async def broken(session, project_id, name):
        rows = await repository.list_projects(session, limit=100)
        seen_in_transaction.extend(p.name for p in rows)
        raise RuntimeError("database went away")

    monkeypatch.setattr(repository, "building_name_taken", broken)
    res = await gql(
        client,
        """
        mutation($b: CreateBuildingInput!) {
          first: createProject(input: {name: "Written then rolled back"}) { __typename }
          second: createBuilding(input: $b) { __typename }
        }
        """,
        {"b": {"projectId": project["id"], "name": "A", "floors": 3}},
        tenant=tenant.slug,
    )
    monkeypatch.undo()
    # The first mutation had written its row in the operation's transaction ...
    assert sorted(seen_in_transaction) == ["Existing", "Written then rolled back"]
    assert res["data"] is None  # createBuilding is non-null: its error nulls the whole data
    [error] = res["errors"]
    assert error["path"] == ["second"]
    assert error["extensions"]["code"] == "INTERNAL"
    # ... and nothing of the operation was committed.
    assert await project_names(client, tenant.slug) == ["Existing"]


async def test_operation_without_errors_commits_all_mutations(client, make_tenant):
    tenant = await make_tenant()
    res = await gql(
        client,
        """
        mutation {
          a: createProject(input: {name: "One"}) { __typename }
          b: createProject(input: {name: ""}) { __typename }
          c: createProject(input: {name: "Three"}) { __typename }
        }
        """,
        tenant=tenant.slug,
    )
    assert res == {
        "data": {
            "a": {"__typename": "ProjectPayload"},
            "b": {"__typename": "ValidationError"},  # a user error is data, not a failure
            "c": {"__typename": "ProjectPayload"},
        }
    }
    assert sorted(await project_names(client, tenant.slug)) == ["One", "Three"]


# ---------------------------------------------------------------- SQL round trips


class StatementCounter:
    """Counts the statements the gateway sends against one tenant schema."""

    def __init__(self, engine, schema: str):
        self.pattern = re.compile(rf'\b"?{re.escape(schema)}"?\.')
        self.statements: list[str] = []
        self.lock = threading.Lock()
        event.listen(engine.sync_engine, "before_cursor_execute", self.on_execute)

    def on_execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.pattern.search(statement):
            with self.lock:
                self.statements.append(statement)

    def take(self) -> list[str]:
        with self.lock:
            out, self.statements = self.statements, []
        return out


@pytest.fixture
def counted_server(db_url):
    """A gateway on an engine this test owns, so it can listen to its statements."""
    # one engine for every statement (no lanes: tenants/routing.py), so all are counted
    settings = gateway_settings(db_lane_size=0)
    engine = make_engine(db_url, settings, poolclass=NullPool)  # no connection outlives a call
    server = LiveServer(create_app(settings, engine=engine)).start()
    try:
        yield server, engine
    finally:
        server.stop()


MAIN_QUERY = "{ projects { id buildings { id project { id } } } }"


async def test_main_query_needs_three_statements_whatever_the_size(counted_server, make_tenant):
    server, engine = counted_server
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

        async def project_with_buildings(slug: str, name: str) -> None:
            project = await create_project(client, slug, name)
            for b in range(3):
                await create_building(client, slug, project["id"], f"B{b}")

        for n_projects in (1, 10):
            tenant = await make_tenant()
            await asyncio.gather(
                *(project_with_buildings(tenant.slug, f"P{i}") for i in range(n_projects))
            )
            counter = StatementCounter(engine, tenant.schema_name)
            try:
                res = await gql(client, MAIN_QUERY, tenant=tenant.slug)
                statements = counter.take()
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", counter.on_execute)
            projects = res["data"]["projects"]
            assert len(projects) == n_projects
            assert all(len(p["buildings"]) == 3 for p in projects)
            assert all(b["project"]["id"] == p["id"] for p in projects for b in p["buildings"])
            # projects; buildings by project ids; projects by ids — not one per project.
            assert len(statements) == 3, "\n".join(statements)
            assert all(s.lstrip().upper().startswith("SELECT") for s in statements)
