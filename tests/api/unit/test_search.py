"""Unit search through GraphQL (``units(filter, sort, first, after)``): every filter alone and
combined, every sort with cursor pagination, typed errors for bad input, totalCount on demand,
bounded SQL round trips, tenant isolation and permissions, unit types.

One data set is seeded per module (tenant A: four projects, ~75 units; tenant B: a few units).
Every expectation is computed in Python from that seed, never read back from the search."""

from __future__ import annotations

import base64
import json
import math
import random
import re
import threading
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.pool import NullPool

from api.app import create_app
from api.db import make_engine
from tenants.provisioning import create_tenant
from tenants.registry import TenantInfo
from tests.api.helpers import create_building, create_project
from tests.api.unit.helpers import CREATE_UNIT_TYPE, create_units, ok
from tests.conftest import TOKENS, LiveServer, add_member, gql, unique_slug
from tests.conftest import test_settings as gateway_settings

BIG = 2**63 - 1
INT32_MAX = 2**31 - 1

SEARCH = """
query($filter: UnitFilter, $sort: UnitSort, $first: Int, $after: String) {
  units(filter: $filter, sort: $sort, first: $first, after: $after) {
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

SEARCH_COUNTED = """
query($filter: UnitFilter, $sort: UnitSort, $first: Int, $after: String) {
  units(filter: $filter, sort: $sort, first: $first, after: $after) {
    totalCount
    edges { cursor node { id } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

ALL_FIELDS = """
query($first: Int) {
  units(first: $first) {
    edges { node { id number floor grossArea rooms orientation status tags
      listPrice { minorUnits } pricePerM2 { minorUnits } } }
  }
}
"""

NESTED = """
query($first: Int) {
  units(first: $first, sort: PRICE_ASC) {
    edges { node { id number
      building { name project { name } }
      project { name }
      unitType { name } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


# ---------------------------------------------------------------- the seed, as Python knows it


@dataclass
class Proj:
    key: str
    id: str
    name: str
    city: str
    district: str
    lat: float | None
    lng: float | None


@dataclass
class SeedUnit:
    id: str
    project: Proj
    building_id: str
    building_name: str
    type_id: str | None
    type_name: str
    floor: int
    number: str
    area: Decimal
    rooms: int | None
    orientation: str | None
    price: int | None
    ppm2: int | None
    status: str
    tags: list[str]

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(self.id)

    @property
    def text(self) -> str:
        """What the keyword is matched against (api.unit.service.search_text)."""
        p = self.project
        parts = (p.name, p.district, p.city, self.building_name, self.number, self.type_name)
        return " ".join(x for x in parts if x).lower()


@dataclass
class World:
    a: TenantInfo
    b: TenantInfo
    agent_token: str
    projects: dict[str, Proj]
    buildings: dict[str, str]  # name -> id (names are unique in tenant A)
    types: dict[tuple[str, str], str]  # (project key, type name) -> id
    units: list[SeedUnit]
    b_unit_ids: list[str] = field(default_factory=list)
    b_project_id: str = ""
    b_type_id: str = ""


# (key, name, city, district, lat, lng, [(building, floors, units)], [(type, rooms, area, ori)])
LAYOUT = [
    (
        "ns",
        "Harbour One",
        "Shenzhen",
        "Nanshan",
        "22.53",
        "113.93",
        [("Block 1", 20, 15), ("Block 2", 20, 15)],
        [("Sea View 3BR", 3, "89.50", "S"), ("Compact 2BR", 2, "68.00", "E")],
    ),
    (
        "ft",
        "Lotus Garden",
        "Shenzhen",
        "Futian",
        "22.54",
        "114.05",
        [("Block_1", 30, 25)],
        [("Garden 4BR", 4, "128.00", "SE"), ("Compact 2BR", 2, "70.25", None)],
    ),
    (
        "gz",
        "Pearl River Court",
        "Guangzhou",
        "Tianhe",
        "23.13",
        "113.26",
        [("Tower A", 15, 14)],
        [("River 3BR", 3, "95.00", "N")],
    ),
    # In Nanshan, but without coordinates: never matches ``near``.
    ("ng", "Villas 100%", "Shenzhen", "Nanshan", None, None, [("V", 3, 6)], []),
]

# Prices in minor units; several above 2**31 (a 26M CNY flat), and ties on purpose.
PRICES = [
    None,
    180_000_000,
    250_000_000,
    250_000_000,
    420_000_000,
    999_000_000,
    1_500_000_000,
    2_600_000_000,
    3_200_000_000,
]
AREAS = ["58.00", "68.00", "89.50", "89.50", "95.00", "120.00", "143.75"]
ORIENTATIONS = [None, "S", "s", "N", "SE", "E", "NS"]
TAGS = ["sea-view", "school", "metro", "corner", "renovated"]


def km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    dlat = math.radians(lat2 - lat1) / 2
    dlng = math.radians(lng2 - lng1) / 2
    a = (
        math.sin(dlat) ** 2
        + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.sin(dlng) ** 2
    )
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


async def _new_tenant(engine, kit, name: str) -> TenantInfo:
    tenant = (await create_tenant(engine, unique_slug("srch"), name)).tenant
    _, TOKENS[tenant.slug] = await add_member(engine, kit, tenant, ["admin"], name="Admin")
    return tenant


async def _unit_type(client, slug: str, project_id: str, name, rooms, area, ori) -> str:
    fields = {"projectId": project_id, "name": name, "rooms": rooms, "grossArea": area}
    if ori:
        fields["orientation"] = ori
    res = await gql(client, CREATE_UNIT_TYPE, {"input": fields}, tenant=slug)
    return ok(res, "createUnitType", "UnitTypePayload")["unitType"]["id"]


async def _seed_a(client, slug: str) -> tuple[dict, dict, dict, list[SeedUnit]]:
    rng = random.Random(20240601)
    projects, buildings, types = {}, {}, {}
    type_specs: dict[str, tuple] = {}  # type id -> (name, rooms, area, ori)
    units: list[SeedUnit] = []
    for key, name, city, district, lat, lng, blds, tps in LAYOUT:
        geo = {"latitude": lat, "longitude": lng} if lat else {}
        p = await create_project(client, slug, name, city=city, district=district, **geo)
        proj = Proj(
            key,
            p["id"],
            name,
            city,
            district,
            float(lat) if lat else None,
            float(lng) if lng else None,
        )
        projects[key] = proj
        ptypes = []
        for tname, rooms, area, ori in tps:
            tid = await _unit_type(client, slug, proj.id, tname, rooms, area, ori)
            types[(key, tname)] = tid
            type_specs[tid] = (tname, rooms, Decimal(area), ori)
            ptypes.append(tid)
        for bname, floors, count in blds:
            bid = (await create_building(client, slug, proj.id, bname, floors))["id"]
            buildings[bname] = bid
            taken: set[str] = set()
            specs, expected = [], []
            for i in range(count):
                if bname == "Block 1" and i == 0:
                    floor, number = 10, "1001"  # "100%" unescaped would match it
                else:
                    floor = rng.randint(1, floors)
                    seq = 1
                    while f"{floor}{seq:02d}" in taken:
                        seq += 1
                    number = f"{floor}{seq:02d}"
                taken.add(number)
                tid = rng.choice([*ptypes, None]) if ptypes else None
                tspec = type_specs.get(tid) if tid else None
                area = None if tspec and rng.random() < 0.5 else rng.choice(AREAS)
                rooms = None if rng.random() < 0.2 else rng.randint(1, 4)
                ori = rng.choice(ORIENTATIONS)
                price = rng.choice(PRICES)
                status = "PLANNED" if price is None or rng.random() < 0.2 else "AVAILABLE"
                tags = rng.sample(TAGS, rng.randint(0, 3))
                spec = {
                    "buildingId": bid,
                    "floor": floor,
                    "number": number,
                    "status": status,
                    "tags": tags,
                }
                for k, v in (
                    ("unitTypeId", tid),
                    ("grossArea", area),
                    ("rooms", rooms),
                    ("orientation", ori),
                    ("listPrice", price),
                ):
                    if v is not None:
                        spec[k] = v
                specs.append(spec)
                expected.append(
                    SeedUnit(
                        id="",
                        project=proj,
                        building_id=bid,
                        building_name=bname,
                        type_id=tid,
                        type_name=tspec[0] if tspec else "",
                        floor=floor,
                        number=number,
                        area=Decimal(area) if area else tspec[2],
                        rooms=rooms if rooms is not None else (tspec[1] if tspec else None),
                        orientation=ori.upper() if ori else (tspec[3] if tspec else None),
                        price=price,
                        ppm2=None,
                        status=status,
                        tags=tags,
                    )
                )
            created = await create_units(client, slug, specs)
            for u, row in zip(expected, created, strict=True):
                assert row["number"] == u.number
                u.id = row["id"]
                u.ppm2 = row["pricePerM2"]["minorUnits"] if row["pricePerM2"] else None
            units.extend(expected)
    return projects, buildings, types, units


async def _change_statuses(client, slug: str, units: list[SeedUnit]) -> None:
    """Reserve some available units and sell others, in one operation (mutations run in
    order)."""
    available = [u for u in units if u.status == "AVAILABLE"]
    rng = random.Random(7)
    picked = rng.sample(available, 12)
    steps = []
    for u in picked[:7]:
        steps.append((u, ["RESERVED"]))
    for u in picked[7:]:
        steps.append((u, ["RESERVED", "SUBSCRIBED", "CONTRACTED", "SOLD"]))
    fields = []
    for u, path in steps:
        for status in path:
            fields.append(
                f'c{len(fields)}: changeUnitStatus(input: {{unitId: "{u.id}", status: {status}}})'
                " { __typename }"
            )
        u.status = path[-1]
    res = await gql(client, "mutation {\n" + "\n".join(fields) + "\n}", tenant=slug)
    assert "errors" not in res, res
    assert {v["__typename"] for v in res["data"].values()} == {"UnitPayload"}, res


@pytest.fixture(scope="module")
async def client(live_server):
    """One HTTP client for the whole module (overrides the per-test one: ~100 tests)."""
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
async def world(engine, kit, client) -> World:
    a = await _new_tenant(engine, kit, "Search Realty A")
    b = await _new_tenant(engine, kit, "Search Realty B")
    _, agent_token = await add_member(engine, kit, a, ["agent"], name="Agent")
    projects, buildings, types, units = await _seed_a(client, a.slug)
    await _change_statuses(client, a.slug, units)

    # Tenant B: look-alike data (same project name and district, coordinates, keyword).
    bp = await create_project(
        client,
        b.slug,
        "Harbour One",
        city="Shenzhen",
        district="Nanshan",
        latitude="22.53",
        longitude="113.93",
    )
    bb = await create_building(client, b.slug, bp["id"], "Block 1", 20)
    btype = await _unit_type(client, b.slug, bp["id"], "Sea View 3BR", 3, "89.50", "S")
    b_units = await create_units(
        client,
        b.slug,
        [
            {
                "buildingId": bb["id"],
                "floor": f,
                "number": f"{f}01",
                "unitTypeId": btype,
                "listPrice": 250_000_000,
                "status": "AVAILABLE",
                "tags": ["metro"],
            }
            for f in (1, 2, 3, 10)
        ],
    )

    # The seed as the API shows it is the seed as Python knows it.
    res = await gql(client, ALL_FIELDS, {"first": 100}, tenant=a.slug)
    assert "errors" not in res, res
    got = {e["node"]["id"]: e["node"] for e in res["data"]["units"]["edges"]}
    assert len(got) == len(units)
    for u in units:
        n = got[u.id]
        assert (
            n["number"],
            n["floor"],
            Decimal(n["grossArea"]),
            n["rooms"],
            n["orientation"],
            n["status"],
            n["tags"],
        ) == (u.number, u.floor, u.area, u.rooms, u.orientation, u.status, u.tags), (u, n)
        assert (n["listPrice"] or {}).get("minorUnits") == u.price
        assert (n["pricePerM2"] or {}).get("minorUnits") == u.ppm2
        if u.price is not None:  # round(list_price / gross_area), half away from zero
            assert u.ppm2 == int((u.price / u.area).quantize(Decimal(1), ROUND_HALF_UP))
    return World(
        a=a,
        b=b,
        agent_token=agent_token,
        projects=projects,
        buildings=buildings,
        types=types,
        units=units,
        b_unit_ids=[u["id"] for u in b_units],
        b_project_id=bp["id"],
        b_type_id=btype,
    )


# ---------------------------------------------------------------- expectations in Python


def matches(u: SeedUnit, f: dict) -> bool:
    p = u.project
    checks = [
        ("projectIds", lambda v: p.id in v),
        ("buildingIds", lambda v: u.building_id in v),
        ("unitTypeIds", lambda v: u.type_id in v),
        ("districts", lambda v: p.district in v),
        ("statuses", lambda v: u.status in v),
        ("rooms", lambda v: u.rooms in v),
        ("orientations", lambda v: u.orientation in {o.upper() for o in v}),
        ("tags", lambda v: set(v) <= set(u.tags)),
        ("priceMin", lambda v: u.price is not None and u.price >= v),
        ("priceMax", lambda v: u.price is not None and u.price <= v),
        ("areaMin", lambda v: u.area >= Decimal(v)),
        ("areaMax", lambda v: u.area <= Decimal(v)),
        ("floorMin", lambda v: u.floor >= v),
        ("floorMax", lambda v: u.floor <= v),
        ("keyword", lambda v: v.strip().lower()[:100] in u.text),
        (
            "near",
            lambda v: (
                p.lat is not None
                and km(v["latitude"], v["longitude"], p.lat, p.lng) <= v.get("radiusKm", 5.0)
            ),
        ),
    ]
    return all(check(f[name]) for name, check in checks if f.get(name) is not None)


def expected_ids(
    units: list[SeedUnit], f: dict, sort: str = "NEWEST", sims: dict | None = None
) -> list[str]:
    """The ids the search must return, in order. The id breaks ties in the sort's direction."""
    near = f.get("near")

    def dist(u: SeedUnit) -> float:
        return km(near["latitude"], near["longitude"], u.project.lat, u.project.lng)

    keys = {
        "NEWEST": (lambda u: (u.uuid,), True),
        "PRICE_ASC": (lambda u: (BIG if u.price is None else u.price, u.uuid), False),
        "PRICE_DESC": (lambda u: (-1 if u.price is None else u.price, u.uuid), True),
        "AREA_ASC": (lambda u: (u.area, u.uuid), False),
        "AREA_DESC": (lambda u: (u.area, u.uuid), True),
        "PRICE_PER_M2_ASC": (lambda u: (BIG if u.ppm2 is None else u.ppm2, u.uuid), False),
        "FLOOR_ASC": (lambda u: (u.floor, u.uuid), False),
        "DISTANCE": (lambda u: (dist(u), u.uuid), False),
        "RELEVANCE": (lambda u: (sims[u.id], u.uuid), True),
    }
    key, desc = keys[sort]
    return [u.id for u in sorted((u for u in units if matches(u, f)), key=key, reverse=desc)]


async def similarities(engine, keyword: str, units: list[SeedUnit]) -> dict[str, float]:
    """pg_trgm's word_similarity of the keyword to each unit's search text."""
    texts = sorted({u.text for u in units})
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT t, word_similarity(:k, t) FROM unnest(CAST(:ts AS text[])) AS t"),
            {"k": keyword.strip().lower(), "ts": texts},
        )
        by_text = {t: sim for t, sim in rows}
    return {u.id: by_text[u.text] for u in units}


# ---------------------------------------------------------------- GraphQL round trips


async def search(
    client, slug: str, flt=None, sort="NEWEST", first=100, after=None, *, counted=False, token=None
) -> dict:
    variables = {"filter": flt, "sort": sort, "first": first, "after": after}
    kw = {} if token is None else {"token": token}
    return await gql(client, SEARCH_COUNTED if counted else SEARCH, variables, tenant=slug, **kw)


def page(res: dict) -> dict:
    assert "errors" not in res, res
    return res["data"]["units"]


def ids_of(conn: dict) -> list[str]:
    return [e["node"]["id"] for e in conn["edges"]]


async def walk(client, slug: str, flt, sort: str, first: int, token=None) -> list[str]:
    """Every page, following pageInfo.endCursor; checks each page's shape on the way."""
    out: list[str] = []
    after = None
    for _ in range(200):
        conn = page(await search(client, slug, flt, sort, first, after, token=token))
        edges = conn["edges"]
        out += ids_of(conn)
        info = conn["pageInfo"]
        assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)
        if not info["hasNextPage"]:
            assert len(edges) <= first
            return out
        assert len(edges) == first, conn
        after = info["endCursor"]
    raise AssertionError("pagination does not end")


def error_codes(res: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in res.get("errors") or []]


def cursor(values: list) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_values(c: str) -> list:
    return json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))


