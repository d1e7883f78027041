"""Resale listings through GraphQL (real HTTP through the live server): creation with every fact
and its validation, listing a unit the tenant sold earlier (the unit's whole life in its
timeline), the status machine and its timeline, price history, the expiry job, ownership and
verification, the seller's personal data (masking, permissions, audit, encryption at rest),
search with filters, sorts and cursors, and tenant isolation.

Every expectation is computed in Python from what the test sent, never read back from the API."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest
from sqlalchemy import select, text, update

from api.db import utcnow
from api.listing import service
from api.listing.models import Listing as ListingRow
from api.security.crypto import mask_phone
from tenants.provisioning import create_tenant
from tenants.registry import TenantInfo
from tenants.sessions import TenantDatabase
from tests.api.helpers import typed_denial
from tests.api.listing.helpers import CREATE, FIELDS, RESULT, create, created, minimal
from tests.api.unit.helpers import CHANGE_STATUS as CHANGE_UNIT_STATUS
from tests.api.unit.helpers import UNIT_QUERY, inventory, ok
from tests.conftest import TOKENS, add_member, gql, unique_slug

CREATE_WITH_SELLER = (
    "mutation($input: CreateListingInput!) { createListing(input: $input) { __typename"
    " ... on ListingPayload { listing {" + FIELDS + " sellerName sellerPhone } }"
    " ... on UserError { code message field } } }"
)
CHANGE_PRICE = (
    "mutation($input: ChangeListingPriceInput!) { changeListingPrice(input: $input) "
    + RESULT
    + " }"
)
CHANGE_STATUS = (
    "mutation($input: ChangeListingStatusInput!) { changeListingStatus(input: $input) "
    + RESULT
    + " }"
)
VERIFY = (
    'mutation($id: ID!) { verifyListing(listingId: $id, note: "seen the title") ' + RESULT + " }"
)
LISTING = (
    "query($id: ID!) { listing(id: $id) {" + FIELDS + " timeline { kind fromStatus toStatus"
    " oldPrice { minorUnits } newPrice { minorUnits } actorId reason }"
    " priceHistory { kind oldPrice { minorUnits } newPrice { minorUnits } reason } } }"
)
WITH_UNIT = "query($id: ID!) { listing(id: $id) { id unit { id number status } } }"
SELLER_PHONE = "query($id: ID!) { listing(id: $id) { id community sellerPhone } }"
SELLER_NAME = "query($id: ID!) { listing(id: $id) { id community sellerName } }"
PUBLIC = "query($id: ID!) { listing(id: $id) { id community askingPrice { minorUnits } } }"
ME = "{ me { account { id } } }"
AUDIT = """
query($filter: AuditFilter) {
  auditLog(filter: $filter) { action actorId targetType targetId outcome details }
}
"""

PHONE = "+8613812345678"


def error_codes(res: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in res.get("errors") or []]


def ppm2(price: int, area: str | Decimal) -> int:
    """round(price / area), half away from zero (PostgreSQL's numeric round)."""
    return int((Decimal(price) / Decimal(area)).quantize(Decimal(1), ROUND_HALF_UP))


async def mutate(client, slug: str, doc: str, name: str, variables: dict, token=None) -> dict:
    kw = {} if token is None else {"token": token}
    res = await gql(client, doc, variables, tenant=slug, **kw)
    assert "errors" not in res, res
    return res["data"][name]


async def set_status(client, slug, lid, status, token=None, **extra) -> dict:
    return await mutate(
        client,
        slug,
        CHANGE_STATUS,
        "changeListingStatus",
        {"input": {"listingId": lid, "status": status, **extra}},
        token,
    )


async def set_price(client, slug, lid, price, token=None, reason="") -> dict:
    return await mutate(
        client,
        slug,
        CHANGE_PRICE,
        "changeListingPrice",
        {"input": {"listingId": lid, "askingPrice": price, "reason": reason}},
        token,
    )


async def read(client, slug: str, lid: str, doc: str = LISTING, token=None) -> dict:
    kw = {} if token is None else {"token": token}
    return await gql(client, doc, {"id": lid}, tenant=slug, **kw)


async def listing_of(client, slug: str, lid: str, token=None) -> dict:
    res = await read(client, slug, lid, token=token)
    assert "errors" not in res, res
    return res["data"]["listing"]


async def my_id(client, slug: str, token=None) -> str:
    kw = {} if token is None else {"token": token}
    res = await gql(client, ME, tenant=slug, **kw)
    return res["data"]["me"]["account"]["id"]


def parse_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def bad(payload: dict, typename: str, code: str, field: str | None) -> None:
    assert (payload["__typename"], payload["code"], payload["field"]) == (typename, code, field), (
        payload
    )
    assert payload["message"], payload


@pytest.fixture(scope="module")
async def client(live_server):
    """One HTTP client for the whole module."""
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as c:
        yield c


# ---------------------------------------------------------------- 1. creation


async def test_create_listing_with_every_fact_round_trips(client, make_tenant, member):
    tenant = await make_tenant()
    agent_id, agent = await member(tenant, ["agent"])
    registered = date(2015, 3, 1)
    facts = {
        "community": "  Lotus Garden ",
        "city": "Shenzhen",
        "district": "Futian",
        "address": "1 Lotus Road",
        "latitude": "22.540000",
        "longitude": "114.050000",
        "grossArea": "89.5",
        "rooms": 3,
        "livingRooms": 2,
        "bathrooms": 2,
        "floor": 12,
        "totalFloors": 30,
        "orientation": "se",
        "yearBuilt": 2008,
        "decoration": "FINE",
        "propertyRight": "COMMODITY",
        "rightYears": 70,
        "titleRegisteredOn": registered.isoformat(),
        "mortgaged": True,
        "onlyHome": True,
        "sellerName": "Wang Wei",
        "sellerPhone": "138 1234 5678",
        "askingPrice": 520_000_000,
        "description": "South-east facing, near the metro.",
        "tags": ["metro", "school", "metro"],
        "expiresInDays": 90,
    }
    before = datetime.now(UTC)
    got = await created(client, tenant.slug, agent, doc=CREATE_WITH_SELLER, **facts)
    after = datetime.now(UTC)
    expected = {
        "community": "Lotus Garden",
        "city": "Shenzhen",
        "district": "Futian",
        "address": "1 Lotus Road",
        "latitude": "22.540000",
        "longitude": "114.050000",
        "grossArea": "89.50",
        "rooms": 3,
        "livingRooms": 2,
        "bathrooms": 2,
        "floor": 12,
        "totalFloors": 30,
        "orientation": "SE",
        "yearBuilt": 2008,
        "decoration": "FINE",
        "propertyRight": "COMMODITY",
        "rightYears": 70,
        "titleRegisteredOn": "2015-03-01",
        "titleOverFiveYears": True,
        "mortgaged": True,
        "onlyHome": True,
        "agentId": str(agent_id),
        "askingPrice": {"minorUnits": 520_000_000, "currency": "CNY"},
        "pricePerM2": {"minorUnits": ppm2(520_000_000, "89.50"), "currency": "CNY"},
        "status": "ACTIVE",
        "standardStatus": "ACTIVE",
        "verified": False,
        "verifiedAt": None,
        "description": "South-east facing, near the metro.",
        "tags": ["metro", "school"],
        "version": 1,
        "sellerName": "Wang Wei",
        "sellerPhone": PHONE,
    }
    assert {k: got[k] for k in expected} == expected
    assert got["pricePerM2"]["minorUnits"] == 5_810_056  # 520,000,000 / 89.5 = 5,810,055.87
    listed = parse_dt(got["listedAt"])
    assert before - timedelta(seconds=5) <= listed <= after + timedelta(seconds=5)
    # Listed through the 90th day after today: it expires at the tenant's midnight after it.
    expires = parse_dt(got["expiresAt"])
    assert expires in {
        tenant.midnight(tenant.today(at) + timedelta(days=91)) for at in (before, after)
    }

    # Read back: the same facts (the agent sees the full phone of their own listing).
    res = await read(client, tenant.slug, got["id"], token=agent)
    assert "errors" not in res, res
    back = res["data"]["listing"]
    for key in expected:
        if key not in ("sellerName", "sellerPhone"):
            assert back[key] == got[key], key
    assert parse_dt(back["listedAt"]) == listed and parse_dt(back["expiresAt"]) == expires
    assert [
        (e["kind"], e["fromStatus"], e["toStatus"], e["newPrice"], e["actorId"])
        for e in back["timeline"]
    ] == [("created", None, "ACTIVE", {"minorUnits": 520_000_000}, str(agent_id))]
    seller = "query($id: ID!) { listing(id: $id) { sellerName sellerPhone } }"
    res = await read(client, tenant.slug, got["id"], seller, agent)
    assert res["data"]["listing"] == {"sellerName": "Wang Wei", "sellerPhone": PHONE}


async def test_title_over_five_years_and_defaults(client, make_tenant):
    tenant = await make_tenant()
    admin = await my_id(client, tenant.slug)
    today = date.today()
    recent = today - timedelta(days=365 * 3)
    old = date(today.year - 6, 1, 15)
    rows = {
        "recent": await created(
            client, tenant.slug, **minimal(titleRegisteredOn=recent.isoformat())
        ),
        "old": await created(client, tenant.slug, **minimal(titleRegisteredOn=old.isoformat())),
        "none": await created(client, tenant.slug, **minimal()),
    }
    assert rows["recent"]["titleOverFiveYears"] is False
    assert rows["old"]["titleOverFiveYears"] is True
    bare = rows["none"]
    assert bare["titleOverFiveYears"] is None
    # Defaults of a minimal listing; the admin who created it is its agent.
    defaults = dict.fromkeys(
        [
            "latitude",
            "floor",
            "totalFloors",
            "orientation",
            "yearBuilt",
            "decoration",
            "propertyRight",
            "rightYears",
            "expiresAt",
        ]
    )
    defaults |= {
        "city": "",
        "district": "",
        "address": "",
        "mortgaged": False,
        "onlyHome": False,
        "livingRooms": 1,
        "bathrooms": 1,
        "tags": [],
        "agentId": admin,
    }
    assert {k: bare[k] for k in defaults} == defaults
    res = await read(client, tenant.slug, bare["id"], SELLER_PHONE)
    assert res["data"]["listing"]["sellerPhone"] is None


# ---------------------------------------------------------------- 2. validation

TOMORROW = (date.today() + timedelta(days=2)).isoformat()
# (case, input changes, the field a ValidationError names)
INVALID = [
    ("no community", {"community": ""}, "community"),
    ("blank community", {"community": "   "}, "community"),
    ("asking price 0", {"askingPrice": 0}, "askingPrice"),
    ("negative price", {"askingPrice": -5}, "askingPrice"),
    ("price too high", {"askingPrice": 10**13 + 1}, "askingPrice"),
    ("floor above top", {"floor": 31, "totalFloors": 30}, "floor"),
    ("bad orientation", {"orientation": "UP"}, "orientation"),
    ("built 1800", {"yearBuilt": 1800}, "yearBuilt"),
    ("built far ahead", {"yearBuilt": date.today().year + 7}, "yearBuilt"),
    ("title in the future", {"titleRegisteredOn": TOMORROW}, "titleRegisteredOn"),
    ("latitude alone", {"latitude": "22.5"}, "latitude"),
    ("longitude alone", {"longitude": "114.0"}, "latitude"),
    ("latitude out of range", {"latitude": "91", "longitude": "114"}, "latitude"),
    ("no area", {"grossArea": None}, "grossArea"),
    ("area 0", {"grossArea": "0"}, "grossArea"),
    ("no rooms", {"rooms": None}, "rooms"),
    ("rooms 21", {"rooms": 21}, "rooms"),
    ("right years 100", {"rightYears": 100}, "rightYears"),
    ("expires in 0 days", {"expiresInDays": 0}, "expiresInDays"),
]
VALIDATION = [(name, over, "ValidationError", "BAD_USER_INPUT", f) for name, over, f in INVALID]
VALIDATION += [
    ("unit id not an id", {"unitId": "nope"}, "NotFoundError", "NOT_FOUND", "unitId"),
    ("unknown unit", {"unitId": str(uuid.uuid4())}, "NotFoundError", "NOT_FOUND", "unitId"),
]


async def test_create_listing_validation_as_typed_errors(client, make_tenant):
    tenant = await make_tenant()
    # All cases in one operation (mutation fields run in order; each refusal is data).
    header = ", ".join(f"$i{n}: CreateListingInput!" for n in range(len(VALIDATION)))
    body = "\n".join(
        f"c{n}: createListing(input: $i{n})"
        " { __typename ... on UserError { code message field } }"
        for n in range(len(VALIDATION))
    )
    variables = {}
    for n, (_, over, *_rest) in enumerate(VALIDATION):
        fields = minimal(**over)
        variables[f"i{n}"] = {k: v for k, v in fields.items() if v is not None}
    res = await gql(client, f"mutation({header}) {{\n{body}\n}}", variables, tenant=tenant.slug)
    assert "errors" not in res, res
    for n, (name, _, typename, code, fld) in enumerate(VALIDATION):
        got = res["data"][f"c{n}"]
        assert (got["__typename"], got["code"], got["field"]) == (typename, code, fld), name
        assert got["message"], name
    # Nothing was written.
    res = await gql(client, "{ listings { totalCount } }", tenant=tenant.slug)
    assert res["data"]["listings"]["totalCount"] == 0


async def test_bad_seller_phone_is_refused_naming_the_seller_phone(client, make_tenant):
    tenant = await make_tenant()
    for phone in ("12345", "not a phone", "+86 000"):
        payload = await create(client, tenant.slug, **minimal(sellerPhone=phone))
        bad(payload, "ValidationError", "BAD_USER_INPUT", "sellerPhone")
    res = await gql(client, "{ listings { totalCount } }", tenant=tenant.slug)
    assert res["data"]["listings"]["totalCount"] == 0


# ---------------------------------------------------------------- 3. resale of a sold unit


async def test_listing_a_unit_sold_earlier_continues_its_timeline(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    agent_id, agent = await member(tenant, ["agent"])
    inv = await inventory(
        client,
        slug,
        floors=2,
        per_floor=1,
        latitude="22.53",
        longitude="113.93",
        project_name="Harbour One",
    )
    unit = inv["units"][1]  # "201", floor 2
    other = inv["units"][0]

    # Still for sale by the developer: not a resale.
    payload = await create(client, slug, agent, unitId=unit["id"], askingPrice=450_000_000)
    bad(payload, "ConflictError", "CONFLICT", "unitId")
    for status in ("RESERVED", "SUBSCRIBED", "CONTRACTED"):
        res = await gql(
            client,
            CHANGE_UNIT_STATUS,
            {"input": {"unitId": unit["id"], "status": status}},
            tenant=slug,
        )
        ok(res, "changeUnitStatus", "UnitPayload")
        payload = await create(client, slug, agent, unitId=unit["id"], askingPrice=450_000_000)
        bad(payload, "ConflictError", "CONFLICT", "unitId")
    res = await gql(
        client, CHANGE_UNIT_STATUS, {"input": {"unitId": unit["id"], "status": "SOLD"}}, tenant=slug
    )
    assert ok(res, "changeUnitStatus", "UnitPayload")["unit"]["status"] == "SOLD"

    listing = await created(client, slug, agent, unitId=unit["id"], askingPrice=450_000_000)
    filled = {
        k: listing[k]
        for k in (
            "community",
            "district",
            "grossArea",
            "rooms",
            "floor",
            "orientation",
            "agentId",
            "status",
        )
    }
    assert filled == {
        "community": "Harbour One",
        "district": "Nanshan",
        "grossArea": "89.50",
        "rooms": 3,
        "floor": 2,
        "orientation": "S",
        "agentId": str(agent_id),
        "status": "ACTIVE",
    }
    assert Decimal(listing["latitude"]) == Decimal("22.53")
    assert Decimal(listing["longitude"]) == Decimal("113.93")
    assert listing["pricePerM2"]["minorUnits"] == ppm2(450_000_000, "89.50")
    res = await read(client, slug, listing["id"], WITH_UNIT)
    assert res["data"]["listing"]["unit"] == {"id": unit["id"], "number": "201", "status": "SOLD"}

    # The listing's own facts win over the unit's.
    own = await created(
        client,
        slug,
        agent,
        unitId=unit["id"],
        askingPrice=1,
        community="Mine",
        rooms=2,
        grossArea="80",
        floor=1,
    )
    assert (own["community"], own["rooms"], own["grossArea"], own["floor"]) == (
        "Mine",
        2,
        "80.00",
        1,
    )
    res = await gql(
        client,
        CHANGE_STATUS,
        {"input": {"listingId": own["id"], "status": "WITHDRAWN"}},
        tenant=slug,
        token=agent,
    )
    assert res["data"]["changeListingStatus"]["__typename"] == "ListingPayload"

    # An unrelated listing has no unit.
    plain = await created(client, slug, agent, **minimal())
    res = await read(client, slug, plain["id"], WITH_UNIT)
    assert res["data"]["listing"]["unit"] is None

    changed = await set_price(client, slug, listing["id"], 430_000_000, agent, "slow market")
    assert changed["listing"]["askingPrice"]["minorUnits"] == 430_000_000
    sold = await set_status(client, slug, listing["id"], "SOLD", agent, reason="buyer signed")
    assert (sold["listing"]["status"], sold["listing"]["standardStatus"]) == ("SOLD", "CLOSED")

    res = await gql(client, UNIT_QUERY, {"id": unit["id"]}, tenant=slug)
    assert "errors" not in res, res
    u = res["data"]["unit"]
    assert u["status"] == "SOLD"  # the unit's own status is not the listing's
    kinds = [(e["kind"], e["toStatus"]) for e in u["timeline"]]
    assert kinds == [
        ("created", "AVAILABLE"),
        ("status", "RESERVED"),
        ("status", "SUBSCRIBED"),
        ("status", "CONTRACTED"),
        ("status", "SOLD"),
        ("listed", None),
        ("listed", None),
        ("listing_price", None),
        ("resold", None),
    ], kinds
    listed, own_listed, repriced, resold = u["timeline"][5:]
    assert (listed["newPrice"], listed["actorId"]) == ({"minorUnits": 450_000_000}, str(agent_id))
    assert own_listed["newPrice"] == {"minorUnits": 1}
    assert (repriced["oldPrice"], repriced["newPrice"], repriced["reason"]) == (
        {"minorUnits": 450_000_000},
        {"minorUnits": 430_000_000},
        "slow market",
    )
    assert (resold["newPrice"], resold["reason"]) == ({"minorUnits": 430_000_000}, "buyer signed")
    # The listing's withdrawal is not the unit's business (only its sale is).
    res = await gql(
        client,
        "query($id: ID!) { unit(id: $id) { timeline { kind refId } } }",
        {"id": unit["id"]},
        tenant=slug,
    )
    refs = [(e["kind"], e["refId"]) for e in res["data"]["unit"]["timeline"][5:]]
    assert refs == [
        ("listed", listing["id"]),
        ("listed", own["id"]),
        ("listing_price", listing["id"]),
        ("resold", listing["id"]),
    ]

    # The other unit's timeline is untouched.
    res = await gql(client, UNIT_QUERY, {"id": other["id"]}, tenant=slug)
    assert [e["kind"] for e in res["data"]["unit"]["timeline"]] == ["created"]


async def test_a_delivered_unit_can_be_listed(client, make_tenant):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    unit = inv["units"][0]
    for status in ("RESERVED", "SUBSCRIBED", "CONTRACTED", "SOLD", "DELIVERED"):
        res = await gql(
            client,
            CHANGE_UNIT_STATUS,
            {"input": {"unitId": unit["id"], "status": status}},
            tenant=tenant.slug,
        )
        ok(res, "changeUnitStatus", "UnitPayload")
    listing = await created(client, tenant.slug, unitId=unit["id"], askingPrice=400_000_000)
    assert (listing["community"], listing["district"], listing["floor"]) == (
        "Harbour One",
        "Nanshan",
        1,
    )


# ---------------------------------------------------------------- 4. status machine

STATUSES = ["ACTIVE", "UNDER_CONTRACT", "SOLD", "WITHDRAWN", "EXPIRED"]
# The allowed moves (RESO: Active, Active Under Contract, Closed, Withdrawn, Expired).
ALLOWED = {
    "ACTIVE": {"UNDER_CONTRACT", "SOLD", "WITHDRAWN", "EXPIRED"},
    "UNDER_CONTRACT": {"ACTIVE", "SOLD", "WITHDRAWN"},
    "SOLD": set(),
    "WITHDRAWN": {"ACTIVE"},
    "EXPIRED": {"ACTIVE"},
}
STANDARD = {
    "ACTIVE": "ACTIVE",
    "UNDER_CONTRACT": "ACTIVE_UNDER_CONTRACT",
    "SOLD": "CLOSED",
    "WITHDRAWN": "WITHDRAWN",
    "EXPIRED": "EXPIRED",
}


async def test_every_status_transition_allowed_or_refused(client, make_tenant):
    tenant = await make_tenant()
    pairs = [(a, b) for a in STATUSES for b in STATUSES]
    header = ", ".join(f"$i{n}: CreateListingInput!" for n in range(len(pairs)))
    body = "\n".join(
        f"c{n}: createListing(input: $i{n}) {{ ... on ListingPayload {{ listing {{ id }} }} }}"
        for n in range(len(pairs))
    )
    variables = {f"i{n}": minimal(askingPrice=100_000_000 + n) for n in range(len(pairs))}
    res = await gql(client, f"mutation({header}) {{\n{body}\n}}", variables, tenant=tenant.slug)
    assert "errors" not in res, res
    ids = [res["data"][f"c{n}"]["listing"]["id"] for n in range(len(pairs))]

    def moves(steps: list[tuple[str, str]]) -> str:
        return (
            "mutation {\n"
            + "\n".join(
                f'm{n}: changeListingStatus(input: {{listingId: "{lid}", status: {st}}}) '
                "{ __typename ... on ListingPayload { listing { status standardStatus version } }"
                " ... on UserError { code field } }"
                for n, (lid, st) in enumerate(steps)
            )
            + "\n}"
        )

    setup = [(lid, a) for lid, (a, _) in zip(ids, pairs, strict=True) if a != "ACTIVE"]
    res = await gql(client, moves(setup), tenant=tenant.slug)
    assert {v["__typename"] for v in res["data"].values()} == {"ListingPayload"}, res
    res = await gql(
        client,
        moves([(lid, b) for lid, (_, b) in zip(ids, pairs, strict=True)]),
        tenant=tenant.slug,
    )
    assert "errors" not in res, res
    for n, (a, b) in enumerate(pairs):
        got = res["data"][f"m{n}"]
        if b in ALLOWED[a]:
            assert got["__typename"] == "ListingPayload", (a, b, got)
            version = 2 if a == "ACTIVE" else 3
            assert got["listing"] == {
                "status": b,
                "standardStatus": STANDARD[b],
                "version": version,
            }, (a, b)
        else:
            assert (got["__typename"], got["code"], got["field"]) == (
                "ConflictError",
                "CONFLICT",
                "status",
            ), (a, b, got)


async def test_status_timeline_versions_and_price_history(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    agent_id, agent = await member(tenant, ["agent"])
    lid = (await created(client, slug, agent, **minimal(askingPrice=500_000_000)))["id"]

    path = [("UNDER_CONTRACT", 2), ("ACTIVE", 3), ("WITHDRAWN", 4), ("ACTIVE", 5)]
    for status, version in path:
        got = await set_status(
            client, slug, lid, status, agent, reason=f"to {status}", expectedVersion=version - 1
        )
        assert (got["listing"]["status"], got["listing"]["version"]) == (status, version), got
    # A stale version is refused and changes nothing.
    got = await set_status(client, slug, lid, "WITHDRAWN", agent, expectedVersion=3)
    bad(got, "ConflictError", "CONFLICT", "expectedVersion")
    assert (await listing_of(client, slug, lid))["version"] == 5

    # Two price changes; the same price again is no change.
    got = await set_price(client, slug, lid, 480_000_000, agent, "first cut")
    assert (got["listing"]["askingPrice"]["minorUnits"], got["listing"]["version"]) == (
        480_000_000,
        6,
    )
    assert got["listing"]["pricePerM2"]["minorUnits"] == ppm2(480_000_000, "89.50")
    got = await set_price(client, slug, lid, 470_000_000, agent, "second cut")
    assert got["listing"]["version"] == 7
    got = await set_price(client, slug, lid, 470_000_000, agent)
    assert got["listing"]["version"] == 7
    bad(
        await set_price(client, slug, lid, 0, agent),
        "ValidationError",
        "BAD_USER_INPUT",
        "askingPrice",
    )

    sold = await set_status(client, slug, lid, "SOLD", agent, expectedVersion=7)
    assert (sold["listing"]["status"], sold["listing"]["version"]) == ("SOLD", 8)
    # Sold is final: no status, no price.
    for status in ("ACTIVE", "WITHDRAWN", "SOLD"):
        bad(
            await set_status(client, slug, lid, status, agent),
            "ConflictError",
            "CONFLICT",
            "status",
        )
    bad(await set_price(client, slug, lid, 1, agent), "ConflictError", "CONFLICT", "status")

    back = await listing_of(client, slug, lid)
    assert back["version"] == 8 and back["askingPrice"]["minorUnits"] == 470_000_000
    line = [
        (
            e["kind"],
            e["fromStatus"],
            e["toStatus"],
            (e["oldPrice"] or {}).get("minorUnits"),
            (e["newPrice"] or {}).get("minorUnits"),
            e["reason"],
        )
        for e in back["timeline"]
    ]
    assert line == [
        ("created", None, "ACTIVE", None, 500_000_000, ""),
        ("status", "ACTIVE", "UNDER_CONTRACT", None, None, "to UNDER_CONTRACT"),
        ("status", "UNDER_CONTRACT", "ACTIVE", None, None, "to ACTIVE"),
        ("status", "ACTIVE", "WITHDRAWN", None, None, "to WITHDRAWN"),
        ("status", "WITHDRAWN", "ACTIVE", None, None, "to ACTIVE"),
        ("price", None, None, 500_000_000, 480_000_000, "first cut"),
        ("price", None, None, 480_000_000, 470_000_000, "second cut"),
        ("status", "ACTIVE", "SOLD", None, None, ""),
    ]
    assert {e["actorId"] for e in back["timeline"]} == {str(agent_id)}
    history = [
        ((e["oldPrice"] or {}).get("minorUnits"), e["newPrice"]["minorUnits"], e["reason"])
        for e in back["priceHistory"]
    ]
    assert history == [
        (None, 500_000_000, ""),
        (500_000_000, 480_000_000, "first cut"),
        (480_000_000, 470_000_000, "second cut"),
    ]


async def test_unknown_listing_is_not_found(client, make_tenant):
    tenant = await make_tenant()
    for lid in (str(uuid.uuid4()), "not-an-id"):
        bad(
            await set_status(client, tenant.slug, lid, "SOLD"),
            "NotFoundError",
            "NOT_FOUND",
            "listingId",
        )
        bad(
            await set_price(client, tenant.slug, lid, 10), "NotFoundError", "NOT_FOUND", "listingId"
        )
        res = await gql(client, VERIFY, {"id": lid}, tenant=tenant.slug)
        bad(res["data"]["verifyListing"], "NotFoundError", "NOT_FOUND", "listingId")
        res = await read(client, tenant.slug, lid, PUBLIC)
        assert res == {"data": {"listing": None}}


async def test_expire_job_expires_only_active_listings_past_their_expiry(
    client, make_tenant, engine
):
    tenant = await make_tenant()
    slug = tenant.slug
    due = await created(client, slug, **minimal(expiresInDays=1))
    later = await created(client, slug, **minimal(expiresInDays=30))
    withdrawn = await created(client, slug, **minimal(expiresInDays=1))
    contracted = await created(client, slug, **minimal(expiresInDays=1))
    forever = await created(client, slug, **minimal())
    await set_status(client, slug, withdrawn["id"], "WITHDRAWN")
    await set_status(client, slug, contracted["id"], "UNDER_CONTRACT")

    db = TenantDatabase(engine)
    past = utcnow() - timedelta(hours=1)
    async with db.session(tenant) as session:
        moved = [uuid.UUID(x["id"]) for x in (due, withdrawn, contracted)]
        await session.execute(
            update(ListingRow).where(ListingRow.id.in_(moved)).values(expires_at=past)
        )
        await session.commit()
    now = utcnow()
    async with db.session(tenant) as session:
        assert await service.expire_listings(session, now=now) == 1
        await session.commit()
    async with db.session(tenant) as session:  # a second run finds nothing more to do
        assert await service.expire_listings(session, now=utcnow()) == 0
        await session.commit()

    got = await listing_of(client, slug, due["id"])
    assert (got["status"], got["standardStatus"], got["version"]) == ("EXPIRED", "EXPIRED", 2)
    last = got["timeline"][-1]
    assert (last["kind"], last["fromStatus"], last["toStatus"], last["reason"]) == (
        "status",
        "ACTIVE",
        "EXPIRED",
        "expired",
    )
    assert len(got["timeline"]) == 2
    expected = {
        later["id"]: ("ACTIVE", 1),
        withdrawn["id"]: ("WITHDRAWN", 2),
        contracted["id"]: ("UNDER_CONTRACT", 2),
        forever["id"]: ("ACTIVE", 1),
    }
    for lid, (status, version) in expected.items():
        x = await listing_of(client, slug, lid)
        assert (x["status"], x["version"]) == (status, version), lid
        assert all(e["toStatus"] != "EXPIRED" for e in x["timeline"])
    # An expired listing can be put back on the market.
    again = await set_status(client, slug, due["id"], "ACTIVE", expectedVersion=2)
    assert again["listing"]["status"] == "ACTIVE"


# ---------------------------------------------------------------- 5. ownership, verification


async def test_agents_change_only_their_own_listings(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, mine = await member(tenant, ["agent"])
    _, theirs = await member(tenant, ["agent"])
    _, manager = await member(tenant, ["manager"])
    lid = (await created(client, slug, mine, **minimal()))["id"]

    for res in (
        await set_price(client, slug, lid, 400_000_000, theirs),
        await set_status(client, slug, lid, "WITHDRAWN", theirs),
    ):
        bad(res, "PermissionDeniedError", "FORBIDDEN", None)
    x = await listing_of(client, slug, lid)
    assert (x["version"], x["askingPrice"]["minorUnits"], x["status"]) == (1, 500_000_000, "ACTIVE")
    assert len(x["timeline"]) == 1

    assert (await set_price(client, slug, lid, 490_000_000, mine))["__typename"] == "ListingPayload"
    # A manager (listing.manage) changes anyone's.
    got = await set_price(client, slug, lid, 480_000_000, manager)
    assert got["listing"]["askingPrice"]["minorUnits"] == 480_000_000
    got = await set_status(client, slug, lid, "UNDER_CONTRACT", manager)
    assert got["listing"]["status"] == "UNDER_CONTRACT"
    # The listing agent stays who they were.
    assert got["listing"]["agentId"] == x["agentId"]


async def test_roles_without_listing_write_cannot_create_or_change(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    lid = (await created(client, slug, **minimal()))["id"]
    for role in ("client", "finance", "owner", "property_staff"):
        _, token = await member(tenant, [role])
        res = await gql(client, CREATE, {"input": minimal()}, tenant=slug, token=token)
        typed_denial(res, "createListing", "FORBIDDEN")
        res = await gql(
            client,
            CHANGE_PRICE,
            {"input": {"listingId": lid, "askingPrice": 1}},
            tenant=slug,
            token=token,
        )
        typed_denial(res, "changeListingPrice", "FORBIDDEN")
        res = await gql(
            client,
            CHANGE_STATUS,
            {"input": {"listingId": lid, "status": "SOLD"}},
            tenant=slug,
            token=token,
        )
        typed_denial(res, "changeListingStatus", "FORBIDDEN")
        # ...but they read listings.
        res = await read(client, slug, lid, PUBLIC, token)
        assert res["data"]["listing"]["id"] == lid
    # Anonymous: a typed AuthError for mutations, UNAUTHENTICATED for queries.
    res = await gql(client, CREATE, {"input": minimal()}, tenant=slug, token=None)
    typed_denial(res, "createListing", "UNAUTHENTICATED")
    assert error_codes(await gql(client, PUBLIC, {"id": lid}, tenant=slug, token=None)) == [
        "UNAUTHENTICATED"
    ]
    assert (await listing_of(client, slug, lid))["version"] == 1


async def test_verify_needs_listing_verify_and_happens_once(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    manager_id, manager = await member(tenant, ["manager"])
    lid = (await created(client, slug, agent, **minimal()))["id"]

    res = await gql(client, VERIFY, {"id": lid}, tenant=slug, token=agent)
    typed_denial(res, "verifyListing", "FORBIDDEN")
    assert (await listing_of(client, slug, lid))["verified"] is False

    before = datetime.now(UTC)
    res = await gql(client, VERIFY, {"id": lid}, tenant=slug, token=manager)
    got = ok(res, "verifyListing", "ListingPayload")["listing"]
    assert (got["verified"], got["version"]) == (True, 2)
    assert parse_dt(got["verifiedAt"]) >= before - timedelta(seconds=5)
    res = await gql(client, VERIFY, {"id": lid}, tenant=slug, token=manager)
    bad(res["data"]["verifyListing"], "ConflictError", "CONFLICT", "listingId")

    x = await listing_of(client, slug, lid)
    assert (x["verified"], x["version"]) == (True, 2)
    last = x["timeline"][-1]
    assert (last["kind"], last["actorId"], last["reason"]) == (
        "verified",
        str(manager_id),
        "seen the title",
    )


# ---------------------------------------------------------------- 6. the seller's data


async def audit(client, slug: str, **flt) -> list[dict]:
    res = await gql(client, AUDIT, {"filter": flt}, tenant=slug)
    assert "errors" not in res, res
    return res["data"]["auditLog"]


async def test_seller_phone_masked_unless_agent_or_pii_read(client, make_tenant, member, engine):
    tenant = await make_tenant()
    slug = tenant.slug
    admin = await my_id(client, slug)
    _, agent = await member(tenant, ["agent"])
    _, other = await member(tenant, ["agent"])
    _, manager = await member(tenant, ["manager"])
    _, finance = await member(tenant, ["finance"])
    _, customer = await member(tenant, ["client"])
    lid = (
        await created(
            client, slug, agent, **minimal(sellerName="Wang Wei", sellerPhone="13812345678")
        )
    )["id"]
    own = (await created(client, slug, **minimal(sellerPhone="+86 139 0000 1111")))["id"]
    masked = mask_phone(PHONE)
    assert masked == "+86138****5678"

    async def phone(token, listing_id=lid):
        res = await read(client, slug, listing_id, SELLER_PHONE, token)
        assert "errors" not in res, res
        return res["data"]["listing"]["sellerPhone"]

    assert await phone(agent) == PHONE  # the listing agent
    assert await phone(other) == masked  # another agent
    assert await phone(manager) == masked  # listing.seller without pii.read
    assert await audit(client, slug, action="pii.read") == []
    assert await phone(TOKENS[slug]) == PHONE  # the admin: pii.read, audited
    assert await phone(TOKENS[slug], own) == "+8613900001111"  # the admin's own: not audited
    entries = await audit(client, slug, action="pii.read")
    assert [
        (e["actorId"], e["targetType"], e["targetId"], e["outcome"], e["details"]) for e in entries
    ] == [(admin, "listing", lid, "ok", {"fields": ["seller_phone"]})]

    res = await read(client, slug, lid, SELLER_NAME, other)
    assert res["data"]["listing"]["sellerName"] == "Wang Wei"

    # finance: pii.read but not listing.seller -> the seller fields are refused.
    res = await read(client, slug, lid, SELLER_PHONE, finance)
    assert error_codes(res) == ["FORBIDDEN"], res
    assert res["errors"][0]["path"] == ["listing", "sellerPhone"]
    assert res["data"]["listing"] == {"id": lid, "community": "Lotus Garden", "sellerPhone": None}
    # a client reads the listing but not who sells it.
    res = await read(client, slug, lid, PUBLIC, customer)
    assert res["data"]["listing"]["community"] == "Lotus Garden"
    for doc, name in ((SELLER_PHONE, "sellerPhone"), (SELLER_NAME, "sellerName")):
        for token in (customer, finance):
            res = await read(client, slug, lid, doc, token)
            assert error_codes(res) == ["FORBIDDEN"], res
            assert res["errors"][0]["path"] == ["listing", name]
            assert PHONE not in str(res) and "Wang Wei" not in str(res)
    # Refused reads are not pii.read entries.
    assert len(await audit(client, slug, action="pii.read")) == 1

    # At rest: encrypted bytes bound to the row, and a blind index, never the digits.
    async with TenantDatabase(engine).session(tenant) as session:
        enc, bidx = (
            await session.execute(
                select(ListingRow.seller_phone_enc, ListingRow.seller_phone_bidx).where(
                    ListingRow.id == uuid.UUID(lid)
                )
            )
        ).one()
    assert isinstance(enc, bytes) and isinstance(bidx, bytes) and len(enc) > 11
    for plain in (PHONE, "13812345678", "8613812345678", "12345678"):
        assert plain.encode() not in enc and plain.encode() not in bidx
        assert plain.encode("utf-16-le") not in enc


async def test_seller_phone_never_reaches_the_audit_log(client, make_tenant, engine):
    tenant = await make_tenant()
    await created(client, tenant.slug, **minimal(sellerPhone="13812345678"))
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(f'SELECT row_to_json(a)::text FROM "{tenant.schema_name}".audit_log a')
        )
        raw = "\n".join(rows.scalars().all())
    assert "createListing" in raw
    for plain in ("13812345678", "8613812345678"):
        assert plain not in raw


# ---------------------------------------------------------------- 7. search


@dataclass
class Seed:
    id: str
    community: str
    district: str
    city: str
    lat: float | None
    lng: float | None
    area: Decimal
    rooms: int
    price: int
    year: int | None
    tags: list[str]
    status: str = "ACTIVE"
    verified: bool = False
    agent: str = ""

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(self.id)

    @property
    def ppm2(self) -> int:
        return ppm2(self.price, self.area)

    @property
    def text(self) -> str:
        """What the keyword is matched against (api.listing.service.search_text)."""
        parts = (self.community, self.district, self.city, "", " ".join(self.tags))
        return " ".join(p for p in parts if p).lower()


@dataclass
class World:
    a: TenantInfo
    b: TenantInfo
    agent_id: str
    agent_token: str
    listings: list[Seed]
    b_ids: list[str] = field(default_factory=list)


# (community, district, city, lat, lng)
PLACES = [
    ("Harbour One", "Nanshan", "Shenzhen", 22.53, 113.93),
    ("Lotus Garden", "Futian", "Shenzhen", 22.54, 114.05),
    ("Pearl Court", "Tianhe", "Guangzhou", 23.13, 113.26),
    ("Old Town 100%", "Luohu", "Shenzhen", None, None),
]
PRICES = [
    180_000_000,
    250_000_000,
    250_000_000,
    420_000_000,
    999_000_000,
    2_600_000_000,
    3_200_000_000,
]
AREAS = ["58.00", "68.00", "89.50", "89.50", "95.00", "120.00", "143.75"]
TAGS = ["metro", "school", "sea-view", "corner"]


def km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    dlat = math.radians(lat2 - lat1) / 2
    dlng = math.radians(lng2 - lng1) / 2
    a = (
        math.sin(dlat) ** 2
        + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.sin(dlng) ** 2
    )
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


async def _new_tenant(engine, kit, name: str) -> TenantInfo:
    tenant = (await create_tenant(engine, unique_slug("lst"), name)).tenant
    _, TOKENS[tenant.slug] = await add_member(engine, kit, tenant, ["admin"], name="Admin")
    return tenant


async def _create_many(client, slug: str, inputs: list[dict], token=None) -> list[str]:
    header = ", ".join(f"$i{n}: CreateListingInput!" for n in range(len(inputs)))
    body = "\n".join(
        f"c{n}: createListing(input: $i{n}) {{ __typename ... on ListingPayload "
        "{ listing { id } } ... on UserError { message } }"
        for n in range(len(inputs))
    )
    kw = {} if token is None else {"token": token}
    res = await gql(
        client,
        f"mutation({header}) {{\n{body}\n}}",
        {f"i{n}": x for n, x in enumerate(inputs)},
        tenant=slug,
        **kw,
    )
    assert "errors" not in res, res
    out = [res["data"][f"c{n}"] for n in range(len(inputs))]
    assert {x["__typename"] for x in out} == {"ListingPayload"}, out
    return [x["listing"]["id"] for x in out]


@pytest.fixture(scope="module")
async def world(engine, kit, client) -> World:
    a = await _new_tenant(engine, kit, "Listing Realty A")
    b = await _new_tenant(engine, kit, "Listing Realty B")
    agent_uuid, agent_token = await add_member(engine, kit, a, ["agent"], name="Agent")
    rng = random.Random(20240611)  # a fixed world: its expectations were tuned on it
    seeds, inputs = [], []
    for n in range(32):
        community, district, city, lat, lng = PLACES[n % len(PLACES)]
        if lat is not None:  # spread the points so that no two distances tie
            lat, lng = round(lat + n * 0.0013, 6), round(lng - n * 0.0007, 6)
        s = Seed(
            id="",
            community=community,
            district=district,
            city=city,
            lat=lat,
            lng=lng,
            area=Decimal(rng.choice(AREAS)),
            rooms=rng.randint(1, 4),
            price=rng.choice(PRICES),
            year=rng.choice([None, 1998, 2005, 2010, 2016, 2021]),
            tags=rng.sample(TAGS, rng.randint(0, 3)),
        )
        x = {
            "community": community,
            "district": district,
            "city": city,
            "grossArea": str(s.area),
            "rooms": s.rooms,
            "askingPrice": s.price,
            "tags": s.tags,
        }
        if lat is not None:
            x |= {"latitude": str(lat), "longitude": str(lng)}
        if s.year is not None:
            x["yearBuilt"] = s.year
        seeds.append(s)
        inputs.append(x)
    by_agent = set(range(0, 32, 3))
    ids = await _create_many(client, a.slug, [x for n, x in enumerate(inputs) if n not in by_agent])
    agent_ids = await _create_many(
        client, a.slug, [x for n, x in enumerate(inputs) if n in by_agent], agent_token
    )
    admin = await my_id(client, a.slug)
    it, ait = iter(ids), iter(agent_ids)
    for n, s in enumerate(seeds):
        if n in by_agent:
            s.id, s.agent = next(ait), str(agent_uuid)
        else:
            s.id, s.agent = next(it), admin

    # Some statuses and verifications.
    steps = []
    for s in seeds[1:6]:
        steps.append((s, "UNDER_CONTRACT"))
    for s in seeds[6:9]:
        steps.append((s, "SOLD"))
    for s in seeds[9:11]:
        steps.append((s, "WITHDRAWN"))
    fields = [
        f'm{n}: changeListingStatus(input: {{listingId: "{s.id}", status: {st}}}) {{ __typename }}'
        for n, (s, st) in enumerate(steps)
    ]
    fields += [
        f'v{n}: verifyListing(listingId: "{s.id}") {{ __typename }}'
        for n, s in enumerate(seeds[::4])
    ]
    res = await gql(client, "mutation {\n" + "\n".join(fields) + "\n}", tenant=a.slug)
    assert {v["__typename"] for v in res["data"].values()} == {"ListingPayload"}, res
    for s, st in steps:
        s.status = st
    for s in seeds[::4]:
        s.verified = True

    # Tenant B: look-alikes (same community, district, point, tags).
    b_ids = await _create_many(
        client,
        b.slug,
        [
            {
                "community": "Harbour One",
                "district": "Nanshan",
                "city": "Shenzhen",
                "latitude": "22.53",
                "longitude": "113.93",
                "grossArea": "89.50",
                "rooms": 3,
                "askingPrice": 250_000_000,
                "tags": ["metro"],
                "yearBuilt": 2016,
            }
            for _ in range(3)
        ],
    )
    return World(
        a=a, b=b, agent_id=str(agent_uuid), agent_token=agent_token, listings=seeds, b_ids=b_ids
    )


def matches(s: Seed, f: dict) -> bool:
    checks = [
        ("districts", lambda v: s.district in v),
        ("communities", lambda v: s.community in v),
        ("statuses", lambda v: s.status in v),
        ("rooms", lambda v: s.rooms in v),
        ("tags", lambda v: set(v) <= set(s.tags)),
        ("agentIds", lambda v: s.agent in v),
        ("priceMin", lambda v: s.price >= v),
        ("priceMax", lambda v: s.price <= v),
        ("areaMin", lambda v: s.area >= Decimal(v)),
        ("areaMax", lambda v: s.area <= Decimal(v)),
        ("builtAfter", lambda v: s.year is not None and s.year >= v),
        ("verifiedOnly", lambda v: s.verified or not v),
        ("keyword", lambda v: v.strip().lower() in s.text),
        (
            "near",
            lambda v: (
                s.lat is not None
                and km(v["latitude"], v["longitude"], s.lat, s.lng) <= v.get("radiusKm", 5.0)
            ),
        ),
    ]
    return all(check(f[name]) for name, check in checks if f.get(name) is not None)


def expected_ids(seeds: list[Seed], f: dict, sort: str = "NEWEST", sims=None) -> list[str]:
    near = f.get("near")
    keys = {
        "NEWEST": (lambda s: (s.uuid,), True),
        "PRICE_ASC": (lambda s: (s.price, s.uuid), False),
        "PRICE_DESC": (lambda s: (s.price, s.uuid), True),
        "AREA_ASC": (lambda s: (s.area, s.uuid), False),
        "AREA_DESC": (lambda s: (s.area, s.uuid), True),
        "PRICE_PER_M2_ASC": (lambda s: (s.ppm2, s.uuid), False),
        "DISTANCE": (
            lambda s: (km(near["latitude"], near["longitude"], s.lat, s.lng), s.uuid),
            False,
        ),
        "RELEVANCE": (lambda s: (sims[s.id], s.uuid), True),
    }
    key, desc = keys[sort]
    return [s.id for s in sorted((s for s in seeds if matches(s, f)), key=key, reverse=desc)]


SEARCH = """
query($filter: ListingFilter, $sort: ListingSort, $first: Int, $after: String) {
  listings(filter: $filter, sort: $sort, first: $first, after: $after) {
    totalCount
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def search(client, slug, flt=None, sort="NEWEST", first=100, after=None, token=None):
    kw = {} if token is None else {"token": token}
    variables = {"filter": flt, "sort": sort, "first": first, "after": after}
    return await gql(client, SEARCH, variables, tenant=slug, **kw)


async def walk(client, slug: str, flt, sort: str, first: int, token=None) -> tuple[list, int]:
    """Every page, following endCursor; returns (ids, totalCount) and checks each page."""
    out: list[str] = []
    after, total = None, None
    for _ in range(100):
        res = await search(client, slug, flt, sort, first, after, token)
        assert "errors" not in res, res
        conn = res["data"]["listings"]
        total = conn["totalCount"] if total is None else total
        assert conn["totalCount"] == total
        edges = conn["edges"]
        out += [e["node"]["id"] for e in edges]
        info = conn["pageInfo"]
        assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)
        if not info["hasNextPage"]:
            assert len(edges) <= first
            return out, total
        assert len(edges) == first
        after = info["endCursor"]
    raise AssertionError("pagination does not end")


NANSHAN = {"latitude": 22.53, "longitude": 113.93}
FILTERS = {
    "district": lambda w: {"districts": ["Nanshan"]},
    "districts": lambda w: {"districts": ["Futian", "Tianhe"]},
    "community": lambda w: {"communities": ["Lotus Garden"]},
    "communities": lambda w: {"communities": ["Old Town 100%", "Pearl Court"]},
    "status": lambda w: {"statuses": ["UNDER_CONTRACT"]},
    "statuses": lambda w: {"statuses": ["SOLD", "WITHDRAWN"]},
    "rooms": lambda w: {"rooms": [2]},
    "rooms any": lambda w: {"rooms": [3, 4]},
    "price min inclusive": lambda w: {"priceMin": 999_000_000},
    "price max inclusive": lambda w: {"priceMax": 250_000_000},
    "price range above 32 bits": lambda w: {"priceMin": 2_600_000_000, "priceMax": 3_200_000_000},
    "area min inclusive": lambda w: {"areaMin": "89.50"},
    "area range": lambda w: {"areaMin": "68", "areaMax": "95.00"},
    "built after": lambda w: {"builtAfter": 2010},
    "verified only": lambda w: {"verifiedOnly": True},
    "not only verified": lambda w: {"verifiedOnly": False},
    "tag": lambda w: {"tags": ["metro"]},
    "tags all of": lambda w: {"tags": ["metro", "school"]},
    "agent": lambda w: {"agentIds": [w.agent_id]},
    "keyword community any case": lambda w: {"keyword": "  HARBOUR "},
    "keyword district": lambda w: {"keyword": "futian"},
    "keyword city": lambda w: {"keyword": "guangzhou"},
    "keyword tag": lambda w: {"keyword": "sea-view"},
    "keyword % literal": lambda w: {"keyword": "100%"},
    "keyword % alone": lambda w: {"keyword": "%"},
    "near 5 km": lambda w: {"near": {**NANSHAN, "radiusKm": 5}},
    "near default radius": lambda w: {"near": NANSHAN},
    "near 200 km": lambda w: {"near": {**NANSHAN, "radiusKm": 200}},
    "combined": lambda w: {
        "districts": ["Nanshan", "Futian"],
        "priceMax": 999_000_000,
        "statuses": ["ACTIVE", "UNDER_CONTRACT"],
    },
    "nothing matches": lambda w: {"districts": ["Nanshan"], "communities": ["Pearl Court"]},
}


@pytest.mark.parametrize("name", list(FILTERS))
async def test_search_filters(client, world, name):
    flt = FILTERS[name](world)
    expected = expected_ids(world.listings, flt)
    if name != "nothing matches" and name != "not only verified":
        assert 0 < len(expected) < len(world.listings), (name, len(expected))
    got, total = await walk(client, world.a.slug, flt, "NEWEST", 10)
    assert got == expected
    assert total == len(expected)


async def similarities(engine, keyword: str, seeds: list[Seed]) -> dict[str, float]:
    texts = sorted({s.text for s in seeds})
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT t, word_similarity(:k, t) FROM unnest(CAST(:ts AS text[])) AS t"),
            {"k": keyword, "ts": texts},
        )
        by_text = dict(rows.all())
    return {s.id: by_text[s.text] for s in seeds}


SORTS = [
    "NEWEST",
    "PRICE_ASC",
    "PRICE_DESC",
    "AREA_ASC",
    "AREA_DESC",
    "PRICE_PER_M2_ASC",
    "DISTANCE",
    "RELEVANCE",
]


@pytest.mark.parametrize("sort", SORTS)
async def test_search_sorts_walk_every_page_once(client, world, engine, sort):
    flt: dict = {}
    sims = None
    if sort == "DISTANCE":
        flt = {"near": {**NANSHAN, "radiusKm": 200}}
    if sort == "RELEVANCE":
        flt = {"keyword": "shenzhen"}
        sims = await similarities(engine, "shenzhen", world.listings)
    expected = expected_ids(world.listings, flt, sort, sims)
    got, total = await walk(client, world.a.slug, flt or None, sort, 6)
    assert len(got) == len(set(got)) == total == len(expected)
    assert got == expected


async def test_search_refuses_bad_input(client, world):
    slug = world.a.slug
    res = await search(client, slug, first=5)
    cursor = res["data"]["listings"]["pageInfo"]["endCursor"]
    cases = [
        ({"after": "garbage"}, "bad cursor"),
        ({"after": "eyJ4IjoxfQ"}, "a cursor of something else"),
        ({"after": cursor, "sort": "PRICE_ASC"}, "a cursor of another sort"),
        ({"sort": "DISTANCE"}, "distance without near"),
        ({"sort": "RELEVANCE"}, "relevance without keyword"),
        ({"flt": {"near": {**NANSHAN, "radiusKm": 0}}}, "radius 0"),
        ({"flt": {"near": {"latitude": 95, "longitude": 0}}}, "latitude 95"),
        ({"flt": {"agentIds": ["not-an-id"]}}, "agent id not an id"),
        ({"flt": {"districts": [f"d{n}" for n in range(101)]}}, "too many districts"),
    ]
    for kw, name in cases:
        res = await search(client, slug, **kw)
        assert error_codes(res) == ["BAD_USER_INPUT"], (name, res)
        assert res["data"] is None or res["data"]["listings"] is None, name
    # first is bounded to 0..100.
    res = await search(client, slug, first=0)
    assert res["data"]["listings"]["edges"] == []
    assert res["data"]["listings"]["pageInfo"]["hasNextPage"] is True
    res = await search(client, slug, first=1000)
    assert len(res["data"]["listings"]["edges"]) == len(world.listings)


async def test_search_is_open_to_every_reader(client, world, member):
    res = await search(client, world.a.slug, token=world.agent_token)
    assert res["data"]["listings"]["totalCount"] == len(world.listings)
    _, customer = await member(world.a, ["client"])
    res = await search(client, world.a.slug, token=customer)
    assert res["data"]["listings"]["totalCount"] == len(world.listings)
    res = await gql(client, SEARCH, {}, tenant=world.a.slug, token=None)
    assert error_codes(res) == ["UNAUTHENTICATED"], res


# ---------------------------------------------------------------- 8. tenant isolation


async def test_tenants_never_see_or_change_each_others_listings(client, world):
    a, b = world.a.slug, world.b.slug
    a_ids = {s.id for s in world.listings}
    got, total = await walk(client, b, None, "NEWEST", 100)
    assert set(got) == set(world.b_ids) and total == 3
    for flt in (
        {"districts": ["Nanshan"]},
        {"keyword": "harbour"},
        {"tags": ["metro"]},
        {"near": {**NANSHAN, "radiusKm": 500}},
        {"communities": ["Harbour One"]},
    ):
        got, total = await walk(client, b, flt, "NEWEST", 100)
        assert set(got) <= set(world.b_ids) and not set(got) & a_ids
        got, _ = await walk(client, a, flt, "NEWEST", 100)
        assert not set(got) & set(world.b_ids)

    target = world.listings[0].id
    res = await read(client, b, target, PUBLIC)
    assert res == {"data": {"listing": None}}
    bad(await set_price(client, b, target, 1), "NotFoundError", "NOT_FOUND", "listingId")
    bad(await set_status(client, b, target, "WITHDRAWN"), "NotFoundError", "NOT_FOUND", "listingId")
    res = await gql(client, VERIFY, {"id": target}, tenant=b)
    bad(res["data"]["verifyListing"], "NotFoundError", "NOT_FOUND", "listingId")
    # A's token does not open B.
    res = await read(client, b, world.b_ids[0], PUBLIC, TOKENS[a])
    assert res["data"] is None or res["data"]["listing"] is None
    assert error_codes(res), res
    # A's listing is as it was.
    x = await listing_of(client, a, target)
    # (verified once in the seed: version 2)
    assert (x["status"], x["version"], x["askingPrice"]["minorUnits"]) == (
        "ACTIVE",
        2,
        world.listings[0].price,
    )
