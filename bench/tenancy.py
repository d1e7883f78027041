"""Tenancy scenarios: provisioning, migrating many tenants, backend memory after many tenants.

Sizes: full provisions 2,000 tenants, migrates 1,000 of them and touches all 2,000 in the memory
scenario; small provisions 200, migrates 100, touches 200.

Each number is set beside a raw baseline measured in the same run:
* provisioning: ``create_tenant`` (registry row + schema + squashed tenant migrations, through
  SQLAlchemy) against raw asyncpg running ``CREATE SCHEMA`` + the same DDL script (100 schemas,
  created in between the tenants so that both see the catalog grow alike);
* migrate with nothing to apply: ``migrate_tenants`` (reads every version, skips) against one raw
  asyncpg ``SELECT version_num`` per tenant schema;
* migrate with one added column: a throwaway Alembic revision (``unit`` gets a nullable text
  column) is written into a temporary copy of the tenant stream, the stream is pointed at it for
  the run (worker processes too, through an environment variable read when this module is
  imported), and ``migrate_tenants`` upgrades every tenant to it, sequentially and in 2 worker
  processes; between runs the column and the version row are put back by SQL. Raw baseline: one
  asyncpg round trip per tenant running the same ``ALTER TABLE`` + version update. Every run is
  checked: each tenant at the throwaway revision and its ``unit`` table holding the column;
* backend memory (``pg_backend_memory_contexts``, PostgreSQL 14+): total and
  ``CacheMemoryContext`` (with its children: relation, catalog and plan caches) of one
  connection, fresh and after one cheap query against ``unit`` in every tenant schema. Raw:
  asyncpg, simple-protocol ``SELECT 1 FROM "<schema>".unit LIMIT 1``. Gateway: an engine with the
  gateway's settings (statement cache, recycle) and a tenant session running ``select(Unit)``
  as the gateway would (one prepared statement per tenant schema). The fresh backend is the
  baseline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
from sqlalchemy import select

import tenants.migrate as tenant_migrations
from api.db import asyncpg_dsn, embedded_url, ensure_database, make_engine
from api.domains import load_models
from api.settings import Settings
from tenants.migrate import (
    head,
    migrate_tenants,
    tenant_ddl_script,
    tenant_versions,
    upgrade_shared,
)
from tenants.provisioning import create_tenant
from tenants.registry import TenantInfo, list_tenants
from tenants.sessions import TenantDatabase

# (tenants provisioned and touched in the memory scenario, tenants migrated)
SIZES = {"small": (200, 100), "full": (2000, 1000)}
BENCH_REVISION = "bench_add_column"
BENCH_COLUMN = "bench_note"
# Where the throwaway copy of the tenant stream lives during the run. Worker processes of
# ``migrate_tenants(parallel=2)`` are spawned: they import ``bench.run`` (hence this module) as
# ``__mp_main__`` and read it here. A worker that did not would fail on the unknown revision,
# and the run's checks would stop the benchmark.
ALEMBIC_DIR_ENV = "ANJU_BENCH_TENANT_ALEMBIC_DIR"
if os.environ.get(ALEMBIC_DIR_ENV):
    tenant_migrations.ALEMBIC_DIR = Path(os.environ[ALEMBIC_DIR_ENV])

REVISION_FILE = '''"""bench: one added nullable column (throwaway, written by bench/tenancy.py)

