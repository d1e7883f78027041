"""Many tenants on one database: one unit by id for a random tenant, from a restart on.

Each tenant holds one project, one building and 100 units (``bench.http``'s seed). The rate is
fixed at 70% of the one-tenant maximum (measured first for each layout; the lower of the two). For
each pool layout (``one_pool``: every connection serves every tenant, as before tenant-affine
routing; ``lanes``: tenants/routing.py with the default settings) and each tenant count, a
gateway process is started fresh (as after a restart or a deploy: every backend is new) and
sent random tenants at that rate for ``RUN_SECONDS``. Reported:

* ``one_tenant_p50/p99_ms``: the same rate on one tenant (the baseline of the ratios), and
  ``one_tenant_first10s_p99_ms``: its first 10 s after a restart (the process's own warm-up:
  first compilations, first connections; the baseline of ``first10s_vs_one_tenant_restart``);
* ``<layout>_<n>_ready_s``: from the start of the process to ``/readyz`` answering 200 (with
  lanes, the lanes are warmed first: tenants/warming.py); the load starts then;
* ``<layout>_<n>_first10s_p99_ms``: the first 10 s of load after the restart;
* ``<layout>_<n>_steady_p50/p99_ms``: the last 20 s of the run; every connection that serves a
  tenant in that state has served it before, within the run (the timeline tells when);
* ``<layout>_<n>_to_steady_s``: seconds from the start of the load until every later 5 s window
  has a p99 within 1.2x of the one-tenant p99 ("never": not within the run), and
  ``restart_to_steady_s``: the same from the start of the process;
* ``<layout>_<n>_backend_mib_mean/max`` and ``_total_mib``: private memory (RssAnon) of the
  gateway's PostgreSQL backends at the end of the run, beside a fresh backend's
  (``fresh_backend_mib``, the raw baseline);
* at three times today's table count (a throwaway migration copies every tenant table twice
  into each schema, indexes included), the same for 2,000 tenants (``x3_`` prefix).

Before measuring (and again after the tables are tripled) the system catalogs are vacuumed and
the run waits for autovacuum to rest (``settle_s``): creating thousands of tables keeps
autovacuum busy for minutes, and what it rewrites invalidates every backend's caches.

Sizes: small 20 and 100 tenants; full 100 and 2,000; large (``--size large``, not in the
default run) 100, 2,000 and 10,000.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
import urllib.error
import urllib.request
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import asyncpg_dsn, embedded_url, ensure_database, make_engine
from api.domains import load_models
from api.ids import uuid7
from api.security.kit import build_kit
from api.settings import Settings
from bench.http import _by_id_requests, seed_inventory, server_env, start, stop
from bench.load import measure
from bench.seed import tenant_with_admin
from tenants.migrate import head, migrate_tenants, upgrade_shared
from tenants.provisioning import drop_tenant
from tenants.sessions import TenantDatabase

COUNTS = {"small": (20, 100), "full": (100, 2000), "large": (100, 2000, 10_000)}
RUN_SECONDS = {"small": 20.0, "full": 90.0, "large": 120.0}
LAYOUTS = {
    "one_pool": {"ANJU_DB_LANE_SIZE": "0"},
    "lanes": {},  # the defaults
}
WINDOW = 5.0
SEED_WORKERS = 2  # tenants seeded at once (each on its own connections)
FRESH_EVERY = 200  # a seeding connection is replaced after this many tenants (see _seed_part)
UNITS = 100  # per tenant (bench.http._units)
VACUUM_EVERY = 100  # tenants whose unit tables one VACUUM command covers
X3_TENANTS = 2000  # tenants whose tables are tripled (10,000 x 78 more tables is hours)
MIB = 1024 * 1024


def _rss_anon(pid: int) -> int | None:
    """Private (anonymous) resident memory of a process, in bytes; None if not readable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


