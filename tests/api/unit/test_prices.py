"""Price adjustments by rule through GraphQL: the change kinds, rounding, approval of large
decreases, the tenant's discount limit, permissions, concurrency and tenant isolation."""

from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Decimal

from tests.api.helpers import create_building, create_project, typed_denial
from tests.api.unit.helpers import (
    ADJUST_PRICES,
    DECIDE_ADJUSTMENT,
    HOLD_UNIT,
    adjust,
    applied,
    create_units,
    ok,
    reserve,
    status_to,
)
from tests.conftest import gql

UNITS_WITH_PRICES = """
query($filter: UnitFilter, $after: String) {
  units(filter: $filter, first: 25, after: $after) {  # 100 with histories costs too much
    edges { node {
      id number floor status version grossArea building { id }
      listPrice { minorUnits } pricePerM2 { minorUnits }
      priceHistory { oldPrice { minorUnits } newPrice { minorUnits } reason }
      timeline { kind oldPrice { minorUnits } newPrice { minorUnits } reason refId actorId }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

PRICE_ADJUSTMENTS = """
query($projectId: ID, $status: String) {
  priceAdjustments(projectId: $projectId, status: $status) {
    id projectId status unitCount maxDiscountPct reason requestedBy decidedBy
    lines { unitId oldPrice newPrice }
  }
}
"""

UPDATE_SETTINGS = """
mutation($changes: [SettingChange!]!) {
  updateTenantSettings(changes: $changes) {
    __typename
    ... on TenantSettingsPayload { settings { key value default } }
    ... on UserError { code message field }
  }
}
"""

TENANT_SETTINGS = "{ tenantSettings { key value default } }"
ME = "{ me { account { id } } }"
MAX_DISCOUNT = "inventory.max_discount_pct"
GROSS = "89.50"


# ---------------------------------------------------------------- helpers


def percent_price(old: int, percent: int | str) -> int:
    """old * (1 + percent/100), rounded to a whole yuan half up, in integer arithmetic (an
    independent computation of what the service does with Decimal)."""
    num = old * (10_000 + int(Decimal(percent) * 100))  # in 1/10000 of a minor unit
    sign = 1 if num >= 0 else -1
    return sign * ((abs(num) + 500_000) // 1_000_000) * 100


def per_m2(price: int, gross: str = GROSS) -> int:
    return int((Decimal(price) / Decimal(gross)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


async def decide(client, slug: str, adj_id: str, approve: bool, token=None, note="") -> dict:
    kw = {} if token is None else {"token": token}
    variables = {"input": {"id": adj_id, "approve": approve, "note": note}}
    res = await gql(client, DECIDE_ADJUSTMENT, variables, tenant=slug, **kw)
    assert "errors" not in res, res
    return res["data"]["decidePriceAdjustment"]


def user_error(payload: dict, typename: str, code: str, field: str | None) -> dict:
    assert (payload["__typename"], payload["code"], payload["field"]) == (typename, code, field), (
        payload
    )
    assert payload["message"], payload
    return payload


async def units_of(client, slug: str, project_id: str) -> dict[str, dict]:
    """Every unit of the project (as the admin sees it), by id, with prices and history."""
    out, after = {}, None
    while True:
        variables = {"filter": {"projectIds": [project_id]}, "after": after}
        res = await gql(client, UNITS_WITH_PRICES, variables, tenant=slug)
        assert "errors" not in res, res
        conn = res["data"]["units"]
        out.update({e["node"]["id"]: e["node"] for e in conn["edges"]})
        if not conn["pageInfo"]["hasNextPage"]:
            return out
        after = conn["pageInfo"]["endCursor"]


def prices(units: dict[str, dict]) -> dict[str, int | None]:
    return {
        uid: u["listPrice"]["minorUnits"] if u["listPrice"] else None for uid, u in units.items()
    }


def price_events(unit: dict) -> list[dict]:
    return [e for e in unit["timeline"] if e["kind"] == "price"]


async def adjustments(client, slug: str, token=None, **variables) -> list[dict]:
    kw = {} if token is None else {"token": token}
    res = await gql(client, PRICE_ADJUSTMENTS, variables, tenant=slug, **kw)
    assert "errors" not in res, res
    return res["data"]["priceAdjustments"]


async def setting_value(client, slug: str, key: str = MAX_DISCOUNT) -> str:
    res = await gql(client, TENANT_SETTINGS, tenant=slug)
    assert "errors" not in res, res
    return {s["key"]: s["value"] for s in res["data"]["tenantSettings"]}[key]


async def small_project(client, slug: str, prices_: list[int], name="Harbour One") -> dict:
    """One building, one unit per price (floor 1, 2, ...), all available, 89.50 m² each."""
    project = await create_project(client, slug, name, district="Nanshan")
    building = await create_building(client, slug, project["id"], "B1", floors=30)
    specs = [
        {
            "buildingId": building["id"],
            "floor": i + 1,
            "number": f"{i + 1}01",
            "grossArea": GROSS,
            "listPrice": p,
            "status": "AVAILABLE",
        }
        for i, p in enumerate(prices_)
    ]
    units = await create_units(client, slug, specs)
    return {"project": project, "building": building, "ids": [u["id"] for u in units]}


# ---------------------------------------------------------------- the example


def _example_price(building: int, floor: int, slot: int) -> int:
    # two prices on the boundary of rounding to a whole yuan, in the range of the rule:
    # 300,005,000 * 1.03 = 309,005,150 (exactly half a yuan: up); 300,007,233 * 1.03 =
    # 309,007,449.99 (just under half: down)
    if (building, floor, slot) == (2, 10, 1):
        return 300_005_000
    if (building, floor, slot) == (2, 20, 2):
        return 300_007_233
    return 250_000_000 + building * 7_000_000 + floor * 1_234_567 + slot * 10_001


async def test_plus_three_percent_on_floors_10_to_20_of_building_2(client, make_tenant):
    tenant = await make_tenant()
    slug = tenant.slug
    project = await create_project(client, slug, "Riverside", district="Futian")
    b1 = await create_building(client, slug, project["id"], "Building 1", floors=25)
    b2 = await create_building(client, slug, project["id"], "Building 2", floors=25)
    specs, where = [], {}
    for bno, b in ((1, b1), (2, b2)):
        for floor in range(1, 26):
            for slot in (1, 2):
                specs.append(
                    {
                        "buildingId": b["id"],
                        "floor": floor,
                        "number": f"{floor}{slot:02d}",
                        "grossArea": GROSS,
                        "listPrice": _example_price(bno, floor, slot),
                        "status": "AVAILABLE",
                    }
                )
    created = await create_units(client, slug, specs)
    for spec, unit in zip(specs, created, strict=True):
        where[unit["id"]] = (1 if spec["buildingId"] == b1["id"] else 2, spec["floor"])
    before = await units_of(client, slug, project["id"])
    assert len(before) == 100

    adj = await applied(
        client,
        slug,
        projectId=project["id"],
        buildingIds=[b2["id"]],
        floorMin=10,
        floorMax=20,
        percent="3",
        reason="+3% on floors 10-20 of building 2",
    )
    assert adj["status"] == "applied"
    assert adj["unitCount"] == 22  # 11 floors x 2 units
    assert Decimal(adj["maxDiscountPct"]) == 0
    assert adj["reason"] == "+3% on floors 10-20 of building 2"
    targets = {uid for uid, (b, f) in where.items() if b == 2 and 10 <= f <= 20}
    old_prices = prices(before)
    assert {ln["unitId"]: (ln["oldPrice"], ln["newPrice"]) for ln in adj["lines"]} == {
        uid: (old_prices[uid], percent_price(old_prices[uid], 3)) for uid in targets
    }

    after = await units_of(client, slug, project["id"])
    for uid, unit in after.items():
        old = before[uid]
        if uid not in targets:
            # untouched: building 1 (all floors, 10-20 included) and building 2 outside 10-20
            assert unit["listPrice"] == old["listPrice"], (where[uid], unit)
            assert unit["pricePerM2"] == old["pricePerM2"]
            assert unit["version"] == old["version"]
            assert price_events(unit) == [] and unit["priceHistory"] == old["priceHistory"]
            continue
        assert unit["building"]["id"] == b2["id"] and 10 <= unit["floor"] <= 20
        old_price, new_price = old["listPrice"]["minorUnits"], unit["listPrice"]["minorUnits"]
        assert new_price == percent_price(old_price, 3) and new_price % 100 == 0
        assert unit["pricePerM2"]["minorUnits"] == per_m2(new_price)
        assert unit["version"] == old["version"] + 1
        assert unit["priceHistory"] == [
            {"oldPrice": None, "newPrice": {"minorUnits": old_price}, "reason": ""},
            {
                "oldPrice": {"minorUnits": old_price},
                "newPrice": {"minorUnits": new_price},
                "reason": "+3% on floors 10-20 of building 2",
            },
        ]
        [event] = price_events(unit)
        assert event["oldPrice"] == {"minorUnits": old_price}
        assert event["newPrice"] == {"minorUnits": new_price}
        assert event["reason"] == "+3% on floors 10-20 of building 2"
        assert event["refId"] == adj["id"]
        assert unit["timeline"][-1] == event

    # the two rounding boundaries, spelled out
    by_place = {(where[uid], after[uid]["number"]): after[uid] for uid in after}
    assert by_place[((2, 10), "1001")]["listPrice"]["minorUnits"] == 309_005_200
    assert by_place[((2, 20), "2002")]["listPrice"]["minorUnits"] == 309_007_400


# ---------------------------------------------------------------- change kinds and validation


async def test_each_change_kind(client, make_tenant):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await small_project(client, slug, [300_000_000] * 6)
    pid, ids = inv["project"]["id"], inv["ids"]

    async def one(unit_id: str, **change) -> int:
        adj = await applied(client, slug, projectId=pid, unitIds=[unit_id], **change)
        assert (adj["status"], adj["unitCount"]) == ("applied", 1), adj
        [line] = adj["lines"]
        assert line["unitId"] == unit_id
        return line["newPrice"]

    assert await one(ids[0], percent="-2.5") == 292_500_000
    assert await one(ids[1], amount=-1_234_567) == 298_765_433  # exact, not rounded
    assert await one(ids[2], amount=987_654_321) == 1_287_654_321
    # 3,456,789 x 89.50 = 309,382,615.5 minor units -> 3,093,826.16 yuan -> 3,093,826 yuan
    assert await one(ids[3], pricePerM2=3_456_789) == 309_382_600
    assert await one(ids[4], price=311_111_111) == 311_111_111  # exact
    assert await one(ids[5], percent="100") == 600_000_000  # the upper bound is allowed

    units = await units_of(client, slug, pid)
    expected = [292_500_000, 298_765_433, 1_287_654_321, 309_382_600, 311_111_111, 600_000_000]
    for uid, price in zip(ids, expected, strict=True):
        assert units[uid]["listPrice"]["minorUnits"] == price
        assert units[uid]["pricePerM2"]["minorUnits"] == per_m2(price)
        assert [e["newPrice"]["minorUnits"] for e in price_events(units[uid])] == [price]


async def test_invalid_rules_are_refused_and_change_nothing(client, make_tenant):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await small_project(client, slug, [300_000_000, 310_000_000, 320_000_000])
    pid, ids = inv["project"]["id"], inv["ids"]
    before = await units_of(client, slug, pid)

    async def refused(field: str, **fields) -> None:
        payload = await adjust(client, slug, projectId=pid, **fields)
        user_error(payload, "ValidationError", "BAD_USER_INPUT", field)

    await refused("change")  # no change at all
    await refused("change", percent="3", amount=100)
    await refused("change", pricePerM2=3_000_000, price=300_000_000)
    for bad in ("-91", "100.01", "-1000"):
        await refused("percent", percent=bad)
    for bad in ("NaN", "Infinity"):  # no Decimal at all: refused with the request
        fields = {"projectId": pid, "percent": bad, "reason": "market update"}
        res = await gql(client, ADJUST_PRICES, {"input": fields}, tenant=slug)
        [error] = res["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and "percent" in error["message"]
    await refused("rule", floorMin=26, percent="1")  # floors nobody lives on
    await refused("rule", floorMin=2, floorMax=2, buildingIds=[pid], percent="1")
    await refused("floorMin", floorMin=3, floorMax=2, percent="1")
    await refused("change", amount=-300_000_000)  # a price of 0 is no price
    await refused("reason", reason="  ", percent="1")
    await refused("reason", reason="x" * 501, percent="1")
    await refused("unitIds", unitIds=["not-an-id"], percent="1")
    await refused("price", price=10**13 + 1)
    await refused("pricePerM2", pricePerM2=-5)
    payload = await adjust(client, slug, projectId="not-an-id", percent="1")
    user_error(payload, "NotFoundError", "NOT_FOUND", "projectId")

    # all sold: nothing on the market to reprice
    for uid in ids:
        await reserve(client, slug, uid)
        await status_to(client, slug, uid, "SUBSCRIBED", "CONTRACTED", "SOLD")
    await refused("rule", percent="1")
    await refused("rule", unitIds=ids, price=1_000_000)

    after = await units_of(client, slug, pid)
    assert prices(after) == prices(before)
    assert all(price_events(u) == [] for u in after.values())
    assert await adjustments(client, slug) == []


async def test_sold_and_reserved_units_are_never_repriced(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await small_project(client, slug, [300_000_000] * 4)
    pid, (reserved, sold, held, available) = inv["project"]["id"], inv["ids"]
    planned_priced, planned_unpriced = await create_units(
        client,
        slug,
        [
            {
                "buildingId": inv["building"]["id"],
                "floor": 9,
                "number": "901",
                "grossArea": GROSS,
                "listPrice": 300_000_000,
            },
            {"buildingId": inv["building"]["id"], "floor": 9, "number": "902", "grossArea": GROSS},
        ],
    )
    await reserve(client, slug, reserved)
    await reserve(client, slug, sold)
    await status_to(client, slug, sold, "SUBSCRIBED", "CONTRACTED", "SOLD")
    _, agent = await member(tenant, ["agent"])
    res = await gql(client, HOLD_UNIT, {"input": {"unitId": held}}, tenant=slug, token=agent)
    ok(res, "holdUnit", "UnitPayload")

    adj = await applied(client, slug, projectId=pid, amount=1_000_000)
    repriced = {held, available, planned_priced["id"]}
    assert adj["unitCount"] == 3
    assert {ln["unitId"] for ln in adj["lines"]} == repriced
    units = await units_of(client, slug, pid)
    for uid in repriced:
        assert units[uid]["listPrice"]["minorUnits"] == 301_000_000
    for uid in (reserved, sold):
        assert units[uid]["listPrice"]["minorUnits"] == 300_000_000
        assert price_events(units[uid]) == []
    assert units[planned_unpriced["id"]]["listPrice"] is None
    assert (units[reserved]["status"], units[sold]["status"]) == ("RESERVED", "SOLD")

    payload = await adjust(client, slug, projectId=pid, unitIds=[reserved, sold], percent="5")
    user_error(payload, "ValidationError", "BAD_USER_INPUT", "rule")


# ---------------------------------------------------------------- approval


async def test_large_decrease_waits_for_another_approver(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    start = [300_000_000, 300_000_000, 400_000_000, 410_000_000, 500_000_000, 510_000_000]
    inv = await small_project(client, slug, start)
    pid, ids = inv["project"]["id"], inv["ids"]
    manager_id, manager = await member(tenant, ["manager"])
    _, manager2 = await member(tenant, ["manager"])
    _, agent = await member(tenant, ["agent"])
    me = await gql(client, ME, tenant=slug)
    admin_id = me["data"]["me"]["account"]["id"]

    # within the default limit (3%): applied at once; exactly 3% is still within it
    small = await applied(client, slug, projectId=pid, unitIds=[ids[0]], percent="-2")
    assert small["status"] == "applied"
    assert Decimal(small["maxDiscountPct"]) == Decimal("2")
    edge = await applied(client, slug, projectId=pid, unitIds=[ids[1]], percent="-3")
    assert (edge["status"], Decimal(edge["maxDiscountPct"])) == ("applied", Decimal("3"))

    # beyond it: waits, prices untouched
    before = prices(await units_of(client, slug, pid))
    assert before[ids[0]] == 294_000_000 and before[ids[1]] == 291_000_000
    big = await applied(
        client, slug, projectId=pid, unitIds=ids[2:4], percent="-5", reason="spring promotion"
    )
    assert (big["status"], big["maxDiscountPct"], big["unitCount"]) == (
        "pending_approval",
        "5.00",
        2,
    )
    assert big["requestedBy"] == admin_id and big["decidedBy"] is None
    reviewed = {ln["unitId"]: ln["newPrice"] for ln in big["lines"]}
    assert reviewed == {ids[2]: 380_000_000, ids[3]: 389_500_000}
    assert prices(await units_of(client, slug, pid)) == before

    # the requester cannot decide, even as admin; an agent has no approve permission
    denied = await decide(client, slug, big["id"], True)
    user_error(denied, "PermissionDeniedError", "FORBIDDEN", None)
    res = await gql(
        client,
        DECIDE_ADJUSTMENT,
        {"input": {"id": big["id"], "approve": True}},
        tenant=slug,
        token=agent,
    )
    typed_denial(res, "decidePriceAdjustment", "FORBIDDEN")
    assert prices(await units_of(client, slug, pid)) == before

    done = await decide(client, slug, big["id"], True, token=manager, note="ok for spring")
    assert done["__typename"] == "PriceAdjustmentPayload", done
    assert (done["adjustment"]["status"], done["adjustment"]["decidedBy"]) == (
        "applied",
        str(manager_id),
    )
    units = await units_of(client, slug, pid)
    assert prices(units) == {**before, **reviewed}
    for uid in ids[2:4]:
        [event] = price_events(units[uid])
        assert (event["oldPrice"]["minorUnits"], event["newPrice"]["minorUnits"]) == (
            before[uid],
            reviewed[uid],
        )
        assert (event["reason"], event["refId"], event["actorId"]) == (
            "spring promotion",
            big["id"],
            str(manager_id),
        )

    # decided twice: conflict, by anyone
    for token in (manager, manager2):
        again = await decide(client, slug, big["id"], False, token=token)
        user_error(again, "ConflictError", "CONFLICT", "id")
    assert prices(await units_of(client, slug, pid)) == {**before, **reviewed}

    # a rejected one leaves prices alone and cannot be approved afterwards
    before = prices(await units_of(client, slug, pid))
    cut = await applied(client, slug, projectId=pid, unitIds=ids[4:], percent="-8")
    assert cut["status"] == "pending_approval"
    rejected = await decide(client, slug, cut["id"], False, token=manager2, note="too deep")
    assert rejected["adjustment"]["status"] == "rejected"
    assert rejected["adjustment"]["decisionNote"] == "too deep"
    late = await decide(client, slug, cut["id"], True, token=manager)
    user_error(late, "ConflictError", "CONFLICT", "id")
    units = await units_of(client, slug, pid)
    assert prices(units) == before
    assert all(price_events(units[uid]) == [] for uid in ids[4:])

    # unknown or malformed ids
    for bad in ("0190e0c0-0000-7000-8000-000000000000", "nope"):
        missing = await decide(client, slug, bad, True, token=manager)
        user_error(missing, "NotFoundError", "NOT_FOUND", "id")


async def test_requester_manager_is_approved_by_admin(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await small_project(client, slug, [300_000_000])
    pid, ids = inv["project"]["id"], inv["ids"]
    manager_id, manager = await member(tenant, ["manager"])
    adj = await applied(client, slug, token=manager, projectId=pid, percent="-10")
    assert (adj["status"], adj["requestedBy"]) == ("pending_approval", str(manager_id))
    own = await decide(client, slug, adj["id"], True, token=manager)
    user_error(own, "PermissionDeniedError", "FORBIDDEN", None)
    done = await decide(client, slug, adj["id"], True)  # the admin
    assert done["adjustment"]["status"] == "applied"
    units = await units_of(client, slug, pid)
    assert units[ids[0]]["listPrice"]["minorUnits"] == 270_000_000


async def test_approval_of_a_stale_adjustment_applies_nothing(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await small_project(client, slug, [300_000_000, 310_000_000, 320_000_000])
    pid, ids = inv["project"]["id"], inv["ids"]
    _, manager = await member(tenant, ["manager"])

    cut = await applied(client, slug, projectId=pid, unitIds=ids[:2], percent="-10")
    assert cut["status"] == "pending_approval"
    bump = await applied(client, slug, projectId=pid, unitIds=[ids[0]], percent="1")
    assert bump["status"] == "applied"
    before = await units_of(client, slug, pid)
    assert prices(before)[ids[0]] == 303_000_000

    res = await decide(client, slug, cut["id"], True, token=manager, note="go")
    assert res["adjustment"]["status"] == "stale", res
    assert "1 unit(s) changed" in res["adjustment"]["decisionNote"]
    after = await units_of(client, slug, pid)
    assert prices(after) == prices(before)
    assert [len(price_events(after[uid])) for uid in ids] == [1, 0, 0]
    again = await decide(client, slug, cut["id"], True, token=manager)
    user_error(again, "ConflictError", "CONFLICT", "id")

    # a unit that left the market since the request makes it stale too
    cut = await applied(client, slug, projectId=pid, unitIds=ids[1:], percent="-10")
    assert cut["status"] == "pending_approval"
    await reserve(client, slug, ids[2])
    res = await decide(client, slug, cut["id"], True, token=manager)
    assert res["adjustment"]["status"] == "stale", res
    assert prices(await units_of(client, slug, pid)) == prices(before)


async def test_two_approvers_at_once_exactly_one_applies(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await small_project(client, slug, [300_000_000, 310_000_000])
    pid, ids = inv["project"]["id"], inv["ids"]
    _, m1 = await member(tenant, ["manager"])
    _, m2 = await member(tenant, ["manager"])
    cut = await applied(client, slug, projectId=pid, percent="-10")
    results = await asyncio.gather(
        decide(client, slug, cut["id"], True, token=m1),
        decide(client, slug, cut["id"], True, token=m2),
    )
    assert sorted(r["__typename"] for r in results) == ["ConflictError", "PriceAdjustmentPayload"]
    units = await units_of(client, slug, pid)
    assert [units[uid]["listPrice"]["minorUnits"] for uid in ids] == [270_000_000, 279_000_000]
    assert [len(price_events(units[uid])) for uid in ids] == [1, 1]


async def test_tenant_discount_limit_setting(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await small_project(client, slug, [300_000_000, 300_000_000])
    pid, ids = inv["project"]["id"], inv["ids"]
    assert await setting_value(client, slug) == "3"

    async def bad(changes: list[dict], field: str) -> None:
        res = await gql(client, UPDATE_SETTINGS, {"changes": changes}, tenant=slug)
        assert "errors" not in res, res
        user_error(res["data"]["updateTenantSettings"], "ValidationError", "BAD_USER_INPUT", field)

    await bad([{"key": "inventory.no_such_knob", "value": "1"}], "key")
    for value in ("abc", "", "NaN", "Infinity", "-1", "100.5", "1e9"):
        await bad([{"key": MAX_DISCOUNT, "value": value}], MAX_DISCOUNT)
    # all or none: a valid change next to an invalid one is not stored
    await bad([{"key": MAX_DISCOUNT, "value": "10"}, {"key": "x.y", "value": "1"}], "key")
    hold = "inventory.hold_minutes"
    await bad([{"key": MAX_DISCOUNT, "value": "10"}, {"key": hold, "value": "1"}], hold)
    assert await setting_value(client, slug) == "3"
    # a manager may not change settings
    _, manager = await member(tenant, ["manager"])
    res = await gql(
        client,
        UPDATE_SETTINGS,
        {"changes": [{"key": MAX_DISCOUNT, "value": "50"}]},
        tenant=slug,
        token=manager,
    )
    typed_denial(res, "updateTenantSettings", "FORBIDDEN")
    assert await setting_value(client, slug) == "3"

    waiting = await applied(client, slug, projectId=pid, unitIds=[ids[0]], percent="-5")
    assert waiting["status"] == "pending_approval"

    res = await gql(
        client, UPDATE_SETTINGS, {"changes": [{"key": MAX_DISCOUNT, "value": "10"}]}, tenant=slug
    )
    payload = ok(res, "updateTenantSettings", "TenantSettingsPayload")
    assert {s["key"]: (s["value"], s["default"]) for s in payload["settings"]}[MAX_DISCOUNT] == (
        "10",
        "3",
    )
    assert await setting_value(client, slug) == "10"

    direct = await applied(client, slug, projectId=pid, unitIds=[ids[1]], percent="-5")
    assert (direct["status"], direct["maxDiscountPct"]) == ("applied", "5.00")
    still = await applied(client, slug, projectId=pid, unitIds=[ids[1]], percent="-10.5")
    assert still["status"] == "pending_approval"
    units = await units_of(client, slug, pid)
    assert units[ids[1]]["listPrice"]["minorUnits"] == 285_000_000
    assert units[ids[0]]["listPrice"]["minorUnits"] == 300_000_000  # the earlier one still waits

    # a bad change after a good one leaves the good value in place
    await bad([{"key": MAX_DISCOUNT, "value": "101"}], MAX_DISCOUNT)
    assert await setting_value(client, slug) == "10"


# ---------------------------------------------------------------- permissions and listing


async def test_permissions_and_listing(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await small_project(client, slug, [300_000_000, 310_000_000, 320_000_000])
    other = await small_project(client, slug, [200_000_000], name="Other Park")
    pid, ids = inv["project"]["id"], inv["ids"]
    _, agent = await member(tenant, ["agent"])
    _, manager = await member(tenant, ["manager"])

    res = await gql(
        client,
        ADJUST_PRICES,
        {"input": {"projectId": pid, "reason": "x", "percent": "5"}},
        tenant=slug,
        token=agent,
    )
    typed_denial(res, "adjustPrices", "FORBIDDEN")
    res = await gql(client, PRICE_ADJUSTMENTS, {}, tenant=slug, token=agent)
    assert res["data"] is None or res["data"].get("priceAdjustments") is None, res
    assert [e["extensions"]["code"] for e in res["errors"]] == ["FORBIDDEN"]
    assert await adjustments(client, slug) == []

    up = await applied(client, slug, token=manager, projectId=pid, unitIds=[ids[0]], percent="1")
    down = await applied(
        client, slug, token=manager, projectId=pid, unitIds=[ids[1]], percent="-20"
    )
    amount = await applied(client, slug, projectId=other["project"]["id"], amount=-100)
    assert (up["status"], down["status"], amount["status"]) == (
        "applied",
        "pending_approval",
        "applied",
    )

    listed = await adjustments(client, slug, token=manager)
    assert [a["id"] for a in listed] == [amount["id"], down["id"], up["id"]]  # newest first
    by_id = {a["id"]: a for a in listed}
    assert by_id[down["id"]]["lines"] == [
        {"unitId": ids[1], "oldPrice": 310_000_000, "newPrice": 248_000_000}
    ]
    assert by_id[down["id"]]["maxDiscountPct"] == "20.00"
    assert by_id[up["id"]]["projectId"] == pid
    pending = await adjustments(client, slug, token=manager, status="pending_approval")
    assert [a["id"] for a in pending] == [down["id"]]
    done = await adjustments(client, slug, token=manager, status="applied")
    assert {a["id"] for a in done} == {up["id"], amount["id"]}
    mine = await adjustments(client, slug, token=manager, projectId=pid, status="applied")
    assert [a["id"] for a in mine] == [up["id"]]
    assert await adjustments(client, slug, token=manager, status="rejected") == []


# ---------------------------------------------------------------- concurrency


async def test_concurrent_adjustments_lose_no_update(client, make_tenant):
    tenant = await make_tenant()
    slug = tenant.slug
    start = [300_000_000 + i * 1_111_111 for i in range(8)]
    inv = await small_project(client, slug, start)
    pid, ids = inv["project"]["id"], inv["ids"]
    # A: +2% on floors 1-6; B: +1,000,000 on floors 3-8. Floors 3-6 get both.
    rule_a = {"projectId": pid, "floorMax": 6, "percent": "2", "reason": "A"}
    rule_b = {"projectId": pid, "floorMin": 3, "amount": 1_000_000, "reason": "B"}
    a, b = await asyncio.gather(applied(client, slug, **rule_a), applied(client, slug, **rule_b))
    assert (a["status"], a["unitCount"], b["status"], b["unitCount"]) == (
        "applied",
        6,
        "applied",
        6,
    )

    units = await units_of(client, slug, pid)
    orders = set()
    for i, uid in enumerate(ids):
        old, unit = start[i], units[uid]
        events = price_events(unit)
        final = unit["listPrice"]["minorUnits"]
        floor = i + 1
        if floor < 3:
            assert final == percent_price(old, 2) and len(events) == 1
            continue
        if floor > 6:
            assert final == old + 1_000_000 and len(events) == 1
            continue
        a_then_b = percent_price(old, 2) + 1_000_000
        b_then_a = percent_price(old + 1_000_000, 2)
        assert final in (a_then_b, b_then_a), (floor, final, a_then_b, b_then_a)
        assert len(events) == 2, events
        first, second = events
        assert first["oldPrice"]["minorUnits"] == old
        assert second["oldPrice"] == first["newPrice"]  # the second saw the first's result
        assert second["newPrice"]["minorUnits"] == final
        order = (first["reason"], second["reason"])
        assert order == (("A", "B") if final == a_then_b else ("B", "A")) or a_then_b == b_then_a
        orders.add(order)
        assert unit["version"] == 3
    # one transaction held all overlapping units first: the same order on every unit
    assert len(orders) == 1
    # each adjustment's lines record what it saw
    lines = {ln["unitId"]: ln for ln in a["lines"]}
    for i, uid in enumerate(ids[:6]):
        assert lines[uid]["newPrice"] == percent_price(lines[uid]["oldPrice"], 2)
        assert lines[uid]["oldPrice"] in (start[i], start[i] + 1_000_000)


# ---------------------------------------------------------------- tenant isolation


async def test_tenant_isolation(client, make_tenant):
    ta, tb = await make_tenant(), await make_tenant()
    inv = await small_project(client, ta.slug, [300_000_000, 310_000_000])
    pid, ids = inv["project"]["id"], inv["ids"]
    mine = await applied(client, ta.slug, projectId=pid, percent="-10")
    assert mine["status"] == "pending_approval"

    payload = await adjust(client, tb.slug, projectId=pid, percent="5")
    user_error(payload, "NotFoundError", "NOT_FOUND", "projectId")
    payload = await adjust(client, tb.slug, projectId=pid, unitIds=ids, price=1_000_000)
    user_error(payload, "NotFoundError", "NOT_FOUND", "projectId")
    # B's admin cannot see or decide A's adjustment either
    res = await decide(client, tb.slug, mine["id"], True)
    user_error(res, "NotFoundError", "NOT_FOUND", "id")
    assert await adjustments(client, tb.slug) == []
    assert await adjustments(client, tb.slug, projectId=pid) == []

    assert [a["id"] for a in await adjustments(client, ta.slug)] == [mine["id"]]
    assert prices(await units_of(client, ta.slug, pid)) == dict(
        zip(ids, [300_000_000, 310_000_000], strict=True)
    )


async def test_malformed_project_filter_does_not_list_other_projects(client, make_tenant):
    tenant = await make_tenant()
    inv = await small_project(client, tenant.slug, [300_000_000])
    await applied(client, tenant.slug, projectId=inv["project"]["id"], percent="1")
    res = await gql(client, PRICE_ADJUSTMENTS, {"projectId": "not-an-id"}, tenant=tenant.slug)
    # either refused as bad input, or an empty list: never the adjustments of other projects
    if res.get("errors"):
        assert [e["extensions"]["code"] for e in res["errors"]] == ["BAD_USER_INPUT"], res
    else:
        assert res["data"]["priceAdjustments"] == [], res
