"""The live endpoint's protocol over real WebSockets (graphql-transport-ws): authentication at
connection_init, permission refusals that keep the socket open, the protocol's close codes, the
per-connection limit and document limits, keep-alive pings, resuming with ``since`` (replay in
order, RefetchRequired after pruning or for an unknown sequence) and trusted documents in
production."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.live.relay import Relay
from api.security.secrets import load_secrets
from mobile_contracts.contracts import load_manifest
from tests.api.helpers import create_building
from tests.api.live.helpers import UNIT_CHANGES, LiveClient, a_building, live
from tests.api.unit.helpers import create_units, inventory, reserve
from tests.conftest import TOKENS, gql
from tests.conftest import test_settings as settings_for_tests

FOLLOWED_CHANGES = """
subscription($since: Long) {
  followedChanges(since: $since) {
    __typename
    ... on UnitChange { seq unitId unitStatus: status }
    ... on ListingChange { seq listingId listingStatus: status }
    ... on RefetchRequired { seq reason }
  }
}
"""

LISTING_CHANGES = """
subscription($since: Long) {
  listingChanges(since: $since) {
    __typename
    ... on ListingChange { seq kind listingId status askingPrice { minorUnits } }
    ... on RefetchRequired { seq reason }
  }
}
"""

CREATE_LISTING = """
mutation($input: CreateListingInput!) {
  createListing(input: $input) {
    __typename
    ... on ListingPayload { listing { id } }
    ... on UserError { code message field }
  }
}
"""

CREATE_ROLE = """
mutation($input: CreateRoleInput!) {
  createRole(input: $input) { __typename ... on UserError { code message field } }
}
"""

SALES_TABLE = "query($b: ID!) { salesTable(buildingId: $b) { seq } }"

FAR_AHEAD = 10**12  # a sequence no tenant reaches: answered with RefetchRequired at once


# ---------------------------------------------------------------- helpers


@asynccontextmanager
async def raw(server, tenant: str | None, **headers):
    """A bare graphql-transport-ws socket (nothing sent yet)."""
    if tenant is not None:
        headers["X-Tenant"] = tenant
    async with connect(
        server.ws_url,
        subprotocols=["graphql-transport-ws"],
        additional_headers=headers,
        open_timeout=10,
    ) as ws:
        yield ws


async def close_code(ws, timeout: float = 5.0) -> int:
    """Read until the server closes the socket; the close code it sent (pings answered,
    anything else is a failure)."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            if msg.get("type") == "ping":
                await ws.send('{"type":"pong"}')
                continue
            raise AssertionError(f"expected a close, got {msg}")
    except ConnectionClosed as exc:
        assert exc.rcvd is not None, "closed without a close frame"
        return exc.rcvd.code


def init(token: str | None) -> str:
    payload = {"authorization": f"Bearer {token}"} if token else {}
    return json.dumps({"type": "connection_init", "payload": payload})


async def error_of(ws: LiveClient, sid: str) -> dict:
    """The one error of subscription ``sid`` (an ``error`` message)."""
    msg = await ws.recv()
    assert msg["type"] == "error" and msg["id"] == sid, msg
    assert isinstance(msg["payload"], list) and msg["payload"], msg
    return msg["payload"][0]


def code_of(err: dict) -> str:
    return err["extensions"]["code"]


async def accepted(ws: LiveClient, sid: str, field: str = "unitChanges") -> dict:
    """A subscription made with ``since: FAR_AHEAD`` answers RefetchRequired at once: the
    proof it was accepted and is served."""
    msg = await ws.next()
    assert msg["id"] == sid, msg
    body = msg["payload"]["data"][field]
    assert body["__typename"] == "RefetchRequired", body
    return body


def change(msg: dict, field: str = "unitChanges") -> dict:
    assert msg["type"] == "next", msg
    assert "errors" not in msg["payload"], msg
    return msg["payload"]["data"][field]


def endpoint(server):
    """The LiveEndpoint instance serving ws://…/graphql in ``server``."""
    app = server.server.config.app
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            return route.endpoint
    raise AssertionError("no WebSocket route")


async def stream(engine, tenant_id: str) -> tuple[int, int]:
    """(last_seq, pruned_through) of the tenant's event stream."""
    async with engine.connect() as c:
        row = (
            await c.execute(
                text(
                    "SELECT last_seq, pruned_through FROM shared.event_stream WHERE tenant_id = :t"
                ),
                {"t": uuid.UUID(tenant_id)},
            )
        ).first()
        await c.rollback()
    return (row.last_seq, row.pruned_through) if row else (0, 0)


