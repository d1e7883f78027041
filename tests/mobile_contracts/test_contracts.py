"""The apps' documents: each validates against the current schema (with the gateway's limits),
the manifest is current, deprecated fields they use are in the CHANGELOG, trusted documents
are enforced in production, and every contract operation runs against a seeded server."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from graphql import (
    FieldNode,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    parse,
    specified_rules,
    validate,
    visit,
)

from api.graphql.limits import cost_rule
from api.graphql.schema import build_schema
from api.security.secrets import load_secrets
from api.seed import DEMO_SLUG, seed_demo
from api.settings import Settings
from mobile_contracts.contracts import APPS, MANIFEST, ROOT, documents, manifest_text
from tests.api.live.helpers import live
from tests.conftest import STRIPE, unique_slug
from tests.conftest import test_settings as settings_for_tests

SCHEMA = build_schema(Settings())._schema
DOCS = documents()


def test_there_are_documents_for_every_app():
    assert {d.app for d in DOCS} == {"agent", "owner", "staff", "console"}
    assert len(DOCS) >= 40


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: f"{d.app}/{d.name}")
def test_document_is_one_named_operation_valid_against_the_schema(doc):
    ast = parse(doc.text)
    ops = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(ops) == 1 and ops[0].name and ops[0].name.value == doc.name
    settings = Settings()
    errors = validate(SCHEMA, ast, [*specified_rules, cost_rule(settings.graphql_max_cost)])
    assert not errors, [e.message for e in errors]


def test_manifest_is_current():
    assert MANIFEST.read_text() == manifest_text(), "run `anju contracts manifest`"


def test_deprecated_fields_in_use_are_announced_in_the_changelog():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    used = set()

    class Collect(Visitor):
        def __init__(self, info: TypeInfo):
            super().__init__()
            self.info = info

        def enter_field(self, node: FieldNode, *_):
            field, parent = self.info.get_field_def(), self.info.get_parent_type()
            if field is not None and field.deprecation_reason:
                used.add(f"{parent.name}.{node.name.value}")

    for doc in DOCS:
        info = TypeInfo(SCHEMA)
        visit(parse(doc.text), TypeInfoVisitor(info, Collect(info)))
    missing = sorted(f for f in used if f"`{f}`" not in changelog)
    assert not missing, f"deprecated fields used by app documents, not in the CHANGELOG: {missing}"


def by_name(app: str, name: str):
    return next(d for d in DOCS if d.app == app and d.name == name)


async def run(client, app, name, variables=None, token=None, tenant=DEMO_SLUG) -> dict:
    headers = {"X-Tenant": tenant, "X-Anju-App": app}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"documentId": by_name(app, name).id, "variables": variables or {}}
    resp = await client.post("/graphql", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    res = resp.json()
    assert "errors" not in res, (name, res)
    return res["data"]


@pytest.fixture(scope="module")
async def demo(engine):
    await seed_demo(engine, settings_for_tests(demo_password="demo-pass-123456"))
    return "demo-pass-123456"


async def test_every_agent_operation_runs_against_the_demo_tenant(client, demo):
    signed = await run(
        client,
        "agent",
        "SignInWithPassword",
        {"identifier": "agent@demo.example.com", "password": demo},
    )
    tokens = signed["signIn"]["tokens"]
    tok = tokens["accessToken"]
    me = await run(client, "agent", "Me", token=tok)
    assert me["me"]["roles"] == ["agent"]
    search = {"filter": {"statuses": ["AVAILABLE"]}, "sort": "PRICE_ASC"}
    units = await run(client, "agent", "SearchUnits", search, tok)
    first = units["units"]["edges"][0]["node"]
    assert units["units"]["totalCount"] > 0 and first["firstPhoto"] is None
    uid = first["id"]
    assert (await run(client, "agent", "UnitDetail", {"id": uid}, tok))["unit"]["id"] == uid
    assert (await run(client, "agent", "UnitTimeline", {"id": uid}, tok))["unit"]["timeline"]
    held = await run(client, "agent", "HoldUnit", {"unitId": uid, "minutes": 5}, tok)
    assert held["holdUnit"]["unit"]["status"] == "ON_HOLD"
    released = await run(client, "agent", "ReleaseUnitHold", {"unitId": uid}, tok)
    assert released["releaseUnitHold"]["unit"]["status"] == "AVAILABLE"
    created = await run(
        client,
        "agent",
        "CreateListing",
        {
            "input": {
                "community": "Contract Court",
                "grossArea": "88",
                "rooms": 3,
                "askingPrice": 290_000_000,
                "sellerName": "Wang",
                "sellerPhone": "13912345678",
            }
        },
        tok,
    )
    lid = created["createListing"]["listing"]["id"]
    await run(
        client,
        "agent",
        "ChangeListingPrice",
        {"input": {"listingId": lid, "askingPrice": 285_000_000}},
        tok,
    )
    detail = await run(client, "agent", "ListingDetail", {"id": lid}, tok)
    assert len(detail["listing"]["priceHistory"]) == 2
    seller = await run(client, "agent", "ListingSeller", {"id": lid}, tok)
    assert seller["listing"]["sellerPhone"] == "+8613912345678"  # the agent's own listing
    found = await run(
        client,
        "agent",
        "SearchListings",
        {"filter": {"keyword": "contract"}, "sort": "NEWEST"},
        tok,
    )
    assert [e["node"]["id"] for e in found["listings"]["edges"]] == [lid]
    await run(
        client,
        "agent",
        "ChangeListingStatus",
        {"input": {"listingId": lid, "status": "WITHDRAWN"}},
        tok,
    )
    recs = await run(client, "agent", "Recommendations", {"needs": {"rooms": [3]}}, tok)
    assert recs["recommendations"]
    follow = await run(client, "agent", "Follow", {"kind": "UNIT", "targetId": uid}, tok)
    fid = follow["follow"]["follow"]["id"]
    saved = await run(
        client, "agent", "SaveSearch", {"input": {"name": "3 rooms", "units": {"rooms": [3]}}}, tok
    )
    assert saved["saveSearch"]["follow"]["name"] == "3 rooms"
    mine = await run(client, "agent", "MyFollows", {}, tok)
    assert {f["kind"] for f in mine["myFollows"]} == {"UNIT", "SEARCH"}
    await run(client, "agent", "Unfollow", {"id": fid}, tok)
    refreshed = await run(
        client, "agent", "RefreshTokens", {"refreshToken": tokens["refreshToken"]}
    )
    tok = refreshed["refreshTokens"]["tokens"]["accessToken"]
    await run(client, "agent", "SignOut", token=tok)


async def test_staff_and_owner_read_operations_run(client, demo):
    signed = await run(
        client,
        "staff",
        "SignInWithPassword",
        {"identifier": "manager@demo.example.com", "password": demo},
    )
    tok = signed["signIn"]["tokens"]["accessToken"]
    projects = await run(client, "staff", "Projects", token=tok)
    assert len(projects["projects"]) == 2
    sms = await run(client, "owner", "RequestSmsCode", {"phone": "13800000009"})
    assert sms["requestSmsCode"]["__typename"] in ("SmsCodeSent", "RateLimitedError")


@pytest.fixture(scope="module")
def production(live_server_factory):
    """A production gateway with the test run's own secrets (so accounts made by the fixtures
    can sign in there), given as production requires: through settings."""
    dev = load_secrets(settings_for_tests())
    secrets = dict(
        env="production",
        jwt_private_key=dev.jwt_private_key,
        field_keys=",".join(
            f"{v}:{base64.b64encode(k).decode()}" for v, k in dev.field_keys.items()
        ),
        blind_index_key=base64.b64encode(dev.blind_index_key).decode(),
    )
    with live_server_factory(**secrets) as server:
        yield server


async def test_production_runs_app_requests_only_from_trusted_documents(
    production, make_tenant, member
):
    tenant = await make_tenant()  # tokens made with the test kit do not verify here
    async with httpx.AsyncClient(base_url=production.url, timeout=30) as client:
        # sign in by document id works without a token: a typed refusal, not FORBIDDEN
        res = await run(
            client,
            "agent",
            "SignInWithPassword",
            {"identifier": "nobody@example.com", "password": "wrong-password"},
            tenant=tenant.slug,
        )
        assert res["signIn"]["__typename"] == "AuthError"
        # the same document sent as text by an anonymous caller is refused
        text = by_name("agent", "SignInWithPassword").text
        variables = {"identifier": "x@example.com", "password": "y"}
        resp = await client.post(
            "/graphql",
            headers={"X-Tenant": tenant.slug},
            json={"query": text, "variables": variables},
        )
        body = resp.json()
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        unknown = await client.post(
            "/graphql", headers={"X-Tenant": tenant.slug}, json={"documentId": "0" * 64}
        )
        assert unknown.status_code == 400


async def test_production_full_documents_need_graphql_adhoc(production, make_tenant, member):
    tenant = await make_tenant()
    password = "a-long-enough-password-1"
    await member(tenant, ["admin"], email=f"boss@{tenant.slug}.example.com", password=password)
    await member(tenant, ["agent"], email=f"agent@{tenant.slug}.example.com", password=password)
    async with httpx.AsyncClient(base_url=production.url, timeout=30) as client:

        async def sign_in(who: str) -> str:
            res = await run(
                client,
                "agent",
                "SignInWithPassword",
                {
                    "identifier": f"{who}@{tenant.slug}.example.com",
                    "password": password,
                },
                tenant=tenant.slug,
            )
            assert "tokens" in res["signIn"], res
            return res["signIn"]["tokens"]["accessToken"]

        boss, agent = await sign_in("boss"), await sign_in("agent")
        query = {"query": "{ me { roles } }"}
        as_boss = await client.post(
            "/graphql",
            json=query,
            headers={"X-Tenant": tenant.slug, "Authorization": f"Bearer {boss}"},
        )
        assert as_boss.json() == {"data": {"me": {"roles": ["admin"]}}}
        as_agent = await client.post(
            "/graphql",
            json=query,
            headers={"X-Tenant": tenant.slug, "Authorization": f"Bearer {agent}"},
        )
        assert as_agent.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        me = await run(client, "agent", "Me", token=agent, tenant=tenant.slug)
        assert me["me"]["roles"] == ["agent"]  # the same caller, by trusted document


async def test_live_operations_run_by_id_over_the_websocket(client, live_server, demo):
    """The agent's sales table, then its subscription by documentId from the table's seq: a
    hold made through the contracts arrives; the owner app's followed items as well."""
    signed = await run(
        client,
        "agent",
        "SignInWithPassword",
        {"identifier": "agent@demo.example.com", "password": demo},
    )
    tok = signed["signIn"]["tokens"]["accessToken"]
    search = {"filter": {"statuses": ["AVAILABLE"]}, "sort": "PRICE_ASC"}
    units = await run(client, "agent", "SearchUnits", search, tok)
    uid = units["units"]["edges"][0]["node"]["id"]
    building = (await run(client, "agent", "UnitDetail", {"id": uid}, tok))["unit"]["building"]
    table = await run(client, "agent", "SalesTable", {"buildingId": building["id"]}, tok)
    table = table["salesTable"]
    assert uid in {u["id"] for u in table["units"]}
    assert sum(c["count"] for c in table["counts"]) == len(table["units"])
    await run(client, "agent", "Follow", {"kind": "UNIT", "targetId": uid}, tok)
    async with live(live_server, DEMO_SLUG, tok) as ws:
        await ws.subscribe(
            "",
            {"buildingId": building["id"], "since": table["seq"]},
            documentId=by_name("agent", "UnitChanges").id,
        )
        # From the table's sequence too: a subscription is registered after its message is
        # read, and a hold made before that would otherwise be missed (seen under load).
        await ws.subscribe(
            "", {"since": table["seq"]}, documentId=by_name("agent", "FollowedChanges").id
        )
        await ws.subscribe(
            "",
            {"filter": {"districts": ["nowhere"]}},
            documentId=by_name("agent", "ListingChanges").id,
        )
        await run(client, "agent", "HoldUnit", {"unitId": uid, "minutes": 5}, tok)
        got = {}
        for _ in range(2):
            msg = await ws.next()
            [(field, change)] = msg["payload"]["data"].items()
            got[field] = change
        assert got["unitChanges"]["unitId"] == uid and got["unitChanges"]["status"] == "ON_HOLD"
        assert got["followedChanges"]["seq"] == got["unitChanges"]["seq"]
        await run(client, "agent", "ReleaseUnitHold", {"unitId": uid}, tok)


