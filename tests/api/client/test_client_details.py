"""A client's details after creation: updateClient (only what is given changes; version guard;
scope), other phones (encrypted, masked, found by duplicates and by search), searching clients,
and the tenant's duplicate rule (flag, refuse, or merge a repeated lead into the record the
creator can see, telling its agent)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from api.client.models import Client as ClientRow
from api.client.models import FollowUp as FollowUpRow
from api.notify.models import Notification
from tenants.sessions import TenantDatabase
from tests.api.client.helpers import audit
from tests.conftest import TOKENS, gql

CREATE = """
mutation($input: CreateClientInput!) {
  createClient(input: $input) {
    __typename
    ... on ClientPayload { client { id ownerId otherPhones duplicateOf } duplicates
                           mergedIntoExisting }
    ... on UserError { code message field }
  }
}
"""
UPDATE = """
mutation($c: ID!, $input: UpdateClientInput!, $v: Int) {
  updateClient(clientId: $c, input: $input, expectedVersion: $v) {
    __typename
    ... on ClientPayload { duplicates client {
      id name phone otherPhones idNumber grade tags notes consentMarketing language version
      duplicateOf needs { budgetMax rooms districts } } }
    ... on UserError { code message field }
  }
}
"""
ONE = "query($id: ID!) { client(id: $id) { id name phone otherPhones grade version } }"
SEARCH = "query($s: String!) { clients(search: $s, first: 50) { id name } }"
SETTINGS = """
mutation($k: String!, $v: String!) { updateTenantSettings(changes: [{key: $k, value: $v}]) {
  __typename ... on UserError { code message field } } }
