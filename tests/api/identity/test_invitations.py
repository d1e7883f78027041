"""Invitations and disabling members, over real HTTP round trips on a gateway whose SMS and
email senders capture what they send: the link and its single-use token, accepting (a new
password, or the existing one of a person who already has an account), expiry and the tenant an
invitation belongs to, refusals as typed errors, the permission, and disabling (sessions end at
once; never yourself, never the last admin)."""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.security.tokens import refresh_hash
from tests.api.helpers import typed_denial
from tests.api.identity.helpers import (
    ME,
    PASSWORD,
    REFRESH_PAYLOAD,
    assert_unauthenticated,
    call,
    execute,
    fresh_ip,
    new_account,
    new_email,
    new_phone,
    refresh_op,
    row,
    scalar,
    sign_in_op,
)
from tests.conftest import TOKENS, gql

INVITE = """
mutation($input: InviteMemberInput!) {
  inviteMember(input: $input) {
    __typename
    ... on InvitationPayload { invitation { id name phone email roles expiresAt } }
    ... on UserError { code message field }
  }
}
"""
WITHDRAW = """
mutation($id: ID!) {
  withdrawInvitation(id: $id) {
    __typename
    ... on WithdrawInvitationPayload { withdrawnId }
    ... on UserError { code message field }
  }
}
"""
MEMBERS = "{ members { status roles account { id name phone email } } }"
INVITATIONS = "{ invitations { id name phone email roles } }"
ACCEPT = f"""
mutation($token: String!, $password: String!, $name: String) {{
  acceptInvitation(token: $token, password: $password, name: $name) {REFRESH_PAYLOAD}
}}
"""
DISABLE = """
mutation($id: ID!) {
  disableMember(accountId: $id) {
    __typename
    ... on MemberPayload { member { status roles account { id } } }
    ... on UserError { code message field }
  }
}
"""
CREATE_ROLE = """
mutation($input: CreateRoleInput!) {
  createRole(input: $input) { __typename ... on UserError { code message field } }
}
"""
LINK_RE = re.compile(r"https?://\S+")


@pytest.fixture(scope="module")
def server(live_server_factory):
    """A gateway whose email sender captures (the SMS sender captures in every test gateway)."""
    with live_server_factory(email_backend="capture") as s:
        yield s


