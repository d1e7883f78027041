"""The error policy over real HTTP: every error carries ``extensions.code`` from the fixed set;
an unexpected exception becomes INTERNAL with a correlation id, its text and traceback go to
the log and never to the response."""

from __future__ import annotations

import uuid

import pytest
from structlog.testing import capture_logs

from api.project import repository
from tests.api.helpers import create_project
from tests.conftest import auth_headers, gql

CODES = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "RATE_LIMITED",
    "INTERNAL",
}


async def test_unexpected_exception_is_internal_with_correlation_id(
    client, make_tenant, monkeypatch
):
    tenant = await make_tenant()
    await create_project(client, tenant.slug, "Visible")

    async def explode(*args, **kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(repository, "list_projects", explode)
    with capture_logs() as logs:
        resp = await client.post(
            "/graphql",
            json={"query": "{ projects { id name } }"},
            headers=auth_headers(tenant.slug),
        )
    assert resp.status_code == 200
    body = resp.text
    for leak in ("secret detail", "RuntimeError", "Traceback", "explode", "repository", ".py"):
        assert leak not in body, body
    res = resp.json()
    assert res["data"] is None
    [error] = res["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    correlation_id = error["extensions"]["correlationId"]
    assert str(uuid.UUID(correlation_id)) == correlation_id
    assert correlation_id in error["message"]
    assert error["path"] == ["projects"]

    # The log has the exception, under the same correlation id.
    [entry] = [e for e in logs if e.get("correlation_id") == correlation_id]
    assert entry["log_level"] == "error"
    exc = entry["exc_info"]
    assert isinstance(exc, RuntimeError) and str(exc) == "secret detail"

    # Each failure has its own correlation id; other fields of the operation still resolve.
    res = await gql(client, "{ apiVersion projects { id } }", tenant=tenant.slug)
    assert res["errors"][0]["extensions"]["correlationId"] != correlation_id
    monkeypatch.undo()
    res = await gql(client, "{ projects { name } }", tenant=tenant.slug)
    assert res == {"data": {"projects": [{"name": "Visible"}]}}


async def test_unknown_field_is_bad_user_input(client):
    resp = await client.post("/graphql", json={"query": "{ apiVersion nope }"})
    assert resp.status_code == 200
    res = resp.json()
    assert res["data"] is None
    [error] = res["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "nope" in error["message"]


@pytest.mark.parametrize(
    ("query", "variables", "needle"),
    [
        ("query($n: Int!) { projects(first: $n) { id } }", {"n": "ten"}, "$n"),
        ("query($n: Int!) { projects(first: $n) { id } }", {}, "$n"),
        ("query($n: Int!) { projects(first: $n) { id } }", {"n": 2**40}, "$n"),
        ('{ projects(first: "ten") { id } }', None, "Int"),
        (
            "mutation($i: CreateBuildingInput!) { createBuilding(input: $i) { __typename } }",
            {"i": {"projectId": "x", "name": "A", "floors": "many"}},
            "floors",
        ),
        (
            "mutation($i: CreateProjectInput!) { createProject(input: $i) { __typename } }",
            {"i": {"name": "P", "latitude": "north"}},
            "latitude",
        ),
    ],
)
async def test_wrong_variable_or_argument_type_is_bad_user_input(
    client, make_tenant, query, variables, needle
):
    tenant = await make_tenant()
    res = await gql(client, query, variables, tenant=tenant.slug)
    assert res["data"] is None
    [error] = res["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert needle in error["message"]


@pytest.mark.parametrize("query", ["{ apiVersion ", "{ projects { id } } }", "query {"])
async def test_syntax_error_is_bad_user_input(client, query):
    resp = await client.post("/graphql", json={"query": query})
    assert resp.status_code == 200
    res = resp.json()
    assert res["data"] is None
    [error] = res["errors"]
    assert "Syntax Error" in error["message"]
    assert error.get("extensions", {}).get("code") == "BAD_USER_INPUT", error


async def test_every_error_code_is_from_the_fixed_set(client, make_tenant):
    tenant = await make_tenant()
    for query in (
        "{ nope }",
        "{ projects(first: true) { id } }",
        "subscription { anything }",
        "query A { apiVersion } query A { apiVersion }",
    ):
        res = await gql(client, query, tenant=tenant.slug)
        assert res["errors"], res
        assert {e["extensions"]["code"] for e in res["errors"]} <= CODES, res


@pytest.mark.parametrize(
    "query",
    [
        "{ apiVersion }",
        "query { projects { id } }",
        'mutation { createProject(input: {name: "Over GET"}) { __typename } }',
    ],
)
async def test_get_requests_are_refused(client, make_tenant, query):
    tenant = await make_tenant()
    resp = await client.get("/graphql", params={"query": query}, headers={"X-Tenant": tenant.slug})
    assert resp.status_code == 400, resp.text
    assert "not allowed when using GET" in resp.text
    assert "data" not in resp.text
    # Nothing ran: the mutation did not write.
    res = await gql(client, "{ projects { name } }", tenant=tenant.slug)
    assert res == {"data": {"projects": []}}


async def test_graphiql_is_off_outside_development(client, settings):
    assert settings.env == "test"
    resp = await client.get("/graphql", headers={"Accept": "text/html"})
    assert resp.status_code == 404
    assert "graphiql" not in resp.text.lower()
