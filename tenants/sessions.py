"""Tenant sessions: an AsyncSession bound to the tenant's lane with a ``schema_translate_map``.

Tenant tables are declared without a schema; the map ``{None: <tenant schema>}`` (always that one
key) makes every statement name the tenant's schema explicitly. No connection state is changed,
so a pooled connection can serve any tenant next, and SQLAlchemy compiles each statement once
for all tenants. ``search_path`` is never set on pooled connections.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.settings import Settings
from tenants.registry import TenantInfo
from tenants.routing import Lanes, make_lanes


class TenantDatabase:
    """Tenant sessions of a process. With ``lanes`` (tenants/routing.py) a tenant's sessions
    go to its own lanes of the pool; without, every tenant shares ``engine``'s pool."""

    def __init__(self, engine: AsyncEngine, lanes: Lanes | None = None) -> None:
        self.engine = engine
        self.lanes = lanes
        self._engines: dict[tuple[str, int], AsyncEngine] = {}

    @classmethod
    def routed(cls, engine: AsyncEngine, settings: Settings) -> TenantDatabase:
        """The tenant database of a gateway or worker process: lanes per the settings."""
        return cls(engine, make_lanes(engine.url, settings))

    def engine_for(self, schema: str) -> AsyncEngine:
        lane = -1 if self.lanes is None else self.lanes.pick(schema)
        eng = self._engines.get((schema, lane))
        if eng is None:
            # A light proxy sharing the pool of the main engine or of the lane.
            base = self.engine if self.lanes is None else self.lanes.engines[lane]
            eng = base.execution_options(schema_translate_map={None: schema})
            self._engines[(schema, lane)] = eng
        return eng

    async def dispose(self) -> None:
        """Close the lanes' connections (the main engine belongs to whoever made it)."""
        if self.lanes is not None:
            await self.lanes.dispose()

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