async def _backends(dsn: str) -> dict:
    """Memory of the gateway's backends (application_name 'anju') and of a fresh backend."""
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "anju-bench"})
    try:
        await conn.fetchval("SELECT 1")
        fresh = _rss_anon(await conn.fetchval("SELECT pg_backend_pid()"))
        pids = await conn.fetchval(
            "SELECT array_agg(pid) FROM pg_stat_activity "
            "WHERE application_name = 'anju' AND backend_type = 'client backend'"
        )
    finally:
        await conn.close()
    sizes = [m for m in (_rss_anon(p) for p in pids or []) if m is not None]
    if fresh is None or not sizes:
        return {"memory": "not measured (the database's processes are not on this machine)"}
    return {
        "backends": len(sizes),
        "fresh_backend_mib": round(fresh / MIB, 1),
        "backend_mib_mean": round(statistics.mean(sizes) / MIB, 1),
        "backend_mib_max": round(max(sizes) / MIB, 1),
        "total_mib": round(sum(sizes) / MIB, 1),
    }


def _timeline(windows: list, ref_p99: float, seconds: float) -> dict:
    """First-10 s p99, steady (last 20 s) p50/p99, and the time to the steady state."""

    def pct(lats: list[float], q: float) -> float:
        lats = sorted(lats)
        return lats[min(len(lats) - 1, int(q * len(lats)))]

    # windows: (start, n, p50, p99) per WINDOW seconds; the phases' percentiles are taken over
    # the windows' own (a p99 of 5 s windows; fine for comparing phases of one run)
    first = [w for w in windows if w[0] < 10]
    last = [w for w in windows if w[0] >= seconds - 20]
    to_steady: float | str = "never"
    for i, w in enumerate(windows):
        if all(x[3] <= 1.2 * ref_p99 for x in windows[i:]):
            to_steady = w[0]
            break
    return {
        "first10s_p99_ms": round(max(w[3] for w in first), 2),
        "steady_p50_ms": round(statistics.median(w[2] for w in last), 2),
        "steady_p99_ms": round(pct([w[3] for w in last], 0.5), 2),
        "to_steady_s": to_steady,
        "p99_by_window_ms": " ".join(f"{w[3]:.0f}" for w in windows),
    }


async def _settle(dsn: str) -> float:
    """Vacuum and analyse the system catalogs (creating thousands of tables filled them), wait
    until no autovacuum worker has run for 10 s (at most 5 minutes), then checkpoint: the
    measurements are of a database at rest, not of the bulk creation's aftermath. Returns the
    seconds spent."""
    t0 = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        catalogs = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'pg_catalog'::regnamespace "
            "AND relkind = 'r' ORDER BY 1"
        )
        for r in catalogs:
            await conn.execute(f'VACUUM (ANALYZE) pg_catalog."{r["relname"]}"')
        quiet_since = time.perf_counter()
        while time.perf_counter() - quiet_since < 10 and time.perf_counter() - t0 < 300:
            busy = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            )
            if busy:
                quiet_since = time.perf_counter()
            await asyncio.sleep(1)
        # and write what all that dirtied now: a checkpoint that flushes the creation of
        # thousands of tables (and syncs their tens of thousands of files) stalls the
        # database for seconds, and would otherwise come in the middle of a measurement
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return time.perf_counter() - t0


