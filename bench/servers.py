"""The two servers a scenario compares, each started as its own process:

* ``gateway``: the real app (``api.app.create_app``) on uvicorn (uvloop, httptools);
* ``raw``: the baseline, a plain Starlette app on the same uvicorn that runs the same data SQL
  through an asyncpg pool and builds the JSON by hand. It reads the caller from the token's
  payload without checking its signature and runs the same membership query the gateway runs;
  it opens no transaction.

``python -m bench.servers gateway|raw PORT``; the database and secrets come from ANJU_* variables.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import uuid

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MEMBER_SQL = (
    "SELECT m.roles, a.totp_enabled_at IS NOT NULL FROM shared.membership m "
    "JOIN shared.account a ON a.id = m.account_id "
    "WHERE m.account_id = $1 AND m.tenant_id = $2 AND m.status = 'active' AND EXISTS ("
    "SELECT 1 FROM shared.refresh_token r WHERE r.family_id = $3 AND r.account_id = $1 "
    "AND r.revoked_at IS NULL)"
)


def _claims(request: Request) -> dict:
    token = request.headers["authorization"].split(" ", 1)[1]
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _s(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def raw_app(dsn: str) -> Starlette:
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["pool"] = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        async with state["pool"].acquire() as c:
            rows = await c.fetch("SELECT slug, id, schema_name FROM shared.tenant")
        state["tenants"] = {r[0]: (r[1], r[2]) for r in rows}
        yield
        await state["pool"].close()

    async def trivial(request: Request) -> Response:
        await request.body()
        return Response(b'{"data":{"apiVersion":"0.1.0"}}', media_type="application/json")

    async def _auth(conn, request: Request):
        tenant_id, schema = state["tenants"][request.headers["x-tenant"]]
        claims = _claims(request)
        roles = await conn.fetchrow(
            MEMBER_SQL, uuid.UUID(claims["sub"]), tenant_id, uuid.UUID(claims["sid"])
        )
        if roles is None:
            raise PermissionError
        return schema

    async def project(request: Request) -> Response:
        body = json.loads(await request.body())
        async with state["pool"].acquire() as c:
            schema = await _auth(c, request)
            r = await c.fetchrow(
                f'SELECT id, name, city, district FROM "{schema}".project WHERE id = $1',
                uuid.UUID(body["variables"]["id"]),
            )
        out = (
            f'{{"data":{{"project":{{"id":"{r[0]}","name":{_s(r[1])},"city":{_s(r[2])},'
            f'"district":{_s(r[3])}}}}}}}'
        )
        return Response(out.encode(), media_type="application/json")

    async def projects(request: Request) -> Response:
        await request.body()
        async with state["pool"].acquire() as c:
            schema = await _auth(c, request)
            rows = await c.fetch(
                f'SELECT id, name, city, district FROM "{schema}".project ORDER BY id LIMIT 100'
            )
        items = ",".join(
            f'{{"id":"{r[0]}","name":{_s(r[1])},"city":{_s(r[2])},"district":{_s(r[3])}}}'
            for r in rows
        )
        return Response(
            f'{{"data":{{"projects":[{items}]}}}}'.encode(), media_type="application/json"
        )

    return Starlette(
        routes=[
            Route("/trivial", trivial, methods=["POST"]),
            Route("/project", project, methods=["POST"]),
            Route("/projects", projects, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    from api.settings import get_settings

    settings = get_settings()
    if kind == "gateway":
        from api.app import create_app
        from api.logging import configure_logging

        configure_logging(settings)
        app = create_app(settings)
    else:
        from api.db import asyncpg_dsn, server_url

        app = raw_app(asyncpg_dsn(server_url(settings)))
    uvicorn.run(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
        log_level="warning", lifespan="on",
    )  # fmt: skip


if __name__ == "__main__":
    main()
