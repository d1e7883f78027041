"""Per-request GraphQL context: tenant, unit of work, current user, DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ErrorCode
from tenants.registry import TenantInfo
from tenants.sessions import UnitOfWork


@dataclass(frozen=True)
class Anonymous:
    """No sign-in exists yet (identity issue); every caller is anonymous."""

    id: None = None
    is_authenticated: bool = False


class Loaders:
    """DataLoaders of this request, made on first use (one per loader name)."""

    def __init__(self, ctx: Context):
        self._ctx = ctx
        self._made: dict[str, Any] = {}

    def get(self, name: str, factory) -> Any:
        loader = self._made.get(name)
        if loader is None:
            loader = self._made[name] = factory(self._ctx)
        return loader


@dataclass
class Context:
    request: Any
    response: Any
    tenant: TenantInfo | None
    uow: UnitOfWork
    user: Anonymous = field(default_factory=Anonymous)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self)

    @property
    def session(self) -> AsyncSession:
        """The tenant session; only reachable behind a permission that requires a tenant."""
        if self.tenant is None:
            from api.graphql.errors import QueryError

            raise QueryError(ErrorCode.BAD_USER_INPUT, "this field needs a tenant (X-Tenant)")
        return self.uow.session
