"""The per-process hub: one bus subscription, fan-out in process.

Each subscription of a WebSocket is a ``Feed`` registered under topic keys (a project, a
building, an entity, the listings of a tenant, an account's follows), always prefixed by its
tenant: an event is only ever looked up under its own tenant's keys. For each event the hub
gathers the feeds that want it, groups them by ``Shape`` (the subscription document and the
variables its selection reads) and builds the payload once per shape: one GraphQL execution
and one JSON encoding, whatever the number of subscribers. Sending is one synchronous write per
socket; a socket whose client does not read has its messages queued (bounded), the others are
not held up.

Per tenant the hub remembers the last sequence it dispatched: a repeat (a relay restarted
after publishing) is dropped, and a gap (a lost bus message) is read back from the outbox.
After the bus lost its subscription, ``on_resume`` reads back what was numbered meanwhile (see
``_catch_up``), in order with the events that arrive afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from graphql import DocumentNode, ExecutionResult, GraphQLSchema, execute
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Message, Send

log = structlog.get_logger("anju.live")

MAX_BACKLOG = 256  # messages queued for a client that does not read; then it is closed
RESUME = "_resume"  # a hub queue entry: the bus subscribed again (see Hub.on_resume)
RESUME_MARGIN = 5.0  # seconds before the loss read back for tenants without a known sequence

LiveEvent = dict[str, Any]
"""An event as the bus carries it (JSON): tenant, seq, kind, payload, ..."""
Topic = tuple[Any, ...]
"""A topic key, its tenant first: (tenant, "building", id), (tenant, "listings"), ..."""
Control = Callable[["Hub", "Feed", LiveEvent], None]


class Connection:
    """One WebSocket: its ASGI ``send``, caller, feeds, and a backlog only while it is slow."""

    __slots__ = (
        "backlog",
        "close_code",
        "closed",
        "expires_at",
        "feeds",
        "principal",
        "send",
        "tenant_id",
        "token",
    )

    def __init__(
        self,
        send: Send,
        tenant_id: str,
        principal: Any,
        token: str = "",
        expires_at: float = 0.0,
    ) -> None:
        self.send = send
        self.tenant_id = tenant_id
        self.principal = principal
        self.token = token  # read again at each subscribe (a sign-out or role change counts)
        self.expires_at = expires_at  # the access token's expiry: then the socket is closed
        self.feeds: dict[str, Feed] = {}
        self.backlog: deque[Message] | None = None
        self.closed = False
        self.close_code: int | None = None

    def push(self, text: str) -> None:
        """Send without waiting: written at once when the socket can take it; otherwise
        queued behind the pending write (a client that stops reading is disconnected)."""
        self._put({"type": "websocket.send", "text": text})

    def close(self, code: int, reason: str) -> None:
        """Close the socket (after what is queued); its receive loop then ends."""
        self._put({"type": "websocket.close", "code": code, "reason": reason[:120]})
        self.closed, self.close_code = True, code

    def _put(self, message: Message) -> None:
        if self.closed:
            return
        if self.backlog is not None:
            if len(self.backlog) >= MAX_BACKLOG:
                self.closed, self.close_code = True, 4008
                return
            self.backlog.append(message)
            return
        # Driven by hand (an ASGI send is an async function): a write the socket takes at
        # once completes on the first step.
        coro = cast(Coroutine[Any, Any, None], self.send(message))
        try:
            waiting = coro.send(None)
        except StopIteration:
            return  # written
        except Exception:  # the socket is gone
            self.closed = True
            return
        self.backlog = deque()
        asyncio.get_running_loop().create_task(self._finish(coro, waiting))

    async def _finish(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        try:
            while True:  # finish the suspended write, then the queue
                if waiting is None:
                    await asyncio.sleep(0)
                else:
                    await waiting
                try:
                    waiting = coro.send(None)
                except StopIteration:
                    break
            while self.backlog and self.close_code != 4008:
                await self.send(self.backlog.popleft())
        except Exception:
            self.closed = True
        finally:
            self.backlog = None


class Shape:
    """A subscription document plus the variables its selection reads; payloads are built
    once per event per shape."""

    __slots__ = (
        "_body",
        "_ev",
        "document",
        "key",
        "operation_name",
        "schema",
        "users",
        "variables",
    )

    def __init__(
        self,
        key: Topic,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        variables: dict[str, Any],
    ) -> None:
        self.key = key
        self.schema = schema
        self.document = document
        self.operation_name = operation_name
        self.variables = variables
        self.users = 0
        self._ev: Any = None
        self._body = ""

    def render(self, ev: LiveEvent, obj: Any) -> str:
        """The ``next`` payload (JSON text) for ``obj``, built at most once per event."""
        if self._ev is ev:
            return self._body
        result = execute(
            self.schema,
            self.document,
            root_value=obj,
            operation_name=self.operation_name,
            variable_values=self.variables,
        )
        if not isinstance(result, ExecutionResult):  # an async field: not expected on events
            raise TypeError("live payload types must resolve synchronously")
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            from api.graphql.errors import apply_error_policy

            payload["errors"] = [e.formatted for e in apply_error_policy(result.errors)]
        self._ev, self._body = ev, json.dumps(payload, separators=(",", ":"), default=str)
        return self._body


class Feed:
    """One subscription of one connection."""

    __slots__ = (
        "accept",
        "buffer",
        "conn",
        "control",
        "keys",
        "last_seq",
        "prefix",
        "shape",
        "sub_id",
    )

    def __init__(
        self,
        conn: Connection,
        sub_id: str,
        shape: Shape,
        keys: set[Topic],
        accept: Callable[[LiveEvent], bool],
        control: Control | None = None,
    ) -> None:
        self.conn = conn
        self.sub_id = sub_id
        self.shape = shape
        self.keys = keys
        self.accept = accept
        self.control = control  # (hub, feed, event) for follow changes: re-key, not sent
        self.last_seq = 0
        self.buffer: list[LiveEvent] | None = None  # while replaying: live events wait here
        self.prefix = '{"id":' + json.dumps(sub_id) + ',"type":"next","payload":'

    def deliver(self, seq: int, body: str) -> None:
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        self.conn.push(self.prefix + body + "}")


def event_keys(ev: LiveEvent) -> list[Topic]:
    t, kind, p = ev["tenant"], ev["kind"], ev["payload"]
    if kind.startswith("unit."):
        return [
            (t, "building", p["building_id"]),
            (t, "project", p["project_id"]),
            (t, "entity", p["unit_id"]),
        ]
    if kind.startswith("listing."):
        return [(t, "listings"), (t, "entity", p["listing_id"])]
    if kind.startswith("follow."):
        return [(t, "account", p["account_id"])]
    if kind.startswith("notification."):
        return [(t, "inbox", p["account_id"])]
    return []


class Hub:
    def __init__(
        self,
        schema: GraphQLSchema,
        engine: AsyncEngine | None = None,
        *,
        to_object: Callable[[LiveEvent], Any],
    ) -> None:
        self.schema = schema  # graphql-core schema
        self.engine = engine  # for reading a gap back from the outbox
        self.to_object = to_object
        self.topics: dict[Topic, set[Feed]] = {}
        self.shapes: dict[Topic, Shape] = {}
        self.connections: set[Connection] = set()
        self.last_seq: dict[str, int] = {}
        self.queue: asyncio.Queue[list[LiveEvent]] = asyncio.Queue()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()  # other threads hand events in through it
        self._task = self.loop.create_task(self._run(), name="anju-live-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def on_bus(self, events: list[LiveEvent]) -> None:
        """The bus handler: never blocks the bus; events are dispatched in order."""
        self.queue.put_nowait(events)

    def on_resume(self, lost_at: float) -> None:
        """The bus subscribed again after losing its subscription at ``lost_at`` (Unix time):
        what was published meanwhile is read back before the events that follow."""
        self.queue.put_nowait([{RESUME: lost_at}])

    async def _run(self) -> None:
        while True:
            events = await self.queue.get()
            for ev in events:
                try:
                    if RESUME in ev:
                        await self._catch_up(ev[RESUME])
                    else:
                        await self._accept(ev)
                except Exception:
                    log.exception("live hub: an event could not be dispatched", seq=ev.get("seq"))

    async def _catch_up(self, lost_at: float) -> None:
        """Dispatch the events the bus may have missed: of a tenant whose sequence the hub knows,
        every numbered one after it; of a tenant with subscribers but no event seen yet, those
        written since shortly before the subscription was lost (``RESUME_MARGIN``)."""
        if self.engine is None:
            return
        from api.live.relay import OUTBOX, wire

        known = {uuid.UUID(t): seq for t, seq in self.last_seq.items()}
        watched = {uuid.UUID(key[0]) for key in self.topics} - set(known)
        since = datetime.fromtimestamp(lost_at - RESUME_MARGIN, UTC)
        clauses: list[ColumnElement[bool]] = [
            and_(OUTBOX.c.tenant_id == t, OUTBOX.c.seq > seq) for t, seq in known.items()
        ]
        if watched:
            clauses.append(and_(OUTBOX.c.tenant_id.in_(watched), OUTBOX.c.created_at >= since))
        if not clauses:
            return
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(OUTBOX)
                    .where(OUTBOX.c.seq.is_not(None), or_(*clauses))
                    .order_by(OUTBOX.c.tenant_id, OUTBOX.c.seq)
                )
            ).all()
            await conn.rollback()
        log.info("live hub: caught up after the bus resumed", events=len(rows))
        for row in rows:
            ev = wire(row)
            if self.last_seq.get(ev["tenant"], 0) < ev["seq"]:
                self.last_seq[ev["tenant"]] = ev["seq"]
                self.dispatch(ev)

    # ------------------------------------------------------------ registry

    def shape(
        self,
        key: Topic,
        document: DocumentNode,
        operation_name: str | None,
        variables: dict[str, Any],
    ) -> Shape:
        shape = self.shapes.get(key)
        if shape is None:
            shape = self.shapes[key] = Shape(key, self.schema, document, operation_name, variables)
        shape.users += 1
        return shape

    def register(self, feed: Feed) -> None:
        feed.conn.feeds[feed.sub_id] = feed
        for key in feed.keys:
            self.topics.setdefault(key, set()).add(feed)

    def add_key(self, feed: Feed, key: Topic) -> None:
        feed.keys.add(key)
        self.topics.setdefault(key, set()).add(feed)

    def remove_key(self, feed: Feed, key: Topic) -> None:
        feed.keys.discard(key)
        self._unlink(feed, key)

    def _unlink(self, feed: Feed, key: Topic) -> None:
        members = self.topics.get(key)
        if members is not None:
            members.discard(feed)
            if not members:
                del self.topics[key]

    def unregister(self, feed: Feed) -> None:
        if feed.conn.feeds.get(feed.sub_id) is feed:
            del feed.conn.feeds[feed.sub_id]
        for key in feed.keys:
            self._unlink(feed, key)
        feed.shape.users -= 1
        if feed.shape.users <= 0:
            self.shapes.pop(feed.shape.key, None)

    def drop(self, conn: Connection) -> None:
        for feed in list(conn.feeds.values()):
            self.unregister(feed)
        conn.closed = True
        self.connections.discard(conn)

    # ------------------------------------------------------------ dispatch

    async def _accept(self, ev: LiveEvent) -> None:
        tenant, seq = ev["tenant"], ev["seq"]
        last = self.last_seq.get(tenant)
        if last is not None and seq <= last:
            return  # published again after a relay restart
        if last is not None and seq > last + 1 and self.engine is not None:
            for missed in await self._read_back(tenant, last, seq):
                self.dispatch(missed)
        self.last_seq[tenant] = seq
        self.dispatch(ev)

    async def _read_back(self, tenant: str, after: int, before: int) -> list[LiveEvent]:
        from api.live.relay import OUTBOX, wire

        assert self.engine is not None  # called only when the hub has one (see _accept)
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(OUTBOX)
                    .where(
                        OUTBOX.c.tenant_id == uuid.UUID(tenant),
                        OUTBOX.c.seq > after,
                        OUTBOX.c.seq < before,
                    )
                    .order_by(OUTBOX.c.seq)
                )
            ).all()
            await conn.rollback()
        log.info("live hub: read back a gap", tenant=tenant, missed=len(rows))
        return [wire(r) for r in rows]

    def dispatch(self, ev: LiveEvent) -> int:
        """Send ``ev`` to every feed that wants it; returns how many got it."""
        feeds: set[Feed] = set()
        for key in event_keys(ev):
            members = self.topics.get(key)
            if members:
                feeds |= members
        if not feeds:
            return 0
        groups: dict[Shape, list[Feed]] = {}
        for feed in feeds:
            if feed.control is not None and ev["kind"].startswith("follow."):
                feed.control(self, feed, ev)
                continue
            if not feed.accept(ev):
                continue
            if feed.buffer is not None:
                feed.buffer.append(ev)
                continue
            groups.setdefault(feed.shape, []).append(feed)
        sent = 0
        if groups:
            obj = self.to_object(ev)
            seq = ev["seq"]
            dead: list[Connection] = []
            for shape, group in groups.items():
                body = shape.render(ev, obj)
                for feed in group:
                    feed.deliver(seq, body)
                    if feed.conn.closed:
                        dead.append(feed.conn)
                sent += len(group)
            for conn in dead:  # stopped reading: its feeds go (the socket ends with its client)
                self.drop(conn)
        return sent

    async def keepalive(self, seconds: float) -> None:
        """Run ``ping_all`` every ``seconds`` until cancelled (the gateway's lifespan task)."""
        while True:
            await asyncio.sleep(seconds)
            self.ping_all()

    def ping_all(self, now: float | None = None) -> None:
        """The keep-alive tick: ping every socket; close those whose access token expired
        (the client reconnects with a fresh one, so a sign-out ends its sockets within a
        token's lifetime)."""
        now = time.time() if now is None else now
        for conn in list(self.connections):
            if conn.expires_at and conn.expires_at < now:
                conn.close(4403, "Forbidden: the access token expired; reconnect with a new one")
                self.drop(conn)
            else:
                conn.push('{"type":"ping"}')
