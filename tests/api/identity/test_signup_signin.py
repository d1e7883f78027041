"""Sign-up (a tenant, its first admin and tokens, all or nothing) and password sign-in
(identifier formats, uniform refusals, lockout persisted, encrypted phone numbers)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from api.identity import service
from api.security.catalogue import PERMISSIONS
from tests.api.identity.helpers import (
    ME,
    PASSWORD,
    SIGN_UP,
    execute,
    new_email,
    new_phone,
    row,
    scalar,
    sign_in_op,
)
from tests.conftest import gql, unique_slug

WRONG = "wrong-password-1"


def sign_up_input(**over) -> dict:
    national, _ = new_phone()
    data = {
        "tenantSlug": unique_slug("su"),
        "tenantName": "Harbour Realty",
        "name": "Li Lei",
        "password": PASSWORD,
        "phone": national,
        "email": new_email("admin"),
    }
    data.update(over)
    return data


async def sign_up(client, **over) -> tuple[dict, dict]:
    data = sign_up_input(**over)
    res = await gql(client, SIGN_UP, {"input": data})  # no X-Tenant, no token
    assert "errors" not in res, res
    return data, res["data"]["signUp"]


async def sign_in(client, slug: str, identifier: str, password: str) -> dict:
    res = await gql(client, sign_in_op(identifier, password), tenant=slug, token=None)
    assert "errors" not in res, res
    return res["data"]["signIn"]


def bidx(kit, kind: str, value: str) -> bytes:
    return kit.blind_index.digest(value, scope="shared", column=kind)


async def accounts_with(engine, kit, kind: str, value: str) -> int:
    return await scalar(
        engine,
        f"SELECT count(*) FROM shared.account WHERE {kind}_bidx = :d",
        d=bidx(kit, kind, value),
    )


async def tenant_leftovers(engine, slug: str) -> tuple[int, int]:
    """(registry rows, schemas) of a slug."""
    rows = await scalar(engine, "SELECT count(*) FROM shared.tenant WHERE slug = :s", s=slug)
    schemas = await scalar(
        engine,
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = :n",
        n="t_" + slug.replace("-", "_"),
    )
    return rows, schemas


# ---------------------------------------------------------------- sign-up


async def test_sign_up_creates_tenant_admin_and_tokens(client, engine, kit):
    data, payload = await sign_up(client, email="Li.Lei@Example.COM")
    assert payload["__typename"] == "SignUpPayload", payload
    slug = data["tenantSlug"]
    assert payload["tenant"]["slug"] == slug
    assert payload["tenant"]["name"] == "Harbour Realty"
    assert payload["tenant"]["status"] == "active"
    phone = "+86" + data["phone"]
    assert payload["account"] == {
        "id": payload["account"]["id"],
        "name": "Li Lei",
        "phone": phone,
        "email": "li.lei@example.com",
    }
    tokens = payload["tokens"]
    assert tokens["accessToken"] and tokens["refreshToken"] and tokens["sessionId"]

    # The access token works in the new tenant at once.
    res = await gql(client, ME, tenant=slug, token=tokens["accessToken"])
    assert "errors" not in res, res
    me = res["data"]["me"]
    assert me["roles"] == ["admin"]
    assert me["dataScope"] == "all"
    assert me["permissions"] == sorted(PERMISSIONS)
    assert me["account"]["phone"] == phone  # own phone: unmasked
    assert me["account"]["email"] == "li.lei@example.com"
    assert me["tenant"] == {"slug": slug}

    # In the database: the tenant, its schema, one active admin membership.
    assert await tenant_leftovers(engine, slug) == (1, 1)
    m = await row(
        engine,
        "SELECT m.roles, m.status FROM shared.membership m JOIN shared.tenant t"
        " ON t.id = m.tenant_id WHERE t.slug = :s",
        s=slug,
    )
    assert (m["roles"], m["status"]) == (["admin"], "active")


@pytest.mark.parametrize(
    ("case", "typename", "field"),
    [
        ("taken-slug", "ConflictError", "tenantSlug"),
        ("reserved-slug", "ValidationError", "tenantSlug"),
        ("media-private-prefix-slug", "ValidationError", "tenantSlug"),
        ("invalid-slug", "ValidationError", "tenantSlug"),
        ("slug-with-underscore", "ValidationError", "tenantSlug"),
        ("empty-tenant-name", "ValidationError", "tenantName"),
        ("short-password", "ValidationError", "password"),
        ("letters-only-password", "ValidationError", "password"),
        ("digits-only-password", "ValidationError", "password"),
        ("invalid-phone", "ValidationError", "phone"),
        ("empty-name", "ValidationError", "name"),
        ("existing-phone", "ConflictError", "phone"),
        ("existing-email", "ConflictError", "email"),
    ],
)
async def test_sign_up_refusals_are_data_and_leave_nothing(
    client, engine, kit, make_tenant, case, typename, field
):
    taken = await make_tenant() if case == "taken-slug" else None
    existing = None
    if case in ("existing-phone", "existing-email"):
        existing, first = await sign_up(client)
        assert first["__typename"] == "SignUpPayload", first
    over = {
        "taken-slug": lambda: {"tenantSlug": taken.slug},
        "reserved-slug": lambda: {"tenantSlug": "admin"},
        # Its public media keys would start with the private prefix (not public on S3).
        "media-private-prefix-slug": lambda: {"tenantSlug": "private"},
        "invalid-slug": lambda: {"tenantSlug": "Bad Slug!"},
        "slug-with-underscore": lambda: {"tenantSlug": "acme_realty"},
        "empty-tenant-name": lambda: {"tenantName": "  "},
        "short-password": lambda: {"password": "ab1"},
        "letters-only-password": lambda: {"password": "onlyletters"},
        "digits-only-password": lambda: {"password": "1234567890"},
        "invalid-phone": lambda: {"phone": "12345"},
        "empty-name": lambda: {"name": " "},
        # The same number in another format is the same account.
        "existing-phone": lambda: {"phone": "+86 " + existing["phone"]},
        "existing-email": lambda: {"email": existing["email"].upper()},
    }[case]()
    data = sign_up_input(**over)
    res = await gql(client, SIGN_UP, {"input": data})
    assert "errors" not in res, res
    payload = res["data"]["signUp"]
    assert payload["__typename"] == typename, payload
    assert payload["field"] == field, payload
    assert payload["code"] == ("CONFLICT" if typename == "ConflictError" else "BAD_USER_INPUT")
    assert payload["message"]

    # Nothing left behind: no tenant, no schema, no account, no membership.
    if case == "taken-slug":
        assert await tenant_leftovers(engine, taken.slug) == (1, 1)
        members = await scalar(
            engine,
            "SELECT count(*) FROM shared.membership WHERE tenant_id = :t",
            t=uuid.UUID(taken.id),
        )
        assert members == 1  # only the admin make_tenant added
    elif data["tenantSlug"] != "admin":
        assert await tenant_leftovers(engine, data["tenantSlug"]) == (0, 0)
    if case != "existing-email":
        assert await accounts_with(engine, kit, "email", data["email"].strip().lower()) == 0
    if case == "existing-phone":
        assert await accounts_with(engine, kit, "phone", "+86" + existing["phone"]) == 1
    elif case != "invalid-phone":
        assert await accounts_with(engine, kit, "phone", "+86" + data["phone"]) == 0


async def test_sign_up_refusal_then_retry_succeeds(client, engine, kit, make_tenant):
    """A refused sign-up (slug taken after the account was written) does not block a retry
    with the same phone and email."""
    taken = await make_tenant()
    data = sign_up_input(tenantSlug=taken.slug)
    res = await gql(client, SIGN_UP, {"input": data})
    assert res["data"]["signUp"]["__typename"] == "ConflictError", res
    res = await gql(client, SIGN_UP, {"input": {**data, "tenantSlug": unique_slug("retry")}})
    assert res["data"]["signUp"]["__typename"] == "SignUpPayload", res
    assert await accounts_with(engine, kit, "phone", "+86" + data["phone"]) == 1


async def test_concurrent_sign_ups_racing_for_a_slug_or_a_phone(client, engine, kit):
    """Two sign-ups racing: one wins, the other gets the typed conflict (not INTERNAL), and the
    loser leaves nothing behind."""
    slug = unique_slug("race")
    inputs = [sign_up_input(tenantSlug=slug) for _ in range(2)]
    results = await asyncio.gather(*(gql(client, SIGN_UP, {"input": i}) for i in inputs))
    kinds = sorted(r["data"]["signUp"]["__typename"] for r in results)
    assert kinds == ["ConflictError", "SignUpPayload"], results
    loser = next(
        i
        for i, r in zip(inputs, results, strict=True)
        if r["data"]["signUp"]["__typename"] == "ConflictError"
    )
    assert await accounts_with(engine, kit, "email", loser["email"]) == 0
    assert await tenant_leftovers(engine, slug) == (1, 1)

    national, e164 = new_phone()
    inputs = [sign_up_input(phone=national) for _ in range(2)]
    results = await asyncio.gather(*(gql(client, SIGN_UP, {"input": i}) for i in inputs))
    payloads = [r["data"]["signUp"] for r in results]
    assert sorted(p["__typename"] for p in payloads) == ["ConflictError", "SignUpPayload"], results
    assert next(p for p in payloads if p["__typename"] == "ConflictError")["field"] == "phone"
    assert await accounts_with(engine, kit, "phone", e164) == 1
    loser = next(
        i for i, p in zip(inputs, payloads, strict=True) if p["__typename"] == "ConflictError"
    )
    assert await tenant_leftovers(engine, loser["tenantSlug"]) == (0, 0)


# ---------------------------------------------------------------- sign-in


@pytest.fixture
async def signed_up(client):
    data, payload = await sign_up(client)
    assert payload["__typename"] == "SignUpPayload", payload
    return {**data, "accountId": payload["account"]["id"], "slug": data["tenantSlug"]}


async def test_sign_in_with_phone_formats_and_email(client, signed_up):
    national = signed_up["phone"]  # 139xxxxxxxx
    spaced = f"{national[:3]} {national[3:7]} {national[7:]}"
    identifiers = [
        national,
        "+86" + national,
        "+86 " + spaced,
        "0086 " + spaced,
        f"(+86) {national[:3]}-{national[3:7]}-{national[7:]}",
        "  " + signed_up["email"].upper() + "  ",
    ]
    payloads = await asyncio.gather(
        *(sign_in(client, signed_up["slug"], i, PASSWORD) for i in identifiers)
    )
    sessions = set()
    for identifier, payload in zip(identifiers, payloads, strict=True):
        assert payload["__typename"] == "SignInPayload", (identifier, payload)
        tokens = payload["tokens"]
        sessions.add(tokens["sessionId"])
        res = await gql(client, ME, tenant=signed_up["slug"], token=tokens["accessToken"])
        assert res["data"]["me"]["account"]["id"] == signed_up["accountId"], res
    assert len(sessions) == len(identifiers)  # one new session per sign-in


async def test_wrong_password_and_unknown_account_look_the_same(client, signed_up, make_tenant):
    slug, other = signed_up["slug"], await make_tenant()
    refusals = await asyncio.gather(
        sign_in(client, slug, signed_up["email"], WRONG),
        sign_in(client, slug, new_email("nobody"), PASSWORD),
        sign_in(client, slug, new_phone()[0], PASSWORD),
        # Right password, but no membership in this tenant.
        sign_in(client, other.slug, signed_up["email"], PASSWORD),
    )
    for r in refusals:
        assert r["__typename"] == "AuthError", r
        assert r["code"] == "UNAUTHENTICATED"
    assert len({(r["message"], r["field"]) for r in refusals}) == 1, refusals


async def test_sign_in_needs_a_tenant(client):
    res = await gql(client, sign_in_op(new_email(), PASSWORD))
    assert res["data"] is None
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", res


async def test_sign_in_with_malformed_identifier(client, make_tenant):
    tenant = await make_tenant()
    payload = await sign_in(client, tenant.slug, "12", PASSWORD)
    assert payload["__typename"] == "ValidationError", payload
    assert payload["field"] == "identifier"


async def test_sign_in_with_malformed_email_identifier_names_the_argument(client, make_tenant):
    tenant = await make_tenant()
    payload = await sign_in(client, tenant.slug, "bad@@example", PASSWORD)
    assert payload["__typename"] == "ValidationError", payload
    assert payload["field"] == "identifier"


async def failures(engine, account_id: str):
    return await row(
        engine,
        "SELECT failed_logins, locked_until, locked_until > now() AS locked"
        " FROM shared.account WHERE id = :id",
        id=uuid.UUID(account_id),
    )


async def test_lockout_after_max_failures_is_persisted(client, engine, settings, signed_up):
    slug, ident, n = signed_up["slug"], signed_up["email"], settings.login_max_failures
    for i in range(1, n + 1):
        r = await sign_in(client, slug, ident, WRONG)
        assert r["__typename"] == "AuthError", (i, r)
        f = await failures(engine, signed_up["accountId"])
        assert f["failed_logins"] == i  # committed although the mutation refused
        assert bool(f["locked"]) == (i >= n)
    locked_until = (await failures(engine, signed_up["accountId"]))["locked_until"]

    # Locked: even the right password is refused, by phone as well as by email.
    for identifier in (ident, "+86" + signed_up["phone"]):
        r = await sign_in(client, slug, identifier, PASSWORD)
        assert r["__typename"] == "RateLimitedError", r
        assert r["code"] == "RATE_LIMITED"
        assert 0 < r["retryAfter"] <= settings.login_lockout_base + 1
    f = await failures(engine, signed_up["accountId"])
    assert (f["failed_logins"], f["locked_until"]) == (n, locked_until)

    # Once the lock has passed, the right password works and clears the record.
    await execute(
        engine,
        "UPDATE shared.account SET locked_until = now() - interval '1 second' WHERE id = :id",
        id=uuid.UUID(signed_up["accountId"]),
    )
    assert (await sign_in(client, slug, ident, PASSWORD))["__typename"] == "SignInPayload"
    f = await failures(engine, signed_up["accountId"])
    assert (f["failed_logins"], f["locked_until"]) == (0, None)


async def test_sign_in_with_variables_records_the_failure(client, engine, signed_up):
    """What every app sends: the arguments as variables. A refusal is data and the failure
    count is committed."""
    query = (
        "mutation($identifier: String!, $password: String!) {"
        " signIn(identifier: $identifier, password: $password) { __typename } }"
    )
    res = await gql(
        client,
        query,
        {"identifier": signed_up["email"], "password": WRONG},
        tenant=signed_up["slug"],
        token=None,
    )
    assert res == {"data": {"signIn": {"__typename": "AuthError"}}}, res
    assert (await failures(engine, signed_up["accountId"]))["failed_logins"] == 1


async def test_phone_and_email_stored_encrypted(engine, kit, signed_up):
    national, e164, email = signed_up["phone"], "+86" + signed_up["phone"], signed_up["email"]
    account_id = uuid.UUID(signed_up["accountId"])
    raw = await row(engine, "SELECT * FROM shared.account WHERE id = :id", id=account_id)
    assert raw is not None
    for column, value in raw.items():
        blob = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        for secret in (national, e164, email, national[-8:]):
            assert secret.encode() not in blob, column
    assert raw["password_hash"].startswith("$argon2id$")
    # The ciphertexts belong to this row: they decrypt here, and not on another account.
    from api.identity.models import Account

    acc = Account(id=account_id, phone_enc=raw["phone_enc"], email_enc=raw["email_enc"])
    assert service.account_phone(kit, acc) == e164
    assert service.account_email(kit, acc) == email
    from api.security.crypto import DecryptionFailed

    with pytest.raises(DecryptionFailed):
        service.account_phone(kit, Account(id=uuid.uuid4(), phone_enc=raw["phone_enc"]))
    # The phone ciphertext is not the email's either.
    with pytest.raises(DecryptionFailed):
        service.account_email(kit, Account(id=account_id, email_enc=raw["phone_enc"]))
