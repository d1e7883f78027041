"""Per-request GraphQL context, and the per-operation scope (transaction + DataLoaders).

An HTTP request carries one operation; a WebSocket carries many, concurrently, over one
context. So the unit of work and the DataLoaders belong to the *operation*: the
``OperationScope`` extension makes them when an operation starts (in the operation's own task)
and keeps them in a context variable; ``Context.session`` and ``Context.loaders`` read it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import structlog
from graphql import FieldNode, GraphQLError, get_operation_ast
from graphql.execution.values import get_argument_values, get_variable_values
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType as StrawberryOperationType

from api.audit.service import AuditRecorder, Event, clean
from api.audit.service import append as append_audit
from api.errors import ErrorCode, Unauthenticated
from api.identity.auth import Principal, authenticate, bearer_token
from api.security.kit import SecurityKit
from tenants.registry import TenantInfo
from tenants.sessions import TenantDatabase, UnitOfWork


class Loaders:
    """DataLoaders of one operation, made on first use (one per loader name)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._made: dict[str, Any] = {}

    def get(self, name: str, factory: Callable[[Context], Any]) -> Any:
        loader = self._made.get(name)
        if loader is None:
            loader = self._made[name] = factory(self._ctx)
        return loader


_UNSET = object()
AfterCommit = Callable[[], Awaitable[None]]
log = structlog.get_logger("anju.graphql")


@dataclass
class _Scope:
    uow: UnitOfWork
    loaders: Loaders
    audit: AuditRecorder
    principal: Any = _UNSET
    actor_id: uuid.UUID | None = None  # set by sign-in, before a principal exists
    after_commit: list[AfterCommit] = field(default_factory=list)


def note_user_error(code: str) -> None:
    """Called when a mutation returns a typed error: the audit entry records the outcome."""
    scope = _current.get()
    if scope is not None:
        scope.audit.user_errors.append(str(code))


_current: ContextVar[_Scope | None] = ContextVar("anju_operation_scope", default=None)


@dataclass
class Context:
    request: Any
    response: Any
    tenant: TenantInfo | None
    db: TenantDatabase
    kit: SecurityKit
    senders: Any = None
    storage: Any = None  # media storage (api.media.storage)
    production: bool = False
    limiter: Any = None  # api.ratelimit.Limiter
    limits: Any = None  # (per caller, per tenant, per anonymous IP) a minute
    connection_params: Any = None

    def _scope(self) -> _Scope:
        scope = _current.get()
        if scope is None:
            raise RuntimeError("no GraphQL operation in progress")
        return scope

    @property
    def session(self) -> AsyncSession:
        """The tenant session of this operation (opened on first use)."""
        if self.tenant is None:
            from api.graphql.errors import QueryError

            raise QueryError(ErrorCode.BAD_USER_INPUT, "this field needs a tenant (X-Tenant)")
        return self._scope().uow.session

    @property
    def shared_session(self) -> AsyncSession:
        """This operation's session, usable without a tenant (shared schema only)."""
        return self._scope().uow.session

    @property
    def loaders(self) -> Loaders:
        return self._scope().loaders

    def access_token(self) -> str | None:
        params = self.connection_params if isinstance(self.connection_params, dict) else {}
        if params.get("authorization"):
            return bearer_token({"authorization": str(params["authorization"])})
        return bearer_token(self.request.headers)

    def audit(
        self, action: str, *, target_type: str = "", target_id: object = "", **details: Any
    ) -> None:
        """Record an audit event of this operation (e.g. a read of unmasked personal data)."""
        self._scope().audit.add(action, target_type=target_type, target_id=target_id, **details)

    def tenant_changed(self) -> None:
        """Drop this process's cached copy of the tenant once its new settings are committed
        (dropped before, a request reading the tenant meanwhile would cache the old ones)."""
        cache = getattr(getattr(self.request, "app", None), "state", None)
        cache = getattr(cache, "tenant_cache", None)
        if cache is not None and self.tenant is not None:
            slug = self.tenant.slug

            async def drop() -> None:
                cache.invalidate(slug)

            self.after_commit(drop)

    def after_commit(self, fn: AfterCommit) -> None:
        """Run ``await fn()`` once this operation's transaction has committed (never when it
        rolls back); a failure there is logged, the response is already decided."""
        self._scope().after_commit.append(fn)

    def set_actor(self, account_id: uuid.UUID) -> None:
        """Name the actor of this operation's audit entries when no token was sent (sign-in)."""
        self._scope().actor_id = account_id

    @property
    def adhoc_document(self) -> bool:
        """The request sent a full document, not a trusted document id (set by the view)."""
        state = getattr(self.request, "state", None)
        return bool(getattr(state, "adhoc_document", False))

    @property
    def client_app(self) -> str:
        return self.request.headers.get("x-anju-app", "")[:32]

    @property
    def client_ip(self) -> str:
        client = getattr(self.request, "client", None)
        return client.host if client else ""

    @property
    def user_agent(self) -> str:
        return self.request.headers.get("user-agent", "")

    def principal_now(self) -> Principal | None:
        """The caller, already read when the operation started (see ``principal``)."""
        scope = self._scope()
        if scope.principal is _UNSET:
            if self.tenant is None or not self.access_token():
                return None
            raise RuntimeError("the caller was not read before execution")
        if isinstance(scope.principal, Exception):
            raise scope.principal
        return scope.principal

    async def principal(self) -> Principal | None:
        """The signed-in caller (None when no token was sent); read once per operation.
        Raises Unauthenticated for a token that is invalid here."""
        scope = self._scope()
        if scope.principal is _UNSET:
            token = self.access_token()
            try:
                scope.principal = (
                    await authenticate(self.session, self.kit, self.tenant, token)
                    if token and self.tenant is not None
                    else None
                )
            except Unauthenticated as exc:
                scope.principal = exc
        if isinstance(scope.principal, Exception):
            raise scope.principal
        return scope.principal


