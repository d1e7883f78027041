"""Seeding helpers shared by the HTTP scenarios: a tenant with an admin and a bearer token, and
unit rows in the column order of the tenant ``unit`` table (see migration 0006), for COPY."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from api.identity import service as identity
from api.identity.models import Membership
from tenants.provisioning import create_tenant

# Every column of ``unit`` but the generated ``price_per_m2``.
UNIT_COLUMNS = (
    "id",
    "project_id",
    "building_id",
    "unit_type_id",
    "floor",
    "number",
    "gross_area",
    "net_area",
    "orientation",
    "rooms",
    "list_price",
    "currency",
    "status",
    "hold_expires_at",
    "held_by",
    "status_changed_at",
    "version",
    "tags",
    "search_text",
    "created_at",
)

SEEDED_AT = datetime(2026, 11, 1, tzinfo=UTC)


async def tenant_with_admin(engine, db, kit, slug: str, name: str, email: str):
    """A new tenant, its admin, and the admin's access token: (TenantInfo, token)."""
    t = (await create_tenant(engine, slug, name)).tenant
    async with db.session(t) as session:
        account = await identity.create_account(
            session, kit, name="Bench", phone=None, email=email, password=None
        )
        session.add(Membership(account_id=account.id, tenant_id=uuid.UUID(t.id), roles=["admin"]))
        tokens = await identity.start_session(session, kit, account.id, t)
        await session.commit()
    return t, tokens.access_token


def unit_record(
    *,
    id,
    project_id,
    building_id,
    floor: int,
    number: str,
    gross_area: Decimal,
    list_price: int | None,
    status: str,
    unit_type_id=None,
    rooms: int | None = None,
    orientation: str | None = None,
    tags: list[str] | None = None,
    search_text: str = "",
    hold_expires_at: datetime | None = None,
) -> tuple:
    """One row for ``copy_records_to_table(..., columns=UNIT_COLUMNS)``."""
    net = (gross_area * Decimal("0.78")).quantize(Decimal("0.01"))
    return (
        id,
        project_id,
        building_id,
        unit_type_id,
        floor,
        number,
        gross_area,
        net,
        orientation,
        rooms,
        list_price,
        "CNY",
        status,
        hold_expires_at,
        None,
        SEEDED_AT,
        1,
        tags or [],
        search_text,
        SEEDED_AT,
    )
