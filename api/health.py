"""``GET /healthz`` (liveness: the process answers) and ``GET /readyz`` (readiness: the lanes are
warm (tenants/warming.py), the database answers, the shared schema and every tenant are at the
migrations' head; else 503 with the reason: ``warming``, or the tenants behind). The readiness
answer is kept for two seconds, so probes cost the database little."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenants.migrate import head, shared_version, tenants_behind
from tenants.warming import Warmup

READY_TTL = 2.0  # seconds a readiness answer is reused
BEHIND_SHOWN = 20  # tenants behind named in the answer (all are counted)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


@dataclass
class _Cached:
    until: float = 0.0
    body: dict[str, Any] | None = None


def readyz_endpoint(
    engine: AsyncEngine, warmup: Warmup | None = None
) -> Callable[[Request], Awaitable[JSONResponse]]:
    cached = _Cached()

    async def readyz(request: Request) -> JSONResponse:
        now = time.monotonic()
        body: dict[str, Any]
        if warmup is not None and not warmup.ready:
            body = {"status": "warming", "connectionsWarming": warmup.connections}
        elif cached.body is not None and cached.until > now:
            body = cached.body
        else:
            try:
                shared = await shared_version(engine)
                behind = await tenants_behind(engine) if shared else []
                body = {
                    "database": "ok",
                    "shared": {"version": shared, "head": head("shared")},
                    "tenantsBehind": [
                        {"slug": t.slug, "version": v} for t, v in behind[:BEHIND_SHOWN]
                    ],
                    "tenantsBehindCount": len(behind),
                    "tenantHead": head("tenant"),
                }
                body["status"] = (
                    "ready" if shared == head("shared") and not behind else "migrations pending"
                )
            except Exception as exc:
                body = {"status": "database unreachable", "database": type(exc).__name__}
            cached.until, cached.body = now + READY_TTL, body
        return JSONResponse(body, status_code=200 if body["status"] == "ready" else 503)

    return readyz


def routes(engine: AsyncEngine, warmup: Warmup | None = None) -> list[Route]:
    return [Route("/healthz", healthz), Route("/readyz", readyz_endpoint(engine, warmup))]
