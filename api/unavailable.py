"""Answers while the database is out of reach (a restart, a failover, a full pool).

Such a request is not the caller's fault and not a bug: it is answered at once with HTTP 503
and ``Retry-After``, never a 500 with a traceback, nor a GraphQL 200 with INTERNAL. The body
has the GraphQL error shape with a code of the fixed set, ``INTERNAL``, plus
``reason: SERVICE_UNAVAILABLE`` and ``retryAfter`` (seconds), so an app retries after that
time instead of reporting an internal error. Pooled connections are checked before use
(api/db.py ``make_engine``), so once the database is back, requests succeed again with no
manual step.

Two places answer so: ``UnavailableMiddleware`` (an exception that escapes the application:
tenant resolution, plain routes) and ``apply_error_policy`` (an error of a GraphQL field,
whose response then gets the 503 status in ``ErrorPolicy``)."""

from __future__ import annotations

import json

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.db import unavailable
from api.errors import ErrorCode

log = structlog.get_logger("anju.unavailable")

RETRY_AFTER = 5  # seconds
REASON = "SERVICE_UNAVAILABLE"
MESSAGE = f"the service is temporarily unavailable: try again in {RETRY_AFTER} s"
EXTENSIONS = {"code": ErrorCode.INTERNAL.value, "reason": REASON, "retryAfter": RETRY_AFTER}
WS_TRY_AGAIN_LATER = 1013  # RFC 6455: "Try Again Later"


def note(exc: BaseException, where: str) -> None:
    """One warning line (no traceback: the cause is known and not the request's)."""
    log.warning("database unreachable: answered 503", where=where, error=repr(exc)[:300])


class UnavailableMiddleware:
    """Pure ASGI: an exception meaning the database is out of reach, raised before the
    response started, becomes a 503 (HTTP) or a close with 1013 (WebSocket)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.accept", "websocket.close"):
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started or not unavailable(exc):
                raise
            note(exc, scope.get("path", ""))
            if scope["type"] == "websocket":
                await send(
                    {
                        "type": "websocket.close",
                        "code": WS_TRY_AGAIN_LATER,
                        "reason": "the service is temporarily unavailable",
                    }
                )
                return
            body = json.dumps({"errors": [{"message": MESSAGE, "extensions": EXTENSIONS}]})
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(RETRY_AFTER).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body.encode()})
