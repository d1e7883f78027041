"""Tenant resolution (tenants/middleware.py) over real HTTP and WebSocket connections:
X-Tenant header, subdomain, unknown / suspended / invalid tenants, and no tenant at all; and
the access token, which is valid only for the tenant it was issued for."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

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


async def _ws_first(ws, op_id: str, query: str, variables: dict | None = None) -> dict:
    """Subscribe and return the first message for it (pings answered)."""
    payload = {"query": query, "variables": variables or {}}
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if msg["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        assert msg.get("id") == op_id, msg
        return msg


# From beyond any tenant's head, a unit subscription first answers RefetchRequired naming the
# tenant's own head: proof that the socket serves that tenant.
UNIT_CHANGES = (
    "subscription($p: ID) { unitChanges(projectId: $p, since: 1000000000) "
    "{ __typename ... on RefetchRequired { seq } } }"
)


def _ws_connect(server, slug: str):
    return connect(
        server.ws_url,
        subprotocols=[WS_PROTOCOL],
        additional_headers={"X-Tenant": slug},
        open_timeout=5,
    )


async def test_websocket_subscription_with_valid_tenant(live_server, client, make_tenant):
    """The handshake's X-Tenant is the socket's tenant: a subscription runs against it, and
    queries and mutations are refused there (they go over HTTP)."""
    tenant = await make_tenant()
    project = await create_project(client, tenant.slug, "Alpha over WS")
    async with _ws_connect(live_server, tenant.slug) as ws:
        assert ws.subprotocol == WS_PROTOCOL
        await _ws_init(ws, TOKENS[tenant.slug])
        msg = await _ws_first(ws, "1", UNIT_CHANGES, {"p": project["id"]})
        assert msg["type"] == "next", msg
        assert msg["payload"]["data"]["unitChanges"] == {"__typename": "RefetchRequired", "seq": 0}
        msg = await _ws_first(ws, "2", PROJECTS)
        assert msg["type"] == "error", msg
        assert msg["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT", msg


async def test_websocket_without_a_valid_token_is_closed(live_server, make_tenant):
    """Over WebSocket the token comes from the connection_init payload: none, or one issued
    for another tenant, closes the socket with 4403 before anything runs."""
    a, b = await make_tenant(), await make_tenant()
    for token in (None, TOKENS[a.slug]):
        async with _ws_connect(live_server, b.slug) as ws:
            payload = {"authorization": f"Bearer {token}"} if token else {}
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd.code == 4403