@pytest.fixture
async def client(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture
def outbox(server):
    app = server.server.config.app
    return app.state.email.outbox, app.state.sms.outbox


async def invite(client, slug: str, token=None, **fields) -> dict:
    kw = {} if token is None else {"token": token}
    data = {"name": "New Person", "roles": ["agent"], **fields}
    res = await gql(client, INVITE, {"input": data}, tenant=slug, **kw)
    assert "errors" not in res, res
    return res["data"]["inviteMember"]


async def accept(client, slug: str, token: str, password: str = PASSWORD, name=None) -> dict:
    res = await gql(
        client,
        ACCEPT,
        {"token": token, "password": password, "name": name},
        tenant=slug,
        token=None,
    )
    assert "errors" not in res, res
    return res["data"]["acceptInvitation"]


async def disable(client, slug: str, account_id, token=None) -> dict:
    kw = {} if token is None else {"token": token}
    res = await gql(client, DISABLE, {"id": str(account_id)}, tenant=slug, **kw)
    assert "errors" not in res, res
    return res["data"]["disableMember"]


def link_token(text: str, settings, slug: str) -> str:
    [link] = LINK_RE.findall(text)
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == settings.invitation_url
    query = parse_qs(parts.query)
    assert query["tenant"] == [slug]
    [token] = query["token"]
    assert len(token) >= 32
    return token


async def invited_by_email(client, outbox, tenant, settings, **fields) -> tuple[dict, str]:
    """Invite a new person by email; returns (invitation, token from the email)."""
    emails, _ = outbox
    email = fields.pop("email", None) or new_email("inv")
    before = len(emails)
    payload = await invite(client, tenant.slug, email=email, **fields)
    assert payload["__typename"] == "InvitationPayload", payload
    [message] = emails[before:]
    assert message.to == email.lower()
    return payload["invitation"], link_token(message.text, settings, tenant.slug)


async def me(client, slug: str, token: str) -> dict:
    res = await gql(client, ME, tenant=slug, token=token)
    assert "errors" not in res, res
    return res["data"]["me"]


async def membership(engine, account_id, tenant):
    return await row(
        engine,
        "SELECT roles, status FROM shared.membership WHERE account_id = :a AND tenant_id = :t",
        a=uuid.UUID(str(account_id)),
        t=uuid.UUID(tenant.id),
    )


# ---------------------------------------------------------------- inviting and accepting


async def test_invite_by_email_then_accept(client, engine, outbox, make_tenant, settings):
    tenant = await make_tenant(name="Harbour Realty")
    emails, _ = outbox
    email = new_email("Wang.Fang")
    before = len(emails)
    payload = await invite(client, tenant.slug, name="Wang Fang", email=email, roles=["agent"])
    assert payload["__typename"] == "InvitationPayload", payload
    invitation = payload["invitation"]
    assert (invitation["name"], invitation["roles"]) == ("Wang Fang", ["agent"])
    assert (invitation["email"], invitation["phone"]) == (email.lower(), None)
    # Pending: listed as an invitation, not yet a member.
    listed = (await gql(client, INVITATIONS, tenant=tenant.slug))["data"]["invitations"]
    assert [i["id"] for i in listed] == [invitation["id"]]
    members = (await gql(client, MEMBERS, tenant=tenant.slug))["data"]["members"]
    assert email.lower() not in [m["account"]["email"] for m in members]

    [message] = emails[before:]
    assert message.to == email.lower()
    assert "Harbour Realty" in message.subject
    token = link_token(message.text, settings, tenant.slug)
    # Only the token's hash is kept.
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM shared.invitation WHERE token_hash = :h",
            h=refresh_hash(token),
        )
        == 1
    )

    res = await accept(client, tenant.slug, token, name="Wang Fang (HR)")
    assert res["__typename"] == "SignInPayload", res
    viewer = await me(client, tenant.slug, res["tokens"]["accessToken"])
    account_id = viewer["account"]["id"]
    assert viewer["account"]["name"] == "Wang Fang (HR)"
    assert viewer["account"]["email"] == email.lower()
    assert viewer["roles"] == ["agent"]
    assert (await membership(engine, account_id, tenant))["status"] == "active"
    members = (await gql(client, MEMBERS, tenant=tenant.slug))["data"]["members"]
    assert account_id in [m["account"]["id"] for m in members]
    assert (await gql(client, INVITATIONS, tenant=tenant.slug))["data"]["invitations"] == []

    # The password set on accepting signs in.
    res = await gql(client, sign_in_op(email, PASSWORD), tenant=tenant.slug, token=None)
    assert res["data"]["signIn"]["__typename"] == "SignInPayload", res

    # Single use.
    res = await accept(client, tenant.slug, token, password="another-pass-1")
    assert (res["__typename"], res["field"]) == ("AuthError", "token"), res


async def test_invite_by_phone_sends_an_sms(client, engine, outbox, make_tenant, settings):
    tenant = await make_tenant()
    _, sms = outbox
    national, phone = new_phone()
    email = new_email("both")
    before = len(sms)
    payload = await invite(
        client, tenant.slug, phone=national, email=email, roles=["manager", "agent"]
    )
    assert payload["__typename"] == "InvitationPayload", payload
    assert payload["invitation"]["roles"] == ["agent", "manager"]
    assert payload["invitation"]["phone"] == phone
    [message] = sms[before:]
    assert message.phone == phone
    token = link_token(message.text, settings, tenant.slug)

    # A password that breaks the rules is refused and the invitation stays usable.
    res = await accept(client, tenant.slug, token, password="short")
    assert (res["__typename"], res["field"]) == ("ValidationError", "password"), res
    res = await accept(client, tenant.slug, token)
    assert res["__typename"] == "SignInPayload", res
    viewer = await me(client, tenant.slug, res["tokens"]["accessToken"])
    assert (viewer["account"]["phone"], viewer["dataScope"]) == (phone, "team")
    # Only the identifier the link went to: the typed email was never verified (see
    # test_inviter_cannot_plant_an_address_on_the_invited_account).
    assert viewer["account"]["email"] is None


