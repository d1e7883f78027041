"""Teams (company > office > team) through GraphQL, and the data scopes computed from them."""

from __future__ import annotations

import uuid

from api.identity.auth import Principal
from api.identity.teams import visible_owners
from tenants.sessions import TenantDatabase
from tests.api.helpers import typed_denial
from tests.conftest import gql

CREATE = """
mutation($input: CreateTeamInput!) {
  createTeam(input: $input) {
    __typename
    ... on TeamPayload { team { id name kind parentId } }
    ... on UserError { code message field }
  }
}
"""
ADD = """
mutation($t: ID!, $a: ID!) {
  addTeamMember(teamId: $t, accountId: $a) { __typename ... on UserError { code field } }
}
"""


async def create(client, slug, name, kind, parent=None):
    res = await gql(
        client, CREATE, {"input": {"name": name, "kind": kind, "parentId": parent}}, tenant=slug
    )
    return res["data"]["createTeam"]


async def test_hierarchy_rules_and_membership(client, make_tenant, member):
    t = await make_tenant()
    company = await create(client, t.slug, "Acme", "company")
    assert company["__typename"] == "TeamPayload"
    cid = company["team"]["id"]
    office = await create(client, t.slug, "Pudong office", "office", cid)
    oid = office["team"]["id"]
    assert office["team"]["parentId"] == cid
    team = await create(client, t.slug, "Team A", "team", oid)
    assert team["__typename"] == "TeamPayload"

    wrong = await create(client, t.slug, "Team B", "team", cid)  # a team under a company
    assert (wrong["__typename"], wrong["field"]) == ("ValidationError", "parentId")
    orphan = await create(client, t.slug, "Office B", "office")
    assert (orphan["__typename"], orphan["field"]) == ("NotFoundError", "parentId")
    bad_kind = await create(client, t.slug, "X", "division")
    assert (bad_kind["__typename"], bad_kind["field"]) == ("ValidationError", "kind")

    agent_id, agent_token = await member(t, ["agent"])
    res = await gql(client, ADD, {"t": team["team"]["id"], "a": str(agent_id)}, tenant=t.slug)
    assert res["data"]["addTeamMember"]["__typename"] == "TeamMembershipPayload"
    res = await gql(client, ADD, {"t": team["team"]["id"], "a": str(agent_id)}, tenant=t.slug)
    assert res["data"]["addTeamMember"] == {
        "__typename": "ConflictError",
        "code": "CONFLICT",
        "field": "accountId",
    }
    stranger = str(uuid.uuid4())
    res = await gql(client, ADD, {"t": team["team"]["id"], "a": stranger}, tenant=t.slug)
    assert res["data"]["addTeamMember"]["__typename"] == "NotFoundError"

    res = await gql(client, "{ teams { name kind memberIds } }", tenant=t.slug)
    by_name = {x["name"]: x for x in res["data"]["teams"]}
    assert by_name["Team A"]["memberIds"] == [str(agent_id)]
    assert set(by_name) == {"Acme", "Pudong office", "Team A"}

    # An agent may read teams (member.read? no: agents lack it) -> FORBIDDEN; cannot create.
    res = await gql(client, "{ teams { name } }", tenant=t.slug, token=agent_token)
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    res = await gql(
        client,
        CREATE,
        {"input": {"name": "Z", "kind": "company"}},
        tenant=t.slug,
        token=agent_token,
    )
    assert "team.manage" in typed_denial(res, "createTeam", "FORBIDDEN")["message"]
    other_id, _ = await member(t, ["agent"])
    res = await gql(
        client, ADD, {"t": team["team"]["id"], "a": str(other_id)}, tenant=t.slug, token=agent_token
    )
    assert res["data"]["addTeamMember"] == {
        "__typename": "PermissionDeniedError",
        "code": "FORBIDDEN",
        "field": None,
    }
    res = await gql(client, "{ teams { name memberIds } }", tenant=t.slug)
    assert "errors" not in res, res
    # Nothing was written: no new team, no new team member.
    assert sorted(x["name"] for x in res["data"]["teams"]) == ["Acme", "Pudong office", "Team A"]
    assert {x["name"]: x["memberIds"] for x in res["data"]["teams"]}["Team A"] == [str(agent_id)]


async def test_visible_owners_follow_the_scope(engine, client, make_tenant, member):
    t = await make_tenant()
    company = (await create(client, t.slug, "Acme", "company"))["team"]["id"]
    office = (await create(client, t.slug, "Office", "office", company))["team"]["id"]
    team_a = (await create(client, t.slug, "A", "team", office))["team"]["id"]
    team_b = (await create(client, t.slug, "B", "team", office))["team"]["id"]
    manager, _ = await member(t, ["manager"])
    a1, _ = await member(t, ["agent"])
    a2, _ = await member(t, ["agent"])
    b1, _ = await member(t, ["agent"])
    outsider, _ = await member(t, ["agent"])
    for team, account in ((office, manager), (team_a, a1), (team_a, a2), (team_b, b1)):
        res = await gql(client, ADD, {"t": team, "a": str(account)}, tenant=t.slug)
        assert res["data"]["addTeamMember"]["__typename"] == "TeamMembershipPayload"

    def principal(account, scope):
        return Principal(account, uuid.UUID(t.id), uuid.uuid4(), ("x",), frozenset(), scope)

    async with TenantDatabase(engine).session(t) as session:
        assert await visible_owners(session, principal(a1, "own")) == {a1}
        # An agent with team scope sees their own team only.
        assert await visible_owners(session, principal(a1, "team")) == {a1, a2}
        # The office manager sees every team below the office.
        assert await visible_owners(session, principal(manager, "team")) == {manager, a1, a2, b1}
        # Someone in no team sees only their own records.
        assert await visible_owners(session, principal(outsider, "team")) == {outsider}
        assert await visible_owners(session, principal(a1, "all")) is None