# ---------------------------------------------------------------- 1. filters

NANSHAN = {"latitude": 22.53, "longitude": 113.93}
FUTIAN = {"latitude": 22.54, "longitude": 114.05}
GUANGZHOU = {"latitude": 23.13, "longitude": 113.26}

# name -> filter (given the world); each must select some, but not all, units.
FILTERS = {
    "project": lambda w: {"projectIds": [w.projects["ns"].id]},
    "projects": lambda w: {"projectIds": [w.projects["ns"].id, w.projects["gz"].id]},
    "building": lambda w: {"buildingIds": [w.buildings["Block 2"]]},
    "buildings": lambda w: {"buildingIds": [w.buildings["Block_1"], w.buildings["V"]]},
    "unit types": lambda w: {
        "unitTypeIds": [w.types[("ns", "Compact 2BR")], w.types[("ft", "Compact 2BR")]]
    },
    "district": lambda w: {"districts": ["Nanshan"]},
    "districts": lambda w: {"districts": ["Futian", "Tianhe"]},
    "status": lambda w: {"statuses": ["RESERVED"]},
    "statuses": lambda w: {"statuses": ["SOLD", "PLANNED"]},
    "rooms": lambda w: {"rooms": [2]},
    "rooms any": lambda w: {"rooms": [3, 4]},
    "orientation": lambda w: {"orientations": ["S"]},
    "orientations lower case": lambda w: {"orientations": ["se", "n"]},
    "tag": lambda w: {"tags": ["metro"]},
    "tags all of": lambda w: {"tags": ["metro", "school"]},
    "price min inclusive": lambda w: {"priceMin": 999_000_000},
    "price max inclusive": lambda w: {"priceMax": 250_000_000},
    "price exact": lambda w: {"priceMin": 999_000_000, "priceMax": 999_000_000},
    "price above 32 bits": lambda w: {"priceMin": 2_600_000_000},
    "area min inclusive": lambda w: {"areaMin": "89.50"},
    "area range inclusive": lambda w: {"areaMin": "89.50", "areaMax": "95.00"},
    "floor min": lambda w: {"floorMin": 10},
    "floor range": lambda w: {"floorMin": 4, "floorMax": 10},
    "keyword project name, any case": lambda w: {"keyword": "HARBOUR"},
    "keyword district": lambda w: {"keyword": "futian"},
    "keyword building": lambda w: {"keyword": "Tower A"},
    "keyword unit number": lambda w: {"keyword": "1001"},
    "keyword type name, trimmed": lambda w: {"keyword": "  Compact 2BR "},
    "keyword type name": lambda w: {"keyword": "sea view"},
    "keyword % literal": lambda w: {"keyword": "100%"},
    "keyword % alone": lambda w: {"keyword": "%"},
    "keyword _ literal": lambda w: {"keyword": "k_1"},
    "keyword _ alone": lambda w: {"keyword": "_"},
    # 5 km: Harbour One only, not the Nanshan project without coordinates
    "near 5 km": lambda w: {"near": {**NANSHAN, "radiusKm": 5}},
    "near 20 km": lambda w: {"near": {**NANSHAN, "radiusKm": 20}},
    "near 200 km": lambda w: {"near": {**NANSHAN, "radiusKm": 200}},
    "near default radius": lambda w: {"near": FUTIAN},
    "near guangzhou": lambda w: {"near": {**GUANGZHOU, "radiusKm": 1}},
    "near max radius": lambda w: {"near": {**GUANGZHOU, "radiusKm": 500}},
    "district + status + price": lambda w: {
        "districts": ["Nanshan"],
        "statuses": ["AVAILABLE"],
        "priceMax": 1_500_000_000,
    },
    "near + rooms + tag": lambda w: {
        "near": {**NANSHAN, "radiusKm": 20},
        "rooms": [3],
        "tags": ["sea-view"],
    },
    "keyword + floor + orientations": lambda w: {
        "keyword": "block",
        "floorMin": 3,
        "orientations": ["S", "SE", "E"],
    },
    "project + area + price": lambda w: {
        "projectIds": [w.projects["ft"].id],
        "areaMax": "95.00",
        "priceMin": 250_000_000,
    },
}


