"""The inventory search scenario: one tenant with 100,000 units (small size: 10,000) in four
projects (four districts, with coordinates), 20 buildings and 10 unit types, with photos of
every unit type and of some units. Each request asks for a page of 20 units, cheapest first,
with their building, unit type and first photo, under a varied filter (districts, AVAILABLE,
rooms, a price band) drawn from a seeded RNG: the same list for both servers.

The raw baseline (``/search`` in bench/servers.py) runs the statements the gateway runs
(membership, the search SELECT, buildings by ids, unit types by ids, photos by owner ids) and
builds the same JSON by hand; both answers to the first requests must be equal before anything
is measured. Seeding uses COPY.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import random
import statistics
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from api.db import asyncpg_dsn, embedded_url, ensure_database, make_engine
from api.ids import uuid7
from api.security.kit import build_kit
from api.settings import Settings
from bench.http import assert_same, compare, server_env, start, stop
from bench.seed import SEEDED_AT, UNIT_COLUMNS, tenant_with_admin, unit_record
from tenants.migrate import upgrade_shared
from tenants.sessions import TenantDatabase

QUERY = (
    "query($f: UnitFilter) { units(filter: $f, sort: PRICE_ASC, first: 20) { edges { cursor "
    "node { id number floor grossArea rooms status listPrice { minorUnits } building { name } "
    "unitType { name } firstPhoto { url thumbnailUrl } } } pageInfo { hasNextPage endCursor } } }"
)

# name, district, latitude, longitude, price per m² (yuan), unit types (indexes into TYPES)
PROJECTS = [
    ("滨江花园", "浦东新区", "31.230416", "121.544037", 95_000, (0, 1, 2)),
    ("徐汇公园里", "徐汇区", "31.188012", "121.436524", 105_000, (1, 2, 4)),
    ("闵行湖畔", "闵行区", "31.112813", "121.381709", 62_000, (0, 1)),
    ("静安府", "静安区", "31.229015", "121.448012", 125_000, (3, 4)),
]
DISTRICTS = [p[1] for p in PROJECTS]
# name, rooms, gross area (m²), weight among its project's units
TYPES = [
    ("A1 一室一厅", 1, 48, 2),
    ("B2 两室两厅", 2, 78, 4),
    ("C3 三室两厅", 3, 99, 4),
    ("D3 三室两厅", 3, 118, 3),
    ("E4 四室两厅", 4, 142, 2),
]
BUILDINGS_PER_PROJECT = 5
STATUSES = {
    "available": 45,
    "planned": 8,
    "on_hold": 2,
    "reserved": 5,
    "subscribed": 5,
    "contracted": 12,
    "sold": 18,
    "delivered": 5,
}
ORIENTATIONS = {
    "S": 35,
    "NS": 25,
    "SE": 10,
    "SW": 10,
    "E": 5,
    "W": 5,
    "N": 3,
    "NE": 2,
    "NW": 2,
    "EW": 3,
}
MEDIA_COLUMNS = (
    "id",
    "owner_kind",
    "owner_id",
    "kind",
    "storage_key",
    "thumb_key",
    "link_url",
    "content_type",
    "size",
    "width",
    "height",
    "position",
    "caption",
    "created_by",
    "created_at",
)
HOLD_UNTIL = datetime(2030, 1, 1, tzinfo=UTC)


def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _photo(
    rng: random.Random,
    slug: str,
    owner_kind: str,
    owner_id,
    position: int,
    thumb: bool = True,
    kind: str = "photo",
) -> tuple:
    key = f"{slug}/2026/11/{rng.getrandbits(144):036x}.jpg"
    return (
        uuid7(),
        owner_kind,
        owner_id,
        kind,
        key,
        key[:-4] + "-thumb.jpg" if thumb else None,
        None,
        "image/jpeg",
        rng.randint(150_000, 900_000),
        1600,
        1200,
        position,
        "",
        None,
        SEEDED_AT,
    )


def generate(n_units: int, slug: str, rng: random.Random) -> dict:
    """Rows of every table (projects, buildings, unit types, units, media), as tuples."""
    projects, buildings, types, units, media = [], [], [], [], []
    per_building = n_units // (len(PROJECTS) * BUILDINGS_PER_PROJECT)
    for name, district, lat, lng, per_m2, type_ids in PROJECTS:
        pid = uuid7()
        projects.append(
            (pid, name, "上海", district, f"{district}{name}", Decimal(lat), Decimal(lng))
        )
        ptypes = []
        for t in type_ids:
            tname, rooms, area, weight = TYPES[t]
            tid = uuid7()
            types.append(
                (
                    tid,
                    pid,
                    tname,
                    rooms,
                    1 + (rooms > 1),
                    1 + (rooms > 2),
                    Decimal(area),
                    Decimal(area * 78) / 100,
                    "S",
                    "",
                    "",
                    "",
                    SEEDED_AT,
                )
            )
            ptypes.append((tid, tname, rooms, area, weight))
            for pos in range(3):
                media.append(_photo(rng, slug, "unit_type", tid, pos))
            media.append(_photo(rng, slug, "unit_type", tid, 3, kind="floor_plan"))
            media.append(
                (
                    uuid7(),
                    "unit_type",
                    tid,
                    "vr",
                    None,
                    None,
                    f"https://vr.example.com/{tid}",
                    "",
                    0,
                    None,
                    None,
                    4,
                    "",
                    None,
                    SEEDED_AT,
                )
            )
        for b in range(1, BUILDINGS_PER_PROJECT + 1):
            bid, bname, floors = uuid7(), f"{b}号楼", rng.randint(18, 33)
            buildings.append((bid, pid, bname, floors))
            per_floor = -(-per_building // floors)
            for k in range(per_building):
                floor, seq = k // per_floor + 1, k % per_floor + 1
                number = f"{floor}{seq:03d}"
                status = _pick(rng, STATUSES)
                if rng.random() < 0.03:  # a shop: no unit type, no rooms
                    tid, tname, rooms, area = None, "", None, rng.uniform(30, 200)
                else:
                    tid, tname, rooms, area, _ = rng.choices(
                        ptypes, weights=[t[4] for t in ptypes]
                    )[0]
                    area *= rng.uniform(0.97, 1.03)
                gross = Decimal(f"{area:.2f}")
                price = None
                if status != "planned" or rng.random() < 0.4:
                    yuan = float(gross) * per_m2 * (1 + 0.004 * floor) * rng.uniform(0.93, 1.07)
                    price = round(yuan) * 100  # minor units (fen), whole yuan
                tags = [
                    t
                    for t, p in (("corner", 0.1), ("lake_view", 0.08), ("renovated", 0.05))
                    if rng.random() < p
                ]
                if floor > 0.7 * floors:
                    tags.append("high_floor")
                uid = uuid7()
                units.append(
                    unit_record(
                        id=uid,
                        project_id=pid,
                        building_id=bid,
                        unit_type_id=tid,
                        floor=floor,
                        number=number,
                        gross_area=gross,
                        list_price=price,
                        status=status,
                        rooms=rooms,
                        orientation=_pick(rng, ORIENTATIONS),
                        tags=tags,
                        search_text=f"{name} {district} {bname} {number} {tname}".lower(),
                        hold_expires_at=HOLD_UNTIL if status == "on_hold" else None,
                    )
                )
                if rng.random() < 0.08:
                    for pos in range(rng.randint(1, 2)):
                        media.append(_photo(rng, slug, "unit", uid, pos, rng.random() < 0.9))
    return {
        "project": projects,
        "building": buildings,
        "unit_type": types,
        "unit": units,
        "media": media,
    }


def filters(rows: dict, n: int, rng: random.Random) -> tuple[list[dict], list[int]]:
    """``n`` search filters and how many units each matches. The price band is drawn around
    the price of a matching unit, so most pages are full."""
    district_of = {p[0]: p[3] for p in rows["project"]}
    prices: dict = defaultdict(list)  # (district, rooms) -> sorted prices of available units
    for u in rows["unit"]:
        # columns: see UNIT_COLUMNS (1 project_id, 9 rooms, 10 list_price, 12 status)
        if u[12] == "available" and u[10] is not None and u[9] is not None:
            prices[(district_of[u[1]], u[9])].append(u[10])
    for v in prices.values():
        v.sort()
    out, matches = [], []
    while len(out) < n:
        districts = rng.sample(DISTRICTS, rng.choice((1, 1, 2)))
        rooms = sorted(rng.sample((1, 2, 3, 4), rng.choice((1, 2))))
        pool = [p for d in districts for r in rooms for p in prices[(d, r)]]
        if not pool:
            continue
        around = rng.choice(pool) // 100  # yuan
        width = rng.choice((1_000_000, 2_000_000, 3_000_000, 5_000_000))
        lo = max(0, around - rng.randrange(0, width, 10_000)) * 100
        hi = lo + width * 100
        count = sum(
            bisect.bisect_right(prices[(d, r)], hi) - bisect.bisect_left(prices[(d, r)], lo)
            for d in districts
            for r in rooms
        )
        out.append(
            {
                "districts": districts,
                "statuses": ["AVAILABLE"],
                "rooms": rooms,
                "priceMin": lo,
                "priceMax": hi,
            }
        )
        matches.append(count)
    return out, matches


async def _setup(settings: Settings, url, n_units: int) -> tuple[dict, dict]:
    await ensure_database(url, recreate=True)
    engine = make_engine(url, settings)
    await upgrade_shared(engine)
    t, token = await tenant_with_admin(
        engine,
        TenantDatabase(engine),
        build_kit(settings),
        "bench-search",
        "Bench search",
        "search@bench.example.com",
    )
    await engine.dispose()
    rows = generate(n_units, t.slug, random.Random(5))
    columns = {
        "project": ("id", "name", "city", "district", "address", "latitude", "longitude"),
        "building": ("id", "project_id", "name", "floors"),
        "unit_type": (
            "id",
            "project_id",
            "name",
            "rooms",
            "living_rooms",
            "bathrooms",
            "gross_area",
            "net_area",
            "orientation",
            "layout",
            "floor_plan_url",
            "vr_url",
            "created_at",
        ),
        "unit": UNIT_COLUMNS,
        "media": MEDIA_COLUMNS,
    }
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for table, cols in columns.items():
            await conn.copy_records_to_table(
                table, schema_name=t.schema_name, columns=cols, records=rows[table]
            )
            await conn.execute(f'ANALYZE "{t.schema_name}".{table}')
    finally:
        await conn.close()
    return {"slug": t.slug, "token": token}, rows


def run(size: str) -> dict:
    small = size == "small"
    n_units = 10_000 if small else 100_000
    secs = {"max": 1.5, "fixed": 2.0} if small else {"max": 5.0, "fixed": 8.0}
    base = Settings(env="development", log_level="WARNING")
    url = embedded_url(base, "bench-pg", "anju_bench_search")
    settings = base.model_copy(update={"access_token_ttl": 7200})
    tenant, rows = asyncio.run(_setup(settings, url, n_units))
    flts, matches = filters(rows, 300, random.Random(3))
    h = {"X-Tenant": tenant["slug"], "Authorization": f"Bearer {tenant['token']}"}
    bodies = [json.dumps({"query": QUERY, "variables": {"f": f}}).encode() for f in flts]
    gw_reqs = [("/graphql", h, b) for b in bodies]
    raw_reqs = [("/search", h, b) for b in bodies]
    env = server_env(url, base)
    gw, gw_port = start("gateway", env)
    raw, raw_port = start("raw", env)
    try:
        assert_same("search", gw_port, raw_port, gw_reqs, raw_reqs, n=3)
        result = {
            "units": len(rows["unit"]),
            "media_rows": len(rows["media"]),
            "filters": len(flts),
            "matches_median": round(statistics.median(matches)),
            "full_pages_pct": round(100 * sum(m > 20 for m in matches) / len(matches)),
        }
        result.update(compare(gw_port, raw_port, gw_reqs, raw_reqs, secs))
    finally:
        stop(gw, raw)
    return result


def main(size: str) -> dict:
    return {"search": run(size)}