async def settled(engine, tenant_id: str, timeout: float = 15.0) -> None:
    """Wait until the relay has numbered and published every outbox row of the tenant."""
    deadline = time.monotonic() + timeout
    while True:
        async with engine.connect() as c:
            pending = (
                await c.execute(
                    text(
                        "SELECT count(*) FROM shared.outbox WHERE tenant_id = :t"
                        " AND (seq IS NULL OR published_at IS NULL)"
                    ),
                    {"t": uuid.UUID(tenant_id)},
                )
            ).scalar_one()
            await c.rollback()
        if pending == 0:
            return
        assert time.monotonic() < deadline, f"{pending} outbox rows still not published"
        await asyncio.sleep(0.05)


async def building_events(engine, tenant_id: str, building_id: str, after: int) -> list[dict]:
    """The tenant's outbox rows after ``after`` about units of ``building_id``, in seq order."""
    async with engine.connect() as c:
        rows = (
            await c.execute(
                text(
                    "SELECT seq, kind, payload FROM shared.outbox WHERE tenant_id = :t"
                    " AND seq > :after ORDER BY seq"
                ),
                {"t": uuid.UUID(tenant_id), "after": after},
            )
        ).all()
        await c.rollback()
    return [
        {"seq": r.seq, "unit": r.payload["unit_id"]}
        for r in rows
        if r.kind.startswith("unit.") and r.payload["building_id"] == building_id
    ]


async def second_building(client, slug: str, project_id: str) -> dict:
    """Another building of the same project, with one available unit."""
    building = await create_building(client, slug, project_id, "B2", floors=1)
    units = await create_units(
        client,
        slug,
        [
            {
                "buildingId": building["id"],
                "floor": 1,
                "number": "B2-101",
                "grossArea": "70.00",
                "rooms": 2,
                "orientation": "N",
                "listPrice": 200_000_000,
                "status": "AVAILABLE",
            }
        ],
    )
    return {"building": building, "units": units}


async def custom_member(client, member, tenant, permissions: list[str]) -> str:
    """A member whose only role is a custom one granting ``permissions``; their token."""
    key = "r_" + uuid.uuid4().hex[:10]
    res = await gql(
        client,
        CREATE_ROLE,
        {
            "input": {
                "key": key,
                "name": "Restricted",
                "permissions": permissions,
                "dataScope": "own",
            }
        },
        tenant=tenant.slug,
    )
    assert res["data"]["createRole"]["__typename"] == "RolePayload", res
    _, token = await member(tenant, [key])
    return token


# ---------------------------------------------------------------- authentication


async def test_connection_init_without_a_token_is_closed_4403(live_server, make_tenant):
    tenant = await make_tenant()
    async with live(live_server, tenant.slug, token=None, ack=False) as ws:
        assert await close_code(ws.ws) == 4403


async def test_connection_init_with_a_garbage_token_is_closed_4403(live_server, make_tenant):
    tenant = await make_tenant()
    async with live(live_server, tenant.slug, token="not.a.jwt", ack=False) as ws:
        assert await close_code(ws.ws) == 4403
    # not a bearer scheme at all
    init_basic = {"authorization": f"Basic {TOKENS[tenant.slug]}"}
    async with live(live_server, tenant.slug, init=init_basic, ack=False) as ws:
        assert await close_code(ws.ws) == 4403