@pytest.mark.parametrize("name", list(FILTERS))
async def test_filter(client, world, name):
    flt = FILTERS[name](world)
    want = expected_ids(world.units, flt)
    assert 0 < len(want) < len(world.units), (name, len(want))
    conn = page(await search(client, world.a.slug, flt, counted=True))
    assert ids_of(conn) == want
    assert conn["totalCount"] == len(want)
    assert conn["pageInfo"]["hasNextPage"] is False


async def test_filters_that_contradict_find_nothing(client, world):
    flt = {"projectIds": [world.projects["ns"].id], "buildingIds": [world.buildings["Block_1"]]}
    conn = page(await search(client, world.a.slug, flt, counted=True))
    assert conn == {
        "totalCount": 0,
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }


async def test_filter_cases_discriminate(world):
    """The seed makes the tricky filter cases meaningful (not vacuously right)."""
    units = world.units
    texts = [u.text for u in units]
    # an unescaped "100%" would also match unit 1001; an unescaped "k_1" also "block 1"
    assert any("100" in t and "100%" not in t for t in texts)
    assert any("block 1" in t for t in texts) and any("block_1" in t for t in texts)
    # tags are all-of: fewer than any-of
    both = expected_ids(units, {"tags": ["metro", "school"]})
    either = {u.id for u in units if {"metro", "school"} & set(u.tags)}
    assert 0 < len(both) < len(either)
    # the project without coordinates is in Nanshan, yet not near Nanshan
    ng = {u.id for u in units if u.project.key == "ng"}
    assert ng and ng <= set(expected_ids(units, {"districts": ["Nanshan"]}))
    assert not ng & set(expected_ids(units, {"near": {**NANSHAN, "radiusKm": 500}}))
    # the inclusive bounds used above are values some units have exactly
    assert {999_000_000, 250_000_000, 2_600_000_000} <= {u.price for u in units}
    assert {Decimal("89.50"), Decimal("95.00")} <= {u.area for u in units}
    assert {4, 10} <= {u.floor for u in units}
    # prices above 32 bits, units without a price, and price ties
    prices = [u.price for u in units]
    assert any(p and p > INT32_MAX for p in prices) and None in prices
    assert any(prices.count(p) > 1 for p in prices if p)


