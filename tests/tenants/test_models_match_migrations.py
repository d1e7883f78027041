"""The SQLAlchemy models and the schema the migrations build agree (Alembic's autogenerate
comparison): tables, columns, types, nullability, server defaults, indexes, unique
constraints and foreign keys; for the shared schema of the suite's database and for a freshly
provisioned tenant schema. A model changed without a migration (or a migration without its
model) fails here, listing the differences.

Alembic does not compare check constraints, triggers, functions, sequences or enum types; the
provisioning test (tests/tenants/test_provisioning.py) covers the tenant schema's constraints
between the two ways of migrating.

What is legitimately outside the models is left out of the comparison, each with its reason
(below)."""

from __future__ import annotations

import pprint
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Connection, MetaData, String
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from api.db import NAMING, SHARED_SCHEMA, SharedBase, TenantBase, make_engine
from api.domains import load_models
from api.settings import Settings
from tenants import models  # noqa: F401  (the shared tenant registry)

load_models()

# Tables of the shared schema no model declares, each with its reason.
SHARED_UNMODELLED = {
    "alembic_version": "Alembic's own version table of the shared stream",
    "tenant_wakeup": "created by raw SQL in shared migration 0011 and only written by the "
    "tenant tables' statement triggers (tenant migration 0017) and api/jobs.py's raw SQL; its "
    "wake_tenant()/ceil_minute() functions are raw SQL too",
}
# procrastinate's tables (procrastinate_jobs, _events, _periodic_defers, _workers, ...): its own
# schema, installed by its SchemaManager in shared migration 0007 and upgraded with
# procrastinate's own SQL, as are its enum types, functions and triggers.
PROCRASTINATE_PREFIX = "procrastinate_"
# Tables of a tenant schema no model declares.
TENANT_UNMODELLED = {
    "alembic_version": "each tenant schema's own Alembic version table",
}
# Not compared by Alembic at all (so nothing to filter), listed for the reader: the
# shared.outbox_notify and shared.journal_balanced functions and the tenants' audit_log
# append-only, journal_balanced and wake_on_* triggers (raw SQL in their migrations), and the
# pg_trgm extension (in public). The pg_trgm GIN indexes of unit and listing are declared on
# their models and are compared.


def _include_shared(name: str | None, type_: str, parent_names: dict) -> bool:
    if type_ == "schema":
        return name == SHARED_SCHEMA  # the default schema (public) and tenant schemas: not ours
    if type_ == "table":
        return name not in SHARED_UNMODELLED and not name.startswith(PROCRASTINATE_PREFIX)
    return True


def _include_tenant(name: str | None, type_: str, parent_names: dict) -> bool:
    return type_ != "table" or name not in TENANT_UNMODELLED


def _diffs(conn: Connection, metadata: MetaData, *, tenant_schema: str | None) -> list:
    opts: dict = {"compare_type": True, "compare_server_default": True}
    if tenant_schema is None:
        opts.update(include_schemas=True, include_name=_include_shared)
    else:
        # The tenant models have no schema (a session maps None to the tenant's): compare them
        # with what unqualified names resolve to, the tenant schema first, as the tenant
        # migrations themselves run (transaction-local, on this test's own connection).
        conn.exec_driver_sql(f'SET LOCAL search_path TO "{tenant_schema}", public')
        opts.update(include_name=_include_tenant)
    return compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)


@pytest.fixture
async def own_engine(db_url: URL, settings: Settings) -> AsyncIterator[AsyncEngine]:
    """Connections of the test's own (no pool): the search_path set here reaches no app."""
    eng = make_engine(db_url, settings, poolclass=NullPool)
    yield eng
    await eng.dispose()


async def diffs(engine: AsyncEngine, metadata: MetaData, tenant_schema: str | None) -> list:
    async with engine.connect() as conn:
        try:
            return await conn.run_sync(_diffs, metadata, tenant_schema=tenant_schema)
        finally:
            await conn.rollback()


def copy_of(metadata: MetaData) -> MetaData:
    """A test-local copy of ``metadata`` (same schema, names and naming convention)."""
    copy = MetaData(schema=metadata.schema, naming_convention=NAMING)
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    return copy


def summary(found: list) -> set[tuple[str, str, str]]:
    """(operation, table, column or index) of each difference."""
    out = set()
    for entry in found:
        for d in entry if isinstance(entry, list) else [entry]:  # modify_* come in lists
            if d[0].startswith("modify_"):
                out.add((d[0], d[2], d[3]))
            elif d[0] in ("add_column", "remove_column"):
                out.add((d[0], d[2], d[3].name))
            elif d[0] in ("add_index", "remove_index", "add_fk", "remove_fk"):
                out.add((d[0], d[1].table.name, d[1].name))
            else:
                out.add((d[0], "", repr(d[1:])))
    return out


def test_what_is_left_out_is_declared_by_no_model():
    """An ignored name never hides a model's table (one given a model later joins the check)."""
    shared = {t.name for t in SharedBase.metadata.tables.values()}
    assert not shared & set(SHARED_UNMODELLED)
    assert not [name for name in shared if name.startswith(PROCRASTINATE_PREFIX)]
    assert not set(TenantBase.metadata.tables) & set(TENANT_UNMODELLED)


async def test_shared_models_match_shared_migrations(own_engine):
    found = await diffs(own_engine, SharedBase.metadata, None)
    assert found == [], "shared models and migrations differ:\n" + pprint.pformat(found)


async def test_tenant_models_match_tenant_migrations(own_engine, make_tenant):
    tenant = await make_tenant()
    found = await diffs(own_engine, TenantBase.metadata, tenant.schema_name)
    assert found == [], "tenant models and migrations differ:\n" + pprint.pformat(found)


@pytest.mark.parametrize("stream", ["shared", "tenant"])
async def test_a_column_added_to_a_model_without_migration_is_reported(
    own_engine, make_tenant, stream
):
    base, table = (SharedBase, "account") if stream == "shared" else (TenantBase, "unit")
    schema = None if stream == "shared" else (await make_tenant()).schema_name
    metadata = copy_of(base.metadata)
    assert await diffs(own_engine, metadata, schema) == []  # the copy itself matches

    key = f"{metadata.schema}.{table}" if metadata.schema else table
    metadata.tables[key].append_column(Column("throwaway", String(20), nullable=False))
    found = await diffs(own_engine, metadata, schema)
    assert summary(found) == {("add_column", table, "throwaway")}


async def test_a_changed_type_nullability_default_index_or_foreign_key_is_reported(
    own_engine, make_tenant
):
    """The comparison looks into the columns, indexes and foreign keys, not only at tables and
    whole columns."""
    schema = (await make_tenant()).schema_name
    metadata = copy_of(TenantBase.metadata)
    unit = metadata.tables["unit"]
    unit.c.number.type = String(10)  # migrations: varchar(20)
    unit.c.number.nullable = True  # migrations: NOT NULL
    metadata.tables["project"].c.city.server_default = None  # migrations: DEFAULT ''
    building = metadata.tables["building"]
    building.indexes.remove(next(i for i in building.indexes if i.name == "ix_building_project_id"))
    (fk,) = building.foreign_key_constraints  # building.project_id -> project.id
    building.constraints.remove(fk)

    assert summary(await diffs(own_engine, metadata, schema)) == {
        ("modify_type", "unit", "number"),
        ("modify_nullable", "unit", "number"),
        ("modify_default", "project", "city"),
        ("remove_index", "building", "ix_building_project_id"),
        ("remove_fk", "building", fk.name),
    }