async def test_another_tenants_token_is_closed_4403(live_server, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    async with live(live_server, b.slug, token=TOKENS[a.slug], ack=False) as ws:
        assert await close_code(ws.ws) == 4403
    building = await a_building(live_server, a.slug)
    async with live(live_server, a.slug, token=TOKENS[a.slug]) as ws:  # control: its own tenant
        await ws.subscribe(UNIT_CHANGES, {"buildingId": building, "since": FAR_AHEAD})
        await accepted(ws, "1")


async def test_no_tenant_is_closed_4400(live_server, make_tenant):
    tenant = await make_tenant()
    async with live(live_server, None, token=TOKENS[tenant.slug], ack=False) as ws:
        assert await close_code(ws.ws) == 4400


async def test_an_unknown_tenant_is_refused_at_the_handshake(live_server):
    # The test server (uvicorn, websockets-sansio) has the websocket HTTP response extension:
    # the tenant middleware answers the upgrade with its HTTP 404, no socket is opened.
    with pytest.raises(InvalidStatus) as refused:
        async with raw(live_server, "no-such-tenant-xyz") as ws:
            await ws.send(init("whatever"))
            await close_code(ws)
    assert refused.value.response.status_code == 404
    body = json.loads(refused.value.response.body)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_signed_out_session_is_closed_4403(client, live_server, make_tenant, member):
    tenant = await make_tenant()
    _, token = await member(tenant, ["agent"])
    async with live(live_server, tenant.slug, token=token):
        pass  # accepted while signed in
    res = await gql(
        client, "mutation { signOut { revokedSessionId } }", tenant=tenant.slug, token=token
    )
    assert res["data"]["signOut"]["revokedSessionId"], res
    async with live(live_server, tenant.slug, token=token, ack=False) as ws:
        assert await close_code(ws.ws) == 4403


# ---------------------------------------------------------------- permissions


async def test_a_subscription_without_its_permission_is_refused_and_the_socket_stays_open(
    client, live_server, make_tenant, member
):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    token = await custom_member(client, member, tenant, ["listing.read"])
    async with live(live_server, tenant.slug, token=token) as ws:
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": inv["building"]["id"]})
        err = await error_of(ws, sid)
        assert code_of(err) == "FORBIDDEN" and "unit.read" in err["message"], err
        sid = await ws.subscribe(FOLLOWED_CHANGES)
        err = await error_of(ws, sid)
        assert code_of(err) == "FORBIDDEN" and "follow" in err["message"], err
        # the socket still serves what the roles allow: a new listing reaches it
        sid = await ws.subscribe(LISTING_CHANGES)
        await ws.nothing(0.3)
        res = await gql(
            client,
            CREATE_LISTING,
            {
                "input": {
                    "community": "Lotus Garden",
                    "grossArea": "89.50",
                    "rooms": 3,
                    "askingPrice": 512_000_000,
                }
            },
            tenant=tenant.slug,
        )
        listing_id = res["data"]["createListing"]["listing"]["id"]
        msg = await ws.next()
        got = change(msg, "listingChanges")
        assert msg["id"] == sid
        assert (got["listingId"], got["kind"]) == (listing_id, "CREATED")
        assert got["askingPrice"]["minorUnits"] == 512_000_000
        # a unit change of the building it may not read never reaches it
        await reserve(client, tenant.slug, inv["units"][0]["id"])
        await ws.nothing(0.5)


async def test_a_role_with_follow_gets_followed_changes(client, live_server, make_tenant, member):
    tenant = await make_tenant()
    token = await custom_member(client, member, tenant, ["follow"])
    async with live(live_server, tenant.slug, token=token) as ws:
        sid = await ws.subscribe(FOLLOWED_CHANGES, {"since": FAR_AHEAD})
        await accepted(ws, sid, "followedChanges")
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": str(uuid.uuid4())})
        assert code_of(await error_of(ws, sid)) == "FORBIDDEN"


async def test_a_building_of_another_tenant_is_not_found(client, live_server, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    inv_b = await inventory(client, b.slug, floors=1, per_floor=1)
    async with live(live_server, a.slug) as ws:  # tenant A's admin names B's building
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": inv_b["building"]["id"]})
        err = await error_of(ws, sid)
        assert code_of(err) == "NOT_FOUND" and "building" in err["message"], err
        await reserve(client, b.slug, inv_b["units"][0]["id"])
        await ws.nothing(1.0)


# ---------------------------------------------------------------- protocol


async def test_subscribe_before_connection_init_is_closed_4401(live_server, make_tenant):
    tenant = await make_tenant()
    async with raw(live_server, tenant.slug) as ws:
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": UNIT_CHANGES,
                        "variables": {"buildingId": str(uuid.uuid4())},
                    },
                }
            )
        )
        assert await close_code(ws) == 4401


async def test_a_second_connection_init_is_closed_4429(live_server, make_tenant):
    tenant = await make_tenant()
    async with live(live_server, tenant.slug) as ws:
        await ws.ws.send(init(TOKENS[tenant.slug]))
        assert await close_code(ws.ws) == 4429


async def test_a_reused_subscription_id_is_closed_4409(live_server, make_tenant):
    tenant = await make_tenant()
    building = await a_building(live_server, tenant.slug)
    async with live(live_server, tenant.slug) as ws:
        body = {"query": UNIT_CHANGES, "variables": {"buildingId": building}}
        await ws.ws.send(json.dumps({"id": "same", "type": "subscribe", "payload": body}))
        await ws.nothing(0.2)
        await ws.ws.send(json.dumps({"id": "same", "type": "subscribe", "payload": body}))
        assert await close_code(ws.ws) == 4409


