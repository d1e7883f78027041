"""HTTP hardening around the gateway: security headers on every response, a time limit on
each HTTP request, a size limit on each request body, the decoding of JSON input, and (in
create_app) CORS from an allow-list in settings and the client address behind trusted proxies.

Every refusal made here is a JSON body in the GraphQL error shape (``errors[0].extensions.code``),
whatever the path, so a client has one shape to read."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterable
from typing import Any, Literal, TypedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send


# How the gateway is served (``anju serve``, and the test suite's servers): uvicorn does not
# read X-Forwarded-For itself (it would believe it from loopback); create_app does, from the
# proxies of ``ANJU_TRUSTED_PROXIES`` only. A WebSocket message is at most 1 MiB (uvicorn's
# default is 16 MiB; subscribe messages are a few KiB): a larger one closes the socket (1009).
class UvicornOptions(TypedDict):
    log_level: str
    ws: str
    lifespan: Literal["auto", "on", "off"]
    proxy_headers: bool
    ws_max_size: int


UVICORN_OPTIONS: UvicornOptions = {
    "log_level": "warning",
    "ws": "websockets-sansio",
    "lifespan": "on",
    "proxy_headers": False,
    "ws_max_size": 1024 * 1024,
}

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
            message = f"the request took longer than {self.seconds:g} s and was stopped"
            await send_error(send, 503, message, "INTERNAL", headers=[(b"retry-after", b"5")])


def error_body(message: str, code: str, **extensions: Any) -> bytes:
    """One error in the GraphQL response shape."""
    return json.dumps(
        {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
    ).encode()


async def send_error(
    send: Send,
    status: int,
    message: str,
    code: str,
    *,
    headers: Iterable[tuple[bytes, bytes]] = (),
    **extensions: Any,
) -> None:
    body = error_body(message, code, **extensions)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """A request body larger than its limit is refused with 413 before it is read past the
    limit: from its Content-Length when it declares one (nothing is read), else as soon as the
    bytes streamed in pass the limit (the handler reading them is stopped). The limit is
    ``paths[path]``, else ``multipart`` for a multipart/form-data body, else ``default``."""

    def __init__(self, app: ASGIApp, *, default: int, multipart: int, paths: dict[str, int]):
        self.app = app
        self.default = default
        self.multipart = multipart
        self.paths = paths

    def limit(self, scope: Scope) -> int:
        if scope["path"] in self.paths:
            return self.paths[scope["path"]]
        for name, value in scope["headers"]:
            if name == b"content-type" and value.lower().startswith(b"multipart/form-data"):
                return self.multipart
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        declared = [v for k, v in scope["headers"] if k == b"content-length"]
        if declared:
            try:
                length = int(declared[0])
            except ValueError:
                length = -1
            if length < 0 or len(set(declared)) > 1:
                await send_error(send, 400, "Content-Length is not one number", "BAD_USER_INPUT")
                return
            if length > limit:
                await self._too_large(send, limit)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._too_large(send, limit)

    @staticmethod
    async def _too_large(send: Send, limit: int) -> None:
        message = f"the request body is larger than the limit of {limit:,} bytes"
        await send_error(send, 413, message, "BAD_USER_INPUT", maxBytes=limit)


class Undecodable(ValueError):
    """JSON input that cannot be read; the message says why, without echoing the input."""


def loads(data: bytes | str, what: str = "the body") -> object:
    """``json.loads`` for input from the network: every way it can fail (not UTF-8, not JSON,
    nested deeper than the interpreter recurses, an integer of more digits than Python converts)
    is one ``Undecodable`` naming the fault."""
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise Undecodable(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise Undecodable(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise Undecodable(f"{what} is nested too deeply") from None
    except ValueError:  # int-str conversion limit (sys.get_int_max_str_digits())
        digits = sys.get_int_max_str_digits()
        raise Undecodable(f"{what} holds a number of more than {digits} digits") from None
