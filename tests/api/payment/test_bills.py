"""Fee bills paid in the app through Stripe (loopback): partial payments, numbered receipts
(PDF in Chinese and English at a signed URL), overdue, reminders three days before, voiding,
a payment arriving for a bill settled meanwhile (refunded), and who sees what."""

from __future__ import annotations

import io
import uuid

import procrastinate
import pypdf
import pytest
from sqlalchemy import select, text

from api.payment import bills
from api.payment import tasks as payment_tasks
from api.payment.models import Bill as BillRow
from tenants.sessions import TenantDatabase
from tests.api.payment.helpers import (
    ALL,
    ISSUE,
    books,
    connect,
    deliver,
    die_after_first_refund,
    issue,
    mine,
    pay,
    payment_rows,
    pi,
    told,
    work,
)
from tests.conftest import TOKENS, gql

VOID = """
mutation($b: ID!, $r: String!) {
  voidBill(billId: $b, reason: $r) {
    __typename ... on BillPayload { bill { status } } ... on UserError { code field }
  }
}
"""


async def test_partial_payments_receipts_and_the_ledger(
    http, fake, engine, db_url, make_tenant, member, worker_settings
):
    tenant = await make_tenant()
    slug = tenant.slug
    account = await connect(engine, tenant)
    owner_id, owner = await member(tenant, ["owner"])
    _, neighbour = await member(tenant, ["owner"])
    bill = (await issue(http, slug, owner_id, amount=30_000))["bill"]
    assert (bill["number"], bill["status"], bill["outstanding"]) == ("B00000001", "OPEN", 30_000)
    assert [t for _, t, _ in await told(engine, tenant)] == ["bill.issued"]
    assert await mine(http, slug, neighbour) == []
    got = await pay(http, slug, neighbour, bill["id"])  # someone else's bill: not found
    assert (got["__typename"], got["field"]) == ("NotFoundError", "billId")

    # Too much, too little, then 100 yuan of 300.
    for amount in (30_001, 99, 0):
        got = await pay(http, slug, owner, bill["id"], amount)
        assert (got["__typename"], got["field"]) == ("ValidationError", "amount"), got
    first = await pay(http, slug, owner, bill["id"], 10_000)
    assert first["__typename"] == "BillPaymentPayload" and first["stripeAccountId"] == account
    [call] = [
        c
        for c in fake.calls("POST", "/v1/payment_intents")
        if c.body["metadata"].get("bill_id") == bill["id"]
    ]
    assert call.body["amount"] == "10000" and call.body["application_fee_amount"] == "200"
    assert call.body["payment_method_options"] == {"wechat_pay": {"client": "web"}}
    assert call.headers["idempotency-key"] == f"fee:{first['payment']['id']}"
    await deliver(http, fake, fake.succeed(pi(first)))
    await work(worker_settings, engine, db_url)
    [b] = await mine(http, slug, owner)
    assert (b["status"], b["paidAmount"], b["outstanding"]) == ("OPEN", 10_000, 20_000)
    assert [(r["number"], r["amount"]) for r in b["receipts"]] == [("R00000001", 10_000)]

    # The rest; the receipt's PDF in Chinese and in English.
    rest = await pay(http, slug, owner, bill["id"])
    assert rest["payment"]["amount"] == 20_000
    await deliver(http, fake, fake.succeed(pi(rest)))
    await work(worker_settings, engine, db_url)
    [b] = await mine(http, slug, owner)
    assert (b["status"], b["outstanding"]) == ("PAID", 0)
    assert [r["number"] for r in b["receipts"]] == ["R00000001", "R00000002"]
    pdf = await http.get(b["receipts"][1]["pdfUrl"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    words = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    for expected in ("收据", "R00000002", "B00000001", "物业费 2026-12", "¥200"):
        assert expected in words, (expected, words)
    [b_en] = await mine(http, slug, owner, locale="en")
    words = pypdf.PdfReader(io.BytesIO((await http.get(b_en["receipts"][0]["pdfUrl"])).content))
    assert "Receipt" in words.pages[0].extract_text()
    # A tampered or expired link is refused.
    url = b["receipts"][1]["pdfUrl"]
    assert (await http.get(url.replace("locale=zh-CN", "locale=en"))).status_code == 404
    assert (await http.get(url.replace(url.split("sig=")[1], "x" * 24))).status_code == 404
    assert (await http.get(url.replace("exp=", "exp=1"))).status_code == 404
    paid = await pay(http, slug, owner, bill["id"])
    assert (paid["__typename"], paid["field"]) == ("ConflictError", "billId")

    balances, journals = await books(engine, tenant)
    assert journals == 3  # issued, two payments
    assert balances == {
        "fee_income": -30_000,
        "accounts_receivable": 0,
        "stripe_balance": 29_400,
        "platform_fees": 600,
    }
    assert [t for _, t, _ in await told(engine, tenant)] == [
        "bill.issued",
        "bill.paid",
        "bill.paid",
    ]


@pytest.mark.parametrize("first", ["whole", "part"])
async def test_two_payments_for_one_bill_settle_it_whatever_the_order(
    http, fake, engine, db_url, make_tenant, member, worker_settings, first
):
    """Two phones pay one bill of ¥50 at once, all of it (5,000 fen) and 4,999 fen: both
    succeed at Stripe, and their events are applied one after the other, in either order.
    The whole one first: the bill is paid, the other finds it paid and is refunded whole.
    The part first: the whole one settles the last fen and only its excess (4,999) is
    refunded. Either way the bill is paid once, ¥50 in receipts, the books balanced."""
    tenant = await make_tenant()
    await connect(engine, tenant)
    owner_id, owner = await member(tenant, ["owner"])
    bill = (await issue(http, tenant.slug, owner_id, amount=5_000))["bill"]
    whole = await pay(http, tenant.slug, owner, bill["id"])
    part = await pay(http, tenant.slug, owner, bill["id"], 4_999)  # another amount: another intent
    assert (whole["payment"]["amount"], part["payment"]["amount"]) == (5_000, 4_999)
    order = [whole, part] if first == "whole" else [part, whole]
    for started in order:  # each event applied before the next arrives
        await deliver(http, fake, fake.succeed(pi(started)))
        await work(worker_settings, engine, db_url)

    [got] = await mine(http, tenant.slug, owner)
    assert (got["status"], got["paidAmount"], got["outstanding"]) == ("PAID", 5_000, 0)
    receipts = [(r["number"], r["amount"]) for r in got["receipts"]]
    refunded, key = (part, "bill_closed") if first == "whole" else (whole, "bill_overpaid")
    if first == "whole":
        assert receipts == [("R00000001", 5_000)]
    else:
        assert receipts == [("R00000001", 4_999), ("R00000002", 1)]
        words = (
            pypdf.PdfReader(io.BytesIO((await http.get(got["receipts"][1]["pdfUrl"])).content))
            .pages[0]
            .extract_text()
        )
        assert "¥0.01" in words, words
    calls = [
        c
        for c in fake.calls("POST", "/v1/refunds")
        if c.body["payment_intent"] in (pi(whole), pi(part))
    ]
    assert [(c.body["payment_intent"], c.body["amount"]) for c in calls] == [(pi(refunded), "4999")]
    assert calls[0].headers["idempotency-key"] == f"refund:{refunded['payment']['id']}:{key}"
    assert [
        r["amount"] for r in fake.refunds.values() if r["payment_intent"] in (pi(whole), pi(part))
    ] == [4_999]
    rows = {str(p.id): p for p in await payment_rows(engine, tenant)}
    kept, back = rows[whole["payment"]["id"]], rows[part["payment"]["id"]]
    if first == "whole":
        assert (kept.status, kept.refunded_amount) == ("paid", 0)
        assert (back.status, back.refunded_amount, back.refund_reason) == (
            "refunded",
            4_999,
            "bill_closed",
        )
    else:
        assert (kept.status, kept.refunded_amount, kept.refund_reason) == (
            "paid",
            4_999,
            "bill_overpaid",
        )  # 1 fen of it stays on the bill
        assert (back.status, back.refunded_amount) == ("paid", 0)
    # Issued, two payments, one refund of 4,999 with its part of the platform fee (2%).
    balances, journals = await books(engine, tenant)
    assert journals == 4
    assert balances == {
        "fee_income": -5_000,
        "accounts_receivable": 0,
        "stripe_balance": 4_900,
        "platform_fees": 100,
    }
    expected = (
        ["bill.issued", "bill.paid", "bill.refunded"]
        if first == "whole"
        else ["bill.issued", "bill.paid", "bill.paid", "bill.refunded"]
    )
    assert [t for _, t, _ in await told(engine, tenant)] == expected


@pytest.mark.parametrize("third", [3_000, 4_000])
async def test_a_refund_that_reached_stripe_is_not_decided_again_on_the_retry(
    http, fake, engine, db_url, make_tenant, member, worker_settings, monkeypatch, third
):
    """A bill of 100 yuan, three payments: A 60, B 70 (30 over what is left), C 30 or 40. B's
    refund of 30 reaches Stripe and the worker dies before its commit (the refund's journal
    raises); C's payment is applied before the retry. The retry still refunds 30, with the
    same key (Stripe answers the same refund): it never asks Stripe again with another amount
    (C 30 left 10 owed: the key reused, refused) or for all of B (C 40 closed the bill: more
    than is left to refund). C finds the bill paid and goes back whole; bill, receipts,
    payments and books agree, and no job is left."""
    tenant = await make_tenant()
    slug = tenant.slug
    await connect(engine, tenant)
    owner_id, owner = await member(tenant, ["owner"])
    bill = (await issue(http, slug, owner_id, amount=10_000))["bill"]
    a, b, c = [await pay(http, slug, owner, bill["id"], n) for n in (6_000, 7_000, third)]

    crashes = die_after_first_refund(monkeypatch)
    for task in payment_tasks.blueprint.tasks.values():  # a failed run retries in an hour
        monkeypatch.setattr(
            task, "retry_strategy", procrastinate.RetryStrategy(max_attempts=12, wait=3600)
        )

    def refunds(started):
        return [
            c for c in fake.calls("POST", "/v1/refunds") if c.body["payment_intent"] == pi(started)
        ]

    for started in (a, b):
        await deliver(http, fake, fake.succeed(pi(started)))
        await work(worker_settings, engine, db_url)
    assert crashes == [f"payment:{b['payment']['id']}:refund:bill_overpaid"]
    assert [r.body["amount"] for r in refunds(b)] == ["3000"]  # at Stripe, not in our books
    await deliver(http, fake, fake.succeed(pi(c)))  # before the retry
    await work(worker_settings, engine, db_url)
    async with engine.begin() as conn:  # the retry is due now
        await conn.execute(
            text(
                "UPDATE shared.procrastinate_jobs SET scheduled_at = now() "
                "WHERE status = 'todo' AND args->>'tenant' = :t"
            ),
            {"t": slug},
        )
    await work(worker_settings, engine, db_url)

    assert [(r.body["amount"], r.headers["idempotency-key"]) for r in refunds(b)] == [
        ("3000", f"refund:{b['payment']['id']}:bill_overpaid")
    ] * 2
    assert [(r.body["amount"], r.headers["idempotency-key"]) for r in refunds(c)] == [
        (str(third), f"refund:{c['payment']['id']}:bill_closed")
    ]
    made = sorted(
        (r["payment_intent"], r["amount"])
        for r in fake.refunds.values()
        if r["payment_intent"] in (pi(a), pi(b), pi(c))
    )
    assert made == sorted([(pi(b), 3_000), (pi(c), third)])
    rows = {str(p.id): p for p in await payment_rows(engine, tenant)}
    got = {
        k: (p.status, p.refunded_amount, p.refund_reason)
        for k, p in (
            ("a", rows[a["payment"]["id"]]),
            ("b", rows[b["payment"]["id"]]),
            ("c", rows[c["payment"]["id"]]),
        )
    }
    assert got == {
        "a": ("paid", 0, None),
        "b": ("paid", 3_000, "bill_overpaid"),
        "c": ("refunded", third, "bill_closed"),
    }
    [mine_] = await mine(http, slug, owner)
    assert (mine_["status"], mine_["paidAmount"]) == ("PAID", 10_000)
    assert [(r["number"], r["amount"]) for r in mine_["receipts"]] == [
        ("R00000001", 6_000),
        ("R00000002", 4_000),
    ]
    # Issued; A, B and C paid; B's 30 and all of C back, each with its part of the 2% fee.
    balances, journals = await books(engine, tenant)
    assert journals == 6
    assert balances == {
        "fee_income": -10_000,
        "accounts_receivable": 0,
        "stripe_balance": 9_800,
        "platform_fees": 200,
    }
    assert sorted(t for _, t, _ in await told(engine, tenant)) == [
        "bill.issued",
        "bill.paid",
        "bill.paid",
        "bill.refunded",
        "bill.refunded",
    ]
    async with engine.connect() as conn:
        left = (
            await conn.execute(
                text(
                    "SELECT task_name, status FROM "
                    "shared.procrastinate_jobs WHERE args->>'tenant' = :t"
                ),
                {"t": slug},
            )
        ).all()
    assert left == []


async def test_overdue_reminders_once_and_voiding(
    http, fake, engine, make_tenant, member, worker_settings
):
    tenant = await make_tenant()
    slug = tenant.slug
    await connect(engine, tenant)
    owner_id, owner = await member(tenant, ["owner"])
    soon = (await issue(http, slug, owner_id, due_in=2))["bill"]
    later = (await issue(http, slug, owner_id, due_in=20, kind="PARKING_FEE"))["bill"]
    late = (await issue(http, slug, owner_id, due_in=-3))["bill"]
    assert [soon["overdue"], later["overdue"], late["overdue"]] == [False, False, True]
    res = await gql(http, ALL, {"overdue": True}, tenant=slug)
    assert [x["id"] for x in res["data"]["bills"]] == [late["id"]]

    async def remind() -> int:
        async with TenantDatabase(engine).session(tenant) as session:
            n = await payment_tasks.remind_bills.work(session, tenant)
            await session.commit()
        return n

    assert await remind() == 1 and await remind() == 0
    due = [t for t in await told(engine, tenant) if t[1] == "bill.due"]
    assert due == [(owner_id, "bill.due", "payments")]

    got = await gql(http, VOID, {"b": soon["id"], "r": "issued twice"}, tenant=slug)
    assert got["data"]["voidBill"]["bill"]["status"] == "VOID"
    got = await gql(http, VOID, {"b": soon["id"], "r": "again"}, tenant=slug)
    assert got["data"]["voidBill"]["__typename"] == "ConflictError"
    got = await pay(http, slug, owner, soon["id"])
    assert got["__typename"] == "ConflictError"
    balances, _ = await books(engine, tenant)
    assert balances["accounts_receivable"] == 60_000  # two open bills of 300 yuan
    # Owners can't issue, staff can't pay others' bills as theirs.
    fields = {
        "kind": "SERVICE_FEE",
        "title": "x",
        "payerId": str(owner_id),
        "amount": 1,
        "dueOn": "2026-12-01",
    }
    res = await gql(http, ISSUE, {"input": fields}, tenant=slug, token=owner)
    assert res["data"]["issueBill"]["__typename"] == "PermissionDeniedError"
    assert await mine(http, slug, TOKENS[slug]) == []


async def test_bill_numbers_have_no_gaps_under_concurrency(engine, make_tenant, member):
    tenant = await make_tenant()
    owner_id, _ = await member(tenant, ["owner"])
    import asyncio

    from api.identity.auth import Principal

    staff = Principal(
        account_id=uuid.uuid4(),
        tenant_id=uuid.UUID(str(tenant.id)),
        session_id=uuid.uuid4(),
        roles=("admin",),
        permissions=frozenset(),
        scope="all",
    )

    async def one(i: int, fail: bool) -> None:
        async with TenantDatabase(engine).session(tenant) as session:
            await bills.issue(
                session,
                staff,
                bills.BillInput(
                    kind="service_fee",
                    title=f"#{i}",
                    payer_id=owner_id,
                    amount=100,
                    due_on=bills.today(session),
                ),
            )
            if fail:
                await session.rollback()  # a rolled-back bill gives its number back
                return
            await session.commit()

    await asyncio.gather(*(one(i, i % 3 == 0) for i in range(12)))
    async with TenantDatabase(engine).session(tenant) as session:
        numbers = sorted((await session.scalars(select(BillRow.number))).all())
        assert await session.scalar(text(f'SELECT count(*) FROM "{tenant.schema_name}".journal'))
    assert numbers == [f"B{n:08d}" for n in range(1, 9)]
