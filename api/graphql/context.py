"""Per-request GraphQL context, and the per-operation scope (transaction + DataLoaders).

An HTTP request carries one operation; a WebSocket carries many, concurrently, over one
context. So the unit of work and the DataLoaders belong to the *operation*: the
``OperationScope`` extension makes them when an operation starts (in the operation's own task)
and keeps them in a context variable; ``Context.session`` and ``Context.loaders`` read it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension

from api.errors import ErrorCode, Unauthenticated
from api.identity.auth import Principal, authenticate, bearer_token
from api.security.kit import SecurityKit
from tenants.registry import TenantInfo
from tenants.sessions import TenantDatabase, UnitOfWork


class Loaders:
    """DataLoaders of one operation, made on first use (one per loader name)."""

    def __init__(self, ctx: Context):
        self._ctx = ctx
        self._made: dict[str, Any] = {}

    def get(self, name: str, factory) -> Any:
        loader = self._made.get(name)
        if loader is None:
            loader = self._made[name] = factory(self._ctx)
        return loader


_UNSET = object()


@dataclass
class _Scope:
    uow: UnitOfWork
    loaders: Loaders
    principal: Any = _UNSET


_current: ContextVar[_Scope | None] = ContextVar("anju_operation_scope", default=None)


@dataclass
class Context:
    request: Any
    response: Any
    tenant: TenantInfo | None
    db: TenantDatabase
    kit: SecurityKit
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

    @property
    def client_ip(self) -> str:
        client = getattr(self.request, "client", None)
        return client.host if client else ""

    @property
    def user_agent(self) -> str:
        return self.request.headers.get("user-agent", "")

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


class OperationScope(SchemaExtension):
    """The operation owns the transaction: commit when it ends without error, roll back
    otherwise; the session is closed whatever happens. Services never commit."""

    async def on_operation(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx: Context = ec.context
        scope = _Scope(UnitOfWork(ctx.db, ctx.tenant), Loaders(ctx))
        _current.set(scope)
        try:
            yield
            uow = scope.uow
            if not uow.started:
                return
            result = ec.result
            if (result is not None and result.errors) or ec.pre_execution_errors:
                await uow.rollback()
                return
            try:
                await uow.commit()
            except Exception as exc:  # e.g. a deferred constraint: nothing was saved
                await uow.rollback()
                if result is not None:
                    result.data = None
                    result.errors = [GraphQLError("commit failed", original_error=exc)]
        finally:
            await scope.uow.close()
            _current.set(None)
