"""Clients (CRM) through real HTTP round trips: the data scope (own / team / all, and the pool)
on every read and write, duplicates found by the blind index, masked and audited personal data,
the lifecycle, follow-ups and the agent's day, follow-up reminders, and input validation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update

from api.client import tasks
from api.client.models import Client as ClientRow
from api.client.models import FollowUp as FollowUpRow
from api.notify.models import Notification
from tenants.sessions import TenantDatabase
from tests.api.client.helpers import (
    FIELDS,
    FOLLOW_UP_PAYLOAD,
    SCHEDULE,
    audit,
    create,
    iso,
    join,
    my_day,
    new_client,
    payload,
    schedule,
    team,
)
from tests.conftest import TOKENS, gql

SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE = "13912345678"
E164 = "+8613912345678"
MASKED = "+86139****5678"
ID_NUMBER = "11010119900307123X"
ID_MASKED = "110***********123X"

CLIENTS = "query($mine: Boolean! = false) { clients(first: 100, mineOnly: $mine) { id } }"
ONE = f"query($id: ID!) {{ client(id: $id) {{ {FIELDS} }} }}"
ONE_WITH_FOLLOW_UPS = "query($id: ID!) { client(id: $id) { id followUps { id kind outcome } } }"
STAGE = f"""
mutation($c: ID!, $s: ClientStage!, $r: String! = "", $v: Int) {{
  changeClientStage(clientId: $c, stage: $s, reason: $r, expectedVersion: $v) {{
    __typename
    ... on ClientPayload {{ client {{ {FIELDS} }} }}
    ... on UserError {{ code message field }}
  }}
}}
"""
LOG = f"""
mutation($c: ID!, $k: ContactKind! = CALL, $o: String! = "talked", $at: DateTime) {{
  logClientContact(clientId: $c, kind: $k, outcome: $o, happenedAt: $at) {{
    {FOLLOW_UP_PAYLOAD}
  }}
}}
"""
COMPLETE = f"""
mutation($f: ID!, $o: String!) {{
  completeFollowUp(followUpId: $f, outcome: $o) {{ {FOLLOW_UP_PAYLOAD} }}
}}
"""
INBOX = "{ inbox { items { title body category data } } }"
ME = "{ me { account { id } } }"


# ---------------------------------------------------------------- helpers


def now() -> datetime:
    return datetime.now(UTC)


def refused(res: dict, field: str, typename: str, at: str | None = None) -> dict:
    got = payload(res, field, typename)
    if at is not None:
        assert got["field"] == at, got
    return got


async def visible_ids(client, slug, token, mine=False) -> set[str]:
    res = await gql(client, CLIENTS, {"mine": mine}, tenant=slug, token=token)
    assert "errors" not in res, res
    return {c["id"] for c in res["data"]["clients"]}


async def read(client, slug, token, client_id, doc=ONE) -> dict | None:
    res = await gql(client, doc, {"id": client_id}, tenant=slug, token=token)
    assert "errors" not in res, res
    return res["data"]["client"]


async def stage(client, slug, token, client_id, s, reason="", version=None) -> dict:
    res = await gql(
        client, STAGE, {"c": client_id, "s": s, "r": reason, "v": version}, tenant=slug, token=token
    )
    assert "errors" not in res, res
    return res["data"]["changeClientStage"]


async def log(client, slug, token, client_id, kind="CALL", outcome="talked", at=None) -> dict:
    res = await gql(
        client, LOG, {"c": client_id, "k": kind, "o": outcome, "at": at}, tenant=slug, token=token
    )
    assert "errors" not in res, res
    return res["data"]["logClientContact"]


async def complete(client, slug, token, follow_up_id, outcome="done") -> dict:
    res = await gql(client, COMPLETE, {"f": follow_up_id, "o": outcome}, tenant=slug, token=token)
    assert "errors" not in res, res
    return res["data"]["completeFollowUp"]


def shanghai_day() -> tuple[datetime, datetime]:
    local = now().astimezone(SHANGHAI)
    start = datetime.combine(local.date(), time(0), tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


async def row_json(engine, tenant, table: str) -> str:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(f'SELECT row_to_json(t)::text FROM "{tenant.schema_name}".{table} t')
        )
        return "\n".join(rows.scalars().all())


# ---------------------------------------------------------------- 1. data scope


async def test_scope_own_team_all_and_the_pool_on_every_read_and_write(
    client, engine, make_tenant, member
):
    """Company > North office (manager M, agent A) > North-1 team (agent B); South office
    (agent C). A sees A's; M sees A's, B's, the pool and M's own, never C's; the admin sees
    all. Out of scope, a client reads as null and mutations answer NOT_FOUND like a missing
    client, changing nothing."""
    tenant = await make_tenant()
    slug = tenant.slug
    manager_id, manager = await member(tenant, ["manager"])
    a_id, a = await member(tenant, ["agent"])
    b_id, b = await member(tenant, ["agent"])
    c_id, c = await member(tenant, ["agent"])
    admin = TOKENS[slug]
    company = await team(client, slug, "Acme", "company")
    north = await team(client, slug, "North", "office", company)
    north_1 = await team(client, slug, "North 1", "team", north)
    south = await team(client, slug, "South", "office", company)
    for t, who in ((north, manager_id), (north, a_id), (north_1, b_id), (south, c_id)):
        await join(client, slug, t, who)

    ca = await new_client(client, slug, a, "Client of A", phone="13800000001")
    cb = await new_client(client, slug, b, "Client of B", phone="13800000002")
    cc = await new_client(client, slug, c, "Client of C", phone="13800000003")
    cm = await new_client(client, slug, manager, "Client of M", phone="13800000004")
    pool = await new_client(client, slug, admin, "Pool client", phone="13800000005")
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            update(ClientRow).where(ClientRow.id == uuid.UUID(pool)).values(owner_id=None)
        )
        await session.commit()
    everyone = {ca, cb, cc, cm, pool}

    # Lists.
    assert await visible_ids(client, slug, a) == {ca}
    assert await visible_ids(client, slug, b) == {cb}
    assert await visible_ids(client, slug, c) == {cc}
    assert await visible_ids(client, slug, manager) == {ca, cb, cm, pool}
    assert await visible_ids(client, slug, manager, mine=True) == {cm}
    assert await visible_ids(client, slug, admin) == everyone

    # One client: null out of scope (as a missing id is).
    for token, seen in ((a, {ca}), (manager, {ca, cb, cm, pool}), (admin, everyone)):
        for cid in everyone:
            got = await read(client, slug, token, cid)
            assert (got is not None) == (cid in seen), (cid, got)
    assert await read(client, slug, a, str(uuid.uuid4())) is None
    assert (await read(client, slug, manager, pool))["ownerId"] is None

    # Follow-ups: A's logged contact, seen with A's client by A, M and the admin.
    assert (await log(client, slug, a, ca))["__typename"] == "FollowUpPayload"
    for token in (a, manager, admin):
        got = await read(client, slug, token, ca, ONE_WITH_FOLLOW_UPS)
        assert [f["kind"] for f in got["followUps"]] == ["CALL"], got
    assert await read(client, slug, c, ca, ONE_WITH_FOLLOW_UPS) is None

    # Writes out of scope: NOT_FOUND on clientId, exactly as for a missing client.
    soon = now() + timedelta(days=1)
    attempts = ((a, cc), (a, cb), (a, pool), (manager, cc), (b, ca), (a, str(uuid.uuid4())))
    for token, target in attempts:
        answers = [
            await stage(client, slug, token, target, "QUALIFIED"),
            await stage(client, slug, token, target, "LOST", reason="gone"),
            await log(client, slug, token, target),
            await schedule(client, slug, token, target, soon),
        ]
        for got in answers:
            assert got == {
                "__typename": "NotFoundError",
                "code": "NOT_FOUND",
                "message": "client not found",
                "field": "clientId",
            }, got
    for cid in (cb, cc, pool):  # nothing changed
        got = await read(client, slug, admin, cid)
        assert (got["stage"], got["version"], got["nextFollowUpAt"]) == ("NEW", 1, None), got

    # In scope: the manager works A's, B's and the pool's clients; the admin works C's.
    assert (await stage(client, slug, manager, ca, "QUALIFIED"))["client"]["stage"] == "QUALIFIED"
    assert (await log(client, slug, manager, cb))["client"]["stage"] == "CONTACTED"
    assert (await stage(client, slug, manager, pool, "CONTACTED"))["client"]["stage"] == (
        "CONTACTED"
    )
    assert (await stage(client, slug, admin, cc, "SHOWING"))["client"]["stage"] == "SHOWING"

    # The agent's day: stage counts are the caller's own clients; follow-ups the caller's.
    due = now()  # due today in Asia/Shanghai whatever the hour (5 minutes of grace)
    fa = (await schedule(client, slug, manager, ca, due))["followUp"]
    assert fa["assigneeId"] == str(a_id)  # scheduled by the manager, for A (the owner)
    fc = (await schedule(client, slug, c, cc, due))["followUp"]
    day_a, day_c = await my_day(client, slug, a), await my_day(client, slug, c)
    assert day_a["counts"]["QUALIFIED"] == 1 and sum(day_a["counts"].values()) == 1
    assert day_c["counts"]["SHOWING"] == 1 and sum(day_c["counts"].values()) == 1
    day_m = await my_day(client, slug, manager)
    assert day_m["counts"]["NEW"] == 1 and sum(day_m["counts"].values()) == 1  # M's own
    assert [f["id"] for f in day_a["today"] + day_a["overdue"]] == [fa["id"]]
    assert [f["id"] for f in day_c["today"] + day_c["overdue"]] == [fc["id"]]
    assert day_m["today"] == [] and day_m["overdue"] == []
    day_admin = await my_day(client, slug, admin)
    assert day_admin["today"] == [] and sum(day_admin["counts"].values()) == 0

    # Completing a follow-up of another scope's client: refused, nothing done.
    got = await complete(client, slug, a, fc["id"])
    assert got["__typename"] == "NotFoundError", got
    assert "Client of C" not in str(got)
    assert (await read(client, slug, c, cc))["nextFollowUpAt"] is not None


async def test_completing_an_out_of_scope_follow_up_looks_like_a_missing_one(
    client, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, a = await member(tenant, ["agent"])
    _, c = await member(tenant, ["agent"])
    cc = await new_client(client, slug, c, "Client of C", phone="13800000003")
    fc = (await schedule(client, slug, c, cc, now() + timedelta(hours=1)))["followUp"]["id"]
    outside = await complete(client, slug, a, fc)
    missing = await complete(client, slug, a, str(uuid.uuid4()))
    assert missing["__typename"] == "NotFoundError", missing
    assert outside == missing


# ---------------------------------------------------------------- 2. duplicates


async def test_duplicates_by_blind_index_across_owners_and_nothing_plain_at_rest(
    client, engine, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, a = await member(tenant, ["agent"])
    _, b = await member(tenant, ["agent"])

    first = await create(client, slug, a, name="Wang", phone=PHONE)
    original = first["client"]["id"]
    assert first["duplicates"] == [] and first["client"]["duplicateOf"] is None
    # Another agent (who cannot see A's client) is told of it: the check spans owners.
    second = await create(client, slug, b, name="Wang Wei", phone="+86 139 1234 5678")
    assert second["duplicates"] == [original] and second["client"]["duplicateOf"] == original
    assert await read(client, slug, b, original) is None
    third = await create(client, slug, a, name="W.", phone="139-1234-5678")
    assert third["duplicates"] == [original, second["client"]["id"]]
    assert third["client"]["duplicateOf"] == original

    refused_ = await create(
        client, slug, b, "ConflictError", name="Again", phone=PHONE, refuseDuplicates=True
    )
    assert (refused_["code"], refused_["field"]) == ("CONFLICT", "phone"), refused_
    different = await create(client, slug, b, name="Li", phone="13987654321", refuseDuplicates=True)
    assert different["duplicates"] == [] and different["client"]["duplicateOf"] is None

    by_id = await create(client, slug, a, name="Zhao", idNumber=ID_NUMBER.lower())
    assert by_id["duplicates"] == []
    same_id = await create(client, slug, b, name="Zhao S.", idNumber=" 110101 19900307 123x ")
    assert same_id["duplicates"] == [by_id["client"]["id"]]
    assert same_id["client"]["duplicateOf"] == by_id["client"]["id"]
    other_id = await create(client, slug, b, name="Qian", idNumber="110101199003071235")
    assert other_id["duplicates"] == []
    refused_ = await create(
        client, slug, a, "ConflictError", name="Z", idNumber=ID_NUMBER, refuseDuplicates=True
    )
    assert refused_["code"] == "CONFLICT"

    # At rest: encrypted bytes and a blind index; the mask only; no plain digits anywhere.
    async with TenantDatabase(engine).session(tenant) as session:
        rows = (await session.scalars(select(ClientRow).order_by(ClientRow.created_at))).all()
    assert len(rows) == 7  # the refused ones were not stored
    wangs = [r for r in rows if r.name in ("Wang", "Wang Wei", "W.")]
    assert len(wangs) == 3
    for r in wangs:
        assert isinstance(r.phone_enc, bytes) and isinstance(r.phone_bidx, bytes)
        assert PHONE.encode() not in r.phone_enc and r.phone_mask == MASKED
    assert len({r.phone_bidx for r in wangs}) == 1  # one index for every format
    assert len({r.phone_enc for r in wangs}) == 3  # ciphertexts bound to their rows
    raw = await row_json(engine, tenant, "client")
    for plain in (PHONE, "3912345678", ID_NUMBER, ID_NUMBER.lower(), "1101011990"):
        assert plain not in raw, plain
    assert MASKED in raw and ID_MASKED in raw
    # Nor in the audit log of the createClient mutations.
    assert PHONE not in await row_json(engine, tenant, "audit_log")


# ---------------------------------------------------------------- 3. personal data


async def test_phone_and_id_number_masked_unless_pii_read_and_each_read_audited(
    client, engine, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    admin_id = (await gql(client, ME, tenant=slug))["data"]["me"]["account"]["id"]
    a_id, a = await member(tenant, ["agent"])
    manager_id, manager = await member(tenant, ["manager"])
    _, finance = await member(tenant, ["finance"])
    cid = await new_client(client, slug, a, "Sun", phone=PHONE, idNumber=ID_NUMBER)
    no_id = await new_client(client, slug, a, "Zhou", phone="13800000009")

    got = await read(client, slug, a, cid)
    assert (got["phone"], got["idNumber"]) == (MASKED, ID_MASKED)
    # A's manager (client.read over A's team, no pii.read) sees masked values too.
    company = await team(client, slug, "Acme", "company")
    office = await team(client, slug, "Office", "office", company)
    await join(client, slug, office, manager_id)
    await join(client, slug, office, a_id)
    got = await read(client, slug, manager, cid)
    assert (got["phone"], got["idNumber"]) == (MASKED, ID_MASKED)
    assert await audit(client, slug, action="pii.read") == []

    got = await read(client, slug, TOKENS[slug], cid)  # admin: pii.read, audited
    assert (got["phone"], got["idNumber"]) == (E164, ID_NUMBER)
    entries = await audit(client, slug, action="pii.read")
    assert sorted(
        (e["actorId"], e["targetType"], e["targetId"], e["outcome"], e["details"]["fields"])
        for e in entries
    ) == [
        (admin_id, "client", cid, "ok", ["id_number"]),
        (admin_id, "client", cid, "ok", ["phone"]),
    ]
    assert PHONE not in str(entries) and ID_NUMBER not in str(entries)
    # No ID number: nothing to reveal, nothing audited for it.
    got = await read(client, slug, TOKENS[slug], no_id)
    assert (got["phone"], got["idNumber"]) == ("+8613800000009", None)
    assert len(await audit(client, slug, action="pii.read")) == 3

    # Finance holds pii.read but not client.read: clients are refused outright.
    res = await gql(client, ONE, {"id": cid}, tenant=slug, token=finance)
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN", res
    assert PHONE not in str(res)
    assert len(await audit(client, slug, action="pii.read")) == 3


# ---------------------------------------------------------------- 4. lifecycle


async def test_lifecycle_forward_skips_lost_reopens_won_is_final(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, a = await member(tenant, ["agent"])
    cid = await new_client(client, slug, a, "Lin", phone=PHONE)

    got = await stage(client, slug, a, cid, "SHOWING")
    assert got["__typename"] == "ClientPayload", got
    assert (got["client"]["stage"], got["client"]["version"]) == ("SHOWING", 2)
    back = await stage(client, slug, a, cid, "QUALIFIED")
    assert (back["__typename"], back["code"], back["field"]) == (
        "ConflictError",
        "CONFLICT",
        "stage",
    )
    no_reason = await stage(client, slug, a, cid, "LOST", reason="   ")
    assert (no_reason["__typename"], no_reason["field"]) == ("ValidationError", "reason")
    lost = (await stage(client, slug, a, cid, "LOST", reason="bought elsewhere"))["client"]
    assert (lost["stage"], lost["lostReason"], lost["version"]) == ("LOST", "bought elsewhere", 3)
    refused_ = await stage(client, slug, a, cid, "QUALIFIED")
    assert (refused_["__typename"], refused_["field"]) == ("ConflictError", "stage")
    refused_ = await stage(client, slug, a, cid, "WON")
    assert refused_["__typename"] == "ConflictError"
    reopened = (await stage(client, slug, a, cid, "CONTACTED"))["client"]
    assert (reopened["stage"], reopened["lostReason"], reopened["version"]) == (
        "CONTACTED",
        None,
        4,
    )

    stale = await stage(client, slug, a, cid, "NEGOTIATING", version=3)
    assert (stale["__typename"], stale["code"], stale["field"]) == (
        "ConflictError",
        "CONFLICT",
        "expectedVersion",
    )
    assert (await read(client, slug, a, cid))["stage"] == "CONTACTED"
    got = (await stage(client, slug, a, cid, "NEGOTIATING", version=4))["client"]
    assert (got["stage"], got["version"]) == ("NEGOTIATING", 5)
    won = (await stage(client, slug, a, cid, "WON"))["client"]
    assert won["stage"] == "WON"
    for target, reason in (("LOST", "changed mind"), ("NEGOTIATING", ""), ("CONTACTED", "")):
        got = await stage(client, slug, a, cid, target, reason=reason)
        assert (got["__typename"], got["field"]) == ("ConflictError", "stage"), got
    assert (await read(client, slug, a, cid))["stage"] == "WON"

    # Contacts: a note leaves a new client new; a call makes it contacted.
    fresh = await new_client(client, slug, a, "Ma", phone="13800000011")
    note = await log(client, slug, a, fresh, kind="NOTE", outcome="")
    assert note["__typename"] == "FollowUpPayload", note
    assert (note["client"]["stage"], note["client"]["lastContactAt"]) == ("NEW", None)
    assert note["followUp"]["kind"] == "NOTE" and note["followUp"]["happenedAt"] is not None
    before = now()
    call = await log(client, slug, a, fresh, kind="CALL", outcome="wants two rooms")
    assert call["client"]["stage"] == "CONTACTED" and call["client"]["version"] == 3
    contacted_at = datetime.fromisoformat(call["client"]["lastContactAt"])
    assert before - timedelta(seconds=5) <= contacted_at <= now() + timedelta(seconds=5)
    assert call["followUp"]["outcome"] == "wants two rooms"
    future = await log(client, slug, a, fresh, at=iso(now() + timedelta(hours=1)))
    assert (future["__typename"], future["field"]) == ("ValidationError", "happenedAt")


# ---------------------------------------------------------------- 5. follow-ups


async def test_follow_ups_next_date_completion_and_the_agents_day(
    client, engine, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    a_id, a = await member(tenant, ["agent"])
    c_id, c = await member(tenant, ["agent"])
    cid = await new_client(client, slug, a, "Gao", phone=PHONE)

    in_3_days, tomorrow = now() + timedelta(days=3), now() + timedelta(days=1)
    far = await schedule(client, slug, a, cid, in_3_days, note="send the plans")
    assert far["__typename"] == "FollowUpPayload", far
    assert datetime.fromisoformat(far["client"]["nextFollowUpAt"]) == in_3_days
    near = await schedule(client, slug, a, cid, tomorrow)
    assert datetime.fromisoformat(near["client"]["nextFollowUpAt"]) == tomorrow
    assert near["followUp"]["assigneeId"] == str(a_id) and near["followUp"]["doneAt"] is None

    done = await complete(client, slug, a, near["followUp"]["id"], outcome="booked a showing")
    assert done["__typename"] == "FollowUpPayload", done
    assert done["followUp"]["doneAt"] is not None
    assert done["followUp"]["outcome"] == "booked a showing"
    assert datetime.fromisoformat(done["client"]["nextFollowUpAt"]) == in_3_days
    assert done["client"]["stage"] == "CONTACTED" and done["client"]["lastContactAt"]
    again = await complete(client, slug, a, near["followUp"]["id"])
    assert (again["__typename"], again["code"]) == ("ConflictError", "CONFLICT"), again
    last = await complete(client, slug, a, far["followUp"]["id"], outcome="sent")
    assert last["client"]["nextFollowUpAt"] is None

    past = await schedule(client, slug, a, cid, now() - timedelta(minutes=10))
    assert (past["__typename"], past["field"]) == ("ValidationError", "dueAt")
    assert (await read(client, slug, a, cid))["nextFollowUpAt"] is None

    # The day: due today (Asia/Shanghai), and overdue (before today), the caller's only.
    start, end = shanghai_day()
    today = (await schedule(client, slug, a, cid, now()))["followUp"]["id"]
    await schedule(client, slug, a, cid, end + timedelta(hours=1))  # tomorrow: neither
    cc = await new_client(client, slug, c, "Of C", phone="13800000012")
    theirs = (await schedule(client, slug, c, cc, now()))["followUp"]["id"]
    async with TenantDatabase(engine).session(tenant) as session:
        overdue = FollowUpRow(
            client_id=uuid.UUID(cid),
            kind="call",
            assignee_id=a_id,
            due_at=start - timedelta(hours=1),
            created_by=a_id,
        )
        theirs_overdue = FollowUpRow(
            client_id=uuid.UUID(cc),
            kind="call",
            assignee_id=c_id,
            due_at=start - timedelta(days=2),
            created_by=c_id,
        )
        done_overdue = FollowUpRow(
            client_id=uuid.UUID(cid),
            kind="call",
            assignee_id=a_id,
            due_at=start - timedelta(hours=2),
            done_at=now(),
            created_by=a_id,
        )
        session.add_all([overdue, theirs_overdue, done_overdue])
        await session.commit()
    day = await my_day(client, slug, a)
    assert [f["id"] for f in day["today"]] == [today]
    assert [f["id"] for f in day["overdue"]] == [str(overdue.id)]
    day = await my_day(client, slug, c)
    assert [f["id"] for f in day["today"]] == [theirs]
    assert [f["id"] for f in day["overdue"]] == [str(theirs_overdue.id)]


async def test_a_refused_completion_leaves_the_follow_up_open(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, a = await member(tenant, ["agent"])
    cid = await new_client(client, slug, a, "Blank", phone=PHONE)
    fid = (await schedule(client, slug, a, cid, now() + timedelta(days=1)))["followUp"]["id"]
    empty = await complete(client, slug, a, fid, outcome="   ")
    assert (empty["__typename"], empty["field"]) == ("ValidationError", "outcome")
    assert (await read(client, slug, a, cid))["nextFollowUpAt"] is not None
    done = await complete(client, slug, a, fid, outcome="called back")
    assert done["__typename"] == "FollowUpPayload", done


async def test_a_refused_contact_log_writes_nothing(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, a = await member(tenant, ["agent"])
    cid = await new_client(client, slug, a, "Past", phone=PHONE)
    doc = """
    mutation($c: ID!, $due: DateTime) {
      logClientContact(clientId: $c, kind: CALL, outcome: "ok", nextDueAt: $due) {
        __typename ... on UserError { code field }
      }
    }
    """
    res = await gql(
        client, doc, {"c": cid, "due": iso(now() - timedelta(hours=1))}, tenant=slug, token=a
    )
    got = refused(res, "logClientContact", "ValidationError", "nextDueAt")
    assert got["code"] == "BAD_USER_INPUT"
    after = await read(client, slug, a, cid, ONE_WITH_FOLLOW_UPS)
    assert after["followUps"] == []
    after = await read(client, slug, a, cid)
    assert (after["stage"], after["version"], after["lastContactAt"]) == ("NEW", 1, None)


async def test_a_due_date_without_an_offset_is_a_typed_answer_not_an_internal_error(
    client, make_tenant, member
):
    tenant = await make_tenant()
    _, a = await member(tenant, ["agent"])
    cid = await new_client(client, tenant.slug, a, "Naive", phone=PHONE)
    res = await gql(
        client, SCHEDULE, {"c": cid, "due": "2099-01-01T10:00:00"}, tenant=tenant.slug, token=a
    )
    # Refused by the DateTime scalar, before the resolver (api/graphql/types.py).
    assert res.get("data") is None, res
    [error] = res["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert "give a UTC offset" in error["message"], error


# ---------------------------------------------------------------- 6. reminders


async def test_a_follow_up_coming_due_is_reminded_once(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    a_id, a = await member(tenant, ["agent"])
    _, other = await member(tenant, ["agent"])
    cid = await new_client(client, slug, a, "Hu", phone=PHONE)
    later_client = await new_client(client, slug, a, "Xu", phone="13800000013")
    soon = now() + timedelta(minutes=10)
    f_soon = (await schedule(client, slug, a, cid, soon, note="bring the contract"))["followUp"]
    f_later = (await schedule(client, slug, a, later_client, now() + timedelta(hours=2)))[
        "followUp"
    ]

    async def remind() -> int:
        async with TenantDatabase(engine).session(tenant) as session:
            n = await tasks.remind_follow_ups.work(session, tenant)
            await session.commit()
        return n

    assert await remind() == 1
    async with TenantDatabase(engine).session(tenant) as session:
        [n] = (await session.scalars(select(Notification))).all()
        reminded = {
            str(f.id): f.reminded_at for f in (await session.scalars(select(FollowUpRow))).all()
        }
    assert (n.account_id, n.category, n.template) == (a_id, "leads", "followup.due")
    assert n.data == {"kind": "client", "id": cid}
    assert reminded[f_soon["id"]] is not None and reminded[f_later["id"]] is None
    local = soon.astimezone(SHANGHAI).strftime("%H:%M")
    [item] = (await gql(client, INBOX, tenant=slug, token=a))["data"]["inbox"]["items"]
    assert (item["category"], item["title"]) == ("LEADS", "跟进提醒")
    assert local in item["body"] and "Hu" in item["body"] and "bring the contract" in item["body"]
    assert item["data"] == {"kind": "client", "id": cid}

    assert await remind() == 0  # once per follow-up
    assert len((await gql(client, INBOX, tenant=slug, token=a))["data"]["inbox"]["items"]) == 1
    assert (await gql(client, INBOX, tenant=slug, token=other))["data"]["inbox"]["items"] == []
    async with TenantDatabase(engine).session(tenant) as session:
        assert len((await session.scalars(select(Notification))).all()) == 1


# ---------------------------------------------------------------- 7. validation


async def test_input_validation(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, a = await member(tenant, ["agent"])

    async def refused_field(**fields) -> str:
        got = await create(client, slug, a, "ValidationError", **fields)
        assert got["code"] == "BAD_USER_INPUT", got
        return got["field"]

    assert await refused_field(name="", phone=PHONE) == "name"
    assert await refused_field(name="   ", phone=PHONE) == "name"
    assert await refused_field(name="x" * 101, phone=PHONE) == "name"
    assert await refused_field(name="No contact") == "phone"
    assert await refused_field(name="Bad phone", phone="12345") == "phone"
    assert await refused_field(name="Bad phone", phone="not a phone") == "phone"
    assert await refused_field(name="Bad ID", idNumber="12-34") == "idNumber"
    field = await refused_field(
        name="Budget", phone=PHONE, needs={"budgetMin": 5_000_000, "budgetMax": 3_000_000}
    )
    assert field == "needs.budgetMin"
    assert await visible_ids(client, slug, a) == set()  # nothing stored

    ok = await create(
        client,
        slug,
        a,
        name="Budget",
        phone=PHONE,
        needs={"budgetMin": 3_000_000, "budgetMax": 3_000_000},
    )
    assert ok["client"]["stage"] == "NEW"
    assert await new_client(client, slug, a, "ID only", idNumber="110101199003071236")