async def test_expired_invitation_is_refused(client, engine, outbox, make_tenant, settings):
    tenant = await make_tenant()
    invitation, token = await invited_by_email(client, outbox, tenant, settings)
    n = await execute(
        engine,
        "UPDATE shared.invitation SET expires_at = now() - interval '1 second' WHERE id = :i",
        i=uuid.UUID(invitation["id"]),
    )
    assert n == 1
    res = await accept(client, tenant.slug, token)
    assert (res["__typename"], res["field"]) == ("AuthError", "token"), res
    assert "expired" in res["message"]
    digest = refresh_hash(token)
    assert (
        await scalar(
            engine, "SELECT account_id FROM shared.invitation WHERE token_hash = :h", h=digest
        )
        is None
    )


async def test_invitation_is_only_good_for_its_tenant(
    client, engine, outbox, make_tenant, settings
):
    tenant, other = await make_tenant(), await make_tenant()
    _, token = await invited_by_email(client, outbox, tenant, settings)
    res = await accept(client, other.slug, token)
    assert (res["__typename"], res["field"]) == ("AuthError", "token"), res
    res = await accept(client, tenant.slug, "not-a-token")
    assert res["__typename"] == "AuthError", res
    # Still good where it belongs.
    res = await accept(client, tenant.slug, token)
    assert res["__typename"] == "SignInPayload"
    account_id = (await me(client, tenant.slug, res["tokens"]["accessToken"]))["account"]["id"]
    assert await membership(engine, account_id, other) is None


async def test_existing_account_proves_its_password_to_join_another_tenant(
    client, engine, kit, outbox, make_tenant, settings
):
    home, second = await make_tenant(), await make_tenant()
    email = new_email("existing")
    account_id, home_tokens = await new_account(
        engine, kit, home, ["agent"], email=email, password=PASSWORD, name="Li Lei"
    )
    hash_before = await scalar(
        engine, "SELECT password_hash FROM shared.account WHERE id = :a", a=account_id
    )
    invitation, token = await invited_by_email(
        client, outbox, second, settings, email=email.upper(), name="Someone Else"
    )
    # Only what the inviter typed comes back, nothing of the existing account.
    assert invitation["name"] == "Someone Else"
    assert invitation["email"] == email.lower()
    assert invitation["id"] != str(account_id)
    assert await membership(engine, account_id, second) is None

    res = await accept(client, second.slug, token, password="a-new-password-1")
    assert (res["__typename"], res["field"]) == ("AuthError", "password"), res
    assert (
        await scalar(engine, "SELECT password_hash FROM shared.account WHERE id = :a", a=account_id)
        == hash_before
    )
    assert await membership(engine, account_id, second) is None

    res = await accept(client, second.slug, token, password=PASSWORD)
    assert res["__typename"] == "SignInPayload", res
    viewer = await me(client, second.slug, res["tokens"]["accessToken"])
    assert (viewer["account"]["id"], viewer["account"]["name"]) == (str(account_id), "Li Lei")
    assert (
        await scalar(engine, "SELECT password_hash FROM shared.account WHERE id = :a", a=account_id)
        == hash_before
    )
    # The home tenant is untouched.
    assert (await me(client, home.slug, home_tokens.access_token))["roles"] == ["agent"]
    assert (await membership(engine, account_id, home))["status"] == "active"