# ---------------------------------------------------------------- 2. sorts and cursors

SORT_CASES = [
    ("NEWEST", {}),
    ("PRICE_ASC", {}),
    ("PRICE_DESC", {}),
    ("AREA_ASC", {}),
    ("AREA_DESC", {}),
    ("PRICE_PER_M2_ASC", {}),
    ("FLOOR_ASC", {}),
    ("DISTANCE", {"near": {**NANSHAN, "radiusKm": 200}}),
    ("DISTANCE", {"near": {**GUANGZHOU, "radiusKm": 500}, "statuses": ["AVAILABLE"]}),
    ("RELEVANCE", {"keyword": "1"}),  # three distinct similarities, many ties
    ("RELEVANCE", {"keyword": "HA"}),  # two
    ("PRICE_ASC", {"districts": ["Nanshan"]}),
    ("PRICE_DESC", {"tags": ["metro"]}),
    ("AREA_DESC", {"keyword": "compact"}),
]


@pytest.mark.parametrize(("sort", "flt"), SORT_CASES)
async def test_sort_order_and_pages(client, engine, world, sort, flt):
    sims = await similarities(engine, flt["keyword"], world.units) if "keyword" in flt else None
    want = expected_ids(world.units, flt, sort, sims)
    assert len(want) > 7
    slug = world.a.slug

    big = page(await search(client, slug, flt, sort, first=100))
    assert ids_of(big) == want
    assert big["pageInfo"]["hasNextPage"] is False
    # Small pages: every unit exactly once, in the same order as one big page.
    walked = await walk(client, slug, flt, sort, 7)
    assert len(walked) == len(set(walked))
    assert walked == want
    # Each cursor names its sort.
    assert {cursor_values(e["cursor"])[0] for e in big["edges"]} == {sort}
    if sort == "RELEVANCE":
        keys = [cursor_values(e["cursor"])[1] for e in big["edges"]]
        assert keys == [sims[i] for i in want]
        assert len(set(keys)) > 1  # not only ties