def test_push_payload_schemas_are_valid_json_schemas():
    import json

    import jsonschema

    schemas = sorted((ROOT / "push").glob("*.schema.json"))
    assert schemas, "mobile_contracts/push holds the push payload schemas"
    for path in schemas:
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


async def test_notification_operations_run_by_id(client, live_server, demo, engine):
    """Each app's notification documents: register a device, settings, the inbox live and
    read, sign-out's unregister."""
    from api.notify import service
    from tenants.registry import get_tenant
    from tenants.sessions import TenantDatabase

    signed = await run(
        client,
        "agent",
        "SignInWithPassword",
        {"identifier": "agent@demo.example.com", "password": demo},
    )
    tok = signed["signIn"]["tokens"]["accessToken"]
    me = (await run(client, "agent", "Me", token=tok))["me"]
    phone = {"app": "AGENT", "platform": "IOS", "token": "contract-token-1", "locale": "en"}
    device = await run(client, "agent", "RegisterDevice", {"input": phone}, tok)
    assert device["registerDevice"]["device"]["locale"] == "en"
    settings = await run(
        client,
        "agent",
        "UpdateNotificationSettings",
        {
            "input": {
                "categories": [{"category": "MARKETING", "push": False}],
                "quietHours": {"start": "22:30", "end": "07:00"},
            }
        },
        tok,
    )
    quiet = settings["updateNotificationSettings"]["settings"]["quietHours"]
    assert quiet == {"start": "22:30", "end": "07:00", "timeZone": "Asia/Shanghai"}
    read = await run(client, "agent", "NotificationSettings", token=tok)
    assert read["notificationSettings"]["quietHours"] == quiet
    demo_tenant = await get_tenant(engine, DEMO_SLUG)
    async with live(live_server, DEMO_SLUG, tok) as ws:
        await ws.subscribe("", {}, documentId=by_name("agent", "InboxChanges").id)
        async with TenantDatabase(engine).session(demo_tenant) as session:
            await service.notify(
                session,
                DEMO_SLUG,
                [uuid.UUID(me["account"]["id"])],
                "system",
                "notice",
                {"title": "Contract", "text": "check"},
            )
            await session.commit()
        msg = await ws.next()
        assert msg["payload"]["data"]["inboxChanges"]["title"] == "Contract"
    inbox = await run(client, "agent", "Inbox", {"first": 5}, tok)
    assert inbox["inbox"]["items"][0]["title"] == "Contract" and inbox["inbox"]["unreadCount"] >= 1
    done = await run(client, "agent", "MarkNotificationsRead", {}, tok)
    assert done["markNotificationsRead"]["unreadCount"] == 0
    gone = await run(client, "agent", "UnregisterDevice", {"token": "contract-token-1"}, tok)
    assert gone["unregisterDevice"] is True


