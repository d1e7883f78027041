"""Factories and steps of the payment tests: a tenant with units, deposits started through
GraphQL, webhooks delivered from the loopback Stripe, the job worker run in process, and reads
of payments and books."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from api.payment import ledger
from api.payment.models import Journal, Payment, StripeEvent
from tenants.models import Tenant
from tenants.registry import TenantInfo
from tenants.sessions import TenantDatabase
from tests.api.payment.conftest import SECRET
from tests.api.processes import drain
from tests.api.unit.helpers import inventory
from tests.conftest import TOKENS, gql

START = """
mutation($u: ID!, $p: PaymentPlatform!) {
  startDeposit(unitId: $u, platform: $p) {
    __typename
    ... on DepositPayload { clientSecret publishableKey stripeAccountId holdExpiresAt
      payment { id status amount currency } }
    ... on UserError { code message field }
  }
}
"""


async def connect(engine, tenant) -> str:
    account = f"acct_{tenant.slug.replace('-', '')[:20]}"
    async with engine.begin() as conn:
        await conn.execute(
            update(Tenant)
            .where(Tenant.id == uuid.UUID(str(tenant.id)))
            .values(stripe_account_id=account)
        )
    return account


async def work(settings, engine, db_url) -> None:
    """Burst workers until every job due now has run."""
    await asyncio.wait_for(drain(engine, db_url, settings), 60)


async def deliver(http, fake, event, *, secret=SECRET, timestamp=None, body=None):
    raw, header = fake.sign(event, secret, timestamp)
    return await http.post(
        "/webhooks/stripe",
        content=body if body is not None else raw,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


async def start(http, slug, unit_id, token=None, platform="IOS") -> dict:
    res = await gql(
        http, START, {"u": unit_id, "p": platform}, tenant=slug, token=token or TOKENS[slug]
    )
    assert "errors" not in res, res
    return res["data"]["startDeposit"]


async def payment_rows(engine, tenant) -> list[Payment]:
    async with TenantDatabase(engine).session(tenant) as session:
        return list((await session.scalars(select(Payment).order_by(Payment.id))).all())


async def books(engine, tenant) -> tuple[dict, int]:
    """Account balances and the number of journals; asserts every journal balances."""
    async with TenantDatabase(engine).session(tenant) as session:
        assert await ledger.unbalanced(session) == []
        n = await session.scalar(select(func.count()).select_from(Journal))
        return await ledger.balances(session), n


async def events(engine, **where) -> list[StripeEvent]:
    async with engine.connect() as conn:
        stmt = select(StripeEvent)
        for k, v in where.items():
            stmt = stmt.where(getattr(StripeEvent, k) == v)
        return list((await conn.execute(stmt)).all())


async def told(engine, tenant) -> list[tuple]:
    from api.notify.models import Notification

    async with TenantDatabase(engine).session(tenant) as session:
        rows = await session.execute(
            select(Notification.account_id, Notification.template, Notification.category)
            .where(Notification.category == "payments")
            .order_by(Notification.created_at)
        )
        return [tuple(r) for r in rows.all()]


def die_after_first_refund(monkeypatch) -> list[str]:
    """The first refund's journal raises (a worker dying after Stripe refunded, before the
    commit); returns the list of the sources that crashed."""
    real_post, crashes = ledger.post, []

    async def crash_after_refund(session, source, *a, **kw):
        if ":refund:" in source and not crashes:
            crashes.append(source)
            raise RuntimeError("worker died")
        return await real_post(session, source, *a, **kw)

    monkeypatch.setattr(ledger, "post", crash_after_refund)
    return crashes


def pi_of(started: dict) -> str:
    return started["clientSecret"].split("_secret_")[0]


async def tenant_with_unit(http, engine, make_tenant, n=1, **regional):
    tenant = await make_tenant(**regional)
    inv = await inventory(http, tenant.slug, floors=1, per_floor=n)
    account = await connect(engine, tenant)
    return tenant, account, [u["id"] for u in inv["units"]]


BILL_FIELDS = """
  id number kind title period payerId amount paidAmount outstanding dueOn status overdue
  receipts { id number amount pdfUrl(locale: $locale) }
"""


ISSUE = (
    """
mutation($input: IssueBillInput!, $locale: String! = "zh-CN") {
  issueBill(input: $input) {
    __typename
    ... on BillPayload { bill { """
    + BILL_FIELDS
    + """ } }
    ... on UserError { code message field }
  }
}
"""
)


MINE = 'query($locale: String! = "zh-CN") { myBills { ' + BILL_FIELDS + " } }"


ALL = (
    'query($overdue: Boolean! = false, $locale: String! = "en") { bills(overdue: $overdue) { '
    + BILL_FIELDS
    + " } }"
)


PAY = """
mutation($b: ID!, $a: Long) {
  payBill(billId: $b, platform: WEB, amount: $a) {
    __typename
    ... on BillPaymentPayload { clientSecret stripeAccountId payment { id amount status } }
    ... on UserError { code message field }
  }
}
"""


async def issue(http, slug, payer, amount=30_000, due_in=10, on=None, **extra) -> dict:
    """Bill ``payer``, due ``due_in`` days after ``on`` (default: today in the default zone)."""
    today = on or TenantInfo("", slug, "", "", "active", "free").today()
    fields = {
        "kind": "PROPERTY_FEE",
        "title": "物业费 2026-12",
        "payerId": str(payer),
        "amount": amount,
        "dueOn": (today + timedelta(days=due_in)).isoformat(),
        "period": "2026-12",
        **extra,
    }
    res = await gql(http, ISSUE, {"input": fields}, tenant=slug)
    assert "errors" not in res, res
    return res["data"]["issueBill"]


async def pay(http, slug, token, bill_id, amount=None) -> dict:
    res = await gql(http, PAY, {"b": bill_id, "a": amount}, tenant=slug, token=token)
    assert "errors" not in res, res
    return res["data"]["payBill"]


async def mine(http, slug, token, locale="zh-CN") -> list[dict]:
    res = await gql(http, MINE, {"locale": locale}, tenant=slug, token=token)
    assert "errors" not in res, res
    return res["data"]["myBills"]


def pi(started: dict) -> str:
    return started["clientSecret"].split("_secret_")[0]