async def test_an_id_can_be_used_again_after_complete(live_server, make_tenant):
    tenant = await make_tenant()
    building = await a_building(live_server, tenant.slug)
    async with live(live_server, tenant.slug) as ws:
        body = {"query": UNIT_CHANGES, "variables": {"buildingId": building, "since": FAR_AHEAD}}
        for _ in range(2):
            await ws.ws.send(json.dumps({"id": "again", "type": "subscribe", "payload": body}))
            await accepted(ws, "again")
            await ws.complete("again")


@pytest.mark.parametrize(
    "message",
    [
        "this is not json",
        "[1, 2, 3]",
        '{"type": "nonsense"}',
        '{"id": "1", "type": "subscribe"}',
        '{"id": 7, "type": "subscribe", "payload": {"query": "subscription { x }"}}',
    ],
    ids=["not-json", "not-an-object", "unknown-type", "subscribe-without-payload", "numeric-id"],
)
async def test_a_malformed_message_is_closed_4400(live_server, make_tenant, message):
    tenant = await make_tenant()
    async with live(live_server, tenant.slug) as ws:
        await ws.ws.send(message)
        assert await close_code(ws.ws) == 4400


async def test_a_non_json_first_message_is_closed_4400(live_server, make_tenant):
    tenant = await make_tenant()
    async with raw(live_server, tenant.slug) as ws:
        await ws.send("{not json")
        assert await close_code(ws) == 4400


async def test_no_connection_init_within_the_timeout_is_closed_4408(live_server, make_tenant):
    tenant = await make_tenant()
    live_endpoint = endpoint(live_server)
    before = live_endpoint.init_timeout
    live_endpoint.init_timeout = 0.5
    try:
        async with raw(live_server, tenant.slug) as ws:
            started = time.monotonic()
            assert await close_code(ws) == 4408
            assert 0.4 < time.monotonic() - started < 3
    finally:
        live_endpoint.init_timeout = before


async def test_ping_is_answered_with_pong(live_server, make_tenant):
    tenant = await make_tenant()
    building = await a_building(live_server, tenant.slug)
    async with live(live_server, tenant.slug) as ws:
        await ws.ws.send(json.dumps({"type": "ping", "payload": {"n": 1}}))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.ws.recv(), 5))
            if msg["type"] != "ping":  # a server keep-alive ping could come first
                break
        assert msg["type"] == "pong", msg
        await ws.ws.send('{"type":"pong"}')  # an unsolicited pong is fine
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": building, "since": FAR_AHEAD})
        await accepted(ws, sid)


async def test_queries_and_mutations_are_refused_over_the_socket(live_server, make_tenant):
    tenant = await make_tenant()
    building = await a_building(live_server, tenant.slug)
    async with live(live_server, tenant.slug) as ws:
        sid = await ws.subscribe("{ apiVersion }")
        err = await error_of(ws, sid)
        assert code_of(err) == "BAD_USER_INPUT" and "subscription" in err["message"], err
        sid = await ws.subscribe("mutation { signOut { revokedSessionId } }")
        assert code_of(await error_of(ws, sid)) == "BAD_USER_INPUT"
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": building, "since": FAR_AHEAD})
        await accepted(ws, sid)
    # the admin is still signed in: the mutation was never run
    async with live(live_server, tenant.slug):
        pass


async def test_a_document_that_does_not_validate_is_an_error_with_a_code(live_server, make_tenant):
    tenant = await make_tenant()
    async with live(live_server, tenant.slug) as ws:
        sid = await ws.subscribe(
            "subscription($b: ID) { unitChanges(buildingId: $b) {"
            " ... on UnitChange { seq noSuchField } } }",
            {"b": str(uuid.uuid4())},
        )
        err = await error_of(ws, sid)
        assert code_of(err) == "BAD_USER_INPUT" and "noSuchField" in err["message"], err
        sid = await ws.subscribe("subscription { unitChanges(")  # a syntax error
        assert code_of(await error_of(ws, sid)) == "BAD_USER_INPUT"
        sid = await ws.subscribe("", {})
        assert code_of(await error_of(ws, sid)) == "BAD_USER_INPUT"


async def test_a_variable_read_in_the_selection_is_served(live_server, make_tenant):
    """A variable the selection reads (a directive's) is part of the document's shape; the
    coerced values are graphql-core's VariableValues, not a dict."""
    tenant = await make_tenant()
    building = await a_building(live_server, tenant.slug)
    document = (
        "subscription($b: ID, $since: Long, $reason: Boolean!) { unitChanges(buildingId: $b,"
        " since: $since) { __typename ... on RefetchRequired { seq reason @include(if: $reason)"
        " } } }"
    )
    async with live(live_server, tenant.slug) as ws:
        sid = await ws.subscribe(document, {"b": building, "since": FAR_AHEAD, "reason": True})
        assert "reason" in await accepted(ws, sid)
        sid = await ws.subscribe(document, {"b": building, "since": FAR_AHEAD, "reason": False})
        assert "reason" not in await accepted(ws, sid)


