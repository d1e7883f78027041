"""The tenant migration runner: upgrades tenants behind head, skips those at head, records a
broken tenant's failure (rolled back) and goes on, resumes from a slug, runs in worker
processes, and lists the tenants behind.

Other tests share the database, so every run names its tenants explicitly (``tenants=``),
except the default-walk test, whose assertions only look at its own tenants."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from tenants.migrate import (
    ALEMBIC_DIR,
    MigrationReport,
    TenantResult,
    alembic_config,
    downgrade_tenant,
    head,
    migrate_tenants,
    tenant_versions,
    tenants_behind,
    upgrade_tenant,
)
from tenants.provisioning import create_tenant, drop_tenant
from tenants.registry import TenantInfo
from tests.conftest import unique_slug

HEAD = head("tenant")
FIRST = "0001"


@pytest.fixture
async def tenants(engine: AsyncEngine) -> AsyncIterator[Callable]:
    """``await tenants(n, at=...)`` provisions ``n`` tenants and moves them to revision ``at``
    ("head", "0001" or "base"). All of them are dropped afterwards, so no broken or stale
    tenant is left for other tests that walk every tenant."""
    made: list[TenantInfo] = []

    async def make(n: int, at: str = "head", slugs: list[str] | None = None) -> list[TenantInfo]:
        out = []
        for i in range(n):
            slug = slugs[i] if slugs else unique_slug("mig")
            t = (await create_tenant(engine, slug, f"Migrating {i}")).tenant
            made.append(t)
            out.append(t)
            await move_to(engine, t, at)
        return out

    yield make
    for t in made:
        await drop_tenant(engine, t.slug)


async def move_to(engine: AsyncEngine, t: TenantInfo, at: str) -> None:
    if at == FIRST:
        await downgrade_tenant(engine, t.schema_name, "0001")
    elif at == "base":
        await upgrade_tenant(engine, t.schema_name, "base")
    else:
        assert at == "head"
    assert (await version(engine, t)) == (None if at == "base" else FIRST if at == FIRST else HEAD)


async def version(engine: AsyncEngine, t: TenantInfo) -> str | None:
    return (await tenant_versions(engine, [t.schema_name]))[t.schema_name]


async def relation_exists(engine: AsyncEngine, schema: str, name: str) -> bool:
    async with engine.connect() as conn:
        res = await conn.exec_driver_sql(
            "SELECT to_regclass($1) IS NOT NULL", (f"{schema}.{name}",)
        )
        return res.scalar()


async def sabotage(engine: AsyncEngine, t: TenantInfo) -> None:
    """Make 0001 -> 0002 fail half-way: ``building`` is created, then its index name is taken
    by a table made by hand, so CREATE INDEX fails after DDL already ran in the transaction."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f'CREATE TABLE "{t.schema_name}".ix_building_project_id (x int)')


def by_slug(report: MigrationReport) -> dict[str, TenantResult]:
    return {r.slug: r for r in report.results}


def test_head_is_the_last_tenant_revision():
    """The tenant stream is one linear chain, numbered in file order, from FIRST to HEAD."""
    script = ScriptDirectory.from_config(alembic_config("tenant"))
    chain = [r.revision for r in script.walk_revisions("base", "heads")][::-1]  # base first
    files = sorted(p.name for p in (ALEMBIC_DIR / "tenant" / "versions").glob("[0-9]*_*.py"))
    assert chain == [name.split("_", 1)[0] for name in files]
    assert len(chain) >= 2  # FIRST and at least one revision after it (sabotage needs 0002)
    assert chain[0] == FIRST
    assert chain[-1] == HEAD


async def test_upgrades_tenants_behind_and_skips_those_at_head(engine, settings, tenants):
    behind = await tenants(3, at=FIRST)
    fresh = await tenants(1, at="base")
    current = await tenants(1)
    seen: list[TenantResult] = []

    order = [behind[0], current[0], behind[1], fresh[0], behind[2]]
    report = await migrate_tenants(engine, settings, tenants=order, on_result=seen.append)

    assert report.head == HEAD
    assert [r.slug for r in report.results] == [t.slug for t in order]
    results = by_slug(report)
    for t in behind:
        r = results[t.slug]
        assert (r.status, r.before, r.after, r.reason) == ("ok", FIRST, HEAD, "")
        assert r.schema == t.schema_name
        assert r.seconds > 0
    assert (results[fresh[0].slug].status, results[fresh[0].slug].before) == ("ok", None)
    assert results[fresh[0].slug].after == HEAD
    skipped = results[current[0].slug]
    assert (skipped.status, skipped.before, skipped.after) == ("skipped", HEAD, HEAD)

    assert report.failed == []
    assert (report.count("ok"), report.count("skipped"), report.count("failed")) == (4, 1, 0)
    assert sorted(r.slug for r in seen) == sorted(t.slug for t in [*behind, *fresh])
    for t in order:
        assert await version(engine, t) == HEAD
        assert await relation_exists(engine, t.schema_name, "building")

    lines = report.lines()
    assert lines[-1].startswith(f"5 tenants: 4 migrated, 1 already at head {HEAD}, 0 failed")
    assert sum(line.startswith("ok ") for line in lines) == 4
    assert not any(current[0].slug in line for line in lines)

    again = await migrate_tenants(engine, settings, tenants=order)
    assert {r.status for r in again.results} == {"skipped"}


