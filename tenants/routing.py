"""Tenant-affine connection routing: each tenant is served by a small, stable part of the pool.

A PostgreSQL backend builds catalog caches (relations, indexes, statistics, prepared plans)
for every tenant schema it meets and keeps them as long as it lives: 3-5 ms of CPU and
100-200 KiB the first time, per connection and per tenant. With one shared pool every
connection meets every tenant, so a process pays ``connections x tenants`` warm-ups and
memory. Here the tenant connections of a process are split into *lanes* (small pools of
``ANJU_DB_LANE_SIZE`` connections each):

* a tenant's sessions go to its *home lane*, chosen by rendezvous hashing of its schema (stable
  across processes and restarts, and only ``1/lanes`` of the tenants move when the lane count
  changes);
* when every connection of the home lane is busy, a session borrows the first lane with a free
  connection among the tenant's next lanes (its *reach*: ``ANJU_DB_TENANT_MAX_CONNECTIONS``
  connections in all), so a burst is not serialised on two connections; when all of them
  are busy it waits for its home lane;
* a tenant never reaches a lane outside its reach: one busy tenant holds at most
  ``ANJU_DB_TENANT_MAX_CONNECTIONS`` connections and every lane outside its reach stays free
  for the others;
* a connection that has served ``ANJU_DB_MAX_SCHEMAS_PER_CONNECTION`` tenant schemas is
  replaced the next time it is checked out, so the database memory of a process is bounded
  by settings (connections x schemas), whatever the number of tenants.

Each lane is an engine of its own (same URL and settings) whose pool hands out its most recently
used connection first (LIFO): under light load a lane's tenants meet one warm backend rather
than rotating over cold ones. Shared-schema work (the registry, sign-in, the job queue, the live
relay) uses the process's main engine, whose pool is ``ANJU_DB_SHARED_POOL_SIZE``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from api.db import make_engine, translated_schema
from api.settings import Settings

# Keys of a DBAPI connection's ``info`` (cleared when the connection is replaced).
SEEN = "anju_schemas_seen"
RETIRE = "anju_retire"


@dataclass(frozen=True, slots=True)
class LanePlan:
    """How the tenant connections of a process are split."""

    sizes: tuple[int, ...]  # connections of each lane
    reach: int  # lanes a tenant may use: its home lane and the next ones in its order
    max_schemas: int  # tenant schemas a connection may serve before it is replaced

    @classmethod
    def of(
        cls, pool_size: int, lane_size: int, tenant_max_connections: int, max_schemas: int
    ) -> LanePlan:
        lanes = max(1, pool_size // max(1, lane_size))
        base, extra = divmod(pool_size, lanes)
        sizes = tuple(base + (1 if i < extra else 0) for i in range(lanes))
        reach = min(lanes, max(1, math.ceil(tenant_max_connections / max(1, base))))
        return cls(sizes=sizes, reach=reach, max_schemas=max_schemas)


def lane_order(schema: str, lanes: int) -> tuple[int, ...]:
    """Every lane, in the order ``schema`` prefers them (rendezvous hashing: each lane scores
    ``hash(schema, lane)``; the highest is home). The same in every process."""

    def score(lane: int) -> bytes:
        return hashlib.blake2b(f"{schema}/{lane}".encode(), digest_size=8).digest()

    return tuple(sorted(range(lanes), key=score, reverse=True))


@dataclass
class LaneStats:
    borrowed: int = 0  # sessions sent past their home lane
    retired: int = 0  # connections replaced after max_schemas
    most_schemas: int = 0  # the most tenant schemas one connection has served


class Lanes:
    """The lane engines of a process and the choice of one for a tenant's session."""

    def __init__(self, engines: list[AsyncEngine], plan: LanePlan) -> None:
        if len(engines) != len(plan.sizes):
            raise ValueError("one engine per lane")
        self.engines = engines
        self.plan = plan
        self.stats = LaneStats()
        self._orders: dict[str, tuple[int, ...]] = {}
        for eng in engines:
            self._watch(eng)

    def reach_of(self, schema: str) -> tuple[int, ...]:
        """The lanes ``schema`` may use, home first."""
        order = self._orders.get(schema)
        if order is None:
            order = lane_order(schema, len(self.engines))[: self.plan.reach]
            self._orders[schema] = order
        return order

    def pick(self, schema: str) -> int:
        """The lane of a new session of ``schema``: the first of its reach with a connection
        free (idle, or not opened yet); the home lane when all are busy (the session waits
        there for one)."""
        order = self.reach_of(schema)
        for lane in order:
            pool = self.engines[lane].sync_engine.pool
            assert isinstance(pool, QueuePool)  # lanes are built with a fixed queue pool
            if pool.checkedout() < pool.size():
                if lane != order[0]:
                    self.stats.borrowed += 1
                return lane
        return order[0]

    async def dispose(self) -> None:
        for eng in self.engines:
            await eng.dispose()

    def _watch(self, engine: AsyncEngine) -> None:
        limit = self.plan.max_schemas
        stats = self.stats

        def seen(conn: Connection) -> None:
            schema = translated_schema(conn.get_execution_options())
            if schema is None:
                return
            info = conn.info
            schemas: set[str] = info.setdefault(SEEN, set())
            schemas.add(schema)
            stats.most_schemas = max(stats.most_schemas, len(schemas))
            if len(schemas) > limit:
                info[RETIRE] = True

        def retire(dbapi_conn: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
            if record.info.get(RETIRE):
                stats.retired += 1
                # The pool closes this connection and opens a fresh one for the checkout.
                raise DisconnectionError(f"served more than {limit} tenant schemas")

        event.listen(engine.sync_engine, "engine_connect", seen)
        event.listen(engine.sync_engine.pool, "checkout", retire)


def make_lanes(url: URL, settings: Settings) -> Lanes | None:
    """The lanes of a process (``None``: one pool for every tenant, when the lane size is 0
    or the pool holds a single lane)."""
    if not settings.db_lanes_on:
        return None
    plan = LanePlan.of(
        settings.db_pool_size,
        settings.db_lane_size,
        settings.db_tenant_max_connections,
        settings.db_max_schemas_per_connection,
    )
    engines = [
        make_engine(url, settings, pool_size=size, max_overflow=0, pool_use_lifo=True)
        for size in plan.sizes
    ]
    return Lanes(engines, plan)
