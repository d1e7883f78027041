"""``GET /calendar/<tenant>/<token>.ics``: an agent's private calendar feed (showings and
scheduled follow-ups, ``api/client/showings.py``). The token in the path is the credential; an
unknown tenant or token is a 404, like a feed that never existed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.client import showings
from tenants.registry import TenantCache
from tenants.sessions import TenantDatabase

MAX_TOKEN = 100  # characters; a longer one is not looked up


def calendar_endpoint(
    cache: TenantCache, db: TenantDatabase
) -> Callable[[Request], Awaitable[Response]]:
    async def calendar(request: Request) -> Response:
        tenant = await cache.get(request.path_params["tenant"])
        token = request.path_params["token"]
        if tenant is None or not tenant.active or len(token) > MAX_TOKEN:
            return Response("not found", status_code=404)
        async with db.session(tenant) as session:
            owner = await showings.feed_owner(session, token)
            if owner is None:
                return Response("not found", status_code=404)
            body = await showings.ics(session, owner, tenant_name=tenant.name)
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={"Cache-Control": "private, max-age=300"},
        )

    return calendar


def routes(cache: TenantCache, db: TenantDatabase) -> list[Route]:
    return [Route("/calendar/{tenant}/{token}.ics", calendar_endpoint(cache, db))]
