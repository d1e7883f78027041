"""Liveness and readiness: /readyz answers 503 while any tenant schema is behind head."""

from __future__ import annotations

import httpx

from tenants.migrate import downgrade_tenant, head, tenant_versions, upgrade_tenant


async def test_healthz(client):
    resp = await client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


async def test_readyz_when_everything_is_at_head(client, make_tenant):
    await make_tenant()  # at least one tenant, provisioned at head
    resp = await client.get("/readyz")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ready"
    assert body["database"] == "ok"
    assert body["shared"] == {"version": head("shared"), "head": head("shared")}
    assert body["tenantHead"] == head("tenant")
    assert body["tenantsBehind"] == []
    assert body["tenantsBehindCount"] == 0


async def test_readyz_lists_a_tenant_behind_head(live_server_factory, engine, make_tenant):
    tenant = await make_tenant()
    previous = (await tenant_versions(engine, [tenant.schema_name]))[tenant.schema_name]
    assert previous == head("tenant")
    await downgrade_tenant(engine, tenant.schema_name, "0001")
    try:
        behind = (await tenant_versions(engine, [tenant.schema_name]))[tenant.schema_name]
        assert behind != head("tenant")
        # A fresh gateway: /readyz caches its answer for 2 s per process.
        with live_server_factory() as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                resp = await client.get("/readyz")
                assert resp.status_code == 503, resp.text
                body = resp.json()
                assert body["status"] == "migrations pending"
                assert body["tenantsBehindCount"] == 1
                assert body["tenantsBehind"] == [{"slug": tenant.slug, "version": behind}]
                assert body["tenantHead"] == head("tenant")
                # Liveness does not depend on migrations.
                assert (await client.get("/healthz")).status_code == 200
    finally:
        await upgrade_tenant(engine, tenant.schema_name)
    assert (await tenant_versions(engine, [tenant.schema_name]))[tenant.schema_name] == head(
        "tenant"
    )
    with live_server_factory() as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            resp = await client.get("/readyz")
            assert resp.status_code == 200, resp.text
            assert resp.json()["status"] == "ready"
