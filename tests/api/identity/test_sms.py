"""Sign-in with an SMS code over real HTTP round trips: the code sent (captured outbox), tokens
that work, single use, expiry, five attempts per code (also against aliased and concurrent
guessing), resend and hourly limits per phone and per IP, no account enumeration, validation,
and only an HMAC of the code stored.

The client IP comes from ``X-Forwarded-For`` (uvicorn trusts it from 127.0.0.1), one fresh
address per test, so the per-IP limit counts only that test's requests."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from api.identity import sms as sms_service
from api.identity.models import SmsCode
from api.identity.service import LockedOut
from api.notify.sms import CapturingSender
from api.security.kit import build_kit
from tenants.provisioning import create_tenant
from tenants.sessions import TenantDatabase
from tests.api.identity.helpers import (
    CODE_RE,
    ME,
    TOKENS_PAYLOAD,
    add_membership,
    call,
    execute,
    fresh_ip,
    new_account,
    new_phone,
    refresh_op,
    row,
    scalar,
)
from tests.conftest import unique_slug

REQUEST = """
mutation($phone: String!) {
  requestSmsCode(phone: $phone) {
    __typename
    ... on SmsCodeSent { expiresAt resendAfterSeconds }
    ... on RateLimitedError { retryAfter }
    ... on UserError { code message field }
  }
}
"""
SIGN_IN = f"""
mutation($phone: String!, $code: String!) {{
  signInWithSmsCode(phone: $phone, code: $code) {TOKENS_PAYLOAD}
}}
"""


async def request_code(client, slug: str, phone: str, *, ip: str) -> dict:
    return (await call(client, slug, REQUEST, {"phone": phone}, ip=ip))["requestSmsCode"]


async def sign_in(client, slug: str, phone: str, code: str, *, ip: str) -> dict:
    return (await call(client, slug, SIGN_IN, {"phone": phone, "code": code}, ip=ip))[
        "signInWithSmsCode"
    ]


def bidx(kit, phone: str) -> bytes:
    return kit.blind_index.digest(phone, scope="shared", column="phone")


def wrong(code: str, k: int = 1) -> str:
    return f"{(int(code) + k) % 10**6:06d}"


@pytest.fixture(scope="module")
async def tenant(engine):
    return (await create_tenant(engine, unique_slug("sms"), "Harbour Realty")).tenant


@pytest.fixture
def sms(live_server):
    return live_server.server.config.app.state.sms


@pytest.fixture
def ip() -> str:
    return fresh_ip()


@pytest.fixture
async def person(engine, kit, tenant) -> tuple[uuid.UUID, str, str]:
    """An active agent with a phone: (account id, national number, E.164)."""
    national, phone = new_phone()
    account_id, _ = await new_account(engine, kit, tenant, ["agent"], phone=phone)
    return account_id, national, phone


async def sent_code(client, sms, tenant, phone: str, *, ip: str) -> str:
    """Request a code for ``phone``; returns the code from the one SMS sent."""
    before = len(sms.outbox)
    payload = await request_code(client, tenant.slug, phone, ip=ip)
    assert payload["__typename"] == "SmsCodeSent", payload
    new = sms.outbox[before:]
    assert len(new) == 1, new
    return CODE_RE.search(new[0].text).group(1)


async def code_row(engine, kit, phone: str):
    return await row(
        engine,
        "SELECT * FROM shared.sms_code WHERE phone_bidx = :b ORDER BY created_at DESC LIMIT 1",
        b=bidx(kit, phone),
    )


# ---------------------------------------------------------------- the happy path


async def test_code_is_sent_and_signs_in_once(client, engine, kit, sms, tenant, person, ip):
    account_id, national, phone = person
    before = len(sms.outbox)
    t0 = datetime.now(UTC)
    payload = await request_code(client, tenant.slug, national, ip=ip)
    assert payload["__typename"] == "SmsCodeSent", payload
    assert payload["resendAfterSeconds"] == 60
    expires = datetime.fromisoformat(payload["expiresAt"])
    assert t0 + timedelta(seconds=290) < expires < t0 + timedelta(seconds=310)

    [message] = sms.outbox[before:]
    assert message.phone == phone  # normalised to E.164
    assert tenant.name in message.text
    codes = CODE_RE.findall(message.text)
    assert len(codes) == 1, message.text
    code = codes[0]

    res = await sign_in(client, tenant.slug, phone, code, ip=ip)
    assert res["__typename"] == "SignInPayload", res
    tokens = res["tokens"]
    me = await call(client, tenant.slug, ME, {}, ip=ip, token=tokens["accessToken"])
    assert me["me"]["account"]["id"] == str(account_id)
    assert me["me"]["account"]["phone"] == phone
    assert me["me"]["roles"] == ["agent"]
    refreshed = await call(client, tenant.slug, refresh_op(tokens["refreshToken"]), {}, ip=ip)
    assert refreshed["refreshTokens"]["__typename"] == "SignInPayload", refreshed

    # Single use: the same code again is refused.
    res = await sign_in(client, tenant.slug, national, code, ip=ip)
    assert (res["__typename"], res["code"], res["field"]) == (
        "AuthError",
        "UNAUTHENTICATED",
        "code",
    )
    stored = await code_row(engine, kit, phone)
    assert stored["used_at"] is not None and stored["attempts"] == 0


async def test_expired_code_is_refused(client, engine, kit, sms, tenant, person, ip):
    _, _, phone = person
    code = await sent_code(client, sms, tenant, phone, ip=ip)
    n = await execute(
        engine,
        "UPDATE shared.sms_code SET expires_at = now() - interval '1 second' WHERE phone_bidx = :b",
        b=bidx(kit, phone),
    )
    assert n == 1
    res = await sign_in(client, tenant.slug, phone, code, ip=ip)
    assert (res["__typename"], res["field"]) == ("AuthError", "code"), res
    assert "expired" in res["message"]
    assert (await code_row(engine, kit, phone))["used_at"] is None


async def test_code_of_one_tenant_does_not_sign_in_to_another(
    client, engine, kit, sms, tenant, person, ip
):
    account_id, _, phone = person
    other = (await create_tenant(engine, unique_slug("sms2"), "Other Realty")).tenant
    await add_membership(engine, account_id, other, ["agent"])
    code = await sent_code(client, sms, tenant, phone, ip=ip)
    res = await sign_in(client, other.slug, phone, code, ip=ip)
    assert res["__typename"] == "AuthError", res
    # Still good where it was asked for.
    res = await sign_in(client, tenant.slug, phone, code, ip=ip)
    assert res["__typename"] == "SignInPayload", res


# ---------------------------------------------------------------- guessing


async def test_five_wrong_codes_burn_the_code(client, engine, kit, sms, tenant, person, ip):
    _, _, phone = person
    code = await sent_code(client, sms, tenant, phone, ip=ip)
    for guess in (wrong(code, 1), wrong(code, 2), "12345", "abcdef", f" {wrong(code, 3)} "):
        res = await sign_in(client, tenant.slug, phone, guess, ip=ip)
        assert (res["__typename"], res["field"]) == ("AuthError", "code"), res
    assert (await code_row(engine, kit, phone))["attempts"] == 5

    res = await sign_in(client, tenant.slug, phone, code, ip=ip)
    assert res["__typename"] == "AuthError", res
    stored = await code_row(engine, kit, phone)
    assert (stored["attempts"], stored["used_at"]) == (5, None)


async def test_aliased_guesses_in_one_request_count_and_burn_the_code(
    client, engine, kit, sms, tenant, person, ip
):
    _, _, phone = person
    code = await sent_code(client, sms, tenant, phone, ip=ip)
    fields = "\n".join(
        f'g{i}: signInWithSmsCode(phone: "{phone}", code: "{wrong(code, i + 1)}") '
        "{ __typename ... on UserError { code field } }"
        for i in range(20)
    )
    data = await call(client, tenant.slug, f"mutation {{ {fields} }}", {}, ip=ip)
    assert len(data) == 20
    assert {v["__typename"] for v in data.values()} == {"AuthError"}, data
    assert (await code_row(engine, kit, phone))["attempts"] == 5

    res = await sign_in(client, tenant.slug, phone, code, ip=ip)
    assert res["__typename"] == "AuthError", res


async def test_right_code_after_aliased_wrong_ones_in_the_same_request_is_refused(
    client, engine, kit, sms, tenant, person, ip
):
    _, _, phone = person
    code = await sent_code(client, sms, tenant, phone, ip=ip)
    guesses = [wrong(code, i + 1) for i in range(5)] + [code]
    fields = "\n".join(
        f'g{i}: signInWithSmsCode(phone: "{phone}", code: "{c}") {{ __typename }}'
        for i, c in enumerate(guesses)
    )
    data = await call(client, tenant.slug, f"mutation {{ {fields} }}", {}, ip=ip)
    assert [data[f"g{i}"]["__typename"] for i in range(6)] == ["AuthError"] * 6, data
    stored = await code_row(engine, kit, phone)
    assert (stored["attempts"], stored["used_at"]) == (5, None)


async def test_concurrent_guesses_count_at_most_five(client, engine, kit, sms, tenant, person, ip):
    _, _, phone = person
    code = await sent_code(client, sms, tenant, phone, ip=ip)
    results = await asyncio.gather(
        *(sign_in(client, tenant.slug, phone, wrong(code, i + 1), ip=ip) for i in range(20))
    )
    assert {r["__typename"] for r in results} == {"AuthError"}, results
    assert (await code_row(engine, kit, phone))["attempts"] == 5
    res = await sign_in(client, tenant.slug, phone, code, ip=ip)
    assert res["__typename"] == "AuthError", res


# ---------------------------------------------------------------- limits


async def test_resend_within_a_minute_is_rate_limited(client, engine, kit, sms, tenant, person, ip):
    _, national, phone = person
    code = await sent_code(client, sms, tenant, phone, ip=ip)
    before = len(sms.outbox)
    res = await request_code(client, tenant.slug, national, ip=fresh_ip())  # per phone, any IP
    assert (res["__typename"], res["code"]) == ("RateLimitedError", "RATE_LIMITED"), res
    assert 1 <= res["retryAfter"] <= 61, res
    assert len(sms.outbox) == before
    assert (
        await scalar(
            engine, "SELECT count(*) FROM shared.sms_code WHERE phone_bidx = :b", b=bidx(kit, phone)
        )
        == 1
    )
    # The first code still works.
    assert (await sign_in(client, tenant.slug, phone, code, ip=ip))["__typename"] == (
        "SignInPayload"
    )


async def insert_codes(engine, kit, tenant, *, ages_min: list[int], phone=None, ip="") -> None:
    """Rows of codes sent ``ages_min`` minutes ago (to ``phone``, or to random numbers)."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        for age in ages_min:
            at = now - timedelta(minutes=age)
            await conn.execute(
                text(
                    "INSERT INTO shared.sms_code (id, phone_bidx, tenant_id, code_hmac,"
                    " expires_at, attempts, ip, created_at)"
                    " VALUES (:id, :b, :t, :h, :e, 0, :ip, :at)"
                ),
                {
                    "id": uuid.uuid4(),
                    "b": bidx(kit, phone or new_phone()[1]),
                    "t": uuid.UUID(tenant.id),
                    "h": b"\x00" * 32,
                    "e": at + timedelta(minutes=5),
                    "ip": ip,
                    "at": at,
                },
            )


