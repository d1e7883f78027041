"""Strawberry's ASGI view with Anju's context, and trusted documents.

A request may name a document of the apps' manifest (``mobile_contracts/manifest.json``) by id
instead of sending its text: ``{"documentId": "<sha256>", "variables": {...}}``. An unknown id
is refused (400). In production, a request that sends a full document runs only for a caller
whose roles grant ``graphql.adhoc`` (web consoles, tools); apps send ids."""

from __future__ import annotations

import json

from cross_web import HTTPException
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from api.graphql.context import Context
from api.security.kit import SecurityKit
from mobile_contracts.contracts import load_manifest
from tenants.sessions import TenantDatabase


def _plain(data: dict) -> bool:
    """A JSON body strawberry would take as is: a string query, and variables, extensions and
    operationName of the right types (anything else goes to strawberry for its errors)."""
    return (
        isinstance(data.get("query"), str)
        and isinstance(data.get("variables"), (dict, type(None)))
        and isinstance(data.get("extensions"), (dict, type(None)))
        and isinstance(data.get("operationName"), (str, type(None)))
    )


class GraphQLView(GraphQL):
    def __init__(
        self, schema, db: TenantDatabase, kit: SecurityKit, senders, storage=None, *,
        trusted: dict[str, str] | None = None, production: bool = False, limiter=None,
        limits: tuple[int, int, int] | None = None, **kwargs,
    ):  # fmt: skip
        super().__init__(schema, **kwargs)
        self.db = db
        self.kit = kit
        self.senders = senders
        self.storage = storage
        self.trusted = load_manifest() if trusted is None else trusted
        self.production = production
        self.limiter = limiter
        self.limits = limits

    async def parse_http_body(self, request) -> GraphQLRequestData | list[GraphQLRequestData]:
        content_type = (request.content_type or "").split(";")[0].strip()
        if request.method == "POST" and content_type == "application/json":
            try:
                data = json.loads(await request.get_body())
            except ValueError:
                data = None
            if isinstance(data, dict) and "documentId" in data and not data.get("query"):
                text = self.trusted.get(str(data["documentId"]))
                if text is None:
                    raise HTTPException(400, "unknown documentId: not a trusted document")
                variables = data.get("variables")
                if variables is not None and not isinstance(variables, dict):
                    raise HTTPException(400, "variables must be an object")
                return GraphQLRequestData(
                    query=text, variables=variables, operation_name=data.get("operationName"),
                    extensions=data.get("extensions"),
                )  # fmt: skip
            streamed = "multipart/mixed" in (request.headers.get("accept") or "")
            if isinstance(data, dict) and _plain(data) and not streamed:  # parsed once here
                request._request.state.adhoc_document = True
                return GraphQLRequestData(
                    query=data["query"], variables=data.get("variables"),
                    operation_name=data.get("operationName"), extensions=data.get("extensions"),
                )  # fmt: skip
        parsed = await super().parse_http_body(request)
        if isinstance(parsed, GraphQLRequestData) and parsed.query is None:
            # A multipart upload naming a trusted document in its "operations" part.
            form = await request._request.form()
            try:
                operations = json.loads(form.get("operations") or "{}")
            except ValueError:
                operations = {}
            doc_id = operations.get("documentId") if isinstance(operations, dict) else None
            text = self.trusted.get(str(doc_id)) if doc_id else None
            if text is None:
                raise HTTPException(400, "unknown documentId: not a trusted document")
            parsed.query = text
            return parsed
        request._request.state.adhoc_document = True  # a full document, not an id
        return parsed

    async def get_context(self, request: Request | WebSocket, response) -> Context:
        tenant = request.scope.get("state", {}).get("tenant")
        return Context(
            request=request, response=response, tenant=tenant, db=self.db, kit=self.kit,
            senders=self.senders, storage=self.storage,
            production=self.production, limiter=self.limiter, limits=self.limits,
        )  # fmt: skip
