"""Changing and resetting a password over real HTTP round trips: change (current password
re-checked, counted towards the lockout, sign-up rules, the other sessions signed out), reset by
an SMS code (captured SMS sender) or an emailed link (real SMTP to a loopback aiosmtpd server):
single use, expiry, wrong codes, a sign-in code that cannot reset, every session signed out, an
unknown phone or email answered exactly as a known one, limits, and the audit log."""

from __future__ import annotations

import json
import re
import socket
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text

from api.security.tokens import refresh_hash
from tests.api.identity.helpers import (
    CODE_RE,
    ME,
    PASSWORD,
    TOKENS_PAYLOAD,
    assert_unauthenticated,
    execute,
    fresh_ip,
    new_account,
    new_email,
    new_phone,
    open_session,
    refresh_op,
    scalar,
    sign_in_op,
)
from tests.api.notify.helpers import LoopbackSmtp, Mailbox, loopback_smtp
from tests.conftest import gql

NEW_PASSWORD = "brand-new-secret-77"
PAYLOAD = """{
    __typename
    ... on PasswordChanged { revokedSessions }
    ... on RateLimitedError { retryAfter }
    ... on UserError { code message field }
}"""
CHANGE = f"""
mutation($password: String!, $newPassword: String!) {{
  changePassword(password: $password, newPassword: $newPassword) {PAYLOAD}
}}
"""
REQUEST = """
mutation($identifier: String!) {
  requestPasswordReset(identifier: $identifier) {
    __typename
    ... on PasswordResetRequested { expiresAt resendAfterSeconds }
    ... on RateLimitedError { retryAfter }
    ... on UserError { code message field }
  }
}
"""
RESET_TOKEN = f"""
mutation($token: String!, $newPassword: String!) {{
  resetPassword(token: $token, newPassword: $newPassword) {PAYLOAD}
}}
"""
RESET_CODE = f"""
mutation($phone: String!, $code: String!, $newPassword: String!) {{
  resetPasswordWithSmsCode(phone: $phone, code: $code, newPassword: $newPassword) {PAYLOAD}
}}
"""
SMS_SIGN_IN_CODE = "mutation($phone: String!) { requestSmsCode(phone: $phone) { __typename } }"
SMS_SIGN_IN = f"""
mutation($phone: String!, $code: String!) {{
  signInWithSmsCode(phone: $phone, code: $code) {TOKENS_PAYLOAD}
}}
"""
LINK_RE = re.compile(r"https?://\S+")


@pytest.fixture(scope="module")
def smtp():
    with loopback_smtp() as running:
        yield running


@pytest.fixture(scope="module")
def server(live_server_factory, smtp):
    """A gateway that mails through SMTP (the loopback server) and captures SMS."""
    controller, _ = smtp
    with live_server_factory(
        email_backend="smtp", smtp_host="127.0.0.1", smtp_port=controller.port
    ) as s:
        yield s


@pytest.fixture
async def client(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture
def sms(server):
    return server.server.config.app.state.sms


@pytest.fixture
def mailbox(smtp):
    return smtp[1]


@pytest.fixture
def ip() -> str:
    return fresh_ip()


async def call(client, slug: str, query: str, variables: dict, *, ip: str, token=None) -> dict:
    headers = {"X-Tenant": slug, "X-Forwarded-For": ip}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    res = resp.json()
    assert "errors" not in res, res
    [value] = res["data"].values()
    return value


async def sign_in(client, slug: str, identifier: str, password: str) -> dict:
    res = await gql(client, sign_in_op(identifier, password), tenant=slug, token=None)
    return res["data"]["signIn"]


async def refreshes(client, slug: str, refresh_token: str) -> bool:
    res = await gql(client, refresh_op(refresh_token), tenant=slug, token=None)
    return res["data"]["refreshTokens"]["__typename"] == "SignInPayload"


async def audit_entries(engine, tenant, action: str) -> list[dict]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                f'SELECT actor_id, outcome, details FROM "{tenant.schema_name}".audit_log'
                " WHERE action = :a ORDER BY seq"
            ),
            {"a": action},
        )
        return [dict(r) for r in rows.mappings()]


def mails_to(mailbox: Mailbox, address: str) -> list:
    return [m for _, rcpt, m in mailbox.messages if address in rcpt]


def reset_token(mail, settings, slug: str) -> str:
    [link] = LINK_RE.findall(mail.get_content())
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == settings.password_reset_url
    query = parse_qs(parts.query)
    assert query["tenant"] == [slug]
    return query["token"][0]