async def test_hourly_limit_per_phone(client, engine, kit, sms, tenant, person, ip):
    _, _, phone = person
    # Four codes in the last hour and one older: a fifth may still be sent.
    await insert_codes(engine, kit, tenant, ages_min=[70, 50, 40, 30, 20], phone=phone)
    code = await sent_code(client, sms, tenant, phone, ip=ip)
    # Make that fifth one 10 minutes old (past the resend wait): now the hour is full.
    await execute(
        engine,
        "UPDATE shared.sms_code SET created_at = now() - interval '10 minutes'"
        " WHERE phone_bidx = :b AND created_at > now() - interval '1 minute'",
        b=bidx(kit, phone),
    )
    before = len(sms.outbox)
    res = await request_code(client, tenant.slug, phone, ip=fresh_ip())
    assert res["__typename"] == "RateLimitedError", res
    # The oldest code of the hour (50 min ago) leaves it in 10 minutes.
    assert 595 <= res["retryAfter"] <= 602, res
    assert len(sms.outbox) == before
    assert code  # the code sent before the limit was a real one


async def test_hourly_limit_per_ip(client, engine, kit, sms, settings, tenant, person, ip):
    """Codes asked from one address, to any phones (members or not), count for it."""
    _, _, phone = person
    limit = settings.sms_codes_per_ip_hour
    # A full hour's worth over an hour ago (not counted), one short of the limit since.
    await insert_codes(engine, kit, tenant, ages_min=[61] * limit + [59] * (limit - 1), ip=ip)
    await sent_code(client, sms, tenant, phone, ip=ip)  # the last one this hour
    before = len(sms.outbox)
    res = await request_code(client, tenant.slug, new_phone()[1], ip=ip)
    assert (res["__typename"], res["retryAfter"]) == ("RateLimitedError", 3600), res
    assert len(sms.outbox) == before
    # Another address is not affected.
    res = await request_code(client, tenant.slug, new_phone()[1], ip=fresh_ip())
    assert res["__typename"] == "SmsCodeSent", res
    assert await scalar(engine, "SELECT count(*) FROM shared.sms_code WHERE ip = :ip", ip=ip) == (
        2 * limit
    )


