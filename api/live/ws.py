"""The GraphQL WebSocket endpoint (graphql-transport-ws), serving the live subscriptions.

- ``connection_init`` carries the access token (``{"authorization": "Bearer ..."}``); the
  tenant comes from the handshake (X-Tenant or subdomain, as for HTTP). No tenant: close 4400;
  a missing or invalid token: close 4403; no ``connection_init`` within the timeout: 4408; a
  second one: 4429; ``subscribe`` before the ack: 4401; a reused id: 4409; a malformed
  message: 4400.
- ``subscribe`` runs only subscription operations (queries and mutations go over HTTP), with
  the same document limits and trusted documents as HTTP, each field's declared permission, and
  at most ``live_max_subscriptions`` per connection. A refusal is an ``error`` message whose
  errors carry ``extensions.code``; the connection stays open.
- ``since`` (every subscription has it) resumes: the events after that sequence come first, in
  order, from the outbox; if some are no longer kept, one ``RefetchRequired`` instead.
- The server pings every connection every ``live_keepalive`` seconds (one timer per process).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import structlog
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLFormattedError,
    OperationType,
    VariableNode,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
    visit,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.language import Visitor
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message, Receive, Scope, Send
from strawberry.types.arguments import convert_arguments

from api.errors import DomainError, ErrorCode, Unauthenticated
from api.graphql.errors import apply_error_policy
from api.graphql.limits import check_length, literal_faults
from api.graphql.permissions import check_classes
from api.graphql.schema import SUGGESTION, AnjuSchema
from api.graphql.types import overlong_list
from api.http import loads
from api.identity.auth import Principal, authenticate, bearer_token
from api.live.hub import Connection, Feed, Hub, event_keys
from api.live.models import EventStream
from api.live.relay import OUTBOX, wire
from api.live.schema import PLANS, RefetchRequired
from api.security.kit import SecurityKit
from tenants.registry import TenantInfo
from tenants.sessions import TenantDatabase

log = structlog.get_logger("anju.live")

PROTOCOL = "graphql-transport-ws"
ACK = '{"type":"connection_ack"}'
PONG = '{"type":"pong"}'
ADHOC = "send a trusted document id (documentId); full documents need graphql.adhoc"
SUBSCRIPTIONS_ONLY = "only subscriptions run over this socket; send queries and mutations over HTTP"
SEND_ACCESS = "send the access token in connection_init: {authorization: 'Bearer …'}"

Parsed = tuple[DocumentNode | None, list[GraphQLError]]
"""A document as parsed and validated (None and the errors when it is refused)."""


class _Vars(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_variable(self, node: VariableNode, *_: object) -> None:
        self.names.add(node.name.value)


class PlanContext:
    __slots__ = ("db", "principal", "tenant", "tenant_id")

    def __init__(self, tenant: TenantInfo, principal: Principal, db: TenantDatabase) -> None:
        self.tenant, self.tenant_id, self.principal, self.db = tenant, tenant.id, principal, db

    def session(self) -> AsyncSession:
        return self.db.session(self.tenant)


class LiveEndpoint:
    def __init__(
        self,
        schema: AnjuSchema,
        hub: Hub,
        db: TenantDatabase,
        kit: SecurityKit,
        *,
        trusted: dict[str, str],
        production: bool,
        max_tokens: int,
        max_chars: int = 100_000,
        max_subscriptions: int = 20,
        init_timeout: float = 10.0,
        replay_max: int = 1000,
    ) -> None:
        self.schema = schema  # the strawberry schema
        self.gql = schema._schema
        self.rules: list[type[ASTValidationRule]] = [
            *specified_rules,
            *getattr(schema, "limit_rules", ()),
        ]
        self.hub = hub
        self.db = db
        self.kit = kit
        self.trusted = trusted
        self.production = production
        self.max_tokens = max_tokens
        self.max_chars = max_chars
        self.max_subscriptions = max_subscriptions
        self.init_timeout = init_timeout
        self.replay_max = replay_max
        self._documents: OrderedDict[str, Parsed] = OrderedDict()
        self.hide_suggestions = bool(getattr(schema, "hide_suggestions", False))

    # ------------------------------------------------------------ connection

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if PROTOCOL not in (scope.get("subprotocols") or ()):
            await send({"type": "websocket.close", "code": 4406})  # handshake refused (403)
            return
        await send({"type": "websocket.accept", "subprotocol": PROTOCOL})

        async def close(code: int, reason: str) -> None:
            await send({"type": "websocket.close", "code": code, "reason": reason[:120]})

        try:
            first = await asyncio.wait_for(receive(), self.init_timeout)
        except TimeoutError:
            return await close(4408, "Connection initialisation timeout")
        if first["type"] == "websocket.disconnect":
            return
        msg = _message(first)
        if msg is None or msg.get("type") != "connection_init":
            return await close(
                4401 if msg and msg.get("type") == "subscribe" else 4400,
                "Unauthorized"
                if msg and msg.get("type") == "subscribe"
                else "Invalid message received",
            )
        tenant = scope.get("state", {}).get("tenant")
        if tenant is None:
            return await close(4400, "a tenant is needed: send X-Tenant or use its subdomain")
        token = _token(msg.get("payload"))
        if not token:
            return await close(4403, f"Forbidden: {SEND_ACCESS}")
        principal, refusal = await self._authenticate(tenant, token)
        if principal is None:
            return await close(4403, f"Forbidden: {refusal}")
        claims = self.kit.tokens.verify(token, tenant.slug)  # verified just now: cached
        conn = Connection(send, tenant.id, principal, token, float(claims.expires_at))
        self.hub.connections.add(conn)
        try:
            conn.push(ACK)
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                msg = _message(message)
                if msg is None:
                    return await close(4400, "Invalid message received")
                kind = msg.get("type")
                if kind == "ping":
                    conn.push(PONG)
                elif kind == "pong":
                    pass
                elif kind == "subscribe":
                    if (code := await self._subscribe(conn, tenant, msg)) is not None:
                        return await close(*code)
                elif kind == "complete":
                    sid = msg.get("id")
                    feed = conn.feeds.get(sid) if isinstance(sid, str) else None
                    if feed is not None:
                        self.hub.unregister(feed)
                elif kind == "connection_init":
                    return await close(4429, "Too many initialisation requests")
                else:
                    return await close(4400, "Invalid message received")
        finally:
            self.hub.drop(conn)

    async def _authenticate(self, tenant: TenantInfo, token: str) -> tuple[Principal | None, str]:
        try:
            async with self.db.session(tenant) as session:
                return await authenticate(session, self.kit, tenant, token), ""
        except Unauthenticated as exc:
            return None, str(exc)

    # ------------------------------------------------------------ subscribe

    def _document(self, query: str) -> Parsed:
        cached = self._documents.get(query)
        if cached is not None:
            self._documents.move_to_end(query)
            return cached
        document: DocumentNode | None
        try:
            check_length(query, self.max_chars)
            document = parse(query, max_tokens=self.max_tokens)
            errors = literal_faults(validate(self.gql, document, self.rules))
        except GraphQLError as exc:
            document, errors = None, [exc]
        self._documents[query] = (document, errors)
        if len(self._documents) > 512:
            self._documents.popitem(last=False)
        return document, errors

    async def _subscribe(
        self, conn: Connection, tenant: TenantInfo, msg: dict[str, Any]
    ) -> tuple[int, str] | None:
        """Start a subscription; a refusal is an ``error`` message (the connection stays
        open: None), a protocol fault the close code and reason."""
        sid, payload = msg.get("id"), msg.get("payload")
        if not isinstance(sid, str) or not sid or len(sid) > 100 or not isinstance(payload, dict):
            return 4400, "Invalid message received"
        if sid in conn.feeds:
            return 4409, f"Subscriber for {sid} already exists"

        def fail(
            code: ErrorCode | str, message: str, errors: list[GraphQLFormattedError] | None = None
        ) -> None:
            body: list[GraphQLFormattedError] = errors or [
                {"message": message, "extensions": {"code": str(code)}}
            ]
            if self.hide_suggestions:  # production: no "Did you mean ...?" schema hints
                for e in body:
                    e["message"] = SUGGESTION.sub("", e["message"])
            conn.push(json.dumps({"id": sid, "type": "error", "payload": body}))

        if len(conn.feeds) >= self.max_subscriptions:
            limit = self.max_subscriptions
            fail(ErrorCode.RATE_LIMITED, f"at most {limit} subscriptions per connection")
            return None
        query, adhoc = payload.get("query"), True
        if not query and payload.get("documentId"):
            query, adhoc = self.trusted.get(str(payload["documentId"])), False
            if query is None:
                fail(ErrorCode.BAD_USER_INPUT, "unknown documentId: not a trusted document")
                return None
        if not isinstance(query, str) or not query:
            fail(ErrorCode.BAD_USER_INPUT, "send a query or a documentId")
            return None
        if self.production and adhoc and not conn.principal.can("graphql.adhoc"):
            fail(ErrorCode.FORBIDDEN, ADHOC)
            return None
        document, errors = self._document(query)
        if errors or document is None:
            fail("", "", [e.formatted for e in apply_error_policy(list(errors))])
            return None
        op_name = payload.get("operationName")
        op = get_operation_ast(document, op_name if isinstance(op_name, str) else None)
        if op is None:
            fail(ErrorCode.BAD_USER_INPUT, "no single operation: name it (operationName)")
            return None
        if op.operation != OperationType.SUBSCRIPTION:
            fail(ErrorCode.BAD_USER_INPUT, SUBSCRIPTIONS_ONLY)
            return None
        root = op.selection_set.selections[0]
        if not isinstance(root, FieldNode) or root.name.value not in PLANS:
            fail(ErrorCode.BAD_USER_INPUT, "select the subscription field directly")
            return None
        variables = payload.get("variables")
        variables = {} if variables is None else variables
        if not isinstance(variables, dict):
            fail(ErrorCode.BAD_USER_INPUT, "variables must be an object")
            return None
        if (refusal := overlong_list(variables)) is not None:
            fail(ErrorCode.BAD_USER_INPUT, refusal)
            return None
        coerced = get_variable_values(self.gql, op.variable_definitions or (), variables)
        if isinstance(coerced, list):
            fail("", "", [e.formatted for e in apply_error_policy(coerced)])
            return None
        subscription = self.gql.subscription_type
        assert subscription is not None  # the operation is a subscription the schema validated
        field_def = subscription.fields[root.name.value]
        sfield = field_def.extensions["strawberry-definition"]
        # The caller is read again: a sign-out or a role change since the connection counts.
        principal, refusal = await self._authenticate(tenant, conn.token)
        if principal is None:
            return 4403, f"Forbidden: {refusal}"
        conn.principal = principal
        try:
            raw = get_argument_values(field_def, root, coerced)
            check_classes(sfield.permission_classes, conn.principal)
            scalars = self.schema.schema_converter.scalar_registry
            args = convert_arguments(raw, sfield.arguments, scalars, self.schema.config)
            plan = await PLANS[root.name.value](PlanContext(tenant, conn.principal, self.db), args)
        except DomainError as exc:
            fail(exc.code, exc.message)
            return None
        except GraphQLError as exc:
            fail(ErrorCode.BAD_USER_INPUT, exc.message)
            return None
        if conn.closed or sid in conn.feeds:  # gone, or the id was reused meanwhile
            return None
        seen = _Vars()
        if root.selection_set is not None:
            visit(root.selection_set, seen)
        for d in document.definitions:
            if d is not op and getattr(d, "selection_set", None) is not None:
                visit(d, seen)
        values = coerced.coerced
        used = json.dumps({k: values.get(k) for k in sorted(seen.names)}, default=str)
        key = (query, op.name.value if op.name else None, used)
        shape = self.hub.shape(key, document, key[1], variables)
        feed = Feed(conn, sid, shape, set(plan.keys), plan.accept, plan.control)
        since = args.get("since")
        if since is not None and since < 0:
            fail(ErrorCode.BAD_USER_INPUT, "since is a sequence: 0 or more")
            return None
        if since is None:
            self.hub.register(feed)
            return None
        feed.buffer = []  # live events wait while the missed ones are read
        self.hub.register(feed)
        try:
            await self._replay(feed, tenant.id, int(since))
        finally:
            pending, feed.buffer = feed.buffer, None
        for ev in pending or ():
            if ev["seq"] > feed.last_seq:
                feed.deliver(ev["seq"], shape.render(ev, self.hub.to_object(ev)))
        return None

    async def _replay(self, feed: Feed, tenant: str, since: int) -> None:
        tenant_id = uuid.UUID(tenant)
        async with self.db.engine.connect() as c:
            stream = (
                await c.execute(
                    select(EventStream.last_seq, EventStream.pruned_through).where(
                        EventStream.tenant_id == tenant_id
                    )
                )
            ).first()
            last, pruned = (stream.last_seq, stream.pruned_through) if stream else (0, 0)
            rows: Sequence[Row[Any]] = []
            if pruned <= since <= last:
                rows = (
                    await c.execute(
                        select(OUTBOX)
                        .where(
                            OUTBOX.c.tenant_id == tenant_id,
                            OUTBOX.c.seq > since,
                            OUTBOX.c.seq <= last,
                        )
                        .order_by(OUTBOX.c.seq)
                        .limit(self.replay_max + 1)
                    )
                ).all()
            await c.rollback()
        if not pruned <= since <= last or len(rows) > self.replay_max:
            reason = (
                "the sequence is not one of this tenant's"
                if since > last
                else "more events were missed than are replayed"
                if len(rows) > self.replay_max
                else "events after that sequence are no longer kept"
            )
            ev = {"seq": last}
            body = feed.shape.render(ev, RefetchRequired(seq=last, reason=reason))
            feed.conn.push(feed.prefix + body + "}")
            feed.last_seq = last
            return
        for row in rows:
            ev = wire(row)
            if ev["kind"].startswith("follow.") or not feed.keys.intersection(event_keys(ev)):
                continue
            if feed.accept(ev):
                feed.deliver(ev["seq"], feed.shape.render(ev, self.hub.to_object(ev)))
        feed.last_seq = max(feed.last_seq, last)


def _message(message: Message) -> dict[str, Any] | None:
    text = message.get("text")
    if text is None and message.get("bytes") is not None:
        text = message["bytes"].decode("utf-8", "replace")
    try:
        msg = loads(text) if text else None
    except ValueError:  # not JSON, nested too deeply, a number of too many digits
        return None
    return msg if isinstance(msg, dict) else None


def _token(payload: object) -> str | None:
    payload = payload if isinstance(payload, dict) else {}
    return bearer_token({"authorization": str(payload.get("authorization") or "")})