async def test_invalid_variables_are_bad_user_input(live_server, make_tenant):
    tenant = await make_tenant()
    async with live(live_server, tenant.slug) as ws:
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": str(uuid.uuid4()), "since": "abc"})
        err = await error_of(ws, sid)
        assert code_of(err) == "BAD_USER_INPUT" and "since" in err["message"], err
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": str(uuid.uuid4()), "since": 2**70})
        assert code_of(await error_of(ws, sid)) == "BAD_USER_INPUT"
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": {"not": "an id"}})
        assert code_of(await error_of(ws, sid)) == "BAD_USER_INPUT"


async def test_both_or_neither_of_project_and_building_is_bad_user_input(
    client, live_server, make_tenant
):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    both = {"projectId": inv["project"]["id"], "buildingId": inv["building"]["id"]}
    async with live(live_server, tenant.slug) as ws:
        for variables in (both, {}):
            sid = await ws.subscribe(UNIT_CHANGES, variables)
            err = await error_of(ws, sid)
            assert code_of(err) == "BAD_USER_INPUT", err
            assert "projectId" in err["message"] and "buildingId" in err["message"], err
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": "not-an-id"})
        assert code_of(await error_of(ws, sid)) == "NOT_FOUND"
        # a project subscription is fine, and gets its units' changes
        sid = await ws.subscribe(UNIT_CHANGES, {"projectId": inv["project"]["id"]})
        await ws.nothing(0.3)
        await reserve(client, tenant.slug, inv["units"][0]["id"])
        msg = await ws.next()
        assert msg["id"] == sid and change(msg)["unitId"] == inv["units"][0]["id"]


async def test_complete_stops_delivery(client, live_server, make_tenant):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=2)
    b = inv["building"]["id"]
    async with live(live_server, tenant.slug) as ws:
        first = await ws.subscribe(UNIT_CHANGES, {"buildingId": b})
        second = await ws.subscribe(UNIT_CHANGES, {"projectId": inv["project"]["id"]})
        await ws.nothing(0.3)
        await reserve(client, tenant.slug, inv["units"][0]["id"])
        got = {(await ws.next())["id"], (await ws.next())["id"]}
        assert got == {first, second}
        await ws.complete(first)
        await ws.nothing(0.2)
        await reserve(client, tenant.slug, inv["units"][1]["id"])
        msg = await ws.next()  # only the subscription still open
        assert msg["id"] == second and change(msg)["unitId"] == inv["units"][1]["id"]
        await ws.nothing(0.5)
        await ws.complete("never-subscribed")  # completing an unknown id is harmless
        await ws.complete(second)
        await ws.nothing(0.2)


# ---------------------------------------------------------------- limits


async def test_at_most_live_max_subscriptions_per_connection(
    client, live_server, live_server_factory, make_tenant
):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    b = inv["building"]["id"]
    with live_server_factory(live_max_subscriptions=2, live_relay_in_process=False) as server:
        async with live(server, tenant.slug) as ws:
            one = await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": FAR_AHEAD})
            await accepted(ws, one)
            two = await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": FAR_AHEAD})
            await accepted(ws, two)
            three = await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": FAR_AHEAD})
            err = await error_of(ws, three)
            assert code_of(err) == "RATE_LIMITED" and "2" in err["message"], err
            await ws.complete(one)
            four = await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": FAR_AHEAD})
            await accepted(ws, four)
            five = await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": FAR_AHEAD})
            assert code_of(await error_of(ws, five)) == "RATE_LIMITED"
        async with live(server, tenant.slug) as ws:  # the limit is per connection
            sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": FAR_AHEAD})
            await accepted(ws, sid)


async def test_documents_over_the_graphql_limits_are_refused_quickly(
    live_server, make_tenant, settings
):
    tenant = await make_tenant()
    building = await a_building(live_server, tenant.slug)
    aliases = " ".join(f"a{i}: seq" for i in range(1000))
    many_aliases = (
        "subscription($b: ID) { unitChanges(buildingId: $b) { ... on UnitChange { "
        + aliases
        + " } } }"
    )
    fields = " ".join(["seq"] * (settings.graphql_max_tokens + 10))
    many_tokens = (
        "subscription($b: ID) { unitChanges(buildingId: $b) { ... on UnitChange { "
        + fields
        + " } } }"
    )
    async with live(live_server, tenant.slug) as ws:
        started = time.monotonic()
        sid = await ws.subscribe(many_aliases, {"b": str(uuid.uuid4())})
        err = await error_of(ws, sid)
        assert code_of(err) == "BAD_USER_INPUT" and "alias" in err["message"].lower(), err
        sid = await ws.subscribe(many_tokens, {"b": str(uuid.uuid4())})
        err = await error_of(ws, sid)
        assert code_of(err) == "BAD_USER_INPUT" and "token" in err["message"].lower(), err
        assert time.monotonic() - started < 2.0
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": building, "since": FAR_AHEAD})
        await accepted(ws, sid)


