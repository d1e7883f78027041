"""Tenant sessions: an AsyncSession bound to the shared engine with a ``schema_translate_map``.

Tenant tables are declared without a schema; the map ``{None: <tenant schema>}`` (always that one
key) makes every statement name the tenant's schema explicitly. No connection state is changed,
so a pooled connection can serve any tenant next, and SQLAlchemy compiles each statement once
for all tenants. ``search_path`` is never set on pooled connections.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tenants.registry import TenantInfo


class TenantDatabase:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._engines: dict[str, AsyncEngine] = {}

    def engine_for(self, schema: str) -> AsyncEngine:
        eng = self._engines.get(schema)
        if eng is None:
            # A light proxy sharing the pool of ``self.engine``.
            eng = self.engine.execution_options(schema_translate_map={None: schema})
            self._engines[schema] = eng
        return eng

    def session(self, tenant: TenantInfo) -> AsyncSession:
        # The tenant travels with the session (the outbox of live events needs it; services
        # read its time zone, locale and currency through ``tenant_of``).
        return AsyncSession(
            self.engine_for(tenant.schema_name),
            expire_on_commit=False,
            info={"tenant_id": tenant.id, "tenant_slug": tenant.slug, "tenant": tenant},
        )


def tenant_of(session: AsyncSession) -> TenantInfo:
    """The tenant a tenant session serves (its zone: ``tenant_of(session).zone``)."""
    tenant = session.info.get("tenant")
    if not isinstance(tenant, TenantInfo):
        raise RuntimeError("not a tenant session (TenantDatabase.session)")
    return tenant


class UnitOfWork:
    """The operation's (or job's) transaction: one session opened on first use, bound to the
    tenant's schema when there is a tenant (shared tables are schema-qualified, so the same
    session reaches them) and to the shared schema only otherwise. The owner commits on
    success and rolls back otherwise. Services never commit."""

    def __init__(
        self,
        db: TenantDatabase,
        tenant: TenantInfo | None,
        on_open: Callable[[AsyncSession], None] | None = None,
    ) -> None:
        self.db = db
        self.tenant = tenant
        self._session: AsyncSession | None = None
        self._on_open = on_open

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            if self.tenant is not None:
                self._session = self.db.session(self.tenant)
            else:
                self._session = AsyncSession(self.db.engine, expire_on_commit=False)
            if self._on_open is not None:
                self._on_open(self._session)
        return self._session

    @property
    def started(self) -> bool:
        return self._session is not None

    async def commit(self) -> None:
        if self._session is not None:
            await self._session.commit()

    async def rollback(self) -> None:
        if self._session is not None:
            await self._session.rollback()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
