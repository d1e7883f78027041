"""HTTP hardening: security headers on every answer, CORS only for listed origins, and a time
limit that stops a slow request with a JSON 503 (over real HTTP)."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.http import RequestTimeout, SecurityHeaders
from tests.conftest import LiveServer, gql


async def test_every_answer_carries_the_security_headers(client):
    resp = await client.post("/graphql", json={"query": "{ apiVersion }"})
    for name, value in {
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }.items():
        assert resp.headers[name] == value
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert "strict-transport-security" not in resp.headers  # production only
    refused = await client.post(
        "/graphql", json={"query": "{ apiVersion }"}, headers={"X-Tenant": "no-such-tenant"}
    )
    assert refused.status_code == 404 and refused.headers["x-content-type-options"] == "nosniff"


async def test_cors_allows_listed_origins_only(live_server_factory):
    origin = "https://console.example.com"
    with live_server_factory(cors_origins=[origin]) as server:
        async with httpx.AsyncClient(base_url=server.url) as c:
            preflight = {
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, x-tenant",
            }
            ok = await c.options("/graphql", headers={"Origin": origin, **preflight})
            assert ok.status_code == 200
            assert ok.headers["access-control-allow-origin"] == origin
            bad = await c.options(
                "/graphql", headers={"Origin": "https://evil.example", **preflight}
            )
            assert "access-control-allow-origin" not in bad.headers
            res = await gql(c, "{ apiVersion }")
            assert res["data"] == {"apiVersion": "0.1.0"}


async def test_a_slow_request_is_stopped_with_a_json_503():
    finished = []

    async def slow(request):
        await asyncio.sleep(2)
        finished.append(True)
        return JSONResponse({"late": True})

    async def fast(request):
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/slow", slow), Route("/fast", fast)])
    server = LiveServer(SecurityHeaders(RequestTimeout(app, seconds=0.3), production=True))
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as c:
            resp = await c.get("/slow")
            assert resp.status_code == 503 and resp.headers["retry-after"] == "5"
            assert resp.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
            assert "strict-transport-security" in resp.headers
            assert (await c.get("/fast")).json() == {"ok": True}
        await asyncio.sleep(0.1)
        assert finished == []  # the slow handler was cancelled, not left running
    finally:
        server.stop()


async def test_only_json_posts_run_operations(client, make_tenant):
    tenant = await make_tenant()
    mutation = 'mutation { createProject(input: {name: "Via GET"}) { __typename } }'
    headers = {"X-Tenant": tenant.slug, "accept": "application/json"}
    resp = await client.get("/graphql", params={"query": mutation}, headers=headers)
    assert resp.status_code in (400, 404, 405)
    form_type = {"content-type": "application/x-www-form-urlencoded"}
    form = await client.post("/graphql", content=f"query={mutation}", headers=form_type)
    assert form.status_code in (400, 415)
    res = await gql(client, "{ projects { name } }", tenant=tenant.slug)
    assert res["data"]["projects"] == []  # nothing was created