# ---------------------------------------------------------------- change


async def test_change_password_signs_out_the_other_sessions_and_keeps_this_one(
    client, engine, kit, make_tenant, ip
):
    tenant, other = await make_tenant(), await make_tenant()
    email = new_email("change")
    account_id, this = await new_account(
        engine, kit, tenant, ["agent"], email=email, password=PASSWORD
    )
    second = await open_session(engine, kit, tenant, account_id)
    await execute(
        engine,
        "INSERT INTO shared.membership (id, account_id, tenant_id, roles)"
        " VALUES (:i, :a, :t, '{agent}')",
        i=uuid.uuid4(),
        a=account_id,
        t=uuid.UUID(other.id),
    )
    elsewhere = await open_session(engine, kit, other, account_id)

    res = await call(
        client,
        tenant.slug,
        CHANGE,
        {"password": PASSWORD, "newPassword": NEW_PASSWORD},
        ip=ip,
        token=this.access_token,
    )
    assert res == {"__typename": "PasswordChanged", "revokedSessions": 2}, res

    # This session goes on; the other one and the one in the other tenant are over.
    assert (await gql(client, ME, tenant=tenant.slug, token=this.access_token))["data"]["me"]
    assert await refreshes(client, tenant.slug, this.refresh_token)
    assert_unauthenticated(await gql(client, ME, tenant=tenant.slug, token=second.access_token))
    assert not await refreshes(client, tenant.slug, second.refresh_token)
    assert not await refreshes(client, other.slug, elsewhere.refresh_token)
    # The old password no longer signs in; the new one does.
    assert (await sign_in(client, tenant.slug, email, PASSWORD))["__typename"] == "AuthError"
    assert (await sign_in(client, tenant.slug, email, NEW_PASSWORD))["__typename"] == (
        "SignInPayload"
    )
    # Audited, with neither password in the entry.
    [entry] = await audit_entries(engine, tenant, "changePassword")
    assert (entry["actor_id"], entry["outcome"]) == (account_id, "ok")
    assert PASSWORD not in json.dumps(entry["details"])
    assert NEW_PASSWORD not in json.dumps(entry["details"])


async def test_change_password_refusals_and_lockout(client, engine, kit, make_tenant, settings):
    tenant = await make_tenant()
    email = new_email("refuse")
    account_id, tokens = await new_account(
        engine, kit, tenant, ["agent"], email=email, password=PASSWORD
    )
    second = await open_session(engine, kit, tenant, account_id)
    ip = fresh_ip()

    async def change(current: str, new: str) -> dict:
        return await call(
            client,
            tenant.slug,
            CHANGE,
            {"password": current, "newPassword": new},
            ip=ip,
            token=tokens.access_token,
        )

    res = await change(PASSWORD, "short")
    assert (res["__typename"], res["field"]) == ("ValidationError", "newPassword"), res
    res = await change(PASSWORD, PASSWORD)
    assert (res["__typename"], res["field"]) == ("ValidationError", "newPassword"), res
    res = await change("not-my-password", NEW_PASSWORD)
    assert (res["__typename"], res["code"], res["field"]) == (
        "AuthError",
        "UNAUTHENTICATED",
        "password",
    ), res
    failures = "SELECT failed_logins FROM shared.account WHERE id = :a"
    assert await scalar(engine, failures, a=account_id) == 1
    # Wrong current passwords count towards the sign-in lockout.
    for _ in range(settings.login_max_failures - 1):
        assert (await change("still-wrong-1", NEW_PASSWORD))["__typename"] == "AuthError"
    res = await change(PASSWORD, NEW_PASSWORD)  # even the right one, while locked
    assert res["__typename"] == "RateLimitedError" and res["retryAfter"] > 0, res
    assert (await sign_in(client, tenant.slug, email, PASSWORD))["__typename"] == (
        "RateLimitedError"
    )
    # Nothing changed: the password and the other session are as they were.
    await execute(
        engine, "UPDATE shared.account SET locked_until = NULL WHERE id = :a", a=account_id
    )
    assert (await sign_in(client, tenant.slug, email, PASSWORD))["__typename"] == "SignInPayload"
    assert await refreshes(client, tenant.slug, second.refresh_token)
    # Signed-in callers only.
    res = await gql(
        client,
        CHANGE,
        {"password": PASSWORD, "newPassword": NEW_PASSWORD},
        tenant=tenant.slug,
        token=None,
    )
    assert res["data"]["changePassword"]["__typename"] == "AuthError", res


