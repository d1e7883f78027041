"""The relay: committed outbox rows -> numbered per tenant -> published on the bus.

One relay leads at a time (a session advisory lock on its own connection, which also LISTENs
for the outbox trigger); the others wait and take over when the leader's connection ends. The
leader, in a loop woken by NOTIFY (and every ``poll`` seconds in case one was missed):

1. numbers the rows not numbered yet, per tenant, in one transaction (``shared.event_stream``
   holds each tenant's last number: gapless, in publish order), in the order the database
   clock wrote them (``clock_timestamp()`` at insert: two changes of one unit are serialised
   by its row lock, so the later one is always written later, whatever the gateways' clocks);
2. publishes the numbered rows not published yet, in sequence order;
3. marks them published.

A crash before 3 publishes those rows again after the restart; subscribers drop a sequence
they already have, so each event arrives once. Published rows older than the retention
window are deleted; ``pruned_through`` tells a resuming client it must refetch."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any, cast

import asyncpg
import structlog
from sqlalchemy import Row, Table, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db import connection_dsn
from api.live.bus import Publisher
from api.live.hub import LiveEvent
from api.live.models import EventStream, OutboxEvent

log = structlog.get_logger("anju.live")

LOCK_KEY = 0x616E6A75_6C697665 & 0x7FFFFFFFFFFFFFFF  # "anjulive"
CHANNEL = "anju_outbox"
# A declarative model's __table__ is its Table (SQLAlchemy types it as any FromClause).
OUTBOX = cast(Table, OutboxEvent.__table__)
STREAM = cast(Table, EventStream.__table__)


def wire(row: Row[Any]) -> LiveEvent:
    """An outbox row as the bus carries it (JSON-ready: the payload came from JSONB)."""
    return {
        "tenant": str(row.tenant_id),
        "seq": row.seq,
        "kind": row.kind,
        "entity": str(row.entity_id),
        "payload": row.payload,
        "at": row.created_at.isoformat(),
    }


class Relay:
    def __init__(
        self,
        engine: AsyncEngine,
        bus: Publisher,
        *,
        poll: float = 5.0,
        batch: int = 500,
        retention: timedelta = timedelta(hours=24),
        standby_poll: float = 2.0,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.poll = poll
        self.batch = batch
        self.retention = retention
        self.standby_poll = standby_poll
        self.leading = asyncio.Event()
        self._last_prune = 0.0

    async def run(self) -> None:
        """Forever: wait for leadership, then relay; reconnect after a lost connection."""
        dsn = connection_dsn(self.engine.url)
        while True:
            conn = None
            try:
                # Named after the process: pg_stat_activity shows which one leads.
                conn = await asyncpg.connect(
                    dsn, server_settings={"application_name": f"anju-relay-{os.getpid()}"}
                )
                while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):  # noqa: ASYNC110
                    await asyncio.sleep(self.standby_poll)  # another process leads
                wake = asyncio.Event()
                await conn.add_listener(CHANNEL, lambda *_, w=wake: w.set())
                self.leading.set()
                # With the in-process bus only this process's subscribers hear the events: a
                # gateway without Redis must not share a database with gateways that use it.
                log.info("live relay leads", bus=type(self.bus).__name__)
                while not conn.is_closed():
                    wake.clear()
                    await self.drain()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.poll)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live relay: retrying after an error", error=repr(exc))
                await asyncio.sleep(1.0)
            finally:
                self.leading.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 5)

    async def drain(self) -> int:
        """Number, publish and mark everything pending; returns how many were published."""
        while await self.number() == self.batch:
            pass
        published = 0
        while True:
            n = await self.publish_pending()
            published += n
            if n < self.batch:
                break
        if time.monotonic() - self._last_prune > 60:
            self._last_prune = time.monotonic()
            await self.prune()
        return published

    async def number(self) -> int:
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(OUTBOX.c.id, OUTBOX.c.tenant_id)
                    .where(OUTBOX.c.seq.is_(None))
                    .order_by(OUTBOX.c.created_at, OUTBOX.c.id)
                    .limit(self.batch)
                    .with_for_update()
                )
            ).all()
            if not rows:
                return 0
            per_tenant: defaultdict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
            for row in rows:
                per_tenant[row.tenant_id].append(row.id)
            numbered = []
            for tenant_id, ids in per_tenant.items():
                stream = STREAM
                stmt = (
                    insert(stream)
                    .values(tenant_id=tenant_id, last_seq=len(ids))
                    .on_conflict_do_update(
                        index_elements=[stream.c.tenant_id],
                        set_={"last_seq": stream.c.last_seq + len(ids)},
                    )
                    .returning(stream.c.last_seq)
                )
                last = (await conn.execute(stmt)).scalar_one()
                first = last - len(ids) + 1
                numbered += [{"_id": i, "_seq": first + k} for k, i in enumerate(ids)]
            await conn.execute(
                update(OUTBOX).where(OUTBOX.c.id == bindparam("_id")).values(seq=bindparam("_seq")),
                numbered,
            )
            return len(rows)

    async def publish_pending(self) -> int:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(OUTBOX)
                    .where(OUTBOX.c.published_at.is_(None), OUTBOX.c.seq.is_not(None))
                    .order_by(OUTBOX.c.seq, OUTBOX.c.tenant_id)
                    .limit(self.batch)
                )
            ).all()
            await conn.rollback()
        if not rows:
            return 0
        rows = sorted(rows, key=lambda r: (str(r.tenant_id), r.seq))
        await self.bus.publish([wire(r) for r in rows])
        async with self.engine.begin() as conn:
            await conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_([r.id for r in rows]))
                .values(published_at=func.now())
            )
        return len(rows)

    async def prune(self) -> int:
        """Delete published events older than the retention window."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                text("""
                WITH gone AS (
                  DELETE FROM shared.outbox
                  WHERE published_at IS NOT NULL AND published_at < now() - CAST(:keep AS interval)
                  RETURNING tenant_id, seq
                ), upto AS (SELECT tenant_id, max(seq) AS seq FROM gone GROUP BY tenant_id)
                UPDATE shared.event_stream s SET pruned_through = greatest(s.pruned_through, u.seq)
                FROM upto u WHERE s.tenant_id = u.tenant_id
                """),
                {"keep": self.retention},
            )
            return result.rowcount or 0