"""


async def create(client, slug, token, **input) -> dict:
    res = await gql(client, CREATE, {"input": input}, tenant=slug, token=token)
    assert "errors" not in res, res
    return res["data"]["createClient"]


async def update(client, slug, token, cid, version=None, **input) -> dict:
    res = await gql(
        client, UPDATE, {"c": cid, "input": input, "v": version}, tenant=slug, token=token
    )
    assert "errors" not in res, res
    return res["data"]["updateClient"]


async def count_clients(engine, tenant) -> int:
    async with TenantDatabase(engine).session(tenant) as session:
        return await session.scalar(select(func.count()).select_from(ClientRow))


async def test_update_changes_only_what_is_given_with_a_version_guard_and_scope(
    client, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    _, stranger = await member(tenant, ["agent"])
    made = await create(
        client,
        slug,
        agent,
        name="赵女士",
        phone="13511112222",
        tags=["学区"],
        needs={"budgetMax": 400_000_000},
    )
    cid = made["client"]["id"]

    got = await update(
        client,
        slug,
        agent,
        cid,
        1,
        grade="A",
        needs={"budgetMax": 500_000_000, "rooms": [3], "districts": ["南山"]},
        tags=["学区", "改善"],
        notes="想要南向",
        consentMarketing=True,
        language="zh",
    )
    assert got["__typename"] == "ClientPayload", got
    c = got["client"]
    assert (c["name"], c["grade"], c["tags"], c["notes"]) == (
        "赵女士",
        "A",
        ["学区", "改善"],
        "想要南向",
    )
    assert c["needs"] == {"budgetMax": 500_000_000, "rooms": [3], "districts": ["南山"]}
    assert c["consentMarketing"] is True and c["language"] == "zh" and c["version"] == 2
    assert c["phone"] == "+86135****2222"  # untouched, still masked for the agent

    cleared = await update(client, slug, agent, cid, grade=None)
    assert cleared["client"]["grade"] is None and cleared["client"]["tags"] == ["学区", "改善"]
    stale = await update(client, slug, agent, cid, 1, name="改名")
    assert (stale["__typename"], stale["field"]) == ("ConflictError", "expectedVersion")
    for bad, field in (
        ({"phone": "123"}, "phone"),
        ({"name": ""}, "name"),
        ({"phone": None}, "phone"),
        ({"otherPhones": ["12"]}, "otherPhones.0"),
        ({"language": "xx"}, "language"),
    ):
        res = await update(client, slug, agent, cid, **bad)
        assert (res["__typename"], res["field"]) == ("ValidationError", field), (bad, res)
    hidden = await update(client, slug, stranger, cid, grade="C")
    assert hidden["__typename"] == "NotFoundError"
    one = (await gql(client, ONE, {"id": cid}, tenant=slug, token=agent))["data"]["client"]
    assert one["grade"] is None and one["name"] == "赵女士" and one["version"] == 3


async def test_other_phones_are_masked_found_as_duplicates_and_by_search(
    client, engine, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    made = await create(
        client,
        slug,
        agent,
        name="钱先生",
        phone="13622223333",
        otherPhones=["136 2222 4444", "+86 13622223333"],
    )
    cid = made["client"]["id"]
    assert made["client"]["otherPhones"] == ["+86136****4444"]  # the main one is not repeated
    admin = (await gql(client, ONE, {"id": cid}, tenant=slug))["data"]["client"]
    assert admin["otherPhones"] == ["+8613622224444"]  # pii.read sees it, audited
    entries = await audit(client, slug, action="pii.read")
    assert any(e["details"].get("fields") == ["other_phones"] for e in entries), entries

    # A new client whose main phone is someone's other phone is a duplicate of them.
    dup = await create(client, slug, agent, name="钱生", phone="13622224444")
    assert dup["duplicates"] == [cid] and dup["client"]["duplicateOf"] == cid
    # And an update giving a known phone flags it too.
    other = await create(client, slug, agent, name="孙先生", phone="13622225555")
    flagged = await update(client, slug, agent, other["client"]["id"], otherPhones=["13622223333"])
    assert flagged["duplicates"] == [cid] and flagged["client"]["duplicateOf"] == cid

    found = await gql(client, SEARCH, {"s": "136-2222-4444"}, tenant=slug, token=agent)
    assert sorted(c["id"] for c in found["data"]["clients"]) == sorted([cid, dup["client"]["id"]])
    by_name = (await gql(client, SEARCH, {"s": "孙"}, tenant=slug, token=agent))["data"]
    assert [c["id"] for c in by_name["clients"]] == [other["client"]["id"]]
    literal = (await gql(client, SEARCH, {"s": "%"}, tenant=slug, token=agent))["data"]
    assert literal["clients"] == []  # LIKE wildcards are literal

    # Merging moves the merged record's phones to the kept one.
    merge = """mutation($k: ID!, $m: ID!) { mergeClients(keepId: $k, mergeId: $m) {
      __typename ... on ClientPayload { client { otherPhones } } } }"""
    res = await gql(client, merge, {"k": cid, "m": other["client"]["id"]}, tenant=slug)
    assert res["data"]["mergeClients"]["client"]["otherPhones"] == [
        "+8613622224444",
        "+8613622225555",
    ]


async def test_the_tenant_duplicate_rule_refuse_and_merge(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    agent_id, agent = await member(tenant, ["agent"])
    _, rival = await member(tenant, ["agent"])
    res = await gql(client, SETTINGS, {"k": "crm.duplicates", "v": "sometimes"}, tenant=slug)
    assert res["data"]["updateTenantSettings"]["field"] == "crm.duplicates"
    first = await create(client, slug, agent, name="周女士", phone="13733334444", tags=["首次"])
    cid = first["client"]["id"]

    await gql(client, SETTINGS, {"k": "crm.duplicates", "v": "refuse"}, tenant=slug)
    refused = await create(client, slug, rival, name="周", phone="137 3333 4444")
    assert refused["__typename"] == "ConflictError"  # the first agent keeps the client
    assert await count_clients(engine, tenant) == 1

    await gql(client, SETTINGS, {"k": "crm.duplicates", "v": "merge"}, tenant=slug)
    again = await create(
        client,
        slug,
        agent,
        name="周小姐",
        phone="13733334444",
        otherPhones=["13733335555"],
        tags=["回访"],
        source="PORTAL",
        notes="问了学区",
    )
    assert again["mergedIntoExisting"] is True and again["client"]["id"] == cid
    assert again["client"]["otherPhones"] == ["+86137****5555"] and again["duplicates"] == []
    assert await count_clients(engine, tenant) == 1
    async with TenantDatabase(engine).session(tenant) as session:
        row = await session.get(ClientRow, uuid.UUID(cid))
        assert row.tags == ["首次", "回访"]
        notes = (
            await session.scalars(
                select(FollowUpRow.outcome).where(
                    FollowUpRow.client_id == row.id, FollowUpRow.kind == "note"
                )
            )
        ).all()
        assert notes == ["repeated lead (portal) as 周小姐: 问了学区"]
    # The rival cannot see that record: theirs is a new one, flagged, not merged into it.
    theirs = await create(client, slug, rival, name="周", phone="13733334444")
    assert theirs["mergedIntoExisting"] is False and theirs["client"]["duplicateOf"] == cid
    # The admin (every client in scope) merges a portal repeat; the owner hears of it.
    admin = await create(
        client, slug, TOKENS[slug], name="周女士", phone="13733335555", source="PORTAL"
    )
    assert admin["mergedIntoExisting"] is True and admin["client"]["id"] == cid
    async with TenantDatabase(engine).session(tenant) as session:
        told = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.account_id == agent_id, Notification.template == "client.repeat")
        )
    assert told == 1
