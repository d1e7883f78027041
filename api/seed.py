"""Demo data for ``make run``: tenant ``demo`` with projects and buildings (idempotent)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.project import service
from api.project.models import Project
from tenants.provisioning import create_tenant
from tenants.registry import get_tenant
from tenants.sessions import TenantDatabase

DEMO_SLUG = "demo"

DEMO_PROJECTS = [
    (
        service.ProjectInput(
            "Riverside Garden",
            "Shanghai",
            "Pudong",
            "88 Binjiang Avenue",
            Decimal("31.235929"),
            Decimal("121.506058"),
        ),
        [("Building 1", 32), ("Building 2", 28), ("Building 3", 18)],
    ),
    (
        service.ProjectInput(
            "Lakeview Residences",
            "Hangzhou",
            "Xihu",
            "12 Longjing Road",
            Decimal("30.243137"),
            Decimal("120.142130"),
        ),
        [("Tower A", 24), ("Tower B", 24)],
    ),
]


async def seed_demo(engine: AsyncEngine) -> str:
    """Create the demo tenant and its data when missing. Returns what it did."""
    tenant = await get_tenant(engine, DEMO_SLUG)
    did = []
    if tenant is None:
        tenant = (await create_tenant(engine, DEMO_SLUG, "Demo Realty")).tenant
        did.append("created tenant demo")
    async with TenantDatabase(engine).session(tenant) as session:
        if await session.scalar(select(func.count()).select_from(Project)) == 0:
            for project_input, buildings in DEMO_PROJECTS:
                project = await service.create_project(session, project_input)
                for name, floors in buildings:
                    await service.create_building(
                        session, service.BuildingInput(project.id, name, floors)
                    )
            await session.commit()
            did.append(f"seeded {len(DEMO_PROJECTS)} projects")
    return ", ".join(did) or "demo tenant already seeded"
