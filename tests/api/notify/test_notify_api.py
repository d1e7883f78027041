"""The notification centre through its API: devices (registration, moving, replacing, FCM
installation ids), the inbox (own only, order, paging, read state), preferences and quiet hours,
the live inbox over WebSocket, followers told about unit changes (queued in the change's own
transaction), hold-expiry reminders and pruning of stale devices.

GraphQL goes over real HTTP (the live server), subscriptions over a real WebSocket, pushes to a
loopback FCM; jobs are read from the queue table and run with ``task.work`` in a session."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from starlette.responses import JSONResponse

from api.db import utcnow
from api.errors import ValidationFailed
from api.jobs import Runtime, set_runtime
from api.notify import Senders, service, tasks
from api.notify.email import CapturingEmailSender
from api.notify.models import Delivery, Device, Notification
from api.notify.push import FcmPushSender
from api.notify.sms import CapturingSender
from api.unit import service as unit_service
from tenants.sessions import TenantDatabase
from tests.api.helpers import typed_denial
from tests.api.live.helpers import LiveClient, live
from tests.api.notify.fcm_server import FakeFcm
from tests.api.unit.helpers import HOLD_UNIT, applied, inventory, ok, reserve
from tests.conftest import gql
from tests.conftest import test_settings as settings_for_tests

ERR = "... on UserError { code message field }"
REGISTER = (
    "mutation($input: RegisterDeviceInput!) { registerDevice(input: $input) { __typename"
    " ... on DevicePayload { device { id app platform locale appVersion lastSeenAt } } "
    + ERR
    + " } }"
)
UNREGISTER = "mutation($token: String!) { unregisterDevice(token: $token) }"
NOTIFICATION_FIELDS = "id category urgent title body data createdAt readAt"
# ``first`` inline: as a variable it counts as the largest page (see the cost test below).
INBOX = (
    "query($before: ID, $unreadOnly: Boolean) {"
    " inbox(first: FIRST, before: $before, unreadOnly: $unreadOnly) {"
    " hasMore unreadCount items { " + NOTIFICATION_FIELDS + " } } }"
)
MARK_READ = "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) { count unreadCount } }"
SETTINGS_FIELDS = "categories { category push email sms } quietHours { start end timeZone }"
SETTINGS = "{ notificationSettings { " + SETTINGS_FIELDS + " } }"
UPDATE_SETTINGS = (
    "mutation($input: NotificationSettingsInput!) { updateNotificationSettings(input: $input) {"
    " __typename ... on NotificationSettingsPayload { settings { "
    + SETTINGS_FIELDS
    + " } } "
    + ERR
    + " } }"
)
INBOX_CHANGES = "subscription { inboxChanges { " + NOTIFICATION_FIELDS + " } }"
FOLLOW = (
    "mutation($kind: FollowKind!, $id: ID!) { follow(kind: $kind, targetId: $id) { __typename"
    " ... on FollowPayload { follow { id } } " + ERR + " } }"
)
CATEGORIES = ["LEADS", "LISTING_UPDATES", "PAYMENTS", "PROPERTY_NOTICES", "MARKETING", "SYSTEM"]


# ---------------------------------------------------------------- helpers


@pytest.fixture
async def fcm():
    server = FidAwareFcm().start()
    yield server
    server.stop()


class FidAwareFcm(FakeFcm):
    """The loopback FCM, also answering messages addressed to an installation (``fid``): 200
    for an ``ok-`` one (the base server reads ``token`` only)."""

    async def send(self, request):
        message = (await request.json())["message"]  # cached: the base reads it again
        if "token" in message:
            return await super().send(request)
        auth = request.headers.get("authorization", "")
        self.requests.append(
            {"project": request.path_params["project"], "message": message, "authorization": auth}
        )
        if not message.get("fid", "").startswith("ok-"):
            return self._error(404, "NOT_FOUND", "UNREGISTERED", "not found")
        return JSONResponse({"name": f"projects/x/messages/{next(self._ids)}"})


async def register(client, slug: str, auth: str, **fields) -> dict:
    """registerDevice as the member whose access token is ``auth``."""
    fields = {"app": "AGENT", "platform": "ANDROID", **fields}
    res = await gql(client, REGISTER, {"input": fields}, tenant=slug, token=auth)
    assert "errors" not in res, res
    return res["data"]["registerDevice"]


async def registered(client, slug: str, auth: str, **fields) -> dict:
    payload = await register(client, slug, auth, **fields)
    assert payload["__typename"] == "DevicePayload", payload
    return payload["device"]


async def inbox(client, slug: str, token: str, first: int = 20, **variables) -> dict:
    doc = INBOX.replace("FIRST", str(first))
    res = await gql(client, doc, variables, tenant=slug, token=token)
    assert "errors" not in res, res
    return res["data"]["inbox"]


async def mark_read(client, slug: str, token: str, ids=None) -> dict:
    res = await gql(client, MARK_READ, {"ids": ids}, tenant=slug, token=token)
    assert "errors" not in res, res
    return res["data"]["markNotificationsRead"]


async def update_settings(client, slug: str, token: str, **fields) -> dict:
    res = await gql(client, UPDATE_SETTINGS, {"input": fields}, tenant=slug, token=token)
    assert "errors" not in res, res
    return res["data"]["updateNotificationSettings"]


async def notification_settings(client, slug: str, token: str) -> dict:
    res = await gql(client, SETTINGS, tenant=slug, token=token)
    assert "errors" not in res, res
    return res["data"]["notificationSettings"]


async def notify(
    engine, tenant, accounts, category="leads", template="notice", params=None, **kw
) -> list[Notification]:
    """service.notify in a tenant session of its own, committed."""
    params = params if params is not None else {"title": "Hello", "text": "World"}
    async with TenantDatabase(engine).session(tenant) as session:
        made = await service.notify(
            session, tenant.slug, accounts, category, template, params, **kw
        )
        await session.commit()
    return made


async def rows(engine, tenant, stmt) -> list:
    async with TenantDatabase(engine).session(tenant) as session:
        return list((await session.scalars(stmt)).all())


async def jobs(engine, slug: str, task: str) -> list[dict]:
    """The queued jobs' args of ``task`` for tenant ``slug``, oldest first."""
    async with engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    text(
                        "SELECT args FROM shared.procrastinate_jobs WHERE task_name = :task"
                        " AND args->>'tenant' = :slug ORDER BY id"
                    ),
                    {"task": task, "slug": slug},
                )
            ).scalars()
        )