# ---------------------------------------------------------------- keep-alive


async def test_the_server_pings_every_live_keepalive_seconds(
    live_server, live_server_factory, make_tenant
):
    tenant = await make_tenant()
    with live_server_factory(live_keepalive=0.2, live_relay_in_process=False) as server:
        async with live(server, tenant.slug) as ws:
            started = time.monotonic()
            msg = json.loads(await asyncio.wait_for(ws.ws.recv(), 1.0))
            assert msg == {"type": "ping"}, msg
            await ws.ws.send('{"type":"pong"}')
            msg = json.loads(await asyncio.wait_for(ws.ws.recv(), 1.0))
            assert msg == {"type": "ping"}, msg
            assert time.monotonic() - started < 1.5


# ---------------------------------------------------------------- resume


async def test_resume_replays_the_missed_changes_of_the_building_in_order(
    client, live_server, make_tenant, engine
):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=2, per_floor=2)
    other = await second_building(client, tenant.slug, inv["project"]["id"])
    b, units = inv["building"]["id"], inv["units"]
    async with live(live_server, tenant.slug) as ws:
        await ws.subscribe(UNIT_CHANGES, {"buildingId": b})
        await ws.nothing(0.3)
        await reserve(client, tenant.slug, units[0]["id"])
        first = change(await ws.next())
        assert first["unitId"] == units[0]["id"]
    seen = first["seq"]
    # while disconnected: two changes of this building, one of the other building between
    await reserve(client, tenant.slug, units[1]["id"])
    await reserve(client, tenant.slug, other["units"][0]["id"])
    await reserve(client, tenant.slug, units[2]["id"])
    await settled(engine, tenant.id)
    missed = await building_events(engine, tenant.id, b, seen)
    assert [m["unit"] for m in missed] == [units[1]["id"], units[2]["id"]]
    between = await building_events(engine, tenant.id, other["building"]["id"], seen)
    assert len(between) == 1 and missed[0]["seq"] < between[0]["seq"] < missed[1]["seq"]
    head, _ = await stream(engine, tenant.id)
    assert head >= missed[-1]["seq"]

    async with live(live_server, tenant.slug) as ws:
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": seen})
        replayed = [change(await ws.next()) for _ in missed]
        assert [(r["seq"], r["unitId"]) for r in replayed] == [
            (m["seq"], m["unit"]) for m in missed
        ]
        assert all(r["status"] == "RESERVED" and r["buildingId"] == b for r in replayed)
        await ws.nothing(0.5)  # nothing else: not the other building's, no repeats
        await reserve(client, tenant.slug, units[3]["id"])
        msg = await ws.next()
        live_change = change(msg)
        assert msg["id"] == sid and live_change["unitId"] == units[3]["id"]
        assert live_change["seq"] > head
        await ws.nothing(0.5)  # once


async def test_resume_from_the_head_replays_nothing(client, live_server, make_tenant, engine):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=2)
    b, units = inv["building"]["id"], inv["units"]
    await reserve(client, tenant.slug, units[0]["id"])
    await settled(engine, tenant.id)
    res = await gql(client, SALES_TABLE, {"b": b}, tenant=tenant.slug)
    head = res["data"]["salesTable"]["seq"]
    assert head == (await stream(engine, tenant.id))[0] and head > 0
    async with live(live_server, tenant.slug) as ws:
        await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": head})
        await ws.nothing(0.5)
        await reserve(client, tenant.slug, units[1]["id"])
        got = change(await ws.next())
        assert (got["unitId"], got["seq"]) == (units[1]["id"], head + 1)
        await ws.nothing(0.3)


