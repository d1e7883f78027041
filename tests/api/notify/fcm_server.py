"""A loopback FCM HTTP v1 server: ``POST /v1/projects/{project}/messages:send`` with FCM's
JSON shapes. What it answers depends on the token's prefix (the rest is free):

- ``ok-``: 200 ``{"name": "projects/<p>/messages/<n>"}``
- ``unregistered-``: 404 NOT_FOUND, FcmError UNREGISTERED
- ``mismatch-``: 403 PERMISSION_DENIED, FcmError SENDER_ID_MISMATCH
- ``invalid-``: 400 INVALID_ARGUMENT (the token is not a registration token)
- ``quota-``: 429 RESOURCE_EXHAUSTED, FcmError QUOTA_EXCEEDED, Retry-After: 90
- ``unavailable-``: 503 UNAVAILABLE; ``internal-``: 500 INTERNAL
- ``apns-``: 401 UNAUTHENTICATED, FcmError THIRD_PARTY_AUTH_ERROR
- ``flaky-``: 503 the first time a token is seen, then 200

Every request is recorded (token, message, Authorization header)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

ERRORS = {
    "unregistered-": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    "mismatch-": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
    "invalid-": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                 "The registration token is not a valid FCM registration token"),
    "quota-": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded."),
    "unavailable-": (503, "UNAVAILABLE", None, "The service is currently unavailable."),
    "internal-": (500, "INTERNAL", "INTERNAL", "Internal error encountered."),
    "apns-": (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS."),
}  # fmt: skip


class FakeFcm:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.seen: set[str] = set()
        self._ids = itertools.count(1)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        app = Starlette(routes=[Route("/v1/projects/{project}/messages:send", self.send,
                                      methods=["POST"])])  # fmt: skip
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=lambda: asyncio.run(
            self.server.serve(sockets=[self.sock])), daemon=True)  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeFcm:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake FCM did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    def tokens(self) -> list[str]:
        return [r["message"]["token"] for r in self.requests]

    async def send(self, request: Request) -> JSONResponse:
        body = await request.json()
        message = body["message"]
        token = message["token"]
        self.requests.append({"project": request.path_params["project"], "message": message,
                              "authorization": request.headers.get("authorization", ""),
                              "validate_only": body.get("validate_only", False)})  # fmt: skip
        if token.startswith("flaky-"):
            first = token not in self.seen
            self.seen.add(token)
            if first:
                return self._error(503, "UNAVAILABLE", None, "try again")
        for prefix, (status, code, fcm_code, text) in ERRORS.items():
            if token.startswith(prefix):
                headers = {"Retry-After": "90"} if prefix == "quota-" else {}
                return self._error(status, code, fcm_code, text, headers)
        project = request.path_params["project"]
        return JSONResponse({"name": f"projects/{project}/messages/{next(self._ids)}"})

    @staticmethod
    def _error(status, code, fcm_code, text, headers=None) -> JSONResponse:
        error = {"code": status, "message": text, "status": code}
        if fcm_code:
            error["details"] = [{"@type": FCM_ERROR, "errorCode": fcm_code}]
        return JSONResponse({"error": error}, status_code=status, headers=headers or {})
