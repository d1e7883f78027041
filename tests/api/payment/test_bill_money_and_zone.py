"""Bills and deposits in the tenant's currency and time zone: a receipt and the payer's notices
show the amount to the cent (¥123.45 paid, ¥0.50 left, never rounded to yuan), the receipt's
date is the tenant's, a bill is overdue by the tenant's calendar, not Shanghai's, a dollar
tenant's deposit is charged in dollars, and the least part of a bill one may pay is one unit of
its currency."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pypdf
from sqlalchemy import select

from api.notify.models import Notification
from api.payment.models import Journal
from api.payment.tasks import reminder_hour
from tenants.registry import TenantInfo
from tenants.sessions import TenantDatabase
from tests.api.payment.helpers import (
    ALL,
    MINE,
    connect,
    deliver,
    issue,
    pay,
    payment_rows,
    pi,
    pi_of,
    start,
    tenant_with_unit,
    work,
)
from tests.conftest import gql

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Fixed offsets (no daylight saving) from -11 to +14 hours.
ZONES = ("Pacific/Pago_Pago", "America/Phoenix", "UTC", "Asia/Tokyo", "Pacific/Kiritimati")


def zone_on_another_day(now: datetime) -> str:
    """A zone whose date differs from Shanghai's at ``now``, the one whose date (and
    Shanghai's) stays so the longest (some zone always differs: +14 and -11 cover the day)."""

    def lasts(name: str) -> timedelta:
        here, there = now.astimezone(SHANGHAI), now.astimezone(ZoneInfo(name))
        if here.date() == there.date():
            return timedelta(0)
        return min(
            datetime.combine(t.date() + timedelta(days=1), datetime.min.time(), t.tzinfo) - t
            for t in (here, there)
        )

    return max(ZONES, key=lasts)


async def bodies(engine, tenant, template: str) -> list[str]:
    async with TenantDatabase(engine).session(tenant) as session:
        return list(
            await session.scalars(
                select(Notification.body)
                .where(Notification.template == template)
                .order_by(Notification.created_at)
            )
        )


async def test_receipt_and_notices_show_cents_and_the_tenants_date(
    http, fake, engine, db_url, make_tenant, member, worker_settings
):
    tenant = await make_tenant(time_zone="Pacific/Kiritimati")
    await connect(engine, tenant)
    owner_id, owner = await member(tenant, ["owner"])
    bill = (await issue(http, tenant.slug, owner_id, amount=12_395))["bill"]
    started = await pay(http, tenant.slug, owner, bill["id"], 12_345)
    await deliver(http, fake, fake.succeed(pi(started)))
    await work(worker_settings, engine, db_url)

    # The payer has no device: the notices are in the tenant's locale (zh-CN).
    assert await bodies(engine, tenant, "bill.issued") == [
        f"物业费 2026-12 ¥123.95, 请于 {bill['dueOn']} 前缴纳"
    ]
    assert await bodies(engine, tenant, "bill.paid") == ["物业费 2026-12 已缴 ¥123.45, 尚欠 ¥0.50"]

    res = await gql(
        http, MINE.replace("receipts {", "receipts { issuedAt"), tenant=tenant.slug, token=owner
    )
    [receipt] = res["data"]["myBills"][0]["receipts"]
    pdf = await http.get(receipt["pdfUrl"])
    assert pdf.status_code == 200
    words = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    issued = datetime.fromisoformat(receipt["issuedAt"]).astimezone(ZoneInfo("Pacific/Kiritimati"))
    for expected in ("¥123.45", "¥0.50", f"{issued:%Y-%m-%d %H:%M} (Pacific/Kiritimati)"):
        assert expected in words, (expected, words)


async def test_an_english_tenant_in_dollars_hears_in_english(http, engine, make_tenant, member):
    tenant = await make_tenant(locale="en", currency="USD", time_zone="America/Los_Angeles")
    owner_id, _ = await member(tenant, ["owner"])
    bill = (await issue(http, tenant.slug, owner_id, amount=123_450))["bill"]
    assert await bodies(engine, tenant, "bill.issued") == [
        f"物业费 2026-12: $1,234.50, due {bill['dueOn']}"
    ]