async def test_resume_from_beyond_the_head_is_refetch_required(
    client, live_server, make_tenant, engine
):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=2)
    b, units = inv["building"]["id"], inv["units"]
    await reserve(client, tenant.slug, units[0]["id"])
    await settled(engine, tenant.id)
    head, _ = await stream(engine, tenant.id)
    async with live(live_server, tenant.slug) as ws:
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": head + 5})
        msg = await ws.next()
        refetch = change(msg)
        assert msg["id"] == sid and refetch["__typename"] == "RefetchRequired", refetch
        assert refetch["seq"] == head and "sequence" in refetch["reason"]
        await ws.nothing(0.3)
        await reserve(client, tenant.slug, units[1]["id"])  # then live from the head
        got = change(await ws.next())
        assert (got["unitId"], got["seq"]) == (units[1]["id"], head + 1)


async def test_resume_after_pruning_is_refetch_required_then_live(
    client, live_server, make_tenant, engine
):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=3)
    b, units = inv["building"]["id"], inv["units"]
    async with live(live_server, tenant.slug) as ws:
        await ws.subscribe(UNIT_CHANGES, {"buildingId": b})
        await ws.nothing(0.3)
        await reserve(client, tenant.slug, units[0]["id"])
        seen = change(await ws.next())["seq"]
    await reserve(client, tenant.slug, units[1]["id"])  # missed, then pruned
    await settled(engine, tenant.id)
    # The relay's prune, with no retention (it only touches the database).
    assert await Relay(engine, None, retention=timedelta(0)).prune() > 0
    head, pruned = await stream(engine, tenant.id)
    assert pruned == head and pruned > seen
    async with live(live_server, tenant.slug) as ws:
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": seen})
        msg = await ws.next()
        refetch = change(msg)
        assert msg["id"] == sid and refetch["__typename"] == "RefetchRequired", refetch
        assert refetch["seq"] == head and "no longer kept" in refetch["reason"]
        await ws.nothing(0.3)
        await reserve(client, tenant.slug, units[2]["id"])
        got = change(await ws.next())
        assert (got["__typename"], got["unitId"], got["seq"]) == (
            "UnitChange",
            units[2]["id"],
            head + 1,
        )
        await ws.nothing(0.3)
    async with live(live_server, tenant.slug) as ws:  # resuming from the pruned-through head
        await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": pruned})
        got = change(await ws.next())  # the one kept event after it, not a refetch
        assert (got["__typename"], got["seq"]) == ("UnitChange", head + 1)
        await ws.nothing(0.3)


async def test_more_missed_than_live_replay_max_is_refetch_required(
    client, live_server, live_server_factory, make_tenant, engine
):
    tenant = await make_tenant()
    inv = await inventory(client, tenant.slug, floors=1, per_floor=3)
    b, units = inv["building"]["id"], inv["units"]
    await reserve(client, tenant.slug, units[0]["id"])
    await settled(engine, tenant.id)
    seen, _ = await stream(engine, tenant.id)
    await reserve(client, tenant.slug, units[1]["id"])
    await reserve(client, tenant.slug, units[2]["id"])
    await settled(engine, tenant.id)
    head, _ = await stream(engine, tenant.id)
    with live_server_factory(live_replay_max=1, live_relay_in_process=False) as server:
        async with live(server, tenant.slug) as ws:
            await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": seen})
            refetch = change(await ws.next())
            assert refetch["__typename"] == "RefetchRequired" and refetch["seq"] == head
            assert "missed" in refetch["reason"]
            await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": head - 1})  # 1 missed
            got = change(await ws.next())
            assert (got["__typename"], got["unitId"]) == ("UnitChange", units[2]["id"])


# ---------------------------------------------------------------- trusted documents


def _production_secrets() -> dict:
    """Production needs its secrets from settings: the test run's own (the fixtures' tokens
    verify there)."""
    dev = load_secrets(settings_for_tests())
    return dict(
        env="production",
        jwt_private_key=dev.jwt_private_key,
        field_keys=",".join(
            f"{v}:{base64.b64encode(k).decode()}" for v, k in dev.field_keys.items()
        ),
        blind_index_key=base64.b64encode(dev.blind_index_key).decode(),
    )


@pytest.fixture(scope="module")
def production(live_server, live_server_factory):
    with live_server_factory(live_relay_in_process=False, **_production_secrets()) as server:
        yield server


def _manifest_subscriptions() -> dict[str, str]:
    return {k: v for k, v in load_manifest().items() if v.lstrip().startswith("subscription")}


