"""Units through GraphQL: creation, holds and reservations, status, the timeline."""

from __future__ import annotations

from tests.api.unit.helpers import (
    CHANGE_STATUS,
    HOLD_UNIT,
    RESERVE_UNIT,
    UNIT_QUERY,
    inventory,
    ok,
)
from tests.conftest import gql


async def test_unit_life_from_launch_to_delivery(client, make_tenant, member):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    unit = inv["units"][0]
    assert unit["status"] == "AVAILABLE" and unit["standardStatus"] == "ACTIVE"
    assert unit["listPrice"] == {
        "minorUnits": 300_000_000,
        "currency": "CNY",
        "amount": "3000000.00",
    }
    assert unit["pricePerM2"]["minorUnits"] == round(300_000_000 / 89.5)

    _, agent = await member(tenant, ["agent"])
    res = await gql(
        client,
        HOLD_UNIT,
        {"input": {"unitId": unit["id"], "minutes": 10}},
        tenant=tenant.slug,
        token=agent,
    )
    held = ok(res, "holdUnit", "UnitPayload")["unit"]
    assert (held["status"], held["standardStatus"]) == ("ON_HOLD", "HOLD")
    res = await gql(
        client, RESERVE_UNIT, {"input": {"unitId": unit["id"]}}, tenant=tenant.slug, token=agent
    )
    reserved = ok(res, "reserveUnit", "UnitPayload")
    assert reserved["unit"]["standardStatus"] == "ACTIVE_UNDER_CONTRACT"
    for status in ("SUBSCRIBED", "CONTRACTED", "SOLD", "DELIVERED"):
        res = await gql(
            client,
            CHANGE_STATUS,
            {"input": {"unitId": unit["id"], "status": status}},
            tenant=tenant.slug,
        )
        assert ok(res, "changeUnitStatus", "UnitPayload")["unit"]["status"] == status
    res = await gql(client, UNIT_QUERY, {"id": unit["id"]}, tenant=tenant.slug)
    timeline = res["data"]["unit"]["timeline"]
    assert [(e["kind"], e["toStatus"]) for e in timeline] == [
        ("created", "AVAILABLE"),
        ("hold", "ON_HOLD"),
        ("status", "RESERVED"),
        ("status", "SUBSCRIBED"),
        ("status", "CONTRACTED"),
        ("status", "SOLD"),
        ("status", "DELIVERED"),
    ]
    # a delivered unit goes nowhere through the status machine
    res = await gql(
        client,
        CHANGE_STATUS,
        {"input": {"unitId": unit["id"], "status": "AVAILABLE"}},
        tenant=tenant.slug,
    )
    assert res["data"]["changeUnitStatus"]["code"] == "CONFLICT"
