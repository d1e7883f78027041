"""HTTP scenarios: the gateway against the raw baseline, same database, same run.

Each tenant holds one project, one building and 100 units. Scenarios: a trivial query; one unit
by id; a page of 100 units (``units(first: 100)``, newest first); many tenants: ``bench/scale.py``.
Before measuring, each scenario fetches the same requests from both servers and fails unless the
JSON bodies are equal.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal

import asyncpg

from api.db import asyncpg_dsn, embedded_url, ensure_database, make_engine
from api.ids import uuid7
from api.security.kit import build_kit
from api.settings import Settings
from bench.load import NAME as LOAD_GENERATOR
from bench.load import measure
from bench.seed import UNIT_COLUMNS, tenant_with_admin, unit_record
from tenants.migrate import upgrade_shared
from tenants.sessions import TenantDatabase

TRIVIAL = json.dumps({"query": "{ apiVersion }"}).encode()
BY_ID = "query($id: ID!) { unit(id: $id) { id number floor status listPrice { minorUnits } } }"
LIST = json.dumps(
    {
        "query": "{ units(first: 100) { edges { cursor node { "
        "id number floor status listPrice { minorUnits } } } } }"
    }
).encode()
MEDIA_PUBLIC_URL = "http://127.0.0.1:8000/media"
STATUSES = ["available"] * 6 + ["planned", "reserved", "subscribed", "contracted", "sold"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _units(project_id, building_id, rng: random.Random) -> list[tuple]:
    """100 units on 25 floors (4 a floor) of one building."""
    out = []
    for j in range(100):
        floor = j // 4 + 1
        area = Decimal(f"{rng.uniform(45, 140):.2f}")
        status = rng.choice(STATUSES)
        price = None if status == "planned" else int(area * rng.randint(40_000, 90_000)) * 100
        out.append(
            unit_record(
                id=uuid7(),
                project_id=project_id,
                building_id=building_id,
                floor=floor,
                number=f"{floor}{j % 4 + 1:02d}",
                gross_area=area,
                list_price=price,
                status=status,
                rooms=rng.randint(1, 4),
                search_text=f"project pudong 1 {floor}{j % 4 + 1:02d}",
            )
        )
    return out


async def seed_inventory(
    conn: asyncpg.Connection, schema: str, i: int, rng: random.Random
) -> list[tuple]:
    """Tenant ``i``'s project, building and 100 units (COPY) in ``schema``; the unit rows."""
    pid, bid = uuid7(), uuid7()
    await conn.execute(
        f'INSERT INTO "{schema}".project (id, name, city, district, address) '
        "VALUES ($1, $2, 'Shanghai', 'Pudong', '')",
        pid,
        f"Project {i}",
    )
    await conn.execute(
        f'INSERT INTO "{schema}".building (id, project_id, name, floors) '
        "VALUES ($1, $2, '1', 25)",
        bid,
        pid,
    )
    units = _units(pid, bid, rng)
    await conn.copy_records_to_table(
        "unit", schema_name=schema, columns=UNIT_COLUMNS, records=units
    )
    return units


async def _setup(settings: Settings, url, n_tenants: int) -> list[dict]:
    await ensure_database(url, recreate=True)
    engine = make_engine(url, settings)
    await upgrade_shared(engine)
    kit = build_kit(settings)
    db = TenantDatabase(engine)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    rng = random.Random(11)
    tenants = []
    for i in range(n_tenants):
        t, token = await tenant_with_admin(
            engine, db, kit, f"bench-{i:05d}", f"Bench {i}", f"b{i}@bench.example.com"
        )
        units = await seed_inventory(conn, t.schema_name, i, rng)
        # As autovacuum would leave it, now rather than during a measurement: statistics,
        # hint bits and the visibility map of the new rows.
        await conn.execute(f'VACUUM (ANALYZE) "{t.schema_name}".unit')
        tenants.append({"slug": t.slug, "token": token, "ids": [str(u[0]) for u in units]})
    await conn.execute(
        "VACUUM (ANALYZE) shared.tenant, shared.account, shared.membership, shared.refresh_token"
    )
    await conn.close()
    await engine.dispose()
    return tenants


def server_env(url, base: Settings) -> dict:
    """The environment of both servers: same database, same settings."""
    env = dict(os.environ)
    env.update(
        ANJU_DATABASE_URL=url.set(drivername="postgresql").render_as_string(hide_password=False),
        ANJU_ACCESS_TOKEN_TTL="7200",
        ANJU_LOG_LEVEL="WARNING",
        ANJU_TENANT_CACHE_TTL="60",
        ANJU_DATA_DIR=str(base.data_dir),
        ANJU_MEDIA_PUBLIC_URL=MEDIA_PUBLIC_URL,
        # The gateway serves requests only: no in-process job worker (in development it would
        # run one, and its per-minute sweeps defer a job per tenant).
        ANJU_WORKER_IN_PROCESS="false",
        # One token sends thousands of requests a second here: no rate limits (the raw
        # baseline has none either).
        ANJU_RATE_USER_PER_MINUTE="0",
        ANJU_RATE_TENANT_PER_MINUTE="0",
        ANJU_RATE_ANONYMOUS_PER_MINUTE="0",
    )
    return env


