"""Strawberry's ASGI view with Anju's context."""

from __future__ import annotations

from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from api.graphql.context import Context
from api.security.kit import SecurityKit
from tenants.sessions import TenantDatabase


class GraphQLView(GraphQL):
    def __init__(
        self, schema, db: TenantDatabase, kit: SecurityKit, senders, storage=None, **kwargs
    ):
        super().__init__(schema, **kwargs)
        self.db = db
        self.kit = kit
        self.senders = senders
        self.storage = storage

    async def get_context(self, request: Request | WebSocket, response) -> Context:
        tenant = request.scope.get("state", {}).get("tenant")
        return Context(
            request=request, response=response, tenant=tenant, db=self.db, kit=self.kit,
            senders=self.senders, storage=self.storage,
        )  # fmt: skip