def _changelog() -> str:
    return (ROOT / "CHANGELOG.md").read_text()


def test_no_unannounced_breaking_change_to_what_apps_use():
    """The current schema against the one released apps were built with."""
    from api.graphql.schema import export_sdl
    from mobile_contracts.contracts import RELEASED, app_breaking_changes

    current = export_sdl(Settings())
    found = app_breaking_changes(RELEASED.read_text(), current, DOCS, _changelog())
    assert not found, f"breaking changes to fields apps use, not in the CHANGELOG: {found}"


def test_breaking_changes_to_used_fields_are_caught_unless_announced():
    """Changes validation alone does not see: an output made nullable, an enum value removed,
    a required argument added; a change to something no app uses passes."""
    from mobile_contracts.contracts import RELEASED, app_breaking_changes

    released = RELEASED.read_text()
    head, unit = released.split("type Unit implements Node {", 1)
    unit = unit.replace("  status: UnitStatus!\n", "  status: UnitStatus\n", 1)  # Unit.status
    changed = (
        (head + "type Unit implements Node {" + unit)
        .replace("  ON_HOLD\n", "", 1)  # UnitStatus.ON_HOLD
        .replace("unit(id: ID!): Unit", "unit(id: ID!, scope: String!): Unit", 1)
        .replace("  decidedAt: DateTime\n", "  decidedAt: String\n", 1)  # used by no app
    )
    assert changed.count("\n") < released.count("\n")  # the replacements happened
    found = app_breaking_changes(released, changed, DOCS, "")
    assert any("Unit.status" in f for f in found), found
    assert any("UnitStatus.ON_HOLD" in f for f in found), found
    assert any("Query.unit" in f for f in found), found
    assert not any("decidedAt" in f for f in found), found
    announced = "- `Unit.status` is deprecated; app 3.4 stops reading it without a value."
    later = app_breaking_changes(released, changed, DOCS, announced)
    assert not any("Unit.status" in f for f in later) and len(later) == len(found) - 1