async def test_inviting_another_tenants_person_discloses_nothing(
    client, engine, kit, outbox, make_tenant
):
    """Issue #17 item 4: B's admin invites A's admin by email and phone. Nothing of that
    account comes back (id, name, phone), and it is not among B's members until it accepts."""
    a, b = await make_tenant(), await make_tenant()
    email = new_email("admin-of-a")
    national, phone = new_phone()
    account_id, _ = await new_account(
        engine, kit, a, ["admin"], email=email, phone=phone, password=PASSWORD, name="Zhao Admin"
    )
    # Any shape of answer: the account must not join B's members by being invited.
    res = await gql(
        client,
        "mutation($input: InviteMemberInput!) { inviteMember(input: $input) { __typename } }",
        {"input": {"name": "Typed Name", "roles": ["agent"], "email": email}},
        tenant=b.slug,
    )
    assert "errors" not in res, res
    members = await gql(client, MEMBERS, tenant=b.slug)
    text = json.dumps(members)
    for secret in (str(account_id), "Zhao Admin", phone, email.lower()):
        assert secret not in text, members
    assert await membership(engine, account_id, b) is None

    for typed in ({"email": email.upper()}, {"phone": national}):
        res = await invite(client, b.slug, name="Typed Name", **typed)
        assert res["__typename"] == "InvitationPayload", res
        text = json.dumps(res)
        for secret in (str(account_id), "Zhao Admin"):
            assert secret not in text, res
        # The account's other identifier stays unknown.
        assert (phone if "email" in typed else email.lower()) not in text, res
    # The pending invitations show what was typed, nothing more (the second email invitation
    # replaced the first).
    listed = (await gql(client, INVITATIONS, tenant=b.slug))["data"]["invitations"]
    assert sorted((i["name"], i["email"] or "", i["phone"] or "") for i in listed) == sorted(
        [("Typed Name", email.lower(), ""), ("Typed Name", "", phone)]
    )
    assert "Zhao Admin" not in json.dumps(listed)


# ---------------------------------------------------------------- refusals


async def test_inviting_an_active_member_is_a_conflict(client, engine, kit, outbox, make_tenant):
    tenant = await make_tenant()
    emails, sms = outbox
    email = new_email("active")
    _, phone = new_phone()
    await new_account(engine, kit, tenant, ["agent"], email=email, phone=phone)
    before = (len(emails), len(sms))
    res = await invite(client, tenant.slug, email=email.upper())
    assert (res["__typename"], res["code"], res["field"]) == ("ConflictError", "CONFLICT", "email")
    res = await invite(client, tenant.slug, phone=phone)
    assert (res["__typename"], res["field"]) == ("ConflictError", "phone"), res
    assert (len(emails), len(sms)) == before
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM shared.invitation WHERE tenant_id = :t",
            t=uuid.UUID(tenant.id),
        )
        == 0
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"roles": ["wizard"]}, "roles"),
        ({"roles": ["agent", "no_such_role"]}, "roles"),
        ({"roles": []}, "roles"),
        ({"email": "not-an-email"}, "email"),
        ({"email": None, "phone": "12345"}, "phone"),
        ({"email": None}, "phone"),
    ],
)
async def test_invalid_invitations_are_validation_errors_and_leave_nothing(
    client, engine, kit, outbox, make_tenant, fields, field
):
    tenant = await make_tenant()
    emails, sms = outbox
    email = new_email("invalid")
    before = (len(emails), len(sms))
    res = await invite(client, tenant.slug, **({"email": email} | fields))
    assert (res["__typename"], res["code"], res["field"]) == (
        "ValidationError",
        "BAD_USER_INPUT",
        field,
    ), res
    assert (len(emails), len(sms)) == before
    digest = kit.blind_index.digest(email, scope="shared", column="email")
    assert (
        await scalar(engine, "SELECT count(*) FROM shared.account WHERE email_bidx = :d", d=digest)
        == 0
    )
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM shared.membership WHERE tenant_id = :t",
            t=uuid.UUID(tenant.id),
        )
        == 1
    )


