"""The unit status machine through GraphQL, RESO StandardStatus at the edge, holds and their
expiry (lazy and by the release job), exactly one winner of concurrent reservations and holds,
and tenant isolation of unit ids."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.pool import NullPool

from api.db import make_engine, utcnow
from api.errors import Conflict
from api.unit import repository as repo
from api.unit import service
from api.unit.models import STATUSES, Unit
from api.unit.status import NEEDS_REASON, RESO, TRANSITIONS
from tenants.provisioning import create_tenant
from tenants.registry import TenantInfo
from tenants.sessions import TenantDatabase
from tests.api.helpers import create_building, create_project, typed_denial
from tests.conftest import TOKENS, add_member, gql, unique_slug

# ---------------------------------------------------------------- documents

FIELDS = "id number status standardStatus version heldBy holdExpiresAt statusChangedAt"
TIMELINE = "timeline { kind fromStatus toStatus actorId reason data }"
RESULT = (
    "{ __typename ... on UnitPayload { unit { " + FIELDS + " } } "
    "... on UserError { code message field } }"
)
CHANGE = (
    "mutation($input: ChangeUnitStatusInput!) { changeUnitStatus(input: $input) " + RESULT + " }"
)
HOLD = "mutation($input: HoldUnitInput!) { holdUnit(input: $input) " + RESULT + " }"
RESERVE = "mutation($input: ReserveUnitInput!) { reserveUnit(input: $input) " + RESULT + " }"
RELEASE = "mutation($id: ID!) { releaseUnitHold(unitId: $id) " + RESULT + " }"
READ = "query($id: ID!) { unit(id: $id) { " + FIELDS + " " + TIMELINE + " } }"
CREATE = (
    "mutation($units: [UnitInput!]!) { createUnits(units: $units) { __typename "
    "... on UnitsPayload { units { " + FIELDS + " } } ... on UserError { code message field } } }"
)
SETTINGS = """
mutation($changes: [SettingChange!]!) {
  updateTenantSettings(changes: $changes) {
    __typename
    ... on TenantSettingsPayload { settings { key value } }
    ... on UserError { code message field }
  }
}
"""

# Refusals pinned independently of TRANSITIONS, so that loosening the table fails a test.
MUST_REFUSE = {
    "planned": {"planned", "reserved", "sold", "delivered"},
    "available": {"available", "subscribed", "contracted", "sold", "delivered"},
    "on_hold": {"planned", "subscribed", "contracted", "sold"},
    "reserved": {"planned", "reserved", "contracted", "sold", "delivered"},
    "subscribed": {"planned", "reserved", "sold"},
    "contracted": {"planned", "reserved", "subscribed", "delivered"},
    "sold": {"available", "planned", "reserved", "contracted", "sold"},
    "delivered": set(STATUSES) - {"on_hold"},  # terminal
}

# Concurrency: attempts per unit, units per test, and how many connections may be open at once.
# The local PostgreSQL allows 100 connections and is shared with other test runs (and with this
# run's own pools), so each attempt keeps its own connection but at most RACE_CONNECTIONS are
# open together; that still makes dozens of transactions queue on the same row lock.
RACE_ATTEMPTS = 200
RACE_ROUNDS = 3  # per operation (reserve, hold): 6 races of 200 attempts each
RACE_CONNECTIONS = 50
HTTP_AGENTS = 40


def reso_name(status: str) -> str:
    """The GraphQL enum name of a local status's RESO StandardStatus ("Active Under Contract"
    -> ACTIVE_UNDER_CONTRACT)."""
    return RESO[status].upper().replace(" ", "_")


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


# ---------------------------------------------------------------- fixtures and helpers


@dataclass
class Shop:
    tenant: TenantInfo
    building_id: str

    @property
    def slug(self) -> str:
        return self.tenant.slug


_numbers = itertools.count(1)


async def open_shop(engine, kit, live_server, name: str = "Status Realty") -> Shop:
    """A tenant with an admin (whose token ``gql`` sends by default) and one 30-floor building."""
    tenant = (await create_tenant(engine, unique_slug("st"), name)).tenant
    _, TOKENS[tenant.slug] = await add_member(engine, kit, tenant, ["admin"], name="Admin")
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as c:
        project = await create_project(c, tenant.slug, "Status Park")
        building = await create_building(c, tenant.slug, project["id"], "S1", floors=30)
    return Shop(tenant, building["id"])


@pytest.fixture(scope="module")
async def shop(engine, kit, live_server) -> Shop:
    """One tenant shared by the tests of this module that do not depend on tenant-wide state
    (settings, the hold-release job); each test makes its own units."""
    return await open_shop(engine, kit, live_server)


@pytest.fixture
async def fresh_shop(engine, kit, live_server) -> Shop:
    return await open_shop(engine, kit, live_server, "Fresh Realty")


def _tok(token: str | None) -> dict:
    return {} if token is None else {"token": token}


async def call(client, slug: str, doc: str, field: str, variables: dict, token=None) -> dict:
    """Run a mutation; returns its result (payload or typed error). Never a field error."""
    res = await gql(client, doc, variables, tenant=slug, **_tok(token))
    assert "errors" not in res, res
    return res["data"][field]


def unit_of(result: dict) -> dict:
    assert result["__typename"] == "UnitPayload", result
    return result["unit"]


def refused(result: dict, typename: str, code: str, field: str | None) -> str:
    """The typed error of a refused mutation; returns its message."""
    got = (result["__typename"], result.get("code"), result.get("field"))
    assert got == (typename, code, field), result
    assert result["message"], result
    return result["message"]


async def change(client, slug, unit_id, status, token=None, **extra) -> dict:
    variables = {"input": {"unitId": unit_id, "status": status.upper(), **extra}}
    return await call(client, slug, CHANGE, "changeUnitStatus", variables, token)


async def hold(client, slug, unit_id, token=None, **extra) -> dict:
    variables = {"input": {"unitId": unit_id, **extra}}
    return await call(client, slug, HOLD, "holdUnit", variables, token)


async def reserve(client, slug, unit_id, token=None) -> dict:
    return await call(client, slug, RESERVE, "reserveUnit", {"input": {"unitId": unit_id}}, token)


async def release(client, slug, unit_id, token=None) -> dict:
    return await call(client, slug, RELEASE, "releaseUnitHold", {"id": unit_id}, token)


async def read(client, slug, unit_id, token=None) -> dict | None:
    res = await gql(client, READ, {"id": unit_id}, tenant=slug, **_tok(token))
    assert "errors" not in res, res
    return res["data"]["unit"]


async def new_unit(client, shop: Shop, *, status: str = "AVAILABLE", priced: bool = True) -> dict:
    spec = {
        "buildingId": shop.building_id,
        "floor": 1,
        "number": f"S{next(_numbers)}",
        "grossArea": "80.00",
        "status": status,
    }
    if priced:
        spec["listPrice"] = 250_000_000
    res = await gql(client, CREATE, {"units": [spec]}, tenant=shop.slug)
    assert res["data"]["createUnits"]["__typename"] == "UnitsPayload", res
    return res["data"]["createUnits"]["units"][0]


DEAL = ("reserved", "subscribed", "contracted", "sold", "delivered")


async def unit_in(client, shop: Shop, status: str) -> dict:
    """A new unit brought to ``status`` the ordinary way (the admin holds for on_hold)."""
    unit = await new_unit(client, shop)
    if status == "planned":
        unit = unit_of(await change(client, shop.slug, unit["id"], "planned"))
    elif status == "on_hold":
        unit = unit_of(await hold(client, shop.slug, unit["id"], minutes=10))
    elif status in DEAL:
        for step in DEAL[: DEAL.index(status) + 1]:
            unit = unit_of(await change(client, shop.slug, unit["id"], step))
    assert unit["status"] == status.upper()
    return unit


def steps(timeline: list[dict]) -> list[tuple]:
    return [(e["kind"], e["fromStatus"], e["toStatus"]) for e in timeline]


async def expire_hold_in_db(engine, tenant: TenantInfo, unit_id: str) -> None:
    """Make the unit's hold run out, as time would, by moving its expiry into the past."""
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            update(Unit)
            .where(Unit.id == uuid.UUID(unit_id))
            .values(hold_expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()


# ---------------------------------------------------------------- 1. the status machine

ALLOWED = sorted((src, dst) for src, targets in TRANSITIONS.items() for dst in targets)


@pytest.mark.parametrize(("src", "dst"), ALLOWED, ids=[f"{s}->{d}" for s, d in ALLOWED])
async def test_every_allowed_transition_succeeds(client, shop, src, dst):
    unit = await unit_in(client, shop, src)
    reason = "buyer withdrew" if (src, dst) in NEEDS_REASON else ""
    if dst == "on_hold":  # holds have their own call
        after = unit_of(await hold(client, shop.slug, unit["id"], minutes=10))
    else:
        after = unit_of(await change(client, shop.slug, unit["id"], dst, reason=reason))
    assert (after["status"], after["standardStatus"]) == (dst.upper(), reso_name(dst))
    assert after["version"] == unit["version"] + 1
    assert ts(after["statusChangedAt"]) >= ts(unit["statusChangedAt"])
    if dst != "on_hold":
        assert (after["heldBy"], after["holdExpiresAt"]) == (None, None)

    stored = await read(client, shop.slug, unit["id"])
    assert {k: stored[k] for k in after} == after
    last = stored["timeline"][-1]
    kind = "hold" if dst == "on_hold" else "status"
    assert (last["kind"], last["fromStatus"], last["toStatus"], last["reason"]) == (
        kind,
        src.upper(),
        dst.upper(),
        reason,
    )


@pytest.mark.parametrize("src", list(TRANSITIONS))
async def test_refused_transitions_are_conflicts_and_change_nothing(client, shop, src):
    unit = await unit_in(client, shop, src)
    before = await read(client, shop.slug, unit["id"])
    targets = {t for t in STATUSES if t not in TRANSITIONS[src]} | MUST_REFUSE[src]
    for dst in sorted(targets - {"on_hold"}):
        # A reason never unlocks a transition the machine refuses.
        result = await change(client, shop.slug, unit["id"], dst, reason="please")
        message = refused(result, "ConflictError", "CONFLICT", "status")
        assert src in message and dst in message, message
    # ON_HOLD is never set through changeUnitStatus, whatever the current status.
    result = await change(client, shop.slug, unit["id"], "on_hold")
    refused(result, "ValidationError", "BAD_USER_INPUT", "status")
    assert await read(client, shop.slug, unit["id"]) == before


@pytest.mark.parametrize("src", ["reserved", "subscribed", "contracted"])
async def test_back_to_available_from_a_deal_needs_a_reason(client, shop, src):
    unit = await unit_in(client, shop, src)
    for reason in ("", "   "):
        result = await change(client, shop.slug, unit["id"], "available", reason=reason)
        refused(result, "ValidationError", "BAD_USER_INPUT", "reason")
    stored = await read(client, shop.slug, unit["id"])
    assert (stored["status"], stored["version"]) == (src.upper(), unit["version"])

    result = await change(client, shop.slug, unit["id"], "available", reason="  loan refused ")
    assert unit_of(result)["status"] == "AVAILABLE"
    last = (await read(client, shop.slug, unit["id"]))["timeline"][-1]
    assert (last["kind"], last["fromStatus"], last["reason"]) == (
        "status",
        src.upper(),
        "loan refused",
    )


async def test_expected_version_mismatch_is_a_conflict(client, shop):
    unit = await new_unit(client, shop)
    v = unit["version"]
    for stale in (v - 1, v + 1):
        result = await change(client, shop.slug, unit["id"], "planned", expectedVersion=stale)
        refused(result, "ConflictError", "CONFLICT", "expectedVersion")
    assert (await read(client, shop.slug, unit["id"]))["version"] == v

    # Two staff read version v; the first change wins, the second is told the unit moved on.
    first = await change(client, shop.slug, unit["id"], "reserved", expectedVersion=v)
    assert unit_of(first)["version"] == v + 1
    second = await change(client, shop.slug, unit["id"], "planned", expectedVersion=v)
    refused(second, "ConflictError", "CONFLICT", "expectedVersion")
    stored = await read(client, shop.slug, unit["id"])
    assert (stored["status"], stored["version"]) == ("RESERVED", v + 1)


async def test_a_unit_without_list_price_cannot_become_available(client, shop):
    unit = await new_unit(client, shop, status="PLANNED", priced=False)
    result = await change(client, shop.slug, unit["id"], "available")
    refused(result, "ValidationError", "BAD_USER_INPUT", "status")
    stored = await read(client, shop.slug, unit["id"])
    assert (stored["status"], stored["version"]) == ("PLANNED", unit["version"])
    # Nor can it be created available.
    res = await gql(
        client,
        CREATE,
        {
            "units": [
                {
                    "buildingId": shop.building_id,
                    "floor": 2,
                    "number": f"S{next(_numbers)}",
                    "grossArea": "50",
                    "status": "AVAILABLE",
                }
            ]
        },
        tenant=shop.slug,
    )
    refused(res["data"]["createUnits"], "ValidationError", "BAD_USER_INPUT", "listPrice")


async def test_agents_cannot_change_status(client, shop, member):
    unit = await new_unit(client, shop)
    _, agent = await member(shop.tenant, ["agent"])
    res = await gql(
        client,
        CHANGE,
        {"input": {"unitId": unit["id"], "status": "PLANNED"}},
        tenant=shop.slug,
        token=agent,
    )
    typed_denial(res, "changeUnitStatus", "FORBIDDEN")
    assert (await read(client, shop.slug, unit["id"]))["status"] == "AVAILABLE"


# ---------------------------------------------------------------- 2. RESO at the edge


async def test_standard_status_follows_reso_for_every_local_status(client, shop):
    """One unit walks through every local status; each read shows the RESO mapping."""
    unit = await new_unit(client, shop, status="PLANNED")
    path = [
        ("planned", None),
        ("available", lambda: change(client, shop.slug, unit["id"], "available")),
        ("on_hold", lambda: hold(client, shop.slug, unit["id"])),
        ("reserved", lambda: reserve(client, shop.slug, unit["id"])),
        *((s, (lambda s=s: change(client, shop.slug, unit["id"], s))) for s in DEAL[1:]),
    ]
    assert [s for s, _ in path] == list(STATUSES)  # every local status is visited
    seen = {}
    for status, step in path:
        if step is not None:
            assert unit_of(await step())["standardStatus"] == reso_name(status)
        stored = await read(client, shop.slug, unit["id"])
        assert stored["status"] == status.upper()
        seen[status] = stored["standardStatus"]
    assert seen == {
        "planned": "COMING_SOON",
        "available": "ACTIVE",
        "on_hold": "HOLD",
        "reserved": "ACTIVE_UNDER_CONTRACT",
        "subscribed": "ACTIVE_UNDER_CONTRACT",
        "contracted": "PENDING",
        "sold": "CLOSED",
        "delivered": "CLOSED",
    }
    assert seen == {s: reso_name(s) for s in STATUSES}


# ---------------------------------------------------------------- 3. holds


async def test_hold_belongs_to_its_agent_and_staff_can_release_it(client, shop, member):
    unit = await new_unit(client, shop)
    uid = unit["id"]
    alice_id, alice = await member(shop.tenant, ["agent"], name="Alice")
    _, bob = await member(shop.tenant, ["agent"], name="Bob")
    manager_id, manager = await member(shop.tenant, ["manager"], name="Manager")

    held = unit_of(await hold(client, shop.slug, uid, alice, minutes=10, clientRef="C-1"))
    assert (held["status"], held["heldBy"]) == ("ON_HOLD", str(alice_id))
    assert ts(held["holdExpiresAt"]) - ts(held["statusChangedAt"]) == timedelta(minutes=10)

    msg = refused(await hold(client, shop.slug, uid, alice), "ConflictError", "CONFLICT", "unitId")
    assert "held by you" in msg
    msg = refused(await hold(client, shop.slug, uid, bob), "ConflictError", "CONFLICT", "unitId")
    assert "another agent" in msg
    msg = refused(await reserve(client, shop.slug, uid, bob), "ConflictError", "CONFLICT", "unitId")
    assert "another agent" in msg
    res = await gql(client, RELEASE, {"id": uid}, tenant=shop.slug, token=bob)
    typed_denial(res, "releaseUnitHold", "FORBIDDEN")
    stored = await read(client, shop.slug, uid)
    assert {k: stored[k] for k in held} == held  # still Alice's hold, same version

    freed = unit_of(await release(client, shop.slug, uid, manager))
    assert (freed["status"], freed["heldBy"], freed["holdExpiresAt"]) == ("AVAILABLE", None, None)
    timeline = (await read(client, shop.slug, uid))["timeline"]
    assert [(e["kind"], e["actorId"]) for e in timeline[1:]] == [
        ("hold", str(alice_id)),
        ("release", str(manager_id)),
    ]
    assert timeline[0]["kind"] == "created"
    assert timeline[1]["data"] == {"client_ref": "C-1"}
    # Releasing a unit that is not on hold is a conflict.
    refused(await release(client, shop.slug, uid, manager), "ConflictError", "CONFLICT", "unitId")

    # Bob can now hold it, and reserve his own hold; a manager may reserve over an agent's hold.
    unit_of(await hold(client, shop.slug, uid, bob))
    assert unit_of(await reserve(client, shop.slug, uid, bob))["status"] == "RESERVED"
    other = await new_unit(client, shop)
    unit_of(await hold(client, shop.slug, other["id"], alice))
    assert unit_of(await reserve(client, shop.slug, other["id"], manager))["status"] == "RESERVED"


async def test_only_available_units_can_be_held(client, shop, member):
    _, agent = await member(shop.tenant, ["agent"])
    for status in ("planned", "reserved", "sold"):
        unit = await unit_in(client, shop, status)
        result = await hold(client, shop.slug, unit["id"], agent)
        assert status in refused(result, "ConflictError", "CONFLICT", "unitId")
        assert (await read(client, shop.slug, unit["id"]))["version"] == unit["version"]


async def test_hold_minutes_are_bounded_by_the_tenant_setting(client, fresh_shop, member):
    shop = fresh_shop
    _, agent = await member(shop.tenant, ["agent"])
    units = [(await new_unit(client, shop))["id"] for _ in range(4)]

    # Default setting: 30 minutes.
    for minutes in (0, -5, 31):
        result = await hold(client, shop.slug, units[0], agent, minutes=minutes)
        refused(result, "ValidationError", "BAD_USER_INPUT", "minutes")
    assert (await read(client, shop.slug, units[0]))["status"] == "AVAILABLE"
    held = unit_of(await hold(client, shop.slug, units[0], agent))  # no minutes: the setting
    assert ts(held["holdExpiresAt"]) - ts(held["statusChangedAt"]) == timedelta(minutes=30)

    # Only an admin changes settings.
    changes = {"changes": [{"key": "inventory.hold_minutes", "value": "90"}]}
    res = await gql(client, SETTINGS, changes, tenant=shop.slug, token=agent)
    typed_denial(res, "updateTenantSettings", "FORBIDDEN")
    res = await gql(client, SETTINGS, changes, tenant=shop.slug)
    assert res["data"]["updateTenantSettings"]["__typename"] == "TenantSettingsPayload", res
    assert {"key": "inventory.hold_minutes", "value": "90"} in (
        res["data"]["updateTenantSettings"]["settings"]
    )

    held = unit_of(await hold(client, shop.slug, units[1], agent, minutes=75))
    assert ts(held["holdExpiresAt"]) - ts(held["statusChangedAt"]) == timedelta(minutes=75)
    result = await hold(client, shop.slug, units[2], agent, minutes=91)
    assert "90" in refused(result, "ValidationError", "BAD_USER_INPUT", "minutes")
    held = unit_of(await hold(client, shop.slug, units[2], agent))
    assert ts(held["holdExpiresAt"]) - ts(held["statusChangedAt"]) == timedelta(minutes=90)

    # Lowering the bound applies at once too.
    changes = {"changes": [{"key": "inventory.hold_minutes", "value": "10"}]}
    res = await gql(client, SETTINGS, changes, tenant=shop.slug)
    assert res["data"]["updateTenantSettings"]["__typename"] == "TenantSettingsPayload", res
    result = await hold(client, shop.slug, units[3], agent, minutes=11)
    refused(result, "ValidationError", "BAD_USER_INPUT", "minutes")
    assert unit_of(await hold(client, shop.slug, units[3], agent, minutes=10))["status"] == (
        "ON_HOLD"
    )


# ---------------------------------------------------------------- 4. hold expiry


@pytest.mark.parametrize("action", ["hold", "reserve"])
async def test_an_expired_hold_gives_way_and_the_timeline_says_so(
    client, shop, member, engine, action
):
    unit = await new_unit(client, shop)
    alice_id, alice = await member(shop.tenant, ["agent"])
    bob_id, bob = await member(shop.tenant, ["agent"])
    unit_of(await hold(client, shop.slug, unit["id"], alice, minutes=5))
    # Not yet expired: Bob is refused.
    refused(await hold(client, shop.slug, unit["id"], bob), "ConflictError", "CONFLICT", "unitId")

    await expire_hold_in_db(engine, shop.tenant, unit["id"])
    if action == "hold":
        after = unit_of(await hold(client, shop.slug, unit["id"], bob))
        assert (after["status"], after["heldBy"]) == ("ON_HOLD", str(bob_id))
        last = ("hold", "AVAILABLE", "ON_HOLD")
    else:
        after = unit_of(await reserve(client, shop.slug, unit["id"], bob))
        assert (after["status"], after["heldBy"]) == ("RESERVED", None)
        last = ("status", "AVAILABLE", "RESERVED")
    assert after["version"] == unit["version"] + 3  # hold, expiry, Bob's change

    timeline = (await read(client, shop.slug, unit["id"]))["timeline"]
    assert steps(timeline) == [
        ("created", None, "AVAILABLE"),
        ("hold", "AVAILABLE", "ON_HOLD"),
        ("hold_expired", "ON_HOLD", "AVAILABLE"),
        last,
    ]
    expired = timeline[2]
    assert expired["actorId"] is None and expired["data"]["held_by"] == str(alice_id)
    assert [e["actorId"] for e in timeline[1::2]] == [str(alice_id), str(bob_id)]


async def test_an_expired_hold_is_recorded_even_when_the_call_is_refused(
    client, shop, member, engine
):
    unit = await new_unit(client, shop)
    _, alice = await member(shop.tenant, ["agent"])
    unit_of(await hold(client, shop.slug, unit["id"], alice, minutes=5))
    await expire_hold_in_db(engine, shop.tenant, unit["id"])
    # Alice's hold is gone: releasing it is a conflict, and the expiry is on record.
    result = await release(client, shop.slug, unit["id"], alice)
    assert "available" in refused(result, "ConflictError", "CONFLICT", "unitId")
    stored = await read(client, shop.slug, unit["id"])
    assert (stored["status"], stored["heldBy"], stored["holdExpiresAt"]) == (
        "AVAILABLE",
        None,
        None,
    )
    assert [e["kind"] for e in stored["timeline"]] == ["created", "hold", "hold_expired"]


async def test_release_job_releases_only_expired_holds_once(
    client, fresh_shop, shop, member, engine
):
    tenant = fresh_shop.tenant
    agent_id, agent = await member(tenant, ["agent"])
    soon, later, free = [(await new_unit(client, fresh_shop))["id"] for _ in range(3)]
    soon_held = unit_of(await hold(client, tenant.slug, soon, agent, minutes=5))
    later_held = unit_of(await hold(client, tenant.slug, later, agent, minutes=25))
    # A hold in another tenant is none of this tenant's job's business.
    _, outsider = await member(shop.tenant, ["agent"])
    elsewhere = await new_unit(client, shop)
    unit_of(await hold(client, shop.slug, elsewhere["id"], outsider, minutes=5))

    db = TenantDatabase(engine)

    async def run_job(now: datetime) -> int:
        async with db.session(tenant) as session:
            count = await service.release_expired_holds(session, now=now)
            await session.commit()
        return count

    async def state(unit_id: str) -> tuple[Unit, list]:
        uid = uuid.UUID(unit_id)
        async with db.session(tenant) as session:
            row = await session.get(Unit, uid)
            events = (await repo.events_by_unit_ids(session, [uid]))[uid]
        return row, events

    in_ten = utcnow() + timedelta(minutes=10)
    assert await run_job(in_ten) == 1
    row, events = await state(soon)
    assert (row.status, row.held_by, row.hold_expires_at) == ("available", None, None)
    assert row.version == soon_held["version"] + 1
    [expired] = [e for e in events if e.kind == "hold_expired"]
    assert (expired.from_status, expired.to_status, expired.actor_id) == (
        "on_hold",
        "available",
        None,
    )
    assert expired.data["held_by"] == str(agent_id)
    assert ts(expired.data["expired_at"]) == ts(soon_held["holdExpiresAt"])
    row, events = await state(later)
    assert (row.status, row.held_by, row.version) == ("on_hold", agent_id, later_held["version"])
    assert [e.kind for e in events] == ["created", "hold"]
    row, events = await state(free)
    assert (row.status, [e.kind for e in events]) == ("available", ["created"])

    # Again: nothing left to release, nothing written.
    assert await run_job(in_ten) == 0
    assert [e.kind for e in (await state(soon))[1]] == ["created", "hold", "hold_expired"]

    # A hold is released at its expiry instant, not before.
    expiry = ts(later_held["holdExpiresAt"])
    assert await run_job(expiry - timedelta(microseconds=1)) == 0
    assert await run_job(expiry) == 1
    assert (await state(later))[0].status == "available"
    assert [e.kind for e in (await state(later))[1]] == ["created", "hold", "hold_expired"]

    # The other tenant's hold was never touched.
    assert (await read(client, shop.slug, elsewhere["id"]))["status"] == "ON_HOLD"
    # The released units are available to anyone again, through the API.
    unit_of(await reserve(client, tenant.slug, soon, agent))


# ---------------------------------------------------------------- 5. exactly one winner


@pytest.fixture(scope="module")
async def race_db(db_url, settings):
    """Sessions that each open their own connection (no pool) and close it when done."""
    engine = make_engine(db_url, settings, poolclass=NullPool)
    yield TenantDatabase(engine)
    await engine.dispose()


async def race(db: TenantDatabase, tenant: TenantInfo, unit_id: uuid.UUID, op) -> tuple:
    """RACE_ATTEMPTS concurrent ``op(session, unit_id, actor_id)``, each in its own session,
    connection and transaction (commit on success), each by a different actor. Returns
    (winners' actors, losers' exceptions, peak number of attempts connected at once)."""
    gate = asyncio.Semaphore(RACE_CONNECTIONS)
    connected = peak = 0

    async def attempt(actor: uuid.UUID):
        nonlocal connected, peak
        async with gate, db.session(tenant) as session:
            await session.connection()
            connected += 1
            peak = max(peak, connected)
            try:
                await op(session, unit_id, actor)
                await session.commit()
                return actor
            except Conflict as exc:
                await session.rollback()
                return exc
            finally:
                connected -= 1

    actors = [uuid.uuid4() for _ in range(RACE_ATTEMPTS)]
    outcomes = await asyncio.gather(*(attempt(a) for a in actors), return_exceptions=True)
    winners = [o for o in outcomes if isinstance(o, uuid.UUID)]
    losers = [o for o in outcomes if not isinstance(o, uuid.UUID)]
    return winners, losers, peak


async def _reserve(session, unit_id, actor):
    await service.reserve_unit(session, unit_id, actor_id=actor, override=False)


async def _hold(session, unit_id, actor):
    await service.hold_unit(session, unit_id, actor_id=actor, minutes=10)


@pytest.mark.parametrize(
    ("op", "status", "kind", "loser_says"),
    [
        (_reserve, "reserved", "status", "cannot be reserved"),
        (_hold, "on_hold", "hold", "held by another agent"),
    ],
    ids=["reserve", "hold"],
)
async def test_exactly_one_of_many_concurrent_attempts_wins(
    client, shop, engine, race_db, op, status, kind, loser_says
):
    for _ in range(RACE_ROUNDS):
        uid = uuid.UUID((await new_unit(client, shop))["id"])
        winners, losers, peak = await race(race_db, shop.tenant, uid, op)
        assert len(winners) == 1, (winners, losers[:3])
        assert len(losers) == RACE_ATTEMPTS - 1
        assert all(isinstance(e, Conflict) for e in losers), [
            repr(e) for e in losers if not isinstance(e, Conflict)
        ][:3]
        assert all(loser_says in e.message and e.field == "unitId" for e in losers)
        assert peak > 10, peak  # the attempts really overlapped

        async with TenantDatabase(engine).session(shop.tenant) as session:
            row = await session.get(Unit, uid)
            events = (await repo.events_by_unit_ids(session, [uid]))[uid]
        assert (row.status, row.version) == (status, 2)
        if status == "on_hold":
            assert row.held_by == winners[0]
        assert [(e.kind, e.to_status, e.actor_id) for e in events[1:]] == [
            (kind, status, winners[0])
        ]


async def test_exactly_one_of_concurrent_http_reservations_wins(client, shop, engine, kit):
    agents = await asyncio.gather(
        *(add_member(engine, kit, shop.tenant, ["agent"]) for _ in range(HTTP_AGENTS))
    )
    for _ in range(2):
        unit = await new_unit(client, shop)
        results = await asyncio.gather(
            *(reserve(client, shop.slug, unit["id"], token) for _, token in agents)
        )
        won = [(a, r) for a, r in zip(agents, results, strict=True) if "unit" in r]
        assert len(won) == 1, [r["__typename"] for r in results]
        for r in results:
            if "unit" not in r:
                refused(r, "ConflictError", "CONFLICT", "unitId")
        [((winner_id, _), payload)] = won
        assert payload["unit"]["status"] == "RESERVED"
        stored = await read(client, shop.slug, unit["id"])
        assert (stored["status"], stored["version"]) == ("RESERVED", 2)
        assert [(e["kind"], e["toStatus"], e["actorId"]) for e in stored["timeline"][1:]] == [
            ("status", "RESERVED", str(winner_id))
        ]


# ---------------------------------------------------------------- 6. tenant isolation


async def test_a_unit_id_of_another_tenant_is_not_found(client, shop, fresh_shop):
    unit = await new_unit(client, shop)
    before = await read(client, shop.slug, unit["id"])
    other = fresh_shop.slug  # its admin has every permission, in its own tenant only
    assert await read(client, other, unit["id"]) is None
    for result in (
        await hold(client, other, unit["id"]),
        await reserve(client, other, unit["id"]),
        await change(client, other, unit["id"], "planned"),
        await release(client, other, unit["id"]),
    ):
        refused(result, "NotFoundError", "NOT_FOUND", "unitId")
    assert await read(client, shop.slug, unit["id"]) == before
    # An id that is not one is simply not found either.
    assert await read(client, other, "not-a-uuid") is None
    refused(await hold(client, other, "not-a-uuid"), "NotFoundError", "NOT_FOUND", "unitId")
