"""HTTP hardening around the gateway: security headers on every response, a time limit on
each HTTP request, and (in create_app) CORS from an allow-list in settings."""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-site"),
]
# JSON answers are never cached by browsers or proxies, and never render as a page.
JSON_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, production: bool):
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                content_type = dict(headers).get(b"content-type", b"")
                extra = list(API_HEADERS)
                if content_type.startswith(b"application/json"):
                    extra += JSON_HEADERS
                if self.production:
                    extra.append(HSTS)
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestTimeout:
    """An HTTP request that runs longer than ``seconds`` is cancelled (its transaction rolls
    back) and answered 503 with a JSON error, unless its response has already started."""

    def __init__(self, app: ASGIApp, *, seconds: float):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if started:
                raise
            body = json.dumps({"errors": [{
                "message": f"the request took longer than {self.seconds:g} s and was stopped",
                "extensions": {"code": "INTERNAL"},
            }]}).encode()  # fmt: skip
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()), (b"retry-after", b"5"),
            ]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