async def _caller(ctx: Context) -> Principal | None:
    """The caller when a valid token was sent, else None (a bad token is kept by the scope and
    raised where a field needs the caller)."""
    if ctx.tenant is not None and ctx.access_token():
        with contextlib.suppress(Unauthenticated):
            return await ctx.principal()
    return None


async def refuse_adhoc(ctx: Context) -> None:
    """Production: a full document (not a trusted id) runs only for a caller whose roles grant
    graphql.adhoc. Called before the document is parsed, so a stranger learns nothing about
    the schema from its syntax or validation messages."""
    if ctx.production and ctx.adhoc_document:
        principal = await _caller(ctx)
        if principal is None or not principal.can("graphql.adhoc"):
            raise GraphQLError(
                "send a trusted document id (documentId); full documents need graphql.adhoc",
                extensions={"code": ErrorCode.FORBIDDEN.value},
            )


def _mutation_event(ec: ExecutionContext, recorder: AuditRecorder) -> Event | None:
    """One audit event for a mutation operation: its root fields, their arguments (masked),
    the outcome (ok, or the typed errors returned) and the row changes it made."""
    doc = ec.graphql_document
    if doc is None or ec.operation_type != StrawberryOperationType.MUTATION:
        return None
    op = get_operation_ast(doc, ec.operation_name)
    graphql_schema = ec.schema._schema
    root = graphql_schema.mutation_type
    if root is None:  # a schema without mutations runs none
        return None
    variables = (
        get_variable_values(graphql_schema, op.variable_definitions or (), ec.variables or {})
        if op
        else []
    )
    names, args = [], {}
    for sel in op.selection_set.selections if op else ():
        if isinstance(sel, FieldNode) and sel.name.value in root.fields:
            name = sel.name.value
            names.append(name)
            try:
                args[name] = (
                    {}
                    if isinstance(variables, list)
                    else get_argument_values(root.fields[name], sel, variables)
                )
            except GraphQLError:
                args[name] = {}
    if not names:
        return None
    outcome = ",".join(recorder.user_errors) if recorder.user_errors else "ok"
    return Event(
        ",".join(names), outcome, details=clean({"args": args}) | {"changes": recorder.changes}
    )


class OperationScope(SchemaExtension):
    """The operation owns the transaction: commit when it ends without error, roll back
    otherwise; the session is closed whatever happens. Services never commit. Before a
    tenant operation commits, its audit events (every mutation, every unmasked read of
    personal data) are appended to the tenant's audit log in the same transaction."""

    async def on_execute(self) -> AsyncIterator[None]:
        """Read the caller once, before any resolver runs, so permission checks are
        synchronous lookups. A bad token is kept and raised where a field needs the caller."""
        ctx: Context = self.execution_context.context
        if self.execution_context.operation_type == StrawberryOperationType.SUBSCRIPTION:
            raise GraphQLError(
                "subscriptions are served over WebSocket (graphql-transport-ws) at /graphql",
                extensions={"code": ErrorCode.BAD_USER_INPUT.value},
            )
        await self._rate_limit(ctx, await _caller(ctx))
        yield

    @staticmethod
    async def _rate_limit(ctx: Context, principal: Principal | None) -> None:
        if ctx.limiter is None or ctx.limits is None:
            return
        per_user, per_tenant, per_anonymous = ctx.limits
        checks = [
            (f"u:{principal.account_id}", per_user)
            if principal is not None
            else (f"ip:{ctx.client_ip}", per_anonymous)
        ]
        if ctx.tenant is not None:
            checks.append((f"t:{ctx.tenant.id}", per_tenant))
        for key, limit in checks:
            if limit <= 0:
                continue
            verdict = await ctx.limiter.hit(key, limit)
            if not verdict.allowed:
                headers = getattr(ctx.response, "headers", None)
                if headers is not None:
                    headers["Retry-After"] = str(verdict.retry_after)
                who = "this tenant" if key.startswith("t:") else "you"
                raise GraphQLError(
                    f"too many requests from {who}: try again in {verdict.retry_after} s",
                    extensions={
                        "code": ErrorCode.RATE_LIMITED.value,
                        "retryAfter": verdict.retry_after,
                    },
                )

    async def on_operation(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx: Context = ec.context
        recorder = AuditRecorder()
        uow = UnitOfWork(ctx.db, ctx.tenant, on_open=recorder.track)
        scope = _Scope(uow, Loaders(ctx), recorder)
        _current.set(scope)
        try:
            await refuse_adhoc(ctx)  # before the document is parsed
            yield
            result = ec.result
            if (result is not None and result.errors) or ec.pre_execution_errors:
                await uow.rollback()
                return
            try:
                if ctx.tenant is not None:
                    events = list(recorder.events)
                    if (mutation := _mutation_event(ec, recorder)) is not None:
                        events.insert(0, mutation)
                    if events:
                        p = scope.principal
                        await append_audit(
                            uow.session,
                            events,
                            actor_id=p.account_id if isinstance(p, Principal) else scope.actor_id,
                            actor_ip=ctx.client_ip,
                            actor_app=ctx.client_app,
                        )
                if uow.started:
                    await uow.commit()
            except Exception as exc:  # e.g. a deferred constraint: nothing was saved
                await uow.rollback()
                if result is not None:
                    result.data = None
                    result.errors = [GraphQLError("commit failed", original_error=exc)]
                return
            for fn in scope.after_commit:
                try:
                    await fn()
                except Exception:
                    log.exception("after-commit task failed")
        finally:
            await scope.uow.close()
            _current.set(None)
