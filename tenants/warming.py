"""Warming the lanes after a start: each lane's connections meet their home tenants' hot tables
before the process says it is ready.

A backend pays for a tenant schema the first time it plans a statement on one of its tables
(relation and index cache entries, ~0.5-2 ms of CPU and ~100 KiB for ``unit``). With lanes
(tenants/routing.py) the tenants a connection will serve are known at start: the tenants whose
home lane it belongs to. So the gateway opens every lane connection at start and deals the
lane's home tenants among them (each tenant on one connection, the one its sessions prefer
afterwards); on each connection it plans one empty read (``SELECT * FROM <schema>.<table> LIMIT
0``) of every ``ANJU_DB_WARM_TABLES`` table of each of its tenants, many tenants per round trip.
Until that is done ``/readyz`` answers 503 ``warming`` (liveness is unaffected), so a load
balancer sends traffic to warm backends only; the process serves whatever reaches it meanwhile.

Bounds: a connection warms at most three quarters of ``ANJU_DB_MAX_SCHEMAS_PER_CONNECTION``
tenants (the rest of its budget is for tenants that borrow its lane), tables a tenant does not
have (a tenant behind on migrations) are skipped, and one pool for every tenant (no lanes) is
not warmed: every connection would have to meet every tenant, the cost lanes exist to avoid.
Warming is an optimisation: if it fails, the failure is logged and the process is ready anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from tenants.registry import TenantCache, list_tenants
from tenants.routing import SEEN, Lanes
from tenants.sessions import TenantDatabase

log = logging.getLogger("anju.warming")

BATCH = 25  # tenants planned per round trip


@dataclass
class Warmup:
    """The state of a process's warm-up (read by ``/readyz``)."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    tenants: int = 0  # (tenant, connection) pairs warmed
    primed: int = 0  # tenants put in the tenant cache
    connections: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.done.is_set()

    @classmethod
    def finished(cls) -> Warmup:
        """A warm-up with nothing to do (no lanes, warming off)."""
        w = cls()
        w.done.set()
        return w


def home_tenants(lanes: Lanes, schemas: Sequence[str]) -> list[list[str]]:
    """The schemas of each lane's home tenants, in the order given."""
    homes: list[list[str]] = [[] for _ in lanes.engines]
    for schema in schemas:
        homes[lanes.reach_of(schema)[0]].append(schema)
    return homes


async def _existing(
    engine: AsyncEngine, schemas: Sequence[str], tables: Sequence[str]
) -> dict[str, list[str]]:
    """(schema, table) pairs of ``schemas`` x ``tables`` that exist."""
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ANY($1::text[]) AND c.relname = ANY($2::text[]) "
            "AND c.relkind IN ('r', 'p')",
            (list(schemas), list(tables)),
        )
        found: dict[str, list[str]] = {}
        for row in rows.mappings():
            found.setdefault(row["nspname"], []).append(row["relname"])
        return found


async def _warm_lane(engine: AsyncEngine, size: int, statements: list[tuple[str, str]]) -> int:
    """Open the ``size`` connections of a lane together (so each is a different backend) and
    deal ``statements`` ((schema, SQL) pairs, one per tenant) among them: each tenant is warmed
    on one connection, the one its sessions will then prefer (tenants/routing.py). Returns the
    pairs warmed."""
    gate = asyncio.Barrier(size)

    async def one(statements: list[tuple[str, str]]) -> int:
        async with engine.connect() as conn:
            await gate.wait()  # every connection checked out: none is drawn twice
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            for i in range(0, len(statements), BATCH):
                chunk = statements[i : i + BATCH]
                await driver.execute("".join(sql for _, sql in chunk))
            seen: set[str] = raw.info.setdefault(SEEN, set())
            seen.update(schema for schema, _ in statements)
            return len(statements)

    return sum(await asyncio.gather(*(one(statements[k::size]) for k in range(size))))


async def warm(
    db: TenantDatabase, tables: Sequence[str], warmup: Warmup, cache: TenantCache | None = None
) -> Warmup:
    """Warm every lane of ``db`` for its home tenants (all active tenants of the registry), and
    fill ``cache`` with the registry read for it: the first request of each tenant after a
    start then neither reads the registry nor meets a cold backend."""
    t0 = time.perf_counter()
    lanes = db.lanes
    try:
        if cache is not None or (lanes is not None and tables):
            generation = cache.generation if cache is not None else 0
            registry = await list_tenants(db.engine)
            if cache is not None:
                warmup.primed = cache.prime(registry, generation)
        if lanes is not None and tables:
            schemas = [t.schema_name for t in registry if t.active]
            have = await _existing(db.engine, schemas, tables)
            cap = max(1, lanes.plan.max_schemas * 3 // 4)
            jobs = []
            for lane, homes in enumerate(home_tenants(lanes, schemas)):
                statements = [
                    (s, "".join(f'SELECT * FROM "{s}"."{t}" LIMIT 0;' for t in have[s]))
                    for s in homes
                    if s in have
                ][: cap * lanes.plan.sizes[lane]]
                if statements:
                    size = lanes.plan.sizes[lane]
                    warmup.connections += size
                    jobs.append(_warm_lane(lanes.engines[lane], size, statements))
            warmup.tenants = sum(await asyncio.gather(*jobs))
    except Exception as exc:  # an optimisation only: the process serves without it
        warmup.error = f"{type(exc).__name__}: {exc}"
        log.warning("warming the lanes failed: %s", warmup.error)
    warmup.seconds = time.perf_counter() - t0
    log.info(
        "lanes warmed: %d tenant connections on %d connections in %.1f s (%d tenants cached)",
        warmup.tenants,
        warmup.connections,
        warmup.seconds,
        warmup.primed,
    )
    warmup.done.set()
    return warmup
