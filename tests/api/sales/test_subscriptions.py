"""Subscriptions (认购) without money: the price locked from the unit's list price less a
discount, discounts above the company's limit waiting for someone else's approval, the signing
deadline at the end of a day in the company's time zone, extensions, overdue ones, changing
unit (换房), withdrawing (退房), pledges converted, the unit's timeline, concurrent attempts on
one unit (exactly one wins), typed errors and another tenant's ids."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update

from api.sales.models import Subscription
from tenants.sessions import TenantDatabase
from tests.api.client.helpers import audit
from tests.api.sales.helpers import live_events, new_client, pledge_rows, registered, summary
from tests.api.sales.subscription_helpers import (
    SUBSCRIBE,
    WITHDRAW_SUB,
    change_unit,
    decide_discount,
    decide_extension,
    listed_subs,
    one_sub,
    request_extension,
    request_rows,
    reserve,
    same_team,
    set_settings,
    sub_rows,
    subscribe,
    subscribed,
    timeline,
    withdraw_sub,
)
from tests.api.unit.helpers import CHANGE_STATUS, inventory
from tests.conftest import gql

PRICE = 300_000_000  # unit 101's list price: ¥3,000,000.00


def _end_of_day(day, zone: str) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=ZoneInfo(zone))


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _setup(http, make_tenant, *, units=2, **regional):
    tenant = await make_tenant(**regional)
    inv = await inventory(http, tenant.slug, floors=1, per_floor=units)
    return tenant, inv["project"]["id"], [u["id"] for u in inv["units"]]


async def test_subscribing_locks_the_price_starts_the_clock_and_converts_the_pledge(
    client, make_tenant, engine
):
    tenant, project, (unit, _) = await _setup(client, make_tenant)
    slug = tenant.slug
    buyer = await new_client(client, slug, "王先生")
    pledge = await registered(client, slug, project, buyer)
    await reserve(client, slug, unit)
    before = datetime.now(UTC)
    sub = await subscribed(client, slug, unit, buyer, discountAmount=123_456, note="老客户")
    after = datetime.now(UTC)
    assert sub["status"] == "ACTIVE"
    assert (sub["listPrice"], sub["discount"], sub["discountPct"]) == (
        {"minorUnits": PRICE, "currency": "CNY"},
        {"minorUnits": 123_456},
        "0.04",
    )
    assert sub["agreedPrice"] == {
        "minorUnits": PRICE - 123_456,
        "currency": "CNY",
        "amount": "2998765.44",
    }
    # Seven days (the default) after today in Shanghai, to the end of that day.
    shanghai = ZoneInfo("Asia/Shanghai")
    expected = {
        _end_of_day(moment.astimezone(shanghai).date() + timedelta(days=7), "Asia/Shanghai")
        for moment in (before, after)
    }
    assert _instant(sub["signDeadline"]) in expected, sub["signDeadline"]
    assert (sub["overdue"], sub["pledgeId"], sub["depositId"]) == (False, pledge["id"], None)
    assert sub["note"] == "老客户" and sub["requests"] == []
    # The unit is subscribed; its timeline names the subscription.
    unit_now = await timeline(client, slug, unit)
    assert unit_now["status"] == "SUBSCRIBED"
    last = unit_now["timeline"][-1]
    assert (last["kind"], last["fromStatus"], last["toStatus"], last["refId"]) == (
        "status",
        "RESERVED",
        "SUBSCRIBED",
        sub["id"],
    )
    assert last["data"] == {"subscription": "subscribed", "agreed_price": PRICE - 123_456}
    # The client's pledge for the project is converted.
    [row] = await pledge_rows(engine, tenant)
    assert row.status == "converted"
    counts = await summary(client, slug, project)
    assert (counts["active"], counts["converted"]) == (0, 1)
    # Audited; the live outbox has the subscription and the pledge's new status.
    [entry] = await audit(client, slug, action="sales.subscription.created")
    assert entry["targetId"] == sub["id"]
    assert await live_events(engine, tenant, sub["id"]) == ["subscription.created"]
    assert "pledge.status" in await live_events(engine, tenant, pledge["id"])


async def test_the_deadline_is_the_end_of_the_day_in_the_company_time_zone(client, make_tenant):
    tenant, _, (unit, _) = await _setup(client, make_tenant, time_zone="America/New_York")
    slug = tenant.slug
    await set_settings(client, slug, sign_deadline_days=3)
    buyer = await new_client(client, slug, "Ms Doe")
    await reserve(client, slug, unit)
    before = datetime.now(UTC)
    sub = await subscribed(client, slug, unit, buyer)
    after = datetime.now(UTC)
    zone = ZoneInfo("America/New_York")
    expected = {
        _end_of_day(m.astimezone(zone).date() + timedelta(days=3), "America/New_York")
        for m in (before, after)
    }
    deadline = _instant(sub["signDeadline"])
    assert deadline in expected
    local = deadline.astimezone(zone)
    assert (local.hour, local.minute, local.second) == (23, 59, 59)


async def test_a_discount_above_the_limit_waits_for_someone_else(
    client, make_tenant, member, engine
):
    tenant, _, (unit, other) = await _setup(client, make_tenant)
    slug = tenant.slug
    agent_id, agent = await member(tenant, ["agent"])
    manager_id, manager = await member(tenant, ["manager"])
    await same_team(client, slug, agent_id, manager_id)
    buyer = await new_client(client, slug, "Buyer", token=agent)
    await reserve(client, slug, unit)
    # 3% (the default limit) is not above it: no approval.
    await reserve(client, slug, other)
    at_limit = await subscribed(client, slug, other, buyer, agent, discountPercent="3")
    assert (at_limit["status"], at_limit["discount"]) == ("ACTIVE", {"minorUnits": 9_000_000})
    # 3.5%: waits; the unit stays reserved.
    sub = await subscribed(client, slug, unit, buyer, agent, discountPercent="3.5")
    assert (sub["status"], sub["signDeadline"], sub["agreedPrice"]["minorUnits"]) == (
        "PENDING_APPROVAL",
        None,
        PRICE - 10_500_000,
    )
    [req] = sub["requests"]
    assert (req["kind"], req["status"]) == ("DISCOUNT", "PENDING")
    assert req["requestedBy"] == str(agent_id)
    assert (req["listPrice"], req["agreedPrice"]) == (
        {"minorUnits": PRICE},
        {"minorUnits": PRICE - 10_500_000},
    )
    assert (await timeline(client, slug, unit))["status"] == "RESERVED"
    assert (await one_sub(client, slug, sub["id"]))["agreementUrl"] is None
    # An agent may not decide it (no permission); a second subscription of the unit is refused.
    denied = await decide_discount(client, slug, sub["id"], True, agent)
    assert (denied["__typename"], denied["code"]) == ("PermissionDeniedError", "FORBIDDEN")
    again = await subscribe(client, slug, unit, buyer)
    assert (again["__typename"], again["field"]) == ("ConflictError", "unitId"), again
    # The manager approves: the unit is subscribed, the clock starts.
    done = await decide_discount(client, slug, sub["id"], True, manager, note="ok")
    assert done["__typename"] == "SalesSubscriptionPayload", done
    got = done["subscription"]
    assert got["status"] == "ACTIVE" and got["signDeadline"]
    [req] = got["requests"]
    assert (req["status"], req["decidedBy"], req["decisionNote"]) == (
        "APPROVED",
        str(manager_id),
        "ok",
    )
    assert (await timeline(client, slug, unit))["status"] == "SUBSCRIBED"
    twice = await decide_discount(client, slug, sub["id"], True, manager)
    assert (twice["__typename"], twice["field"]) == ("ConflictError", "subscriptionId"), twice
    [entry] = await audit(client, slug, action="sales.subscription.discount_decided")
    assert entry["targetId"] == sub["id"]


async def test_nobody_approves_their_own_discount_and_a_rejection_keeps_the_reservation(
    client, make_tenant, member
):
    tenant, _, (unit, _) = await _setup(client, make_tenant)
    slug = tenant.slug
    _, manager = await member(tenant, ["manager"])
    buyer = await new_client(client, slug, "Buyer", token=manager)
    await reserve(client, slug, unit)
    sub = await subscribed(client, slug, unit, buyer, manager, discountAmount=PRICE // 10)
    assert sub["status"] == "PENDING_APPROVAL"
    own = await decide_discount(client, slug, sub["id"], True, manager)
    assert (own["__typename"], own["code"]) == ("PermissionDeniedError", "FORBIDDEN"), own
    no = await decide_discount(client, slug, sub["id"], False, note="too much")  # the admin
    assert no["__typename"] == "SalesSubscriptionPayload", no
    assert no["subscription"]["status"] == "REJECTED"
    assert no["subscription"]["requests"][0]["status"] == "REJECTED"
    state = await timeline(client, slug, unit)
    assert state["status"] == "RESERVED"
    assert state["timeline"][-1]["data"] == {"step": "discount_rejected"}
    # The reservation stands: a new subscription with a smaller discount goes through.
    again = await subscribed(client, slug, unit, buyer, manager, discountPercent="1.25")
    assert (again["status"], again["discount"]) == ("ACTIVE", {"minorUnits": 3_750_000})
    # A higher limit lets a larger discount through at once.
    await set_settings(client, slug, max_discount_pct="15")
    assert (await withdraw_sub(client, slug, again["id"]))["__typename"] == (
        "WithdrawSubscriptionPayload"
    )
    await reserve(client, slug, unit)
    big = await subscribed(client, slug, unit, buyer, manager, discountPercent="12")
    assert big["status"] == "ACTIVE"


async def test_a_discount_is_stale_when_the_unit_moved_meanwhile(client, make_tenant, member):
    tenant, _, (unit, _) = await _setup(client, make_tenant)
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    buyer = await new_client(client, slug, "Buyer", token=agent)
    await reserve(client, slug, unit)
    sub = await subscribed(client, slug, unit, buyer, agent, discountPercent="5")
    # Staff subscribe the unit by hand (a data fix) meanwhile: the approval applies nothing.
    res = await gql(
        client, CHANGE_STATUS, {"input": {"unitId": unit, "status": "SUBSCRIBED"}}, tenant=slug
    )
    assert res["data"]["changeUnitStatus"]["__typename"] == "UnitPayload", res
    got = await decide_discount(client, slug, sub["id"], True)
    assert got["subscription"]["status"] == "REJECTED", got
    [req] = got["subscription"]["requests"]
    assert req["status"] == "STALE" and "changed" in req["decisionNote"]


async def test_of_concurrent_subscriptions_of_one_unit_exactly_one_wins(
    client, make_tenant, engine
):
    tenant, _, units = await _setup(client, make_tenant, units=3)
    slug = tenant.slug
    buyers = [await new_client(client, slug, f"Buyer {i}") for i in range(8)]
    for u in units:
        await reserve(client, slug, u)
    # Every buyer tries every unit at once; some ask a discount that waits for approval.
    jobs = [
        subscribe(client, slug, u, b, **({"discountPercent": "10"} if i % 3 == 0 else {}))
        for u in units
        for i, b in enumerate(buyers)
    ]
    answers = await asyncio.gather(*jobs)
    won: dict[str, int] = {}
    for a in answers:
        if a["__typename"] == "SalesSubscriptionPayload":
            uid = a["subscription"]["unitId"]
            won[uid] = won.get(uid, 0) + 1
        else:
            assert (a["__typename"], a["code"], a["field"]) == (
                "ConflictError",
                "CONFLICT",
                "unitId",
            ), a
    assert won == {u: 1 for u in units}, won
    rows = await sub_rows(engine, tenant)
    assert sorted(str(r.unit_id) for r in rows) == sorted(units)


async def test_bad_input_is_a_typed_error_and_leaves_nothing(client, make_tenant, engine):
    tenant, _, (unit, free) = await _setup(client, make_tenant)
    slug = tenant.slug
    buyer = await new_client(client, slug, "Buyer")
    await reserve(client, slug, unit)
    cases = [
        ({"discountAmount": -1}, "ValidationError", "discountAmount"),
        ({"discountAmount": PRICE}, "ValidationError", "discountAmount"),
        ({"discountAmount": 2**62}, "ValidationError", "discountAmount"),
        ({"discountPercent": "-0.5"}, "ValidationError", "discountPercent"),
        ({"discountPercent": "100"}, "ValidationError", "discountPercent"),
        ({"discountPercent": "1e6"}, "ValidationError", "discountPercent"),
        ({"discountPercent": "1.234"}, "ValidationError", "discountPercent"),
        ({"discountPercent": "1", "discountAmount": 1}, "ValidationError", "discountAmount"),
        ({"note": "x" * 301}, "ValidationError", "note"),
    ]
    for extra, kind, field in cases:
        got = await subscribe(client, slug, unit, buyer, **extra)
        assert (got["__typename"], got["field"]) == (kind, field), (extra, got)
    # Ids of nothing, malformed ids, a unit not reserved.
    got = await subscribe(client, slug, str(uuid.uuid4()), buyer)
    assert (got["__typename"], got["field"]) == ("NotFoundError", "unitId"), got
    got = await subscribe(client, slug, unit, str(uuid.uuid4()))
    assert (got["__typename"], got["field"]) == ("NotFoundError", "clientId"), got
    got = await subscribe(client, slug, "not-an-id", buyer)
    assert (got["__typename"], got["field"]) == ("NotFoundError", "unitId"), got
    got = await subscribe(client, slug, free, buyer)
    assert (got["__typename"], got["field"]) == ("ConflictError", "unitId"), got
    assert "available" in got["message"]
    # NUL characters and out-of-range Longs are refused before anything runs.
    for extra in ({"note": "a\x00b"}, {"discountAmount": 2**63}):
        res = await gql(
            client,
            SUBSCRIBE,
            {"input": {"unitId": unit, "clientId": buyer, **extra}},
            tenant=slug,
        )
        assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", res
    assert await sub_rows(engine, tenant) == []
    assert (await timeline(client, slug, unit))["status"] == "RESERVED"
    # Then a good one, and bad steps on it.
    sub = await subscribed(client, slug, unit, buyer)
    for days in (0, 31, -1):
        got = await request_extension(client, slug, sub["id"], days)
        assert (got["__typename"], got["field"]) == ("ValidationError", "days"), got
    got = await request_extension(client, slug, sub["id"], 3, reason="")
    assert (got["__typename"], got["field"]) == ("ValidationError", "reason"), got
    got = await withdraw_sub(client, slug, sub["id"], reason="  ")
    assert (got["__typename"], got["field"]) == ("ValidationError", "reason"), got
    res = await gql(client, WITHDRAW_SUB, {"s": sub["id"], "reason": "bye\x00"}, tenant=slug)
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", res
    got = await withdraw_sub(client, slug, str(uuid.uuid4()))
    assert (got["__typename"], got["field"]) == ("NotFoundError", "subscriptionId"), got
    got = await decide_extension(client, slug, str(uuid.uuid4()), True)
    assert (got["__typename"], got["field"]) == ("NotFoundError", "requestId"), got
    assert (await one_sub(client, slug, sub["id"]))["status"] == "ACTIVE"


async def test_extensions_are_decided_by_role_and_overdue_ones_are_listed(
    client, make_tenant, member, engine
):
    tenant, _, (unit, other) = await _setup(client, make_tenant)
    slug = tenant.slug
    agent_id, agent = await member(tenant, ["agent"])
    manager_id, manager = await member(tenant, ["manager"])
    await same_team(client, slug, agent_id, manager_id)
    buyer = await new_client(client, slug, "Buyer", token=agent)
    await reserve(client, slug, unit)
    await reserve(client, slug, other)
    sub = await subscribed(client, slug, unit, buyer, agent)
    fresh = await subscribed(client, slug, other, buyer, agent)
    # The deadline passed (set back in the database: a subscription made 8 days ago).
    shanghai = ZoneInfo("Asia/Shanghai")
    past = _end_of_day(datetime.now(shanghai).date() - timedelta(days=1), "Asia/Shanghai")
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            update(Subscription)
            .where(Subscription.id == uuid.UUID(sub["id"]))
            .values(sign_deadline=past)
        )
        await session.commit()
    now = await one_sub(client, slug, sub["id"], agent)
    assert (now["overdue"], _instant(now["signDeadline"])) == (True, past)
    assert [s["id"] for s in await listed_subs(client, slug, agent, overdue=True)] == [sub["id"]]
    assert [s["id"] for s in await listed_subs(client, slug, agent, overdue=False)] == [fresh["id"]]
    # The agent asks for 5 more days; one request waits at a time.
    asked = await request_extension(client, slug, sub["id"], 5, token=agent)
    assert asked["__typename"] == "SubscriptionRequestPayload", asked
    req = asked["request"]
    assert (req["kind"], req["status"], req["days"], req["requestedBy"]) == (
        "EXTENSION",
        "PENDING",
        5,
        str(agent_id),
    )
    dup = await request_extension(client, slug, sub["id"], 2, token=agent)
    assert (dup["__typename"], dup["field"]) == ("ConflictError", "subscriptionId"), dup
    # The agent cannot decide (no permission); the manager approves.
    denied = await decide_extension(client, slug, req["id"], True, agent)
    assert (denied["__typename"], denied["code"]) == ("PermissionDeniedError", "FORBIDDEN")
    done = await decide_extension(client, slug, req["id"], True, manager)
    assert done["__typename"] == "SubscriptionRequestPayload", done
    assert done["request"]["status"] == "APPROVED"
    moved = _instant(done["subscription"]["signDeadline"])
    assert moved == _end_of_day(past.date() + timedelta(days=5), "Asia/Shanghai")
    assert done["subscription"]["overdue"] is False
    assert await listed_subs(client, slug, agent, overdue=True) == []
    again = await decide_extension(client, slug, req["id"], True, manager)
    assert (again["__typename"], again["field"]) == ("ConflictError", "requestId"), again
    # A manager's own request waits for someone else.
    own = await request_extension(client, slug, sub["id"], 1, token=manager)
    mine = await decide_extension(client, slug, own["request"]["id"], True, manager)
    assert (mine["__typename"], mine["code"]) == ("PermissionDeniedError", "FORBIDDEN"), mine
    no = await decide_extension(client, slug, own["request"]["id"], False)  # the admin
    assert no["request"]["status"] == "REJECTED"
    assert _instant(no["subscription"]["signDeadline"]) == moved
    step = (await timeline(client, slug, unit))["timeline"][-1]
    assert (step["kind"], step["data"]["step"], step["data"]["days"]) == (
        "subscription",
        "extended",
        5,
    )


async def test_changing_unit_moves_the_subscription_and_locks_the_price_again(
    client, make_tenant, member, engine
):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await inventory(client, slug, floors=2, per_floor=2)
    a, b, c, d = [u["id"] for u in inv["units"]]  # 101, 102 at PRICE; 201, 202 at PRICE + 1,000,000
    elsewhere = (await inventory(client, slug, floors=1, per_floor=1, project_name="Two"))["units"][
        0
    ]["id"]
    _, agent = await member(tenant, ["agent"])
    buyer = await new_client(client, slug, "Buyer", token=agent)
    await reserve(client, slug, a)
    await reserve(client, slug, b)
    sub = await subscribed(client, slug, a, buyer, agent, discountPercent="2")
    deadline = sub["signDeadline"]
    # Refused: another project's unit, a reserved unit, the same unit, no reason.
    got = await change_unit(client, slug, sub["id"], elsewhere, token=agent)
    assert (got["__typename"], got["field"]) == ("ValidationError", "unitId"), got
    got = await change_unit(client, slug, sub["id"], b, token=agent)
    assert (got["__typename"], got["field"]) == ("ConflictError", "unitId"), got
    got = await change_unit(client, slug, sub["id"], a, token=agent)
    assert (got["__typename"], got["field"]) == ("ValidationError", "unitId"), got
    got = await change_unit(client, slug, sub["id"], c, reason="", token=agent)
    assert (got["__typename"], got["field"]) == ("ValidationError", "reason"), got
    assert (await timeline(client, slug, a))["status"] == "SUBSCRIBED"
    # To unit 201 with 1%: within the limit, at once.
    got = await change_unit(client, slug, sub["id"], c, reason="想要高楼层", discountPercent="1")
    assert got["__typename"] == "SalesSubscriptionPayload", got
    moved = got["subscription"]
    assert (moved["unitId"], moved["status"], moved["signDeadline"]) == (c, "ACTIVE", deadline)
    assert (moved["listPrice"]["minorUnits"], moved["agreedPrice"]["minorUnits"]) == (
        PRICE + 1_000_000,
        (PRICE + 1_000_000) * 99 // 100,
    )
    old, new = await timeline(client, slug, a), await timeline(client, slug, c)
    assert old["status"] == "AVAILABLE" and new["status"] == "SUBSCRIBED"
    out = old["timeline"][-1]
    assert (out["fromStatus"], out["toStatus"], out["reason"], out["refId"]) == (
        "SUBSCRIBED",
        "AVAILABLE",
        "想要高楼层",
        sub["id"],
    )
    assert out["data"] == {"subscription": "changed_out", "to_unit": c}
    steps = [(e["fromStatus"], e["toStatus"]) for e in new["timeline"][-2:]]
    assert steps == [("AVAILABLE", "RESERVED"), ("RESERVED", "SUBSCRIBED")]
    # To unit 202 with 8%: waits for approval again, the new unit reserved meanwhile.
    got = await change_unit(client, slug, sub["id"], d, discountPercent="8", token=agent)
    waiting = got["subscription"]
    assert (waiting["unitId"], waiting["status"]) == (d, "PENDING_APPROVAL"), got
    assert (await timeline(client, slug, c))["status"] == "AVAILABLE"
    assert (await timeline(client, slug, d))["status"] == "RESERVED"
    again = await change_unit(client, slug, sub["id"], a, token=agent)
    assert (again["__typename"], again["field"]) == ("ConflictError", "subscriptionId"), again
    ok = await decide_discount(client, slug, sub["id"], True)
    assert ok["subscription"]["status"] == "ACTIVE"
    assert _instant(ok["subscription"]["signDeadline"]) == _instant(deadline)
    assert (await timeline(client, slug, d))["status"] == "SUBSCRIBED"
    [entry, _] = await audit(client, slug, action="sales.subscription.unit_changed")
    assert entry["targetId"] == sub["id"]
    kinds = await live_events(engine, tenant, sub["id"])
    assert kinds[0] == "subscription.created" and "subscription.unit" in kinds, kinds


async def test_withdrawing_puts_the_unit_back_on_sale(client, make_tenant, member):
    tenant, project, (unit, pending_unit) = await _setup(client, make_tenant)
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    buyer = await new_client(client, slug, "Buyer", token=agent)
    await reserve(client, slug, unit)
    await reserve(client, slug, pending_unit)
    sub = await subscribed(client, slug, unit, buyer, agent)
    # The unit's generic status change may not undo the subscription behind its back.
    res = await gql(
        client,
        CHANGE_STATUS,
        {"input": {"unitId": unit, "status": "AVAILABLE", "reason": "oops"}},
        tenant=slug,
    )
    got = res["data"]["changeUnitStatus"]
    assert (got["__typename"], got["field"]) == ("ConflictError", "status"), got
    gone = await withdraw_sub(client, slug, sub["id"], "资金不足", token=agent)
    assert gone["__typename"] == "WithdrawSubscriptionPayload", gone
    assert gone["refunded"] == {"minorUnits": 0, "currency": "CNY"}
    s = gone["subscription"]
    assert (s["status"], s["withdrawReason"], s["overdue"]) == ("WITHDRAWN", "资金不足", False)
    assert s["withdrawnAt"]
    state = await timeline(client, slug, unit)
    assert state["status"] == "AVAILABLE"
    last = state["timeline"][-1]
    assert (last["fromStatus"], last["toStatus"], last["reason"], last["data"]) == (
        "SUBSCRIBED",
        "AVAILABLE",
        "资金不足",
        {"subscription": "withdrawn"},
    )
    twice = await withdraw_sub(client, slug, sub["id"], token=agent)
    assert (twice["__typename"], twice["field"]) == ("ConflictError", "subscriptionId"), twice
    # A pending one is withdrawn too: its request is canceled, the reservation ends.
    waiting = await subscribed(client, slug, pending_unit, buyer, agent, discountPercent="9")
    gone = await withdraw_sub(client, slug, waiting["id"], token=agent)
    assert gone["subscription"]["requests"][0]["status"] == "CANCELED", gone
    assert (await timeline(client, slug, pending_unit))["status"] == "AVAILABLE"
    # The unit sells again.
    await reserve(client, slug, unit)
    back = await subscribed(client, slug, unit, buyer, agent)
    assert back["status"] == "ACTIVE" and back["id"] != sub["id"]
    assert [s["status"] for s in await listed_subs(client, slug, agent, p=project)] == [
        "ACTIVE",
        "WITHDRAWN",
        "WITHDRAWN",
    ]
    assert [s["id"] for s in await listed_subs(client, slug, agent, status="WITHDRAWN")] == [
        waiting["id"],
        sub["id"],
    ]


async def test_scopes_and_another_tenants_ids(client, make_tenant, member, engine):
    a, b = await make_tenant(), await make_tenant()
    inv = await inventory(client, a.slug, floors=1, per_floor=2)
    unit, spare = [u["id"] for u in inv["units"]]
    theirs = await new_client(client, a.slug, "Theirs")
    await reserve(client, a.slug, unit)
    sub = await subscribed(client, a.slug, unit, theirs)
    mine = await new_client(client, b.slug, "Mine")
    assert await one_sub(client, b.slug, sub["id"]) is None
    assert await listed_subs(client, b.slug) == []
    got = await subscribe(client, b.slug, unit, mine)
    assert (got["__typename"], got["field"]) == ("NotFoundError", "unitId"), got
    for step in (
        withdraw_sub(client, b.slug, sub["id"]),
        change_unit(client, b.slug, sub["id"], spare),
        request_extension(client, b.slug, sub["id"], 2),
        decide_discount(client, b.slug, sub["id"], True),
    ):
        got = await step
        assert (got["__typename"], got["field"]) == ("NotFoundError", "subscriptionId"), got
    asked = await request_extension(client, a.slug, sub["id"], 2)
    got = await decide_extension(client, b.slug, asked["request"]["id"], True)
    assert (got["__typename"], got["field"]) == ("NotFoundError", "requestId"), got
    # Another agent of the same company does not see a client that is not theirs.
    _, stranger = await member(a, ["agent"])
    assert await one_sub(client, a.slug, sub["id"], stranger) is None
    got = await withdraw_sub(client, a.slug, sub["id"], token=stranger)
    assert (got["__typename"], got["field"]) == ("NotFoundError", "subscriptionId"), got
    assert (await one_sub(client, a.slug, sub["id"]))["status"] == "ACTIVE"
    rows = await request_rows(engine, a)
    assert [(r.kind, r.status) for r in rows] == [("extension", "pending")]


async def test_overdue_subscriptions_expire_only_when_the_company_asks(
    client, make_tenant, engine, settings
):
    from api.sales import subscription_service

    tenant, _, (late, fine) = await _setup(client, make_tenant)
    slug = tenant.slug
    buyer = await new_client(client, slug, "Buyer")
    for u in (late, fine):
        await reserve(client, slug, u)
    overdue_sub = await subscribed(client, slug, late, buyer)
    on_time = await subscribed(client, slug, fine, buyer)
    asked = await request_extension(client, slug, overdue_sub["id"], 3)
    past = _end_of_day(datetime.now(UTC).date() - timedelta(days=2), "Asia/Shanghai")
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            update(Subscription)
            .where(Subscription.id == uuid.UUID(overdue_sub["id"]))
            .values(sign_deadline=past)
        )
        await session.commit()

    async def run_job() -> int:
        async with TenantDatabase(engine).session(tenant) as session:
            n = await subscription_service.expire_overdue(session, settings)
            await session.commit()
            return n

    assert await run_job() == 0  # the default: keep it, shown as overdue
    assert (await one_sub(client, slug, overdue_sub["id"]))["status"] == "ACTIVE"
    await set_settings(client, slug, expire_overdue="expire")
    assert await run_job() == 1
    assert await run_job() == 0  # once
    gone = await one_sub(client, slug, overdue_sub["id"])
    assert (gone["status"], gone["overdue"], gone["withdrawnAt"]) == ("EXPIRED", False, None)
    [req] = gone["requests"]
    assert (req["id"], req["status"]) == (asked["request"]["id"], "CANCELED")
    state = await timeline(client, slug, late)
    assert state["status"] == "AVAILABLE"
    last = state["timeline"][-1]
    assert (last["reason"], last["data"], last["refId"]) == (
        subscription_service.LAPSED,
        {"subscription": "expired"},
        overdue_sub["id"],
    )
    assert (await one_sub(client, slug, on_time["id"]))["status"] == "ACTIVE"
    assert [s["id"] for s in await listed_subs(client, slug, status="EXPIRED")] == [
        overdue_sub["id"]
    ]