def events_about(job_args: list[dict], kind: str, entity: str) -> list[dict]:
    """The jobs (args) carrying an event of ``kind`` about ``entity``."""
    return [
        a for a in job_args if any(e["kind"] == kind and e["entity"] == entity for e in a["events"])
    ]


def codes(res: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in res.get("errors") or []]


async def subscribed(ws: LiveClient, query: str) -> str:
    """Subscribe, then ping and wait for the pong: the server handles a socket's messages in
    order, so the subscription is registered (or was refused: a message before the pong)."""
    sid = await ws.subscribe(query)
    await ws.ws.send('{"type":"ping"}')
    while True:
        msg = json.loads(await asyncio.wait_for(ws.ws.recv(), 10))
        if msg["type"] == "pong":
            return sid
        if msg["type"] == "ping":
            await ws.ws.send('{"type":"pong"}')
            continue
        raise AssertionError(f"the subscription was refused: {msg}")


# ---------------------------------------------------------------- 1. devices


async def test_register_device_stores_what_the_app_sends(client, engine, make_tenant, member):
    tenant = await make_tenant()
    account, token = await member(tenant, ["agent"])
    device = await registered(
        client,
        tenant.slug,
        token,
        app="OWNER",
        platform="IOS",
        token="ok-iphone",
        locale="en-US",
        appVersion="2.3.1",
    )
    assert (device["app"], device["platform"], device["locale"], device["appVersion"]) == (
        "OWNER",
        "IOS",
        "en",
        "2.3.1",
    )
    [row] = await rows(engine, tenant, select(Device))
    assert str(row.id) == device["id"]
    assert (row.account_id, row.app, row.platform, row.locale, row.token, row.is_fid) == (
        account,
        "owner",
        "ios",
        "en",
        "ok-iphone",
        False,
    )
    # Registering again (same token) refreshes the same device.
    again = await registered(client, tenant.slug, token, token="ok-iphone", locale="zh-CN")
    assert again["id"] == device["id"] and again["locale"] == "zh-CN"
    seen = [datetime.fromisoformat(d["lastSeenAt"]) for d in (device, again)]
    assert seen[1] >= seen[0]
    assert len(await rows(engine, tenant, select(Device))) == 1