# ---------------------------------------------------------------- no enumeration, validation


async def test_phone_that_is_not_an_active_member_gets_the_same_answer_and_no_sms(
    client, engine, kit, sms, tenant, ip
):
    stranger_national, stranger = new_phone()
    _, disabled = new_phone()
    disabled_id, _ = await new_account(engine, kit, tenant, ["agent"], phone=disabled)
    await execute(
        engine,
        "UPDATE shared.membership SET status = 'disabled' WHERE account_id = :a",
        a=disabled_id,
    )
    _, elsewhere = new_phone()  # an account, member of another tenant only
    other = (await create_tenant(engine, unique_slug("sms3"), "Elsewhere")).tenant
    await new_account(engine, kit, other, ["agent"], phone=elsewhere)

    before = len(sms.outbox)
    for phone in (stranger_national, disabled, elsewhere):
        res = await request_code(client, tenant.slug, phone, ip=ip)
        assert res["__typename"] == "SmsCodeSent", res
        assert res["resendAfterSeconds"] == 60
    assert sms.outbox[before:] == []
    # The limits apply all the same (a second request looks like a member's).
    res = await request_code(client, tenant.slug, stranger, ip=ip)
    assert res["__typename"] == "RateLimitedError", res
    # And no code can sign them in.
    for phone in (stranger, disabled, elsewhere):
        res = await sign_in(client, tenant.slug, phone, "000000", ip=ip)
        assert res["__typename"] == "AuthError", res


