"""Migrations of the two Alembic streams, and the runner that walks all tenants.

* Shared stream: ``shared`` schema, version table ``shared.alembic_version``.
* Tenant stream: one version table per tenant schema. ``migrate_tenants`` first reads every
  tenant's version in a few batched queries, skips tenants already at head, and upgrades the
  rest (in worker processes when ``parallel > 1``; Alembic's ``op`` proxy is per process, so
  threads would trample each other). A failing tenant is recorded with its reason and the walk
  goes on.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from api.db import SHARED_SCHEMA, make_engine
from api.settings import Settings, get_settings
from tenants.registry import TenantInfo, list_tenants

ALEMBIC_DIR = Path(__file__).parent / "alembic"


def alembic_config(stream: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR / stream))
    return cfg


@lru_cache
def head(stream: str) -> str:
    heads = ScriptDirectory.from_config(alembic_config(stream)).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"{stream} migrations must have exactly one head, found {heads}")
    return heads[0]


def run_with_app_engine(fn: Callable[[Connection], None]) -> None:
    """For Alembic's own CLI: run ``fn`` on a connection to the configured database."""
    from api.db import server_url

    async def main() -> None:
        engine = make_engine(server_url(get_settings()), get_settings(), poolclass=NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(fn)
            await conn.commit()
        await engine.dispose()

    asyncio.run(main())


# ---------------------------------------------------------------- shared stream


async def upgrade_shared(engine: AsyncEngine, revision: str = "head") -> None:
    def run(conn: Connection) -> None:
        cfg = alembic_config("shared")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with engine.connect() as conn:
        await conn.run_sync(run)
        await conn.commit()


async def shared_version(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        exists = await conn.exec_driver_sql(
            "SELECT to_regclass('shared.alembic_version') IS NOT NULL"
        )
        if not exists.scalar():
            return None
        res = await conn.exec_driver_sql(f"SELECT version_num FROM {SHARED_SCHEMA}.alembic_version")
        return res.scalar()


# ---------------------------------------------------------------- tenant stream


def _move_tenant_sync(conn: Connection, schema: str, revision: str, down: bool) -> None:
    cfg = alembic_config("tenant")
    cfg.attributes["connection"] = conn
    cfg.attributes["tenant_schema"] = schema
    if down:
        command.downgrade(cfg, revision)
    else:
        command.upgrade(cfg, revision)


async def upgrade_tenant(engine: AsyncEngine, schema: str, revision: str = "head") -> None:
    """Upgrade one tenant schema, in one transaction. A relative ("-1") or "base" target
    downgrades."""
    down = revision.startswith("-") or revision == "base"
    async with engine.connect() as conn:
        await conn.run_sync(_move_tenant_sync, schema, revision, down)
        await conn.commit()


async def downgrade_tenant(engine: AsyncEngine, schema: str, revision: str) -> None:
    """Downgrade one tenant schema to ``revision`` (tools and tests), in one transaction."""
    async with engine.connect() as conn:
        await conn.run_sync(_move_tenant_sync, schema, revision, True)
        await conn.commit()


@lru_cache
def tenant_ddl_script() -> str:
    """The whole tenant stream rendered once as SQL (Alembic offline mode): the DDL of every
    migration plus the version table, with unqualified names. Provisioning runs it inside a new
    schema, which is how a tenant is created in one round trip instead of one per migration."""
    buf = io.StringIO()
    cfg = Config(output_buffer=buf)
    cfg.set_main_option("script_location", str(ALEMBIC_DIR / "tenant"))
    command.upgrade(cfg, "head", sql=True)
    return buf.getvalue()


async def tenant_versions(engine: AsyncEngine, schemas: list[str]) -> dict[str, str | None]:
    """Version of each given tenant schema (None: no version table, i.e. never migrated)."""
    versions: dict[str, str | None] = dict.fromkeys(schemas)
    if not schemas:
        return versions
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None  # an open connection has its driver's (asyncpg) connection
        with_table = await raw.fetch(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = 'alembic_version' AND c.relkind = 'r' AND n.nspname = ANY($1)",
            schemas,
        )
        names = [r[0] for r in with_table]
        for i in range(0, len(names), 500):
            batch = names[i : i + 500]
            sql = " UNION ALL ".join(
                f"SELECT '{s}' AS s, (SELECT max(version_num) FROM \"{s}\".alembic_version)"
                for s in batch
            )  # schema names come from the registry and are validated ([a-z0-9_] only)
            for s, v in await raw.fetch(sql):
                versions[s] = v
    return versions


@dataclass
class TenantResult:
    slug: str
    schema: str
    status: str  # ok | skipped | failed
    before: str | None = None
    after: str | None = None
    seconds: float = 0.0
    reason: str = ""


@dataclass
class MigrationReport:
    head: str
    results: list[TenantResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[TenantResult]:
        return [r for r in self.results if r.status == "failed"]

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def lines(self) -> list[str]:
        out: list[str] = []
        for r in self.results:
            if r.status == "failed":
                out.append(
                    f"FAILED   {r.slug:<40} {r.before or '-'} -> {r.after or '-'}: {r.reason}"
                )
            elif r.status == "ok":
                out.append(
                    f"ok       {r.slug:<40} {r.before or '-'} -> {r.after}  {r.seconds:.3f}s"
                )
        out.append(
            f"{len(self.results)} tenants: {self.count('ok')} migrated, "
            f"{self.count('skipped')} already at head {self.head}, {self.count('failed')} failed "
            f"in {self.seconds:.2f}s"
        )
        return out


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


class Pending(NamedTuple):
    """A tenant to migrate (picklable: chunks of these go to worker processes)."""

    slug: str
    schema: str
    before: str | None


async def _migrate_list(
    url: URL, settings: Settings, items: list[Pending], revision: str
) -> list[TenantResult]:
    # One pooled connection, reused tenant after tenant (its statement cache too), replaced
    # after ANJU_DB_MAX_SCHEMAS_PER_CONNECTION tenants like the gateway's (tenants/routing.py):
    # a backend's catalog caches grow with every schema it meets.
    engine = make_engine(url, settings, pool_size=1, max_overflow=0)
    results: list[TenantResult] = []
    try:
        for i, (slug, schema, before) in enumerate(items):
            if i and i % settings.db_max_schemas_per_connection == 0:
                await engine.dispose()  # the next tenant opens a fresh connection
            t0 = time.perf_counter()
            try:
                await upgrade_tenant(engine, schema, revision)
                after = (await tenant_versions(engine, [schema]))[schema]
                results.append(
                    TenantResult(slug, schema, "ok", before, after, time.perf_counter() - t0)
                )
            except Exception as exc:  # a broken tenant is reported, the walk goes on
                results.append(
                    TenantResult(
                        slug,
                        schema,
                        "failed",
                        before,
                        before,
                        time.perf_counter() - t0,
                        _reason(exc),
                    )
                )
    finally:
        await engine.dispose()
    return results


def _migrate_chunk(
    url_str: str, settings_json: str, items: list[Pending], revision: str
) -> list[TenantResult]:
    settings = Settings.model_validate_json(settings_json)
    return asyncio.run(_migrate_list(make_url(url_str), settings, items, revision))


async def migrate_tenants(
    engine: AsyncEngine,
    settings: Settings,
    *,
    parallel: int = 1,
    from_slug: str | None = None,
    revision: str = "head",
    tenants: list[TenantInfo] | None = None,
    on_result: Callable[[TenantResult], None] | None = None,
) -> MigrationReport:
    """Bring every tenant (from ``from_slug`` on, in slug order) to ``revision``."""
    t0 = time.perf_counter()
    target = head("tenant") if revision == "head" else revision
    report = MigrationReport(head=target)
    tenants = tenants if tenants is not None else await list_tenants(engine)
    if from_slug:
        tenants = [t for t in tenants if t.slug >= from_slug]
    versions = await tenant_versions(engine, [t.schema_name for t in tenants])
    todo: list[Pending] = []
    for t in tenants:
        v = versions[t.schema_name]
        if v == target:
            report.results.append(TenantResult(t.slug, t.schema_name, "skipped", v, v))
        else:
            todo.append(Pending(t.slug, t.schema_name, v))
    url = engine.url
    done: list[TenantResult] = []
    if todo and parallel <= 1:
        done = await _migrate_list(url, settings, todo, revision)
        for r in done:
            if on_result:
                on_result(r)
    elif todo:
        n = min(parallel, len(todo))
        chunks = [todo[i::n] for i in range(n)]
        url_str = url.render_as_string(hide_password=False)
        loop = asyncio.get_running_loop()

        def run_pool() -> list[TenantResult]:
            import multiprocessing

            out: list[TenantResult] = []
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
                futures = [
                    pool.submit(_migrate_chunk, url_str, settings.model_dump_json(), c, revision)
                    for c in chunks
                ]
                for fut in as_completed(futures):
                    for r in fut.result():
                        out.append(r)
                        if on_result:
                            on_result(r)
            return out

        done = await loop.run_in_executor(None, run_pool)
    order = {t.slug: i for i, t in enumerate(tenants)}
    report.results = sorted(report.results + done, key=lambda r: order[r.slug])
    report.seconds = time.perf_counter() - t0
    return report


async def tenants_behind(engine: AsyncEngine) -> list[tuple[TenantInfo, str | None]]:
    """Tenants whose schema is not at the tenant head, with their current version."""
    tenants = await list_tenants(engine)
    versions = await tenant_versions(engine, [t.schema_name for t in tenants])
    target = head("tenant")
    return [(t, versions[t.schema_name]) for t in tenants if versions[t.schema_name] != target]