async def _first_touch(url, settings: Settings, schemas: list[str]) -> dict:
    """What a backend pays the first time it meets a tenant: one connection, the gateway's
    statement (a unit by primary key, through a tenant session) for each of ``schemas`` in
    turn, then the same again (warm). Milliseconds per tenant, and the backend's growth."""
    load_models()
    from api.unit.models import Unit

    engine = make_engine(url, settings, pool_size=1, max_overflow=0)
    db = TenantDatabase(engine)
    ids = {}
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for s in schemas:
            ids[s] = await conn.fetchval(f'SELECT id FROM "{s}".unit LIMIT 1')
    finally:
        await conn.close()

    async def one_pass() -> float:
        t0 = time.perf_counter()
        for s in schemas:
            async with AsyncSession(db.engine_for(s)) as session:
                await session.get(Unit, ids[s])
        return (time.perf_counter() - t0) * 1000 / len(schemas)

    async def pid_memory() -> int | None:
        async with engine.connect() as c:
            pid = (await c.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        return _rss_anon(pid)

    try:
        before = await pid_memory()
        cold = await one_pass()
        after = await pid_memory()
        warm = await one_pass()
    finally:
        await engine.dispose()
    out = {
        "first_touch_ms": round(cold, 2),
        "warm_touch_ms": round(warm, 2),
        "first_touch_tenants": len(schemas),
    }
    if before is not None and after is not None:
        out["first_touch_kib_per_tenant"] = round((after - before) / len(schemas) / 1024, 1)
    return out


def _ready(port: int, limit: float = 900.0) -> None:
    """Wait until the gateway's ``/readyz`` answers 200 (its lanes are warm)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError("the gateway did not become ready")


def _start_ready(env: dict) -> tuple:
    """A fresh gateway, ready for traffic; and the seconds from its start to ready."""
    t0 = time.perf_counter()
    gw, port = start("gateway", env)
    try:
        _ready(port)
    except BaseException:
        stop(gw)
        raise
    return gw, port, time.perf_counter() - t0


def _run_layout(layout: str, env: dict, tenants, counts, rate, seconds, dsn, rng) -> dict:
    out: dict = {}
    for n in counts:
        reqs = _by_id_requests(tenants[:n], "/graphql", rng)
        gw, port, ready_s = _start_ready({**env, **LAYOUTS[layout]})
        try:
            m = measure(port, reqs, "fixed", seconds, rate=rate, window=WINDOW)
            mem = asyncio.run(_backends(dsn))
            # the lanes' counters: connections retired after max_schemas, sessions
            # borrowing, checkouts that waited; the warm-up (bench/servers.py)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/lanes") as resp:
                lanes = json.loads(resp.read())
        finally:
            stop(gw)
        out[n] = (m, {**mem, **{f"lanes_{k}": v for k, v in lanes.items()}}, ready_s)
    return out


async def _triple_tables(dsn: str, schemas: list[str]) -> float:
    """Copy every tenant table twice into each schema (indexes and defaults included): three
    times today's table count. Returns the seconds it took."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1",
            schemas[0],
        )
        names = [r["relname"] for r in tables]
        t0 = time.perf_counter()
        for s in schemas:
            await conn.execute(
                "".join(
                    f'CREATE TABLE "{s}"."{t}_x{k}" (LIKE "{s}"."{t}" INCLUDING ALL);'
                    for t in names
                    for k in (2, 3)
                )
            )
        return time.perf_counter() - t0
    finally:
        await conn.close()


def _url(base: Settings, database: str):
    """``database`` on the server of ``ANJU_BENCH_DATABASE_URL`` (to compare servers), else in
    the embedded server (``.anju/bench-pg``)."""
    raw = os.environ.get("ANJU_BENCH_DATABASE_URL")
    if raw:
        return make_url(raw).set(drivername="postgresql+asyncpg", database=database)
    return embedded_url(base, "bench-pg", database)


def _describe(url) -> str:
    async def version() -> str:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()

    where = "server" if os.environ.get("ANJU_BENCH_DATABASE_URL") else "embedded"
    return f"PostgreSQL {asyncio.run(version()).split()[0]} ({where})"