async def test_a_token_registered_by_another_member_moves_to_them(
    client, engine, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    first, first_token = await member(tenant, ["agent"])
    second, second_token = await member(tenant, ["agent"])
    a = await registered(client, slug, first_token, token="ok-shared-phone")
    b = await registered(client, slug, second_token, token="ok-shared-phone")
    assert a["id"] == b["id"]
    [row] = await rows(engine, tenant, select(Device))
    assert row.account_id == second

    # The first member's notification has no push delivery any more; the second's does.
    [n1] = await notify(engine, tenant, [first])
    [n2] = await notify(engine, tenant, [second])
    assert (
        await rows(engine, tenant, select(Delivery).where(Delivery.notification_id == n1.id)) == []
    )
    [d] = await rows(engine, tenant, select(Delivery).where(Delivery.notification_id == n2.id))
    assert (d.channel, d.device_id, d.status) == ("push", row.id, "pending")

    # The first member cannot unregister it (it is not theirs); the second can, once.
    for who, expected in ((first_token, False), (second_token, True), (second_token, False)):
        res = await gql(client, UNREGISTER, {"token": "ok-shared-phone"}, tenant=slug, token=who)
        assert res == {"data": {"unregisterDevice": expected}}, res
    assert await rows(engine, tenant, select(Device)) == []


async def test_a_new_token_for_an_installation_replaces_the_old_one(
    client, engine, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    account, token = await member(tenant, ["agent"])
    other, other_token = await member(tenant, ["agent"])
    await registered(client, slug, token, token="ok-old", installationId="fid-1")
    await registered(client, slug, other_token, token="ok-theirs", installationId="fid-2")
    await registered(client, slug, token, token="ok-new", installationId="fid-1")
    devices = {d.token: d for d in await rows(engine, tenant, select(Device))}
    assert set(devices) == {"ok-new", "ok-theirs"}
    assert (devices["ok-new"].account_id, devices["ok-new"].installation_id) == (account, "fid-1")
    assert devices["ok-theirs"].account_id == other
    # The old token is gone for good: unregistering it finds nothing.
    res = await gql(client, UNREGISTER, {"token": "ok-old"}, tenant=slug, token=token)
    assert res == {"data": {"unregisterDevice": False}}


async def test_an_installation_id_alone_is_addressed_as_fid(
    client, engine, make_tenant, member, fcm
):
    tenant = await make_tenant()
    account, token = await member(tenant, ["agent"])
    await registered(client, tenant.slug, token, platform="WEB", installationId="ok-fid-77")
    [row] = await rows(engine, tenant, select(Device))
    assert (row.token, row.is_fid, row.installation_id) == ("ok-fid-77", True, "ok-fid-77")

    [n] = await notify(engine, tenant, [account], urgent=True)
    [args] = await jobs(engine, tenant.slug, "notify:deliver")
    sender = FcmPushSender("anju-test", access_token="x", url=fcm.url, retries=0)
    rt = Runtime(settings_for_tests(), engine)
    rt.senders = Senders(sms=CapturingSender(), email=CapturingEmailSender(), push=sender)
    set_runtime(rt)
    try:
        async with TenantDatabase(engine).session(tenant) as session:
            result = await tasks.deliver.work(session, tenant, ids=args["ids"])
            await session.commit()
    finally:
        set_runtime(None)
        await sender.close()
    assert result["sent"] == 1, result
    [req] = fcm.requests
    assert req["message"]["fid"] == "ok-fid-77"
    assert "token" not in req["message"]
    assert req["message"]["data"]["notificationId"] == str(n.id)
    [d] = await rows(engine, tenant, select(Delivery))
    assert (d.status, d.attempts, d.device_id) == ("sent", 1, row.id)


async def test_register_device_refusals(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, token = await member(tenant, ["agent"])
    payload = await register(client, slug, token, token="", installationId="")
    assert (payload["__typename"], payload["code"], payload["field"]) == (
        "ValidationError",
        "BAD_USER_INPUT",
        "token",
    )
    assert await rows(engine, tenant, select(Device)) == []

    # Anonymous: the typed AuthError for the mutation with a union, UNAUTHENTICATED otherwise.
    anonymous = {"input": {"app": "AGENT", "platform": "IOS", "token": "ok-anon"}}
    res = await gql(client, REGISTER, anonymous, tenant=slug, token=None)
    typed_denial(res, "registerDevice", "UNAUTHENTICATED")
    for doc, variables in (
        (UNREGISTER, {"token": "ok-anon"}),
        (INBOX.replace("FIRST", "5"), {}),
        (SETTINGS, {}),
        (MARK_READ, {}),
    ):
        res = await gql(client, doc, variables, tenant=slug, token=None)
        assert codes(res) == ["UNAUTHENTICATED"], res
    assert await rows(engine, tenant, select(Device)) == []


# ---------------------------------------------------------------- 2. inbox


async def test_inbox_is_ones_own_with_read_state(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    a, a_token = await member(tenant, ["agent"])
    b, b_token = await member(tenant, ["agent"])
    mine = [
        (await notify(engine, tenant, [a], params={"title": f"A{i}", "text": "x"}))[0]
        for i in range(3)
    ]
    [theirs] = await notify(engine, tenant, [b], params={"title": "B0", "text": "y"})

    got = await inbox(client, slug, a_token)
    assert {i["id"] for i in got["items"]} == {str(n.id) for n in mine}
    assert (got["unreadCount"], got["hasMore"]) == (3, False)
    assert all(i["readAt"] is None and i["category"] == "LEADS" for i in got["items"])
    got_b = await inbox(client, slug, b_token)
    assert [(i["id"], i["title"]) for i in got_b["items"]] == [(str(theirs.id), "B0")]

    # B cannot mark A's notifications read (nor learn anything about them).
    assert await mark_read(client, slug, b_token, [str(n.id) for n in mine]) == {
        "count": 0,
        "unreadCount": 1,
    }
    assert (await inbox(client, slug, a_token))["unreadCount"] == 3

    assert await mark_read(client, slug, a_token, [str(mine[0].id), str(theirs.id), "junk"]) == {
        "count": 1,
        "unreadCount": 2,
    }
    unread = await inbox(client, slug, a_token, unreadOnly=True)
    assert {i["id"] for i in unread["items"]} == {str(mine[1].id), str(mine[2].id)}
    assert unread["unreadCount"] == 2
    read = {i["id"]: i for i in (await inbox(client, slug, a_token))["items"]}
    assert read[str(mine[0].id)]["readAt"] is not None
    # Marking the same one again counts nothing.
    assert await mark_read(client, slug, a_token, [str(mine[0].id)]) == {
        "count": 0,
        "unreadCount": 2,
    }

    # Without ids: all of mine, none of B's.
    assert await mark_read(client, slug, a_token) == {"count": 2, "unreadCount": 0}
    assert (await inbox(client, slug, a_token, unreadOnly=True))["items"] == []
    assert (await inbox(client, slug, b_token))["unreadCount"] == 1


async def test_inbox_is_newest_first_and_pages_with_before(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    a, a_token = await member(tenant, ["agent"])
    made = [
        (await notify(engine, tenant, [a], params={"title": f"n{i}", "text": "x"}))[0]
        for i in range(10)
    ]
    newest_first = [str(n.id) for n in reversed(made)]

    pages, before = [], None
    while True:
        page = await inbox(client, slug, a_token, first=4, before=before)
        pages.append([i["id"] for i in page["items"]])
        if not page["hasMore"]:
            break
        before = page["items"][-1]["id"]
    assert [len(p) for p in pages] == [4, 4, 2]
    assert [i for page in pages for i in page] == newest_first
    whole = await inbox(client, slug, a_token, first=10)
    assert [i["title"] for i in whole["items"]] == [f"n{i}" for i in range(9, -1, -1)]
    assert whole["hasMore"] is False


async def test_an_app_can_page_its_inbox_with_variables(client, engine, make_tenant, member):
    tenant = await make_tenant()
    a, a_token = await member(tenant, ["agent"])
    [n] = await notify(engine, tenant, [a])
    doc = (
        "query($first: Int!, $before: ID) { inbox(first: $first, before: $before) {"
        " hasMore unreadCount items { " + NOTIFICATION_FIELDS + " } } }"
    )
    res = await gql(client, doc, {"first": 20}, tenant=tenant.slug, token=a_token)
    assert "errors" not in res, res
    assert [i["id"] for i in res["data"]["inbox"]["items"]] == [str(n.id)]


# ---------------------------------------------------------------- 3. settings


async def test_settings_defaults_and_updates(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, token = await member(tenant, ["agent"])
    _, other = await member(tenant, ["agent"])
    defaults = {
        "categories": [
            {"category": c, "push": c != "MARKETING", "email": False, "sms": False}
            for c in CATEGORIES
        ],
        "quietHours": None,
    }
    assert await notification_settings(client, slug, token) == defaults

    payload = await update_settings(
        client,
        slug,
        token,
        categories=[
            {"category": "LEADS", "push": False, "email": True},
            {"category": "MARKETING", "push": True, "sms": True},
        ],
        quietHours={"start": "22:30", "end": "07:00", "timeZone": "Europe/London"},
    )
    assert payload["__typename"] == "NotificationSettingsPayload", payload
    expected = {
        "categories": [
            {
                "category": c,
                "push": c not in ("LEADS",),
                "email": c == "LEADS",
                "sms": c == "MARKETING",
            }
            for c in CATEGORIES
        ],
        "quietHours": {"start": "22:30", "end": "07:00", "timeZone": "Europe/London"},
    }
    assert payload["settings"] == expected
    assert await notification_settings(client, slug, token) == expected
    assert await notification_settings(client, slug, other) == defaults  # one's own only

    # Refusals name the field; nothing changes.
    for quiet, field in (
        ({"start": "25:00", "end": "07:00"}, "quietHours.start"),
        ({"start": "22:00", "end": "7h"}, "quietHours.end"),
        ({"start": "08:00", "end": "08:00"}, "quietHours"),
        ({"start": "22:00", "end": "07:00", "timeZone": "Mars/Olympus"}, "timeZone"),
    ):
        payload = await update_settings(client, slug, token, quietHours=quiet)
        assert (payload["__typename"], payload["code"], payload["field"]) == (
            "ValidationError",
            "BAD_USER_INPUT",
            field,
        ), (quiet, payload)
    assert await notification_settings(client, slug, token) == expected

    # Quiet hours move, then are cleared.
    payload = await update_settings(
        client, slug, token, quietHours={"start": "23:00", "end": "06:15"}
    )
    assert payload["settings"]["quietHours"] == {
        "start": "23:00",
        "end": "06:15",
        "timeZone": "Asia/Shanghai",
    }
    payload = await update_settings(client, slug, token, clearQuietHours=True)
    assert payload["settings"]["quietHours"] is None
    assert (await notification_settings(client, slug, token))["quietHours"] is None


async def test_a_refused_settings_update_changes_nothing(client, make_tenant, member):
    tenant = await make_tenant()
    _, token = await member(tenant, ["agent"])
    payload = await update_settings(
        client,
        tenant.slug,
        token,
        categories=[{"category": "LEADS", "push": False}],
        quietHours={"start": "25:00", "end": "07:00"},
    )
    assert (payload["__typename"], payload["field"]) == ("ValidationError", "quietHours.start")
    leads = (await notification_settings(client, tenant.slug, token))["categories"][0]
    assert leads == {"category": "LEADS", "push": True, "email": False, "sms": False}


async def test_a_refusal_after_the_first_writes_leaves_nothing(
    client, make_tenant, member, monkeypatch
):
    """attempt's savepoint: every check of this mutation runs before its writes, so the
    refusal is forced here after the preferences and the quiet hours are written."""
    tenant = await make_tenant()
    _, token = await member(tenant, ["agent"])
    before = await notification_settings(client, tenant.slug, token)
    real = service.set_quiet_hours

    async def written_then_refused(session, *args, **kwargs):
        await real(session, *args, **kwargs)
        raise ValidationFailed("refused after writing", "quietHours")

    monkeypatch.setattr(service, "set_quiet_hours", written_then_refused)
    payload = await update_settings(
        client,
        tenant.slug,
        token,
        categories=[{"category": "LEADS", "push": False}],
        quietHours={"start": "22:00", "end": "07:00"},
    )
    assert (payload["__typename"], payload["field"]) == ("ValidationError", "quietHours")
    assert await notification_settings(client, tenant.slug, token) == before


async def test_notify_follows_the_preferences(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    account, token = await member(tenant, ["agent"])
    device = await registered(client, slug, token, token="ok-prefs")
    payload = await update_settings(
        client,
        slug,
        token,
        categories=[
            {"category": "LISTING_UPDATES", "push": False, "email": True},
            {"category": "PAYMENTS", "push": True, "sms": True},
        ],
    )
    assert payload["__typename"] == "NotificationSettingsPayload", payload

    def channels(n):
        return sorted(
            (d.channel, str(d.device_id) if d.device_id else None)
            for d in delivered
            if d.notification_id == n.id
        )

    [off] = await notify(engine, tenant, [account], "listing_updates")
    [both] = await notify(engine, tenant, [account], "payments")
    [default] = await notify(engine, tenant, [account], "leads")
    [marketing] = await notify(engine, tenant, [account], "marketing")
    delivered = await rows(engine, tenant, select(Delivery))
    assert channels(off) == [("email", None)]
    assert channels(both) == [("push", device["id"]), ("sms", None)]
    assert channels(default) == [("push", device["id"])]
    assert channels(marketing) == []
    # All four are in the inbox whatever the channels.
    assert (await inbox(client, slug, token))["unreadCount"] == 4


# ---------------------------------------------------------------- 4. live inbox


async def test_live_inbox_gets_ones_own_notifications(
    client, live_server, engine, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    a, a_token = await member(tenant, ["client"])
    b, b_token = await member(tenant, ["agent"])
    async with live(live_server, slug, a_token) as wa, live(live_server, slug, b_token) as wb:
        await subscribed(wa, INBOX_CHANGES)
        await subscribed(wb, INBOX_CHANGES)
        unit_id = str(uuid.uuid4())
        [n] = await notify(
            engine,
            tenant,
            [a],
            "listing_updates",
            "unit.status",
            {"number": "1801", "status": "reserved"},
            data={"kind": "unit", "id": unit_id},
        )
        msg = await wa.next()
        assert "errors" not in msg["payload"], msg
        got = msg["payload"]["data"]["inboxChanges"]
        assert got == {
            "id": str(n.id),
            "category": "LISTING_UPDATES",
            "urgent": False,
            "title": "关注的房源有新状态",
            "body": "1801 现为已预订",
            "data": {"kind": "unit", "id": unit_id},
            "createdAt": got["createdAt"],
            "readAt": None,
        }
        await wb.nothing(0.3)

        # B's subscription works: B's own notification reaches B only.
        [m] = await notify(engine, tenant, [b], "system", urgent=True)
        got = (await wb.next())["payload"]["data"]["inboxChanges"]
        assert (got["id"], got["title"], got["body"], got["urgent"], got["category"]) == (
            str(m.id),
            "Hello",
            "World",
            True,
            "SYSTEM",
        )
        await wa.nothing(0.3)


# ---------------------------------------------------------------- 5. followers


async def test_followers_hear_of_a_status_change(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    en, en_token = await member(tenant, ["client"])
    zh, zh_token = await member(tenant, ["client"])
    _, bystander = await member(tenant, ["client"])
    await registered(client, slug, en_token, app="OWNER", token="ok-en", locale="en-US")
    inv = await inventory(client, slug, floors=1, per_floor=2)
    unit, other = inv["units"]
    for who in (en_token, zh_token):
        res = await gql(client, FOLLOW, {"kind": "UNIT", "id": unit["id"]}, tenant=slug, token=who)
        assert res["data"]["follow"]["__typename"] == "FollowPayload", res

    assert (
        events_about(await jobs(engine, slug, "notify:notify_followers"), "unit.status", unit["id"])
        == []
    )
    await reserve(client, slug, unit["id"])  # the tenant admin, over HTTP
    [args] = events_about(
        await jobs(engine, slug, "notify:notify_followers"), "unit.status", unit["id"]
    )
    [event] = [e for e in args["events"] if e["entity"] == unit["id"]]
    assert (event["kind"], event["payload"]["status"]) == ("unit.status", "reserved")

    async with TenantDatabase(engine).session(tenant) as session:
        made = await tasks.notify_followers.work(session, tenant, events=args["events"])
        await session.commit()
    assert made == 2
    number = unit["number"]
    [got] = (await inbox(client, slug, en_token))["items"]
    assert (got["title"], got["body"], got["category"], got["data"]) == (
        "A unit you follow changed",
        f"Unit {number} is now reserved",
        "LISTING_UPDATES",
        {"kind": "unit", "id": unit["id"]},
    )
    [got] = (await inbox(client, slug, zh_token))["items"]
    assert (got["title"], got["body"], got["data"]) == (
        "关注的房源有新状态",
        f"{number} 现为已预订",
        {"kind": "unit", "id": unit["id"]},
    )
    assert (await inbox(client, slug, bystander))["items"] == []
    # The English follower's device gets a push (queued with the notification).
    [push] = await rows(engine, tenant, select(Delivery).where(Delivery.account_id == en))
    assert (push.channel, push.status) == ("push", "pending")
    assert await rows(engine, tenant, select(Delivery).where(Delivery.account_id == zh)) == []
    # A unit nobody follows changing queues a job that makes nothing.
    await reserve(client, slug, other["id"])
    [args] = events_about(
        await jobs(engine, slug, "notify:notify_followers"), "unit.status", other["id"]
    )
    async with TenantDatabase(engine).session(tenant) as session:
        assert await tasks.notify_followers.work(session, tenant, events=args["events"]) == 0


async def test_a_rolled_back_change_queues_nothing(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    actor, _ = await member(tenant, ["admin"])
    _, fan = await member(tenant, ["client"])
    [unit] = (await inventory(client, slug, floors=1, per_floor=1))["units"]
    res = await gql(client, FOLLOW, {"kind": "UNIT", "id": unit["id"]}, tenant=slug, token=fan)
    assert res["data"]["follow"]["__typename"] == "FollowPayload", res
    count = text(
        "SELECT count(*) FROM shared.procrastinate_jobs WHERE task_name ="
        " 'notify:notify_followers' AND args->>'tenant' = :slug"
    )
    async with TenantDatabase(engine).session(tenant) as session:
        await unit_service.reserve_unit(
            session, uuid.UUID(unit["id"]), actor_id=actor, override=True
        )
        # The job is in the transaction (so the test means something) ...
        assert await session.scalar(count, {"slug": slug}) == 1
        await session.rollback()
    # ... and gone with it.
    assert await jobs(engine, slug, "notify:notify_followers") == []
    assert (await inbox(client, slug, fan))["items"] == []


async def test_followers_hear_of_a_price_change(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, en_token = await member(tenant, ["client"])
    _, zh_token = await member(tenant, ["client"])
    await registered(client, slug, en_token, token="ok-price-en", locale="en_GB")
    inv = await inventory(client, slug, floors=1, per_floor=2, price=300_000_000)
    unit = inv["units"][0]
    for who in (en_token, zh_token):
        res = await gql(client, FOLLOW, {"kind": "UNIT", "id": unit["id"]}, tenant=slug, token=who)
        assert res["data"]["follow"]["__typename"] == "FollowPayload", res
    adj = await applied(
        client, slug, projectId=inv["project"]["id"], unitIds=[unit["id"]], percent="1"
    )
    assert adj["status"] == "applied", adj
    [args] = events_about(
        await jobs(engine, slug, "notify:notify_followers"), "unit.price", unit["id"]
    )
    async with TenantDatabase(engine).session(tenant) as session:
        assert await tasks.notify_followers.work(session, tenant, events=args["events"]) == 2
        await session.commit()
    number = unit["number"]
    [got] = (await inbox(client, slug, en_token))["items"]
    assert (got["title"], got["body"], got["data"]) == (
        "A unit you follow has a new price",
        f"Unit {number} is now CN¥3,030,000.00",
        {"kind": "unit", "id": unit["id"]},
    )
    [got] = (await inbox(client, slug, zh_token))["items"]
    assert (got["title"], got["body"]) == ("关注的房源调价", f"{number} 现价 ¥3,030,000.00")


# ---------------------------------------------------------------- 6. hold reminders


async def test_an_expiring_hold_is_reminded_once(client, engine, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    agent, agent_token = await member(tenant, ["agent"])
    _, later_token = await member(tenant, ["agent"])
    soon, later = (await inventory(client, slug, floors=1, per_floor=2))["units"]
    for unit, token, minutes in ((soon, agent_token, 5), (later, later_token, 30)):
        res = await gql(
            client,
            HOLD_UNIT,
            {"input": {"unitId": unit["id"], "minutes": minutes}},
            tenant=slug,
            token=token,
        )
        ok(res, "holdUnit", "UnitPayload")

    async def remind() -> int:
        async with TenantDatabase(engine).session(tenant) as session:
            n = await tasks.remind_expiring_holds.work(session, tenant)
            await session.commit()
        return n

    assert await remind() == 1
    [got] = (await inbox(client, slug, agent_token))["items"]
    assert (got["category"], got["urgent"], got["title"]) == ("SYSTEM", True, "保留即将到期")
    assert re.fullmatch(rf"{soon['number']} 的保留将在 [45] 分钟后到期", got["body"]), got
    assert (got["data"]["kind"], got["data"]["id"]) == ("unit", soon["id"])
    [row] = await rows(engine, tenant, select(Notification))
    assert (row.account_id, row.template) == (agent, "hold.expiring")

    assert await remind() == 0  # once per hold
    assert len((await inbox(client, slug, agent_token))["items"]) == 1
    assert (await inbox(client, slug, later_token))["items"] == []  # 30 minutes: not yet


# ---------------------------------------------------------------- 7. stale devices


async def test_prune_drops_devices_unseen_for_270_days(engine, make_tenant, member):
    tenant = await make_tenant()
    account, _ = await member(tenant, ["agent"])
    now = utcnow()
    async with TenantDatabase(engine).session(tenant) as session:
        for token, days in (("ok-stale", 271), ("ok-recent", 269), ("ok-today", 0)):
            d = await service.register_device(
                session, account, app="agent", platform="ios", token=token
            )
            await session.execute(
                update(Device)
                .where(Device.id == d.id)
                .values(last_seen_at=now - timedelta(days=days))
            )
        await session.commit()
    async with TenantDatabase(engine).session(tenant) as session:
        assert await tasks.prune_devices.work(session, tenant) == 1
        await session.commit()
    assert sorted(d.token for d in await rows(engine, tenant, select(Device))) == [
        "ok-recent",
        "ok-today",
    ]
