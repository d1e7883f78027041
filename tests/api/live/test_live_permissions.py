"""Every subscription field's declared permission holds over the WebSocket: a member whose
roles grant nothing is refused each one with FORBIDDEN naming the permission (and keeps the
connection); an anonymous caller never gets past connection_init."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed

from api.graphql.schema import build_schema
from tests.api.identity.helpers import is_catalogue_class, operation, root_fields
from tests.api.live.helpers import live


async def _raw(ws) -> dict:
    """The next message, pongs included, skipping the server's keep-alive pings."""
    while True:
        msg = json.loads(await asyncio.wait_for(ws.ws.recv(), 5))
        if msg != {"type": "ping"}:
            return msg


@pytest.fixture(scope="module")
def schema(settings):
    return build_schema(settings)


async def test_every_subscription_refuses_a_roleless_member(
    live_server, make_tenant, member, schema
):
    tenant = await make_tenant()
    _, roleless = await member(tenant, [])
    fields = [(n, f) for t, n, f in root_fields(schema) if t == "Subscription"]
    assert len(fields) >= 3
    guarded = [
        (n, f) for n, f in fields if any(is_catalogue_class(c) for c in f.permission_classes)
    ]
    assert len(guarded) >= 3
    async with live(live_server, tenant.slug, roleless) as ws:
        for name, field in fields:
            sid = await ws.subscribe(operation(schema, "Subscription", name))
            await ws.ws.send(json.dumps({"type": "ping"}))
            msg = await _raw(ws)
            catalogue = [c for c in field.permission_classes if is_catalogue_class(c)]
            if not catalogue:  # any signed-in member (their own inbox): accepted
                assert msg == {"type": "pong"}, (name, msg)
                continue
            assert msg["type"] == "error" and msg["id"] == sid, msg
            [error] = msg["payload"]
            assert error["extensions"]["code"] == "FORBIDDEN", msg
            assert catalogue[0].permission in error["message"], msg
            assert await _raw(ws) == {"type": "pong"}
        # Still connected: the socket answers a ping.
        await ws.ws.send(json.dumps({"type": "ping"}))
        assert await _raw(ws) == {"type": "pong"}


async def test_anonymous_connection_is_closed_at_init(live_server, make_tenant):
    tenant = await make_tenant()
    async with live(live_server, tenant.slug, None, ack=False) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 4403


async def test_socket_is_closed_when_its_access_token_expires(live_server_factory, make_tenant):
    """The keep-alive tick closes a socket whose token expired (4403): a signed-out caller's
    open subscriptions end within a token's lifetime. Other sockets keep their pings."""
    tenant = await make_tenant()
    with live_server_factory(live_keepalive=0.2, live_relay_in_process=False) as server:
        hub = server.server.config.app.state.hub
        async with live(server, tenant.slug) as old:
            [conn] = hub.connections
            assert conn.expires_at > time.time() + 60  # the token's own expiry
            conn.expires_at = time.time() - 1  # as if it had run out
            async with live(server, tenant.slug) as fresh:
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(old.ws.recv(), 5)  # pings, then the close
                assert closed.value.rcvd.code == 4403
                assert "expired" in closed.value.rcvd.reason
                msg = json.loads(await asyncio.wait_for(fresh.ws.recv(), 5))
                assert msg == {"type": "ping"}
                assert len(hub.connections) == 1
