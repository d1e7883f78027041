"""Key rotation (``rotate_keys``): every personal-data value under an older field key is
re-encrypted under the newest, in small batches; afterwards the old key is not needed, lookups
by blind index still work, and a second run has nothing to do.

Rotation walks every ciphertext of its database, and the other tests' gateways know key 1 only,
so this module works in a database of its own (``<test database>_rotation``)."""

from __future__ import annotations

import asyncio
import base64
import os
import struct

import httpx
import pyotp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import ensure_database, make_engine
from api.identity import service
from api.security.crypto import DecryptionFailed
from api.security.fields import encrypted_fields, rotate_keys
from api.security.kit import build_kit
from api.security.secrets import load_secrets
from tenants.migrate import upgrade_shared
from tests.api.identity.helpers import new_email, new_phone


@pytest.fixture(scope="module")
async def rot_engine(db_url, settings):
    url = db_url.set(database=f"{db_url.database}_rotation")
    await ensure_database(url, recreate=True)
    engine = make_engine(url, settings)
    try:
        await upgrade_shared(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def keys(settings):
    """(old keys, old version, new version, new key): the test settings' field keys plus one."""
    secrets = load_secrets(settings)
    old = dict(secrets.field_keys)
    return old, max(old), max(old) + 1, os.urandom(32)


def kit_with(settings, keys: dict[int, bytes]):
    """A kit with these field keys and the test settings' other secrets."""
    secrets = load_secrets(settings)
    raw = ",".join(f"{v}:{base64.b64encode(k).decode()}" for v, k in sorted(keys.items()))
    return build_kit(
        settings.model_copy(
            update={
                "field_keys": raw,
                "jwt_private_key": secrets.jwt_private_key,
                "blind_index_key": base64.b64encode(secrets.blind_index_key).decode(),
            }
        )
    )


async def add_accounts(engine, kit, n: int) -> dict:
    """``n`` accounts: with a phone and an email, a phone only, an email only (in turn).
    Returns {account id: (phone, email)}."""
    made = {}
    async with AsyncSession(engine, expire_on_commit=False) as session:
        for i in range(n):
            phone = new_phone()[1] if i % 3 != 2 else None
            email = new_email("rot") if i % 3 != 1 else None
            account = await service.create_account(
                session, kit, name=f"Person {i}", phone=phone, email=email, password=None
            )
            made[account.id] = (phone, email)
        await session.commit()
    return made


async def ciphertexts(engine) -> dict:
    """{account id: (phone_enc, email_enc)} of every account."""
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, phone_enc, email_enc FROM shared.account"))
        return {r.id: (r.phone_enc, r.email_enc) for r in rows}


async def stale(engine, version: int) -> int:
    """Values not under key ``version``."""
    blobs = [b for pair in (await ciphertexts(engine)).values() for b in pair if b is not None]
    return sum(struct.unpack(">H", b[:2])[0] != version for b in blobs)


def decrypt(kit, account_id, column: str, blob: bytes) -> str:
    return kit.cipher.decrypt(
        blob, scope="shared", table="account", column=column, row_id=account_id
    )


async def test_rotation_re_encrypts_under_the_newest_key(rot_engine, settings, keys):
    old, old_version, new_version, new_key = keys
    kit_old = kit_with(settings, old)
    kit_both = kit_with(settings, old | {new_version: new_key})
    kit_new = kit_with(settings, {new_version: new_key})
    kit_only_old = kit_with(settings, {old_version: old[old_version]})
    assert kit_both.cipher.current == new_version

    made = await add_accounts(rot_engine, kit_old, 8)
    before = await ciphertexts(rot_engine)
    old_prefix = struct.pack(">H", old_version)
    assert all(b[:2] == old_prefix for i in made for b in before[i] if b is not None)
    expected = {  # every value not under the newest key (this test's, at least)
        f"account.{column}_enc": sum(
            pair[n] is not None and pair[n][:2] != struct.pack(">H", new_version)
            for pair in before.values()
        )
        for n, column in enumerate(("phone", "email"))
    }
    assert expected["account.phone_enc"] >= 5 and expected["account.email_enc"] >= 5

    counts = await rotate_keys(rot_engine, kit_both, batch=3)  # several batches
    assert {k: counts[k] for k in expected} == expected
    assert set(counts) == {f.key for f in encrypted_fields()}

    after = await ciphertexts(rot_engine)
    prefix = struct.pack(">H", new_version)
    if old_version == 1:
        assert prefix == b"\x00\x02"
    for account_id, (phone, email) in made.items():
        phone_enc, email_enc = after[account_id]
        for column, plain, blob, was in (
            ("phone", phone, phone_enc, before[account_id][0]),
            ("email", email, email_enc, before[account_id][1]),
        ):
            if plain is None:
                assert blob is None  # nothing invented
                continue
            assert blob[:2] == prefix
            assert blob != was
            assert decrypt(kit_new, account_id, column, blob) == plain  # the new key alone
            assert decrypt(kit_both, account_id, column, blob) == plain
            with pytest.raises(DecryptionFailed):
                decrypt(kit_only_old, account_id, column, blob)  # the old key alone cannot
            with pytest.raises(DecryptionFailed):  # still bound to its row
                decrypt(kit_new, next(i for i in made if i != account_id), column, blob)

    # Lookups by blind index are unaffected; the decrypted values are the same.
    async with AsyncSession(rot_engine) as session:
        for account_id, (phone, email) in made.items():
            kind, value = ("phone", phone) if phone else ("email", email)
            found = await service.find_account(session, kit_new, service.Identifier(kind, value))
            assert found is not None and found.id == account_id
            assert service.account_phone(kit_new, found) == phone
            assert service.account_email(kit_new, found) == email

    # A second run has nothing left to do, and changes nothing.
    assert set((await rotate_keys(rot_engine, kit_both)).values()) == {0}
    assert await ciphertexts(rot_engine) == after
    assert set((await rotate_keys(rot_engine, kit_new)).values()) == {0}


async def test_values_written_under_the_old_key_during_a_rollout_are_rotated(
    rot_engine, settings, keys
):
    """A gateway not yet rolled keeps writing under the old key: the next run catches it."""
    old, _, new_version, new_key = keys
    kit_both = kit_with(settings, old | {new_version: new_key})
    await rotate_keys(rot_engine, kit_both)
    await add_accounts(rot_engine, kit_with(settings, old), 3)
    assert await stale(rot_engine, new_version) > 0
    counts = await rotate_keys(rot_engine, kit_both)
    assert sum(counts.values()) == 4  # 3 accounts: phone+email, phone, email
    assert await stale(rot_engine, new_version) == 0


async def test_rotation_does_not_leave_locked_rows_behind(rot_engine, settings, keys):
    old, _, new_version, new_key = keys
    kit_both = kit_with(settings, old | {new_version: new_key})
    await rotate_keys(rot_engine, kit_both)
    made = await add_accounts(rot_engine, kit_with(settings, old), 3)
    busy = next(iter(made))
    locked = asyncio.Event()

    async def hold_row() -> None:  # e.g. a sign-in updating the account, for a moment
        async with rot_engine.connect() as conn:
            await conn.execute(
                text("SELECT 1 FROM shared.account WHERE id = :a FOR UPDATE"), {"a": busy}
            )
            locked.set()
            await asyncio.sleep(0.3)
            await conn.rollback()

    holder = asyncio.create_task(hold_row())
    try:
        await locked.wait()
        counts = await rotate_keys(rot_engine, kit_both)
    finally:
        await holder
    left = await stale(rot_engine, new_version)
    assert left == 0, f"{left} value(s) still under the old key after rotate_keys -> {counts}"


# ---------------------------------------------------------------- every ciphertext column

# bytea columns that hold no ciphertext (by name): blind indexes, hashes and HMACs are
# one-way digests under their own keys, untouched by a field-key rotation.
DIGEST_SUFFIXES = ("_bidx", "hash", "_hmac")

CLIENT = """mutation($input: CreateClientInput!) { createClient(input: $input) {
  __typename ... on ClientPayload { client { id } } ... on UserError { code message field } } }"""
LISTING = """mutation($input: CreateListingInput!) { createListing(input: $input) {
  __typename ... on ListingPayload { listing { id } } ... on UserError { code message field } } }"""
INVITE = """mutation($input: InviteMemberInput!) { inviteMember(input: $input) {
  __typename ... on UserError { code message field } } }"""
ENROLL = "mutation { enrollTotp { __typename ... on TotpEnrollment { secret } } }"
CONFIRM = """mutation($code: String!) { confirmTotp(code: $code) {
  __typename ... on TotpStatus { enabled } ... on UserError { code message } } }"""
READ = """query($c: ID!, $l: ID!) {
  me { account { phone email } }
  client(id: $c) { phone otherPhones idNumber }
  listing(id: $l) { sellerPhone }
  invitations { phone email } }"""


async def bytea_columns(engine, schemas: list[str]) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every bytea column of these schemas, in the database."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT table_schema, table_name, column_name FROM information_schema.columns"
                " WHERE data_type = 'bytea' AND table_schema = ANY(:s) ORDER BY 1, 2, 3"
            ),
            {"s": schemas},
        )
        return [tuple(r) for r in rows]