async def test_unpriced_units_come_last_and_ties_are_stable(client, world):
    slug = world.a.slug
    unpriced = {u.id for u in world.units if u.price is None}
    price = {u.id: u.price for u in world.units}
    for sort in ("PRICE_ASC", "PRICE_DESC"):
        got = ids_of(page(await search(client, slug, None, sort)))
        tail = got[len(got) - len(unpriced) :]
        assert set(tail) == unpriced, sort
        priced = [price[i] for i in got[: len(got) - len(unpriced)]]
        assert priced == sorted(priced, reverse=sort == "PRICE_DESC")
        # equal prices: ordered by id, in the sort's direction, the same on every call
        for p in set(priced):
            same = [i for i in got if price[i] == p]
            assert same == sorted(same, key=uuid.UUID, reverse=sort == "PRICE_DESC")
        assert ids_of(page(await search(client, slug, None, sort))) == got


async def test_walk_with_a_filter_and_page_size_one(client, world):
    flt = {"projectIds": [world.projects["gz"].id]}
    want = expected_ids(world.units, flt, "PRICE_DESC")
    assert await walk(client, world.a.slug, flt, "PRICE_DESC", 1) == want


# ---------------------------------------------------------------- 3. bad input


UID = "01900000-0000-7000-8000-000000000000"
BAD_INPUT = {
    "garbage cursor": {"after": "not a cursor!!"},
    "cursor of random bytes": {"after": "abc"},
    "cursor of a JSON object": {"after": cursor({"a": 1})},  # type: ignore[arg-type]
    "cursor too short": {"sort": "PRICE_ASC", "after": cursor(["PRICE_ASC", 1])},
    "cursor with a bad id": {"sort": "PRICE_ASC", "after": cursor(["PRICE_ASC", 1, "nope"])},
    "cursor with a bad key": {"sort": "PRICE_ASC", "after": cursor(["PRICE_ASC", "x", UID])},
    "cursor with a bad area": {"sort": "AREA_ASC", "after": cursor(["AREA_ASC", "big", UID])},
    "cursor with a list key": {"sort": "FLOOR_ASC", "after": cursor(["FLOOR_ASC", [1], UID])},
    "cursor of another sort": {"sort": "AREA_ASC", "after": cursor(["PRICE_ASC", 1, UID])},
    "NEWEST cursor for PRICE_ASC": {"sort": "PRICE_ASC", "after": cursor(["NEWEST", None, UID])},
    "DISTANCE without near": {"sort": "DISTANCE"},
    "RELEVANCE without keyword": {"sort": "RELEVANCE"},
    "RELEVANCE with a blank keyword": {"sort": "RELEVANCE", "filter": {"keyword": "   "}},
    "non-UUID project id": {"filter": {"projectIds": [UID, "not-a-uuid"]}},
    "non-UUID building id": {"filter": {"buildingIds": ["42"]}},
    "non-UUID unit type id": {"filter": {"unitTypeIds": ["x"]}},
    "radius 0": {"filter": {"near": {**NANSHAN, "radiusKm": 0}}},
    "radius negative": {"filter": {"near": {**NANSHAN, "radiusKm": -5}}},
    "radius above 500": {"filter": {"near": {**NANSHAN, "radiusKm": 500.5}}},
    "latitude out of range": {"filter": {"near": {"latitude": 91, "longitude": 1}}},
    "longitude out of range": {"filter": {"near": {"latitude": 1, "longitude": -181}}},
    "too many districts": {"filter": {"districts": [f"d{i}" for i in range(101)]}},
    "price not a Long": {"filter": {"priceMin": "cheap"}},
    "price beyond 64 bits": {"filter": {"priceMax": 2**63}},
    "unknown status": {"filter": {"statuses": ["GONE"]}},
    "unknown sort": {"sort": "CHEAPEST"},
}


