"""Pledges (认筹) without a fee: queue numbers per project (gapless under concurrent
registrations, kept when withdrawn, never given again), one active pledge per client and
project, genuine and padded counted by SQL as showings are done, typed errors, scopes, another
tenant's ids, audit and live events."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from api.payment.models import Payment
from api.sales.models import PledgeQueue
from tenants.sessions import TenantDatabase
from tests.api.client.helpers import audit
from tests.api.sales.helpers import (
    ONE,
    REGISTER,
    WITHDRAW,
    complete,
    listed,
    live_events,
    new_client,
    pledge_rows,
    register,
    registered,
    showing,
    summary,
    withdraw,
)
from tests.api.unit.helpers import inventory
from tests.conftest import gql
from tests.randomness import rng


async def test_concurrent_registrations_get_unique_consecutive_numbers(client, make_tenant, engine):
    tenant = await make_tenant()
    slug = tenant.slug
    one = (await inventory(client, slug, floors=1, per_floor=1))["project"]["id"]
    two = (await inventory(client, slug, floors=1, per_floor=1, project_name="Two"))["project"][
        "id"
    ]
    people = [await new_client(client, slug, f"Client {i}") for i in range(12)]
    # Every client for project one, and half of them for project two, all at once; and the
    # first client a second time for project one (one of its two registrations must lose).
    jobs = [(one, c) for c in people] + [(two, c) for c in people[:6]] + [(one, people[0])]
    rng("concurrent_pledges").shuffle(jobs)
    answers = await asyncio.gather(*(register(client, slug, p, c) for p, c in jobs))
    kinds = sorted(a["__typename"] for a in answers)
    assert kinds == ["ConflictError"] + ["PledgePayload"] * 18, kinds
    [lost] = [a for a in answers if a["__typename"] == "ConflictError"]
    assert (lost["code"], lost["field"]) == ("CONFLICT", "clientId"), lost
    numbers: dict[str, list[int]] = {one: [], two: []}
    for a in answers:
        if a["__typename"] == "PledgePayload":
            numbers[a["pledge"]["project"]["id"]].append(a["pledge"]["queueNumber"])
    assert sorted(numbers[one]) == list(range(1, 13)), numbers
    assert sorted(numbers[two]) == list(range(1, 7)), numbers
    # The refused registration gave its number back: the next one is 13, and the counter says so.
    extra = await new_client(client, slug, "Late")
    assert (await registered(client, slug, one, extra))["queueNumber"] == 13
    async with TenantDatabase(engine).session(tenant) as session:
        last = await session.scalar(
            select(PledgeQueue.last_number).where(PledgeQueue.project_id == uuid.UUID(one))
        )
    assert last == 13
    assert [p["queueNumber"] for p in await listed(client, slug, one)] == list(range(1, 14))


async def test_withdrawn_numbers_are_kept_and_never_given_again(client, make_tenant, engine):
    tenant = await make_tenant()
    slug = tenant.slug
    project = (await inventory(client, slug, floors=1, per_floor=1))["project"]["id"]
    a, b = [await new_client(client, slug, n) for n in ("A", "B")]
    first = await registered(client, slug, project, a)
    second = await registered(client, slug, project, b)
    assert (first["queueNumber"], second["queueNumber"]) == (1, 2)
    assert (first["status"], first["feeStatus"], first["fee"]) == (
        "ACTIVE",
        "NONE",
        {"minorUnits": 0, "currency": "CNY"},
    )
    again = await register(client, slug, project, a)
    assert (again["__typename"], again["code"]) == ("ConflictError", "CONFLICT"), again
    gone = await withdraw(client, slug, first["id"], "changed plans")
    assert gone["__typename"] == "WithdrawPledgePayload", gone
    assert gone["refunded"] == {"minorUnits": 0, "currency": "CNY"}
    assert (gone["pledge"]["status"], gone["pledge"]["withdrawReason"]) == (
        "WITHDRAWN",
        "changed plans",
    )
    assert gone["pledge"]["queueNumber"] == 1 and gone["pledge"]["withdrawnAt"]
    twice = await withdraw(client, slug, first["id"])
    assert (twice["__typename"], twice["field"]) == ("ConflictError", "pledgeId"), twice
    back = await registered(client, slug, project, a)  # a new pledge, a new place
    assert back["queueNumber"] == 3 and back["id"] != first["id"]
    rows = await pledge_rows(engine, tenant)
    assert [(r.queue_number, r.status) for r in rows] == [
        (1, "withdrawn"),
        (2, "active"),
        (3, "active"),
    ]
    active = await listed(client, slug, project, status="ACTIVE")
    assert [p["queueNumber"] for p in active] == [2, 3]
    assert [p["queueNumber"] for p in await listed(client, slug, project, status="WITHDRAWN")] == [
        1
    ]
    # Pages in queue order.
    res = await gql(
        client,
        """query($p: ID!, $after: String) { pledges(projectId: $p, first: 2, after: $after)
        { edges { cursor node { queueNumber } } pageInfo { hasNextPage endCursor } } }""",
        {"p": project},
        tenant=slug,
    )
    page = res["data"]["pledges"]
    assert [e["node"]["queueNumber"] for e in page["edges"]] == [1, 2]
    assert page["pageInfo"]["hasNextPage"]
    res = await gql(
        client,
        "query($p: ID!, $after: String) { pledges(projectId: $p, first: 2, after: $after)"
        " { edges { node { queueNumber } } pageInfo { hasNextPage } } }",
        {"p": project, "after": page["pageInfo"]["endCursor"]},
        tenant=slug,
    )
    assert res["data"]["pledges"]["edges"] == [{"node": {"queueNumber": 3}}]
    assert not res["data"]["pledges"]["pageInfo"]["hasNextPage"]
    bad = await gql(
        client,
        'query($p: ID!) { pledges(projectId: $p, after: "nope") { pageInfo { hasNextPage } } }',
        {"p": project},
        tenant=slug,
    )
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", bad
    # Audited, and seen live.
    actions = [e["action"] for e in await audit(client, slug, targetType="pledge")]
    assert actions.count("sales.pledge.registered") == 3, actions
    assert actions.count("sales.pledge.withdrawn") == 1, actions
    assert await live_events(engine, tenant, first["id"]) == ["pledge.created", "pledge.status"]


async def test_genuine_and_padded_follow_what_the_client_did(client, make_tenant, engine):
    """Genuine: a showing of one of the project's units done, or a paid deposit on one of
    them (or the pledge's fee paid: test_pledge_fees). A showing still scheduled, one of
    another project's units, and a deposit on another project do not count."""
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await inventory(client, slug, floors=1, per_floor=3)
    project, units = inv["project"]["id"], [u["id"] for u in inv["units"]]
    other = await inventory(client, slug, floors=1, per_floor=1, project_name="Elsewhere")
    elsewhere = other["units"][0]["id"]
    shown, scheduled, shown_elsewhere, deposit, nothing = [
        await new_client(client, slug, n) for n in ("shown", "sched", "else", "deposit", "none")
    ]
    await showing(client, slug, shown, units[0], done=True)
    later = await showing(client, slug, scheduled, units[1], done=False)
    await showing(client, slug, shown_elsewhere, elsewhere, done=True)
    async with TenantDatabase(engine).session(tenant) as session:
        for unit, status in ((units[2], "paid"), (elsewhere, "paid"), (units[2], "failed")):
            session.add(
                Payment(
                    kind="deposit",
                    status=status,
                    amount=1_000,
                    stripe_account="acct_x",
                    unit_id=uuid.UUID(unit),
                    client_id=uuid.UUID(deposit if unit == units[2] else nothing),
                )
            )
        await session.commit()
    pledges = {
        c: await registered(client, slug, project, c)
        for c in (shown, scheduled, shown_elsewhere, deposit, nothing)
    }
    assert {c: p["genuine"] for c, p in pledges.items()} == {
        shown: True,
        scheduled: False,
        shown_elsewhere: False,
        deposit: True,
        nothing: False,
    }
    assert await summary(client, slug, project) == {
        "projectId": project,
        "active": 5,
        "genuine": 2,
        "padded": 3,
        "withdrawn": 0,
        "converted": 0,
        "total": 5,
        "lastQueueNumber": 5,
    }
    await complete(client, slug, later)  # the scheduled showing happens
    got = await summary(client, slug, project)
    assert (got["genuine"], got["padded"]) == (3, 2), got
    one = await gql(client, ONE, {"id": pledges[scheduled]["id"]}, tenant=slug)
    assert one["data"]["pledge"]["genuine"] is True
    assert {p["clientId"] for p in await listed(client, slug, project, genuine=False)} == {
        shown_elsewhere,
        nothing,
    }
    await withdraw(client, slug, pledges[nothing]["id"])
    await withdraw(client, slug, pledges[shown]["id"])
    got = await summary(client, slug, project)
    assert (got["active"], got["genuine"], got["padded"], got["withdrawn"], got["total"]) == (
        3,
        2,
        1,
        2,
        5,
    )
    # Another project counts its own (none).
    assert (await summary(client, slug, other["project"]["id"]))["total"] == 0


async def test_bad_input_scopes_and_roles_are_typed_errors(client, make_tenant, member, engine):
    tenant = await make_tenant()
    slug = tenant.slug
    project = (await inventory(client, slug, floors=1, per_floor=1))["project"]["id"]
    _, agent = await member(tenant, ["agent"])
    _, other_agent = await member(tenant, ["agent"])
    mine = await new_client(client, slug, "Mine", token=agent)

    async def refused(token, project_id, client_id, fee, typename, code, field):
        got = await register(client, slug, project_id, client_id, fee, token=token)
        assert (got["__typename"], got.get("code"), got.get("field")) == (typename, code, field), (
            got
        )

    await refused(agent, str(uuid.uuid4()), mine, 0, "NotFoundError", "NOT_FOUND", "projectId")
    await refused(agent, "not-an-id", mine, 0, "NotFoundError", "NOT_FOUND", "projectId")
    await refused(agent, project, str(uuid.uuid4()), 0, "NotFoundError", "NOT_FOUND", "clientId")
    await refused(other_agent, project, mine, 0, "NotFoundError", "NOT_FOUND", "clientId")
    await refused(agent, project, mine, -1, "ValidationError", "BAD_USER_INPUT", "fee")
    await refused(agent, project, mine, 10**13, "ValidationError", "BAD_USER_INPUT", "fee")
    # A fee when the company takes no payments: refused now, not when someone tries to pay.
    await refused(agent, project, mine, 100_000, "ConflictError", "CONFLICT", None)
    too_big = await gql(
        client,
        REGISTER,
        {"input": {"projectId": project, "clientId": mine, "fee": 2**63}},
        tenant=slug,
        token=agent,
    )
    assert too_big["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", too_big
    assert await pledge_rows(engine, tenant) == []  # nothing left by the refusals
    async with TenantDatabase(engine).session(tenant) as session:
        assert await session.scalar(select(func.count()).select_from(PledgeQueue)) == 0

    pledge = await registered(client, slug, project, mine, token=agent)
    assert pledge["agentId"] and pledge["genuine"] is False
    # The other agent sees nothing of it; the agent may not read the counts.
    hidden = await gql(client, ONE, {"id": pledge["id"]}, tenant=slug, token=other_agent)
    assert hidden["data"]["pledge"] is None
    assert await listed(client, slug, project, token=other_agent) == []
    assert (await withdraw(client, slug, pledge["id"], token=other_agent))[
        "__typename"
    ] == "NotFoundError"
    counts = await gql(
        client,
        "query($p: ID!) { pledgeSummary(projectId: $p) { active } }",
        {"p": project},
        tenant=slug,
        token=agent,
    )
    assert counts["errors"][0]["extensions"]["code"] == "FORBIDDEN", counts
    assert await summary(client, slug, str(uuid.uuid4())) is None
    nul = await gql(
        client, WITHDRAW, {"p": pledge["id"], "r": "a\u0000b"}, tenant=slug, token=agent
    )
    assert nul["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", nul
    long = await withdraw(client, slug, pledge["id"], "x" * 301, token=agent)
    assert (long["__typename"], long["field"]) == ("ValidationError", "reason"), long
    no_fee = await gql(
        client,
        "mutation($p: ID!) { startPledgePayment(pledgeId: $p, platform: IOS) { __typename"
        " ... on UserError { code field } } }",
        {"p": pledge["id"]},
        tenant=slug,
        token=agent,
    )
    assert no_fee["data"]["startPledgePayment"] == {
        "__typename": "ConflictError",
        "code": "CONFLICT",
        "field": "pledgeId",
    }
    # A client of the company (owner app) may not pledge for itself through this API.
    _, outsider = await member(tenant, ["client"])
    denied = await register(client, slug, project, mine, token=outsider)
    assert denied["__typename"] == "PermissionDeniedError", denied
    assert (await withdraw(client, slug, pledge["id"], "ok", token=agent))[
        "__typename"
    ] == "WithdrawPledgePayload"


async def test_another_tenants_pledges_are_not_found(client, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    project = (await inventory(client, a.slug, floors=1, per_floor=1))["project"]["id"]
    theirs = await new_client(client, a.slug, "Theirs")
    pledge = await registered(client, a.slug, project, theirs)
    mine = await new_client(client, b.slug, "Mine")
    assert (await gql(client, ONE, {"id": pledge["id"]}, tenant=b.slug))["data"]["pledge"] is None
    assert await listed(client, b.slug, project) == []
    assert await summary(client, b.slug, project) is None
    got = await register(client, b.slug, project, mine)
    assert (got["__typename"], got["field"]) == ("NotFoundError", "projectId"), got
    got = await withdraw(client, b.slug, pledge["id"])
    assert (got["__typename"], got["field"]) == ("NotFoundError", "pledgeId"), got
    still = (await gql(client, ONE, {"id": pledge["id"]}, tenant=a.slug))["data"]["pledge"]
    assert still["status"] == "ACTIVE"
