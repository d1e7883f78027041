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

Each lane is an engine of its own (same URL and settings) whose pool keeps its idle connections
as a stack (LIFO): under light load a lane's tenants meet one warm backend rather than rotating
over cold ones. When more than one is idle, a checkout takes the one that has served its tenant
before, else the one that has served the fewest tenants: each tenant settles on one connection
of its lane, and a lane of ``n`` connections with ``T`` tenants costs about ``T`` warm-ups and
``T/n`` schemas a backend instead of ``n x T`` and ``T``. Shared-schema work (the registry,
sign-in, the job queue, the live relay) uses the process's main engine, whose pool is
``ANJU_DB_SHARED_POOL_SIZE``.

The sessions waiting for a busy lane are served round-robin by tenant, first come first served
within a tenant (``FairQueuePool``): a tenant sharing its home lane with a busy one waits for at
most one session of each other waiting tenant, not behind the busy tenant's whole queue.
``Lanes.pick`` names the tenant in ``LANE_TENANT``, a context variable the pool reads at checkout
(SQLAlchemy's greenlet runs in the asyncio task's context); a checkout without it (a session
created in another task) waits as one anonymous tenant. The pool keeps, beside the queue of idle
connections, a table of waiting sessions (tenant -> its waiters, in rotation order) and the
number of connections *granted* to woken waiters that have not taken them yet:

* a checkout takes a connection at once only when nobody waits and more connections are free
  (idle, or not opened yet) than are granted; otherwise it waits in its tenant's line;
* whenever a connection becomes free (checkin, a connection that failed to open, ``dispose``),
  the first tenant of the rotation is granted one for its oldest waiter and goes to the end of
  the rotation if it has more;
* a waiter that is cancelled after its grant passes the grant on; one that is cancelled or
  times out before leaves its line (a timeout raises SQLAlchemy's pool ``TimeoutError``, as
  ``QueuePool`` does). ``recreate`` (``engine.dispose()``) builds a pool with an empty table;
  the waiters of the old pool are served by the old pool, as ``QueuePool``'s are.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections import OrderedDict, deque
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import await_

from api.db import make_engine, translated_schema
from api.settings import Settings

# Keys of a DBAPI connection's ``info`` (cleared when the connection is replaced).
SEEN = "anju_schemas_seen"
RETIRE = "anju_retire"

# The tenant (schema) whose session checks out a lane connection; set by ``Lanes.pick``.
LANE_TENANT: ContextVar[str | None] = ContextVar("anju_lane_tenant", default=None)


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
    waited: int = 0  # checkouts that waited for a busy lane
    cold: int = 0  # checkouts with a choice of idle connections, none of which knew the tenant


def _expire(turn: asyncio.Future[bool]) -> None:
    if not turn.done():
        turn.set_result(False)