@pytest.mark.parametrize("name", list(BAD_INPUT))
async def test_bad_input_is_a_typed_error(client, world, name):
    variables = {"filter": None, "sort": "NEWEST", "first": 5, "after": None, **BAD_INPUT[name]}
    res = await gql(client, SEARCH, variables, tenant=world.a.slug)
    assert res.get("data") is None, res
    assert error_codes(res) == ["BAD_USER_INPUT"], res


async def test_a_cursor_of_another_sort_is_refused(client, world):
    slug = world.a.slug
    conn = page(await search(client, slug, None, "PRICE_ASC", first=3))
    after = conn["pageInfo"]["endCursor"]
    for sort in ("AREA_ASC", "NEWEST", "PRICE_DESC"):
        res = await search(client, slug, None, sort, first=3, after=after)
        assert error_codes(res) == ["BAD_USER_INPUT"], (sort, res)
    # the same cursor with its own sort goes on where the page ended
    want = expected_ids(world.units, {}, "PRICE_ASC")
    assert ids_of(page(await search(client, slug, None, "PRICE_ASC", 3, after))) == want[3:6]


FORGED = {
    "price key beyond 64 bits": ["PRICE_ASC", 10**30],
    "price key beyond 32 bits": ["PRICE_ASC", 3_000_000_000],
    "floor key beyond 16 bits": ["FLOOR_ASC", 10**6],
    "area key infinite": ["AREA_ASC", "Infinity"],
    "area key huge": ["AREA_DESC", "1e999999"],
    "distance key huge": ["DISTANCE", 1e308],
}


@pytest.mark.parametrize("name", list(FORGED))
async def test_forged_cursor_values_are_never_internal(client, world, name):
    """A cursor the server never made, with a key of the right type but out of any range, is
    refused as BAD_USER_INPUT or simply pages on; it is never an INTERNAL error."""
    sort, key = FORGED[name]
    flt = {"near": {**NANSHAN, "radiusKm": 200}} if sort == "DISTANCE" else None
    res = await search(client, world.a.slug, flt, sort, 5, cursor([sort, key, UID]))
    assert "INTERNAL" not in error_codes(res), res
    assert error_codes(res) in ([], ["BAD_USER_INPUT"]), res


