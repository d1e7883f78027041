"""The console's WebSocket names its tenant as ``?tenant=`` (a browser cannot set X-Tenant on
a WebSocket handshake): the tenant middleware reads it for WebSocket requests only."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.api.live.helpers import UNIT_CHANGES, LiveClient, a_building
from tests.conftest import TOKENS


def url(server, tenant: str) -> str:
    return f"{server.ws_url}?tenant={tenant}"


async def test_the_tenant_of_the_query_string_serves_a_websocket(live_server, make_tenant):
    tenant = await make_tenant()
    building = await a_building(live_server, tenant.slug)
    async with connect(url(live_server, tenant.slug), subprotocols=["graphql-transport-ws"]) as ws:
        init = {"authorization": f"Bearer {TOKENS[tenant.slug]}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        client = LiveClient(ws)
        assert await client.recv() == {"type": "connection_ack"}
        # Far ahead of the tenant's head: the first message says to refetch, so the feed is live.
        await client.subscribe(UNIT_CHANGES, {"buildingId": building, "since": 10**12})
        msg = await client.next()
        assert msg["payload"]["data"]["unitChanges"]["__typename"] == "RefetchRequired"


async def test_another_tenants_token_with_the_query_tenant_is_closed_4403(live_server, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    async with connect(url(live_server, b.slug), subprotocols=["graphql-transport-ws"]) as ws:
        init = {"authorization": f"Bearer {TOKENS[a.slug]}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        await ws.wait_closed()
        assert ws.close_code == 4403


@pytest.mark.parametrize("slug", ["no-such-tenant-xyz", "Bad Slug", "a\x00b"])
async def test_an_unknown_or_malformed_query_tenant_is_refused(live_server, slug):
    from urllib.parse import quote

    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"{live_server.ws_url}?tenant={quote(slug)}", subprotocols=["graphql-transport-ws"]
        ):
            pass
    assert refused.value.response.status_code == 404


async def test_the_query_tenant_does_not_count_for_http(live_server, make_tenant):
    tenant = await make_tenant()
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        res = await http.post(
            f"/graphql?tenant={tenant.slug}",
            json={"query": "{ regionalSettings { timeZone } }"},
            headers={"authorization": f"Bearer {TOKENS[tenant.slug]}"},
        )
    # No tenant on an HTTP request (the parameter counts on WebSockets only): refused.
    error = res.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "needs a tenant" in error["message"]