async def _seeded(settings: Settings, url, n: int) -> tuple[list[dict], int]:
    """The ``n`` bench tenants of ``url`` and how many were seeded by this call.

    Seeding 10,000 tenants takes the better part of an hour, so the database is kept between
    runs (its name carries ``n``) and reused while the migration heads it was seeded at are
    still the heads; tenants missing or half made (an interrupted run) are made again, and the
    tripled tables of a previous run are dropped. The access tokens are issued anew for the
    kept sessions."""
    heads = (head("shared"), head("tenant"))
    await ensure_database(url)
    dsn = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS public.bench_seed (shared_head text, tenant_head text)"
        )
        kept = await conn.fetchrow("SELECT shared_head, tenant_head FROM public.bench_seed")
    finally:
        await conn.close()
    if kept is not None and tuple(kept) != heads:
        # kept at older heads: migrate it (the product's own path) rather than seed it again
        engine = make_engine(url, settings)
        try:
            await upgrade_shared(engine)
            report = await migrate_tenants(engine, settings, parallel=SEED_WORKERS)
        finally:
            await engine.dispose()
        print(
            f"migrated the kept database: {report.count('ok')} tenants in "
            f"{report.seconds:.0f} s, {len(report.failed)} failed",
            flush=True,
        )
        if not report.failed:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(
                    "UPDATE public.bench_seed SET shared_head = $1, tenant_head = $2", *heads
                )
            finally:
                await conn.close()
            kept = heads
    if kept is None or tuple(kept) != heads:
        # Dropping a database waits for a checkpoint, which on a server holding another
        # seeded database can take half an hour: a database with nothing seeded is kept.
        await ensure_database(url, recreate=kept is not None or await _has_shared(dsn))
        engine = make_engine(url, settings)
        await upgrade_shared(engine)
        await engine.dispose()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS public.bench_seed (shared_head text, tenant_head text);"
                "DELETE FROM public.bench_seed;"
                f"INSERT INTO public.bench_seed VALUES ('{heads[0]}', '{heads[1]}')"
            )
        finally:
            await conn.close()
    await _drop_tripled(dsn)
    todo = await _incomplete(url, settings, n)
    parts = [todo[k::SEED_WORKERS] for k in range(SEED_WORKERS)]
    counter = [0, time.perf_counter()]
    await asyncio.gather(*(_seed_part(settings, url, part, counter) for part in parts))
    conn = await asyncpg.connect(dsn)
    try:
        if todo:
            await conn.execute(
                "VACUUM (ANALYZE) shared.tenant, shared.account, shared.membership, "
                "shared.refresh_token"
            )
        rows = await conn.fetch(
            "SELECT t.slug, t.schema_name, r.account_id, r.family_id FROM shared.tenant t "
            "JOIN shared.refresh_token r ON r.tenant_id = t.id "
            "WHERE t.slug LIKE 'bench-%' ORDER BY t.slug LIMIT $1",
            n,
        )
        kit = build_kit(settings)
        tenants = []
        for r in rows:
            ids = await conn.fetch(f'SELECT id FROM "{r["schema_name"]}".unit ORDER BY id')
            token, _ = kit.tokens.issue(r["account_id"], r["slug"], r["family_id"])
            tenants.append({"slug": r["slug"], "token": token, "ids": [str(u[0]) for u in ids]})
    finally:
        await conn.close()
    assert len(tenants) == n, f"{len(tenants)} bench tenants of {n}"
    return tenants, len(todo)


async def _has_shared(dsn: str) -> bool:
    """Whether the database holds the shared schema (an earlier seeding began here)."""
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 'shared'"))
    finally:
        await conn.close()