async def test_agent_cannot_invite(client, engine, kit, outbox, make_tenant):
    tenant = await make_tenant()
    emails, _ = outbox
    _, agent = await new_account(engine, kit, tenant, ["agent"])
    before = len(emails)
    members = await scalar(
        engine,
        "SELECT count(*) FROM shared.membership WHERE tenant_id = :t",
        t=uuid.UUID(tenant.id),
    )
    res = await gql(
        client,
        INVITE,
        {"input": {"name": "X", "roles": ["admin"], "email": new_email()}},
        tenant=tenant.slug,
        token=agent.access_token,
    )
    assert "member.invite" in typed_denial(res, "inviteMember", "FORBIDDEN")["message"]
    res = await gql(
        client, DISABLE, {"id": str(uuid.uuid4())}, tenant=tenant.slug, token=agent.access_token
    )
    assert "member.invite" in typed_denial(res, "disableMember", "FORBIDDEN")["message"]
    assert len(emails) == before  # nothing was sent, nobody was added
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM shared.membership WHERE tenant_id = :t",
            t=uuid.UUID(tenant.id),
        )
        == members
    )


# ---------------------------------------------------------------- disabling members


async def test_disabling_a_member_ends_their_sessions_at_once(client, engine, kit, make_tenant):
    tenant = await make_tenant()
    account_id, tokens = await new_account(engine, kit, tenant, ["agent"])
    _, second_session = await new_account(engine, kit, tenant, ["agent"])  # someone else
    assert (await me(client, tenant.slug, tokens.access_token))["roles"] == ["agent"]

    payload = await disable(client, tenant.slug, account_id)
    assert payload["__typename"] == "MemberPayload", payload
    assert payload["member"]["status"] == "disabled"
    assert (await membership(engine, account_id, tenant))["status"] == "disabled"

    assert_unauthenticated(await gql(client, ME, tenant=tenant.slug, token=tokens.access_token))
    res = await gql(client, refresh_op(tokens.refresh_token), tenant=tenant.slug, token=None)
    assert res["data"]["refreshTokens"]["__typename"] == "AuthError", res
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM shared.refresh_token"
            " WHERE account_id = :a AND revoked_at IS NULL",
            a=account_id,
        )
        == 0
    )
    # Others are not affected.
    assert (await me(client, tenant.slug, second_session.access_token))["roles"] == ["agent"]


async def test_disabling_yourself_the_last_admin_or_a_stranger_is_refused(
    client, engine, kit, make_tenant
):
    tenant, other = await make_tenant(), await make_tenant()
    admin = (await gql(client, ME, tenant=tenant.slug))["data"]["me"]["account"]["id"]
    res = await disable(client, tenant.slug, admin)
    assert (res["__typename"], res["field"]) == ("ConflictError", "accountId"), res

    # Someone who may disable members but is not an admin meets the last-admin rule.
    res = await gql(
        client,
        CREATE_ROLE,
        {"input": {"key": "hr", "name": "HR", "permissions": ["member.invite", "member.read"]}},
        tenant=tenant.slug,
    )
    assert res["data"]["createRole"]["__typename"] == "RolePayload", res
    _, hr = await new_account(engine, kit, tenant, ["hr"])
    second_admin, _ = await new_account(engine, kit, tenant, ["admin"])
    res = await disable(client, tenant.slug, second_admin, token=hr.access_token)
    assert res["__typename"] == "MemberPayload", res  # two admins: one may go
    res = await disable(client, tenant.slug, admin, token=hr.access_token)
    assert (res["__typename"], res["code"], res["field"]) == (
        "ConflictError",
        "CONFLICT",
        "accountId",
    ), res
    assert (await membership(engine, admin, tenant))["status"] == "active"
    assert (await me(client, tenant.slug, TOKENS[tenant.slug]))["roles"] == ["admin"]

    # A member of another tenant, or no member at all: not found here, and left alone.
    stranger, stranger_tokens = await new_account(engine, kit, other, ["agent"])
    for target in (stranger, uuid.uuid4(), "not-an-id"):
        res = await disable(client, tenant.slug, target)
        assert (res["__typename"], res["field"]) == ("NotFoundError", "accountId"), res
    assert (await me(client, other.slug, stranger_tokens.access_token))["roles"] == ["agent"]


