"""Strawberry's ASGI view, with the request owning the transaction."""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult

from api.graphql.context import Context
from api.graphql.errors import apply_error_policy
from tenants.sessions import TenantDatabase, UnitOfWork

log = structlog.get_logger("anju.graphql")


class GraphQLView(GraphQL):
    def __init__(self, schema, db: TenantDatabase, **kwargs):
        super().__init__(schema, **kwargs)
        self.db = db

    async def get_context(self, request: Request | WebSocket, response) -> Context:
        tenant = request.scope.get("state", {}).get("tenant")
        uow = UnitOfWork(self.db, tenant)
        request.scope.setdefault("state", {})["uow"] = uow
        return Context(request=request, response=response, tenant=tenant, uow=uow)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """Commit when the operation had no error, roll back otherwise, before answering."""
        uow: UnitOfWork | None = request.scope.get("state", {}).get("uow")
        if uow is not None and uow.started:
            try:
                if result.errors:
                    await uow.rollback()
                else:
                    await uow.commit()
            except Exception as exc:  # commit failed (e.g. serialization): nothing was saved
                from graphql import GraphQLError

                await uow.rollback()
                result.data = None
                result.errors = apply_error_policy(
                    [GraphQLError("commit failed", original_error=exc)]
                )
            finally:
                await uow.close()
        return process_result(result)
