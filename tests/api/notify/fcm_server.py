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

import itertools

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.loopback import LoopbackServer

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

ERRORS = {
    "unregistered-": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    "mismatch-": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
    "invalid-": (
        400,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "quota-": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded."),
    "unavailable-": (503, "UNAVAILABLE", None, "The service is currently unavailable."),
    "internal-": (500, "INTERNAL", "INTERNAL", "Internal error encountered."),
    "apns-": (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS."),
}


class FakeFcm(LoopbackServer):
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.seen: set[str] = set()
        self._ids = itertools.count(1)
        app = Starlette(
            routes=[Route("/v1/projects/{project}/messages:send", self.send, methods=["POST"])]
        )
        super().__init__(app, label="fake FCM", log_level="warning", lifespan="off")

    def tokens(self) -> list[str]:
        return [r["message"]["token"] for r in self.requests]

    async def send(self, request: Request) -> JSONResponse:
        body = await request.json()
        message = body["message"]
        token = message["token"]
        self.requests.append(
            {
                "project": request.path_params["project"],
                "message": message,
                "authorization": request.headers.get("authorization", ""),
                "validate_only": body.get("validate_only", False),
            }
        )
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