# The order an app's documents are run in (what one needs, an earlier one makes); sign-out last.
ORDER = [
    "SignUp",
    "RequestPasswordReset",
    "ResetPasswordWithSmsCode",
    "RequestSmsCode",
    "SignInWithSmsCode",
    "ChangePassword",
    "SignInWithPassword",
    "Me",
    "Projects",
    "SearchUnits",
    "UnitDetail",
    "TrackActivity",
    "UnitTimeline",
    "SalesTable",
    "HoldUnit",
    "ReleaseUnitHold",
    "ReserveUnit",
    "UploadMedia",
    "CreateListing",
    "ChangeListingPrice",
    "ListingDetail",
    "ListingSeller",
    "SearchListings",
    "ChangeListingStatus",
    "Recommendations",
    "Follow",
    "SaveSearch",
    "MyFollows",
    "UnitChanges",
    "ListingChanges",
    "FollowedChanges",
    "InboxChanges",
    "Unfollow",
    "RegisterDevice",
    "NotificationSettings",
    "UpdateNotificationSettings",
    "PublishNotice",
    "Inbox",
    "MarkNotificationsRead",
    "CreateClient",
    "Clients",
    "LogClientContact",
    "ScheduleFollowUp",
    "ClientDetail",
    "CompleteFollowUp",
    "ChangeClientStage",
    "UpdateClient",
    "SearchClients",
    "ClientProfile",
    "ClientRecommendations",
    "RecentlyActiveClients",
    "StartDeposit",
    "RegisterPledge",
    "StartPledgePayment",
    "Pledges",
    "PledgeSummary",
    "WithdrawPledge",
    "SubscribeUnit",
    "SalesSubscriptions",
    "SalesSubscription",
    "RequestSubscriptionExtension",
    "ChangeSubscriptionUnit",
    "WithdrawSubscription",
    "CreateContract",
    "SalesContract",
    "SavePaymentPlan",
    "RequestContractSigningCode",
    "SignContract",
    "ContractSchedule",
    "StartContractPayment",
    "OpenMortgageCase",
    "MarkMortgageDocument",
    "MoveMortgageCase",
    "MortgageCase",
    "SalesChannels",
    "RegisterChannelClient",
    "ChannelRegistrations",
    "ConfirmChannelVisit",
    "MyCommissions",
    "MyDay",
    "ClientPool",
    "MyLeadOffers",
    "ClaimClient",
    "MyRouting",
    "SetMyRoutingPause",
    "MyBills",
    "PayBill",
    "MyPurchases",
    "UnregisterDevice",
    "RefreshTokens",
    "SignOut",
]
TEMP_PASSWORD = "contract-temp-pass-1"
SMS_PHONE = {"agent": "+8613800000003", "owner": "+8613800000001", "staff": "+8613800000002"}


@pytest.fixture
async def stripe_client(stripe_gateway):
    """A client of the suite's gateway with payments on (the loopback Stripe)."""
    async with httpx.AsyncClient(base_url=stripe_gateway.url, timeout=30) as c:
        yield c


async def test_every_document_of_every_app_runs(
    stripe_client, stripe_gateway, demo, engine, db_url, fake_stripe, stripe_worker_settings
):
    """Every document in mobile_contracts runs by documentId against the seeded demo tenant
    (subscriptions over the WebSocket, the upload as a multipart request) without errors, on a
    gateway with payments on: the demo is connected to an account at the loopback Stripe, the
    agent app's deposit and the owner app's payment of the demo bill are PaymentIntents made
    there, and the bill, once Stripe says it is paid, is settled with a receipt and its PDF."""
    from tenants.registry import get_tenant
    from tests.api.payment.helpers import connect

    # The web console's documents run in their own flows (tests/mobile_contracts/test_console.py).
    docs = {(d.app, d.name) for d in DOCS if d.app != "console"}
    assert not {n for _, n in docs} - set(ORDER), "add new documents to ORDER"
    client, server = stripe_client, stripe_gateway
    sms = server.server.config.app.state.sms
    stripe = _Stripe(
        fake_stripe,
        await connect(engine, await get_tenant(engine, DEMO_SLUG)),
        engine,
        db_url,
        stripe_worker_settings,
    )
    ran: set[tuple[str, str]] = set()
    listing: dict = {}  # the agent app's listing, for the other apps' listing documents
    for app in APPS:  # agent first
        s: dict = {"pw": demo, **listing}
        for name in [n for n in ORDER if (app, n) in docs]:
            v, tok = _variables(name, app, s), s.get("token")
            if name in ("SignInWithSmsCode", "ResetPasswordWithSmsCode"):
                code = re.search(r"\d{6}", sms.last_to(SMS_PHONE[app]).text).group()
                v["code"] = code
            if name in ("UnitChanges", "ListingChanges", "FollowedChanges", "InboxChanges"):
                await _subscribe_ok(server, app, name, v, tok)
            elif name == "UploadMedia":
                await _upload(client, app, v, tok)
            else:
                data = await run(client, app, name, v, tok)
                _remember(name, data, s)
                if name == "StartDeposit":
                    await _deposit_started(client, stripe, app, data["startDeposit"], s)
                elif name == "PayBill":
                    await _bill_paid(client, stripe, app, data["payBill"], s)
                elif name == "StartPledgePayment":
                    _pledge_payment_started(stripe, data["startPledgePayment"], s)
                elif name == "SubscribeUnit":
                    await _another_unit(client, app, s)
                elif name == "SalesSubscription":
                    await _agreement(client, data["salesSubscription"])
                elif name == "WithdrawSubscription":
                    await _subscribed_again(client, app, s)
                elif name == "SignContract":
                    s["channel"] = await _a_channel(client, s["token"])
                elif name == "RequestContractSigningCode":
                    message = sms.last_to(CLIENT_PHONE).text
                    s["signingCode"] = re.search(r"(?:验证码|code is) (\d{6})", message).group(1)
            ran.add((app, name))
        listing = {"listing": s["listing"]} if "listing" in s else listing
    assert ran == docs
    assert stripe.checked == {"deposit", "bill", "pledge"}