# ---------------------------------------------------------------- reset by email


async def test_reset_by_email_link(client, engine, kit, make_tenant, settings, mailbox, ip):
    tenant = await make_tenant(name="Harbour Realty")
    email = new_email("Reset.Me")
    account_id, old = await new_account(
        engine, kit, tenant, ["agent"], email=email, password=PASSWORD
    )
    res = await call(client, tenant.slug, REQUEST, {"identifier": email.upper()}, ip=ip)
    assert res["__typename"] == "PasswordResetRequested", res
    [mail] = mails_to(mailbox, email.lower())
    assert "Harbour Realty" in mail["Subject"]
    token = reset_token(mail, settings, tenant.slug)
    # Only the token's hash is kept.
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM shared.password_reset WHERE token_hash = :h",
            h=refresh_hash(token),
        )
        == 1
    )

    res = await call(
        client, tenant.slug, RESET_TOKEN, {"token": token, "newPassword": "short"}, ip=ip
    )
    assert (res["__typename"], res["field"]) == ("ValidationError", "newPassword"), res
    res = await call(
        client, tenant.slug, RESET_TOKEN, {"token": "x" * 43, "newPassword": NEW_PASSWORD}, ip=ip
    )
    assert (res["__typename"], res["field"]) == ("AuthError", "token"), res
    other = await make_tenant()
    res = await call(
        client, other.slug, RESET_TOKEN, {"token": token, "newPassword": NEW_PASSWORD}, ip=ip
    )
    assert (res["__typename"], res["field"]) == ("AuthError", "token"), res

    res = await call(
        client, tenant.slug, RESET_TOKEN, {"token": token, "newPassword": NEW_PASSWORD}, ip=ip
    )
    assert res == {"__typename": "PasswordChanged", "revokedSessions": 1}, res
    assert not await refreshes(client, tenant.slug, old.refresh_token)
    assert_unauthenticated(await gql(client, ME, tenant=tenant.slug, token=old.access_token))
    assert (await sign_in(client, tenant.slug, email, PASSWORD))["__typename"] == "AuthError"
    assert (await sign_in(client, tenant.slug, email, NEW_PASSWORD))["__typename"] == (
        "SignInPayload"
    )
    # Single use.
    res = await call(
        client,
        tenant.slug,
        RESET_TOKEN,
        {"token": token, "newPassword": "yet-another-one-9"},
        ip=ip,
    )
    assert (res["__typename"], res["field"]) == ("AuthError", "token"), res
    assert "already used" in res["message"]
    entries = await audit_entries(engine, tenant, "resetPassword")
    [entry] = [e for e in entries if e["outcome"] == "ok"]
    assert entry["actor_id"] == account_id
    assert {e["outcome"] for e in entries} == {"ok", "BAD_USER_INPUT", "UNAUTHENTICATED"}
    assert token not in json.dumps([e["details"] for e in entries])


async def test_expired_reset_link_is_refused(client, engine, kit, make_tenant, settings, mailbox):
    tenant = await make_tenant()
    email = new_email("late")
    await new_account(engine, kit, tenant, ["agent"], email=email, password=PASSWORD)
    ip = fresh_ip()
    await call(client, tenant.slug, REQUEST, {"identifier": email}, ip=ip)
    token = reset_token(mails_to(mailbox, email)[0], settings, tenant.slug)
    n = await execute(
        engine,
        "UPDATE shared.password_reset SET expires_at = now() - interval"
        " '1 second' WHERE token_hash = :h",
        h=refresh_hash(token),
    )
    assert n == 1
    res = await call(
        client, tenant.slug, RESET_TOKEN, {"token": token, "newPassword": NEW_PASSWORD}, ip=ip
    )
    assert (res["__typename"], res["field"]) == ("AuthError", "token"), res
    assert "expired" in res["message"]
    assert (await sign_in(client, tenant.slug, email, PASSWORD))["__typename"] == "SignInPayload"


# ---------------------------------------------------------------- reset by SMS


