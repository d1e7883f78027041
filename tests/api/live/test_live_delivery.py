"""Delivery of live events over real HTTP + WebSocket round trips (in-process bus): which
subscriber gets which unit, listing and followed-item change, tenant isolation under load,
nothing from a rolled-back transaction, exactly once after a relay crash between publishing and
marking, and the sales table's sequence as a resume point for ``since``.

Expectations are read from the HTTP API (the unit as it is after the change) or computed from
what the test sent, never copied from an event."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.pool import NullPool

from api.app import create_app
from api.db import make_engine
from api.live.models import EventStream
from api.live.relay import OUTBOX, Relay
from api.unit import service as unit_service
from tenants.provisioning import create_tenant
from tenants.sessions import TenantDatabase
from tests.api.helpers import create_building
from tests.api.live.helpers import LiveClient, live
from tests.api.processes import own_database
from tests.api.unit.helpers import (
    HOLD_UNIT,
    RELEASE_HOLD,
    applied,
    create_units,
    inventory,
    ok,
    reserve,
    status_to,
)
from tests.conftest import TOKENS, LiveServer, add_member, gql, unique_slug
from tests.conftest import test_settings as settings_for_tests

UNIT_DOC = """
subscription($projectId: ID, $buildingId: ID, $since: Long) {
  unitChanges(projectId: $projectId, buildingId: $buildingId, since: $since) {
    __typename
    ... on UnitChange { seq kind unitId buildingId projectId number floor status standardStatus
                        version listPrice { minorUnits currency } holdExpiresAt occurredAt }
    ... on RefetchRequired { seq reason }
  }
}
"""

LISTING_DOC = """
subscription($filter: ListingFilter, $savedSearchId: ID, $since: Long) {
  listingChanges(filter: $filter, savedSearchId: $savedSearchId, since: $since) {
    __typename
    ... on ListingChange { seq kind listingId status standardStatus version verified district
                           community rooms askingPrice { minorUnits currency } }
    ... on RefetchRequired { seq reason }
  }
}
"""

# ``kind`` and ``status`` are different enums on the two types: aliased on listings.
FOLLOWED_DOC = """
subscription($since: Long) {
  followedChanges(since: $since) {
    __typename
    ... on UnitChange { seq kind unitId status version }
    ... on ListingChange { seq listingKind: kind listingId listingStatus: status
                           askingPrice { minorUnits } }
    ... on RefetchRequired { seq reason }
  }
}
"""

UNIT_NOW = """
query($id: ID!) { unit(id: $id) { id number floor status standardStatus version
  listPrice { minorUnits currency } holdExpiresAt building { id } project { id } } }