def _variables(name: str, app: str, s: dict) -> dict:
    listing = {
        "community": "Contract Court",
        "grossArea": "88",
        "rooms": 3,
        "askingPrice": 290_000_000,
        "sellerName": "Wang",
        "sellerPhone": "13912345678",
    }
    return {
        # A reset by SMS code to a temporary password, then a change back to the demo's.
        "RequestPasswordReset": {"identifier": SMS_PHONE[app]},
        "ResetPasswordWithSmsCode": {"phone": SMS_PHONE[app], "newPassword": TEMP_PASSWORD},
        "ChangePassword": {"password": TEMP_PASSWORD, "newPassword": s.get("pw")},
        "RequestSmsCode": {"phone": SMS_PHONE[app]},
        "SignInWithSmsCode": {"phone": SMS_PHONE[app]},
        "SignInWithPassword": {"identifier": "manager@demo.example.com", "password": s.get("pw")},
        "SearchUnits": {"filter": {"statuses": ["AVAILABLE"]}, "sort": "PRICE_ASC"},
        "UnitDetail": {"id": s.get("unit")},
        "UnitTimeline": {"id": s.get("unit")},
        "SalesTable": {"buildingId": s.get("building")},
        "HoldUnit": {"unitId": s.get("unit"), "minutes": 5},
        "ReleaseUnitHold": {"unitId": s.get("unit")},
        "ReserveUnit": {"unitId": s.get("unit2")},
        "UploadMedia": {
            "input": {"ownerKind": "UNIT", "ownerId": s.get("unit"), "kind": "PHOTO"},
            "file": None,
        },
        "CreateListing": {"input": listing},
        "ChangeListingPrice": {
            "input": {"listingId": s.get("listing"), "askingPrice": 285_000_000}
        },
        "ListingDetail": {"id": s.get("listing")},
        "ListingSeller": {"id": s.get("listing")},
        "SearchListings": {"filter": {"keyword": "contract"}, "sort": "NEWEST"},
        "ChangeListingStatus": {"input": {"listingId": s.get("listing"), "status": "WITHDRAWN"}},
        "Recommendations": {"needs": {"rooms": [3]}},
        "Follow": {"kind": "UNIT", "targetId": s.get("unit")},
        "SaveSearch": {"input": {"name": "3 rooms", "units": {"rooms": [3]}}},
        "UnitChanges": {"buildingId": s.get("building"), "since": 10**12},
        "ListingChanges": {"filter": {"districts": ["nowhere"]}, "since": 10**12},
        "FollowedChanges": {"since": 10**12},
        "Unfollow": {"id": s.get("follow")},
        "RegisterDevice": {
            "input": {"app": app.upper(), "platform": "ANDROID", "token": f"contract-{app}-token"}
        },
        "UpdateNotificationSettings": {
            "input": {"categories": [{"category": "MARKETING", "push": False}]}
        },
        "PublishNotice": {"input": {"title": "Lift", "text": "Lift 2 serviced", "roles": []}},
        "Inbox": {"first": 10},
        "MarkNotificationsRead": {},
        "UnregisterDevice": {"token": f"contract-{app}-token"},
        "RefreshTokens": {"refreshToken": s.get("refresh")},
        "CreateClient": {
            "input": {
                "name": "李女士",
                "phone": f"1391234{len(app):04d}",
                "source": "PORTAL",
                "needs": {"rooms": [3]},
            }
        },
        "Clients": {"first": 10},
        "ClientPool": {"first": 10},
        "ClientDetail": {"id": s.get("client")},
        "LogClientContact": {
            "clientId": s.get("client"),
            "kind": "CALL",
            "outcome": "wants a school district",
        },
        "ScheduleFollowUp": {"clientId": s.get("client"), "dueAt": _in_an_hour()},
        "CompleteFollowUp": {"followUpId": s.get("followUp"), "outcome": "visit booked"},
        "ChangeClientStage": {"clientId": s.get("client"), "stage": "QUALIFIED"},
        "MyBills": {"locale": "en"},
        "MyLeadOffers": {"first": 10},
        "StartDeposit": {"unitId": s.get("unit3"), "platform": "IOS", "clientId": s.get("client")},
        "PayBill": {"billId": s.get("bill", {}).get("id"), "platform": "ANDROID"},
        "RegisterPledge": {
            "input": {"projectId": s.get("project"), "clientId": s.get("client"), "fee": 100_000}
        },
        "StartPledgePayment": {"pledgeId": s.get("pledge"), "platform": "ANDROID"},
        "Pledges": {"projectId": s.get("project"), "first": 20},
        "PledgeSummary": {"projectId": s.get("project")},
        "WithdrawPledge": {"pledgeId": s.get("pledge"), "reason": "bought elsewhere"},
        # The unit the agent app reserved, for its client, 1% off (within the demo's limit).
        "SubscribeUnit": {
            "input": {"unitId": s.get("unit2"), "clientId": s.get("client"), "discountPercent": "1"}
        },
        "SalesSubscriptions": {"projectId": s.get("subProject"), "first": 20},
        "SalesSubscription": {"id": s.get("subscription"), "locale": "zh-CN"},
        "RequestSubscriptionExtension": {
            "subscriptionId": s.get("subscription"),
            "days": 3,
            "reason": "client abroad",
        },
        "ChangeSubscriptionUnit": {
            "input": {
                "subscriptionId": s.get("subscription"),
                "unitId": s.get("unit4"),
                "reason": "higher floor",
            }
        },
        "WithdrawSubscription": {"subscriptionId": s.get("subscription"), "reason": "no loan"},
        # The unit subscribed again after the withdrawal: its contract, signed by the buyer.
        "CreateContract": {"input": {"subscriptionId": s.get("subscription"), "locale": "zh-CN"}},
        "SalesContract": {"id": s.get("contract")},
        # Two equal instalments (any price), a week apart from next week: signed with it.
        "SavePaymentPlan": {
            "input": {
                "contractId": s.get("contract"),
                "kind": "INSTALMENTS",
                "firstDue": _days_ahead(7),
                "instalments": 2,
            }
        },
        "RequestContractSigningCode": {"contractId": s.get("contract")},
        "SignContract": {
            "contractId": s.get("contract"),
            "code": s.get("signingCode"),
            "documentSha256": s.get("contractSha"),
        },
        "ContractSchedule": {"contractId": s.get("contract")},
        "StartContractPayment": {
            "contractId": s.get("contract"),
            "amount": 100_000,
            "platform": "IOS",
            "idempotencyKey": "contract-run-1",
        },
        "OpenMortgageCase": {
            "input": {
                "contractId": s.get("contract"),
                "loan": "COMMERCIAL",
                "bank": "招商银行",
                "amount": 100,
                "documents": ["身份证"],
            }
        },
        "MarkMortgageDocument": {"caseId": s.get("mortgageCase"), "code": "doc1"},
        "MoveMortgageCase": {"caseId": s.get("mortgageCase"), "step": "SUBMIT"},
        "MortgageCase": {"id": s.get("mortgageCase")},
        # A channel (made by the manager the run signs in as) registers a client (报备); the
        # site confirms the visit by its code.
        "RegisterChannelClient": {
            "input": {
                "channelId": s.get("channel"),
                "projectId": s.get("project"),
                "name": "孙女士",
                "phone": "13912346666",
            }
        },
        "ChannelRegistrations": {"projectId": s.get("project")},
        "ConfirmChannelVisit": {"code": s.get("visitCode")},
        "ClaimClient": {"clientId": s.get("offer")},
        "SetMyRoutingPause": {"paused": True, "reason": "at a signing"},
        "TrackActivity": {
            "events": [
                {"kind": "VIEW_UNIT", "id": s.get("unit"), "seconds": 45},
                {"kind": "SEARCH", "search": {"rooms": [3]}},
            ]
        },
        "UpdateClient": {
            "clientId": s.get("client"),
            "expectedVersion": s.get("clientVersion"),
            "input": {"grade": "A", "otherPhones": ["13912349999"], "tags": ["school district"]},
        },
        "SearchClients": {"search": "李", "first": 20},
        "ClientProfile": {"id": s.get("client")},
        "ClientRecommendations": {"clientId": s.get("client")},
        "SignUp": {
            "input": {
                "tenantSlug": unique_slug("contract"),
                "tenantName": "Contract Homes",
                "name": "Zhao",
                "password": "contract-pass-123",
                "email": f"{unique_slug('c')}@example.com",
            }
        },
    }.get(name, {})