class FairQueuePool(AsyncAdaptedQueuePool):
    """A lane's pool: sessions waiting for a connection are served round-robin by tenant
    (``LANE_TENANT``), first come first served within a tenant (module docstring)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        # tenant -> its waiters' turns, oldest first; the rotation is the dict's order
        self._lines: OrderedDict[str | None, deque[asyncio.Future[bool]]] = OrderedDict()
        self._granted = 0  # connections granted to woken waiters that have not taken them
        self.stats: LaneStats | None = None

    def waiting(self) -> int:
        """Checkouts waiting for a connection."""
        return sum(len(line) for line in self._lines.values())

    def granted(self) -> int:
        """Connections granted to waiters that have not taken them yet."""
        return self._granted

    def has_room(self) -> bool:
        """Whether a checkout now would get a connection without waiting."""
        return not self._lines and self._free() > self._granted

    def _free(self) -> int:
        """Idle connections plus those the pool may still open."""
        if self._max_overflow == -1:  # no limit
            return self._pool.qsize() + 1
        return self._pool.qsize() + max(0, self._max_overflow - self._overflow)

    def _do_get(self) -> ConnectionPoolEntry:
        if self.has_room():
            return self._take()
        tenant = LANE_TENANT.get()
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[bool] = loop.create_future()  # True: granted; False: timed out
        self._lines.setdefault(tenant, deque()).append(turn)
        if self.stats is not None:
            self.stats.waited += 1
        timer = loop.call_later(self._timeout, _expire, turn) if self._timeout is not None else None
        self._serve()  # no-op unless a free connection was missed
        try:
            granted = await_(turn)
        except BaseException:
            self._leave(tenant, turn)  # cancelled: pass a grant on, or leave the line
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not granted:
            self._leave(tenant, turn)
            raise exc.TimeoutError(
                f"FairQueuePool limit of size {self.size()} overflow {self.overflow()} reached, "
                f"connection timed out, timeout {self._timeout:0.2f}",
                code="3o7r",
            )
        self._granted -= 1
        return self._take()

    def _take(self) -> ConnectionPoolEntry:
        """An idle connection, or a new one (the caller holds a free one: this does not wait)."""
        self._prefer_warm()
        try:
            return super()._do_get()
        except BaseException:
            self._serve()  # a connection that failed to open frees its place
            raise

    def _prefer_warm(self) -> None:
        """Put on top of the idle stack the connection this checkout's tenant should take: one
        that has served its schema (its catalog caches and plans are warm there), else the one
        that has served the fewest schemas (new tenants spread over the lane's connections, so
        each backend learns about ``1/size`` of the lane's tenants, not all of them, and reaches
        ``max_schemas`` that much later). Only the order of the idle connections changes."""
        tenant = LANE_TENANT.get()
        idle = getattr(getattr(self._pool, "_queue", None), "_queue", None)
        if tenant is None or not isinstance(idle, list) or len(idle) < 2:
            return  # not a LIFO stack (asyncio.LifoQueue keeps a list, top last), or no choice
        best, fewest = len(idle) - 1, None
        for i in range(len(idle) - 1, -1, -1):
            seen = idle[i].info.get(SEEN, ())
            if tenant in seen:
                best = i
                break
            if fewest is None or len(seen) < fewest:
                best, fewest = i, len(seen)
        else:
            if self.stats is not None:
                self.stats.cold += 1
        if best != len(idle) - 1:
            idle.append(idle.pop(best))

    def _leave(self, tenant: str | None, turn: asyncio.Future[bool]) -> None:
        if turn.done() and not turn.cancelled() and turn.result():
            self._granted -= 1  # granted but not taken: the next waiter's
            self._serve()
            return
        line = self._lines.get(tenant)
        if line is not None:
            with contextlib.suppress(ValueError):
                line.remove(turn)
            if not line:
                del self._lines[tenant]

    def _serve(self) -> None:
        """Grant the free connections to the waiters, one tenant at a time in rotation."""
        while self._lines and self._free() > self._granted:
            tenant, line = next(iter(self._lines.items()))
            turn = line.popleft()
            if line:
                self._lines.move_to_end(tenant)
            else:
                del self._lines[tenant]
            if not turn.done():  # a turn that timed out or was cancelled is skipped
                turn.set_result(True)
                self._granted += 1

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        try:
            super()._do_return_conn(record)
        finally:
            self._serve()

    def dispose(self) -> None:
        super().dispose()
        self._serve()  # the counts start again: room for the waiters of this pool

    def recreate(self) -> FairQueuePool:
        pool = super().recreate()
        assert isinstance(pool, FairQueuePool)
        pool.stats = self.stats
        return pool

    def status(self) -> str:
        return f"{super().status()} Waiting: {self.waiting()} Granted: {self._granted}"


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
            self.pool_of(eng).stats = self.stats
            self._watch(eng)

    @staticmethod
    def pool_of(engine: AsyncEngine) -> FairQueuePool:
        pool = engine.sync_engine.pool
        assert isinstance(pool, FairQueuePool), "lane engines are made by lane_engine()"
        return pool

    def reach_of(self, schema: str) -> tuple[int, ...]:
        """The lanes ``schema`` may use, home first."""
        order = self._orders.get(schema)
        if order is None:
            order = lane_order(schema, len(self.engines))[: self.plan.reach]
            self._orders[schema] = order
        return order

    def pick(self, schema: str) -> int:
        """The lane of a new session of ``schema``: the first of its reach with a connection
        free (idle, or not opened yet, and nobody waiting); the home lane when all are busy
        (the session waits there for one, in its tenant's turn). Names the tenant for the
        lane's fair queue (``LANE_TENANT``, in the caller's context)."""
        LANE_TENANT.set(schema)
        order = self.reach_of(schema)
        for lane in order:
            if self.pool_of(self.engines[lane]).has_room():
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
    return Lanes([lane_engine(url, settings, size) for size in plan.sizes], plan)


def lane_engine(url: URL, settings: Settings, size: int, **overrides: Any) -> AsyncEngine:
    """The engine of one lane: a fixed pool of ``size`` connections, most recently used first,
    waiters served by tenant in turn (``make_engine`` leaves the pool settings to us when it is
    given a pool class)."""
    kwargs: dict[str, Any] = {
        "poolclass": FairQueuePool,
        "pool_size": size,
        "max_overflow": 0,
        "pool_use_lifo": True,
        "pool_recycle": settings.db_pool_recycle,
    }
    kwargs.update(overrides)
    return make_engine(url, settings, **kwargs)
