"""Lead routing over real HTTP: rules by source, district, budget and language; round-robin
within a team (also under concurrent leads); paused agents skipped; fallback teams; offers to
claim with a timeout, then the next team, then the pool; every step's reason recorded and
readable; notifications to the agent or the team; permissions and validation."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from api.client import tasks
from api.client.models import Client as ClientRow
from api.notify.models import Notification
from tenants.sessions import TenantDatabase
from tests.api.client.helpers import join, payload, team
from tests.conftest import TOKENS, gql

ROUTE = """
mutation($input: LeadRouteInput!) {
  createLeadRoute(input: $input) {
    __typename
    ... on LeadRoutePayload { route { id name mode teamId agentId fallbackTeamIds version } }
    ... on UserError { code message field }
  }
}
"""
UPDATE_ROUTE = """
mutation($id: ID!, $input: LeadRouteInput!, $v: Int) {
  updateLeadRoute(id: $id, input: $input, expectedVersion: $v) {
    __typename
    ... on LeadRoutePayload { route { id name active version } }
    ... on UserError { code message field }
  }
}
"""
ROUTES = "{ leadRoutes { id name position } }"
LEAD = """
mutation($input: CreateClientInput!) {
  createClient(input: $input) {
    __typename
    ... on ClientPayload { client { id ownerId offerTeamId offerExpiresAt } }
    ... on UserError { code message field }
  }
}
"""
WHY = """
query($id: ID!) {
  client(id: $id) { id ownerId offerTeamId assignments { fromOwner toOwner reason detail } }
}
"""
OFFERS = "{ myLeadOffers { id name offerTeamId offerExpiresAt } }"
POOL = "{ clientPool { id } }"
CLAIM = """
mutation($c: ID!) {
  claimClient(clientId: $c) {
    __typename
    ... on ClientPayload { client { id ownerId offerTeamId } }
    ... on UserError { code message field }
  }
}
"""
PAUSE_ME = """
mutation($p: Boolean!, $until: DateTime, $r: String! = "") {
  setMyRoutingPause(paused: $p, until: $until, reason: $r) {
    __typename
    ... on RoutingAvailability { accountId paused pausedUntil reason }
    ... on UserError { code message field }
  }
}
"""
PAUSE_AGENT = """
mutation($a: ID!, $p: Boolean!) {
  setAgentRoutingPause(agentId: $a, paused: $p) {
    __typename
    ... on RoutingAvailability { accountId paused }
    ... on UserError { code message field }
  }
}
"""
ASSIGN = """
mutation($c: ID!, $a: ID!, $n: String! = "") {
  assignClient(clientId: $c, agentId: $a, note: $n) {
    __typename
    ... on ClientPayload { client { id ownerId } }
    ... on UserError { code message field }
  }
}
"""
ROUTE_CLIENT = """
mutation($c: ID!) {
  routeClient(clientId: $c) {
    __typename ... on ClientPayload { client { id ownerId } } ... on UserError { code field }
  }
}
"""

_phones = iter(range(10_000_000, 99_999_999))


def phone() -> str:
    return f"139{next(_phones)}"


async def rule(client, slug, token=None, expect="LeadRoutePayload", **fields) -> dict:
    res = await gql(client, ROUTE, {"input": fields}, tenant=slug, token=token or TOKENS[slug])
    return payload(res, "createLeadRoute", expect)


async def lead(client, slug, token=None, **fields) -> dict:
    fields.setdefault("name", "Lead")
    fields.setdefault("phone", phone())
    fields["route"] = True
    res = await gql(client, LEAD, {"input": fields}, tenant=slug, token=token or TOKENS[slug])
    return payload(res, "createClient", "ClientPayload")["client"]


async def why(client, slug, client_id) -> dict:
    res = await gql(client, WHY, {"id": client_id}, tenant=slug)
    assert "errors" not in res, res
    return res["data"]["client"]


async def pause(client, slug, token, paused=True, until=None, reason="") -> dict:
    variables = {"p": paused, "until": until, "r": reason}
    res = await gql(client, PAUSE_ME, variables, tenant=slug, token=token)
    return payload(res, "setMyRoutingPause", "RoutingAvailability")


async def claim(client, slug, token, client_id) -> dict:
    res = await gql(client, CLAIM, {"c": client_id}, tenant=slug, token=token)
    assert "errors" not in res, res
    return res["data"]["claimClient"]


async def expire(engine, tenant, client_id) -> int:
    """The offer's time runs out; the sweep moves it on."""
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            update(ClientRow)
            .where(ClientRow.id == uuid.UUID(client_id), ClientRow.offer_team_id.is_not(None))
            .values(offer_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        n = await tasks.expire_lead_offers.work(session, tenant)
        await session.commit()
    return n


async def notified(engine, tenant, template) -> list[uuid.UUID]:
    async with TenantDatabase(engine).session(tenant) as session:
        rows = await session.scalars(
            select(Notification.account_id)
            .where(Notification.template == template)
            .order_by(Notification.created_at)
        )
        return list(rows)


async def setup_teams(client, tenant, member, sizes: dict[str, int]):
    """A company with one team per name, each with its agents: ({name: team id},
    {name: [(account id, token)]})."""
    slug = tenant.slug
    company = await team(client, slug, "Acme", "company")
    office = await team(client, slug, "Office", "office", company)
    teams, agents = {}, {}
    for name, size in sizes.items():
        teams[name] = await team(client, slug, name, "team", office)
        agents[name] = [await member(tenant, ["agent"]) for _ in range(size)]
        for account_id, _ in agents[name]:
            await join(client, slug, teams[name], account_id)
    return teams, agents


# ---------------------------------------------------------------- rules and reasons


async def test_rules_by_source_district_budget_language_with_round_robin_and_reasons(
    client, engine, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    teams, agents = await setup_teams(
        client, tenant, member, {"Portal": 2, "Pudong": 1, "Luxury": 1, "Cantonese": 1}
    )
    [(solo, _)] = agents["Pudong"]
    (p1, _), (p2, _) = agents["Portal"]
    await rule(
        client, slug, name="Cantonese", position=0, languages=["yue"], teamId=teams["Cantonese"]
    )
    await rule(
        client, slug, name="Luxury", position=1, budgetMin=1_000_000_000, teamId=teams["Luxury"]
    )
    await rule(
        client, slug, name="Pudong", position=2, districts=["Pudong"], teamId=teams["Pudong"]
    )
    await rule(client, slug, name="Portal", position=3, sources=["PORTAL"], teamId=teams["Portal"])
    res = await gql(client, ROUTES, tenant=slug)
    assert [r["name"] for r in res["data"]["leadRoutes"]] == [
        "Cantonese",
        "Luxury",
        "Pudong",
        "Portal",
    ]

    # Language first (position 0), whatever else matches.
    c = await lead(client, slug, language="yue", source="PORTAL", needs={"districts": ["Pudong"]})
    assert c["ownerId"] == str(agents["Cantonese"][0][0])
    # Budget: a range overlapping the rule's minimum (10 M in minor units).
    c = await lead(client, slug, needs={"budgetMin": 800_000_000, "budgetMax": 1_200_000_000})
    assert c["ownerId"] == str(agents["Luxury"][0][0])
    got = await why(client, slug, c["id"])
    assert [a["reason"] for a in got["assignments"]] == ["created", "routed"]
    assert got["assignments"][1]["detail"] == (
        "rule “Luxury” (budget 8000000-12000000): round-robin in team Luxury"
    )
    # Below the rule's budget: not luxury; district Pudong.
    c = await lead(client, slug, needs={"budgetMax": 500_000_000, "districts": ["Xuhui", "Pudong"]})
    assert c["ownerId"] == str(solo)
    detail = (await why(client, slug, c["id"]))["assignments"][1]["detail"]
    assert detail == "rule “Pudong” (district Pudong): round-robin in team Pudong"

    # Source portal: round-robin between the two portal agents, fairly.
    owners = [(await lead(client, slug, source="PORTAL"))["ownerId"] for _ in range(4)]
    assert Counter(owners) == {str(p1): 2, str(p2): 2}
    assert owners[0] != owners[1] and owners[2] != owners[3]

    # Nothing matches: the pool, and the reason says so.
    c = await lead(client, slug, source="WALK_IN")
    assert c["ownerId"] is None
    got = await why(client, slug, c["id"])
    assert got["assignments"][-1] == {
        "fromOwner": None,
        "toOwner": None,
        "reason": "unrouted",
        "detail": "no routing rule matched",
    }
    assert c["id"] in {
        x["id"] for x in (await gql(client, POOL, tenant=slug))["data"]["clientPool"]
    }

    # The agents were told (one lead.assigned each per lead).
    told = Counter(await notified(engine, tenant, "lead.assigned"))
    assert told[p1] == 2 and told[p2] == 2 and told[solo] == 1


async def test_paused_agents_are_skipped_then_fallbacks_then_the_pool(
    client, engine, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    teams, agents = await setup_teams(client, tenant, member, {"Main": 2, "Backup": 1})
    (m1, t1), (m2, t2) = agents["Main"]
    [(b1, tb1)] = agents["Backup"]
    await rule(client, slug, name="All", teamId=teams["Main"], fallbackTeamIds=[teams["Backup"]])

    got = await pause(client, slug, t1, reason="on leave")
    assert (got["paused"], got["reason"]) == (True, "on leave")
    owners = {(await lead(client, slug))["ownerId"] for _ in range(3)}
    assert owners == {str(m2)}  # m1 paused: skipped every time

    # Everyone in Main paused: the fallback team, and the reason names what was skipped.
    await pause(client, slug, t2)
    c = await lead(client, slug)
    assert c["ownerId"] == str(b1)
    detail = (await why(client, slug, c["id"]))["assignments"][-1]["detail"]
    assert detail == (
        "rule “All” (every lead): round-robin in fallback team Backup "
        "(skipped: team Main: nobody available)"
    )

    # A manager pauses the backup agent too: nobody anywhere, so the pool.
    res = await gql(client, PAUSE_AGENT, {"a": str(b1), "p": True}, tenant=slug)
    assert payload(res, "setAgentRoutingPause", "RoutingAvailability")["paused"] is True
    c = await lead(client, slug)
    assert c["ownerId"] is None
    last = (await why(client, slug, c["id"]))["assignments"][-1]
    assert last["reason"] == "unrouted"
    assert "nobody to give it to" in last["detail"] and "fallback team Backup" in last["detail"]

    # A pause that ended (until in the past is refused; one ending soon, then moved back).
    bad = await gql(
        client, PAUSE_ME, {"p": True, "until": "2020-01-01T00:00:00+00:00"}, tenant=slug, token=t1
    )
    assert bad["data"]["setMyRoutingPause"]["field"] == "until"
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert (await pause(client, slug, t1, until=soon))["pausedUntil"] is not None
    from api.client.models import AgentRouting

    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            update(AgentRouting)
            .where(AgentRouting.account_id == m1)
            .values(paused_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    assert (await lead(client, slug))["ownerId"] == str(m1)  # the pause ended by itself
    # An agent can't pause another agent (lead.route), nor configure rules.
    res = await gql(client, PAUSE_AGENT, {"a": str(m1), "p": True}, tenant=slug, token=tb1)
    assert payload(res, "setAgentRoutingPause", "PermissionDeniedError")
    res = await gql(
        client, ROUTE, {"input": {"name": "x", "teamId": teams["Main"]}}, tenant=slug, token=tb1
    )
    assert payload(res, "createLeadRoute", "PermissionDeniedError")


async def test_concurrent_leads_are_shared_evenly_round_robin(client, make_tenant, member):
    """Twelve leads routed at once to a team of three: four each (a transaction lock per
    team; without it several requests would read the same longest-waiting agent)."""
    tenant = await make_tenant()
    slug = tenant.slug
    teams, agents = await setup_teams(client, tenant, member, {"Crowd": 3})
    await rule(client, slug, name="All", teamId=teams["Crowd"])
    got = await asyncio.gather(*(lead(client, slug, name=f"L{i}") for i in range(12)))
    assert Counter(c["ownerId"] for c in got) == {str(a): 4 for a, _ in agents["Crowd"]}


# ---------------------------------------------------------------- offers to claim


async def test_offer_claim_timeout_fallback_then_pool(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    teams, agents = await setup_teams(client, tenant, member, {"First": 2, "Second": 1})
    (f1, tf1), (f2, tf2) = agents["First"]
    [(s1, ts1)] = agents["Second"]
    await rule(
        client,
        slug,
        name="Claims",
        mode="CLAIM",
        claimMinutes=10,
        teamId=teams["First"],
        fallbackTeamIds=[teams["Second"]],
    )

    c = await lead(client, slug, name="Wang")
    assert (c["ownerId"], c["offerTeamId"]) == (None, teams["First"])
    assert sorted(await notified(engine, tenant, "lead.offered")) == sorted([f1, f2])
    # Offered: First's members see it, Second's don't; it's not in the pool.
    for token, seen in ((tf1, True), (tf2, True), (ts1, False)):
        offers = (await gql(client, OFFERS, tenant=slug, token=token))["data"]["myLeadOffers"]
        assert (c["id"] in {o["id"] for o in offers}) is seen
    assert c["id"] not in {
        x["id"] for x in (await gql(client, POOL, tenant=slug))["data"]["clientPool"]
    }
    got = await claim(client, slug, ts1, c["id"])
    assert (got["__typename"], got["field"]) == ("ConflictError", "clientId")

    # Nobody claims in time: offered to Second (notified), then nobody again: the pool.
    assert await expire(engine, tenant, c["id"]) == 1
    state = await why(client, slug, c["id"])
    assert (state["ownerId"], state["offerTeamId"]) == (None, teams["Second"])
    assert (await notified(engine, tenant, "lead.offered"))[-1] == s1
    assert state["assignments"][-1]["detail"] == (
        "rule “Claims”: offered to fallback team Second for 10 min "
        "(skipped: nobody in First claimed it within 10 min)"
    )
    got = await claim(client, slug, tf1, c["id"])  # First's turn is over
    assert got["__typename"] == "ConflictError", got
    assert await expire(engine, tenant, c["id"]) == 1
    state = await why(client, slug, c["id"])
    assert (state["ownerId"], state["offerTeamId"]) == (None, None)
    assert state["assignments"][-1]["reason"] == "unclaimed"
    assert c["id"] in {
        x["id"] for x in (await gql(client, POOL, tenant=slug))["data"]["clientPool"]
    }
    assert [a["reason"] for a in state["assignments"]] == [
        "created",
        "offered",
        "offered",
        "unclaimed",
    ]

    # Another lead: the first of First's members to claim gets it; the other is too late.
    d = await lead(client, slug, name="Li")
    first, second = await asyncio.gather(
        claim(client, slug, tf1, d["id"]), claim(client, slug, tf2, d["id"])
    )
    kinds = sorted([first["__typename"], second["__typename"]])
    assert kinds == ["ClientPayload", "ConflictError"], (first, second)
    winner = first if first["__typename"] == "ClientPayload" else second
    assert winner["client"]["offerTeamId"] is None
    state = await why(client, slug, d["id"])
    assert state["assignments"][-1]["reason"] == "claimed"
    assert state["assignments"][-1]["detail"] == "claimed from the offer to First"
    assert await expire(engine, tenant, d["id"]) == 0  # claimed: nothing to expire


async def test_manager_assigns_and_routes_within_scope(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    teams, agents = await setup_teams(client, tenant, member, {"North": 1, "South": 1})
    [(n1, tn1)] = agents["North"]
    [(s1, _)] = agents["South"]
    manager_id, manager = await member(tenant, ["manager"])
    await join(client, slug, teams["North"], manager_id)
    c = await lead(client, slug, token=manager, name="Zhao")  # no rule: the pool
    assert c["ownerId"] is None

    res = await gql(client, ASSIGN, {"c": c["id"], "a": str(s1)}, tenant=slug, token=manager)
    assert payload(res, "assignClient", "NotFoundError")["field"] == "agentId"  # not in scope
    res = await gql(
        client,
        ASSIGN,
        {"c": c["id"], "a": str(n1), "n": "speaks Hakka"},
        tenant=slug,
        token=manager,
    )
    assert payload(res, "assignClient", "ClientPayload")["client"]["ownerId"] == str(n1)
    last = (await why(client, slug, c["id"]))["assignments"][-1]
    assert (last["reason"], last["detail"], last["toOwner"]) == (
        "assigned",
        "speaks Hakka",
        str(n1),
    )
    assert await notified(engine, tenant, "lead.assigned") == [n1]
    res = await gql(client, ASSIGN, {"c": c["id"], "a": str(n1)}, tenant=slug, token=manager)
    assert payload(res, "assignClient", "ConflictError")["field"] == "agentId"
    # An agent can't assign.
    res = await gql(client, ASSIGN, {"c": c["id"], "a": str(n1)}, tenant=slug, token=tn1)
    assert payload(res, "assignClient", "PermissionDeniedError")

    # routeClient: a pool client routed by a rule added later.
    d = await lead(client, slug, name="Qian")
    assert d["ownerId"] is None
    await rule(client, slug, name="South", teamId=teams["South"])
    res = await gql(client, ROUTE_CLIENT, {"c": d["id"]}, tenant=slug)
    assert payload(res, "routeClient", "ClientPayload")["client"]["ownerId"] == str(s1)


async def test_rule_validation_and_versions(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    teams, agents = await setup_teams(client, tenant, member, {"T": 1})
    [(agent, _)] = agents["T"]
    t = teams["T"]
    cases = [
        ({"name": "x"}, "teamId"),  # no target
        ({"name": "x", "teamId": t, "agentId": str(agent)}, "teamId"),  # both
        ({"name": "x", "agentId": str(agent), "mode": "CLAIM"}, "mode"),
        ({"name": "x", "teamId": t, "claimMinutes": 0}, "claimMinutes"),
        ({"name": "x", "teamId": t, "languages": ["klingon"]}, "languages"),
        ({"name": "x", "teamId": t, "budgetMin": 5, "budgetMax": 1}, "budgetMin"),
        ({"name": "x", "teamId": t, "fallbackTeamIds": [t]}, "fallbackTeamIds"),
        ({"name": "", "teamId": t}, "name"),
    ]
    for fields, at in cases:
        got = await rule(client, slug, expect="ValidationError", **fields)
        assert got["field"] == at, (fields, got)
    got = await rule(client, slug, expect="NotFoundError", name="x", teamId=str(uuid.uuid4()))
    assert got["field"] == "teamId"
    got = await rule(client, slug, expect="NotFoundError", name="x", agentId=str(uuid.uuid4()))
    assert got["field"] == "agentId"
    assert (await gql(client, ROUTES, tenant=slug))["data"]["leadRoutes"] == []

    r = (await rule(client, slug, name="One", agentId=str(agent)))["route"]
    assert (r["agentId"], r["teamId"], r["version"]) == (str(agent), None, 1)
    c = await lead(client, slug)
    assert c["ownerId"] == str(agent)
    upd = {"id": r["id"], "input": {"name": "Off", "agentId": str(agent), "active": False}}
    res = await gql(client, UPDATE_ROUTE, {**upd, "v": 1}, tenant=slug)
    assert payload(res, "updateLeadRoute", "LeadRoutePayload")["route"]["version"] == 2
    res = await gql(client, UPDATE_ROUTE, {**upd, "v": 1}, tenant=slug)
    assert payload(res, "updateLeadRoute", "ConflictError")["field"] == "expectedVersion"
    assert (await lead(client, slug))["ownerId"] is None  # the only rule is off
