"""The client address, over real HTTP: X-Forwarded-For is believed only from the proxies of
``ANJU_TRUSTED_PROXIES`` (none by default, loopback included), walked from the right past the
trusted ones, so a caller cannot pick its own rate-limit bucket by sending the header and
callers behind a load balancer do not share one; the audit log records the same address."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from api.settings import Settings
from tests.conftest import auth_headers, gql

APIVERSION = {"query": "{ apiVersion }"}


async def anonymous(client: httpx.AsyncClient, forwarded: str) -> str:
    """'ok' or the refusal code of one anonymous call sent with ``forwarded``."""
    resp = await client.post("/graphql", json=APIVERSION, headers={"X-Forwarded-For": forwarded})
    res = resp.json()
    return res["errors"][0]["extensions"]["code"] if "errors" in res else "ok"


def test_no_proxy_is_trusted_by_default(monkeypatch):
    monkeypatch.delenv("ANJU_TRUSTED_PROXIES", raising=False)
    assert Settings().trusted_proxies == []
    monkeypatch.setenv("ANJU_TRUSTED_PROXIES", '["10.0.0.0/8", "192.0.2.1", "::1"]')
    assert Settings().trusted_proxies == ["10.0.0.0/8", "192.0.2.1", "::1"]
    with pytest.raises(ValidationError, match=r"10\.0\.0\.300"):
        Settings(trusted_proxies=["10.0.0.300"])


async def test_forwarded_for_is_ignored_without_trusted_proxies(live_server_factory):
    """Even from loopback: every caller here is the TCP peer, whatever header it sends."""
    with live_server_factory(trusted_proxies=[], rate_anonymous_per_minute=2) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            codes = [await anonymous(client, f"203.0.113.{n}") for n in range(3)]
    assert codes == ["ok", "ok", "RATE_LIMITED"]


async def test_forwarded_for_is_walked_from_the_right_past_trusted_proxies(
    live_server_factory, make_tenant
):
    trusted = ["127.0.0.1", "10.0.0.0/8"]  # the load balancer (us) and an inner proxy range
    with live_server_factory(trusted_proxies=trusted, rate_anonymous_per_minute=2) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            # The client 198.51.100.7, behind the inner proxy 10.1.2.3; what it wrote itself
            # in the header (left of its own address) is not believed.
            spoofed = ["1.1.1.1, 198.51.100.7, 10.1.2.3", "2.2.2.2, 198.51.100.7", "198.51.100.7"]
            codes = [await anonymous(client, f) for f in spoofed]
            assert codes == ["ok", "ok", "RATE_LIMITED"]  # one client, one bucket
            # Another client behind the same balancer has its own bucket.
            assert await anonymous(client, "198.51.100.8, 10.9.9.9") == "ok"
            # Only trusted proxies in the chain: the left-most address is the client.
            assert await anonymous(client, "10.4.4.4, 10.5.5.5") == "ok"
            # The audit log records the same address.
            tenant = await make_tenant()
            resp = await client.post(
                "/graphql",
                json={
                    "query": 'mutation { createProject(input: {name: "Via LB"}) { __typename } }'
                },
                headers=auth_headers(tenant.slug) | {"X-Forwarded-For": "6.6.6.6, 198.51.100.9"},
            )
            assert "errors" not in resp.json(), resp.text
            res = await gql(client, "{ auditLog(first: 5) { action actorIp } }", tenant=tenant.slug)
            ips = {e["actorIp"] for e in res["data"]["auditLog"] if e["action"] == "createProject"}
            assert ips == {"198.51.100.9"}, res