async def test_reset_by_sms_code(client, engine, kit, make_tenant, sms, ip, settings):
    tenant = await make_tenant()
    national, phone = new_phone()
    account_id, old = await new_account(
        engine, kit, tenant, ["agent"], phone=phone, password=PASSWORD
    )

    async def reset(code: str, new: str = NEW_PASSWORD) -> dict:
        return await call(
            client,
            tenant.slug,
            RESET_CODE,
            {"phone": national, "code": code, "newPassword": new},
            ip=ip,
        )

    # A sign-in code cannot reset the password.
    before = len(sms.outbox)
    await call(client, tenant.slug, SMS_SIGN_IN_CODE, {"phone": national}, ip=ip)
    [message] = sms.outbox[before:]
    sign_in_code = CODE_RE.search(message.text).group(1)
    res = await reset(sign_in_code)
    assert (res["__typename"], res["field"]) == ("AuthError", "code"), res

    await execute(
        engine,
        "UPDATE shared.sms_code SET created_at = created_at - interval"
        " '2 minutes' WHERE phone_bidx = :b",
        b=kit.blind_index.digest(phone, scope="shared", column="phone"),
    )
    before = len(sms.outbox)
    res = await call(client, tenant.slug, REQUEST, {"identifier": national}, ip=ip)
    assert res["__typename"] == "PasswordResetRequested", res
    [message] = sms.outbox[before:]
    assert message.phone == phone and "reset" in message.text
    code = CODE_RE.search(message.text).group(1)
    # ...nor the reset code sign in.
    res = await call(client, tenant.slug, SMS_SIGN_IN, {"phone": national, "code": code}, ip=ip)
    assert res["__typename"] == "AuthError", res

    res = await reset(code, "short")
    assert (res["__typename"], res["field"]) == ("ValidationError", "newPassword"), res
    res = await reset(f"{(int(code) + 1) % 10**6:06d}")
    assert (res["__typename"], res["message"]) == ("AuthError", "wrong code"), res
    res = await reset(code)
    assert res == {"__typename": "PasswordChanged", "revokedSessions": 1}, res
    assert not await refreshes(client, tenant.slug, old.refresh_token)
    assert (await sign_in(client, tenant.slug, national, NEW_PASSWORD))["__typename"] == (
        "SignInPayload"
    )
    res = await reset(code, "and-again-77")  # single use
    assert (res["__typename"], res["field"]) == ("AuthError", "code"), res
    [entry] = [
        e
        for e in await audit_entries(engine, tenant, "resetPasswordWithSmsCode")
        if e["outcome"] == "ok"
    ]
    assert entry["actor_id"] == account_id


async def test_fifth_wrong_reset_code_burns_it(client, engine, kit, make_tenant, sms, ip, settings):
    tenant = await make_tenant()
    national, phone = new_phone()
    await new_account(engine, kit, tenant, ["agent"], phone=phone, password=PASSWORD)
    before = len(sms.outbox)
    await call(client, tenant.slug, REQUEST, {"identifier": national}, ip=ip)
    code = CODE_RE.search(sms.outbox[before].text).group(1)
    for k in range(1, settings.sms_code_max_attempts + 1):
        res = await call(
            client,
            tenant.slug,
            RESET_CODE,
            {
                "phone": national,
                "code": f"{(int(code) + k) % 10**6:06d}",
                "newPassword": NEW_PASSWORD,
            },
            ip=ip,
        )
        assert res["__typename"] == "AuthError", res
    res = await call(
        client,
        tenant.slug,
        RESET_CODE,
        {"phone": national, "code": code, "newPassword": NEW_PASSWORD},
        ip=ip,
    )
    assert (res["__typename"], res["field"]) == ("AuthError", "code"), res
    assert "too many" in res["message"]
    assert (await sign_in(client, tenant.slug, national, PASSWORD))["__typename"] == (
        "SignInPayload"
    )


# ---------------------------------------------------------------- no enumeration, limits


async def test_unknown_phone_or_email_is_answered_as_a_known_one(
    client, engine, kit, make_tenant, sms, mailbox
):
    tenant, other = await make_tenant(), await make_tenant()
    known_email = new_email("known")
    known_national, known_phone = new_phone()
    await new_account(
        engine, kit, tenant, ["agent"], email=known_email, phone=known_phone, password=PASSWORD
    )
    # A member of another tenant is unknown here.
    stranger = new_email("stranger")
    await new_account(engine, kit, other, ["agent"], email=stranger, password=PASSWORD)
    unknown = [new_email("nobody"), new_phone()[0], stranger]

    def shape(res: dict) -> dict:
        return {k: v for k, v in res.items() if k != "expiresAt"}

    sms_before, mail_before = len(sms.outbox), len(mailbox.messages)
    answers = {}
    for identifier in [known_email, known_national, *unknown]:
        ip = fresh_ip()
        first = await call(client, tenant.slug, REQUEST, {"identifier": identifier}, ip=ip)
        again = await call(client, tenant.slug, REQUEST, {"identifier": identifier}, ip=ip)
        answers[identifier] = (shape(first), shape(again) | {"retryAfter": "n"})
        assert again["__typename"] == "RateLimitedError" and again["retryAfter"] > 0, again
    assert len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 1, answers
    # Only the known ones were sent anything.
    assert [m.phone for m in sms.outbox[sms_before:]] == [known_phone]
    assert [rcpt for _, rcpt, _ in mailbox.messages[mail_before:]] == [[known_email]]
    # Bad input is a validation error, whatever the account.
    res = await call(client, tenant.slug, REQUEST, {"identifier": "not a phone"}, ip=fresh_ip())
    assert (res["__typename"], res["field"]) == ("ValidationError", "identifier"), res


