"""The two servers a scenario compares, each started as its own process:

* ``gateway``: the real app (``api.app.create_app``) on uvicorn (uvloop, httptools);
* ``raw``: the baseline, a plain Starlette app on the same uvicorn that runs the same data SQL
  through an asyncpg pool and builds the JSON by hand. It reads the caller from the token's
  payload without checking its signature and runs the same membership query the gateway runs;
  it opens no transaction. The data statements below (units, search, buildings, unit types,
  photos) are the gateway's as SQLAlchemy renders them (seen with a ``before_cursor_execute``
  listener), with the schema named directly: same columns, WHERE, ORDER BY and LIMIT, same
  bind types and numbering. The JSON has the gateway's field names, shapes, cursors and bytes
  (``json.dumps`` escapes non-ASCII text as the gateway does).

* ``rawws``: the live scenario's WebSocket baseline (``raw_ws_app``).

``python -m bench.servers gateway|raw|rawws PORT``; the database and secrets come from ANJU_*
variables.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
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


BIG = 2**63 - 1  # api.unit.repository.BIG: PRICE_ASC sorts units without a price last
UNIT_COLUMNS = (
    "id, project_id, building_id, unit_type_id, floor, number, gross_area, net_area, "
    "orientation, rooms, list_price, currency, price_per_m2, status, hold_expires_at, held_by, "
    "status_changed_at, version, tags, search_text, created_at"
)
UNIT_SQL = "SELECT u.{cols} FROM {{s}}.unit u WHERE u.id IN ($1::UUID)".format(
    cols=UNIT_COLUMNS.replace(", ", ", u.")
)
UNITS_SQL = UNIT_SQL.split(" WHERE ")[0] + " ORDER BY u.id DESC LIMIT $1::INTEGER"
BUILDINGS_SQL = (
    "SELECT b.id, b.project_id, b.name, b.floors, b.created_at FROM {s}.building b "
    "WHERE b.id IN ({ids})"
)
UNIT_TYPES_SQL = (
    "SELECT t.id, t.project_id, t.name, t.rooms, t.living_rooms, t.bathrooms, t.gross_area, "
    "t.net_area, t.orientation, t.layout, t.floor_plan_url, t.vr_url, t.created_at "
    "FROM {s}.unit_type t WHERE t.id IN ({ids})"
)
PHOTOS_SQL = (
    "SELECT m.id, m.owner_kind, m.owner_id, m.kind, m.storage_key, m.thumb_key, m.link_url, "
    "m.content_type, m.size, m.width, m.height, m.position, m.caption, m.created_by, "
    "m.created_at FROM {s}.media m WHERE m.owner_id IN ({ids}) AND m.kind IN ({kind}) "
    "AND m.visibility = 'public' ORDER BY m.position, m.id"
)


def _claims(request: Request) -> dict:
    token = request.headers["authorization"].split(" ", 1)[1]
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _s(value) -> str:
    return json.dumps(value)


def _binds(start: int, n: int, cast: str) -> str:
    return ", ".join(f"${i}::{cast}" for i in range(start, start + n))


def _cursor(sort: str, key, row_id) -> str:
    """api.graphql.types.encode_cursor([sort, key, str(id)]) for an int or null key."""
    raw = f'["{sort}",{"null" if key is None else key},"{row_id}"]'.encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _money(minor) -> str:
    return "null" if minor is None else f'{{"minorUnits":{minor}}}'


def _unit_brief(r) -> str:
    """``{ id number floor status listPrice { minorUnits } }``"""
    return (
        f'{{"id":"{r[0]}","number":{_s(r[5])},"floor":{r[4]},"status":"{r[13].upper()}",'
        f'"listPrice":{_money(r[10])}}}'
    )


def search_statement(schema: str, f: dict, limit: int) -> tuple[str, list]:
    """The gateway's search SELECT for a filter (districts, statuses, rooms, price band) sorted
    PRICE_ASC (api.unit.repository.filtered + api.search.page), and its arguments. As in
    SQLAlchemy's rendering, scalar binds come first, then the expanded IN lists."""
    scalars: list = [BIG]
    lists: list[tuple[list, str]] = []
    where = []

    def listed(values: list, cast: str) -> str:
        lists.append((values, cast))
        return f"[L{len(lists) - 1}]"

    def scalar(value, cast: str) -> str:
        scalars.append(value)
        return f"${len(scalars)}::{cast}"

    unknown = set(f) - {"districts", "statuses", "rooms", "priceMin", "priceMax"}
    if unknown:
        raise ValueError(f"the raw search does not take {sorted(unknown)}")
    if f.get("districts"):
        where.append(
            f"u.project_id IN (SELECT p.id FROM {schema}.project p "
            f"WHERE p.district IN ({listed(f['districts'], 'VARCHAR')}))"
        )
    if f.get("statuses"):
        where.append(f"u.status IN ({listed([v.lower() for v in f['statuses']], 'VARCHAR')})")
    if f.get("rooms"):
        where.append(f"u.rooms IN ({listed(f['rooms'], 'SMALLINT')})")
    if f.get("priceMin") is not None:
        where.append(f"u.list_price >= {scalar(int(f['priceMin']), 'BIGINT')}")
    if f.get("priceMax") is not None:
        where.append(f"u.list_price <= {scalar(int(f['priceMax']), 'BIGINT')}")
    limit_bind = scalar(limit, "INTEGER")
    args = list(scalars)
    sql = (
        f"SELECT u.{UNIT_COLUMNS.replace(', ', ', u.')}, coalesce(u.list_price, $1::BIGINT) "
        f"AS sort_key FROM {schema}.unit u"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY coalesce(u.list_price, $1::BIGINT) ASC, u.id ASC LIMIT {limit_bind}"
    )
    for i, (values, cast) in enumerate(lists):
        sql = sql.replace(f"[L{i}]", _binds(len(args) + 1, len(values), cast))
        args.extend(values)
    return sql, args


