"""The demo data `make run` seeds: a tenant with projects, units and staff, seeded once."""

from __future__ import annotations

from sqlalchemy import func, select

from api.project.models import Building
from api.seed import DEMO_SLUG, seed_demo
from api.unit.models import Unit
from tenants.registry import get_tenant
from tenants.sessions import TenantDatabase
from tests.conftest import test_settings as settings_for_tests


async def test_demo_seed_is_complete_and_idempotent(engine):
    settings = settings_for_tests(demo_password="demo-pass-123456")
    first = await seed_demo(engine, settings)
    assert "created tenant demo" in first and "seeded 504 units" in first
    tenant = await get_tenant(engine, DEMO_SLUG)
    async with TenantDatabase(engine).session(tenant) as session:
        floors = await session.scalar(select(func.sum(Building.floors)))
        units = await session.scalar(select(func.count()).select_from(Unit))
        available = await session.scalar(
            select(func.count()).select_from(Unit).where(Unit.status == "available")
        )
    assert units == available == floors * 4
    again = await seed_demo(engine, settings)
    assert "seeded" not in again and "created" not in again
