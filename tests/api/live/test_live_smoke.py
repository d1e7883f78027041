"""A change made over HTTP reaches a WebSocket subscriber of its building (in-process bus)."""

from __future__ import annotations

from tests.api.live.helpers import UNIT_CHANGES, live
from tests.api.unit.helpers import inventory, reserve


async def test_reserve_reaches_building_subscriber(client, live_server, make_tenant):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=2)
    unit = inv["units"][0]
    async with live(live_server, tenant.slug) as ws:
        await ws.subscribe(UNIT_CHANGES, {"buildingId": inv["building"]["id"]})
        await ws.nothing(0.3)
        await reserve(client, tenant.slug, unit["id"])
        msg = await ws.next()
        change = msg["payload"]["data"]["unitChanges"]
        assert change["unitId"] == unit["id"]
        assert change["status"] == "RESERVED" and change["kind"] == "STATUS"