async def versions_in(engine, schema: str, table: str, column: str) -> set[int]:
    """The key versions of the values of one column."""
    async with engine.connect() as conn:
        blobs = await conn.scalars(
            text(f'SELECT "{column}" FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL')
        )
        return {struct.unpack(">H", b[:2])[0] for b in blobs}


async def test_every_ciphertext_column_is_rotated_and_readable_without_the_old_key(
    rot_engine, db_url, settings, keys
):
    """Values written through the real code paths (an account's phone and email, its TOTP
    secret, a client's phone, other phones and ID number, a listing's seller phone, what an
    invitation's inviter typed, the tenant's seal key) under the
    old key; rotation; then a gateway that knows only the new key reads every one back. Every
    bytea column of the database that is not a digest is checked, registered or not."""
    from api.app import create_app
    from tenants.provisioning import create_tenant
    from tests.conftest import LiveServer, add_member, gql, test_settings, unique_slug

    old, old_version, new_version, new_key = keys
    kit_old = kit_with(settings, old)
    kit_both = kit_with(settings, old | {new_version: new_key})
    kit_new = kit_with(settings, {new_version: new_key})
    url = rot_engine.url

    tenant = (await create_tenant(rot_engine, unique_slug("rot"), "Rotation Realty")).tenant
    phone, email = new_phone()[1], new_email("rot-admin")
    _, token = await add_member(
        rot_engine, kit_old, tenant, ["admin"], name="Admin", email=email, phone=phone
    )
    client_phone, id_number = "+8613911112222", "110101199003077777"
    others = ["+8613933334444", "+8613955556666"]
    seller = "+8613877778888"
    invitee = {"phone": "+8613800001111", "email": "invitee@rotation.example.com"}

    def gateway(kit):
        secrets = ("field_keys", "jwt_private_key", "blind_index_key")
        overrides = {k: getattr(kit.settings, k) for k in secrets}
        return LiveServer(create_app(test_settings(**overrides), url=url)).start()

    server = gateway(kit_old)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            res = await gql(
                http,
                CLIENT,
                {
                    "input": {
                        "name": "Rotated Client",
                        "phone": client_phone,
                        "otherPhones": others,
                        "idNumber": id_number,
                    }
                },
                tenant=tenant.slug,
                token=token,
            )
            client_id = res["data"]["createClient"]["client"]["id"]
            res = await gql(
                http,
                LISTING,
                {
                    "input": {
                        "community": "Key Garden",
                        "grossArea": "89.50",
                        "rooms": 3,
                        "askingPrice": 500_000_000,
                        "sellerPhone": seller,
                    }
                },
                tenant=tenant.slug,
                token=token,
            )
            listing_id = res["data"]["createListing"]["listing"]["id"]
            res = await gql(
                http,
                INVITE,
                {"input": {"name": "Invitee", "roles": ["agent"], **invitee}},
                tenant=tenant.slug,
                token=token,
            )
            assert res["data"]["inviteMember"]["__typename"] == "InvitationPayload", res
            res = await gql(http, ENROLL, tenant=tenant.slug, token=token)
            secret = res["data"]["enrollTotp"]["secret"]
    finally:
        server.stop()
    await seal_a_document(rot_engine, kit_old, tenant)  # the tenant's seal key, made now

    schemas = ["shared", tenant.schema_name]
    columns = await bytea_columns(rot_engine, schemas)
    ciphertexts = [c for c in columns if not c[2].endswith(DIGEST_SUFFIXES)]
    # Every ciphertext column of the database is registered, and this test wrote into each.
    registered = {
        (("shared" if f.shared else tenant.schema_name), f.table.name, f.name)
        for f in encrypted_fields()
    }
    assert set(ciphertexts) == registered
    for schema, table, column in ciphertexts:
        assert old_version in await versions_in(rot_engine, schema, table, column), column

    counts = await rotate_keys(rot_engine, kit_both, batch=2)
    assert all(counts[f"{t}.{c}"] > 0 for _, t, c in ciphertexts), counts
    for schema, table, column in ciphertexts:
        assert await versions_in(rot_engine, schema, table, column) == {new_version}, (
            f"{schema}.{table}.{column} still holds values under the old key"
        )

    server = gateway(kit_new)  # the old key removed
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            res = await gql(
                http, READ, {"c": client_id, "l": listing_id}, tenant=tenant.slug, token=token
            )
            assert "errors" not in res, res
            assert res["data"] == {
                "me": {"account": {"phone": phone, "email": email}},
                "client": {"phone": client_phone, "otherPhones": others, "idNumber": id_number},
                "listing": {"sellerPhone": seller},
                "invitations": [invitee],
            }
            res = await gql(
                http, CONFIRM, {"code": pyotp.TOTP(secret).now()}, tenant=tenant.slug, token=token
            )
            assert res["data"]["confirmTotp"] == {"__typename": "TotpStatus", "enabled": True}
    finally:
        server.stop()
    await seal_a_document(rot_engine, kit_new, tenant)  # the seal key read under the new key


