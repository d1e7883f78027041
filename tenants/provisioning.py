"""Creating a tenant: registry row + schema + every tenant migration, in one transaction.

Choice: the tenant stream is rendered once per process as a single SQL script (Alembic offline
mode, see ``tenants.migrate.tenant_ddl_script``) and run in the new schema in one round trip.
It is the same migrations Alembic would apply one by one, including the version row, so the
schema is at head the moment it exists and later migrations apply to it as to any other
tenant. Running Alembic online per new tenant costs a round trip per statement plus the
environment start-up; cloning a template schema needs a home-made cloner (PostgreSQL has no
CREATE SCHEMA ... LIKE) that would have to copy every kind of object correctly. A test checks
that the script and the step-by-step migrations produce identical schemas.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import asyncpg
from sqlalchemy import delete, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.ids import uuid7
from tenants.migrate import tenant_ddl_script
from tenants.models import Tenant, TenantStatus
from tenants.registry import (
    DEFAULT_CURRENCY,
    DEFAULT_LOCALE,
    DEFAULT_TIME_ZONE,
    SlugTaken,
    TenantError,
    TenantInfo,
    schema_for,
    validate_currency,
    validate_locale,
    validate_slug,
    validate_time_zone,
)

PLAN_RE = re.compile(r"[a-z0-9_-]{1,32}")


@dataclass(frozen=True)
class Provisioned:
    tenant: TenantInfo
    milliseconds: float


async def create_tenant(
    engine: AsyncEngine, slug: str, name: str, plan: str = "free", **preferences: str
) -> Provisioned:
    """Register and provision a tenant in its own transaction (``preferences``: time_zone,
    locale, currency). Raises InvalidSlug / SlugTaken / TenantError."""
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        info = await provision(conn, slug, name, plan, **preferences)
    return Provisioned(info, (time.perf_counter() - t0) * 1000)


async def provision(
    conn: AsyncConnection,
    slug: str,
    name: str,
    plan: str = "free",
    *,
    time_zone: str = DEFAULT_TIME_ZONE,
    locale: str = DEFAULT_LOCALE,
    currency: str = DEFAULT_CURRENCY,
) -> TenantInfo:
    """Register and provision a tenant inside the caller's transaction (sign-up uses this so
    the tenant, its first admin and their membership commit together)."""
    validate_slug(slug)
    time_zone = validate_time_zone(time_zone)
    locale = validate_locale(locale)
    currency = validate_currency(currency)
    name = (name or "").strip()
    if not name:
        raise TenantError("name is required", "name")
    if len(name) > 200:
        raise TenantError("name must be at most 200 characters", "name")
    if not PLAN_RE.fullmatch(plan or ""):
        raise TenantError("plan must be 1-32 characters: a-z, 0-9, '_' or '-'", "plan")
    schema = schema_for(slug)
    script = tenant_ddl_script()
    info = TenantInfo(
        str(uuid7()),
        slug,
        name,
        schema,
        TenantStatus.ACTIVE,
        plan,
        time_zone=time_zone,
        locale=locale,
        currency=currency,
    )
    try:
        async with conn.begin_nested():  # a taken slug leaves the caller's transaction usable
            await conn.execute(
                insert(Tenant).values(
                    id=info.id,
                    slug=slug,
                    name=name,
                    schema_name=schema,
                    status=info.status,
                    plan=plan,
                    time_zone=time_zone,
                    locale=locale,
                    currency=currency,
                )
            )
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None  # an open connection has its driver's (asyncpg) connection
            # One simple-protocol round trip: schema, transaction-local search_path, DDL.
            await raw.execute(
                f'CREATE SCHEMA "{schema}";\nSET LOCAL search_path TO "{schema}", public;\n'
                + script
            )
    except IntegrityError as exc:
        raise SlugTaken(f"a tenant with slug '{slug}' already exists", "slug") from exc
    except asyncpg.DuplicateSchemaError as exc:  # a schema left by hand or by a failed drop
        raise TenantError(
            f"schema {schema} already exists without a registered tenant; drop it first", "slug"
        ) from exc
    # SET LOCAL lasts until the end of the whole transaction, not the savepoint: reset it so
    # the caller's unqualified statements are not redirected.
    await conn.exec_driver_sql("SET LOCAL search_path TO DEFAULT")
    return info


async def drop_tenant(engine: AsyncEngine, slug: str) -> None:
    """Remove a tenant and its schema (tests and tooling; no GraphQL exposure)."""
    schema = schema_for(slug)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.execute(
            text("DELETE FROM shared.tenant_wakeup WHERE schema_name = :s"), {"s": schema}
        )
        await conn.execute(delete(Tenant).where(Tenant.slug == slug))
