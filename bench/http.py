"""HTTP scenarios: the gateway against the raw baseline, same database, same run.

Scenarios: a trivial query; one project by id; a list of 100 projects; one project by id for a
random tenant among 1, 100 and 2,000 tenants (small size: 1, 20, 200). Units arrive with the
inventory issue; until then projects stand in for them (same shape of work: one indexed row,
or 100 rows, in the tenant's schema, behind the same authentication).
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
import uuid

import asyncpg

from api.db import asyncpg_dsn, embedded_url, ensure_database, make_engine
from api.identity import service as identity
from api.identity.models import Membership
from api.security.kit import build_kit
from api.settings import Settings
from bench.load import NAME as LOAD_GENERATOR
from bench.load import measure
from tenants.migrate import upgrade_shared
from tenants.provisioning import create_tenant
from tenants.sessions import TenantDatabase

TRIVIAL = json.dumps({"query": "{ apiVersion }"}).encode()
BY_ID = "query($id: ID!) { project(id: $id) { id name city district } }"
LIST = json.dumps({"query": "{ projects(first: 100) { id name city district } }"}).encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _setup(settings: Settings, url, n_tenants: int) -> list[dict]:
    await ensure_database(url, recreate=True)
    engine = make_engine(url, settings)
    await upgrade_shared(engine)
    kit = build_kit(settings)
    db = TenantDatabase(engine)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    tenants = []
    for i in range(n_tenants):
        t = (await create_tenant(engine, f"bench-{i:05d}", f"Bench {i}")).tenant
        async with db.session(t) as session:
            account = await identity.create_account(
                session, kit, name="Bench", phone=None, email=f"b{i}@bench.example.com",
                password=None,
            )  # fmt: skip
            session.add(
                Membership(account_id=account.id, tenant_id=uuid.UUID(t.id), roles=["admin"])
            )
            tokens = await identity.start_session(session, kit, account.id, t)
            await session.commit()
        ids = [uuid.uuid4() for _ in range(100)]
        await conn.executemany(
            f'INSERT INTO "{t.schema_name}".project (id, name, city, district, address) '
            "VALUES ($1, $2, 'Shanghai', 'Pudong', '')",
            [(pid, f"Project {j}") for j, pid in enumerate(ids)],
        )
        tenants.append({"slug": t.slug, "token": tokens.access_token, "ids": [str(x) for x in ids]})
    await conn.close()
    await engine.dispose()
    return tenants


def _start(kind: str, env: dict) -> tuple[subprocess.Popen, int]:
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
        for pid in rng.sample(t["ids"], min(len(t["ids"]), max(1, 2000 // len(tenants)))):
            body = json.dumps({"query": BY_ID, "variables": {"id": pid}}).encode()
            out.append((path, headers, body))
    return out


def _compare(gw_port, raw_port, gw_reqs, raw_reqs, secs) -> dict:
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
    small = size == "small"
    counts = (1, 20, 200) if small else (1, 100, 2000)
    secs = {"max": 2.0, "fixed": 3.0} if small else {"max": 5.0, "fixed": 8.0}
    base = Settings(env="development", log_level="WARNING")
    url = embedded_url(base, "bench-pg", "anju_bench_http")
    settings = base.model_copy(update={"access_token_ttl": 7200})
    tenants = asyncio.run(_setup(settings, url, counts[-1]))
    env = dict(os.environ)
    env.update(
        ANJU_DATABASE_URL=url.set(drivername="postgresql").render_as_string(hide_password=False),
        ANJU_ACCESS_TOKEN_TTL="7200", ANJU_LOG_LEVEL="WARNING", ANJU_TENANT_CACHE_TTL="60",
        ANJU_DATA_DIR=str(base.data_dir),
    )  # fmt: skip
    gw, gw_port = _start("gateway", env)
    raw, raw_port = _start("raw", env)
    rng = random.Random(7)
    results: dict = {"load_generator": LOAD_GENERATOR}
    try:
        one = tenants[:1]
        results["trivial_query"] = _compare(
            gw_port, raw_port, [("/graphql", {}, TRIVIAL)], [("/trivial", {}, TRIVIAL)], secs
        )
        results["project_by_id"] = _compare(
            gw_port, raw_port, _by_id_requests(one, "/graphql", rng),
            _by_id_requests(one, "/project", rng), secs,
        )  # fmt: skip
        h = {"X-Tenant": one[0]["slug"], "Authorization": f"Bearer {one[0]['token']}"}
        results["list_100_projects"] = _compare(
            gw_port, raw_port, [("/graphql", h, LIST)], [("/projects", h, LIST)], secs
        )
        # Many tenants: the same query, a random tenant per request, at one fixed rate.
        reqs = {n: _by_id_requests(tenants[:n], "/graphql", rng) for n in counts}
        gmax = measure(gw_port, reqs[1], "max", secs["max"])
        rate = 0.7 * gmax["rps"]
        multi = {"fixed_rate_rps": round(rate)}
        for n in counts:
            m = measure(gw_port, reqs[n], "fixed", secs["fixed"], rate=rate)
            multi[f"tenants_{n}_p50_ms"] = round(m["p50_ms"], 2)
            multi[f"tenants_{n}_p99_ms"] = round(m["p99_ms"], 2)
            multi["errors"] = multi.get("errors", 0) + m["errors"]
        multi[f"p99_ratio_{counts[-1]}_vs_1"] = round(
            multi[f"tenants_{counts[-1]}_p99_ms"] / multi["tenants_1_p99_ms"], 2
        )
        results["random_tenant"] = multi
    finally:
        gw.terminate()
        raw.terminate()
        gw.wait(10)
        raw.wait(10)
    return results


def main(size: str) -> dict:
    return run(size)