async def test_reset_requests_per_address_are_limited(client, engine, kit, make_tenant, settings):
    tenant = await make_tenant()
    ip = fresh_ip()
    for _ in range(settings.sms_codes_per_ip_hour):
        res = await call(client, tenant.slug, REQUEST, {"identifier": new_email("many")}, ip=ip)
        assert res["__typename"] == "PasswordResetRequested", res
    res = await call(client, tenant.slug, REQUEST, {"identifier": new_email("many")}, ip=ip)
    assert res["__typename"] == "RateLimitedError", res


# ---------------------------------------------------------------- a sender that fails


class RefusingMailbox:
    """An SMTP server that takes the envelope and refuses the message."""

    async def handle_DATA(self, server, session, envelope):
        return "554 Transaction failed"


@pytest.fixture(params=["connection refused", "message refused"])
def failing_server(request, live_server_factory):
    """A gateway whose SMTP server is down (a port bound but not listening: connecting is
    refused, a ConnectionError) or refuses the message, and whose SMS provider is down."""
    if request.param == "connection refused":
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port, stop = closed.getsockname()[1], closed.close
    else:
        controller = LoopbackSmtp(RefusingMailbox())
        controller.start()
        port, stop = controller.port, controller.stop
    try:
        with live_server_factory(email_backend="smtp", smtp_host="127.0.0.1", smtp_port=port) as s:
            sms = s.server.config.app.state.sms

            async def provider_down(phone: str, text: str) -> None:
                raise ConnectionRefusedError("the SMS provider is down")

            sms.send = provider_down
            yield s
    finally:
        stop()


async def test_a_failing_sender_does_not_change_the_answer(
    failing_server, engine, kit, make_tenant
):
    """Known and unknown phones and emails get the same status and answer when the message
    cannot be sent, and the request is counted either way (the row is kept: asking again at
    once is refused)."""
    tenant = await make_tenant()
    known_email, (known_national, known_phone) = new_email("known"), new_phone()
    await new_account(
        engine, kit, tenant, ["agent"], email=known_email, phone=known_phone, password=PASSWORD
    )

    async def ask(client, identifier: str, ip: str) -> tuple[int, str]:
        resp = await client.post(
            "/graphql",
            json={"query": REQUEST, "variables": {"identifier": identifier}},
            headers={"X-Tenant": tenant.slug, "X-Forwarded-For": ip},
        )
        body = resp.json()
        answer = (body.get("data") or {}).get("requestPasswordReset") or {}
        answer.pop("expiresAt", None)
        answer.pop("retryAfter", None)
        return resp.status_code, json.dumps({**body, "data": answer}, sort_keys=True)

    answers = {}
    async with httpx.AsyncClient(base_url=failing_server.url, timeout=60) as client:
        for identifier in [known_email, new_email("nobody"), known_national, new_phone()[0]]:
            ip = fresh_ip()
            answers[identifier] = (
                await ask(client, identifier, ip),
                await ask(client, identifier, ip),
            )
    assert len(set(answers.values())) == 1, answers
    (status, first), (_, again) = answers[known_email]
    assert status == 200 and "PasswordResetRequested" in first, answers
    assert "RateLimitedError" in again, answers
    # The known ones' rows point at the account: the code and link were made, not sent.
    bidx = kit.blind_index.digest(known_email, scope="shared", column="email")
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM shared.password_reset WHERE email_bidx = :b"
            " AND account_id IS NOT NULL",
            b=bidx,
        )
        == 1
    )
    bidx = kit.blind_index.digest(known_phone, scope="shared", column="phone")
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM shared.sms_code WHERE phone_bidx = :b AND purpose = 'reset'",
            b=bidx,
        )
        == 1
    )