async def test_a_dollar_tenants_deposit_is_charged_in_dollars(
    http, fake, engine, db_url, make_tenant, member, worker_settings
):
    tenant, _, [unit] = await tenant_with_unit(
        http, engine, make_tenant, locale="en", currency="USD"
    )
    _, agent = await member(tenant, ["agent"])
    got = await start(http, tenant.slug, unit, agent)
    assert (got["__typename"], got["payment"]["currency"]) == ("DepositPayload", "usd"), got
    [call] = [
        c
        for c in fake.calls("POST", "/v1/payment_intents")
        if c.body["metadata"]["tenant_id"] == str(tenant.id)
    ]
    assert (call.body["amount"], call.body["currency"]) == ("2000000", "usd")
    assert fake.payment_intents[pi_of(got)]["currency"] == "usd"
    await deliver(http, fake, fake.succeed(pi_of(got)))
    await work(worker_settings, engine, db_url)
    [p] = await payment_rows(engine, tenant)
    assert (p.status, p.currency) == ("paid", "usd")
    async with TenantDatabase(engine).session(tenant) as session:
        assert list(await session.scalars(select(Journal.currency))) == ["usd"]
    [told] = await bodies(engine, tenant, "payment.received")  # in the tenant's locale
    assert told.startswith("Deposit for unit ") and told.endswith(": $20,000.00 paid"), told


async def test_the_least_part_of_a_bill_is_one_unit_of_its_currency(
    http, fake, engine, make_tenant, member
):
    """At least ¥1 of a yuan bill (100 fen), $1 of a dollar bill, ¥1 of a yen bill (1: yen
    have no minor unit); the refusal names the amounts in the tenant's money."""
    cases = (
        ("CNY", "zh-CN", 99, 100, "pay between ¥1.00 and ¥300.00"),
        ("USD", "en", 99, 100, "pay between $1.00 and $300.00"),
        ("JPY", "en", 0, 1, "pay between ¥1 and ¥30,000"),
    )
    for currency, locale, refused, least, message in cases:
        tenant = await make_tenant(currency=currency, locale=locale)
        await connect(engine, tenant)
        owner_id, owner = await member(tenant, ["owner"])
        bill = (await issue(http, tenant.slug, owner_id, amount=30_000))["bill"]
        got = await pay(http, tenant.slug, owner, bill["id"], refused)
        assert (got["__typename"], got["field"], got["message"]) == (
            "ValidationError",
            "amount",
            message,
        ), got
        got = await pay(http, tenant.slug, owner, bill["id"], least)
        assert got["__typename"] == "BillPaymentPayload", (currency, got)
        [call] = [
            c
            for c in fake.calls("POST", "/v1/payment_intents")
            if c.body["metadata"].get("bill_id") == bill["id"]
        ]
        assert (call.body["amount"], call.body["currency"]) == (str(least), currency.lower())


async def test_a_bill_is_overdue_by_the_tenants_calendar(http, make_tenant, member):
    before = datetime.now(UTC)
    zone = zone_on_another_day(before)
    tenant = await make_tenant(time_zone=zone)
    owner_id, _ = await member(tenant, ["owner"])
    today = tenant.today(before)
    assert today != before.astimezone(SHANGHAI).date()
    yesterday = (await issue(http, tenant.slug, owner_id, due_in=-1, on=today))["bill"]
    due_today = (await issue(http, tenant.slug, owner_id, due_in=0, on=today))["bill"]
    res = await gql(http, ALL, {"overdue": False}, tenant=tenant.slug)
    listed = await gql(http, ALL, {"overdue": True}, tenant=tenant.slug)
    # Due today is not overdue, unless the tenant's midnight passed meanwhile.
    late = {False} if tenant.today(datetime.now(UTC)) == today else {False, True}
    got = {b["id"]: b["overdue"] for b in res["data"]["bills"]}
    assert got[yesterday["id"]] is True and got[due_today["id"]] in late, (zone, got)
    overdue = [b["id"] for b in listed["data"]["bills"]]
    assert overdue[0] == yesterday["id"] and len(overdue) in {1, 1 + max(late)}, (zone, overdue)


def test_bill_reminders_go_out_at_nine_on_the_tenants_clock():
    def tenant(zone: str) -> TenantInfo:
        return TenantInfo("", "t", "", "", "active", "free", time_zone=zone)

    winter_la = datetime(2026, 12, 3, 17, 30, tzinfo=UTC)  # 09:30 in Los Angeles (UTC-8)
    summer_la = datetime(2026, 7, 3, 16, 0, tzinfo=UTC)  # 09:00 in Los Angeles (UTC-7)
    shanghai = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert [
        reminder_hour(tenant("America/Los_Angeles"), at) for at in (winter_la, summer_la, shanghai)
    ] == [True, True, False]
    assert [
        reminder_hour(tenant("Asia/Shanghai"), at) for at in (winter_la, summer_la, shanghai)
    ] == [False, False, True]
