"""GraphQL documents and factories for the unit tests (real HTTP through the live server)."""

from __future__ import annotations

import httpx

from tests.api.helpers import create_building, create_project
from tests.conftest import gql

UNIT_FIELDS = """
  id number floor grossArea netArea orientation rooms status standardStatus version tags
  holdExpiresAt heldBy listPrice { minorUnits currency amount } pricePerM2 { minorUnits }
"""

CREATE_UNIT_TYPE = """
mutation($input: CreateUnitTypeInput!) {
  createUnitType(input: $input) {
    __typename
    ... on UnitTypePayload { unitType { id name rooms grossArea netArea orientation } }
    ... on UserError { code message field }
  }
}
"""

CREATE_UNITS = (
    "mutation($units: [UnitInput!]!) { createUnits(units: $units) { __typename"
    " ... on UnitsPayload { units {" + UNIT_FIELDS + "} }"
    " ... on UserError { code message field } } }"
)

_UNIT_RESULT = (
    "{ __typename ... on UnitPayload { unit {" + UNIT_FIELDS + "} }"
    " ... on UserError { code message field } }"
)
HOLD_UNIT = "mutation($input: HoldUnitInput!) { holdUnit(input: $input) " + _UNIT_RESULT + " }"
RELEASE_HOLD = "mutation($id: ID!) { releaseUnitHold(unitId: $id) " + _UNIT_RESULT + " }"
RESERVE_UNIT = (
    "mutation($input: ReserveUnitInput!) { reserveUnit(input: $input) " + _UNIT_RESULT + " }"
)
CHANGE_STATUS = (
    "mutation($input: ChangeUnitStatusInput!) { changeUnitStatus(input: $input) "
    + _UNIT_RESULT
    + " }"
)

ADJUST_PRICES = """
mutation($input: AdjustPricesInput!) {
  adjustPrices(input: $input) {
    __typename
    ... on PriceAdjustmentPayload { adjustment { id status unitCount maxDiscountPct reason
      requestedBy decidedBy decisionNote lines { unitId oldPrice newPrice } } }
    ... on UserError { code message field }
  }
}
"""

DECIDE_ADJUSTMENT = """
mutation($input: DecidePriceAdjustmentInput!) {
  decidePriceAdjustment(input: $input) {
    __typename
    ... on PriceAdjustmentPayload { adjustment { id status unitCount decidedBy decisionNote } }
    ... on UserError { code message field }
  }
}
"""

UNIT_QUERY = (
    "query($id: ID!) { unit(id: $id) {" + UNIT_FIELDS + " timeline { kind fromStatus toStatus"
    " oldPrice { minorUnits } newPrice { minorUnits } reason actorId }"
    " priceHistory { oldPrice { minorUnits } newPrice { minorUnits } reason } } }"
)

SEARCH_UNITS = """
query($filter: UnitFilter, $sort: UnitSort, $first: Int, $after: String) {
  units(filter: $filter, sort: $sort, first: $first, after: $after) {
    edges { cursor node { id number floor status listPrice { minorUnits } grossArea rooms
      orientation tags } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def ok(res: dict, field: str, typename: str) -> dict:
    """The payload of a mutation that must have succeeded."""
    assert "errors" not in res, res
    payload = res["data"][field]
    assert payload["__typename"] == typename, payload
    return payload


async def create_units(
    client: httpx.AsyncClient, tenant: str, units: list[dict], token=None
) -> list[dict]:
    kw = {} if token is None else {"token": token}
    res = await gql(client, CREATE_UNITS, {"units": units}, tenant=tenant, **kw)
    return ok(res, "createUnits", "UnitsPayload")["units"]


async def inventory(
    client: httpx.AsyncClient,
    tenant: str,
    *,
    floors: int = 3,
    per_floor: int = 2,
    price: int = 300_000_000,
    status: str = "AVAILABLE",
    district: str = "Nanshan",
    project_name: str = "Harbour One",
    latitude: str | None = None,
    longitude: str | None = None,
) -> dict:
    """A project with one building of ``floors`` x ``per_floor`` units ("101", "102", ...),
    priced ``price`` + 1,000,000 minor units per floor. Returns ids: project, building, units."""
    geo = {"latitude": latitude, "longitude": longitude} if latitude else {}
    project = await create_project(client, tenant, project_name, district=district, **geo)
    building = await create_building(client, tenant, project["id"], "B1", floors=max(floors, 1))
    specs = [
        {
            "buildingId": building["id"],
            "floor": f,
            "number": f"{f}{s:02d}",
            "grossArea": "89.50",
            "rooms": 3,
            "orientation": "S",
            "listPrice": price + (f - 1) * 1_000_000,
            "status": status,
        }
        for f in range(1, floors + 1)
        for s in range(1, per_floor + 1)
    ]
    units = await create_units(client, tenant, specs)
    return {"project": project, "building": building, "units": units}


async def adjust(client, slug: str, token=None, **fields) -> dict:
    kw = {} if token is None else {"token": token}
    fields.setdefault("reason", "market update")
    res = await gql(client, ADJUST_PRICES, {"input": fields}, tenant=slug, **kw)
    assert "errors" not in res, res
    return res["data"]["adjustPrices"]


async def applied(client, slug: str, token=None, **fields) -> dict:
    payload = await adjust(client, slug, token, **fields)
    assert payload["__typename"] == "PriceAdjustmentPayload", payload
    return payload["adjustment"]


async def reserve(client, slug: str, unit_id: str) -> None:
    res = await gql(client, RESERVE_UNIT, {"input": {"unitId": unit_id}}, tenant=slug)
    ok(res, "reserveUnit", "UnitPayload")


async def status_to(client, slug: str, unit_id: str, *statuses: str) -> None:
    for status in statuses:
        res = await gql(
            client, CHANGE_STATUS, {"input": {"unitId": unit_id, "status": status}}, tenant=slug
        )
        ok(res, "changeUnitStatus", "UnitPayload")