def fetch(port: int, path: str, headers: dict, body: bytes) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


def assert_same(scenario: str, gw_port, raw_port, gw_reqs, raw_reqs, n: int = 3) -> None:
    """The first ``n`` requests give equal JSON bodies on both servers (else: fail loudly)."""
    for g, r in list(zip(gw_reqs, raw_reqs, strict=True))[:n]:
        got, want = fetch(gw_port, *g), fetch(raw_port, *r)
        if got != want or "errors" in got:
            raise AssertionError(
                f"{scenario}: the gateway and the raw baseline answer differently\n"
                f"gateway: {json.dumps(got)[:2000]}\nraw:     {json.dumps(want)[:2000]}"
            )


def start(kind: str, env: dict) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.servers", kind, str(port)], env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def _by_id_requests(tenants: list[dict], path: str, rng: random.Random) -> list:
    out = []
    for t in tenants:
        headers = {"X-Tenant": t["slug"], "Authorization": f"Bearer {t['token']}"}
        for uid in rng.sample(t["ids"], min(len(t["ids"]), max(1, 2000 // len(tenants)))):
            body = json.dumps({"query": BY_ID, "variables": {"id": uid}}).encode()
            out.append((path, headers, body))
    return out


def _raw(reqs: list, path: str) -> list:
    """The same requests, sent to the raw server's ``path``."""
    return [(path, h, b) for _, h, b in reqs]


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(10)


def compare(gw_port, raw_port, gw_reqs, raw_reqs, secs) -> dict:
    gmax = measure(gw_port, gw_reqs, "max", secs["max"])
    rmax = measure(raw_port, raw_reqs, "max", secs["max"])
    rate = 0.7 * gmax["rps"]
    gfix = measure(gw_port, gw_reqs, "fixed", secs["fixed"], rate=rate)
    rfix = measure(raw_port, raw_reqs, "fixed", secs["fixed"], rate=rate)
    return {
        "gateway_max_rps": round(gmax["rps"]),
        "raw_max_rps": round(rmax["rps"]),
        "throughput_ratio": round(rmax["rps"] / gmax["rps"], 2),
        "fixed_rate_rps": round(rate),
        "gateway_p50_ms": round(gfix["p50_ms"], 2),
        "gateway_p99_ms": round(gfix["p99_ms"], 2),
        "raw_p50_ms": round(rfix["p50_ms"], 2),
        "raw_p99_ms": round(rfix["p99_ms"], 2),
        "p50_ratio": round(gfix["p50_ms"] / rfix["p50_ms"], 2),
        "p99_ratio": round(gfix["p99_ms"] / rfix["p99_ms"], 2),
        "errors": gmax["errors"] + rmax["errors"] + gfix["errors"] + rfix["errors"],
        "error_kinds": {
            name: m["error_kinds"]
            for name, m in (
                ("gateway_max", gmax),
                ("raw_max", rmax),
                ("gateway_fixed", gfix),
                ("raw_fixed", rfix),
            )
            if m["error_kinds"]
        },
    }


def run(size: str) -> dict:
    """All HTTP scenarios (one tenant; many tenants: ``bench/scale.py``)."""
    small = size == "small"
    secs = {"max": 1.0, "fixed": 1.5} if small else {"max": 5.0, "fixed": 8.0}
    base = Settings(env="development", log_level="WARNING")
    url = embedded_url(base, "bench-pg", "anju_bench_http")
    settings = base.model_copy(update={"access_token_ttl": 7200})
    tenants = asyncio.run(_setup(settings, url, 1))
    env = server_env(url, base)
    gw, gw_port = start("gateway", env)
    raw, raw_port = start("raw", env)
    rng = random.Random(7)
    results: dict = {"load_generator": LOAD_GENERATOR}
    try:
        one = tenants[:1]
        trivial = ([("/graphql", {}, TRIVIAL)], [("/trivial", {}, TRIVIAL)])
        assert_same("trivial_query", gw_port, raw_port, *trivial)
        results["trivial_query"] = compare(gw_port, raw_port, *trivial, secs)
        by_id = _by_id_requests(one, "/graphql", rng)
        assert_same("unit_by_id", gw_port, raw_port, by_id, _raw(by_id, "/unit"))
        results["unit_by_id"] = compare(gw_port, raw_port, by_id, _raw(by_id, "/unit"), secs)
        h = {"X-Tenant": one[0]["slug"], "Authorization": f"Bearer {one[0]['token']}"}
        lists = ([("/graphql", h, LIST)], [("/units", h, LIST)])
        assert_same("list_100_units", gw_port, raw_port, *lists)
        results["list_100_units"] = compare(gw_port, raw_port, *lists, secs)
    finally:
        stop(gw, raw)
    return results


def main(size: str) -> dict:
    return run(size)
