"""A gateway started with production settings (env=production, its own secrets), over real HTTP
and WebSocket: no "Did you mean" hint for a mistyped field, argument or input field; a full
document from a caller without graphql.adhoc refused before it is parsed or validated (nothing
learnt about the schema); a multipart post without a header a form cannot send refused before
it runs (a cross-site form); several operations need an operationName; self-service sign-up
works by its trusted document id; and the hostile bodies of test_edge_input.py are refused the
same way here."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from api.security.kit import build_kit
from mobile_contracts.contracts import documents
from tests.api.helpers import DEEP_ARRAYS, DEEP_OBJECTS, body_with, refusal
from tests.api.identity.helpers import PASSWORD, new_email, new_phone
from tests.api.live.helpers import live
from tests.conftest import add_member, gql, production_overrides, unique_slug
from tests.conftest import test_settings as settings_for_tests

IDS = {(d.app, d.name): d.id for d in documents()}
ADHOC = "send a trusted document id (documentId); full documents need graphql.adhoc"


@pytest.fixture(scope="module")
def overrides() -> dict:
    return production_overrides()


@pytest.fixture(scope="module")
def production(live_server_factory, overrides):
    with live_server_factory(**overrides) as server:
        yield server


@pytest.fixture(scope="module")
def production_kit(overrides):
    return build_kit(settings_for_tests(**overrides))


@pytest.fixture
async def prod(production):
    async with httpx.AsyncClient(base_url=production.url, timeout=60) as client:
        yield client


@pytest.fixture
async def tenant_and_tokens(make_tenant, engine, production_kit):
    """A tenant, and tokens the production gateway accepts: (tenant, admin, agent)."""
    tenant = await make_tenant()
    _, admin = await add_member(engine, production_kit, tenant, ["admin"])
    _, agent = await add_member(engine, production_kit, tenant, ["agent"])
    return tenant, admin, agent


async def by_id(client, app: str, name: str, variables: dict, headers: dict | None = None):
    body = {"documentId": IDS[(app, name)], "variables": variables}
    return await client.post("/graphql", json=body, headers=headers or {})


def bearer(slug: str, token: str | None = None) -> dict:
    return {"X-Tenant": slug} | ({"Authorization": f"Bearer {token}"} if token else {})


# ---------------------------------------------------------------- no schema hints


async def test_no_suggestions_for_mistyped_input_fields_over_http(prod, tenant_and_tokens):
    tenant, admin, _ = tenant_and_tokens
    probes = [
        "{ units(filter: {priceMn: 1}) { totalCount } }",  # an input field
        "{ units(frist: 1) { totalCount } }",  # an argument
        "{ units { totlCount } }",  # a field
    ]
    for query in probes:
        headers = bearer(tenant.slug, admin)
        resp = await prod.post("/graphql", json={"query": query}, headers=headers)
        [error] = resp.json()["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert "Did you mean" not in error["message"], error
        assert "priceMin" not in error["message"] and "first" not in error["message"], error
    # The same mistake through a trusted document's variables.
    resp = await by_id(
        prod,
        "owner",
        "SearchUnits",
        {"filter": {"priceMn": 1}, "sort": "NEWEST"},
        bearer(tenant.slug, admin),
    )
    [error] = resp.json()["errors"]
    assert "priceMn" in error["message"] and "Did you mean" not in error["message"], error


async def test_no_suggestions_for_mistyped_input_fields_over_websocket(
    production, tenant_and_tokens
):
    tenant, admin, agent = tenant_and_tokens
    async with live(production, tenant.slug, agent) as c:
        sid = await c.subscribe(
            "", {"filter": {"priceMn": 1}}, documentId=IDS[("agent", "ListingChanges")]
        )
        msg = await c.recv()
        assert msg["type"] == "error" and msg["id"] == sid, msg
        assert "priceMn" in msg["payload"][0]["message"]
        assert "Did you mean" not in msg["payload"][0]["message"], msg
    async with live(production, tenant.slug, admin) as c:  # admin: full documents allowed
        sid = await c.subscribe("subscription { listingChanges(filter: {priceMn: 1}) { seq } }")
        msg = await c.recv()
        assert msg["type"] == "error" and msg["id"] == sid, msg
        assert "Did you mean" not in msg["payload"][0]["message"], msg


# ---------------------------------------------------------------- full documents


async def test_full_documents_are_refused_before_they_are_parsed(prod, tenant_and_tokens):
    tenant, admin, agent = tenant_and_tokens
    probes = [
        "{ apiVersio }",  # a validation error would name the field
        "{ units(filter: {priceMn: 1}) { totalCount } }",
        "{ __schema { types { name } } }",
        "{ apiVersion",  # a syntax error
        "query A { apiVersion } query B { apiVersion }",
    ]
    for headers in ({}, {"X-Tenant": tenant.slug}, bearer(tenant.slug, agent)):
        for query in probes:
            resp = await prod.post("/graphql", json={"query": query}, headers=headers)
            assert resp.status_code == 200
            assert resp.json() == {
                "data": None,
                "errors": [{"message": ADHOC, "extensions": {"code": "FORBIDDEN"}}],
            }, (headers, query)
    # graphql.adhoc (the admin): the document is read, introspection is still off.
    res = await gql(prod, "{ apiVersion }", tenant=tenant.slug, token=admin)
    assert res == {"data": {"apiVersion": "0.1.0"}}
    res = await gql(prod, "{ __schema { types { name } } }", tenant=tenant.slug, token=admin)
    assert res["data"] is None and "introspection" in res["errors"][0]["message"].lower()


async def test_several_operations_need_an_operation_name(prod, tenant_and_tokens):
    tenant, admin, _ = tenant_and_tokens
    document = "query A { apiVersion } mutation B { signOut { revokedSessionId } }"
    res = await gql(prod, document, tenant=tenant.slug, token=admin)
    assert res["data"] is None, res  # neither runs: the sign-out did not happen
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "operationName" in res["errors"][0]["message"]
    assert (await gql(prod, "{ me { roles } }", tenant=tenant.slug, token=admin))["data"]
    resp = await prod.post(
        "/graphql",
        json={"query": document, "operationName": "A"},
        headers=bearer(tenant.slug, admin),
    )
    assert resp.json() == {"data": {"apiVersion": "0.1.0"}}


# ---------------------------------------------------------------- multipart (forms)


async def test_a_multipart_post_without_a_preflight_header_is_refused(
    prod, production, tenant_and_tokens
):
    """A cross-site HTML form can POST multipart/form-data to the tenant's subdomain without a
    CORS preflight; it cannot add a header. Such a post runs nothing, not even a trusted
    anonymous mutation."""
    tenant, _, _ = tenant_and_tokens
    national, _ = new_phone()
    operations = json.dumps(
        {"documentId": IDS[("owner", "RequestSmsCode")], "variables": {"phone": national}}
    )
    form = {"operations": (None, operations), "map": (None, "{}")}
    # The tenant from the subdomain, as a form has it; a fresh client address (per-IP limit).
    host = {"Host": f"{tenant.slug}.localhost", "X-Forwarded-For": f"10.9.{os.getpid() % 250}.7"}
    resp = await prod.post("/graphql", files=form, headers=host)
    assert "X-Tenant, Authorization or Apollo-Require-Preflight" in refusal(resp)
    sent = {"Apollo-Require-Preflight": "true"}
    resp = await prod.post("/graphql", files=form, headers=host | sent)
    # Had the refused post run, this one would be told a code was just sent.
    assert resp.json()["data"]["requestSmsCode"]["__typename"] == "SmsCodeSent", resp.text
    resp = await prod.post("/graphql", files=form, headers=host | {"X-Tenant": tenant.slug})
    # X-Tenant is a preflight header too; the resend delay shows the previous one ran.
    assert resp.json()["data"]["requestSmsCode"]["__typename"] == "RateLimitedError", resp.text


# ---------------------------------------------------------------- sign-up


async def test_self_service_sign_up_by_its_trusted_document(prod, engine):
    national, _ = new_phone()
    slug = unique_slug("prod")
    variables = {
        "input": {
            "tenantSlug": slug,
            "tenantName": "Prod Realty",
            "name": "Wang Fang",
            "password": PASSWORD,
            "phone": national,
            "email": new_email("p"),
        }
    }
    resp = await by_id(prod, "agent", "SignUp", variables)
    payload = resp.json()["data"]["signUp"]
    assert payload["__typename"] == "SignUpPayload", payload
    assert payload["tenant"]["slug"] == slug and payload["tokens"]["accessToken"]
    # the tokens work on the new tenant
    res = await by_id(prod, "agent", "Me", {}, bearer(slug, payload["tokens"]["accessToken"]))
    assert "errors" not in res.json(), res.json()


# ---------------------------------------------------------------- hostile bodies


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        (b"null", "one JSON object"),
        (b"123", "one JSON object"),
        (DEEP_ARRAYS, "nested too deeply"),
        (b'{"documentId": "x", "variables": ' + DEEP_OBJECTS + b"}", "nested too deeply"),
        (b'{"documentId": "x", "variables": {"n": ' + b"9" * 5_000 + b"}}", "digits"),
        (body_with(b'{"s": "\xff"}'), "not valid UTF-8"),
    ],
    ids=["null", "number", "deep-arrays", "deep-objects", "5000-digits", "bad-utf8"],
)
async def test_hostile_bodies_are_bad_user_input(prod, body: bytes, fault: str):
    resp = await prod.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert fault in refusal(resp)


async def test_huge_bodies_are_refused_by_size(prod, tenant_and_tokens):
    tenant, admin, _ = tenant_and_tokens
    resp = await by_id(prod, "agent", "Me", {"x": "a" * 10_000_000}, bearer(tenant.slug, admin))
    refusal(resp, 413)
    comment = {"query": "#" + "a" * 10_000_000 + "\n{ apiVersion }"}
    resp = await prod.post("/graphql", json=comment, headers=bearer(tenant.slug, admin))
    refusal(resp, 413)
    res = await gql(prod, "{ apiVersion }", tenant=tenant.slug, token=admin)
    assert res == {"data": {"apiVersion": "0.1.0"}}
