"""A notification reaches the inbox at once and a device through the worker's deliver job
(FCM on loopback, firebase-admin's real async client)."""

from __future__ import annotations

import json
import uuid

import jsonschema
import pytest
from sqlalchemy import select, text

from api.jobs import Runtime, set_runtime
from api.notify import Senders, service, tasks
from api.notify.email import CapturingEmailSender
from api.notify.models import Delivery
from api.notify.push import FcmPushSender
from api.notify.sms import CapturingSender
from mobile_contracts.contracts import ROOT
from tenants.sessions import TenantDatabase
from tests.api.notify.fcm_server import FakeFcm
from tests.conftest import gql
from tests.conftest import test_settings as settings_for_tests

REGISTER = """
mutation($input: RegisterDeviceInput!) {
  registerDevice(input: $input) { __typename ... on DevicePayload { device { id locale } } }
}
"""
INBOX = "{ inbox { unreadCount items { title body category urgent data } } }"


@pytest.fixture
async def fcm():
    server = FakeFcm().start()
    yield server
    server.stop()


async def test_notify_then_deliver_through_fcm(client, engine, make_tenant, member, fcm):
    tenant = await make_tenant()
    account, token = await member(tenant, ["agent"])
    res = await gql(
        client,
        REGISTER,
        {
            "input": {
                "app": "AGENT",
                "platform": "ANDROID",
                "token": "ok-phone-1",
                "locale": "en-US",
            }
        },
        tenant=tenant.slug,
        token=token,
    )
    assert res["data"]["registerDevice"]["device"]["locale"] == "en", res
    async with TenantDatabase(engine).session(tenant) as session:
        [n] = await service.notify(
            session,
            tenant.slug,
            [account],
            "listing_updates",
            "unit.status",
            {"number": "1801", "status": "reserved"},
            data={"kind": "unit", "id": str(uuid.uuid4())},
        )
        await session.commit()
    res = await gql(client, INBOX, tenant=tenant.slug, token=token)
    inbox = res["data"]["inbox"]
    assert inbox["unreadCount"] == 1
    assert inbox["items"][0]["body"] == "Unit 1801 is now reserved"
    async with engine.connect() as conn:
        [args] = (
            (
                await conn.execute(
                    text(
                        "SELECT args FROM shared.procrastinate_jobs WHERE "
                        "task_name = 'notify:deliver' "
                        "AND args->>'tenant' = :t"
                    ),
                    {"t": tenant.slug},
                )
            )
            .scalars()
            .all()
        )
    sender = FcmPushSender("anju-test", access_token="t0ken", url=fcm.url, retries=0)
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
    assert req["message"]["token"] == "ok-phone-1"
    assert req["message"]["notification"] == {
        "title": "A unit you follow changed",
        "body": "Unit 1801 is now reserved",
    }
    assert req["message"]["data"]["notificationId"] == str(n.id)
    assert req["authorization"] == "Bearer t0ken"
    # What the app receives follows the committed push payload schema (mobile_contracts/push).
    schema = json.loads((ROOT / "push" / "notification.schema.json").read_text())
    jsonschema.validate(req["message"], schema, format_checker=jsonschema.FormatChecker())
    async with TenantDatabase(engine).session(tenant) as session:
        [d] = (await session.scalars(select(Delivery))).all()
        assert (d.status, d.attempts) == ("sent", 1)
