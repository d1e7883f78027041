"""Strawberry's ASGI view with Anju's context, and trusted documents.

A request may name a document of the apps' manifest (``mobile_contracts/manifest.json``) by id
instead of sending its text: ``{"documentId": "<sha256>", "variables": {...}}``. An unknown id
is refused (400). In production, a request that sends a full document runs only for a caller
whose roles grant ``graphql.adhoc`` (web consoles, tools); apps send ids.

Every refusal of the view (a body that is not JSON or not an object, an unknown id, a
multipart post without a preflight header...) is a 4xx in the GraphQL error shape."""

from __future__ import annotations

from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from starlette.datastructures import State, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.http import GraphQLRequestData
from strawberry.schema.base import BaseSchema
from strawberry.types.unset import UNSET

from api.console import graphiql_page
from api.graphql.context import Context
from api.http import Undecodable, error_body, loads
from api.notify import Senders
from api.ratelimit import Limiter
from api.security.kit import SecurityKit
from mobile_contracts.contracts import load_manifest
from tenants.sessions import TenantDatabase

# A multipart post must carry one of these: an HTML form (which a cross-site page can submit
# without a CORS preflight) cannot set any of them (the GraphQL multipart spec's CSRF guard).
PREFLIGHT_HEADERS = ("x-tenant", "authorization", "apollo-require-preflight", "x-requested-with")
NO_PREFLIGHT = (
    "a multipart request must carry a header a form cannot send: X-Tenant, "
    "Authorization or Apollo-Require-Preflight"
)
NOT_AN_OBJECT = "the body must be one JSON object (batches are not accepted)"


def _plain(data: dict[str, Any]) -> bool:
    """A JSON body strawberry would take as is: a string query, and variables, extensions and
    operationName of the right types (anything else goes to strawberry for its errors)."""
    return (
        isinstance(data.get("query"), str)
        and isinstance(data.get("variables"), (dict, type(None)))
        and isinstance(data.get("extensions"), (dict, type(None)))
        and isinstance(data.get("operationName"), (str, type(None)))
    )


def _state(request: AsyncHTTPRequestAdapter) -> State:
    """The Starlette request's state behind strawberry's request adapter."""
    assert isinstance(request, StarletteRequestAdapter)  # the ASGI view's adapter class
    return request._request.state


class GraphQLView(GraphQL[Context, None]):
    def __init__(
        self,
        schema: BaseSchema,
        db: TenantDatabase,
        kit: SecurityKit,
        senders: Senders,
        storage: Any = None,
        *,
        trusted: dict[str, str] | None = None,
        production: bool = False,
        limiter: Limiter | None = None,
        limits: tuple[int, int, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(schema, **kwargs)
        self.db = db
        self.kit = kit
        self.senders = senders
        self.storage = storage
        self.trusted = load_manifest() if trusted is None else trusted
        self.production = production
        self.limiter = limiter
        self.limits = limits

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page()  # its assets from the gateway, never from a CDN

    async def run(self, request, context=UNSET, root_value=UNSET):
        try:
            return await super().run(request, context, root_value)
        except HTTPException as exc:
            code = "NOT_FOUND" if exc.status_code == 404 else "BAD_USER_INPUT"
            return Response(
                error_body(exc.reason, code), exc.status_code, media_type="application/json"
            )

    def decode_json(self, data: str | bytes, what: str = "the body") -> object:
        try:
            return loads(data, what)
        except Undecodable as exc:
            raise HTTPException(400, str(exc)) from None

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if request.method == "POST" and content_type == "application/json":
            data = self.decode_json(await request.get_body())
            if not isinstance(data, dict):
                raise HTTPException(400, NOT_AN_OBJECT)
            if "documentId" in data and not data.get("query"):
                return self._trusted(data)
            streamed = "multipart/mixed" in (request.headers.get("accept") or "")
            if _plain(data) and not streamed:  # parsed once here
                _state(request).adhoc_document = True
                return GraphQLRequestData(
                    query=data["query"],
                    variables=data.get("variables"),
                    operation_name=data.get("operationName"),
                    extensions=data.get("extensions"),
                )
        elif content_type == "multipart/form-data" and not any(
            request.headers.get(h) for h in PREFLIGHT_HEADERS
        ):
            raise HTTPException(400, NO_PREFLIGHT)
        parsed = await super().parse_http_body(request)
        state = _state(request)
        if not getattr(state, "trusted_document", False):
            state.adhoc_document = True  # a full document, not an id
        return parsed

    def _trusted(self, data: dict[str, Any]) -> GraphQLRequestData:
        variables = data.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise HTTPException(400, "variables must be an object")
        return GraphQLRequestData(
            query=self._trusted_text(data),
            variables=variables,
            operation_name=data.get("operationName"),
            extensions=data.get("extensions"),
        )

    def _trusted_text(self, data: dict[str, Any]) -> str:
        text = self.trusted.get(str(data.get("documentId")))
        if text is None:
            raise HTTPException(400, "unknown documentId: not a trusted document")
        return text

    async def parse_multipart(self, request) -> dict:
        """The GraphQL multipart request: ``operations`` (one object), ``map`` (file field ->
        paths in the operations) and the files; any mismatch is a 400, never a 500."""
        try:
            form = await request.get_form_data()
        except (ValueError, StarletteHTTPException) as exc:
            reason = getattr(exc, "detail", None) or "Unable to parse the multipart body"
            raise HTTPException(400, str(reason)) from None
        parts = {}
        for name, default in (("operations", "{}"), ("map", "{}")):
            value = form.form.get(name, default)
            if not isinstance(value, str):
                raise HTTPException(400, f"{name} must be a form field, not a file")
            parts[name] = self.decode_json(value, name)
        operations, files_map = parts["operations"], parts["map"]
        if not isinstance(operations, dict):
            raise HTTPException(400, "operations must be one JSON object (no batches)")
        if not isinstance(files_map, dict) or not all(
            isinstance(paths, list) and all(isinstance(p, str) for p in paths)
            for paths in files_map.values()
        ):
            raise HTTPException(400, "map must be an object of lists of paths")
        files = {k: v for k, v in form.files.multi_items() if isinstance(v, UploadFile)}
        try:
            operations = replace_placeholders_with_files(operations, files_map, files)
        except (KeyError, IndexError, ValueError, TypeError):
            raise HTTPException(400, "map names a file or a path that was not sent") from None
        if operations.get("documentId") and not operations.get("query"):
            # An upload naming a trusted document in its "operations" part.
            operations["query"] = self._trusted_text(operations)
            _state(request).trusted_document = True
        return operations

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        tenant = request.scope.get("state", {}).get("tenant")
        return Context(
            request=request,
            response=response,
            tenant=tenant,
            db=self.db,
            kit=self.kit,
            senders=self.senders,
            storage=self.storage,
            production=self.production,
            limiter=self.limiter,
            limits=self.limits,
        )