async def test_withdrawn_or_replaced_invitation_cannot_be_accepted(
    client, engine, outbox, make_tenant, settings
):
    tenant, other = await make_tenant(), await make_tenant()
    email = new_email("withdrawn")
    invitation, token = await invited_by_email(client, outbox, tenant, settings, email=email)
    res = await gql(client, WITHDRAW, {"id": invitation["id"]}, tenant=other.slug)
    assert res["data"]["withdrawInvitation"]["__typename"] == "NotFoundError", res  # not theirs
    res = await gql(client, WITHDRAW, {"id": invitation["id"]}, tenant=tenant.slug)
    assert res["data"]["withdrawInvitation"]["__typename"] == "WithdrawInvitationPayload", res
    res = await accept(client, tenant.slug, token)
    assert (res["__typename"], res["field"]) == ("AuthError", "token"), res
    assert "withdrawn" in res["message"]
    res = await gql(client, WITHDRAW, {"id": invitation["id"]}, tenant=tenant.slug)
    assert res["data"]["withdrawInvitation"]["__typename"] == "NotFoundError", res

    # Inviting the same email again replaces the earlier link.
    _, first = await invited_by_email(client, outbox, tenant, settings, email=email)
    _, second = await invited_by_email(client, outbox, tenant, settings, email=email)
    assert (await accept(client, tenant.slug, first))["__typename"] == "AuthError"
    assert (await accept(client, tenant.slug, second))["__typename"] == "SignInPayload"


async def test_disabled_member_invited_again_comes_back_but_not_by_an_older_link(
    client, engine, kit, outbox, make_tenant, settings
):
    tenant = await make_tenant()
    email = new_email("again")
    account_id, _ = await new_account(
        engine, kit, tenant, ["agent"], email=email, password=PASSWORD
    )
    res = await invite(client, tenant.slug, email=email)
    assert res["__typename"] == "ConflictError", res  # already an active member
    assert (await disable(client, tenant.slug, account_id))["__typename"] == "MemberPayload"
    _, token = await invited_by_email(
        client, outbox, tenant, settings, email=email, roles=["manager"]
    )
    res = await accept(client, tenant.slug, token, password=PASSWORD)
    assert res["__typename"] == "SignInPayload", res
    assert dict(await membership(engine, account_id, tenant)) == {
        "roles": ["manager"],
        "status": "active",
    }
    # Disabling withdraws the pending invitations of the person: an earlier link does not
    # bring them back.
    assert (await disable(client, tenant.slug, account_id))["__typename"] == "MemberPayload"
    _, token = await invited_by_email(client, outbox, tenant, settings, email=email)
    assert (await disable(client, tenant.slug, account_id))["__typename"] == "MemberPayload"
    res = await accept(client, tenant.slug, token, password=PASSWORD)
    assert (res["__typename"], res["field"]) == ("AuthError", "token"), res
    assert (await membership(engine, account_id, tenant))["status"] == "disabled"


async def test_inviting_with_roles_needs_role_manage(client, engine, kit, outbox, make_tenant):
    tenant = await make_tenant()
    res = await gql(
        client,
        CREATE_ROLE,
        {"input": {"key": "recruiter", "name": "Recruiter", "permissions": ["member.invite"]}},
        tenant=tenant.slug,
    )
    assert res["data"]["createRole"]["__typename"] == "RolePayload", res
    _, recruiter = await new_account(engine, kit, tenant, ["recruiter"])
    res = await gql(
        client,
        INVITE,
        {"input": {"name": "My other me", "roles": ["admin"], "email": new_email("alt")}},
        tenant=tenant.slug,
        token=recruiter.access_token,
    )
    payload = (res.get("data") or {}).get("inviteMember") or {}
    assert payload.get("__typename") != "MemberPayload", res
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM shared.membership WHERE tenant_id = :t AND 'admin' = ANY(roles)",
            t=uuid.UUID(tenant.id),
        )
        == 1
    )