def _days_ahead(days: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def _in_an_hour() -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def _remember(name: str, data: dict, s: dict) -> None:
    if name.startswith("SignIn") or name == "RefreshTokens":
        payload = next(iter(data.values()))
        assert payload["__typename"] == "SignInPayload", (name, data)
        s["token"], s["refresh"] = (
            payload["tokens"]["accessToken"],
            payload["tokens"]["refreshToken"],
        )
    elif name == "SignUp":  # a new agency of its own: its tokens are not the demo's
        assert data["signUp"]["__typename"] == "SignUpPayload", data
    elif name == "SearchUnits":
        edges = data["units"]["edges"]
        s["unit"], s["unit2"], s["unit3"] = (e["node"]["id"] for e in edges[:3])
    elif name == "UnitDetail":
        s["building"] = data["unit"]["building"]["id"]
        s["project"] = data["unit"]["project"]["id"]
    elif name == "CreateListing":
        s["listing"] = data["createListing"]["listing"]["id"]
    elif name == "Follow":
        s["follow"] = data["follow"]["follow"]["id"]
    elif name == "CreateClient":
        s["client"] = data["createClient"]["client"]["id"]
    elif name == "ScheduleFollowUp":
        s["followUp"] = data["scheduleFollowUp"]["followUp"]["id"]
    elif name == "MyBills":  # the demo's property fee bill
        assert data["myBills"][0]["number"] == "B00000001", data
        s["bill"] = data["myBills"][0]
    elif name == "MyLeadOffers":  # the demo's portal lead, offered to the manager's team
        s["offer"] = data["myLeadOffers"][0]["id"]
    elif name == "ChangeClientStage":
        s["clientVersion"] = data["changeClientStage"]["client"]["version"]
    elif name == "UpdateClient":
        changed = data["updateClient"]["client"]
        assert (changed["grade"], changed["tags"]) == ("A", ["school district"]), data
        assert changed["otherPhones"] and changed["version"] == s["clientVersion"] + 1
    elif name == "SearchClients":
        assert s["client"] in [c["id"] for c in data["clients"]], data
    elif name == "ClientProfile":
        assert data["client"]["id"] == s["client"] and data["client"]["profile"]["tags"] == []
    elif name == "ClientRecommendations":  # its needs (3 rooms) rank the demo's units
        assert data["recommendations"] and data["recommendations"][0]["unit"], data
    elif name == "TrackActivity":
        assert data["trackActivity"] == {"__typename": "TrackActivityPayload", "accepted": 2}
    elif name == "RegisterPledge":
        pledge = data["registerPledge"]["pledge"]
        assert (pledge["status"], pledge["feeStatus"]) == ("ACTIVE", "UNPAID"), data
        s["pledge"] = pledge["id"]
    elif name == "Pledges":
        assert s["pledge"] in [e["node"]["id"] for e in data["pledges"]["edges"]], data
    elif name == "PledgeSummary":
        assert data["pledgeSummary"]["active"] >= 1, data
    elif name == "WithdrawPledge":
        gone = data["withdrawPledge"]
        assert gone["pledge"]["status"] == "WITHDRAWN", data
        assert gone["refunded"]["minorUnits"] == 0, data  # the pending fee is canceled
    elif name == "SubscribeUnit":
        sub = data["subscribeUnit"]["subscription"]
        assert (sub["status"], sub["unit"]["status"]) == ("ACTIVE", "SUBSCRIBED"), data
        assert (
            sub["agreedPrice"]["minorUnits"]
            == sub["listPrice"]["minorUnits"] - (sub["discount"]["minorUnits"])
        )
        s["subscription"], s["subProject"] = sub["id"], sub["projectId"]
    elif name == "SalesSubscriptions":
        nodes = [e["node"]["id"] for e in data["salesSubscriptions"]["edges"]]
        assert s["subscription"] in nodes, data
    elif name == "RequestSubscriptionExtension":
        assert data["requestSubscriptionExtension"]["request"]["status"] == "PENDING", data
    elif name == "ChangeSubscriptionUnit":
        moved = data["changeSubscriptionUnit"]["subscription"]
        assert (moved["unitId"], moved["status"]) == (s["unit4"], "ACTIVE"), data
    elif name == "WithdrawSubscription":
        gone = data["withdrawSubscription"]
        assert gone["subscription"]["status"] == "WITHDRAWN", data
        assert gone["refunded"]["minorUnits"] == 0, data  # reserved without a deposit
    elif name == "CreateContract":
        contract = data["createContract"]["contract"]
        assert (contract["status"], contract["revision"]) == ("DRAFT", 1), data
        s["contract"], s["contractSha"] = contract["id"], contract["documentSha256"]
    elif name == "SalesContract":
        assert data["salesContract"]["documentSha256"] == s["contractSha"], data
    elif name == "SavePaymentPlan":  # the document drawn again with the schedule
        saved = data["savePaymentPlan"]
        amounts = [x["amount"]["minorUnits"] for x in saved["schedule"]["lines"]]
        assert len(amounts) == 2 and sum(amounts) == saved["schedule"]["price"]["minorUnits"]
        assert saved["documentSha256"] != s["contractSha"], data
        s["contractSha"] = saved["documentSha256"]
    elif name == "ContractSchedule":
        assert data["contractSchedule"]["kind"] == "INSTALMENTS", data
    elif name == "StartContractPayment":
        started = data["startContractPayment"]
        assert started["payment"]["kind"] == "COLLECTION", data
        assert started["collection"]["status"] == "PENDING", data
    elif name == "OpenMortgageCase":
        s["mortgageCase"] = data["openMortgageCase"]["case"]["id"]
    elif name == "MoveMortgageCase":
        assert data["moveMortgageCase"]["case"]["stage"] == "SUBMITTED", data
    elif name == "RequestContractSigningCode":
        sent = data["requestContractSigningCode"]
        assert sent["documentSha256"] == s["contractSha"], data
    elif name == "SignContract":
        signed = data["signContract"]["contract"]
        assert signed["status"] == "SIGNED" and signed["signedDocumentUrl"], data
    elif name == "SalesChannels":
        assert s["channel"] in [c["id"] for c in data["salesChannels"]], data
    elif name == "RegisterChannelClient":
        reg = data["registerChannelClient"]["registration"]
        assert reg["status"] == "REGISTERED" and f":{reg['code']}:" in reg["qrPayload"], data
        s["visitCode"] = reg["code"]
    elif name == "ChannelRegistrations":
        assert s["visitCode"] in [r["code"] for r in data["channelRegistrations"]], data
    elif name == "ConfirmChannelVisit":
        assert data["confirmChannelVisit"]["registration"]["status"] == "VISITED", data
    elif name == "MyCommissions":
        assert data["myCommissions"]["edges"] == [], data  # the demo has no commission rule
    elif name == "ClaimClient":
        assert data["claimClient"]["client"]["assignments"][-1]["reason"] == "claimed", data
    for value in data.values():  # a typed error is a failed run
        if isinstance(value, dict) and "code" in value and "message" in value:
            raise AssertionError(f"{name}: {value}")


@dataclass
class _Stripe:
    """The loopback Stripe the contract run's gateway talks to, the demo's connected account
    there, and what a worker applying Stripe's events needs."""

    fake: Any
    account: str
    engine: Any
    db_url: Any
    worker_settings: Settings
    checked: set[str] = field(default_factory=set)

    def intent_of(self, payload: dict) -> dict:
        """The PaymentIntent behind an answer's clientSecret, made by the loopback Stripe on
        the demo's account, for the answer's payment; the publishable key is the platform's."""
        pi = payload["clientSecret"].split("_secret_")[0]
        intent = self.fake.payment_intent(pi)
        assert intent["client_secret"] == payload["clientSecret"], (intent, payload)
        assert self.fake.account_of(pi) == payload["stripeAccountId"] == self.account
        assert payload["publishableKey"] == STRIPE["stripe_publishable_key"]
        payment = payload["payment"]
        assert intent["metadata"]["payment_id"] == payment["id"], intent
        assert (intent["amount"], intent["currency"]) == (payment["amount"], "cny"), intent
        assert (payment["status"], payment["currency"]) == ("PENDING", "cny"), payment
        return intent


async def _deposit_started(client, stripe: _Stripe, app: str, got: dict, s: dict) -> None:
    """startDeposit held the unit for the agent and made the deposit's PaymentIntent (the
    tenant's deposit amount, the methods an iOS app can pay with, WeChat Pay's app id)."""
    assert got["__typename"] == "DepositPayload", got
    payment = got["payment"]
    assert (payment["kind"], payment["amount"]) == ("DEPOSIT", 2_000_000), payment
    assert (payment["unitId"], payment["clientId"]) == (s["unit3"], s["client"]), payment
    intent = stripe.intent_of(got)
    assert intent["metadata"]["unit_id"] == s["unit3"] and intent["metadata"]["kind"] == "deposit"
    assert intent["payment_method_types"] == ["card", "alipay", "wechat_pay"], intent
    assert intent["payment_method_options"]["wechat_pay"] == {
        "client": "ios",
        "app_id": STRIPE["stripe_wechat_app_id"],
    }
    unit = (await run(client, app, "UnitDetail", {"id": s["unit3"]}, s["token"]))["unit"]
    assert unit["status"] == "ON_HOLD" and got["holdExpiresAt"] is not None, (unit, got)
    stripe.checked.add("deposit")


async def _another_unit(client, app: str, s: dict) -> None:
    """An available unit of the subscription's project, to change to (SearchUnits)."""
    variables = {
        "filter": {"projectIds": [s["subProject"]], "statuses": ["AVAILABLE"]},
        "sort": "PRICE_DESC",
    }
    edges = (await run(client, app, "SearchUnits", variables, s["token"]))["units"]["edges"]
    s["unit4"] = next(e["node"]["id"] for e in edges if e["node"]["id"] != s["unit2"])


async def _a_channel(client, token: str) -> str:
    """A channel of the demo tenant for the attribution documents (channels are set up in
    the console: the app only lists them)."""
    body = {
        "query": 'mutation { createSalesChannel(name: "合同渠道", kind: AGENCY) { '
        "__typename ... on SalesChannelPayload { channel { id } } } }"
    }
    headers = {"X-Tenant": DEMO_SLUG, "Authorization": f"Bearer {token}"}
    resp = await client.post("/graphql", json=body, headers=headers)
    got = resp.json()["data"]["createSalesChannel"]
    assert got["__typename"] == "SalesChannelPayload", got
    return got["channel"]["id"]


CLIENT_PHONE = "+8613912340005"  # the agent app's client (CreateClient: 1391234 + len(app))


async def _subscribed_again(client, app: str, s: dict) -> None:
    """The withdrawn subscription's unit reserved and subscribed again for the client (the
    app's own documents), for the contract documents that follow."""
    got = await run(client, app, "ReserveUnit", {"unitId": s["unit4"]}, s["token"])
    assert got["reserveUnit"]["__typename"] == "UnitPayload", got
    variables = {"input": {"unitId": s["unit4"], "clientId": s["client"]}}
    got = await run(client, app, "SubscribeUnit", variables, s["token"])
    sub = got["subscribeUnit"]["subscription"]
    assert sub["status"] == "ACTIVE", got
    s["subscription"] = sub["id"]


async def _agreement(client, sub: dict) -> None:
    """The agreement's PDF opens at its signed link (read back in tests/api/sales)."""
    assert sub["status"] == "ACTIVE" and sub["agreementUrl"], sub
    pdf = await client.get(sub["agreementUrl"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), pdf.status_code


def _pledge_payment_started(stripe: _Stripe, got: dict, s: dict) -> None:
    """startPledgePayment made the fee's PaymentIntent on the demo's account, for the pledge."""
    assert got["__typename"] == "PledgePaymentPayload", got
    payment = got["payment"]
    assert (payment["kind"], payment["amount"], payment["clientId"]) == (
        "PLEDGE",
        100_000,
        s["client"],
    ), payment
    assert got["pledge"]["paymentId"] == payment["id"], got
    intent = stripe.intent_of(got)
    assert intent["metadata"]["pledge_id"] == s["pledge"], intent
    assert intent["metadata"]["kind"] == "pledge", intent
    stripe.checked.add("pledge")


async def _bill_paid(client, stripe: _Stripe, app: str, got: dict, s: dict) -> None:
    """payBill made a PaymentIntent for all that is left of the demo bill; when Stripe says
    it succeeded (a signed webhook, applied by a worker), the bill is paid and its receipt's
    signed link gives the PDF."""
    from tests.api.payment.helpers import deliver, work

    assert got["__typename"] == "BillPaymentPayload", got
    bill, payment = s["bill"], got["payment"]
    assert (bill["status"], bill["receipts"]) == ("OPEN", []), bill
    assert (payment["kind"], payment["amount"]) == ("FEE", bill["outstanding"]), payment
    intent = stripe.intent_of(got)
    assert intent["metadata"]["bill_id"] == bill["id"] and intent["metadata"]["kind"] == "fee"
    webhook = await deliver(client, stripe.fake, stripe.fake.succeed(intent["id"]))
    assert webhook.status_code == 200, webhook.text
    await work(stripe.worker_settings, stripe.engine, stripe.db_url)
    mine = await run(client, app, "MyBills", {"locale": "en"}, s["token"])
    [paid] = [b for b in mine["myBills"] if b["id"] == bill["id"]]
    assert (paid["status"], paid["paidAmount"], paid["outstanding"]) == (
        "PAID",
        bill["amount"],
        0,
    ), paid
    [receipt] = paid["receipts"]
    assert (receipt["number"], receipt["amount"]) == ("R00000001", bill["amount"]), receipt
    pdf = await client.get(receipt["pdfUrl"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF"), pdf.content[:20]
    stripe.checked.add("bill")


async def _subscribe_ok(server, app: str, name: str, variables: dict, token: str) -> None:
    async with live(server, DEMO_SLUG, token) as ws:
        sid = await ws.subscribe("", variables, documentId=by_name(app, name).id)
        await ws.ws.send('{"type":"ping"}')
        while True:
            msg = json.loads(await asyncio.wait_for(ws.ws.recv(), 10))
            assert msg["type"] != "error", (name, msg)
            if msg["type"] == "pong":
                return
            assert msg["id"] == sid and msg["type"] == "next", (name, msg)


async def _upload(client, app: str, variables: dict, token: str) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buf, "JPEG")
    operations = {"documentId": by_name(app, "UploadMedia").id, "variables": variables}
    resp = await client.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": ("photo.jpg", buf.getvalue(), "image/jpeg")},
        headers={"X-Tenant": DEMO_SLUG, "Authorization": f"Bearer {token}", "X-Anju-App": app},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert "errors" not in body and body["data"]["uploadMedia"]["__typename"] == "MediaPayload", (
        body
    )