Revision ID: {revision}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("unit", sa.Column("{column}", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("unit", "{column}")
'''

MIB = 1024 * 1024


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


# ---------------------------------------------------------------- one added column


async def _columns_present(conn: asyncpg.Connection, schemas: list[str]) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'unit' "
        "AND a.attname = $1 AND NOT a.attisdropped AND n.nspname = ANY($2)",
        BENCH_COLUMN,
        schemas,
    )


async def _check(engine, conn, schemas: list[str], version: str, column: bool) -> None:
    versions = await tenant_versions(engine, schemas)
    wrong = [s for s, v in versions.items() if v != version]
    assert not wrong, f"{len(wrong)} tenants not at {version}, e.g. {wrong[0]}"
    present = await _columns_present(conn, schemas)
    assert present == (len(schemas) if column else 0), f"{BENCH_COLUMN} in {present} tenants"


async def _reset(conn: asyncpg.Connection, schemas: list[str], base: str) -> None:
    """Undo the added column by SQL (what the revision's downgrade does), 100 tenants a
    transaction: not measured."""
    for i in range(0, len(schemas), 100):
        await conn.execute(
            "".join(
                f'ALTER TABLE "{s}".unit DROP COLUMN {BENCH_COLUMN}; '
                f"UPDATE \"{s}\".alembic_version SET version_num = '{base}';"
                for s in schemas[i : i + 100]
            )
        )


async def _add_column(engine, settings: Settings, conn, tenants: list[TenantInfo]) -> dict:
    schemas = [t.schema_name for t in tenants]
    n = len(tenants)
    base = head("tenant")
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="anju-bench-alembic-") as tmp:
        root = Path(tmp)
        shutil.copytree(
            tenant_migrations.ALEMBIC_DIR / "tenant",
            root / "tenant",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        (root / "tenant" / "versions" / f"{BENCH_REVISION}.py").write_text(
            REVISION_FILE.format(revision=BENCH_REVISION, down=base, column=BENCH_COLUMN)
        )
        saved = tenant_migrations.ALEMBIC_DIR
        tenant_migrations.ALEMBIC_DIR = root
        os.environ[ALEMBIC_DIR_ENV] = str(root)
        try:
            for parallel in (1, 2):
                t0 = time.perf_counter()
                report = await migrate_tenants(
                    engine, settings, tenants=tenants, parallel=parallel, revision=BENCH_REVISION
                )
                seconds[parallel] = time.perf_counter() - t0
                assert report.count("ok") == n and not report.failed, report.lines()[-1]
                await _check(engine, conn, schemas, BENCH_REVISION, column=True)
                await _reset(conn, schemas, base)
                await _check(engine, conn, schemas, base, column=False)
        finally:
            tenant_migrations.ALEMBIC_DIR = saved
            os.environ.pop(ALEMBIC_DIR_ENV, None)

    # raw baseline: the same DDL and version row, one round trip (one implicit transaction)
    t0 = time.perf_counter()
    for s in schemas:
        await conn.execute(
            f'ALTER TABLE "{s}".unit ADD COLUMN {BENCH_COLUMN} text; '
            f"UPDATE \"{s}\".alembic_version SET version_num = '{BENCH_REVISION}'"
        )
    raw_s = time.perf_counter() - t0
    await _check(engine, conn, schemas, BENCH_REVISION, column=True)
    await _reset(conn, schemas, base)
    await _check(engine, conn, schemas, base, column=False)
    return {
        "migrate_add_column_s_parallel1": round(seconds[1], 2),
        "migrate_add_column_s_parallel2": round(seconds[2], 2),
        "migrate_add_column_raw_s": round(raw_s, 2),
        "migrate_add_column_ratio": round(seconds[1] / raw_s, 2),
        "migrate_add_column_measured": (
            f"migrate_tenants to a throwaway revision adding a nullable text column to unit, "
            f"{n} tenants at {base}; raw: ALTER TABLE + version update, one round trip each"
        ),
    }


# ---------------------------------------------------------------- backend memory

MEMORY_SQL = {
    # PostgreSQL 18+: ``path`` lists the ids of a context's ancestors and its own (``level`` is
    # 1-based), so CacheMemoryContext's subtree is every row whose path holds its id.
    18: """WITH c AS (SELECT * FROM pg_backend_memory_contexts)
        SELECT pg_backend_pid() AS pid,
               (SELECT sum(total_bytes) FROM c)::bigint AS total,
               (SELECT sum(c.total_bytes) FROM c,
                       (SELECT path[level] AS id FROM c WHERE name = 'CacheMemoryContext') m
                 WHERE m.id = ANY(c.path))::bigint AS cache,
               (SELECT count(*) FROM pg_prepared_statements) AS prepared""",
    # PostgreSQL 14-17: contexts name their parent; CacheMemoryContext and its children.
    14: """WITH c AS (SELECT * FROM pg_backend_memory_contexts)
        SELECT pg_backend_pid() AS pid,
               (SELECT sum(total_bytes) FROM c)::bigint AS total,
               (SELECT sum(total_bytes) FROM c WHERE name = 'CacheMemoryContext'
                   OR parent = 'CacheMemoryContext')::bigint AS cache,
               (SELECT count(*) FROM pg_prepared_statements) AS prepared""",
}


async def _memory_reading(conn: asyncpg.Connection) -> asyncpg.Record:
    version = int(await conn.fetchval("SELECT current_setting('server_version_num')"))
    sql = MEMORY_SQL[18 if version >= 180000 else 14]
    await conn.fetchrow(sql)  # the view's own catalog entries belong to the fresh state
    return await conn.fetchrow(sql)


def _memory_values(prefix: str, fresh, after, n: int) -> dict:
    assert fresh["pid"] == after["pid"], "not the same backend"
    return {
        f"memory_{prefix}_fresh_mib": round(fresh["total"] / MIB, 2),
        f"memory_{prefix}_fresh_cache_mib": round(fresh["cache"] / MIB, 2),
        f"memory_{prefix}_after_mib": round(after["total"] / MIB, 2),
        f"memory_{prefix}_after_cache_mib": round(after["cache"] / MIB, 2),
        f"memory_{prefix}_kib_per_tenant": round((after["total"] - fresh["total"]) / n / 1024, 1),
    }


async def _memory(url, settings: Settings, tenants: list[TenantInfo]) -> dict:
    n = len(tenants)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        if int(await conn.fetchval("SELECT current_setting('server_version_num')")) < 140000:
            return {"memory": "not measured: pg_backend_memory_contexts needs PostgreSQL 14+"}
        fresh = await _memory_reading(conn)
        for t in tenants:
            await conn.execute(f'SELECT 1 FROM "{t.schema_name}".unit LIMIT 1')  # simple protocol
        after = await _memory_reading(conn)
    finally:
        await conn.close()
    out = {"memory_tenants_touched": n, **_memory_values("raw", fresh, after, n)}

    # the gateway's engine settings, one pooled connection, a tenant session per tenant
    load_models()
    from api.unit.models import Unit

    engine = make_engine(url, settings, pool_size=1, max_overflow=0)
    db = TenantDatabase(engine)
    stmt = select(Unit).limit(1)

    async def reading() -> asyncpg.Record:
        async with engine.connect() as c:
            return await _memory_reading((await c.get_raw_connection()).driver_connection)

    try:
        g_fresh = await reading()
        for t in tenants:
            async with db.session(t) as session:
                (await session.scalars(stmt)).all()
        g_after = await reading()
    finally:
        await engine.dispose()
    out.update(_memory_values("gateway", g_fresh, g_after, n))
    out["memory_gateway_prepared_statements"] = g_after["prepared"]
    conns = settings.db_pool_size + settings.db_max_overflow
    out["memory_gateway_policy"] = (
        f"up to {settings.db_pool_size}+{settings.db_max_overflow} connections a process, each "
        f"replaced after ANJU_DB_POOL_RECYCLE={settings.db_pool_recycle} s (a new backend "
        f"starts at the fresh size); prepared statements a connection: an LRU of "
        f"ANJU_DB_STATEMENT_CACHE_SIZE={settings.statement_cache_size}, pruned back to that "
        f"once it holds half as many again; recycling bounds a "
        f"connection's age, not the tenants it reaches meanwhile: with {n} tenants up to "
        f"{conns} x {g_after['total'] / MIB:.0f} MiB = {conns * g_after['total'] / MIB:.0f} MiB "
        f"a process"
    )
    return out


# ---------------------------------------------------------------- all scenarios


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
    n, n_migrate = SIZES[size]
    script = tenant_ddl_script()

    # provisioning: the gateway path, and the raw baseline (same DDL, raw asyncpg, no registry
    # row) on 100 schemas created in between, so both see the catalog at the same sizes -------
    conn = await asyncpg.connect(asyncpg_dsn(url))
    prov, raw = [], []
    raw_every = max(1, n // 100)
    for i in range(n):
        prov.append((await create_tenant(engine, f"bench-{i:05d}", f"Bench {i}")).milliseconds)
        if i % raw_every == 0 and len(raw) < 100:
            t0 = time.perf_counter()
            async with conn.transaction():
                await conn.execute(
                    f'CREATE SCHEMA "raw_{i}";\nSET LOCAL search_path TO "raw_{i}", public;\n'
                    + script
                )
            raw.append((time.perf_counter() - t0) * 1000)

    tenants = [t for t in await list_tenants(engine) if t.slug.startswith("bench-")]
    assert len(tenants) == n
    migrated = tenants[:n_migrate]

    # migrate, nothing to apply ---------------------------------------------------------------
    t0 = time.perf_counter()
    report = await migrate_tenants(engine, settings, tenants=migrated)
    noop_s = time.perf_counter() - t0
    assert report.count("skipped") == n_migrate, report.lines()[-1]
    t0 = time.perf_counter()
    for t in migrated:
        await conn.fetchval(f'SELECT version_num FROM "{t.schema_name}".alembic_version')
    noop_raw_s = time.perf_counter() - t0

    # migrate, one added column ---------------------------------------------------------------
    try:
        add_column = await _add_column(engine, settings, conn, migrated)
    finally:
        await conn.close()
    await engine.dispose()

    # backend memory after touching every tenant (new connections) ----------------------------
    memory = await _memory(url, settings, tenants)

    med = statistics.median(prov)
    raw_med = statistics.median(raw)
    return {
        "tenants": n,
        "provision_ms_median": round(med, 2),
        "provision_ms_p95": round(_pct(prov, 0.95), 2),
        "provision_raw_ms_median": round(raw_med, 2),
        "provision_ratio": round(med / raw_med, 2),
        "tenants_migrated": n_migrate,
        "migrate_noop_s": round(noop_s, 3),
        "migrate_noop_raw_s": round(noop_raw_s, 3),
        "migrate_noop_ratio": round(noop_s / noop_raw_s, 2) if noop_raw_s else None,
        **add_column,
        **memory,
    }


def main(size: str) -> dict:
    return asyncio.run(run(size))