# ---------------------------------------------------------------- 4. totalCount


async def test_total_count_is_the_number_of_matches_whatever_the_page(client, world):
    slug = world.a.slug
    flt = {"districts": ["Nanshan", "Futian"], "statuses": ["AVAILABLE", "PLANNED"]}
    want = expected_ids(world.units, flt, "PRICE_ASC")
    first = page(await search(client, slug, flt, "PRICE_ASC", 5, counted=True))
    assert first["totalCount"] == len(want) and ids_of(first) == want[:5]
    after = first["pageInfo"]["endCursor"]
    second = page(await search(client, slug, flt, "PRICE_ASC", 5, after, counted=True))
    assert second["totalCount"] == len(want) and ids_of(second) == want[5:10]
    near = {"near": {**NANSHAN, "radiusKm": 20}, "keyword": "block"}
    conn = page(await search(client, slug, near, "DISTANCE", 3, counted=True))
    assert conn["totalCount"] == len(expected_ids(world.units, near))
    nothing = page(await search(client, slug, {"floorMin": 99}, counted=True))
    assert (nothing["totalCount"], nothing["edges"]) == (0, [])


@pytest.mark.parametrize(
    "flt", [None, {}, {"tags": []}, {"keyword": "  "}], ids=["null", "empty", "no tags", "blank"]
)
async def test_total_count_without_any_filter_counts_every_unit(client, world, flt):
    """No filter (or only empty ones) matches every unit of the tenant, so totalCount is the
    number of units, whatever the page size."""
    for first in (0, 5):
        conn = page(await search(client, world.a.slug, flt, first=first, counted=True))
        assert len(conn["edges"]) == first
        assert conn["totalCount"] == len(world.units), (flt, first)


# ---------------------------------------------------------------- 5. SQL round trips


