"""Tenancy scenarios: provisioning time per tenant and migrating many tenants.

Each number is set beside a raw baseline measured in the same run:
* provisioning: ``create_tenant`` (registry row + schema + squashed tenant migrations, through
  SQLAlchemy) against raw asyncpg running ``CREATE SCHEMA`` + the same DDL script;
* migrate with nothing to apply: ``migrate_tenants`` (reads every version, skips) against one raw
  asyncpg ``SELECT version_num`` per tenant schema;
* migrate with work to apply: every tenant downgraded one revision, then brought back to head by
  Alembic (sequential and in 2 worker processes).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import asyncpg

from api.db import asyncpg_dsn, embedded_url, ensure_database, make_engine
from api.settings import Settings
from tenants.migrate import migrate_tenants, tenant_ddl_script, upgrade_shared, upgrade_tenant
from tenants.provisioning import create_tenant
from tenants.registry import list_tenants


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def run(size: str) -> dict:
    settings = Settings(env="test", log_level="WARNING")
    raw_url = os.environ.get("ANJU_BENCH_DATABASE_URL")
    if raw_url:
        from sqlalchemy.engine import make_url

        url = make_url(raw_url).set(drivername="postgresql+asyncpg")
    else:
        url = embedded_url(settings, "bench-pg", "anju_bench")
    await ensure_database(url, recreate=True)
    engine = make_engine(url, settings)
    await upgrade_shared(engine)
    n = 40 if size == "small" else 200
    script = tenant_ddl_script()

    # provisioning (gateway path) ------------------------------------------------------------
    prov = []
    for i in range(n):
        prov.append((await create_tenant(engine, f"bench-{i:05d}", f"Bench {i}")).milliseconds)

    # provisioning (raw baseline: same DDL, raw asyncpg, no registry row) ---------------------
    conn = await asyncpg.connect(asyncpg_dsn(url))
    raw = []
    for i in range(min(n, 100)):
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.execute(
                f'CREATE SCHEMA "raw_{i}";\nSET LOCAL search_path TO "raw_{i}", public;\n' + script
            )
        raw.append((time.perf_counter() - t0) * 1000)

    tenants = [t for t in await list_tenants(engine) if t.slug.startswith("bench-")]

    # migrate, nothing to apply ---------------------------------------------------------------
    t0 = time.perf_counter()
    report = await migrate_tenants(engine, settings, tenants=tenants)
    noop_s = time.perf_counter() - t0
    assert report.count("skipped") == n, report.lines()[-1]
    t0 = time.perf_counter()
    for t in tenants:
        await conn.fetchval(f'SELECT version_num FROM "{t.schema_name}".alembic_version')
    noop_raw_s = time.perf_counter() - t0
    await conn.close()

    # migrate, one revision to apply ----------------------------------------------------------
    applied = {}
    for parallel in (1, 2):
        for t in tenants:
            await upgrade_tenant(engine, t.schema_name, "-1")
        t0 = time.perf_counter()
        report = await migrate_tenants(engine, settings, tenants=tenants, parallel=parallel)
        applied[parallel] = time.perf_counter() - t0
        assert report.count("ok") == n and not report.failed, report.lines()[-1]
    await engine.dispose()

    med = statistics.median(prov)
    raw_med = statistics.median(raw)
    return {
        "tenants": n,
        "provision_ms_median": round(med, 2),
        "provision_ms_p95": round(_pct(prov, 0.95), 2),
        "provision_raw_ms_median": round(raw_med, 2),
        "provision_ratio": round(med / raw_med, 2),
        "migrate_noop_s": round(noop_s, 3),
        "migrate_noop_raw_s": round(noop_raw_s, 3),
        "migrate_noop_ratio": round(noop_s / noop_raw_s, 2) if noop_raw_s else None,
        "migrate_one_revision_s_parallel1": round(applied[1], 2),
        "migrate_one_revision_s_parallel2": round(applied[2], 2),
    }


def main(size: str) -> dict:
    return asyncio.run(run(size))
