"""Demo data for ``make run``: tenant ``demo`` with projects, buildings, unit types and units,
and its staff (idempotent)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.identity import service as identity
from api.identity.models import Membership
from api.project import repository as project_repo
from api.project import service
from api.project.models import Project
from api.security.kit import SecurityKit, build_kit
from api.security.secrets import dev_secret
from api.settings import Settings
from api.unit import service as units
from api.unit.models import Unit
from tenants.provisioning import create_tenant
from tenants.registry import TenantError, TenantInfo, get_tenant
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


DEMO_STAFF = [
    ("Demo Admin", "admin@demo.example.com", "+8613800000001", ["admin"]),
    ("Demo Manager", "manager@demo.example.com", "+8613800000002", ["manager"]),
    ("Demo Agent", "agent@demo.example.com", "+8613800000003", ["agent"]),
]


# Per project: price per m² (yuan), and two unit types (name, rooms, gross area, orientation).
DEMO_PRICING = {"Riverside Garden": 68_000, "Lakeview Residences": 42_000}
DEMO_TYPES = [("A 3-room", 3, Decimal("89.50"), "S"), ("B 4-room", 4, Decimal("128.00"), "NS")]


async def _seed_units(session: AsyncSession) -> int:
    """Four units a floor in every building (stacks 01-02 type A, 03-04 type B), priced by
    area and floor, all available."""
    projects = (await session.scalars(select(Project).order_by(Project.name))).all()
    items = []
    for project in projects:
        types = []
        for name, rooms, area, orientation in DEMO_TYPES:
            spec = units.UnitTypeInput(
                project_id=project.id,
                name=name,
                rooms=rooms,
                gross_area=area,
                orientation=orientation,
            )
            types.append(await units.create_unit_type(session, spec))
        per_m2 = DEMO_PRICING.get(project.name, 50_000)
        for building in (await project_repo.buildings_by_project_ids(session, [project.id]))[
            project.id
        ]:
            for floor in range(1, building.floors + 1):
                for stack in range(1, 5):
                    utype = types[0] if stack <= 2 else types[1]
                    price = int(utype.gross_area * per_m2 * (1 + Decimal("0.004") * floor))
                    items.append(
                        units.UnitInput(
                            building_id=building.id,
                            floor=floor,
                            number=f"{floor}{stack:02d}",
                            unit_type_id=utype.id,
                            list_price=price * 100,
                            status="available",
                        )
                    )
    await units.create_units(session, items, actor_id=None)
    return len(items)


def demo_password(settings: Settings) -> str:
    return settings.demo_password or dev_secret(settings, "demo_password")


async def _seed_staff(session: AsyncSession, kit: SecurityKit, tenant: TenantInfo) -> int:
    made = 0
    for name, email, phone, roles in DEMO_STAFF:
        ident = identity.Identifier("email", email)
        if await identity.find_account(session, kit, ident) is not None:
            continue
        account = await identity.create_account(
            session,
            kit,
            name=name,
            phone=phone,
            email=email,
            password=demo_password(kit.settings),
        )
        session.add(Membership(account_id=account.id, tenant_id=uuid.UUID(tenant.id), roles=roles))
        made += 1
    await session.flush()
    return made


async def _demo_account_id(session: AsyncSession, kit: SecurityKit, email: str) -> uuid.UUID:
    """The account of a demo staff member (``_seed_staff`` made them all first)."""
    account = await identity.find_account(session, kit, identity.Identifier("email", email))
    if account is None:
        raise RuntimeError(f"demo account {email} missing: the staff are seeded first")
    return account.id


async def _seed_sales(session: AsyncSession, kit: SecurityKit, tenant: TenantInfo) -> bool:
    """A sales team (the demo manager and agent), a routing rule offering portal leads to it
    for 60 minutes, and two leads: one offered to the team, one in the shared pool."""
    from api.client import routing
    from api.client import service as clients
    from api.identity.auth import Principal
    from api.identity.models import Team
    from api.identity.teams import add_member, create_team

    if await session.scalar(select(func.count()).select_from(Team)):
        return False
    company = await create_team(session, "Demo Realty", "company", None)
    office = await create_team(session, "Head office", "office", company.id)
    sales = await create_team(session, "Sales 1", "team", office.id)
    staff = {}
    for _, email, _, _ in DEMO_STAFF:
        staff[email] = await _demo_account_id(session, kit, email)
    for email in ("manager@demo.example.com", "agent@demo.example.com"):
        await add_member(session, sales.id, staff[email])
    await routing.create_route(
        session,
        routing.RouteInput(
            name="Portal leads",
            team_id=sales.id,
            mode="claim",
            claim_minutes=60,
            sources=("portal",),
        ),
    )
    admin = Principal(
        account_id=staff["admin@demo.example.com"],
        tenant_id=uuid.UUID(tenant.id),
        session_id=uuid.uuid4(),
        roles=("admin",),
        permissions=frozenset(),
        scope="all",
    )
    for name, phone, source in (
        ("Portal lead", "+8613900000101", "portal"),
        ("Walk-in lead", "+8613900000102", "walk_in"),
    ):
        lead = clients.ClientInput(name=name, phone=phone, source=source, needs={"rooms": [2, 3]})
        await clients.create_client(session, kit, tenant.id, admin, lead, route=True)
    return True


async def _seed_bills(session: AsyncSession, kit: SecurityKit) -> bool:
    """A property fee bill for the demo's owner-app user (the admin's phone), due in 10 days."""
    from datetime import timedelta

    from api.identity.auth import Principal
    from api.payment import bills
    from api.payment.models import Bill

    if await session.scalar(select(func.count()).select_from(Bill)):
        return False
    payer = await _demo_account_id(session, kit, "admin@demo.example.com")
    staff = Principal(
        account_id=payer,
        tenant_id=uuid.UUID(str(session.info["tenant_id"])),
        session_id=uuid.uuid4(),
        roles=("admin",),
        permissions=frozenset(),
        scope="all",
    )
    await bills.issue(
        session,
        staff,
        bills.BillInput(
            kind="property_fee",
            title="物业费 Property fee",
            period="2026-12",
            payer_id=payer,
            amount=45_600,
            due_on=bills.today(session) + timedelta(days=10),
        ),
    )
    return True


async def seed_demo(engine: AsyncEngine, settings: Settings) -> str:
    """Create the demo tenant, its staff and data when missing. Returns what it did."""
    if settings.env == "production":
        raise TenantError("the demo tenant is not seeded in production")
    kit = build_kit(settings)
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
            did.append(f"seeded {len(DEMO_PROJECTS)} projects")
        if await session.scalar(select(func.count()).select_from(Unit)) == 0:
            units = await _seed_units(session)
            did.append(f"seeded {units} units")
        if staff := await _seed_staff(session, kit, tenant):
            did.append(f"seeded {staff} staff")
        if await _seed_sales(session, kit, tenant):
            did.append("seeded a sales team, a lead routing rule and two leads")
        if await _seed_bills(session, kit):
            did.append("seeded a property fee bill")
        await session.commit()
    did.append(
        f"demo sign-in (X-Tenant: demo): {', '.join(e for _, e, _, _ in DEMO_STAFF)}; "
        f"password {demo_password(kit.settings)}"
    )
    return "\n".join(did)