def raw_app(dsn: str, public_url: str) -> Starlette:
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

    async def unit(request: Request) -> Response:
        body = json.loads(await request.body())
        async with state["pool"].acquire() as c:
            schema = await _auth(c, request)
            r = await c.fetchrow(
                UNIT_SQL.format(s=f'"{schema}"'), uuid.UUID(body["variables"]["id"])
            )
        out = f'{{"data":{{"unit":{"null" if r is None else _unit_brief(r)}}}}}'
        return Response(out.encode(), media_type="application/json")

    async def units(request: Request) -> Response:
        """``units(first: 100)``: newest first (ORDER BY id DESC), LIMIT first + 1."""
        await request.body()
        async with state["pool"].acquire() as c:
            schema = await _auth(c, request)
            rows = await c.fetch(UNITS_SQL.format(s=f'"{schema}"'), 101)
        items = ",".join(
            f'{{"cursor":"{_cursor("NEWEST", None, r[0])}","node":{_unit_brief(r)}}}'
            for r in rows[:100]
        )
        return Response(
            f'{{"data":{{"units":{{"edges":[{items}]}}}}}}'.encode(),
            media_type="application/json",
        )

    async def search(request: Request) -> Response:
        """A page of 20 units (PRICE_ASC) with building, unit type and first photo: the
        search, then what the gateway's DataLoaders fetch (buildings, unit types, photos)."""
        body = json.loads(await request.body())
        first = 20
        async with state["pool"].acquire() as c:
            schema = await _auth(c, request)
            q = f'"{schema}"'
            sql, args = search_statement(q, body["variables"]["f"], first + 1)
            rows = await c.fetch(sql, *args)
            page = rows[:first]
            buildings, types, photos = {}, {}, {}
            if page:
                bids = list(dict.fromkeys(r[2] for r in page))
                for b in await c.fetch(
                    BUILDINGS_SQL.format(s=q, ids=_binds(1, len(bids), "UUID")), *bids
                ):
                    buildings[b[0]] = b
                tids = list(dict.fromkeys(r[3] for r in page if r[3] is not None))
                if tids:
                    for t in await c.fetch(
                        UNIT_TYPES_SQL.format(s=q, ids=_binds(1, len(tids), "UUID")), *tids
                    ):
                        types[t[0]] = t
                owners = list(dict.fromkeys([r[0] for r in page] + tids))
                n = len(owners)
                sql = PHOTOS_SQL.format(s=q, ids=_binds(1, n, "UUID"), kind=f"${n + 1}::VARCHAR")
                for m in await c.fetch(sql, *owners, "photo"):
                    photos.setdefault(m[2], []).append(m)
        edges = []
        for r in page:
            t = types.get(r[3]) if r[3] is not None else None
            unit_type = "null" if t is None else f'{{"name":{_s(t[2])}}}'
            found = photos.get(r[0]) or (photos.get(r[3]) if r[3] is not None else None)
            if found:
                m = found[0]
                url = m[6] or f"{public_url}/{m[4]}"
                thumb = _s(f"{public_url}/{m[5]}") if m[5] else "null"
                photo = f'{{"url":{_s(url)},"thumbnailUrl":{thumb}}}'
            else:
                photo = "null"
            edges.append(
                f'{{"cursor":"{_cursor("PRICE_ASC", r[21], r[0])}","node":{{"id":"{r[0]}",'
                f'"number":{_s(r[5])},"floor":{r[4]},"grossArea":"{r[6]}",'
                f'"rooms":{"null" if r[9] is None else r[9]},"status":"{r[13].upper()}",'
                f'"listPrice":{_money(r[10])},'
                f'"building":{{"name":{_s(buildings[r[2]][2])}}},'
                f'"unitType":{unit_type},'
                f'"firstPhoto":{photo}}}}}'
            )
        end_cursor = f'"{_cursor("PRICE_ASC", page[-1][21], page[-1][0])}"' if page else "null"
        out = (
            f'{{"data":{{"units":{{"edges":[{",".join(edges)}],"pageInfo":{{'
            f'"hasNextPage":{"true" if len(rows) > first else "false"},'
            f'"endCursor":{end_cursor}}}}}}}}}'
        )
        return Response(out.encode(), media_type="application/json")

    return Starlette(
        routes=[
            Route("/trivial", trivial, methods=["POST"]),
            Route("/unit", unit, methods=["POST"]),
            Route("/units", units, methods=["POST"]),
            Route("/search", search, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def raw_ws_app() -> Starlette:
    """The live scenario's baseline: graphql-transport-ws connections acknowledged without
    any check, and ``POST /broadcast`` sending its body, as a ``next`` payload, to every
    subscription, one socket after the other."""
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    subscribers: dict[WebSocket, str] = {}

    async def socket(ws: WebSocket) -> None:
        await ws.accept(subprotocol="graphql-transport-ws")
        try:
            while True:
                msg = json.loads(await ws.receive_text())
                if msg["type"] == "connection_init":
                    await ws.send_text('{"type":"connection_ack"}')
                elif msg["type"] == "subscribe":
                    subscribers[ws] = '{"id":' + json.dumps(msg["id"]) + ',"type":"next","payload":'
                elif msg["type"] == "ping":
                    await ws.send_text('{"type":"pong"}')
        except WebSocketDisconnect:
            pass
        finally:
            subscribers.pop(ws, None)

    async def broadcast(request: Request) -> Response:
        body = (await request.body()).decode()
        for ws, prefix in list(subscribers.items()):
            await ws.send_text(prefix + body + "}")
        return Response("{}", media_type="application/json")

    return Starlette(
        routes=[
            WebSocketRoute("/graphql", socket),
            Route("/broadcast", broadcast, methods=["POST"]),
        ]
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
        app.add_route("/bench/lanes", _lane_stats(app), methods=["GET"])
    elif kind == "rawws":
        app = raw_ws_app()
    else:
        from api.db import asyncpg_dsn, server_url

        # The local storage backend's public URL (api.media.storage.make_storage).
        public = settings.media_public_url or f"http://{settings.host}:{settings.port}/media"
        app = raw_app(asyncpg_dsn(server_url(settings)), public.rstrip("/"))
    serve(app, port, ws="websockets-sansio")


def _lane_stats(app: Starlette):
    """GET /bench/lanes on the bench's gateway: what its lanes did (connections retired after
    max_schemas, sessions borrowing, checkouts that waited) and the warm-up, for
    bench/scale.py. Bench servers only; the product has no such route."""

    async def endpoint(request: Request) -> Response:
        lanes, warmup = app.state.db.lanes, app.state.warmup
        stats = {
            "warm_s": round(warmup.seconds, 2),
            "warmed": warmup.tenants,
            "primed": warmup.primed,
            **({} if lanes is None else dataclasses.asdict(lanes.stats)),
        }
        return Response(json.dumps(stats), media_type="application/json")

    return endpoint


def serve(app, port: int, **extra) -> None:
    """A benchmark server on loopback: uvicorn with uvloop and httptools, as deployed.
    Keep-alive beyond uvicorn's 5 s default: at a fixed rate the load generator cycles through
    256 open connections, and a connection the server closed while idle fails its next request
    (IncompleteReadError) on either server."""
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=75,
        **extra,
    )


if __name__ == "__main__":
    main()