# ---------------------------------------------------------------- reviewed defects


async def test_inviter_cannot_plant_an_address_on_the_invited_account(
    client, engine, outbox, make_tenant, settings
):
    """An admin invites the victim's phone and types, as the email, an address the admin
    reads. The victim accepts through the SMS link: the new account must not carry that email,
    or a password reset for it would mail the admin a link to the victim's account."""
    tenant = await make_tenant()
    emails, sms = outbox
    national, victim_phone = new_phone()
    planted = new_email("admin-mailbox")
    before = len(sms)
    payload = await invite(client, tenant.slug, name="Victim", phone=national, email=planted)
    assert payload["__typename"] == "InvitationPayload", payload
    [message] = sms[before:]
    res = await accept(client, tenant.slug, link_token(message.text, settings, tenant.slug))
    assert res["__typename"] == "SignInPayload", res
    viewer = await me(client, tenant.slug, res["tokens"]["accessToken"])
    assert (viewer["account"]["phone"], viewer["account"]["email"]) == (victim_phone, None)
    # No account has the planted address (sign-in with it and the victim's password fails).
    res = await gql(client, sign_in_op(planted, PASSWORD), tenant=tenant.slug, token=None)
    assert res["data"]["signIn"]["__typename"] == "AuthError", res

    mail_before = len(emails)
    res = await call(client, tenant.slug, RESET_REQUEST, {"identifier": planted}, ip=fresh_ip())
    assert res["requestPasswordReset"]["__typename"] == "PasswordResetRequested", res
    assert emails[mail_before:] == []
    # The request was counted for no account.
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM shared.password_reset WHERE tenant_id = :t"
            " AND account_id IS NOT NULL",
            t=uuid.UUID(tenant.id),
        )
        == 0
    )


async def test_wrong_passwords_on_accepting_lock_the_account_as_sign_in_does(
    client, engine, kit, outbox, make_tenant, settings
):
    """An invitation to an existing account's email is not a way round the sign-in lockout:
    each wrong password counts, and past the limit the account is locked everywhere."""
    home, second = await make_tenant(), await make_tenant()
    email = new_email("guessed")
    account_id, _ = await new_account(engine, kit, home, ["agent"], email=email, password=PASSWORD)
    _, token = await invited_by_email(client, outbox, second, settings, email=email)
    for i in range(settings.login_max_failures):
        res = await accept_answer(client, second.slug, token, f"guess-number-{i}")
        assert (res["__typename"], res["field"]) == ("AuthError", "password"), res
    assert (
        await scalar(engine, "SELECT failed_logins FROM shared.account WHERE id = :a", a=account_id)
        == settings.login_max_failures
    )
    # Locked: even the right password is refused, on accepting and on signing in.
    res = await accept_answer(client, second.slug, token, PASSWORD)
    assert res["__typename"] == "RateLimitedError" and res["retryAfter"] > 0, res
    res = await gql(client, sign_in_op(email, PASSWORD), tenant=home.slug, token=None)
    assert res["data"]["signIn"]["__typename"] == "RateLimitedError", res
    assert await membership(engine, account_id, second) is None

    # Once the lock has passed, the right password joins and clears the count.
    await execute(
        engine, "UPDATE shared.account SET locked_until = now() WHERE id = :a", a=account_id
    )
    res = await accept_answer(client, second.slug, token, PASSWORD)
    assert res["__typename"] == "SignInPayload", res
    assert (
        await scalar(engine, "SELECT failed_logins FROM shared.account WHERE id = :a", a=account_id)
        == 0
    )


