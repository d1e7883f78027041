"""The audit log over real HTTP round trips: one entry per mutation (arguments and row changes,
personal data masked, the outcome), none for a rolled-back operation, one per unmasked read of
someone else's personal data; append-only in the database; a hash chain that `verify` (and
`anju audit verify`) checks, with tampering and a removed tail named; one unbroken chain under
concurrent writers; the `auditLog` query, its filters and its permission."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.audit.service import MASK, verify
from tenants.sessions import TenantDatabase
from tests.api.helpers import CREATE_BUILDING, CREATE_PROJECT, create_project
from tests.api.identity.helpers import (
    ME,
    PASSWORD,
    TOKENS_PAYLOAD,
    error_codes,
    new_account,
    new_email,
    new_phone,
)
from tests.conftest import auth_headers, gql

ROOT = Path(__file__).resolve().parents[3]
ANJU = Path(sys.executable).with_name("anju")

AUDIT_LOG = """
query($filter: AuditFilter, $first: Int! = 50, $before: Int) {
  auditLog(filter: $filter, first: $first, before: $before) {
    seq id at actorId actorIp actorApp action outcome targetType targetId details
  }
}
"""
MEMBERS = "{ members { account { id name phone email } roles status } }"
SIGN_IN = f"""
mutation($identifier: String!, $password: String!) {{
  signIn(identifier: $identifier, password: $password) {TOKENS_PAYLOAD}
}}
"""
REQUEST_SMS = """
mutation($phone: String!) {
  requestSmsCode(phone: $phone) { __typename ... on UserError { code message field } }
}
"""
SIGN_IN_SMS = f"""
mutation($phone: String!, $code: String!) {{
  signInWithSmsCode(phone: $phone, code: $code) {TOKENS_PAYLOAD}
}}
"""
INVITE = """
mutation($input: InviteMemberInput!) {
  inviteMember(input: $input) {
    __typename
    ... on InvitationPayload { invitation { id phone email } }
    ... on UserError { code message field }
  }
}
"""


async def post(
    client, query: str, variables: dict | None = None, *, slug: str, token=None, **headers
) -> dict:
    """POST with X-Tenant, the admin's token (or ``token``; "" for none) and extra headers."""
    h = auth_headers(slug, token) | headers
    resp = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=h
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def admin_id(client, slug: str) -> str:
    res = await gql(client, ME, tenant=slug)
    return res["data"]["me"]["account"]["id"]


async def entries(engine, tenant) -> list[dict]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(f'SELECT * FROM "{tenant.schema_name}".audit_log ORDER BY seq')
        )
        out = [dict(r) for r in rows.mappings().all()]
    for r in out:
        if isinstance(r["details"], str):
            r["details"] = json.loads(r["details"])
    return out


