"""Tenant resolution (tenants/middleware.py) over real HTTP and WebSocket connections:
X-Tenant header, subdomain, unknown / suspended / invalid tenants, and no tenant at all; and
the access token, which is valid only for the tenant it was issued for."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tenants.models import TenantStatus
from tenants.registry import set_status
from tests.api.helpers import create_project, typed_denial
from tests.conftest import TOKENS, auth_headers, gql

PROJECTS = "{ projects { id name } }"
WS_PROTOCOL = "graphql-transport-ws"


def error_body(res: dict, code: str) -> str:
    """The single error of a refused request; returns its message."""
    assert list(res) == ["errors"], res
    [error] = res["errors"]
    assert error["extensions"] == {"code": code}
    assert isinstance(error["message"], str) and error["message"]
    return error["message"]


async def test_unknown_tenant_is_404_with_graphql_error_body(client):
    resp = await client.post(
        "/graphql", json={"query": PROJECTS}, headers={"X-Tenant": "no-such-tenant"}
    )
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/json"
    assert "no-such-tenant" in error_body(resp.json(), "NOT_FOUND")
    # Refused before routing: any path under an unknown tenant is a 404 in the same shape.
    resp = await client.get("/healthz", headers={"X-Tenant": "no-such-tenant"})
    assert resp.status_code == 404
    error_body(resp.json(), "NOT_FOUND")


@pytest.mark.parametrize(
    "slug",
    ["Bad_Slug", "UPPER", "../etc", "a", "-abc", "abc-", "t_abc", "x" * 300, "ÄÖÜ", "a b"],
)
async def test_invalid_slug_is_404(client, slug):
    resp = await client.post(
        "/graphql", json={"query": PROJECTS}, headers={"X-Tenant": slug.encode("utf-8")}
    )
    assert resp.status_code == 404, resp.text
    error_body(resp.json(), "NOT_FOUND")


async def test_suspended_tenant_is_403_then_works_again_when_resumed(client, engine, make_tenant):
    tenant = await make_tenant()
    await create_project(client, tenant.slug, "Before suspension")
    await set_status(engine, tenant.slug, TenantStatus.SUSPENDED)
    try:
        res = await gql(client, PROJECTS, tenant=tenant.slug, expect_status=403)
        assert tenant.slug in error_body(res, "FORBIDDEN")
        # Writes are refused the same way, and nothing is written.
        res = await gql(
            client,
            'mutation { createProject(input: {name: "During"}) { __typename } }',
            tenant=tenant.slug,
            expect_status=403,
        )
        error_body(res, "FORBIDDEN")
    finally:
        await set_status(engine, tenant.slug, TenantStatus.ACTIVE)
    res = await gql(client, PROJECTS, tenant=tenant.slug)
    assert [p["name"] for p in res["data"]["projects"]] == ["Before suspension"]


async def test_subdomain_resolves_tenant_without_header(client, make_tenant, settings):
    a, b = await make_tenant(), await make_tenant()
    await create_project(client, a.slug, "Alpha by subdomain")
    await create_project(client, b.slug, "Beta by subdomain")
    for tenant, name in ((a, "Alpha by subdomain"), (b, "Beta by subdomain")):
        bearer = {"Authorization": f"Bearer {TOKENS[tenant.slug]}"}
        for host in (f"{tenant.slug}.{settings.base_domain}", f"{tenant.slug}.localhost:8000"):
            resp = await client.post(
                "/graphql", json={"query": PROJECTS}, headers={"Host": host, **bearer}
            )
            assert resp.status_code == 200, resp.text
            assert [p["name"] for p in resp.json()["data"]["projects"]] == [name]
    # The header wins over the subdomain.
    resp = await client.post(
        "/graphql",
        json={"query": PROJECTS},
        headers={"Host": f"{a.slug}.localhost", **auth_headers(b.slug)},
    )
    assert [p["name"] for p in resp.json()["data"]["projects"]] == ["Beta by subdomain"]
    # An unknown subdomain is an unknown tenant.
    resp = await client.post(
        "/graphql", json={"query": PROJECTS}, headers={"Host": "nobody-here.localhost"}
    )
    assert resp.status_code == 404
    error_body(resp.json(), "NOT_FOUND")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "a.b.localhost", "example.com"])
async def test_hosts_that_name_no_tenant(client, host):
    """The bare base domain, an IP, a nested subdomain or another domain name no tenant: tenant
    fields fail with BAD_USER_INPUT, tenant-free fields work."""
    resp = await client.post(
        "/graphql", json={"query": "{ apiVersion projects { id } }"}, headers={"Host": host}
    )
    assert resp.status_code == 200
    res = resp.json()
    assert res["data"] is None  # projects is non-null, so the error nulls the whole data
    [error] = res["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == ["projects"]


async def test_no_tenant_tenant_fields_fail_but_api_version_works(client, make_tenant):
    res = await gql(client, "{ apiVersion }")
    assert res == {"data": {"apiVersion": "0.1.0"}}

    res = await gql(client, PROJECTS)
    [error] = res["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "X-Tenant" in error["message"]

    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Hidden")
    for query, variables, field in (
        ("query($id: ID!) { project(id: $id) { id } }", {"id": project["id"]}, "project"),
        ("query($id: ID!) { building(id: $id) { id } }", {"id": project["id"]}, "building"),
        ('mutation { createProject(input: {name: "x"}) { __typename } }', None, "createProject"),
    ):
        res = await gql(client, query, variables)
        [error] = res["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", res
        assert error["path"] == [field]
    # Nothing was written anywhere by the tenant-less mutation.
    res = await gql(client, PROJECTS, tenant=tenant.slug)
    assert [p["name"] for p in res["data"]["projects"]] == ["Hidden"]


# ---------------------------------------------------------------- access token

CREATE_INTRUDER = """
mutation {
  createProject(input: {name: "Intruder"}) { __typename ... on UserError { code message field } }
}
"""


def refused_field(res: dict, code: str, field: str) -> None:
    """The single error of a tenant field refused with ``code``; no data leaked (a nullable
    field is null, a non-null one nulls the whole data)."""
    assert res["data"] in (None, {field: None}), res
    [error] = res["errors"]
    assert error["extensions"]["code"] == code, res
    assert error["path"] == [field], res


async def test_token_of_another_tenant_is_unauthenticated(client, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    await create_project(client, b.slug, "Beta only")
    foreign = TOKENS[a.slug]  # a valid admin token, but issued for tenant A

    # Named by the X-Tenant header: reads and writes of B are refused.
    res = await gql(client, PROJECTS, tenant=b.slug, token=foreign)
    refused_field(res, "UNAUTHENTICATED", "projects")
    res = await gql(client, CREATE_INTRUDER, tenant=b.slug, token=foreign)
    typed_denial(res, "createProject", "UNAUTHENTICATED")  # a mutation: the typed AuthError
    # Named by the subdomain: the same.
    resp = await client.post(
        "/graphql",
        json={"query": PROJECTS},
        headers={"Host": f"{b.slug}.localhost", "Authorization": f"Bearer {foreign}"},
    )
    assert resp.status_code == 200, resp.text
    refused_field(resp.json(), "UNAUTHENTICATED", "projects")

    # The token itself is fine for the tenant it was issued for.
    res = await gql(client, PROJECTS, tenant=a.slug, token=foreign)
    assert res == {"data": {"projects": []}}
    # Nothing was written to B.
    res = await gql(client, PROJECTS, tenant=b.slug)
    assert [p["name"] for p in res["data"]["projects"]] == ["Beta only"]


async def test_anonymous_tenant_fields_are_unauthenticated(client, make_tenant):
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Members only")

    for query, variables, field in (
        (PROJECTS, None, "projects"),
        ("query($id: ID!) { project(id: $id) { id } }", {"id": project["id"]}, "project"),
    ):
        res = await gql(client, query, variables, tenant=tenant.slug, token=None)
        refused_field(res, "UNAUTHENTICATED", field)
    # A mutation whose result union has AuthError returns it, as data.
    res = await gql(client, CREATE_INTRUDER, tenant=tenant.slug, token=None)
    typed_denial(res, "createProject", "UNAUTHENTICATED")
    # A public field still answers anonymously.
    res = await gql(client, "{ apiVersion }", tenant=tenant.slug, token=None)
    assert res == {"data": {"apiVersion": "0.1.0"}}
    # Nothing was written by the anonymous mutation.
    res = await gql(client, PROJECTS, tenant=tenant.slug)
    assert [p["name"] for p in res["data"]["projects"]] == ["Members only"]


# ---------------------------------------------------------------- websocket


async def test_websocket_with_unknown_tenant_is_refused(live_server):
    with pytest.raises(InvalidStatus) as info:
        async with _ws_connect(live_server, "no-such-tenant"):
            pass
    response = info.value.response
    assert response.status_code == 404
    assert json.loads(response.body) == {
        "errors": [
            {"message": "unknown tenant 'no-such-tenant'", "extensions": {"code": "NOT_FOUND"}}
        ]
    }


async def test_websocket_with_suspended_tenant_is_refused(live_server, engine, make_tenant):
    tenant = await make_tenant()
    await set_status(engine, tenant.slug, TenantStatus.SUSPENDED)
    try:
        with pytest.raises(InvalidStatus) as info:
            async with _ws_connect(live_server, tenant.slug):
                pass
    finally:
        await set_status(engine, tenant.slug, TenantStatus.ACTIVE)
    assert info.value.response.status_code == 403
    assert json.loads(info.value.response.body)["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def _ws_init(ws, token: str | None) -> None:
    """graphql-transport-ws handshake; the access token (if any) goes in the init payload."""
    payload = {"authorization": f"Bearer {token}"} if token else {}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert ack["type"] == "connection_ack", ack


async def _ws_operations(ws, operations: dict[str, tuple[str, dict | None]]) -> dict[str, dict]:
    """Send every operation at once (graphql-transport-ws ``subscribe``); collect each one's
    single ``next`` payload until its ``complete``."""
    for op_id, (query, variables) in operations.items():
        payload = {"query": query, "variables": variables or {}}
        await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
    results: dict[str, list] = {op_id: [] for op_id in operations}
    pending = set(operations)
    while pending:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if msg["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        assert msg["id"] in pending, msg
        if msg["type"] == "complete":
            pending.discard(msg["id"])
            continue
        assert msg["type"] == "next", msg
        results[msg["id"]].append(msg["payload"])
    assert all(len(r) == 1 for r in results.values()), results
    return {op_id: r[0] for op_id, r in results.items()}


async def _ws_operation(ws, op_id: str, query: str, variables: dict | None = None) -> dict:
    return (await _ws_operations(ws, {op_id: (query, variables)}))[op_id]


def _ws_connect(server, slug: str):
    return connect(
        server.ws_url,
        subprotocols=[WS_PROTOCOL],
        additional_headers={"X-Tenant": slug},
        open_timeout=5,
    )


async def test_websocket_query_with_valid_tenant(live_server, client, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    await create_project(client, a.slug, "Alpha over WS")
    await create_project(client, b.slug, "Beta over WS")
    for tenant, name in ((a, "Alpha over WS"), (b, "Beta over WS")):
        async with _ws_connect(live_server, tenant.slug) as ws:
            assert ws.subprotocol == WS_PROTOCOL
            await _ws_init(ws, TOKENS[tenant.slug])
            result = await _ws_operation(ws, "1", PROJECTS)
            assert [p["name"] for p in result["data"]["projects"]] == [name]
            # A second operation on the same connection is answered the same way.
            result = await _ws_operation(ws, "2", "{ apiVersion projects { name } }")
            assert result["data"] == {"apiVersion": "0.1.0", "projects": [{"name": name}]}


async def test_websocket_operations_each_own_their_transaction(live_server, client, make_tenant):
    """Each operation on a socket commits when it ends (not when the socket closes), and
    reads fresh data (no DataLoader cache or identity map shared across operations)."""
    tenant = await make_tenant()
    project_q = "query($id: ID!) { project(id: $id) { name buildings { name } } }"
    async with _ws_connect(live_server, tenant.slug) as ws:
        await _ws_init(ws, TOKENS[tenant.slug])
        result = await _ws_operation(
            ws,
            "create",
            'mutation { createProject(input: {name: "Made over WS"}) '
            "{ ... on ProjectPayload { project { id } } } }",
        )
        project_id = result["data"]["createProject"]["project"]["id"]
        # Committed while the socket is still open.
        res = await gql(client, PROJECTS, tenant=tenant.slug)
        assert [p["name"] for p in res["data"]["projects"]] == ["Made over WS"]

        before = await _ws_operation(ws, "read1", project_q, {"id": project_id})
        assert before["data"]["project"] == {"name": "Made over WS", "buildings": []}
        await gql(
            client,
            'mutation($p: ID!) { createBuilding(input: {projectId: $p, name: "Late", floors: 2}) '
            "{ __typename } }",
            {"p": project_id},
            tenant=tenant.slug,
        )
        after = await _ws_operation(ws, "read2", project_q, {"id": project_id})
        assert after["data"]["project"]["buildings"] == [{"name": "Late"}]

        # Several operations in flight at once on one socket, each with its own session.
        results = await _ws_operations(
            ws,
            {
                f"op{i}": (
                    "mutation($p: ID!, $n: String!) { createBuilding(input: {projectId: $p, "
                    "name: $n, floors: 3}) { __typename } }",
                    {"p": project_id, "n": f"Concurrent {i}"},
                )
                for i in range(5)
            }
            | {f"q{i}": (project_q, {"id": project_id}) for i in range(5)},
        )
        for op_id, result in results.items():
            assert "errors" not in result, (op_id, result)
        assert all(
            results[f"op{i}"]["data"]["createBuilding"]["__typename"] == "BuildingPayload"
            for i in range(5)
        )
    res = await gql(client, project_q, {"id": project_id}, tenant=tenant.slug)
    assert sorted(b["name"] for b in res["data"]["project"]["buildings"]) == [
        "Concurrent 0",
        "Concurrent 1",
        "Concurrent 2",
        "Concurrent 3",
        "Concurrent 4",
        "Late",
    ]


async def test_websocket_without_a_valid_token_is_unauthenticated(live_server, make_tenant):
    """Over WebSocket the token comes from the connection_init payload: none, or one issued
    for another tenant, leaves tenant fields refused (and public ones answered)."""
    a, b = await make_tenant(), await make_tenant()
    for token in (None, TOKENS[a.slug]):
        async with _ws_connect(live_server, b.slug) as ws:
            await _ws_init(ws, token)
            result = await _ws_operation(ws, "1", PROJECTS)
            refused_field(result, "UNAUTHENTICATED", "projects")
            result = await _ws_operation(ws, "2", "{ apiVersion }")
            assert result == {"data": {"apiVersion": "0.1.0"}}