async def test_invitations_made_before_0013_are_listed_and_withdrawable(
    client, engine, kit, outbox, make_tenant
):
    """Invitations from before shared 0013 point at the account they made (with everything the
    inviter typed) and keep nothing typed themselves: they are listed with that account's name
    and the invited membership's roles, no phone or email, and can be withdrawn. Accepted
    through the phone link, the account keeps only the phone."""
    tenant = await make_tenant()
    kept_token, kept = await legacy_invitation(engine, kit, tenant, "Old Invite A")
    gone_token, gone = await legacy_invitation(engine, kit, tenant, "Old Invite B")
    listed = (await gql(client, INVITATIONS, tenant=tenant.slug))["data"]["invitations"]
    assert sorted(
        (i["id"], i["name"], i["phone"], i["email"], tuple(i["roles"])) for i in listed
    ) == sorted(
        [
            (str(kept), "Old Invite A", None, None, ("agent",)),
            (str(gone), "Old Invite B", None, None, ("agent",)),
        ]
    )
    res = await gql(client, WITHDRAW, {"id": str(gone)}, tenant=tenant.slug)
    assert res["data"]["withdrawInvitation"]["__typename"] == "WithdrawInvitationPayload", res
    listed = (await gql(client, INVITATIONS, tenant=tenant.slug))["data"]["invitations"]
    assert [i["id"] for i in listed] == [str(kept)]
    res = await accept(client, tenant.slug, gone_token)
    assert (res["__typename"], res["field"]) == ("AuthError", "token"), res

    res = await accept(client, tenant.slug, kept_token)
    assert res["__typename"] == "SignInPayload", res
    viewer = await me(client, tenant.slug, res["tokens"]["accessToken"])
    assert viewer["account"]["phone"] is not None and viewer["account"]["email"] is None
    assert viewer["roles"] == ["agent"]  # the invited membership's, not the empty column's
    assert (await gql(client, INVITATIONS, tenant=tenant.slug))["data"]["invitations"] == []


async def legacy_invitation(engine, kit, tenant, name: str) -> tuple[str, uuid.UUID]:
    """What ``invite`` wrote before shared 0013: an account with the typed phone and email,
    an invited membership with the roles, an invitation pointing at the account."""
    from datetime import timedelta

    from api.identity import service
    from api.identity.models import Invitation, Membership
    from api.ids import uuid7
    from api.security.tokens import new_refresh_token
    from tenants.sessions import TenantDatabase

    token, digest = new_refresh_token()
    async with TenantDatabase(engine).session(tenant) as session:
        account = await service.create_account(
            session,
            kit,
            name=name,
            phone=new_phone()[1],
            email=new_email("legacy"),
            password=None,
        )
        tenant_id = uuid.UUID(tenant.id)
        session.add(
            Membership(
                account_id=account.id, tenant_id=tenant_id, roles=["agent"], status="invited"
            )
        )
        inv = Invitation(
            id=uuid7(),
            tenant_id=tenant_id,
            account_id=account.id,
            token_hash=digest,
            name="",
            roles=[],
            expires_at=service.now() + timedelta(days=7),
        )
        session.add(inv)
        await session.commit()
    return token, inv.id


RESET_REQUEST = """
mutation($identifier: String!) {
  requestPasswordReset(identifier: $identifier) { __typename }
}
"""
ACCEPT_ANSWER = """
mutation($token: String!, $password: String!) {
  acceptInvitation(token: $token, password: $password) {
    __typename
    ... on SignInPayload { tokens { accessToken } }
    ... on RateLimitedError { retryAfter }
    ... on UserError { code message field }
  }
}
"""


async def accept_answer(client, slug: str, token: str, password: str) -> dict:
    res = await gql(
        client, ACCEPT_ANSWER, {"token": token, "password": password}, tenant=slug, token=None
    )
    assert "errors" not in res, res
    return res["data"]["acceptInvitation"]