"""

SALES_TABLE = """
query($id: ID!) {
  salesTable(buildingId: $id) {
    seq building { id name } units { id number floor status version listPrice { minorUnits } }
    counts { status count }
  }
}
"""

CREATE_LISTING = (
    "mutation($input: CreateListingInput!) { createListing(input: $input) { __typename"
    " ... on ListingPayload { listing { id district askingPrice { minorUnits } status version } }"
    " ... on UserError { code message field } } }"
)
CHANGE_LISTING_PRICE = (
    "mutation($input: ChangeListingPriceInput!) { changeListingPrice(input: $input) { __typename"
    " ... on ListingPayload { listing { id askingPrice { minorUnits } status version } }"
    " ... on UserError { code message field } } }"
)
FOLLOW = (
    "mutation($kind: FollowKind!, $id: ID!) { follow(kind: $kind, targetId: $id) { __typename"
    " ... on FollowPayload { follow { id } } ... on UserError { code message field } } }"
)
UNFOLLOW = (
    "mutation($id: ID!) { unfollow(id: $id) { __typename ... on UnfollowPayload { id }"
    " ... on UserError { code message field } } }"
)
SAVE_SEARCH = (
    "mutation($input: SaveSearchInput!) { saveSearch(input: $input) { __typename"
    " ... on FollowPayload { follow { id } } ... on UserError { code message field } } }"
)


# ---------------------------------------------------------------- helpers


def data(msg: dict, field: str) -> dict:
    assert msg["type"] == "next", msg
    assert "errors" not in msg["payload"], msg
    return msg["payload"]["data"][field]


async def settle(ws: LiveClient, timeout: float = 10.0) -> list[dict]:
    """Ping and wait for the pong: the server handles a socket's messages in order, so every
    subscribe sent before is registered (or refused) by then. Returns what came before it."""
    await ws.ws.send('{"type":"ping"}')
    before = []
    while True:
        msg = json.loads(await asyncio.wait_for(ws.ws.recv(), timeout))
        if msg["type"] == "pong":
            return before
        if msg["type"] == "ping":
            await ws.ws.send('{"type":"pong"}')
            continue
        before.append(msg)


async def subscribed(ws: LiveClient, query: str, variables: dict) -> str:
    sid = await ws.subscribe(query, variables)
    assert await settle(ws) == [], "the subscription was refused"
    return sid


async def unit_now(client, slug: str, unit_id: str, token=None) -> dict:
    kw = {} if token is None else {"token": token}
    res = await gql(client, UNIT_NOW, {"id": unit_id}, tenant=slug, **kw)
    assert "errors" not in res, res
    return res["data"]["unit"]


def same_instant(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


def assert_is_unit(change: dict, unit: dict, kind: str) -> None:
    """A unitChanges payload says what the unit is after the change (as HTTP reads it)."""
    assert change["__typename"] == "UnitChange", change
    assert change["kind"] == kind, change
    assert change["unitId"] == unit["id"]
    assert change["buildingId"] == unit["building"]["id"]
    assert change["projectId"] == unit["project"]["id"]
    assert (change["number"], change["floor"]) == (unit["number"], unit["floor"])
    assert change["status"] == unit["status"]
    assert change["standardStatus"] == unit["standardStatus"]
    assert change["version"] == unit["version"]
    assert change["listPrice"] == unit["listPrice"]
    assert same_instant(change["holdExpiresAt"], unit["holdExpiresAt"]), (change, unit)


async def eventually(check: Callable[[], Awaitable], timeout: float = 10.0, every=0.05):
    """Poll ``check`` until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(every)


async def outbox_rows(engine, tenant_id: str, entity_id: str | None = None) -> list:
    stmt = select(OUTBOX).where(OUTBOX.c.tenant_id == uuid.UUID(tenant_id))
    if entity_id is not None:
        stmt = stmt.where(OUTBOX.c.entity_id == uuid.UUID(entity_id))
    async with engine.connect() as conn:
        return list((await conn.execute(stmt.order_by(OUTBOX.c.id))).all())


async def all_published(engine, tenant_id: str) -> list:
    """The tenant's outbox once the relay has numbered and published every row."""

    async def check():
        rows = await outbox_rows(engine, tenant_id)
        done = all(r.seq is not None and r.published_at is not None for r in rows)
        return rows if done else None

    return await eventually(check)


async def hold(client, slug: str, unit_id: str, minutes: int = 30) -> dict:
    res = await gql(
        client, HOLD_UNIT, {"input": {"unitId": unit_id, "minutes": minutes}}, tenant=slug
    )
    return ok(res, "holdUnit", "UnitPayload")["unit"]


async def new_listing(client, slug: str, *, district: str, price: int, token=None) -> dict:
    kw = {} if token is None else {"token": token}
    fields = {
        "community": f"Garden {uuid.uuid4().hex[:6]}",
        "district": district,
        "grossArea": "89.50",
        "rooms": 3,
        "askingPrice": price,
    }
    res = await gql(client, CREATE_LISTING, {"input": fields}, tenant=slug, **kw)
    return ok(res, "createListing", "ListingPayload")["listing"]