async def test_a_broken_tenant_is_reported_and_the_others_migrate(engine, settings, tenants):
    first, broken, last = await tenants(3, at=FIRST)
    await sabotage(engine, broken)

    report = await migrate_tenants(engine, settings, tenants=[first, broken, last])

    results = by_slug(report)
    assert [r.slug for r in report.results] == [first.slug, broken.slug, last.slug]
    for t in (first, last):
        assert (results[t.slug].status, results[t.slug].after) == ("ok", HEAD)
        assert await version(engine, t) == HEAD

    failed = results[broken.slug]
    assert failed.status == "failed"
    assert (failed.before, failed.after) == (FIRST, FIRST)
    assert "ix_building_project_id" in failed.reason
    assert "already exists" in failed.reason
    assert "\n" not in failed.reason
    assert report.failed == [failed]

    # The failed tenant's transaction was rolled back: still 0001, no half-made building table.
    assert await version(engine, broken) == FIRST
    assert not await relation_exists(engine, broken.schema_name, "building")

    lines = report.lines()
    assert any(line.startswith("FAILED") and broken.slug in line for line in lines)
    assert lines[-1].startswith("3 tenants: 2 migrated, 0 already at head")
    assert "1 failed" in lines[-1]

    # Once repaired, the next run picks it up and skips the others.
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f'DROP TABLE "{broken.schema_name}".ix_building_project_id')
    rerun = by_slug(await migrate_tenants(engine, settings, tenants=[first, broken, last]))
    assert [rerun[t.slug].status for t in (first, broken, last)] == ["skipped", "ok", "skipped"]
    assert await version(engine, broken) == HEAD


async def test_from_slug_resumes_in_slug_order(engine, settings, tenants):
    base = unique_slug("resume")
    a, b, c = await tenants(3, at=FIRST, slugs=[f"{base}-a", f"{base}-b", f"{base}-c"])

    report = await migrate_tenants(engine, settings, tenants=[a, b, c], from_slug=b.slug)

    assert [(r.slug, r.status) for r in report.results] == [(b.slug, "ok"), (c.slug, "ok")]
    assert await version(engine, a) == FIRST  # before the resume point: untouched
    assert await version(engine, b) == HEAD
    assert await version(engine, c) == HEAD


async def test_default_walk_covers_registered_tenants(engine, settings, tenants):
    # A prefix sorting after every other test's slugs keeps the walk (mostly) to ours.
    base = f"zz{unique_slug('walk')}"
    mine = await tenants(3, at=FIRST, slugs=[f"{base}-a", f"{base}-b", f"{base}-c"])
    await upgrade_tenant(engine, mine[1].schema_name)  # one already back at head

    report = await migrate_tenants(engine, settings, from_slug=mine[0].slug)

    results = by_slug(report)
    assert [results[t.slug].status for t in mine] == ["ok", "skipped", "ok"]
    slugs = [r.slug for r in report.results]
    assert slugs == sorted(slugs)  # the walk goes in slug order
    assert all(s >= mine[0].slug for s in slugs)
    for t in mine:
        assert await version(engine, t) == HEAD


async def test_parallel_workers_migrate_and_collect_failures(engine, settings, tenants):
    behind = await tenants(4, at=FIRST)
    current = await tenants(1)
    broken = (await tenants(1, at=FIRST))[0]
    await sabotage(engine, broken)
    order = [behind[0], broken, behind[1], current[0], behind[2], behind[3]]
    seen: list[str] = []

    report = await migrate_tenants(
        engine, settings, tenants=order, parallel=2, on_result=lambda r: seen.append(r.slug)
    )

    assert [r.slug for r in report.results] == [t.slug for t in order]
    results = by_slug(report)
    for t in behind:
        assert (results[t.slug].status, results[t.slug].before) == ("ok", FIRST)
        assert results[t.slug].after == HEAD
        assert await version(engine, t) == HEAD
    assert results[current[0].slug].status == "skipped"
    assert report.failed == [results[broken.slug]]
    assert "ix_building_project_id" in results[broken.slug].reason
    assert await version(engine, broken) == FIRST
    assert not await relation_exists(engine, broken.schema_name, "building")
    assert sorted(seen) == sorted(t.slug for t in [*behind, broken])


async def test_tenants_behind_lists_exactly_those_not_at_head(engine, tenants):
    at_first = (await tenants(1, at=FIRST))[0]
    at_base = (await tenants(1, at="base"))[0]
    current = (await tenants(1))[0]
    mine = {at_first.slug, at_base.slug, current.slug}

    behind = {t.slug: v for t, v in await tenants_behind(engine) if t.slug in mine}
    assert behind == {at_first.slug: FIRST, at_base.slug: None}

    await upgrade_tenant(engine, at_first.schema_name)
    behind = {t.slug: v for t, v in await tenants_behind(engine) if t.slug in mine}
    assert behind == {at_base.slug: None}


async def test_tenant_versions_of_a_schema_without_version_table(engine):
    assert await tenant_versions(engine, []) == {}
    assert await tenant_versions(engine, ["t_no_such_schema_x"]) == {"t_no_such_schema_x": None}


async def test_a_migration_connection_is_replaced_after_max_schemas(
    engine, settings, tenants, monkeypatch
):
    # Like the gateway's (tenants/routing.py): a backend meets at most that many schemas.
    from sqlalchemy import event

    import tenants.migrate as migrate

    opened: list[object] = []  # one entry per new database connection
    made = migrate.make_engine

    def counting(*args, **kwargs):
        eng = made(*args, **kwargs)
        event.listen(eng.sync_engine, "connect", lambda dbapi, rec: opened.append(rec))
        return eng

    monkeypatch.setattr(migrate, "make_engine", counting)
    behind = await tenants(5, at=FIRST)
    small = settings.model_copy(update={"db_max_schemas_per_connection": 2})
    report = await migrate_tenants(engine, small, tenants=behind)
    assert report.count("ok") == 5
    # (counted by connect events: the id() of a closed connection's object may be reused)
    assert len(opened) == 3  # tenants 1-2, 3-4, 5