async def test_production_wants_trusted_documents_over_the_socket(production, make_tenant, member):
    tenant = await make_tenant()
    _, agent = await member(tenant, ["agent"])
    _, manager = await member(tenant, ["manager"])  # has graphql.adhoc
    b = await a_building(production, tenant.slug)
    async with live(production, tenant.slug, token=agent) as ws:
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": b})
        err = await error_of(ws, sid)
        assert code_of(err) == "FORBIDDEN" and "documentId" in err["message"], err
        sid = await ws.subscribe(None, {"buildingId": b}, documentId="0" * 64)
        err = await error_of(ws, sid)
        assert code_of(err) == "BAD_USER_INPUT" and "documentId" in err["message"], err
        # a trusted document that is a query: known, but only subscriptions run here
        query_id = next(k for k, v in load_manifest().items() if v.lstrip().startswith("query"))
        sid = await ws.subscribe(None, {}, documentId=query_id)
        err = await error_of(ws, sid)
        assert code_of(err) == "BAD_USER_INPUT" and "subscription" in err["message"], err
    async with live(production, tenant.slug, token=manager) as ws:  # graphql.adhoc: full text
        sid = await ws.subscribe(UNIT_CHANGES, {"buildingId": b, "since": FAR_AHEAD})
        await accepted(ws, sid)


async def test_production_runs_a_trusted_subscription_by_id(production, make_tenant, member):
    tenant = await make_tenant()
    _, agent = await member(tenant, ["agent"])
    # the gateway's trusted documents (the manifest, shared by HTTP and the socket), plus one
    # subscription registered here as the manifest would name it
    trusted = endpoint(production).trusted
    doc_id = hashlib.sha256(UNIT_CHANGES.encode()).hexdigest()
    trusted.setdefault(doc_id, UNIT_CHANGES)
    building = await a_building(production, tenant.slug)
    async with live(production, tenant.slug, token=agent) as ws:
        sid = await ws.subscribe(
            None, {"buildingId": building, "since": FAR_AHEAD}, documentId=doc_id
        )
        await accepted(ws, sid)
    async with httpx.AsyncClient(base_url=production.url, timeout=30) as http:
        # over HTTP the same trusted subscription is refused: subscriptions are socket-only
        headers = {"X-Tenant": tenant.slug, "Authorization": f"Bearer {agent}"}
        body = {"documentId": doc_id, "variables": {"buildingId": str(uuid.uuid4())}}
        resp = await http.post("/graphql", json=body, headers=headers)
        refused = resp.json()
        assert refused["data"] is None and code_of(refused["errors"][0]) == "BAD_USER_INPUT"
        assert "WebSocket" in refused["errors"][0]["message"], refused


@pytest.mark.skipif(
    not _manifest_subscriptions(),
    reason="no subscription document in the mobile_contracts manifest yet",
)
async def test_manifest_subscriptions_run_by_id_in_production(production, make_tenant, member):
    tenant = await make_tenant()
    _, agent = await member(tenant, ["agent"])
    async with live(production, tenant.slug, token=agent) as ws:
        for doc_id in _manifest_subscriptions():
            resumable = "$since" in load_manifest()[doc_id]
            variables = {"since": FAR_AHEAD} if resumable else {}
            sid = await ws.subscribe(None, variables, documentId=doc_id)
            if not resumable:  # nothing comes back until an event: a pong proves acceptance
                await ws.ws.send('{"type":"ping"}')
                raw = json.loads(await asyncio.wait_for(ws.ws.recv(), 10))
                assert raw == {"type": "pong"}, raw
                await ws.complete(sid)
                continue
            msg = await ws.recv()
            # accepted (RefetchRequired) or refused only for its own arguments, never as adhoc
            if msg["type"] == "error":
                assert code_of(msg["payload"][0]) not in ("FORBIDDEN", "INTERNAL"), msg
            else:
                assert msg["id"] == sid and msg["type"] == "next", msg
                await ws.complete(sid)


async def test_production_hides_schema_suggestions_over_the_socket(production, make_tenant, member):
    tenant = await make_tenant()
    _, manager = await member(tenant, ["manager"])  # graphql.adhoc: full documents validate
    typo = "subscription($b: ID) { unitChanges(buildingId: $b) { ... on UnitChange { seqq } } }"
    async with httpx.AsyncClient(base_url=production.url, timeout=30) as http:
        resp = await http.post(
            "/graphql",
            json={"query": "{ apiVersio }"},
            headers={"X-Tenant": tenant.slug, "Authorization": f"Bearer {manager}"},
        )
        message = resp.json()["errors"][0]["message"]
        assert "apiVersio" in message and "Did you mean" not in message  # HTTP: no hints
    async with live(production, tenant.slug, token=manager) as ws:
        sid = await ws.subscribe(typo, {"b": str(uuid.uuid4())})
        err = await error_of(ws, sid)
        assert code_of(err) == "BAD_USER_INPUT" and "seqq" in err["message"], err
        assert "Did you mean" not in err["message"], err