async def listing_price(client, slug: str, listing_id: str, price: int) -> dict:
    variables = {"input": {"listingId": listing_id, "askingPrice": price}}
    res = await gql(client, CHANGE_LISTING_PRICE, variables, tenant=slug)
    return ok(res, "changeListingPrice", "ListingPayload")["listing"]


async def follow(client, slug: str, kind: str, target_id: str, token: str) -> str:
    res = await gql(client, FOLLOW, {"kind": kind, "id": target_id}, tenant=slug, token=token)
    return ok(res, "follow", "FollowPayload")["follow"]["id"]


async def unfollow(client, slug: str, follow_id: str, token: str) -> None:
    res = await gql(client, UNFOLLOW, {"id": follow_id}, tenant=slug, token=token)
    ok(res, "unfollow", "UnfollowPayload")


# ---------------------------------------------------------------- 1. unitChanges


async def test_unit_changes_by_building_and_by_project(client, live_server, make_tenant):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await inventory(client, slug, floors=2, per_floor=2)
    project, building, units = inv["project"], inv["building"], inv["units"]
    # Another building of the same project, and another project of the same tenant.
    b2 = await create_building(client, slug, project["id"], "B2", floors=2)
    [sibling] = await create_units(
        client,
        slug,
        [
            {
                "buildingId": b2["id"],
                "floor": 1,
                "number": "101",
                "grossArea": "89.50",
                "listPrice": 310_000_000,
                "status": "AVAILABLE",
            }
        ],
    )
    other = await inventory(client, slug, floors=1, per_floor=1, project_name="Other")
    [elsewhere] = other["units"]

    async with live(live_server, slug) as by_building, live(live_server, slug) as by_project:
        await subscribed(by_building, UNIT_DOC, {"buildingId": building["id"]})
        await subscribed(by_project, UNIT_DOC, {"projectId": project["id"]})
        seqs: list[int] = []

        async def both_get(unit_id: str, kind: str, status: str) -> dict:
            now = await unit_now(client, slug, unit_id)
            assert now["status"] == status
            b = data(await by_building.next(), "unitChanges")
            p = data(await by_project.next(), "unitChanges")
            assert b == p  # one payload, whichever the topic
            assert_is_unit(b, now, kind)
            seqs.append(b["seq"])
            return b

        u0, u1, u2 = units[0]["id"], units[1]["id"], units[2]["id"]
        held = await hold(client, slug, u0)
        change = await both_get(u0, "STATUS", "ON_HOLD")
        assert change["version"] == units[0]["version"] + 1
        assert same_instant(change["holdExpiresAt"], held["holdExpiresAt"])

        await reserve(client, slug, u1)
        await both_get(u1, "STATUS", "RESERVED")
        await status_to(client, slug, u1, "SUBSCRIBED")
        change = await both_get(u1, "STATUS", "SUBSCRIBED")
        assert change["version"] == units[1]["version"] + 2

        adj = await applied(client, slug, projectId=project["id"], unitIds=[u2], percent="3")
        [line] = adj["lines"]
        change = await both_get(u2, "PRICE", "AVAILABLE")
        assert line["oldPrice"] == units[2]["listPrice"]["minorUnits"]
        assert change["listPrice"]["minorUnits"] == line["newPrice"] != line["oldPrice"]

        # Another building of the project: the project's subscriber only.
        await reserve(client, slug, sibling["id"])
        p = data(await by_project.next(), "unitChanges")
        assert_is_unit(p, await unit_now(client, slug, sibling["id"]), "STATUS")
        # Another project: neither. The next change of the building comes next to both (events
        # are dispatched in sequence order, so one sent for the others would come before it).
        await reserve(client, slug, elsewhere["id"])
        res = await gql(client, RELEASE_HOLD, {"id": u0}, tenant=slug)
        ok(res, "releaseUnitHold", "UnitPayload")
        change = await both_get(u0, "STATUS", "AVAILABLE")
        assert change["holdExpiresAt"] is None
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        # The event of the other project was numbered between them (the tenant's sequence).
        assert seqs[-1] == seqs[-2] + 3
        await by_building.nothing(0.3)
        await by_project.nothing(0.1)


