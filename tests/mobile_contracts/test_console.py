"""The web console's documents (console/src/**/*.graphql) are a client of the manifest like
the apps': each id is unique across clients, and the console's own flow runs by ids alone
against a gateway: sign up an agency, read the viewer, invite by email, follow the link the
email carries to the console, accept, list staff, sessions, disable, refresh, sign out."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mobile_contracts.contracts import SOURCES, documents, load_manifest
from tests.conftest import unique_slug

DOCS = [d for d in documents() if d.app == "console"]
LINK_RE = re.compile(r"https?://\S+")
PASSWORD = "console-pass-123"


def test_console_documents_live_beside_its_pages_and_join_the_manifest():
    assert len(DOCS) >= 10
    names = {d.name for d in DOCS}
    assert {"SignUp", "SignIn", "AcceptInvitation", "ConsoleSignOut"} <= names
    assert all((SOURCES["console"] / "pages").exists() for _ in DOCS)
    manifest = load_manifest()
    assert {d.id for d in DOCS} <= set(manifest)


def test_no_console_document_shares_an_id_with_another():
    # The apps share some documents (the same file in agent/ and staff/); the console's are its own.
    others = {d.id for d in documents() if d.app != "console"}
    ids = [d.id for d in DOCS]
    assert len(ids) == len(set(ids)) and not set(ids) & others


@pytest.fixture(scope="module")
def server(live_server_factory):
    with live_server_factory(email_backend="capture") as s:
        yield s


async def run(c: httpx.AsyncClient, name: str, variables=None, *, tenant=None, token=None):
    [doc] = [d for d in DOCS if d.name == name]
    headers = {"X-Anju-App": "console"}
    if tenant:
        headers["X-Tenant"] = tenant
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"documentId": doc.id, "operationName": name, "variables": variables or {}}
    resp = await c.post("/graphql", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    res = resp.json()
    assert "errors" not in res, (name, res)
    return res["data"]


async def test_the_console_flow_runs_by_document_ids(server):
    slug = unique_slug("con")
    li_email = f"li@{slug}.example.com"
    emails = server.server.config.app.state.email.outbox
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        signed = (
            await run(
                c,
                "SignUp",
                {
                    "input": {
                        "tenantSlug": slug,
                        "tenantName": "Console Homes",
                        "name": "Owner Zhang",
                        "email": f"owner@{slug}.example.com",
                        "password": PASSWORD,
                        "locale": "en",
                    }
                },
            )
        )["signUp"]
        assert signed["__typename"] == "SignUpPayload", signed
        assert signed["tenant"]["slug"] == slug
        admin = signed["tokens"]["accessToken"]
        me = (await run(c, "ConsoleViewer", tenant=slug, token=admin))["me"]
        assert me["roles"] == ["admin"] and me["account"]["name"] == "Owner Zhang"

        staff = await run(c, "StaffMembers", tenant=slug, token=admin)
        assert [m["account"]["name"] for m in staff["members"]] == ["Owner Zhang"]
        assert "agent" in {r["key"] for r in staff["roles"]}
        before = len(emails)
        invited = (
            await run(
                c,
                "InviteStaff",
                {"input": {"name": "Agent Li", "roles": ["agent"], "email": li_email}},
                tenant=slug,
                token=admin,
            )
        )["inviteMember"]
        assert invited["__typename"] == "InvitationPayload", invited
        [message] = emails[before:]
        [link] = LINK_RE.findall(message.text)
        sent = urlsplit(link)
        landed = await c.get(f"{sent.path}?{sent.query}", follow_redirects=False)
        target = urlsplit(landed.headers["location"])
        assert target.path == "/console/invite"
        query = parse_qs(target.query)
        assert query["tenant"] == [slug]

        accepted = (
            await run(
                c,
                "AcceptInvitation",
                {"token": query["token"][0], "password": PASSWORD, "name": None},
                tenant=slug,
            )
        )["acceptInvitation"]
        assert accepted["__typename"] == "SignInPayload", accepted
        agent = accepted["tokens"]
        staff = await run(c, "StaffMembers", tenant=slug, token=admin)
        li = next(m for m in staff["members"] if m["account"]["name"] == "Agent Li")
        assert li["roles"] == ["agent"] and li["status"] == "active"

        again = (
            await run(c, "SignIn", {"identifier": li_email, "password": PASSWORD}, tenant=slug)
        )["signIn"]
        assert again["__typename"] == "SignInPayload", again
        sessions = (await run(c, "ConsoleSessions", tenant=slug, token=agent["accessToken"]))[
            "mySessions"
        ]
        assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
        other = next(s for s in sessions if not s["current"])
        ended = await run(
            c, "EndSession", {"id": other["id"]}, tenant=slug, token=agent["accessToken"]
        )
        assert ended["revokeSession"] is True
        refreshed = (
            await run(c, "ConsoleRefresh", {"refreshToken": agent["refreshToken"]}, tenant=slug)
        )["refreshTokens"]
        assert refreshed["__typename"] == "SignInPayload", refreshed

        li_id = li["account"]["id"]
        disabled = (await run(c, "DisableStaff", {"accountId": li_id}, tenant=slug, token=admin))[
            "disableMember"
        ]
        assert disabled["__typename"] == "MemberPayload", disabled
        assert disabled["member"]["status"] != "active"

        out = (await run(c, "ConsoleSignOut", tenant=slug, token=admin))["signOut"]
        assert out["revokedSessionId"] == signed["tokens"]["sessionId"]
        gone = await c.post(
            "/graphql",
            json={"documentId": next(d.id for d in DOCS if d.name == "ConsoleViewer")},
            headers={"X-Tenant": slug, "Authorization": f"Bearer {admin}"},
        )
        assert gone.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_role_editor_documents_run_by_ids(server):
    slug = unique_slug("rol")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        signed = (
            await run(
                c,
                "SignUp",
                {
                    "input": {
                        "tenantSlug": slug,
                        "tenantName": "Role Homes",
                        "name": "Owner Qian",
                        "email": f"owner@{slug}.example.com",
                        "password": PASSWORD,
                    }
                },
            )
        )["signUp"]
        admin = signed["tokens"]["accessToken"]
        me_id = signed["account"]["id"]
        catalogue = await run(c, "ConsoleRoles", tenant=slug, token=admin)
        keys = {p["key"] for p in catalogue["permissionCatalogue"]}
        assert "project.read" in keys and all(
            p["description"] for p in catalogue["permissionCatalogue"]
        )
        assert {r["key"] for r in catalogue["roles"] if r["builtin"]} >= {"admin", "agent"}

        bad = (
            await run(
                c,
                "CreateCustomRole",
                {"input": {"key": "Bad Key", "name": "x", "permissions": [], "dataScope": "own"}},
                tenant=slug,
                token=admin,
            )
        )["createRole"]
        assert bad["__typename"] == "ValidationError" and bad["field"] == "key"
        role = {
            "key": "viewer",
            "name": "Viewer",
            "permissions": ["project.read"],
            "dataScope": "own",
        }
        made = await run(c, "CreateCustomRole", {"input": role}, tenant=slug, token=admin)
        assert made["createRole"]["role"] == {**role, "builtin": False}
        changed = (
            await run(
                c,
                "UpdateCustomRole",
                {
                    "input": {
                        "key": "viewer",
                        "permissions": ["project.read", "unit.read"],
                        "dataScope": "team",
                    }
                },
                tenant=slug,
                token=admin,
            )
        )["updateRole"]
        assert changed["role"]["permissions"] == ["project.read", "unit.read"]
        assert changed["role"]["dataScope"] == "team"

        both = (
            await run(
                c,
                "AssignStaffRoles",
                {"accountId": me_id, "roles": ["admin", "viewer"]},
                tenant=slug,
                token=admin,
            )
        )["assignRoles"]
        assert both["__typename"] == "MemberPayload" and set(both["member"]["roles"]) == {
            "admin",
            "viewer",
        }
        in_use = await run(c, "DeleteCustomRole", {"key": "viewer"}, tenant=slug, token=admin)
        assert in_use["deleteRole"]["__typename"] == "ConflictError", in_use
        await run(
            c,
            "AssignStaffRoles",
            {"accountId": me_id, "roles": ["admin"]},
            tenant=slug,
            token=admin,
        )
        gone = await run(c, "DeleteCustomRole", {"key": "viewer"}, tenant=slug, token=admin)
        assert gone["deleteRole"] == {"__typename": "DeleteRolePayload", "deletedKey": "viewer"}
