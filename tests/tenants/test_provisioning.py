"""Provisioning a tenant: registry row + schema at head, in one transaction; and the squashed
DDL script yields exactly the schema the step-by-step tenant migrations yield."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db import TenantBase
from api.domains import load_models
from tenants.migrate import head, tenant_versions, upgrade_tenant
from tenants.models import Tenant, TenantStatus
from tenants.provisioning import Provisioned, create_tenant, drop_tenant
from tenants.registry import InvalidSlug, SlugTaken, TenantError, get_tenant, schema_for
from tests.conftest import unique_slug

load_models()
# Every table the tenant models declare, plus the tenant's own Alembic version table: a
# migration that forgets a model's table (or a table no model declares) fails these tests.
TENANT_TABLES = {"alembic_version", *TenantBase.metadata.tables}
assert {"project", "building"} < TENANT_TABLES


async def tables_of(engine: AsyncEngine, schema: str) -> set[str]:
    async with engine.connect() as conn:
        res = await conn.exec_driver_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            (schema,),
        )
        return {r[0] for r in res}


async def schema_exists(engine: AsyncEngine, schema: str) -> bool:
    async with engine.connect() as conn:
        res = await conn.exec_driver_sql(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1", (schema,)
        )
        return res.scalar() == 1


async def registry_rows(engine: AsyncEngine, slug: str) -> int:
    async with engine.connect() as conn:
        res = await conn.execute(select(func.count()).where(Tenant.slug == slug))
        return res.scalar()


async def test_create_tenant_registers_and_provisions_at_head(engine):
    slug = unique_slug("prov")
    p = await create_tenant(engine, slug, "  Harbour Realty  ", plan="pro")
    assert isinstance(p, Provisioned)
    assert p.milliseconds > 0

    t = p.tenant
    assert t.slug == slug
    assert t.name == "Harbour Realty"  # trimmed
    assert t.schema_name == schema_for(slug)
    assert t.status == TenantStatus.ACTIVE
    assert t.plan == "pro"
    uuid.UUID(t.id)

    assert await get_tenant(engine, slug) == t
    assert await tables_of(engine, t.schema_name) == TENANT_TABLES
    versions = await tenant_versions(engine, [t.schema_name])
    assert versions == {t.schema_name: head("tenant")}
    async with engine.connect() as conn:
        rows = (
            await conn.exec_driver_sql(f'SELECT version_num FROM "{t.schema_name}".alembic_version')
        ).all()
    assert rows == [(head("tenant"),)]


async def test_provisioned_schema_is_usable(engine, make_tenant):
    t = await make_tenant()
    s = t.schema_name
    async with engine.begin() as conn:
        pid = (
            await conn.exec_driver_sql(
                f"INSERT INTO \"{s}\".project (id, name) VALUES (gen_random_uuid(), 'P') "
                "RETURNING id"
            )
        ).scalar()
        await conn.exec_driver_sql(
            f'INSERT INTO "{s}".building (id, project_id, name, floors) '
            "VALUES (gen_random_uuid(), $1, 'A', 10)",
            (pid,),
        )
    # The foreign key points at this tenant's project table (not another schema's).
    async with engine.connect() as conn:
        ref = (
            await conn.exec_driver_sql(
                "SELECT confrelid::regclass::text FROM pg_constraint "
                "WHERE conname = 'fk_building_project_id_project' "
                "AND connamespace = $1::regnamespace",
                (s,),
            )
        ).scalar()
    assert ref == f"{s}.project"


async def test_duplicate_slug_is_refused_and_leaves_nothing_partial(engine):
    slug = unique_slug("dup")
    first = (await create_tenant(engine, slug, "First")).tenant
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            f'INSERT INTO "{first.schema_name}".project (id, name) '
            "VALUES (gen_random_uuid(), 'Kept')"
        )

    with pytest.raises(SlugTaken) as info:
        await create_tenant(engine, slug, "Second")
    assert info.value.field == "slug"
    assert info.value.code == "CONFLICT"
    assert slug in info.value.message

    assert await registry_rows(engine, slug) == 1
    assert await get_tenant(engine, slug) == first  # the first row untouched
    assert await tables_of(engine, first.schema_name) == TENANT_TABLES
    assert await tenant_versions(engine, [first.schema_name]) == {first.schema_name: head("tenant")}
    async with engine.connect() as conn:
        names = (
            await conn.exec_driver_sql(f'SELECT name FROM "{first.schema_name}".project')
        ).all()
    assert names == [("Kept",)]


@pytest.mark.parametrize("name", ["", "   ", None])
async def test_empty_name_is_refused(engine, name):
    slug = unique_slug("noname")
    with pytest.raises(TenantError, match="name is required") as info:
        await create_tenant(engine, slug, name)
    assert info.value.field == "name"
    assert await registry_rows(engine, slug) == 0
    assert not await schema_exists(engine, schema_for(slug))


async def test_too_long_name_is_refused(engine):
    slug = unique_slug("longname")
    with pytest.raises(TenantError, match="at most 200") as info:
        await create_tenant(engine, slug, "x" * 201)
    assert info.value.field == "name"
    assert await registry_rows(engine, slug) == 0
    assert (await create_tenant(engine, slug, "x" * 200)).tenant.name == "x" * 200


async def test_invalid_slug_creates_nothing(engine):
    with pytest.raises(InvalidSlug):
        await create_tenant(engine, "Bad_Slug", "Bad")
    assert await registry_rows(engine, "Bad_Slug") == 0


async def test_failed_ddl_rolls_back_the_registry_row(engine):
    """A schema left over (e.g. by hand) makes provisioning fail; the registry row must not
    remain without a usable schema."""
    slug = unique_slug("orphan")
    schema = schema_for(slug)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        with pytest.raises(TenantError, match="already exists without a registered tenant"):
            await create_tenant(engine, slug, "Orphan")
        assert await registry_rows(engine, slug) == 0
        assert await tables_of(engine, schema) == set()
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("plan", ["", "x" * 33, "Pro Plan"])
async def test_bad_plan_is_refused(engine, plan):
    slug = unique_slug("plan")
    with pytest.raises(TenantError, match="plan must be") as info:
        await create_tenant(engine, slug, "Planned", plan=plan)
    assert info.value.field == "plan"
    assert await registry_rows(engine, slug) == 0


async def test_drop_tenant_removes_row_and_schema(engine, make_tenant):
    t = await make_tenant()
    await drop_tenant(engine, t.slug)
    assert await get_tenant(engine, t.slug) is None
    assert not await schema_exists(engine, t.schema_name)


async def test_provisioning_twenty_tenants(engine):
    """Timing goes to bench/; here only that each one reports a positive duration and exists."""
    made = [await create_tenant(engine, unique_slug("many"), f"Agency {i}") for i in range(20)]
    assert all(p.milliseconds > 0 for p in made)
    assert len({p.tenant.schema_name for p in made}) == 20
    versions = await tenant_versions(engine, [p.tenant.schema_name for p in made])
    assert set(versions.values()) == {head("tenant")}


# ---------------------------------------------------------------- script == migrations


async def describe_schema(engine: AsyncEngine, schema: str) -> dict:
    """Columns, constraints and indexes of a schema, with the schema name neutralised."""

    def neutral(text: str | None) -> str | None:
        return None if text is None else text.replace(f"{schema}.", "SCHEMA.")

    async with engine.connect() as conn:
        columns = (
            await conn.exec_driver_sql(
                "SELECT table_name, column_name, data_type, is_nullable, column_default, "
                "character_maximum_length, numeric_precision, numeric_scale, ordinal_position "
                "FROM information_schema.columns WHERE table_schema = $1 "
                "ORDER BY table_name, ordinal_position",
                (schema,),
            )
        ).all()
        constraints = (
            await conn.exec_driver_sql(
                "SELECT c.conrelid::regclass::text, c.conname, c.contype::text, "
                "pg_get_constraintdef(c.oid) FROM pg_constraint c "
                "WHERE c.connamespace = $1::regnamespace ORDER BY c.conname",
                (schema,),
            )
        ).all()
        indexes = (
            await conn.exec_driver_sql(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = $1 "
                "ORDER BY indexname",
                (schema,),
            )
        ).all()
        relations = (
            await conn.exec_driver_sql(
                "SELECT relname, relkind::text FROM pg_class WHERE relnamespace = $1::regnamespace "
                "ORDER BY relname",
                (schema,),
            )
        ).all()
    return {
        "columns": [tuple(neutral(v) if isinstance(v, str) else v for v in r) for r in columns],
        "constraints": [(neutral(r[0]), r[1], r[2], neutral(r[3])) for r in constraints],
        "indexes": [(r[0], r[1], neutral(r[2])) for r in indexes],
        "relations": [tuple(r) for r in relations],
    }


async def test_ddl_script_matches_step_by_step_migrations(engine, make_tenant):
    provisioned = await make_tenant()
    manual = schema_for(unique_slug("stepwise"))
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f'CREATE SCHEMA "{manual}"')
    try:
        await upgrade_tenant(engine, manual)
        assert await tenant_versions(engine, [manual]) == {manual: head("tenant")}

        want = await describe_schema(engine, manual)
        got = await describe_schema(engine, provisioned.schema_name)
        # Guard against comparing two empty descriptions.
        assert {r[0] for r in want["columns"]} == TENANT_TABLES
        assert any(r[2] == "f" for r in want["constraints"])
        assert any(r[2] == "c" for r in want["constraints"])
        assert any(r[1] == "ix_building_project_id" for r in want["indexes"])

        assert got["columns"] == want["columns"]
        assert got["constraints"] == want["constraints"]
        assert got["indexes"] == want["indexes"]
        assert got["relations"] == want["relations"]
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{manual}" CASCADE')