@pytest.mark.parametrize("phone", ["12345", "not a phone", "", "+1 555 0100", "+86 139"])
async def test_invalid_phone_is_a_validation_error(client, sms, tenant, phone):
    ip = fresh_ip()
    before = len(sms.outbox)
    res = await request_code(client, tenant.slug, phone, ip=ip)
    assert (res["__typename"], res["code"], res["field"]) == (
        "ValidationError",
        "BAD_USER_INPUT",
        "phone",
    ), res
    res = await sign_in(client, tenant.slug, phone, "123456", ip=ip)
    assert (res["__typename"], res["field"]) == ("ValidationError", "phone"), res
    assert len(sms.outbox) == before


async def test_code_is_not_stored_in_plaintext(client, engine, kit, sms, tenant, person, ip):
    _, _, phone = person
    code = await sent_code(client, sms, tenant, phone, ip=ip)
    stored = await code_row(engine, kit, phone)
    assert set(stored.keys()) == {c.name for c in SmsCode.__table__.columns}
    for column, value in stored.items():
        if isinstance(value, bytes | bytearray | memoryview):
            value = bytes(value)
            assert code.encode() not in value, column
            assert code.encode().hex() not in value.hex(), column
        else:
            assert code not in str(value), column
    assert len(bytes(stored["code_hmac"])) == 32
    # Phone and IP are not the number either: only its blind index is kept.
    assert phone not in str(dict(stored)) and phone[1:] not in str(dict(stored))


async def test_concurrent_requests_from_one_ip_cannot_exceed_the_limit(engine, settings, tenant):
    """Two requests from one IP for two phones, the first not yet committed when the second
    counts: with a limit of one code per IP, one of them must be refused. (Over HTTP, 12
    concurrent requests with a limit of 3 got 3 to 12 codes sent.)"""
    kit1 = build_kit(settings.model_copy(update={"sms_codes_per_ip_hour": 1}))
    ip, sender, db = fresh_ip(), CapturingSender(), TenantDatabase(engine)
    async with db.session(tenant) as first, db.session(tenant) as second:
        await sms_service.request_code(first, kit1, sender, tenant, new_phone()[1], ip)

        async def other_phone() -> str:
            try:
                await sms_service.request_code(second, kit1, sender, tenant, new_phone()[1], ip)
            except LockedOut:
                await second.rollback()
                return "refused"
            await second.commit()
            return "sent"

        task = asyncio.create_task(other_phone())
        await asyncio.wait({task}, timeout=0.5)  # it may wait for the first one (a lock)
        await first.commit()
        outcome = await task
    sent = await scalar(engine, "SELECT count(*) FROM shared.sms_code WHERE ip = :ip", ip=ip)
    assert (sent, outcome) == (1, "refused")
