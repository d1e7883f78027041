"""Delivering notifications (api/notify/delivery.py, push.py, tasks.py) through firebase-admin's
real async client against a loopback FCM (tests/api/notify/fcm_server.py), a real SMTP server
(aiosmtpd) and the capturing SMS sender: token pruning per FCM error, back-off and retry,
quiet hours, throttling, preferences, the inbox when pushes fail, jobs without a tenant, and
batches of at most 500 messages."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from starlette.requests import Request
from structlog.testing import capture_logs

from api.db import utcnow
from api.jobs import JobRefused, Runtime, make_app, run_worker, runtime, set_runtime
from api.notify import Senders, delivery, service, tasks
from api.notify.email import CapturingEmailSender
from api.notify.models import Delivery, Device
from api.notify.push import BATCH, GROUP, FcmPushSender
from api.notify.sms import CapturingSender, SmsMessage
from tenants.sessions import TenantDatabase
from tests.api.identity.helpers import new_account, new_email, new_phone
from tests.api.notify.fcm_server import FakeFcm
from tests.api.notify.helpers import loopback_smtp
from tests.conftest import gql
from tests.conftest import test_settings as settings_for_tests

SHANGHAI = ZoneInfo("Asia/Shanghai")

INBOX = """
query($unreadOnly: Boolean! = false) {
  inbox(first: 50, unreadOnly: $unreadOnly) {
    unreadCount hasMore items { title body category urgent }
  }
}
"""
SETTINGS = """
mutation($input: NotificationSettingsInput!) {
  updateNotificationSettings(input: $input) {
    __typename
    ... on NotificationSettingsPayload {
      settings { quietHours { start end timeZone } categories { category push email sms } }
    }
  }
}
"""


# ---------------------------------------------------------------- loopback servers


class Fcm(FakeFcm):
    """FakeFcm plus ``quota10-``: 429 QUOTA_EXCEEDED with Retry-After: 10 (under the floor)."""

    async def send(self, request: Request):
        body = await request.json()  # Starlette keeps the body: the base class reads it again
        token = body["message"]["token"]
        if token.startswith("quota10-"):
            self.requests.append(
                {
                    "project": request.path_params["project"],
                    "message": body["message"],
                    "authorization": request.headers.get("authorization", ""),
                    "validate_only": False,
                }
            )
            return self._error(
                429,
                "RESOURCE_EXHAUSTED",
                "QUOTA_EXCEEDED",
                "Quota exceeded.",
                {"Retry-After": "10"},
            )
        return await super().send(request)


@pytest.fixture
def fcm():
    server = Fcm().start()
    yield server
    server.stop()


@pytest.fixture
async def push(fcm):
    """The real FcmPushSender (firebase-admin's async client) talking to the loopback FCM."""
    sender = FcmPushSender("anju-test", access_token="x", url=fcm.url, retries=0)
    yield sender
    await sender.close()


@pytest.fixture
def senders(push):
    return Senders(sms=CapturingSender(), email=CapturingEmailSender(), push=push)


@pytest.fixture
def smtp():
    with loopback_smtp() as running:
        yield running


def fcm_settings(fcm: FakeFcm, **overrides):
    return settings_for_tests(
        fcm_project_id="anju-test",
        fcm_access_token="x",
        fcm_url=fcm.url,
        fcm_retries=0,
        **overrides,
    )


# ---------------------------------------------------------------- helpers


def tok(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


async def add_devices(engine, tenant, account, tokens: list[str], locale: str = "en") -> dict:
    """Register devices; returns token -> device id."""
    ids = {}
    async with TenantDatabase(engine).session(tenant) as session:
        for t in tokens:
            d = await service.register_device(
                session, account, app="agent", platform="android", token=t, locale=locale
            )
            ids[t] = d.id
        await session.commit()
    return ids


async def notify(
    engine,
    tenant,
    accounts,
    category: str = "listing_updates",
    *,
    title: str = "Title",
    body: str = "Body",
    urgent: bool = False,
    template: str = "notice",
    params: dict | None = None,
):
    """Notify; returns (notifications, their delivery ids)."""
    params = params if params is not None else {"title": title, "text": body}
    async with TenantDatabase(engine).session(tenant) as session:
        made = await service.notify(
            session, tenant.slug, list(accounts), category, template, params, urgent=urgent
        )
        await session.commit()
    ids = [d.id for n in made for d in await deliveries(engine, tenant, notification_id=n.id)]
    return made, ids


async def deliveries(engine, tenant, *, notification_id=None, ids=None) -> list[Delivery]:
    async with TenantDatabase(engine).session(tenant) as session:
        stmt = select(Delivery).order_by(Delivery.id)
        if notification_id is not None:
            stmt = stmt.where(Delivery.notification_id == notification_id)
        if ids is not None:
            stmt = stmt.where(Delivery.id.in_(ids))
        return list((await session.scalars(stmt)).all())


async def by_device(engine, tenant, devices: dict, notification_id) -> dict[str, Delivery]:
    """token -> that device's push delivery of the notification."""
    token_of = {v: k for k, v in devices.items()}
    rows = await deliveries(engine, tenant, notification_id=notification_id)
    return {token_of[d.device_id]: d for d in rows if d.channel == "push"}


async def run(engine, tenant, senders, ids, now, kit=None) -> delivery.Outcome:
    async with TenantDatabase(engine).session(tenant) as session:
        out = await delivery.deliver(session, ids, senders=senders, kit=kit, now=now)
        await session.commit()
    return out


async def run_task(engine, tenant, rt: Runtime, ids) -> dict:
    """The deliver task's work in its own session, with ``rt`` as the worker's runtime."""
    set_runtime(rt)
    try:
        async with TenantDatabase(engine).session(tenant) as session:
            result = await tasks.deliver.work(session, tenant, ids=[str(i) for i in ids])
            await session.commit()
    finally:
        set_runtime(None)
    return result


async def device_tokens(engine, tenant, account) -> set[str]:
    async with TenantDatabase(engine).session(tenant) as session:
        return set(await session.scalars(select(Device.token).where(Device.account_id == account)))


async def jobs_of(engine, slug: str) -> list:
    async with engine.connect() as conn:
        return list(
            await conn.execute(
                text(
                    "SELECT id, status, args, scheduled_at FROM shared.procrastinate_jobs "
                    "WHERE task_name = 'notify:deliver' AND args->>'tenant' = :t ORDER BY id"
                ),
                {"t": slug},
            )
        )


async def set_settings(client, tenant, token, **input_) -> dict:
    res = await gql(client, SETTINGS, {"input": input_}, tenant=tenant.slug, token=token)
    payload = res["data"]["updateNotificationSettings"]
    assert payload["__typename"] == "NotificationSettingsPayload", res
    return payload["settings"]


def shanghai(day, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), SHANGHAI).astimezone(UTC)


def jittered(seconds: float, attempts: int) -> bool:
    """``seconds`` lies in delivery.backoff(attempts)'s window: 10 s doubling, ±50%."""
    base = min(3600.0, 10.0 * 2 ** (attempts - 1))
    return 0.5 * base - 0.001 <= seconds <= 1.5 * base + 0.001


# ---------------------------------------------------------------- 1. token pruning


async def test_fcm_errors_drop_dead_tokens_keep_apns_ones_and_alert(
    engine, make_tenant, member, fcm, senders
):
    tenant = await make_tenant()
    account, _ = await member(tenant, ["agent"])
    other, _ = await member(tenant, ["agent"])
    tokens = {p: tok(p) for p in ("ok", "unregistered", "mismatch", "invalid", "apns")}
    devices = await add_devices(engine, tenant, account, list(tokens.values()))
    other_devices = await add_devices(engine, tenant, other, [tok("unregistered")])
    [n], ids = await notify(engine, tenant, [account], title="New lead", body="Call Ms Li")
    assert len(ids) == 5

    with capture_logs() as logs:
        out = await run(engine, tenant, senders, ids, utcnow())
    assert (out.sent, out.dropped, out.failed, out.retry) == (1, 3, 1, 0), out
    # One request a token, but 3 for the 401 (THIRD_PARTY_AUTH_ERROR comes as a 401, which the
    # SDK answers by refreshing the credential and trying again, twice).
    assert Counter(fcm.tokens()) == {t: 3 if p == "apns" else 1 for p, t in tokens.items()}

    rows = await by_device(engine, tenant, devices, n.id)
    assert {p: rows[t].status for p, t in tokens.items()} == {
        "ok": "sent",
        "unregistered": "dropped",
        "mismatch": "dropped",
        "invalid": "dropped",
        "apns": "failed",
    }
    codes = {
        "unregistered": "UNREGISTERED",
        "mismatch": "SENDER_ID_MISMATCH",
        "invalid": "INVALID_ARGUMENT",
        "apns": "THIRD_PARTY_AUTH_ERROR",
    }
    for prefix, code in codes.items():
        d = rows[tokens[prefix]]
        assert d.last_error.startswith(f"{code}: "), (prefix, d.last_error)
        assert (d.attempts, d.sent_at) == (1, None)
    assert rows[tokens["ok"]].sent_at is not None and rows[tokens["ok"]].last_error == ""
    # The dead tokens are gone; the APNs-refused one is kept (the fault is the project's keys).
    assert await device_tokens(engine, tenant, account) == {tokens["ok"], tokens["apns"]}
    assert await device_tokens(engine, tenant, other) == set(other_devices)  # not this account
    [alert] = [e for e in logs if e["event"].startswith("ALERT")]
    assert alert["log_level"] == "error"
    assert alert["device"] == str(devices[tokens["apns"]])

    # The next notification goes to the devices left only.
    [n2], _ = await notify(engine, tenant, [account], "leads", title="Second", body="b")
    rows2 = await by_device(engine, tenant, devices, n2.id)
    assert set(rows2) == {tokens["ok"], tokens["apns"]}


# ---------------------------------------------------------------- 2. back-off and retry


async def test_quota_and_server_errors_back_off_and_the_task_requeues_itself(
    engine, make_tenant, member, fcm, senders
):
    tenant = await make_tenant()
    account, _ = await member(tenant, ["agent"])
    flaky_one, _ = await member(tenant, ["agent"])  # alone: no sibling push gets sent
    tokens = {p: tok(p) for p in ("quota", "quota10", "unavailable", "internal", "flaky")}
    devices = await add_devices(engine, tenant, account, list(tokens.values())[:4])
    devices |= await add_devices(engine, tenant, flaky_one, [tokens["flaky"]])
    [n, nf], ids = await notify(engine, tenant, [account, flaky_one])
    rt = Runtime(settings_for_tests(), engine)
    rt.senders = senders

    before = utcnow()
    result = await run_task(engine, tenant, rt, ids)
    after = utcnow()
    assert (result["retry"], result["sent"], result["failed"]) == (5, 0, 0), result
    rows = await by_device(engine, tenant, devices, n.id)
    rows |= await by_device(engine, tenant, devices, nf.id)
    assert {d.status for d in rows.values()} == {"pending"}
    assert {d.attempts for d in rows.values()} == {1}
    # QUOTA_EXCEEDED: FCM's Retry-After (90 s); never under 60 s even when FCM says 10.
    quota = rows[tokens["quota"]].next_attempt_at
    assert before + timedelta(seconds=90) <= quota <= after + timedelta(seconds=90)
    quota10 = rows[tokens["quota10"]].next_attempt_at
    assert before + timedelta(seconds=60) <= quota10 <= after + timedelta(seconds=60)
    assert rows[tokens["quota"]].last_error.startswith("QUOTA_EXCEEDED: ")
    # UNAVAILABLE / INTERNAL (and the flaky 503): jittered back-off, 5..15 s for attempt 1.
    for p, code in (
        ("unavailable", "UNAVAILABLE"),
        ("internal", "INTERNAL"),
        ("flaky", "UNAVAILABLE"),
    ):
        d = rows[tokens[p]]
        assert before + timedelta(seconds=5) <= d.next_attempt_at, p
        assert d.next_attempt_at <= after + timedelta(seconds=15), p
        assert d.last_error.startswith(f"{code}: "), (p, d.last_error)

    # The task queued itself again at the earliest next attempt, for the same deliveries.
    earliest = min(d.next_attempt_at for d in rows.values())
    assert result["next_at"] == earliest.isoformat()
    again = [j for j in await jobs_of(engine, tenant.slug) if j.scheduled_at is not None]
    assert len(again) == 1, again
    assert again[0].scheduled_at == earliest
    assert again[0].status == "todo"
    assert sorted(again[0].args["ids"]) == sorted(str(i) for i in ids)

    # Flaky (503 once, then 200): sent at the next attempt; a retry not yet due is left alone.
    flaky = rows[tokens["flaky"]]
    both = [flaky.id, rows[tokens["quota"]].id]
    out = await run(engine, tenant, senders, both, flaky.next_attempt_at + timedelta(seconds=1))
    rows = await by_device(engine, tenant, devices, n.id)
    rows |= await by_device(engine, tenant, devices, nf.id)
    assert (rows[tokens["flaky"]].status, rows[tokens["flaky"]].attempts) == ("sent", 2)
    assert rows[tokens["flaky"]].last_error == ""
    assert rows[tokens["quota"]].attempts == 1  # its 90 s were not over
    assert (out.sent, out.next_at) == (1, rows[tokens["quota"]].next_attempt_at)

    # UNAVAILABLE / INTERNAL: each attempt doubles the window, 'failed' after MAX_ATTEMPTS.
    failing = [rows[tokens["unavailable"]].id, rows[tokens["internal"]].id]
    for attempt in range(2, delivery.MAX_ATTEMPTS + 1):
        current = await deliveries(engine, tenant, ids=failing)
        now = max(d.next_attempt_at for d in current) + timedelta(seconds=1)
        out = await run(engine, tenant, senders, failing, now)
        current = await deliveries(engine, tenant, ids=failing)
        assert {d.attempts for d in current} == {attempt}
        if attempt < delivery.MAX_ATTEMPTS:
            assert {d.status for d in current} == {"pending"}, attempt
            for d in current:
                assert jittered((d.next_attempt_at - now).total_seconds(), attempt), (attempt, d)
            assert out.retry == 2
        else:
            assert {d.status for d in current} == {"failed"}
            assert (out.failed, out.retry, out.next_at) == (2, 0, None)
    requests = [t for t in fcm.tokens() if t == tokens["unavailable"]]
    assert len(requests) == delivery.MAX_ATTEMPTS
    # A failed delivery is never tried again.
    out = await run(engine, tenant, senders, failing, utcnow() + timedelta(days=1))
    assert out == delivery.Outcome()


def test_backoff_doubles_with_jitter():
    for attempts in range(1, 10):
        samples = [delivery.backoff(attempts) for _ in range(200)]
        assert all(jittered(s, attempts) for s in samples), attempts
        assert max(samples) - min(samples) > 0  # jittered, not fixed
    assert delivery.backoff(30) <= 3600 * 1.5


# ---------------------------------------------------------------- 3. quiet hours


async def test_quiet_hours_spanning_midnight_defer_non_urgent_pushes(
    client, engine, make_tenant, member, fcm, senders
):
    tenant = await make_tenant()
    account, token = await member(tenant, ["agent"])
    device = tok("ok")
    await add_devices(engine, tenant, account, [device])
    settings = await set_settings(
        client,
        tenant,
        token,
        quietHours={"start": "22:00", "end": "07:00", "timeZone": "Asia/Shanghai"},
    )
    assert settings["quietHours"] == {"start": "22:00", "end": "07:00", "timeZone": "Asia/Shanghai"}
    day = (utcnow().astimezone(SHANGHAI) + timedelta(days=2)).date()  # ahead: all are due
    late, morning = shanghai(day, 23, 30), shanghai(day + timedelta(days=1), 7, 0)

    [quiet], quiet_ids = await notify(engine, tenant, [account], "leads", title="Quiet")
    [loud], loud_ids = await notify(engine, tenant, [account], "leads", title="Loud", urgent=True)
    out = await run(engine, tenant, senders, quiet_ids + loud_ids, late)
    assert (out.deferred, out.sent, out.next_at) == (1, 1, morning), out
    [d] = await deliveries(engine, tenant, ids=quiet_ids)
    assert (d.status, d.next_attempt_at, d.attempts) == ("deferred", morning, 0)
    assert d.next_attempt_at.astimezone(SHANGHAI).time() == time(7, 0)
    [u] = await deliveries(engine, tenant, ids=loud_ids)
    assert (u.status, u.sent_at) == ("sent", late)
    [req] = fcm.requests
    assert req["message"]["notification"]["title"] == "Loud"
    assert req["message"]["android"]["priority"] == "high"

    # Still quiet at 06:59 (and just after midnight): nothing goes out, the wake-up stays 07:00.
    for at in (shanghai(day + timedelta(days=1), 0, 30), morning - timedelta(minutes=1)):
        out = await run(engine, tenant, senders, quiet_ids, at)
        assert (out.sent, out.next_at) == (0, morning)
    assert len(fcm.requests) == 1

    out = await run(engine, tenant, senders, quiet_ids, morning + timedelta(minutes=1))
    assert out.sent == 1, out
    [d] = await deliveries(engine, tenant, ids=quiet_ids)
    assert (d.status, d.attempts, d.sent_at) == ("sent", 1, morning + timedelta(minutes=1))
    assert [r["message"]["notification"]["title"] for r in fcm.requests] == ["Loud", "Quiet"]
    assert fcm.requests[1]["message"]["data"]["notificationId"] == str(quiet.id)
    assert fcm.requests[1]["message"]["android"]["priority"] == "normal"
    assert loud.urgent and not quiet.urgent


async def test_quiet_hours_within_one_day(client, engine, make_tenant, member, fcm, senders):
    tenant = await make_tenant()
    account, token = await member(tenant, ["agent"])
    await add_devices(engine, tenant, account, [tok("ok")])
    await set_settings(client, tenant, token, quietHours={"start": "13:00", "end": "14:00"})
    day = (utcnow().astimezone(SHANGHAI) + timedelta(days=2)).date()

    # Before the window (a different category each time: no throttling in the way).
    _, before_ids = await notify(engine, tenant, [account], "leads")
    out = await run(engine, tenant, senders, before_ids, shanghai(day, 12, 59))
    assert out.sent == 1, out
    # Inside: until 14:00 the same day, not the next one.
    _, inside_ids = await notify(engine, tenant, [account], "payments")
    out = await run(engine, tenant, senders, inside_ids, shanghai(day, 13, 0))
    assert (out.deferred, out.next_at) == (1, shanghai(day, 14, 0)), out
    # At 14:00 the window is over (its end is not quiet).
    out = await run(engine, tenant, senders, inside_ids, shanghai(day, 14, 0))
    assert out.sent == 1, out
    _, after_ids = await notify(engine, tenant, [account], "system")
    out = await run(engine, tenant, senders, after_ids, shanghai(day, 23, 30))
    assert out.sent == 1, out  # 23:30 is outside a 13:00-14:00 window
    assert len(fcm.requests) == 3

    # Cleared quiet hours: nothing is deferred any more.
    settings = await set_settings(client, tenant, token, clearQuietHours=True)
    assert settings["quietHours"] is None
    _, ids = await notify(engine, tenant, [account], "property_notices")
    out = await run(engine, tenant, senders, ids, shanghai(day + timedelta(days=1), 13, 30))
    assert out.sent == 1, out


# ---------------------------------------------------------------- 4. throttling


async def test_one_non_urgent_push_per_category_an_hour(
    client, engine, make_tenant, member, fcm, senders
):
    tenant = await make_tenant()
    account, token = await member(tenant, ["agent"])
    phone_a, phone_b = tok("ok"), tok("ok")
    await add_devices(engine, tenant, account, [phone_a, phone_b])
    t0 = utcnow() + timedelta(days=1)

    async def push(category="listing_updates", at=t0, urgent=False, title="t"):
        _, ids = await notify(engine, tenant, [account], category, title=title, urgent=urgent)
        await run(engine, tenant, senders, ids, at)
        return {d.status for d in await deliveries(engine, tenant, ids=ids)}

    assert await push(title="first") == {"sent"}  # both devices
    assert await push(at=t0 + timedelta(minutes=10), title="second") == {"collapsed"}
    assert await push(at=t0 + timedelta(minutes=59), title="third") == {"collapsed"}
    assert await push("leads", at=t0 + timedelta(minutes=10), title="lead") == {"sent"}
    assert await push(at=t0, urgent=True, title="urgent") == {"sent"}
    assert await push(at=t0 + timedelta(minutes=61), title="next hour") == {"sent"}
    titles = [r["message"]["notification"]["title"] for r in fcm.requests]
    assert titles == ["first"] * 2 + ["lead"] * 2 + ["urgent"] * 2 + ["next hour"] * 2

    # The inbox has every one of them, collapsed or not.
    res = await gql(client, INBOX, tenant=tenant.slug, token=token)
    inbox = res["data"]["inbox"]
    assert inbox["unreadCount"] == 6
    assert [i["title"] for i in inbox["items"]] == [
        "next hour",
        "urgent",
        "lead",
        "third",
        "second",
        "first",
    ]

    # Several due in one run: the first one goes (to every device), the others collapse.
    t1 = t0 + timedelta(hours=3)
    made = [await notify(engine, tenant, [account], "payments", title=f"p{i}") for i in range(3)]
    await run(engine, tenant, senders, [i for _, ids in made for i in ids], t1)
    statuses = [{d.status for d in await deliveries(engine, tenant, ids=ids)} for _, ids in made]
    assert statuses == [{"sent"}, {"collapsed"}, {"collapsed"}]


async def test_an_urgent_push_does_not_use_up_the_hours_non_urgent_push(
    engine, make_tenant, member, fcm, senders
):
    tenant = await make_tenant()
    account, _ = await member(tenant, ["agent"])
    await add_devices(engine, tenant, account, [tok("ok")])
    t0 = utcnow() + timedelta(days=1)
    _, urgent_ids = await notify(engine, tenant, [account], "system", urgent=True)
    assert (await run(engine, tenant, senders, urgent_ids, t0)).sent == 1
    _, ids = await notify(engine, tenant, [account], "system")
    out = await run(engine, tenant, senders, ids, t0 + timedelta(minutes=10))
    assert (out.sent, out.collapsed) == (1, 0), out


async def test_a_retry_is_not_collapsed_by_the_same_notification_on_another_device(
    engine, make_tenant, member, fcm, senders
):
    tenant = await make_tenant()
    account, _ = await member(tenant, ["agent"])
    phone, tablet = tok("ok"), tok("flaky")
    devices = await add_devices(engine, tenant, account, [phone, tablet])
    [n], ids = await notify(engine, tenant, [account], "leads")
    out = await run(engine, tenant, senders, ids, utcnow())
    assert (out.sent, out.retry) == (1, 1), out
    rows = await by_device(engine, tenant, devices, n.id)
    out = await run(engine, tenant, senders, ids, rows[tablet].next_attempt_at)
    rows = await by_device(engine, tenant, devices, n.id)
    assert rows[tablet].status == "sent", (out, rows[tablet].status)


# ---------------------------------------------------------------- 5. preferences


async def test_preferences_choose_the_channels_email_over_smtp_and_sms(
    client, engine, kit, make_tenant, fcm, smtp
):
    controller, mailbox = smtp
    tenant = await make_tenant()
    _, phone = new_phone()  # E.164: what the SMS sender is given
    email = new_email("pref")
    a, a_tokens = await new_account(engine, kit, tenant, ["agent"], email=email, phone=phone)
    b, b_tokens = await new_account(engine, kit, tenant, ["agent"], phone=new_phone()[1])
    await add_devices(engine, tenant, a, [tok("ok")])
    await add_devices(engine, tenant, b, [tok("ok")], locale="zh-CN")
    settings = await set_settings(
        client,
        tenant,
        a_tokens.access_token,
        categories=[{"category": "LISTING_UPDATES", "push": False, "email": True, "sms": True}],
    )
    chosen = {c["category"]: c for c in settings["categories"]}
    assert chosen["LISTING_UPDATES"] == {
        "category": "LISTING_UPDATES",
        "push": False,
        "email": True,
        "sms": True,
    }
    assert chosen["MARKETING"]["push"] is False  # needs consent: off until chosen
    assert chosen["LEADS"] == {"category": "LEADS", "push": True, "email": False, "sms": False}
    await set_settings(
        client,
        tenant,
        b_tokens.access_token,
        categories=[{"category": "LISTING_UPDATES", "push": False, "email": True}],
    )

    [na, nb], ids = await notify(
        engine,
        tenant,
        [a, b],
        template="unit.status",
        params={"number": "1801", "status": "reserved"},
    )
    assert (na.title, nb.title) == ("A unit you follow changed", "关注的房源有新状态")
    rows = await deliveries(engine, tenant, ids=ids)  # no push rows at all
    assert sorted((d.account_id == a, d.channel) for d in rows) == [
        (False, "email"),
        (True, "email"),
        (True, "sms"),
    ]
    # Marketing with no choice made: the inbox only (no delivery, no job).
    [nm], marketing_ids = await notify(engine, tenant, [a], "marketing", title="Open day")
    assert marketing_ids == []
    [job] = await jobs_of(engine, tenant.slug)
    assert sorted(job.args["ids"]) == sorted(str(i) for i in ids)

    # The worker's own senders, made from settings: SMTP to the loopback server, SMS captured.
    worker = fcm_settings(
        fcm,
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        sms_backend="capture",
    )
    rt = Runtime(worker, engine)
    try:
        result = await run_task(engine, tenant, rt, job.args["ids"])
    finally:
        await rt.senders.push.close()
    assert (result["sent"], result["skipped"], result["next_at"]) == (2, 1, None), result
    assert fcm.requests == []

    [(mail_from, rcpt, mail)] = mailbox.messages
    assert rcpt == [email]
    assert mail["To"] == email
    assert mail["Subject"] == na.title == "A unit you follow changed"
    assert mail.get_content().strip() == na.body == "Unit 1801 is now reserved"
    assert "no-reply@anju.local" in mail_from
    assert rt.senders.sms.outbox == [SmsMessage(phone, f"{na.title}: {na.body}")]
    by_account = {(d.account_id, d.channel): d for d in await deliveries(engine, tenant, ids=ids)}
    assert by_account[(a, "email")].status == "sent"
    assert by_account[(a, "sms")].status == "sent"
    skipped = by_account[(b, "email")]
    assert (skipped.status, skipped.last_error) == ("skipped", "no email address")

    # The inbox has everything, whatever the channels.
    res = await gql(client, INBOX, tenant=tenant.slug, token=a_tokens.access_token)
    assert [i["title"] for i in res["data"]["inbox"]["items"]] == [nm.title, na.title]
    res = await gql(client, INBOX, tenant=tenant.slug, token=b_tokens.access_token)
    assert res["data"]["inbox"]["unreadCount"] == 1


# ---------------------------------------------------------------- 6. inbox when pushes fail


async def test_inbox_is_complete_when_every_push_fails(
    client, engine, make_tenant, member, fcm, senders
):
    tenant = await make_tenant()
    account, token = await member(tenant, ["agent"])
    devices = [tok("unavailable"), tok("unavailable")]
    await add_devices(engine, tenant, account, devices)
    ids = []
    for i, category in enumerate(("leads", "payments", "system")):
        _, more = await notify(engine, tenant, [account], category, title=f"n{i}", body=f"b{i}")
        ids += more
    out = await run(engine, tenant, senders, ids, utcnow())
    assert (out.retry, out.sent) == (6, 0), out
    assert len(fcm.requests) == 6
    assert {d.status for d in await deliveries(engine, tenant, ids=ids)} == {"pending"}
    res = await gql(client, INBOX, tenant=tenant.slug, token=token)
    inbox = res["data"]["inbox"]
    assert inbox["unreadCount"] == 3 and inbox["hasMore"] is False
    assert [(i["title"], i["body"], i["category"]) for i in inbox["items"]] == [
        ("n2", "b2", "SYSTEM"),
        ("n1", "b1", "PAYMENTS"),
        ("n0", "b0", "LEADS"),
    ]
    res = await gql(client, INBOX, {"unreadOnly": True}, tenant=tenant.slug, token=token)
    assert len(res["data"]["inbox"]["items"]) == 3


PAGE = """
query($before: ID) { inbox(first: 3, before: $before) { hasMore items { id title } } }
"""


async def test_inbox_is_newest_first_and_pages_in_order(client, engine, make_tenant, member):
    tenant = await make_tenant()
    account, token = await member(tenant, ["agent"])
    titles = [f"n{i}" for i in range(8)]  # ids are time-ordered (uuid7): random ones fail
    for t in titles:
        await notify(engine, tenant, [account], "system", title=t)
    seen, before = [], None
    while True:
        res = await gql(client, PAGE, {"before": before}, tenant=tenant.slug, token=token)
        page = res["data"]["inbox"]
        seen += [i["title"] for i in page["items"]]
        if not page["hasMore"]:
            break
        before = page["items"][-1]["id"]
    assert seen == titles[::-1]


# ---------------------------------------------------------------- 7. jobs without a tenant


async def test_deliver_refuses_a_missing_or_unknown_tenant(engine, fcm, senders):
    for missing in (None, ""):
        with pytest.raises(JobRefused):
            await tasks.deliver(tenant=missing, ids=[str(uuid.uuid4())])
    rt = Runtime(settings_for_tests(), engine)
    rt.senders = senders
    set_runtime(rt)
    try:
        with pytest.raises(JobRefused):
            await tasks.deliver(tenant="no-such-tenant-xyz", ids=[str(uuid.uuid4())])
    finally:
        set_runtime(None)
    assert fcm.requests == []


async def test_worker_fails_a_job_without_tenant_and_delivers_a_good_one(
    engine, db_url, make_tenant, member, fcm
):
    tenant = await make_tenant()
    good, _ = await member(tenant, ["agent"])
    stray, _ = await member(tenant, ["agent"])
    good_token, stray_token = tok("ok"), tok("ok")
    await add_devices(engine, tenant, good, [good_token])
    await add_devices(engine, tenant, stray, [stray_token])
    # A delivery that only tenant-less jobs carry: its own job row is removed.
    _, stray_ids = await notify(engine, tenant, [stray])
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "DELETE FROM shared.procrastinate_jobs"
                " WHERE task_name = 'notify:deliver' AND args->>'tenant' = :t"
            ),
            {"t": tenant.slug},
        )
    _, good_ids = await notify(engine, tenant, [good], title="Good job")
    stray_args = [str(i) for i in stray_ids]
    async with make_app(db_url).open_async():
        await tasks.deliver.defer_async(ids=stray_args)  # no tenant at all
        await tasks.deliver.defer_async(tenant="", ids=stray_args)
        await tasks.deliver.defer_async(tenant="no-such-tenant-xyz", ids=stray_args)

    settings = fcm_settings(fcm)
    try:
        await asyncio.wait_for(
            run_worker(settings, engine, db_url, wait=False, install_signal_handlers=False), 60
        )
    finally:
        await runtime().senders.push.close()
        set_runtime(None)

    async with engine.connect() as conn:
        bad = (
            await conn.execute(
                text(
                    "SELECT status, args FROM shared.procrastinate_jobs "
                    "WHERE task_name = 'notify:deliver'"
                    " AND args->'ids' = CAST(:ids AS jsonb)"
                ),
                {"ids": json.dumps(stray_args)},
            )
        ).all()
    assert sorted((r.status, r.args.get("tenant", "(none)")) for r in bad) == [
        ("failed", ""),
        ("failed", "(none)"),
        ("failed", "no-such-tenant-xyz"),
    ]
    assert [d.status for d in await deliveries(engine, tenant, ids=stray_ids)] == ["pending"]
    assert stray_token not in fcm.tokens()
    # The good job ran end to end: FCM got it, the delivery is sent, the job is gone.
    [req] = [r for r in fcm.requests if r["message"]["token"] == good_token]
    assert req["message"]["notification"]["title"] == "Good job"
    assert req["authorization"] == "Bearer x"
    [d] = await deliveries(engine, tenant, ids=good_ids)
    assert (d.status, d.attempts) == ("sent", 1)
    assert await jobs_of(engine, tenant.slug) == []