async def raw_log(engine, tenant) -> str:
    """Every entry of the tenant as the database renders it (JSON text)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(f'SELECT row_to_json(a)::text FROM "{tenant.schema_name}".audit_log a')
        )
        return "\n".join(rows.scalars().all())


async def verify_tenant(engine, tenant):
    async with TenantDatabase(engine).session(tenant) as session:
        return await verify(session)


async def tamper(engine, tenant, sql: str, **params) -> None:
    """Run ``sql`` on the audit log as the database owner, with its triggers off."""
    table = f'"{tenant.schema_name}".audit_log'
    async with engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        n = (await conn.execute(text(sql.format(table=table)), params)).rowcount
        await conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    assert n == 1


async def make_entries(client, slug: str, n: int) -> list[dict]:
    return [await create_project(client, slug, f"Chain {i} 楼盘 🏠") for i in range(n)]


# ---------------------------------------------------------------- one entry per mutation


async def test_mutation_writes_one_entry_with_actor_app_args_and_changes(
    client, engine, make_tenant
):
    tenant = await make_tenant()
    actor = await admin_id(client, tenant.slug)
    res = await post(
        client,
        CREATE_PROJECT,
        {
            "input": {
                "name": "Harbour One",
                "city": "Shanghai",
                "latitude": 31.2,
                "longitude": 121.5,
            }
        },
        slug=tenant.slug,
        **{"X-Anju-App": "agent-ios/2.3"},
    )
    project = res["data"]["createProject"]["project"]

    [entry] = await entries(engine, tenant)
    assert entry["seq"] == 1
    assert entry["action"] == "createProject"
    assert entry["outcome"] == "ok"
    assert str(entry["actor_id"]) == actor
    assert entry["actor_app"] == "agent-ios/2.3"
    assert entry["actor_ip"] == "127.0.0.1"
    details = entry["details"]
    assert details["args"] == {
        "createProject": {
            "input": {
                "name": "Harbour One",
                "city": "Shanghai",
                "district": "",
                "address": "",
                "latitude": "31.2",
                "longitude": "121.5",
                "facilities": [],
                "surroundings": "",
            }
        }
    }
    [change] = details["changes"]
    assert (change["op"], change["table"], change["id"]) == ("insert", "project", project["id"])
    assert change["before"] == {}
    assert change["after"]["name"] == "Harbour One"
    assert change["after"]["latitude"] == "31.200000"


async def test_typed_error_is_recorded_as_the_outcome(client, engine, make_tenant):
    tenant = await make_tenant()
    missing = str(uuid.uuid4())
    res = await gql(
        client,
        CREATE_BUILDING,
        {"input": {"projectId": missing, "name": "Tower A", "floors": 3}},
        tenant=tenant.slug,
    )
    assert res["data"]["createBuilding"]["__typename"] == "NotFoundError", res

    [entry] = await entries(engine, tenant)
    assert entry["action"] == "createBuilding"
    assert entry["outcome"] == "NOT_FOUND"
    assert entry["details"]["args"]["createBuilding"]["input"]["projectId"] == missing
    assert entry["details"]["changes"] == []


async def test_internal_error_rolls_back_and_leaves_no_entry(
    client, engine, make_tenant, monkeypatch
):
    tenant = await make_tenant()
    await create_project(client, tenant.slug, "Before")

    async def boom(session, obj):
        session.add(obj)
        await session.flush()  # the row is written (and seen by the recorder), then it fails
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("api.project.repository.add", boom)
    res = await gql(client, CREATE_PROJECT, {"input": {"name": "Doomed"}}, tenant=tenant.slug)
    assert error_codes(res) == ["INTERNAL"], res
    monkeypatch.undo()

    log = await entries(engine, tenant)
    assert [e["action"] for e in log] == ["createProject"]
    assert "Doomed" not in json.dumps([e["details"] for e in log], ensure_ascii=False)
    async with engine.connect() as conn:
        names = (
            await conn.execute(text(f'SELECT name FROM "{tenant.schema_name}".project'))
        ).scalars()
        assert list(names) == ["Before"]
    assert (await verify_tenant(engine, tenant)).ok


async def test_sign_in_masks_identifier_and_password_and_names_the_account(
    client, engine, kit, make_tenant
):
    tenant = await make_tenant()
    email = new_email("signin")
    account_id, _ = await new_account(
        engine, kit, tenant, ["agent"], email=email, password=PASSWORD
    )
    res = await gql(
        client, SIGN_IN, {"identifier": email, "password": PASSWORD}, tenant=tenant.slug, token=None
    )
    assert res["data"]["signIn"]["__typename"] == "SignInPayload", res

    [entry] = await entries(engine, tenant)
    assert entry["action"] == "signIn"
    assert entry["outcome"] == "ok"
    assert entry["actor_id"] == account_id
    assert entry["details"]["args"] == {"signIn": {"identifier": MASK, "password": MASK}}

    # A refused sign-in: recorded too, with its outcome, masked, and no actor.
    res = await gql(
        client,
        SIGN_IN,
        {"identifier": email, "password": "wrong-password-9"},
        tenant=tenant.slug,
        token=None,
    )
    assert res["data"]["signIn"]["__typename"] == "AuthError", res
    entry = (await entries(engine, tenant))[-1]
    assert (entry["action"], entry["outcome"], entry["actor_id"]) == (
        "signIn",
        "UNAUTHENTICATED",
        None,
    )
    assert entry["details"]["args"] == {"signIn": {"identifier": MASK, "password": MASK}}


async def test_no_entry_contains_personal_data_or_secrets(client, engine, kit, make_tenant):
    tenant = await make_tenant()
    national, phone = new_phone()
    email = new_email("Pii.Person")  # mixed case: signed in as typed, stored lowercased
    account_id, _ = await new_account(
        engine, kit, tenant, ["agent"], phone=phone, email=email.lower(), password=PASSWORD
    )
    ip = {"X-Forwarded-For": f"10.77.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}
    anonymous = {"slug": tenant.slug, "token": ""}

    # Sign-ins by phone (national format), by email (mixed case) with a wrong password.
    for identifier, password in ((national, PASSWORD), (email, "nope-123-x")):
        await post(client, SIGN_IN, {"identifier": identifier, "password": password}, **anonymous)
    # An SMS code requested by phone number.
    res = await post(client, REQUEST_SMS, {"phone": national}, **anonymous, **ip)
    assert res["data"]["requestSmsCode"]["__typename"] == "SmsCodeSent", res
    # Invitations by phone and by email (as variables, and inline as a literal).
    invitee_national, invitee_phone = new_phone()
    invitee_email = new_email("invitee")
    for who in ({"phone": invitee_national}, {"email": invitee_email}):
        variables = {"input": {"name": "New", "roles": ["agent"], **who}}
        res = await post(client, INVITE, variables, slug=tenant.slug)
        assert res["data"]["inviteMember"]["__typename"] == "InvitationPayload", res
    res = await post(
        client,
        "mutation { inviteMember(input: "
        f'{{name: "Lit", roles: ["agent"], email: "{invitee_email}x"}}) {{ __typename }} }}',
        slug=tenant.slug,
    )
    assert res["data"]["inviteMember"]["__typename"] == "InvitationPayload", res
    # Unmasked reads of the members and of the pending invitations (audited as pii.read,
    # values not in the entry).
    res = await post(client, MEMBERS, slug=tenant.slug)
    assert phone in {m["account"]["phone"] for m in res["data"]["members"]}, res
    res = await post(client, "{ invitations { phone email } }", slug=tenant.slug)
    assert invitee_phone in {i["phone"] for i in res["data"]["invitations"]}, res

    raw = await raw_log(engine, tenant)
    log = await entries(engine, tenant)
    actions = [e["action"] for e in log]
    assert actions.count("signIn") == 2 and "requestSmsCode" in actions, actions
    assert actions.count("inviteMember") == 3 and "pii.read" in actions, actions
    assert MASK in raw
    for plain in (
        phone,
        national,
        phone[1:],
        email,
        email.lower(),
        PASSWORD,
        "nope-123-x",
        invitee_phone,
        invitee_national,
        invitee_email,
        invitee_email + "x",
    ):
        assert plain not in raw, plain
    assert str(account_id) in raw  # the log does name who (ids are not personal data here)


async def test_sms_code_is_never_logged(client, live_server, engine, kit, make_tenant):
    tenant = await make_tenant()
    national, phone = new_phone()
    await new_account(engine, kit, tenant, ["agent"], phone=phone)
    anonymous = {"slug": tenant.slug, "token": ""}
    ip = {"X-Forwarded-For": f"10.78.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}
    res = await post(client, REQUEST_SMS, {"phone": phone}, **anonymous, **ip)
    assert res["data"]["requestSmsCode"]["__typename"] == "SmsCodeSent", res
    sms = live_server.server.config.app.state.sms.last_to(phone)
    code = re.search(r"\b(\d{6})\b", sms.text).group(1)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for c in (wrong, code):
        await post(client, SIGN_IN_SMS, {"phone": national, "code": c}, **anonymous)
    log = await entries(engine, tenant)
    assert [(e["action"], e["outcome"]) for e in log] == [
        ("requestSmsCode", "ok"),
        ("signInWithSmsCode", "UNAUTHENTICATED"),
        ("signInWithSmsCode", "ok"),
    ]
    assert log[-1]["details"]["args"] == {"signInWithSmsCode": {"phone": MASK, "code": MASK}}
    raw = await raw_log(engine, tenant)
    for plain in (f'"{code}"', f'"{wrong}"', phone, national):
        assert plain not in raw, plain


# ---------------------------------------------------------------- unmasked reads


async def test_reading_members_audits_each_unmasked_read(client, engine, kit, make_tenant):
    tenant = await make_tenant()
    admin = await admin_id(client, tenant.slug)
    _, phone = new_phone()
    agent_id, _ = await new_account(engine, kit, tenant, ["agent"], phone=phone)
    manager_id, manager = await new_account(engine, kit, tenant, ["manager"], email=new_email("m"))

    res = await gql(client, MEMBERS, tenant=tenant.slug)
    by_id = {m["account"]["id"]: m["account"] for m in res["data"]["members"]}
    assert by_id[str(agent_id)]["phone"] == phone  # unmasked for the admin
    log = await entries(engine, tenant)
    assert all(e["action"] == "pii.read" for e in log), log
    assert sorted(e["target_id"] for e in log) == sorted([str(agent_id), str(manager_id)])
    for e in log:
        assert (e["target_type"], e["outcome"], str(e["actor_id"])) == ("account", "ok", admin)
        assert e["details"] == {"fields": ["phone", "email"]}

    # A manager (member.read, no pii.read) sees masked values, and nothing is recorded.
    res = await gql(client, MEMBERS, tenant=tenant.slug, token=manager.access_token)
    by_id = {m["account"]["id"]: m["account"] for m in res["data"]["members"]}
    masked = by_id[str(agent_id)]["phone"]
    assert masked != phone and masked == phone[:-8] + "****" + phone[-4:], masked
    assert "***@" in by_id[admin]["email"]
    assert by_id[str(manager_id)]["email"] and "***" not in by_id[str(manager_id)]["email"]
    assert len(await entries(engine, tenant)) == 2


# ---------------------------------------------------------------- append-only, hash chain


async def test_database_refuses_changes_to_the_log(client, engine, make_tenant):
    tenant = await make_tenant()
    await make_entries(client, tenant.slug, 2)
    table = f'"{tenant.schema_name}".audit_log'
    for sql in (
        f"UPDATE {table} SET details = '{{}}'::jsonb",
        f"UPDATE {table} SET action = 'nothing happened' WHERE seq = 1",
        f"DELETE FROM {table}",
        f"DELETE FROM {table} WHERE seq = (SELECT max(seq) FROM {table})",
        f"TRUNCATE {table}",
        f"TRUNCATE {table} CASCADE",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(sql))
    assert len(await entries(engine, tenant)) == 2
    assert (await verify_tenant(engine, tenant)).ok


async def test_chain_verifies_then_tampering_is_named(client, engine, make_tenant):
    tenant = await make_tenant()
    await make_entries(client, tenant.slug, 4)
    await gql(client, MEMBERS, tenant=tenant.slug)  # no other member: no pii.read entry
    report = await verify_tenant(engine, tenant)
    assert (report.ok, report.entries, report.first_broken_seq) == (True, 4, None)

    log = await entries(engine, tenant)
    assert log[0]["prev_hash"] == b""
    for prev, cur in itertools.pairwise(log):
        assert cur["prev_hash"] == prev["hash"]

    await tamper(
        engine,
        tenant,
        """UPDATE {table} SET details = jsonb_set(details, '{{args,createProject,input,name}}',
           '"Forged"') WHERE seq = 2""",
    )
    report = await verify_tenant(engine, tenant)
    assert not report.ok
    assert report.first_broken_seq == 2, report
    assert "hash" in report.reason


async def test_tampering_with_other_columns_is_named(client, engine, make_tenant):
    tenant = await make_tenant()
    await make_entries(client, tenant.slug, 3)
    await tamper(engine, tenant, "UPDATE {table} SET actor_id = NULL WHERE seq = 3")
    assert (await verify_tenant(engine, tenant)).first_broken_seq == 3


async def test_removed_last_entry_is_reported(client, engine, make_tenant):
    tenant = await make_tenant()
    await make_entries(client, tenant.slug, 3)
    await tamper(engine, tenant, "DELETE FROM {table} WHERE seq = 3")
    report = await verify_tenant(engine, tenant)
    assert (report.ok, report.first_broken_seq, report.entries) == (False, 3, 2), report


async def test_removed_middle_entry_is_reported(client, engine, make_tenant):
    tenant = await make_tenant()
    await make_entries(client, tenant.slug, 3)
    await tamper(engine, tenant, "DELETE FROM {table} WHERE seq = 2")
    report = await verify_tenant(engine, tenant)
    assert (report.ok, report.first_broken_seq) == (False, 2), report


@pytest.fixture(scope="module")
def cli_env(db_url, tmp_path_factory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJU_")}
    env.update(
        ANJU_DATABASE_URL=db_url.set(drivername="postgresql").render_as_string(hide_password=False),
        ANJU_DATA_DIR=str(tmp_path_factory.mktemp("anju-audit-cli")),
        ANJU_ENV="test",
        ANJU_LOG_LEVEL="WARNING",
    )
    return env


async def test_cli_verify_exit_codes(client, engine, make_tenant, cli_env):
    intact, broken = await make_tenant(), await make_tenant()
    await make_entries(client, intact.slug, 2)
    await make_entries(client, broken.slug, 3)
    await tamper(engine, broken, "UPDATE {table} SET outcome = 'NOT_FOUND' WHERE seq = 2")

    def run(slug: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(ANJU), "audit", "verify", "--tenant", slug],
            cwd=ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    with ThreadPoolExecutor(2) as pool:
        ok, bad = pool.map(run, [intact.slug, broken.slug])
    assert ok.returncode == 0, ok
    assert f"{intact.slug}: audit chain intact (2 entries)" in ok.stdout
    assert bad.returncode == 1, bad
    assert re.search(rf"{broken.slug}: audit chain BROKEN at entry 2\b", bad.stdout), bad.stdout


async def test_concurrent_mutations_form_one_unbroken_chain(client, engine, make_tenant):
    tenant = await make_tenant()
    results = await asyncio.gather(
        *(
            gql(client, CREATE_PROJECT, {"input": {"name": f"Rush {i}"}}, tenant=tenant.slug)
            for i in range(20)
        )
    )
    for res in results:
        assert res["data"]["createProject"]["__typename"] == "ProjectPayload", res
    log = await entries(engine, tenant)
    assert [e["seq"] for e in log] == list(range(1, 21))
    assert sorted(e["details"]["args"]["createProject"]["input"]["name"] for e in log) == sorted(
        f"Rush {i}" for i in range(20)
    )
    report = await verify_tenant(engine, tenant)
    assert (report.ok, report.entries) == (True, 20), report
    async with engine.connect() as conn:
        head = (
            await conn.execute(text(f'SELECT seq, hash FROM "{tenant.schema_name}".audit_head'))
        ).one()
    assert (head.seq, head.hash) == (20, log[-1]["hash"])


# ---------------------------------------------------------------- the auditLog query


async def audit_log(client, slug: str, token=None, **variables) -> list[dict]:
    kw = {} if token is None else {"token": token}
    res = await gql(client, AUDIT_LOG, variables, tenant=slug, **kw)
    assert "errors" not in res, res
    return res["data"]["auditLog"]


async def test_audit_log_query_filters_paging_and_permission(client, engine, kit, make_tenant):
    tenant = await make_tenant()
    admin = await admin_id(client, tenant.slug)
    manager_id, manager = await new_account(engine, kit, tenant, ["manager"])
    _, agent = await new_account(engine, kit, tenant, ["agent"])
    await create_project(client, tenant.slug, "By admin 1")  # seq 1
    res = await gql(
        client,
        CREATE_PROJECT,
        {"input": {"name": "By manager"}},
        tenant=tenant.slug,
        token=manager.access_token,
    )
    assert res["data"]["createProject"]["__typename"] == "ProjectPayload", res  # seq 2
    await gql(client, MEMBERS, tenant=tenant.slug)  # seq 3, 4: pii.read of two members
    await create_project(client, tenant.slug, "By admin 2")  # seq 5

    everything = await audit_log(client, tenant.slug)
    assert [e["seq"] for e in everything] == [5, 4, 3, 2, 1]  # newest first
    assert [e["action"] for e in everything] == [
        "createProject",
        "pii.read",
        "pii.read",
        "createProject",
        "createProject",
    ]
    first = everything[-1]
    assert first["actorId"] == admin and first["outcome"] == "ok"
    assert first["details"]["args"]["createProject"]["input"]["name"] == "By admin 1"

    by_action = await audit_log(client, tenant.slug, filter={"action": "createProject"})
    assert [e["seq"] for e in by_action] == [5, 2, 1]
    by_actor = await audit_log(client, tenant.slug, filter={"actorId": str(manager_id)})
    assert [e["seq"] for e in by_actor] == [2]
    assert await audit_log(client, tenant.slug, filter={"actorId": "not-a-uuid"}) == []
    by_target = await audit_log(client, tenant.slug, filter={"targetType": "account"})
    assert [e["seq"] for e in by_target] == [4, 3]
    target = by_target[0]["targetId"]
    by_target_id = await audit_log(client, tenant.slug, filter={"targetId": target})
    assert [e["seq"] for e in by_target_id] == [4]
    both = await audit_log(
        client, tenant.slug, filter={"action": "createProject", "actorId": admin}
    )
    assert [e["seq"] for e in both] == [5, 1]

    at = {e["seq"]: e["at"] for e in everything}
    assert datetime.fromisoformat(at[1]) <= datetime.fromisoformat(at[5])
    since = await audit_log(client, tenant.slug, filter={"since": at[2]})
    assert [e["seq"] for e in since] == [5, 4, 3, 2]
    until = await audit_log(client, tenant.slug, filter={"until": at[2]})
    assert [e["seq"] for e in until] == [1]
    window = await audit_log(client, tenant.slug, filter={"since": at[2], "until": at[5]})
    assert [e["seq"] for e in window] == [4, 3, 2]

    page1 = await audit_log(client, tenant.slug, first=2)
    assert [e["seq"] for e in page1] == [5, 4]
    page2 = await audit_log(client, tenant.slug, first=2, before=page1[-1]["seq"])
    assert [e["seq"] for e in page2] == [3, 2]
    page3 = await audit_log(client, tenant.slug, first=2, before=page2[-1]["seq"])
    assert [e["seq"] for e in page3] == [1]
    assert await audit_log(client, tenant.slug, first=2, before=1) == []
    assert await audit_log(client, tenant.slug, first=-5) == []

    # The manager has audit.read; an agent does not.
    assert len(await audit_log(client, tenant.slug, token=manager.access_token)) == 5
    res = await gql(client, AUDIT_LOG, tenant=tenant.slug, token=agent.access_token)
    assert res["data"] is None, res
    assert error_codes(res) == ["FORBIDDEN"], res
    res = await gql(client, AUDIT_LOG, tenant=tenant.slug, token=None)
    assert error_codes(res) == ["UNAUTHENTICATED"], res
    # Reading the log is not itself logged (no personal data in it).
    assert len(await entries(engine, tenant)) == 5
