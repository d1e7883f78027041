"""The tenant schema guard (development and tests): a statement run through a tenant session
that names another tenant's schema is refused before it reaches PostgreSQL; the session's own
schema, the shared schema and sessions without a tenant are unaffected; production has no
guard unless asked for."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import CrossTenantStatement, make_engine, tenant_schemas_named
from api.project.models import Project
from tenants.sessions import TenantDatabase
from tests import conftest


async def test_a_tenant_session_naming_another_tenants_schema_is_refused(engine, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    db = TenantDatabase(engine)
    async with db.session(a) as session:
        for sql in (
            f"SELECT count(*) FROM {b.schema_name}.project",
            f'SELECT count(*) FROM "{b.schema_name}"."project"',
            f"SELECT p.id FROM {a.schema_name}.project p"
            f" JOIN {b.schema_name}.building b ON b.project_id = p.id",
        ):
            with pytest.raises(CrossTenantStatement, match=b.schema_name):
                await session.execute(text(sql))
            await session.rollback()
        # Its own schema, by hand or through the map, and the shared schema are fine.
        assert await session.scalar(text(f"SELECT count(*) FROM {a.schema_name}.project")) == 0
        assert await session.scalar(select(func.count()).select_from(Project)) == 0
        assert await session.scalar(text("SELECT count(*) FROM shared.tenant")) >= 2
    # No tenant: jobs walking the tenants and migrations name several schemas.
    async with AsyncSession(engine) as session:
        for t in (a, b):
            assert await session.scalar(text(f"SELECT count(*) FROM {t.schema_name}.project")) == 0


async def test_the_guard_is_off_in_production_unless_asked(db_url, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    sql = text(f"SELECT count(*) FROM {b.schema_name}.project")
    for overrides, refused in (
        ({"env": "production"}, False),
        ({"env": "production", "tenant_schema_guard": True}, True),
        ({"tenant_schema_guard": False}, False),
    ):
        eng = make_engine(db_url, conftest.test_settings(**overrides), pool_size=1, max_overflow=0)
        try:
            async with TenantDatabase(eng).session(a) as session:
                if refused:
                    with pytest.raises(CrossTenantStatement):
                        await session.execute(sql)
                else:
                    assert await session.scalar(sql) == 0
        finally:
            await eng.dispose()


def test_schema_names_found_in_statements():
    assert tenant_schemas_named('SELECT 1 FROM t_a.x JOIN "t_b_c".y ON t_a.x.id = y.id') == {
        "t_a",
        "t_b_c",
    }
    # Columns, aliases and bind parameters that merely start with t_ are not schemas.
    assert tenant_schemas_named("SELECT x.t_count, y.t_z FROM shared.t AS t_1 WHERE a = :t_x") == (
        frozenset()
    )