# ---------------------------------------------------------------- 8. batching


async def test_1200_devices_go_in_batches_of_at_most_500(engine, make_tenant, member, fcm, push):
    tenant = await make_tenant()
    account, _ = await member(tenant, ["agent"])
    tokens = [tok("ok") for _ in range(1200)]
    now = utcnow()
    async with TenantDatabase(engine).session(tenant) as session:
        session.add_all(
            Device(
                id=uuid.uuid4(),
                account_id=account,
                app="agent",
                platform="android",
                token=t,
                locale="en",
                last_seen_at=now,
                created_at=now,
            )
            for t in tokens
        )
        await session.commit()
    [n], ids = await notify(engine, tenant, [account], urgent=True, title="All")
    assert len(ids) == 1200

    service_ = push._service()
    original = service_.send_each_async
    sizes: list[int] = []

    async def spy(messages, dry_run=False):
        sizes.append(len(messages))
        return await original(messages, dry_run=dry_run)

    service_.send_each_async = spy
    senders = Senders(sms=CapturingSender(), email=CapturingEmailSender(), push=push)
    out = await run(engine, tenant, senders, ids, utcnow())
    assert out.sent == 1200, out
    assert max(sizes) <= BATCH == 500 and sum(sizes) == 1200
    assert sizes == [GROUP] * (1200 // GROUP)
    assert len(fcm.requests) == 1200
    assert sorted(fcm.tokens()) == sorted(tokens)
    rows = await deliveries(engine, tenant, notification_id=n.id)
    assert {d.status for d in rows} == {"sent"} and len(rows) == 1200
