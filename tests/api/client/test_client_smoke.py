"""A client's life in the agent app: created (phone masked), contacted with a next follow-up,
qualified, on the agent's day; a second record with the same phone is flagged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api.client.helpers import CREATE_WITH_PHONE
from tests.conftest import gql

LOG = """
mutation($c: ID!, $due: DateTime) {
  logClientContact(clientId: $c, kind: CALL, outcome: "wants 3 rooms", nextDueAt: $due) {
    __typename ... on FollowUpPayload { client { stage nextFollowUpAt lastContactAt } }
    ... on UserError { code message field }
  }
}
"""
STAGE = """
mutation($c: ID!, $s: ClientStage!, $r: String! = "") {
  changeClientStage(clientId: $c, stage: $s, reason: $r) {
    __typename ... on ClientPayload { client { stage lostReason } }
    ... on UserError { code message field }
  }
}
"""
DAY = "{ myDay { today { clientId nextStep } overdue { clientId } stageCounts { stage count } } }"


async def test_a_clients_life(client, make_tenant, member):
    tenant = await make_tenant()
    _, agent = await member(tenant, ["agent"])
    res = await gql(
        client,
        CREATE_WITH_PHONE,
        {"input": {"name": "王先生", "phone": "13912345678", "source": "WALK_IN"}},
        tenant=tenant.slug,
        token=agent,
    )
    made = res["data"]["createClient"]
    assert made["__typename"] == "ClientPayload", res
    c = made["client"]
    assert c["phone"] == "+86139****5678" and c["stage"] == "NEW" and made["duplicates"] == []
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    res = await gql(client, LOG, {"c": c["id"], "due": due}, tenant=tenant.slug, token=agent)
    after = res["data"]["logClientContact"]["client"]
    assert after["stage"] == "CONTACTED" and after["nextFollowUpAt"] is not None, res
    res = await gql(
        client, STAGE, {"c": c["id"], "s": "QUALIFIED"}, tenant=tenant.slug, token=agent
    )
    assert res["data"]["changeClientStage"]["client"]["stage"] == "QUALIFIED", res
    res = await gql(client, STAGE, {"c": c["id"], "s": "NEW"}, tenant=tenant.slug, token=agent)
    assert res["data"]["changeClientStage"]["code"] == "CONFLICT", res
    res = await gql(client, STAGE, {"c": c["id"], "s": "LOST"}, tenant=tenant.slug, token=agent)
    assert res["data"]["changeClientStage"]["field"] == "reason", res
    day = (await gql(client, DAY, tenant=tenant.slug, token=agent))["data"]["myDay"]
    counts = {s["stage"]: s["count"] for s in day["stageCounts"]}
    assert counts["QUALIFIED"] == 1 and sum(counts.values()) == 1
    _, other = await member(tenant, ["agent"])
    res = await gql(
        client,
        CREATE_WITH_PHONE,
        {"input": {"name": "Wang", "phone": "+86 139 1234 5678"}},
        tenant=tenant.slug,
        token=other,
    )
    dup = res["data"]["createClient"]
    assert dup["duplicates"] == [c["id"]] and dup["client"]["duplicateOf"] == c["id"], res


MERGE = """
mutation($k: ID!, $m: ID!) {
  mergeClients(keepId: $k, mergeId: $m) {
    __typename ... on ClientPayload { client { id tags followUps { outcome } } }
    ... on UserError { code message field }
  }
}
"""


async def test_merge_keeps_the_history_of_both(client, make_tenant, member):
    tenant = await make_tenant()
    _, agent = await member(tenant, ["agent"])
    ids = []
    for name, tags in (("Zhao", ["school"]), ("Zhao Lei", ["parking"])):
        res = await gql(
            client,
            CREATE_WITH_PHONE,
            {"input": {"name": name, "phone": "13700001111", "tags": tags}},
            tenant=tenant.slug,
            token=agent,
        )
        ids.append(res["data"]["createClient"]["client"]["id"])
    for cid, outcome in zip(ids, ("first call", "second call"), strict=True):
        q = LOG.replace('"wants 3 rooms"', f'"{outcome}"')
        await gql(client, q, {"c": cid}, tenant=tenant.slug, token=agent)
    res = await gql(client, MERGE, {"k": ids[0], "m": ids[1]}, tenant=tenant.slug, token=agent)
    kept = res["data"]["mergeClients"]["client"]
    assert kept["tags"] == ["school", "parking"], res
    assert sorted(f["outcome"] for f in kept["followUps"]) == ["first call", "second call"]
    listed = await gql(client, "{ clients { id } }", tenant=tenant.slug, token=agent)
    assert [c["id"] for c in listed["data"]["clients"]] == [ids[0]]
    res = await gql(client, MERGE, {"k": ids[0], "m": ids[0]}, tenant=tenant.slug, token=agent)
    assert res["data"]["mergeClients"]["field"] == "mergeId", res


async def test_neglected_clients_return_to_the_pool_and_are_claimed_once(
    client, engine, make_tenant, member
):
    from datetime import UTC, datetime, timedelta

    from api.client import tasks
    from tenants.sessions import TenantDatabase

    tenant = await make_tenant()
    _, a = await member(tenant, ["agent"])
    _, b = await member(tenant, ["agent"])
    res = await gql(
        client,
        CREATE_WITH_PHONE,
        {"input": {"name": "Qian", "phone": "13600002222"}},
        tenant=tenant.slug,
        token=a,
    )
    cid = res["data"]["createClient"]["client"]["id"]
    async with TenantDatabase(engine).session(tenant) as session:  # 8 days on, untouched
        from api.client import service

        assert (
            await service.return_neglected(
                session, days=7, now=datetime.now(UTC) + timedelta(days=8)
            )
            == 1
        )
        await session.commit()
        assert await tasks.return_neglected.work(session, tenant) == 0  # not 7 days yet
    mine = await gql(client, "{ clients { id } }", tenant=tenant.slug, token=a)
    assert mine["data"]["clients"] == []  # no longer a's
    pool = await gql(client, "{ clientPool { id phone } }", tenant=tenant.slug, token=b)
    assert pool["data"]["clientPool"] == [{"id": cid, "phone": "+86136****2222"}]
    claim = (
        "mutation($c: ID!) { claimClient(clientId: $c) { __typename "
        "... on ClientPayload { client { ownerId assignments { reason toOwner } } } "
        "... on UserError { code } } }"
    )
    won = await gql(client, claim, {"c": cid}, tenant=tenant.slug, token=b)
    lost = await gql(client, claim, {"c": cid}, tenant=tenant.slug, token=a)
    assert won["data"]["claimClient"]["__typename"] == "ClientPayload", won
    reasons = [x["reason"] for x in won["data"]["claimClient"]["client"]["assignments"]]
    assert reasons == ["created", "returned", "claimed"]
    assert lost["data"]["claimClient"]["code"] == "CONFLICT", lost
