"""A graphql-transport-ws client for the live tests (the websockets library, real sockets)."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

import httpx
from websockets.asyncio.client import connect

from tests.api.helpers import create_building, create_project
from tests.conftest import TOKENS

UNIT_CHANGES = """
subscription($projectId: ID, $buildingId: ID, $since: Long) {
  unitChanges(projectId: $projectId, buildingId: $buildingId, since: $since) {
    __typename
    ... on UnitChange { seq kind unitId buildingId status standardStatus version
                        listPrice { minorUnits currency } }
    ... on RefetchRequired { seq reason }
  }
}
"""


class LiveClient:
    def __init__(self, ws) -> None:
        self.ws = ws
        self._ids = 0

    async def subscribe(self, query: str, variables: dict | None = None, **payload) -> str:
        self._ids += 1
        sid = str(self._ids)
        body = {"query": query, "variables": variables or {}, **payload}
        await self.ws.send(json.dumps({"id": sid, "type": "subscribe", "payload": body}))
        return sid

    async def complete(self, sid: str) -> None:
        await self.ws.send(json.dumps({"id": sid, "type": "complete"}))

    async def recv(self, timeout: float = 10.0) -> dict:
        """The next message that is not a ping (answered) or pong."""
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if msg["type"] == "ping":
                await self.ws.send('{"type":"pong"}')
                continue
            if msg["type"] != "pong":
                return msg

    async def next(self, timeout: float = 10.0) -> dict:
        msg = await self.recv(timeout)
        assert msg["type"] == "next", msg
        return msg

    async def nothing(self, wait: float = 0.5) -> None:
        """No message (other than pings) arrives within ``wait`` seconds."""
        try:
            msg = await self.recv(wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {msg}")


@asynccontextmanager
async def live(
    server,
    tenant: str | None,
    token: str | None = "admin",
    *,
    init: dict | None = None,
    ack: bool = True,
):
    """A connected, acknowledged client (``token`` "admin": the tenant admin's)."""
    headers = {"X-Tenant": tenant} if tenant else {}
    async with connect(
        server.ws_url,
        subprotocols=["graphql-transport-ws"],
        additional_headers=headers,
        open_timeout=10,
    ) as ws:
        if token == "admin":
            token = TOKENS[tenant]
        payload = (
            init if init is not None else ({"authorization": f"Bearer {token}"} if token else {})
        )
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        client = LiveClient(ws)
        if ack:
            msg = await client.recv()
            assert msg == {"type": "connection_ack"}, msg
        yield client


async def a_building(server, tenant: str) -> str:
    """The id of a new building of ``tenant`` (made over HTTP on ``server``): unitChanges
    refuses one that names nothing (NOT_FOUND)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        project = await create_project(http, tenant, "Live Court")
        return (await create_building(http, tenant, project["id"], "L1"))["id"]