class StatementCounter:
    """Every statement the gateway's engine sends while active."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []
        self.lock = threading.Lock()

    def on_execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        with self.lock:
            self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine.sync_engine, "before_cursor_execute", self.on_execute)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self.on_execute)

    def take(self) -> list[str]:
        with self.lock:
            out, self.statements = self.statements, []
        return out


@pytest.fixture(scope="module")
def counted_server(db_url):
    """A gateway on an engine this module owns, so it can listen to its statements."""
    # one engine for every statement (no lanes: tenants/routing.py), so all are counted
    settings = gateway_settings(db_lane_size=0)
    engine = make_engine(db_url, settings, poolclass=NullPool)
    server = LiveServer(create_app(settings, engine=engine)).start()
    try:
        yield server, engine
    finally:
        server.stop()


def _tables(statement: str) -> list[str]:
    return re.findall(r'FROM "?(\w+)"?\.("?\w+"?)', statement)


async def test_statements_per_page_are_bounded(counted_server, world):
    server, engine = counted_server
    slug = world.a.slug
    by_id = {u.id: u for u in world.units}
    type_names = {tid: name for (_, name), tid in world.types.items()}
    counts = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await gql(client, "{ __typename }", tenant=slug)  # the engine's first connect
        for first in (5, 20, 60):
            with StatementCounter(engine) as counter:
                res = await gql(client, NESTED, {"first": first}, tenant=slug)
                statements = counter.take()
            edges = page(res)["edges"]
            assert len(edges) == first
            for e in edges:
                u, n = by_id[e["node"]["id"]], e["node"]
                assert n["building"] == {
                    "name": u.building_name,
                    "project": {"name": u.project.name},
                }
                assert n["project"] == {"name": u.project.name}
                assert n["unitType"] == ({"name": type_names[u.type_id]} if u.type_id else None)
            counts[first] = statements
    # Per request, whatever the page size:
    #   1. the tenant registry lookup (tenant_cache_ttl is 0 in tests),
    #   2. the caller's membership and session (authentication, shared schema),
    #   3. the search itself (one SELECT ... LIMIT first + 1),
    #   4. projects by ids (one DataLoader batch for unit.project and building.project),
    #   5. buildings by ids (DataLoader),
    #   6. unit types by ids (DataLoader).
    # No statement per unit, and no count(*) unless totalCount is asked for.
    detail = {k: "\n---\n".join(v) for k, v in counts.items()}
    assert [len(v) for v in counts.values()] == [6, 6, 6], detail
    tenant_tables = sorted(
        t for s in counts[20] for schema, t in _tables(s) if schema == world.a.schema_name
    )
    assert tenant_tables == ["building", "project", "unit", "unit_type"], detail[20]
    assert not any("count(" in s.lower() for s in counts[20])


async def test_total_count_costs_one_statement_only_when_asked(counted_server, world):
    server, engine = counted_server
    slug = world.a.slug
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await gql(client, "{ __typename }", tenant=slug)
        seen = {}
        for counted in (False, True):
            with StatementCounter(engine) as counter:
                conn = page(await search(client, slug, {"rooms": [3]}, first=5, counted=counted))
                seen[counted] = counter.take()
            if counted:
                assert conn["totalCount"] == len(expected_ids(world.units, {"rooms": [3]}))
    assert len(seen[True]) == len(seen[False]) + 1, seen
    assert not any("count(" in s.lower() for s in seen[False]), seen[False]
    assert sum("count(" in s.lower() for s in seen[True]) == 1, seen[True]


# ---------------------------------------------------------------- 6. tenants and permissions


async def test_tenant_b_never_sees_tenant_a(client, world):
    a, b = world.a.slug, world.b.slug
    a_ids = {u.id for u in world.units}
    same_searches = [
        None,
        {"keyword": "harbour"},
        {"districts": ["Nanshan"]},
        {"near": {**NANSHAN, "radiusKm": 500}},
        {"tags": ["metro"]},
    ]
    for flt in same_searches:
        conn = page(await search(client, b, flt, "PRICE_ASC", counted=True))
        got = ids_of(conn)
        assert set(got) == set(world.b_unit_ids) and not set(got) & a_ids, flt
        if flt:  # (totalCount without a filter: see test_total_count_without_any_filter...)
            assert conn["totalCount"] == len(world.b_unit_ids)
    # A's own ids as filters, through B: nothing.
    for flt in (
        {"projectIds": [p.id for p in world.projects.values()]},
        {"buildingIds": list(world.buildings.values())},
        {"unitTypeIds": list(world.types.values())},
    ):
        conn = page(await search(client, b, flt, counted=True))
        assert (conn["edges"], conn["totalCount"]) == ([], 0), flt
    # and B's ids through A: nothing either
    conn = page(await search(client, a, {"projectIds": [world.b_project_id]}, counted=True))
    assert (conn["edges"], conn["totalCount"]) == ([], 0)

    unit, utype = world.units[0], next(iter(world.types.values()))
    query = "query($u: ID!, $t: ID!) { unit(id: $u) { id } unitType(id: $t) { id } }"
    res = await gql(client, query, {"u": unit.id, "t": utype}, tenant=b)
    assert res == {"data": {"unit": None, "unitType": None}}
    res = await gql(client, query, {"u": unit.id, "t": utype}, tenant=a)
    assert res == {"data": {"unit": {"id": unit.id}, "unitType": {"id": utype}}}
    # B's ids through A: null too
    res = await gql(client, query, {"u": world.b_unit_ids[0], "t": world.b_type_id}, tenant=a)
    assert res == {"data": {"unit": None, "unitType": None}}


async def test_an_agent_can_search(client, world):
    flt = {"districts": ["Nanshan"], "statuses": ["AVAILABLE"]}
    want = expected_ids(world.units, flt, "PRICE_ASC")
    token = world.agent_token
    conn = page(await search(client, world.a.slug, flt, "PRICE_ASC", counted=True, token=token))
    assert ids_of(conn) == want and conn["totalCount"] == len(want)
    assert await walk(client, world.a.slug, flt, "PRICE_ASC", 4, token=token) == want
    # the agent's token is of tenant A only
    res = await search(client, world.b.slug, None, token=token)
    assert res.get("data") is None and error_codes(res) == ["UNAUTHENTICATED"], res


async def test_anonymous_callers_are_refused(client, world):
    res = await gql(client, SEARCH, {"first": 5}, tenant=world.a.slug, token=None)
    assert res.get("data") is None and error_codes(res) == ["UNAUTHENTICATED"], res
    res = await gql(client, SEARCH_COUNTED, {"first": 5}, tenant=world.a.slug, token="not.a.jwt")
    assert res.get("data") is None and error_codes(res) == ["UNAUTHENTICATED"], res


# ---------------------------------------------------------------- 7. unit types


async def test_project_unit_types_and_unit_unit_type(client, world):
    slug = world.a.slug
    query = "query($id: ID!) { project(id: $id) { unitTypes { id name rooms grossArea } } }"
    for key, *_, tps in LAYOUT:
        res = await gql(client, query, {"id": world.projects[key].id}, tenant=slug)
        assert "errors" not in res, res
        want = [
            {"id": world.types[(key, n)], "name": n, "rooms": r, "grossArea": a}
            for n, r, a, _ in sorted(tps)
        ]
        assert res["data"]["project"]["unitTypes"] == want, key

    query = """
    query($filter: UnitFilter) { units(filter: $filter, first: 100) { edges { node {
      id unitType { id name project { id } } } } } }
    """
    res = await gql(client, query, {"filter": {"districts": ["Futian"]}}, tenant=slug)
    nodes = [e["node"] for e in page(res)["edges"]]
    by_id = {u.id: u for u in world.units}
    assert nodes and any(n["unitType"] is None for n in nodes)
    for n in nodes:
        u = by_id[n["id"]]
        if u.type_id is None:
            assert n["unitType"] is None
        else:
            assert n["unitType"] == {
                "id": u.type_id,
                "name": u.type_name,
                "project": {"id": u.project.id},
            }

    query = "query($id: ID!) { unitType(id: $id) { id name project { name } } }"
    tid = world.types[("gz", "River 3BR")]
    res = await gql(client, query, {"id": tid}, tenant=slug)
    assert res == {
        "data": {
            "unitType": {"id": tid, "name": "River 3BR", "project": {"name": "Pearl River Court"}}
        }
    }
    res = await gql(client, query, {"id": "not-a-uuid"}, tenant=slug)
    assert res == {"data": {"unitType": None}}
