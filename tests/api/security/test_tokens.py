"""Access-token attacks, against TokenService.verify and end to end through GraphQL: only an
EdDSA token signed by a known key, for this tenant, unexpired, with every claim, is accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from api.security.secrets import load_secrets
from api.security.secrets import new_ed25519_pem as ed25519_pem
from api.security.tokens import InvalidToken, TokenService
from tenants.provisioning import create_tenant
from tests.api.identity.helpers import add_membership, assert_unauthenticated, new_account
from tests.conftest import gql, unique_slug


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def b64json(obj: dict) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims_for(aud: str, sub: uuid.UUID, sid: uuid.UUID, **over) -> dict:
    now = int(time.time())
    claims = {
        "iss": "anju",
        "sub": str(sub),
        "aud": aud,
        "sid": str(sid),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def unsigned(header: dict, claims: dict) -> str:
    """alg "none": header.payload. (an empty signature)."""
    return f"{b64json(header)}.{b64json(claims)}."


def hs256(header: dict, claims: dict, secret: bytes) -> str:
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def eddsa(claims: dict, private_pem: str, kid: str | None) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims, private_pem, algorithm="EdDSA", headers=headers)


ATTACKS = [
    "alg-none",
    "alg-None",
    "alg-none-with-valid-signature",
    "hs256-public-key-as-secret",
    "other-key-same-kid",
    "unknown-kid",
    "no-kid",
    "wrong-audience",
    "wrong-issuer",
    "expired",
    "no-sid",
    "no-exp",
    "sid-not-a-uuid",
    "tampered-payload",
]


def forge(attack: str, *, pem: str, kid: str, aud: str, other_aud: str, sub, sid) -> str:
    """A token for (aud, sub, sid) that is wrong in exactly one way."""
    good = claims_for(aud, sub, sid)
    if attack in ("alg-none", "alg-None"):
        return unsigned({"alg": attack[4:], "typ": "JWT", "kid": kid}, good)
    if attack == "alg-none-with-valid-signature":
        real = eddsa(good, pem, kid)
        return b64json({"alg": "none", "kid": kid}) + real[real.index(".") :]
    if attack == "hs256-public-key-as-secret":
        return hs256({"alg": "HS256", "typ": "JWT", "kid": kid}, good, public_pem(pem).encode())
    if attack == "other-key-same-kid":
        return eddsa(good, ed25519_pem(), kid)
    if attack == "unknown-kid":
        return eddsa(good, pem, "no-such-kid")
    if attack == "no-kid":
        return eddsa(good, pem, None)
    if attack == "wrong-audience":
        return eddsa(claims_for(other_aud, sub, sid), pem, kid)
    if attack == "wrong-issuer":
        return eddsa(claims_for(aud, sub, sid, iss="evil"), pem, kid)
    if attack == "expired":
        past = int(time.time()) - 100
        return eddsa(claims_for(aud, sub, sid, iat=past - 900, nbf=past - 900, exp=past), pem, kid)
    if attack == "no-sid":
        return eddsa({k: v for k, v in good.items() if k != "sid"}, pem, kid)
    if attack == "no-exp":
        return eddsa({k: v for k, v in good.items() if k != "exp"}, pem, kid)
    if attack == "sid-not-a-uuid":
        return eddsa({**good, "sid": "x"}, pem, kid)
    if attack == "tampered-payload":
        real = eddsa(good, pem, kid)
        head, _, sig = real.split(".")
        return f"{head}.{b64json({**good, 'sub': str(uuid.uuid4())})}.{sig}"
    raise AssertionError(attack)


# ---------------------------------------------------------------- TokenService.verify


@pytest.fixture(scope="module")
def signing_pem() -> str:
    return ed25519_pem()


@pytest.fixture(scope="module")
def service(signing_pem) -> TokenService:
    return TokenService(signing_pem)


def test_issued_token_verifies(service):
    account, sid = uuid.uuid4(), uuid.uuid4()
    token, exp = service.issue(account, "acme", sid)
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": service.kid, "typ": "JWT"}
    claims = service.verify(token, "acme")
    assert (claims.account_id, claims.tenant, claims.session_id) == (account, "acme", sid)
    assert claims.expires_at == exp and exp - time.time() == pytest.approx(900, abs=5)


@pytest.mark.parametrize("attack", ATTACKS)
def test_verify_refuses(service, signing_pem, attack):
    sub, sid = uuid.uuid4(), uuid.uuid4()
    token = forge(
        attack, pem=signing_pem, kid=service.kid, aud="acme", other_aud="other", sub=sub, sid=sid
    )
    with pytest.raises(InvalidToken):
        service.verify(token, "acme")
    # The control: the same claims, honestly signed, pass.
    assert service.verify(eddsa(claims_for("acme", sub, sid), signing_pem, service.kid), "acme")


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "..", "e30.e30.", "Bearer x.y.z"])
def test_verify_refuses_garbage(service, garbage):
    with pytest.raises(InvalidToken):
        service.verify(garbage, "acme")


def test_ttl_negative_means_expired(signing_pem, service):
    expired = TokenService(signing_pem, ttl=-100)
    token, exp = expired.issue(uuid.uuid4(), "acme", uuid.uuid4())
    assert exp < time.time()
    with pytest.raises(InvalidToken):
        service.verify(token, "acme")


def test_a_remembered_token_still_expires_and_stays_bound_to_its_tenant(service, monkeypatch):
    token, exp = service.issue(uuid.uuid4(), "acme", uuid.uuid4())
    assert service.verify(token, "acme").expires_at == exp  # verified, now remembered
    with pytest.raises(InvalidToken):  # remembered for acme only
        service.verify(token, "other")
    assert service.verify(token, "acme").expires_at == exp  # served from memory
    # Past expiry and leeway the memory no longer answers: the token is verified again (and
    # that verification, with PyJWT's own clock, refuses it).
    calls = []

    def verify_again(*args):
        calls.append(args)
        raise InvalidToken("ExpiredSignatureError")

    monkeypatch.setattr(time, "time", lambda: exp + 6)
    monkeypatch.setattr(service, "_verify", verify_again)
    with pytest.raises(InvalidToken):
        service.verify(token, "acme")
    assert calls == [(token, "acme")]


def test_previous_keys_verify_until_dropped(signing_pem):
    old = TokenService(signing_pem)
    token, _ = old.issue(uuid.uuid4(), "acme", uuid.uuid4())
    rotated = TokenService(ed25519_pem(), [public_pem(signing_pem)])
    assert rotated.kid != old.kid
    assert rotated.verify(token, "acme").tenant == "acme"
    with pytest.raises(InvalidToken):  # the retired key is no longer listed
        TokenService(ed25519_pem()).verify(token, "acme")
    # New tokens are signed by the new key only.
    new_token, _ = rotated.issue(uuid.uuid4(), "acme", uuid.uuid4())
    assert jwt.get_unverified_header(new_token)["kid"] == rotated.kid
    with pytest.raises(InvalidToken):
        old.verify(new_token, "acme")


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
async def victim(engine, kit):
    """An agent of tenants A and B with a live session in A; returns what forging needs."""
    a = (await create_tenant(engine, unique_slug("jwt-a"), "JWT A")).tenant
    b = (await create_tenant(engine, unique_slug("jwt-b"), "JWT B")).tenant
    account_id, tokens = await new_account(engine, kit, a, ["agent"])
    await add_membership(engine, account_id, b, ["agent"])
    return {
        "a": a.slug,
        "b": b.slug,
        "sub": account_id,
        "sid": tokens.session_id,
        "token": tokens.access_token,
        "pem": load_secrets(kit.settings).jwt_private_key,
        "kid": kit.tokens.kid,
    }


ME = "{ me { roles tenant { slug } } }"


async def test_valid_token_works(client, victim):
    res = await gql(client, ME, tenant=victim["a"], token=victim["token"])
    assert res == {"data": {"me": {"roles": ["agent"], "tenant": {"slug": victim["a"]}}}}
    # A token crafted with the server's key and the same claims: the forging harness is sound.
    token = eddsa(
        claims_for(victim["a"], victim["sub"], victim["sid"]), victim["pem"], victim["kid"]
    )
    res = await gql(client, ME, tenant=victim["a"], token=token)
    assert res["data"]["me"]["roles"] == ["agent"], res
    # And its B-audience twin works in B (the account is a member there too).
    token_b = eddsa(
        claims_for(victim["b"], victim["sub"], victim["sid"]), victim["pem"], victim["kid"]
    )
    res = await gql(client, ME, tenant=victim["b"], token=token_b)
    assert res["data"]["me"]["tenant"]["slug"] == victim["b"], res


@pytest.mark.parametrize("attack", ATTACKS)
async def test_forged_token_refused_over_graphql(client, victim, attack):
    token = forge(
        attack,
        pem=victim["pem"],
        kid=victim["kid"],
        aud=victim["a"],
        other_aud=victim["b"],
        sub=victim["sub"],
        sid=victim["sid"],
    )
    res = await gql(client, ME, tenant=victim["a"], token=token)
    assert_unauthenticated(res)


async def test_token_of_tenant_a_refused_on_tenant_b(client, victim):
    """The account is a member of both tenants: only the audience keeps A's token out of B."""
    res = await gql(client, ME, tenant=victim["b"], token=victim["token"])
    assert_unauthenticated(res)


async def test_expired_token_from_short_ttl_refused(client, victim):
    expired = TokenService(victim["pem"], ttl=-100)
    token, _ = expired.issue(victim["sub"], victim["a"], victim["sid"])
    assert_unauthenticated(await gql(client, ME, tenant=victim["a"], token=token))


async def test_forged_token_cannot_sign_the_victim_out(client, victim):
    token = forge(
        "alg-none",
        pem=victim["pem"],
        kid=victim["kid"],
        aud=victim["a"],
        other_aud=victim["b"],
        sub=victim["sub"],
        sid=victim["sid"],
    )
    res = await gql(
        client, "mutation { signOut { revokedSessionId } }", tenant=victim["a"], token=token
    )
    assert_unauthenticated(res)
    res = await gql(client, ME, tenant=victim["a"], token=victim["token"])
    assert res["data"]["me"]["roles"] == ["agent"], res


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Token x.y.z", "bearer not-a-jwt"])
async def test_malformed_authorization_header(client, victim, header):
    resp = await client.post(
        "/graphql",
        json={"query": ME},
        headers={"X-Tenant": victim["a"], "Authorization": header},
    )
    assert resp.status_code == 200
    assert_unauthenticated(resp.json())