async def _incomplete(url, settings: Settings, n: int) -> list[tuple[int, str | None]]:
    """Tenants to seed, as (number, schema): missing ones (schema None), and ones an interrupted
    run left half made. A tenant without its admin's session is dropped and made again (its
    account commits with the session); one with its admin but not all its units keeps its
    admin and gets its units again."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    todo: list[tuple[int, str | None]] = []
    try:
        rows = await conn.fetch(
            "SELECT t.slug, t.schema_name, "
            "EXISTS (SELECT 1 FROM shared.refresh_token r WHERE r.tenant_id = t.id) AS admin "
            "FROM shared.tenant t WHERE t.slug LIKE 'bench-%'"
        )
        found = {r["slug"] for r in rows}
        broken = []
        for r in rows:
            if not r["admin"]:
                broken.append(r["slug"])
                continue
            s = r["schema_name"]
            if await conn.fetchval(f'SELECT count(*) FROM "{s}".unit') != UNITS:
                await conn.execute(
                    f'DELETE FROM "{s}".unit; DELETE FROM "{s}".building; DELETE FROM "{s}".project'
                )
                todo.append((int(r["slug"].removeprefix("bench-")), s))
    finally:
        await conn.close()
    if broken:
        engine = make_engine(url, settings)
        try:
            for slug in broken:
                await drop_tenant(engine, slug)
        finally:
            await engine.dispose()
    missing = [(i, None) for i in range(n) if _slug(i) not in found or _slug(i) in broken]
    return sorted(todo + missing)


def _slug(i: int) -> str:
    return f"bench-{i:05d}"


async def _seed_part(
    settings: Settings, url, todo: list[tuple[int, str | None]], counter: list
) -> None:
    """Seed the tenants ``todo`` (their units from a generator seeded by the tenant's number, so
    the data does not depend on the order). A backend that creates thousands of schemas keeps
    every relation it made in its caches and slows down as they grow: the connections are
    replaced every ``FRESH_EVERY`` tenants."""
    kit = build_kit(settings)
    for start_at in range(0, len(todo), FRESH_EVERY):
        engine = make_engine(url, settings, pool_size=1, max_overflow=0)
        db = TenantDatabase(engine)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            fresh: list[str] = []
            for i, schema in todo[start_at : start_at + FRESH_EVERY]:
                if schema is None:
                    # a new address each attempt: a tenant dropped above leaves its account
                    email = f"b{i}-{uuid7().hex[-8:]}@bench.example.com"
                    t, _ = await tenant_with_admin(engine, db, kit, _slug(i), f"Bench {i}", email)
                    schema = t.schema_name
                await seed_inventory(conn, schema, i, random.Random(11 + i))
                fresh.append(schema)
                if len(fresh) == VACUUM_EVERY:
                    await _vacuum_units(conn, fresh)
                counter[0] += 1
                if counter[0] % 500 == 0:
                    rate = counter[0] / (time.perf_counter() - counter[1]) * 60
                    print(f"seeded {counter[0]} tenants ({rate:.0f}/min)", flush=True)
            await _vacuum_units(conn, fresh)
        finally:
            await conn.close()
            await engine.dispose()


async def _vacuum_units(conn: asyncpg.Connection, schemas: list[str]) -> None:
    """Vacuum and analyse the ``unit`` tables of ``schemas`` (then forget them), as autovacuum
    would leave them, now rather than during a measurement: statistics, hint bits and the
    visibility map of the new rows. One command for many tables: each VACUUM ends by reading
    all of ``pg_class`` to update the database's frozen xid, a cost that grows with every
    schema made (one VACUUM per tenant seeded 4,000 tenants at 330 a minute)."""
    if schemas:
        await conn.execute("VACUUM (ANALYZE) " + ", ".join(f'"{s}".unit' for s in schemas))
        schemas.clear()


async def _drop_tripled(dsn: str) -> None:
    """Drop the copies of the tables made by a previous run's three-times step."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND c.relname ~ '_x[23]$' "
            "AND n.nspname LIKE 't\\_bench\\_%' ORDER BY 1"
        )
        by_schema: dict[str, list[str]] = {}
        for r in rows:
            by_schema.setdefault(r["nspname"], []).append(r["relname"])
        for schema, tables in by_schema.items():
            await conn.execute(
                "DROP TABLE " + ", ".join(f'"{schema}"."{t}"' for t in tables) + " CASCADE"
            )
    finally:
        await conn.close()


