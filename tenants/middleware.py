"""Tenant resolution as pure ASGI middleware, for http and websocket scopes.

The tenant comes from the ``X-Tenant`` header, else (WebSocket handshakes only: a browser
cannot set headers on one) from a ``tenant`` query parameter, else from the subdomain of the
configured base domain (``acme.example.com`` -> ``acme``). The resolved ``TenantInfo`` (or
None when the request names no tenant) is put in ``scope["state"]["tenant"]`` before anything
else runs.
Unknown tenant: 404; suspended: 403; both with a JSON body in the GraphQL error shape. A
websocket handshake is refused the same way when the server supports the websocket HTTP
response extension, else closed with 4404 / 4403.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from tenants.registry import SLUG_RE, TenantCache


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()


class TenantMiddleware:
    def __init__(self, app: ASGIApp, cache: TenantCache, base_domain: str) -> None:
        self.app = app
        self.cache = cache
        self.suffix = "." + base_domain.lower().lstrip(".")

    def requested_slug(self, scope: Scope) -> str | None:
        host = None
        name: bytes
        value: bytes
        for name, value in scope.get("headers", ()):
            if name == b"x-tenant":
                return value.decode("latin-1").strip()
            if name == b"host":
                host = value.decode("latin-1")
        if scope["type"] == "websocket":
            query: str = scope.get("query_string", b"").decode("latin-1")
            for key, param in parse_qsl(query):
                if key == "tenant":
                    return param.strip()
        if host:
            host = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else ""
            if host.endswith(self.suffix):
                sub = host[: -len(self.suffix)]
                if sub and "." not in sub:
                    return sub
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        slug = self.requested_slug(scope)
        tenant = None
        if slug is not None:
            tenant = await self.cache.get(slug) if SLUG_RE.fullmatch(slug) else None
            if tenant is None:
                await self.refuse(
                    scope, receive, send, 404, "NOT_FOUND", f"unknown tenant '{slug}'"
                )
                return
            if not tenant.active:
                await self.refuse(
                    scope, receive, send, 403, "FORBIDDEN", f"tenant '{slug}' is suspended"
                )
                return
        scope.setdefault("state", {})["tenant"] = tenant
        await self.app(scope, receive, send)

    async def refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
    ) -> None:
        body = error_body(code, message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        message_in = await receive()  # websocket.connect
        if message_in.get("type") != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {"type": "websocket.http.response.start", "status": status, "headers": headers}
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 4000 + status, "reason": message[:100]})