# ---------------------------------------------------------------- 2. tenants


async def test_other_tenants_changes_never_reach_a_subscriber(client, live_server, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    inv_a = await inventory(client, a.slug, floors=10, per_floor=5)
    inv_b = await inventory(client, b.slug, floors=1, per_floor=2)
    a_units = [u["id"] for u in inv_a["units"]]
    assert len(a_units) == 50

    async with live(live_server, a.slug) as watcher_a, live(live_server, b.slug) as watcher_b:
        await subscribed(watcher_a, UNIT_DOC, {"buildingId": inv_a["building"]["id"]})
        # B listens on its own building and, guessing, on A's building and project ids: keys
        # are looked up under B's tenant, so neither may ever see A's events.
        own = await watcher_b.subscribe(UNIT_DOC, {"buildingId": inv_b["building"]["id"]})
        await watcher_b.subscribe(UNIT_DOC, {"buildingId": inv_a["building"]["id"]})
        await watcher_b.subscribe(UNIT_DOC, {"projectId": inv_a["project"]["id"]})
        early = await settle(watcher_b)
        assert all(m["type"] == "error" for m in early), early  # refused, or silent: fine

        await asyncio.gather(*(reserve(client, a.slug, uid) for uid in a_units))
        got = [data(await watcher_a.next(), "unitChanges") for _ in a_units]
        assert sorted(c["unitId"] for c in got) == sorted(a_units)
        assert {c["status"] for c in got} == {"RESERVED"}
        a_seqs = [c["seq"] for c in got]
        assert a_seqs == sorted(a_seqs) and len(set(a_seqs)) == 50

        # All 50 were dispatched (A's subscriber has them): B got none. B's own change arrives
        # on its own subscription, next: the socket is alive and nothing of A's was queued.
        await reserve(client, b.slug, inv_b["units"][0]["id"])
        msg = await watcher_b.next()
        assert msg["id"] == own, msg
        change = data(msg, "unitChanges")
        assert_is_unit(change, await unit_now(client, b.slug, inv_b["units"][0]["id"]), "STATUS")
        assert change["seq"] == 1  # B's first event: A's numbering is A's alone
        await watcher_b.nothing(0.3)
        await watcher_a.nothing(0.1)


# ---------------------------------------------------------------- 3. rollback


async def test_rolled_back_change_publishes_nothing(
    client, live_server, make_tenant, member, engine
):
    tenant = await make_tenant()
    slug = tenant.slug
    actor, _ = await member(tenant, ["admin"])
    inv = await inventory(client, slug, floors=1, per_floor=2)
    first, second = (uuid.UUID(u["id"]) for u in inv["units"])
    db = TenantDatabase(engine)

    async with live(live_server, slug) as ws:
        await subscribed(ws, UNIT_DOC, {"buildingId": inv["building"]["id"]})
        for change in (
            lambda s: unit_service.reserve_unit(s, first, actor_id=actor, override=True),
            lambda s: unit_service.change_status(s, second, "planned", actor_id=actor),
        ):
            async with db.session(tenant) as session:
                unit_id = (await change(session)).id
                # The event row is in the transaction (so the test means something) ...
                inside = await session.scalar(
                    select(func.count()).select_from(OUTBOX).where(OUTBOX.c.entity_id == unit_id)
                )
                assert inside == 1
                await session.rollback()
            # ... and gone with it.
            assert await outbox_rows(engine, tenant.id, str(unit_id)) == []
        assert await outbox_rows(engine, tenant.id) == []

        async with db.session(tenant) as session:
            await unit_service.reserve_unit(session, second, actor_id=actor, override=True)
            await session.commit()
        # The committed change is the first thing to arrive (nothing came from the rollbacks).
        change = data(await ws.next(), "unitChanges")
        assert_is_unit(change, await unit_now(client, slug, str(second)), "STATUS")
        assert change["status"] == "RESERVED"
        await ws.nothing(0.3)

    [row] = await all_published(engine, tenant.id)
    assert (row.entity_id, row.kind, row.seq) == (second, "unit.status", change["seq"])
    assert row.payload["status"] == "reserved" and row.published_at is not None
    assert change["seq"] == 1


# ---------------------------------------------------------------- 4. relay crash


@pytest.fixture
async def quiet_db(db_url, settings):
    """A database of its own with no relay running: the session's gateway leads the relay of
    the test database, and would publish (to its own hub) anything committed there."""
    async with own_database(db_url, settings, "norelay") as db:
        yield db


class HandOff:
    """A bus that hands each message to a hub in another thread (the gateway's loop), as
    JSON like the real buses, then optionally fails: a relay crashing after publishing."""

    def __init__(self, hub, loop, *, crash: bool = False) -> None:
        self.hub, self.loop, self.crash = hub, loop, crash
        self.published: list[list[dict]] = []

    async def publish(self, events: list[dict]) -> None:
        copy = json.loads(json.dumps(events, separators=(",", ":")))
        self.published.append(copy)
        self.loop.call_soon_threadsafe(self.hub.on_bus, copy)
        if self.crash:
            raise ConnectionError("relay process died before marking the rows published")


async def test_relay_restart_delivers_pending_event_once(quiet_db, kit):
    url, eng = quiet_db
    app = create_app(settings_for_tests(live_relay_in_process=False), url=url)
    server = LiveServer(app).start()
    try:
        tenant = (await create_tenant(eng, unique_slug(), "Quiet Realty")).tenant
        _, TOKENS[tenant.slug] = await add_member(eng, kit, tenant, ["admin"], name="Admin")
        hub = app.state.hub
        loop = hub.loop  # the gateway thread's event loop (the hub runs on it)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            inv = await inventory(http, tenant.slug, floors=1, per_floor=2)
            uid = inv["units"][0]["id"]
            async with live(server, tenant.slug) as ws:
                await subscribed(ws, UNIT_DOC, {"buildingId": inv["building"]["id"]})
                await reserve(http, tenant.slug, uid)
                [row] = await outbox_rows(eng, tenant.id, uid)
                assert (row.seq, row.published_at) == (None, None)
                await ws.nothing(0.5)  # no relay: nothing moves

                crashing = HandOff(hub, loop, crash=True)
                dying = Relay(eng, crashing)
                assert await dying.number() == 1
                with pytest.raises(ConnectionError):
                    await dying.publish_pending()
                [[published]] = crashing.published
                change = data(await ws.next(), "unitChanges")
                assert change["seq"] == published["seq"] == 1
                assert_is_unit(change, await unit_now(http, tenant.slug, uid), "STATUS")
                [row] = await outbox_rows(eng, tenant.id, uid)
                assert (row.seq, row.published_at) == (1, None)  # not marked: pending

                fresh = HandOff(hub, loop)
                assert await Relay(eng, fresh).drain() == 1  # published again ...
                assert [e["seq"] for batch in fresh.published for e in batch] == [1]
                await ws.nothing(0.6)  # ... and dropped as a repeat: delivered once
                [row] = await outbox_rows(eng, tenant.id, uid)
                assert row.seq == 1 and row.published_at is not None

                # The next change flows normally through the restarted relay.
                second = inv["units"][1]["id"]
                await reserve(http, tenant.slug, second)
                assert await Relay(eng, fresh).drain() == 1
                change = data(await ws.next(), "unitChanges")
                assert (change["seq"], change["unitId"]) == (2, second)
                await ws.nothing(0.3)
    finally:
        server.stop()


# ---------------------------------------------------------------- 5. listingChanges


async def test_listing_changes_by_filter_and_saved_search(client, live_server, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, me = await member(tenant, ["client"])
    _, someone = await member(tenant, ["client"])
    cap = 600_000_000
    wanted = {"districts": ["Nanshan"], "priceMax": cap}
    res = await gql(
        client,
        SAVE_SEARCH,
        {"input": {"name": "Nanshan", "listings": wanted}},
        tenant=slug,
        token=me,
    )
    saved = ok(res, "saveSearch", "FollowPayload")["follow"]["id"]

    async with live(live_server, slug, me) as ws, live(live_server, slug, someone) as other:
        # Someone else's saved search is not found, for another client as for the admin.
        async with live(live_server, slug) as admin_ws:
            for stranger in (other, admin_ws):
                sid = await stranger.subscribe(LISTING_DOC, {"savedSearchId": saved})
                [refusal] = await settle(stranger)
                assert (refusal["id"], refusal["type"]) == (sid, "error"), refusal
                assert refusal["payload"][0]["extensions"]["code"] == "NOT_FOUND", refusal
        await subscribed(other, LISTING_DOC, {})  # the socket still serves its caller

        inline = await subscribed(ws, LISTING_DOC, {"filter": wanted})
        by_saved = await subscribed(ws, LISTING_DOC, {"savedSearchId": saved})

        async def both_get(listing_id: str, kind: str, price: int) -> dict:
            got = {}
            for _ in range(2):
                msg = await ws.next()
                got[msg["id"]] = data(msg, "listingChanges")
            assert set(got) == {inline, by_saved}
            assert got[inline] == got[by_saved]
            change = got[inline]
            assert change["__typename"] == "ListingChange", change
            assert (change["kind"], change["listingId"]) == (kind, listing_id)
            assert change["askingPrice"]["minorUnits"] == price
            assert (change["district"], change["status"]) == ("Nanshan", "ACTIVE")
            return change

        match = await new_listing(client, slug, district="Nanshan", price=cap - 100_000_000)
        change = await both_get(match["id"], "CREATED", cap - 100_000_000)
        assert (change["version"], change["rooms"]) == (match["version"], 3)
        seen = data(await other.next(), "listingChanges")  # the unfiltered one sees it too
        assert seen["listingId"] == match["id"]

        elsewhere = await new_listing(client, slug, district="Futian", price=cap - 100_000_000)
        dear = await new_listing(client, slug, district="Nanshan", price=cap + 100_000_000)
        for lid in (elsewhere["id"], dear["id"]):
            assert data(await other.next(), "listingChanges")["listingId"] == lid

        changed = await listing_price(client, slug, match["id"], cap - 50_000_000)
        assert changed["version"] == match["version"] + 1
        change = await both_get(match["id"], "PRICE", cap - 50_000_000)
        assert change["version"] == changed["version"]
        await listing_price(client, slug, elsewhere["id"], cap - 200_000_000)  # still Futian
        # A listing that comes within the filter by a price change arrives then; before it,
        # none of the non-matching ones did (events come in sequence order).
        await listing_price(client, slug, dear["id"], cap)
        await both_get(dear["id"], "PRICE", cap)
        await ws.nothing(0.3)


# ---------------------------------------------------------------- 6. followedChanges


async def test_followed_changes_of_what_was_followed_before(
    client, live_server, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, me = await member(tenant, ["client"])
    _, someone = await member(tenant, ["client"])
    inv = await inventory(client, slug, floors=1, per_floor=3)
    mine, theirs, nobodys = (u["id"] for u in inv["units"])
    listing = await new_listing(client, slug, district="Nanshan", price=500_000_000)
    await follow(client, slug, "UNIT", mine, me)
    await follow(client, slug, "LISTING", listing["id"], me)
    await follow(client, slug, "UNIT", theirs, someone)

    async with live(live_server, slug, me) as ws:
        await subscribed(ws, FOLLOWED_DOC, {})
        await reserve(client, slug, theirs)  # followed by someone else only
        await reserve(client, slug, nobodys)
        await reserve(client, slug, mine)
        change = data(await ws.next(), "followedChanges")  # the first to arrive
        assert change["__typename"] == "UnitChange"
        assert (change["unitId"], change["status"]) == (mine, "RESERVED")
        assert change["version"] == (await unit_now(client, slug, mine))["version"]
        await listing_price(client, slug, listing["id"], 480_000_000)
        change = data(await ws.next(), "followedChanges")
        assert change["__typename"] == "ListingChange"
        assert (change["listingId"], change["listingKind"]) == (listing["id"], "PRICE")
        assert (change["listingStatus"], change["askingPrice"]["minorUnits"]) == (
            "ACTIVE",
            480_000_000,
        )
        await ws.nothing(0.3)


async def test_follow_made_while_subscribed_counts_at_once(
    client, live_server, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, me = await member(tenant, ["client"])
    inv = await inventory(client, slug, floors=1, per_floor=2)
    before, during = (u["id"] for u in inv["units"])
    listing = await new_listing(client, slug, district="Nanshan", price=500_000_000)
    await follow(client, slug, "UNIT", before, me)

    async with live(live_server, slug, me) as ws:
        await subscribed(ws, FOLLOWED_DOC, {})
        await follow(client, slug, "UNIT", during, me)
        await follow(client, slug, "LISTING", listing["id"], me)
        await reserve(client, slug, during)
        change = data(await ws.next(timeout=3), "followedChanges")
        assert (change["__typename"], change["unitId"], change["status"]) == (
            "UnitChange",
            during,
            "RESERVED",
        )
        await listing_price(client, slug, listing["id"], 480_000_000)
        change = data(await ws.next(timeout=3), "followedChanges")
        assert (change["__typename"], change["listingId"]) == ("ListingChange", listing["id"])
        await ws.nothing(0.3)


async def test_unfollow_while_subscribed_stops_the_changes(
    client, live_server, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, me = await member(tenant, ["client"])
    inv = await inventory(client, slug, floors=1, per_floor=2)
    dropped, kept = (u["id"] for u in inv["units"])
    fid = await follow(client, slug, "UNIT", dropped, me)
    await follow(client, slug, "UNIT", kept, me)

    async with live(live_server, slug, me) as ws:
        await subscribed(ws, FOLLOWED_DOC, {})
        await reserve(client, slug, dropped)
        assert data(await ws.next(), "followedChanges")["unitId"] == dropped  # followed yet
        await unfollow(client, slug, fid, me)
        await status_to(client, slug, dropped, "SUBSCRIBED")
        await reserve(client, slug, kept)
        change = data(await ws.next(), "followedChanges")  # the first to arrive
        assert (change["unitId"], change["status"]) == (kept, "RESERVED")
        await ws.nothing(0.3)


# ---------------------------------------------------------------- 7. salesTable


async def tenant_head(engine, tenant_id: str) -> int:
    async with engine.connect() as conn:
        head = await conn.scalar(
            select(EventStream.last_seq).where(EventStream.tenant_id == uuid.UUID(tenant_id))
        )
    return head or 0


async def test_sales_table_then_resume_from_its_seq(client, live_server, make_tenant, engine):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await inventory(client, slug, floors=3, per_floor=2)
    units = inv["units"]
    await reserve(client, slug, units[0]["id"])
    await hold(client, slug, units[3]["id"])
    await status_to(client, slug, units[0]["id"], "SUBSCRIBED")
    rows = await all_published(engine, tenant.id)

    res = await gql(client, SALES_TABLE, {"id": inv["building"]["id"]}, tenant=slug)
    assert "errors" not in res, res
    table = res["data"]["salesTable"]
    assert table["building"]["id"] == inv["building"]["id"]
    # The tenant's sequence: as many as the tenant's events, all numbered.
    assert table["seq"] == len(rows) == max(r.seq for r in rows) == 3
    assert table["seq"] == await tenant_head(engine, tenant.id)
    order = sorted(units, key=lambda u: (-u["floor"], u["number"]))
    assert [u["id"] for u in table["units"]] == [u["id"] for u in order]
    statuses = {units[0]["id"]: "SUBSCRIBED", units[3]["id"]: "ON_HOLD"}
    for u in table["units"]:
        assert u["status"] == statuses.get(u["id"], "AVAILABLE"), u
    expected_counts: dict[str, int] = {}
    for u in units:
        s = statuses.get(u["id"], "AVAILABLE")
        expected_counts[s] = expected_counts.get(s, 0) + 1
    assert {c["status"]: c["count"] for c in table["counts"]} == expected_counts
    assert len(table["counts"]) == len(expected_counts)

    # A change after the read and before subscribing, then one while subscribed: ``since``
    # replays the first, the second comes live; nothing from before the table.
    await reserve(client, slug, units[1]["id"])
    await all_published(engine, tenant.id)
    async with live(live_server, slug) as ws:
        await ws.subscribe(UNIT_DOC, {"buildingId": inv["building"]["id"], "since": table["seq"]})
        change = data(await ws.next(), "unitChanges")
        assert (change["seq"], change["unitId"]) == (table["seq"] + 1, units[1]["id"])
        assert_is_unit(change, await unit_now(client, slug, units[1]["id"]), "STATUS")
        await settle(ws)
        await reserve(client, slug, units[2]["id"])
        change = data(await ws.next(), "unitChanges")
        assert (change["seq"], change["unitId"]) == (table["seq"] + 2, units[2]["id"])
        await ws.nothing(0.3)


class StatementCounter:
    """Every statement the gateway's engine sends while active (as tests/api/unit/test_search)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self.lock = threading.Lock()

    def on_execute(self, conn, cursor, statement, *_) -> None:
        with self.lock:
            self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine.sync_engine, "before_cursor_execute", self.on_execute)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self.on_execute)


async def test_sales_table_costs_the_same_statements_whatever_its_size(client, make_tenant, db_url):
    tenant = await make_tenant()
    slug = tenant.slug
    small = await inventory(client, slug, floors=1, per_floor=2)
    large = await inventory(client, slug, floors=6, per_floor=4, project_name="Tall")
    await reserve(client, slug, large["units"][5]["id"])
    # A gateway on an engine of its own (to listen to), without a relay (it would add its own).
    # one engine for every statement (no lanes: tenants/routing.py), so all are counted
    settings = settings_for_tests(live_relay_in_process=False, db_lane_size=0)
    eng = make_engine(db_url, settings, poolclass=NullPool)
    server = LiveServer(create_app(settings, engine=eng)).start()
    try:
        counts = {}
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await gql(http, "{ __typename }", tenant=slug)
            for name, inv in (("small", small), ("large", large)):
                with StatementCounter(eng) as counter:
                    res = await gql(http, SALES_TABLE, {"id": inv["building"]["id"]}, tenant=slug)
                assert "errors" not in res, res
                assert len(res["data"]["salesTable"]["units"]) == len(inv["units"])
                counts[name] = list(counter.statements)
    finally:
        server.stop()
        await eng.dispose()
    detail = "\n---\n".join(counts["large"])
    # The tenant registry lookup, authentication, the tenant's sequence, the building, its
    # units: no statement per unit, and the sequence read before the units (a change numbered
    # up to it is in the table; a later one comes through unitChanges(since: seq)).
    for statements in counts.values():
        read = [re.search(r'FROM "?\w+"?\."?(\w+)', s).group(1) for s in statements]
        assert read == ["tenant", "membership", "event_stream", "building", "unit"], detail