def run(size: str) -> dict:
    counts = COUNTS[size]
    seconds = RUN_SECONDS[size]
    base = Settings(env="development", log_level="WARNING")
    url = _url(base, f"anju_bench_scale_{counts[-1]}")
    settings = base.model_copy(update={"access_token_ttl": 7200})
    t0 = time.perf_counter()
    tenants, seeded = asyncio.run(_seeded(settings, url, counts[-1]))
    seed_s = time.perf_counter() - t0
    dsn = asyncpg_dsn(url)
    settled = asyncio.run(_settle(dsn))
    schemas = asyncio.run(_schemas(dsn))
    touch = asyncio.run(_first_touch(url, settings, schemas[:500]))
    env = server_env(url, base)
    rng = random.Random(7)
    one = _by_id_requests(tenants[:1], "/graphql", rng)

    # The one-tenant maximum of each layout (with lanes one tenant has the connections of its
    # reach, 8 of 20); the fixed rate is 70% of the lower one, so that both layouts can serve
    # one tenant at it (a rate above what the process sustains measures a growing queue).
    maxima = {}
    for layout in LAYOUTS:
        gw, port, _ = _start_ready({**env, **LAYOUTS[layout]})
        try:
            measure(port, one, "max", 3.0)  # warm-up
            maxima[layout] = measure(port, one, "max", 8.0)["rps"]
        finally:
            stop(gw)
    rate = 0.7 * min(maxima.values())
    results: dict = {
        **{f"{layout}_one_tenant_max_rps": round(m) for layout, m in maxima.items()},
        "fixed_rate_rps": round(rate),
        "run_seconds": seconds,
        "database": _describe(url),
        "tenants_seeded_now": seeded,
        "seed_s": round(seed_s, 1),
        "settle_s": round(settled, 1),
        "errors": 0,
        **touch,
    }
    refs, restart_refs = {}, {}
    for layout in LAYOUTS:
        gw, port, _ = _start_ready({**env, **LAYOUTS[layout]})
        try:
            # A restart with one tenant (the process's own warm-up, no tenant's), then warm.
            fresh = measure(port, one, "fixed", 10.0, rate=rate, window=WINDOW)
            measure(port, one, "max", 2.0)
            ref = measure(port, one, "fixed", 8.0, rate=rate)
        finally:
            stop(gw)
        refs[layout] = ref["p99_ms"]
        restart_refs[layout] = max(w[3] for w in fresh["windows"])
        results[f"{layout}_one_tenant_p50_ms"] = round(ref["p50_ms"], 2)
        results[f"{layout}_one_tenant_p99_ms"] = round(ref["p99_ms"], 2)
        results[f"{layout}_one_tenant_first10s_p99_ms"] = round(restart_refs[layout], 2)
        results["errors"] += ref["errors"] + fresh["errors"]

    def report(prefix: str, layout: str, runs: dict) -> None:
        for n, (m, mem, ready_s) in runs.items():
            key = f"{prefix}{layout}_{n}"
            results["errors"] += m["errors"]
            t = _timeline(m["windows"], refs[layout], seconds)
            for name, value in {**t, **mem}.items():
                results[f"{key}_{name}"] = value
            results[f"{key}_ready_s"] = round(ready_s, 1)
            if not isinstance(t["to_steady_s"], str):
                results[f"{key}_restart_to_steady_s"] = round(ready_s + t["to_steady_s"], 1)
            results[f"{key}_steady_p99_ratio"] = round(t["steady_p99_ms"] / refs[layout], 2)
            results[f"{key}_first10s_p99_ratio"] = round(t["first10s_p99_ms"] / refs[layout], 2)
            results[f"{key}_first10s_vs_one_tenant_restart"] = round(
                t["first10s_p99_ms"] / restart_refs[layout], 2
            )

    for layout in LAYOUTS:
        report("", layout, _run_layout(layout, env, tenants, counts, rate, seconds, dsn, rng))

    # three times the table count, at 2,000 tenants at most (the only ones tripled)
    x3 = min(counts[-1], X3_TENANTS)
    results["x3_tables_created_s"] = round(asyncio.run(_triple_tables(dsn, schemas[:x3])), 1)
    results["x3_tables_per_tenant"] = asyncio.run(_table_count(dsn, schemas[0]))
    results["x3_settle_s"] = round(asyncio.run(_settle(dsn)), 1)
    x3_touch = asyncio.run(_first_touch(url, settings, schemas[:500]))
    results.update({f"x3_{k}": v for k, v in x3_touch.items()})
    for layout in LAYOUTS:
        report("x3_", layout, _run_layout(layout, env, tenants, [x3], rate, seconds, dsn, rng))
    return results


async def _schemas(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT schema_name FROM shared.tenant WHERE slug LIKE 'bench-%' ORDER BY slug"
        )
        return [r["schema_name"] for r in rows]
    finally:
        await conn.close()


async def _table_count(dsn: str, schema: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
            schema,
        )
    finally:
        await conn.close()


def main(size: str) -> dict:
    return run(size)


if __name__ == "__main__":
    import sys

    os.environ.setdefault("ANJU_LOG_LEVEL", "WARNING")
    print(main(sys.argv[1] if len(sys.argv) > 1 else "small"))