async def seal_a_document(engine, kit, tenant) -> None:
    """Seal a small PDF with the tenant's seal (api/signing: its key is made on first use and
    decrypted for each seal) and check the result validates."""
    import io

    from reportlab.pdfgen import canvas

    from api.signing import pades, pki
    from api.signing.provider import LocalCaProvider
    from tenants.sessions import TenantDatabase

    out = io.BytesIO()
    page = canvas.Canvas(out, invariant=True)
    page.drawString(100, 700, "rotation")
    page.showPage()
    page.save()
    async with TenantDatabase(engine).session(tenant) as session:
        sealed = await LocalCaProvider(kit).seal(
            session, tenant, out.getvalue(), reason="rotation", location="test"
        )
        await session.commit()
    assert (await pades.validate(sealed.pdf, [pki.platform_ca(kit.settings).cert])).ok


def test_a_ciphertext_column_without_the_mark_fails_the_check():
    """A binary ``*_enc`` column must be declared with ``ciphertext_column`` (rotation finds
    only marked columns); the models of every domain pass."""
    from sqlalchemy import Column, LargeBinary, MetaData, Table, Uuid

    from api.db import CIPHERTEXT, Ciphertext, SharedBase, TenantBase
    from api.domains import load_models
    from api.security.fields import unmarked_ciphertext_columns

    md = MetaData()
    Table(
        "thing",
        md,
        Column("id", Uuid, primary_key=True),
        Column("secret_enc", LargeBinary),
        Column("phone_bidx", LargeBinary),
        Column("other_enc", LargeBinary, info={CIPHERTEXT: Ciphertext("other")}),
    )
    assert unmarked_ciphertext_columns([md]) == ["thing.secret_enc"]

    load_models()
    assert unmarked_ciphertext_columns([SharedBase.metadata, TenantBase.metadata]) == []
