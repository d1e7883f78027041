"""Every subscription field's declared permission holds over the WebSocket: a member whose
roles grant nothing is refused each one with FORBIDDEN naming the permission (and keeps the
connection); an anonymous caller never gets past connection_init."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from api.graphql.schema import build_schema
from tests.api.identity.test_permissions import is_catalogue_class, operation, root_fields
from tests.api.live.helpers import live


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
    async with live(live_server, tenant.slug, roleless) as ws:
        for name, field in fields:
            [cls] = [c for c in field.permission_classes if is_catalogue_class(c)]
            sid = await ws.subscribe(operation(schema, "Subscription", name))
            msg = await ws.recv()
            assert msg["type"] == "error" and msg["id"] == sid, msg
            [error] = msg["payload"]
            assert error["extensions"]["code"] == "FORBIDDEN", msg
            assert cls.permission in error["message"], msg
        # Still connected: the socket answers a ping.
        await ws.ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.ws.recv(), 5)) == {"type": "pong"}


async def test_anonymous_connection_is_closed_at_init(live_server, make_tenant):
    tenant = await make_tenant()
    async with live(live_server, tenant.slug, None, ack=False) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 4403
