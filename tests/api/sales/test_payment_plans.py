"""Payment plans, collections (回款) and mortgage cases, through a real gateway that seals
contracts (loopback TSA) and takes payments (loopback Stripe): a plan saved on the draft and
signed with it, due dates rolled to working days, bank transfers with proof, Stripe payments
recorded by their webhook, mortgage stages, reminders and disbursement. The ledger balances
after every step; a refusal (overpayment above all) changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, update

from api.client.models import Client
from api.live.models import OutboxEvent
from api.notify.models import Notification
from api.sales import plan_service
from api.sales.plan_models import Collection
from api.sales.workdays import Calendar
from tenants.sessions import TenantDatabase
from tests.api.importing.helpers import upload
from tests.api.media.helpers import png
from tests.api.payment.helpers import books, connect, deliver, pi_of, work
from tests.api.sales.contract_helpers import (
    buyer_with_subscription,
    code_sent,
    created,
    request_code,
    sign,
)
from tests.api.sales.helpers import data
from tests.api.sales.subscription_helpers import timeline
from tests.conftest import gql, stripe_overrides

PRICE = 300_000_000  # ¥3,000,000.00

UPLOAD = """
mutation($input: MediaTarget!, $file: Upload!) {
  uploadMedia(input: $input, file: $file) {
    __typename
    ... on MediaPayload { media { id visibility } }
    ... on UserError { code message field }
  }
}
"""

LINE = (
    "seq kind loan label amount { minorUnits } scheduledOn dueOn paid { minorUnits } "
    "outstanding { minorUnits } overdue"
)
CASE = """id contractId number loan bank amount { minorUnits } stage
  documents { code label received receivedAt } missing refusedReason collectionId version"""
SCHEDULE = f"""
  contractId number kind structured price {{ minorUnits currency }} collected {{ minorUnits }}
  pending {{ minorUnits }} outstanding {{ minorUnits }} dueNow {{ minorUnits }}
  overdue {{ minorUnits }} calendarKnown
  lines {{ {LINE} }}
  collections {{ id source status amount {{ minorUnits }} proofMediaId reference recordedAt }}
  mortgageCases {{ {CASE} }}
"""
ERR = "... on UserError { code message field }"

SAVE_PLAN = f"""
mutation($input: PaymentPlanInput!) {{
  savePaymentPlan(input: $input) {{
    __typename
    ... on PaymentPlanPayload {{ documentSha256 schedule {{ {SCHEDULE} }} }}
    {ERR}
  }}
}}
"""
SCHEDULE_Q = f"query($c: ID!) {{ contractSchedule(contractId: $c) {{ {SCHEDULE} }} }}"
BANK = f"""
mutation($input: BankTransferInput!) {{
  recordBankTransfer(input: $input) {{
    __typename
    ... on CollectionPayload {{ collection {{ id source status amount {{ minorUnits }} }}
      schedule {{ {SCHEDULE} }} }}
    {ERR}
  }}
}}
"""
START = f"""
mutation($c: ID!, $amount: Long!, $key: String) {{
  startContractPayment(contractId: $c, amount: $amount, platform: IOS, idempotencyKey: $key) {{
    __typename
    ... on ContractPaymentPayload {{ clientSecret stripeAccountId
      payment {{ id kind status amount }} collection {{ id status amount {{ minorUnits }} }} }}
    {ERR}
  }}
}}
"""
OPEN_CASE = f"""
mutation($input: MortgageCaseInput!) {{
  openMortgageCase(input: $input) {{ __typename ... on MortgageCasePayload {{ case {{ {CASE} }} }}
    {ERR} }}
}}
"""
MARK = f"""
mutation($c: ID!, $code: String!, $r: Boolean! = true) {{
  markMortgageDocument(caseId: $c, code: $code, received: $r) {{
    __typename ... on MortgageCasePayload {{ case {{ {CASE} }} }} {ERR} }}
}}
"""
MOVE = f"""
mutation($c: ID!, $step: MortgageStep!, $reason: String! = "") {{
  moveMortgageCase(caseId: $c, step: $step, reason: $reason) {{
    __typename ... on MortgageCasePayload {{ case {{ {CASE} }} }} {ERR} }}
}}
"""
DISBURSE = f"""
mutation($c: ID!, $key: String) {{
  disburseMortgage(caseId: $c, reference: "LN-1", idempotencyKey: $key) {{
    __typename
    ... on DisbursementPayload {{ case {{ {CASE} }}
      collection {{ id source amount {{ minorUnits }} }} schedule {{ {SCHEDULE} }} }}
    {ERR}
  }}
}}
"""
MINE = f"""
query {{ myPurchases {{ contractId number unitId kind price {{ minorUnits }}
  collected {{ minorUnits }} outstanding {{ minorUnits }} dueNow {{ minorUnits }} nextDueOn
  lines {{ {LINE} }} mortgages {{ loan bank stage missing }} }} }}
"""
DECLARE = f"""
mutation($d: Date!, $w: Boolean) {{
  declareWorkday(day: $d, working: $w) {{
    __typename ... on WorkdayPayload {{ workday {{ day working }} }} {ERR} }}
}}
"""


@pytest.fixture(scope="module")
def plans_server(live_server_factory, tsa, fake_stripe, stripe_plans):
    """A gateway that seals contracts (loopback TSA) and takes payments (loopback Stripe)."""
    with live_server_factory(
        signing_tsa_url=tsa.tsa_url,
        live_relay_in_process=False,
        **stripe_overrides(fake_stripe, stripe_plans),
    ) as s:
        yield s


@pytest.fixture
async def http(plans_server):
    async with httpx.AsyncClient(base_url=plans_server.url, timeout=60) as c:
        yield c


@pytest.fixture
def sms(plans_server):
    return plans_server.server.config.app.state.sms


def _kw(token):
    return {} if token is None else {"token": token}


async def _call(http, slug, query, variables, field, token=None) -> dict:
    return data(await gql(http, query, variables, tenant=slug, **_kw(token)), field)


def today() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def day_off_ahead(days: int = 8) -> date:
    """A day off (a weekend or holiday) some days ahead, whose working day comes later."""
    d, cal = today() + timedelta(days=days), Calendar()
    while cal.is_working(d):
        d += timedelta(days=1)
    return d


async def save_plan(http, slug, contract_id, token=None, **plan) -> dict:
    return await _call(
        http,
        slug,
        SAVE_PLAN,
        {"input": {"contractId": contract_id, **plan}},
        "savePaymentPlan",
        token,
    )


async def signed_contract(http, sms, tenant, agent, plan: dict | None = None, price=PRICE):
    """A buyer's contract with ``plan`` saved on the draft, then signed: (contract, unit,
    phone, saved plan answer)."""
    sub, unit, phone, _ = await buyer_with_subscription(http, tenant, agent, price=price)
    contract = await created(http, tenant.slug, sub["id"], agent)
    saved = None
    if plan is not None:
        saved = await save_plan(http, tenant.slug, contract["id"], agent, **plan)
        assert saved["__typename"] == "PaymentPlanPayload", saved
    sent = await request_code(http, tenant.slug, contract["id"], agent)
    assert sent["__typename"] == "ContractSigningCodeSent", sent
    sha = saved["documentSha256"] if saved else contract["documentSha256"]
    assert sent["documentSha256"] == sha
    got = await sign(http, tenant.slug, contract["id"], code_sent(sms, phone), sha, agent)
    assert got["__typename"] == "SalesContractPayload", got
    return got["contract"], unit, phone, saved


async def proof(http, slug, unit_id, visibility="PRIVATE") -> str:
    """A transfer slip uploaded as a private media item of the unit (by the admin)."""
    target = {"ownerKind": "UNIT", "ownerId": unit_id, "kind": "PHOTO", "visibility": visibility}
    res = await upload(http, slug, UPLOAD, {"input": target}, "slip.png", png(8, 8))
    got = data(res, "uploadMedia")
    assert got["__typename"] == "MediaPayload", got
    return got["media"]["id"]


async def bank(http, slug, contract_id, amount, proof_id, token=None, **extra) -> dict:
    variables = {
        "input": {"contractId": contract_id, "amount": amount, "proofMediaId": proof_id, **extra}
    }
    return await _call(http, slug, BANK, variables, "recordBankTransfer", token)


async def schedule(http, slug, contract_id, token=None) -> dict | None:
    return await _call(http, slug, SCHEDULE_Q, {"c": contract_id}, "contractSchedule", token)


def minor(x: dict) -> int:
    return x["minorUnits"]


async def outbox(engine, tenant, kind: str) -> list[dict]:
    async with engine.connect() as conn:
        rows = await conn.scalars(
            select(OutboxEvent.payload)
            .where(OutboxEvent.tenant_id == uuid.UUID(str(tenant.id)), OutboxEvent.kind == kind)
            .order_by(OutboxEvent.id)
        )
        return list(rows.all())


async def collections(engine, tenant) -> int:
    async with TenantDatabase(engine).session(tenant) as session:
        return int(await session.scalar(select(func.count()).select_from(Collection)) or 0)


async def test_a_plan_is_signed_collected_oldest_first_and_books_balance(
    http, sms, make_tenant, member, engine
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    _, finance = await member(tenant, ["finance"])
    sub, unit, phone, _ = await buyer_with_subscription(http, tenant, agent, price=PRICE)
    contract = await created(http, slug, sub["id"], agent)
    first = day_off_ahead()
    rolled = Calendar().roll(first)
    assert rolled > first

    # A combination plan: down payment, provident-fund part, commercial part.
    loan_due = first + timedelta(days=60)
    saved = await save_plan(
        http,
        slug,
        contract["id"],
        agent,
        kind="COMBINATION",
        firstDue=first.isoformat(),
        downPayment=90_000_000,
        providentAmount=60_000_000,
        loanDue=loan_due.isoformat(),
    )
    assert saved["__typename"] == "PaymentPlanPayload", saved
    s = saved["schedule"]
    assert (s["kind"], s["structured"]) == ("COMBINATION", True)
    assert [(x["kind"], x["loan"], minor(x["amount"])) for x in s["lines"]] == [
        ("DOWN_PAYMENT", None, 90_000_000),
        ("LOAN_PART", "PROVIDENT", 60_000_000),
        ("LOAN_PART", "COMMERCIAL", 150_000_000),
    ]
    assert s["lines"][0]["scheduledOn"] == first.isoformat()
    assert s["lines"][0]["dueOn"] == rolled.isoformat()  # rolled to the next working day
    assert saved["documentSha256"] != contract["documentSha256"]  # drawn again with it

    # Replaced by instalments: 100,000,000 down, then 3 of 66,666,666.67 (remainder first).
    saved = await save_plan(
        http,
        slug,
        contract["id"],
        agent,
        kind="INSTALMENTS",
        firstDue=first.isoformat(),
        downPayment=100_000_000,
        instalments=3,
    )
    s = saved["schedule"]
    amounts = [minor(x["amount"]) for x in s["lines"]]
    assert amounts == [100_000_000, 66_666_668, 66_666_666, 66_666_666]
    assert sum(amounts) == PRICE and minor(s["outstanding"]) == PRICE
    # A wrong plan is refused by field and changes nothing.
    bad = await save_plan(
        http,
        slug,
        contract["id"],
        agent,
        kind="COMMERCIAL_MORTGAGE",
        firstDue=first.isoformat(),
        downPayment=1,
        loanDue=loan_due.isoformat(),
    )
    assert (bad["__typename"], bad["field"]) == ("ValidationError", "downPayment"), bad
    assert [minor(x["amount"]) for x in (await schedule(http, slug, contract["id"]))["lines"]] == (
        amounts
    )

    # Signed with the plan in its document.
    sent = await request_code(http, slug, contract["id"], agent)
    assert sent["documentSha256"] == saved["documentSha256"]
    signed = await sign(http, slug, contract["id"], code_sent(sms, phone), sent["documentSha256"])
    assert signed["__typename"] == "SalesContractPayload", signed
    assert [minor(x["amount"]) for x in signed["contract"]["paymentPlan"]] == amounts
    late = await save_plan(
        http, slug, contract["id"], agent, kind="FULL", firstDue=first.isoformat()
    )
    assert (late["__typename"], late["field"]) == ("ConflictError", "contractId"), late

    # A bank transfer with proof: the down payment, then part of the first instalment.
    slip = await proof(http, slug, unit)
    got = await bank(http, slug, contract["id"], 120_000_000, slip, finance, reference="TX-1")
    assert got["__typename"] == "CollectionPayload", got
    s = got["schedule"]
    assert [(minor(x["paid"]), minor(x["outstanding"])) for x in s["lines"]] == [
        (100_000_000, 0),
        (20_000_000, 46_666_668),
        (0, 66_666_666),
        (0, 66_666_666),
    ]
    assert (minor(s["collected"]), minor(s["outstanding"])) == (120_000_000, 180_000_000)
    [c] = s["collections"]
    assert (c["source"], c["status"], c["proofMediaId"], c["reference"]) == (
        "BANK_TRANSFER",
        "RECORDED",
        slip,
        "TX-1",
    )
    balances, journals = await books(engine, tenant)
    assert (balances, journals) == ({"bank": 120_000_000, "sale_receipts": -120_000_000}, 1)
    last = (await timeline(http, slug, unit))["timeline"][-1]
    assert last["data"]["step"] == "collection_recorded" and last["refId"] == c["id"]
    assert last["data"]["collected"] == 120_000_000
    [event] = await outbox(engine, tenant, "sales.collection.recorded")
    assert (event["contract_id"], event["amount_minor"], event["collected_total_minor"]) == (
        contract["id"],
        120_000_000,
        120_000_000,
    )
    assert event["price_minor"] == PRICE

    # More than is outstanding: a typed error, nothing changed.
    for amount in (180_000_001, 2**63 - 1):
        over = await bank(http, slug, contract["id"], amount, slip, finance)
        assert (over["__typename"], over["field"]) == ("OverpaymentError", "amount"), over
    for amount in (0, -1):
        neg = await bank(http, slug, contract["id"], amount, slip, finance)
        assert (neg["__typename"], neg["field"]) == ("ValidationError", "amount"), neg
    res = await gql(
        http,
        BANK,
        {"input": {"contractId": contract["id"], "amount": str(2**63), "proofMediaId": slip}},
        tenant=slug,
        token=finance,
    )
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", res
    assert await books(engine, tenant) == (balances, journals)
    assert await collections(engine, tenant) == 1
    assert len(await outbox(engine, tenant, "sales.collection.recorded")) == 1

    # Proof: unknown, public; the same key again gives the same collection, once.
    nothing = await bank(http, slug, contract["id"], 1, str(uuid.uuid4()), finance)
    assert (nothing["__typename"], nothing["field"]) == ("NotFoundError", "proofMediaId")
    public = await proof(http, slug, unit, "PUBLIC")
    shown = await bank(http, slug, contract["id"], 1, public, finance)
    assert (shown["__typename"], shown["field"]) == ("ValidationError", "proofMediaId")
    once = await bank(http, slug, contract["id"], 500, slip, finance, idempotencyKey="slip-2")
    again = await bank(http, slug, contract["id"], 500, slip, finance, idempotencyKey="slip-2")
    assert once["collection"]["id"] == again["collection"]["id"]
    assert minor(again["schedule"]["collected"]) == 120_000_500
    other = await bank(http, slug, contract["id"], 501, slip, finance, idempotencyKey="slip-2")
    assert (other["__typename"], other["field"]) == ("ConflictError", "idempotencyKey")
    assert (await books(engine, tenant))[0]["bank"] == 120_000_500

    # The agent reads (own client) but does not record transfers; another tenant sees nothing.
    assert minor((await schedule(http, slug, contract["id"], agent))["collected"]) == 120_000_500
    denied = await bank(http, slug, contract["id"], 1, slip, agent)
    assert denied["__typename"] == "PermissionDeniedError", denied
    stranger = await make_tenant()
    _, their_finance = await member(stranger, ["finance"])
    alien = await bank(http, stranger.slug, contract["id"], 1, slip, their_finance)
    # both ids are the first company's: the proof is looked up first
    assert (alien["__typename"], alien["field"]) == ("NotFoundError", "proofMediaId"), alien
    assert await schedule(http, stranger.slug, contract["id"], their_finance) is None
    assert await schedule(http, slug, "not-an-id") is None


async def test_concurrent_collections_never_exceed_the_price(
    http, sms, make_tenant, member, engine
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    _, finance = await member(tenant, ["finance"])
    price = 1_000_000
    contract, unit, _, _ = await signed_contract(http, sms, tenant, agent, price=price)
    slip = await proof(http, slug, unit)
    answers = await asyncio.gather(
        *(bank(http, slug, contract["id"], price // 4, slip, finance) for _ in range(7))
    )
    kinds = sorted(a["__typename"] for a in answers)
    assert kinds == ["CollectionPayload"] * 4 + ["OverpaymentError"] * 3, kinds
    s = await schedule(http, slug, contract["id"])
    assert (minor(s["collected"]), minor(s["outstanding"])) == (price, 0)
    [line] = s["lines"]  # no plan saved: the contract's installment, read as it is
    assert (s["kind"], s["structured"], minor(line["paid"])) == ("FULL", False, price)
    balances, journals = await books(engine, tenant)
    assert (balances, journals) == ({"bank": price, "sale_receipts": -price}, 4)


async def test_mortgage_case_stages_reminders_and_disbursement(
    http, sms, make_tenant, member, engine
):
    tenant = await make_tenant()
    slug = tenant.slug
    agent_id, agent = await member(tenant, ["agent"])
    _, finance = await member(tenant, ["finance"])
    owner_id, owner = await member(tenant, ["owner"])
    first = today() + timedelta(days=3)
    contract, unit, _, _ = await signed_contract(
        http,
        sms,
        tenant,
        agent,
        plan={
            "kind": "COMMERCIAL_MORTGAGE",
            "firstDue": first.isoformat(),
            "downPayment": 90_000_000,
            "loanDue": (first + timedelta(days=40)).isoformat(),
        },
    )
    async with TenantDatabase(engine).session(tenant) as session:  # the buyer's own account
        await session.execute(
            update(Client)
            .where(Client.id == uuid.UUID(contract["clientId"]))
            .values(account_id=owner_id)
        )
        await session.commit()
    slip = await proof(http, slug, unit)
    down = await bank(http, slug, contract["id"], 90_000_000, slip, finance)
    assert down["__typename"] == "CollectionPayload", down

    case_input = {
        "contractId": contract["id"],
        "loan": "COMMERCIAL",
        "bank": "招商银行",
        "amount": 210_000_000,
    }
    opened = await _call(http, slug, OPEN_CASE, {"input": case_input}, "openMortgageCase", agent)
    assert opened["__typename"] == "MortgageCasePayload", opened
    case = opened["case"]
    assert case["stage"] == "COLLECTING" and len(case["missing"]) == 7
    twice = await _call(http, slug, OPEN_CASE, {"input": case_input}, "openMortgageCase", agent)
    assert (twice["__typename"], twice["field"]) == ("ConflictError", "loan"), twice
    too_much = {**case_input, "loan": "PROVIDENT", "amount": PRICE + 1}
    got = await _call(http, slug, OPEN_CASE, {"input": too_much}, "openMortgageCase", agent)
    assert (got["__typename"], got["field"]) == ("ValidationError", "amount"), got

    # Submitting with documents missing, disbursing before approval: refused.
    early = await _call(http, slug, MOVE, {"c": case["id"], "step": "SUBMIT"}, "moveMortgageCase")
    assert (early["__typename"], early["field"]) == ("ConflictError", "step"), early
    assert "身份证" in early["message"]
    early = await _call(http, slug, DISBURSE, {"c": case["id"]}, "disburseMortgage", finance)
    assert (early["__typename"], early["field"]) == ("ConflictError", "caseId"), early

    # The daily job reminds the agent and the buyer, once a day.
    async def remind(at=None) -> int:
        async with TenantDatabase(engine).session(tenant) as session:
            n = await plan_service.remind_missing_documents(session, now=at)
            await session.commit()
            return n

    assert await remind() == 1
    assert await remind() == 0
    async with TenantDatabase(engine).session(tenant) as session:
        told = (
            await session.scalars(
                select(Notification).where(Notification.template == "mortgage.documents_missing")
            )
        ).all()
    assert {n.account_id for n in told} == {agent_id, owner_id}
    assert all(n.params["count"] == 7 and "身份证" in n.params["missing"] for n in told)
    mine = await _call(http, slug, MINE, {}, "myPurchases", owner)
    [purchase] = mine
    assert (purchase["kind"], purchase["mortgages"][0]["stage"]) == (
        "COMMERCIAL_MORTGAGE",
        "COLLECTING",
    )
    assert len(purchase["mortgages"][0]["missing"]) == 7
    assert minor(purchase["outstanding"]) == 210_000_000

    unknown = await _call(
        http, slug, MARK, {"c": case["id"], "code": "x" * 500}, "markMortgageDocument"
    )
    assert (unknown["__typename"], unknown["field"]) == ("NotFoundError", "code"), unknown
    for doc in case["documents"]:
        marked = await _call(
            http, slug, MARK, {"c": case["id"], "code": doc["code"]}, "markMortgageDocument", agent
        )
        assert marked["__typename"] == "MortgageCasePayload", marked
    assert marked["case"]["missing"] == []
    assert await remind(datetime.now(ZoneInfo("UTC")) + timedelta(days=2)) == 0  # none missing
    moved = await _call(
        http, slug, MOVE, {"c": case["id"], "step": "SUBMIT"}, "moveMortgageCase", agent
    )
    assert moved["case"]["stage"] == "SUBMITTED"
    closed = await _call(
        http,
        slug,
        MARK,
        {"c": case["id"], "code": "id_card", "r": False},
        "markMortgageDocument",
        agent,
    )
    assert (closed["__typename"], closed["field"]) == ("ConflictError", "caseId"), closed
    moved = await _call(
        http, slug, MOVE, {"c": case["id"], "step": "APPROVE"}, "moveMortgageCase", agent
    )
    assert moved["case"]["stage"] == "APPROVED"
    again = await _call(http, slug, MOVE, {"c": case["id"], "step": "APPROVE"}, "moveMortgageCase")
    assert (again["__typename"], again["field"]) == ("ConflictError", "step"), again
    denied = await _call(http, slug, DISBURSE, {"c": case["id"]}, "disburseMortgage", agent)
    assert denied["__typename"] == "PermissionDeniedError", denied

    paid = await _call(
        http, slug, DISBURSE, {"c": case["id"], "key": "ln-1"}, "disburseMortgage", finance
    )
    assert paid["__typename"] == "DisbursementPayload", paid
    assert (paid["case"]["stage"], paid["collection"]["source"]) == ("DISBURSED", "MORTGAGE")
    assert paid["case"]["collectionId"] == paid["collection"]["id"]
    s = paid["schedule"]
    assert (minor(s["collected"]), minor(s["outstanding"])) == (PRICE, 0)
    assert all(minor(x["outstanding"]) == 0 for x in s["lines"])
    same = await _call(
        http, slug, DISBURSE, {"c": case["id"], "key": "ln-1"}, "disburseMortgage", finance
    )
    assert same["collection"]["id"] == paid["collection"]["id"]
    refuse = await _call(
        http, slug, MOVE, {"c": case["id"], "step": "REFUSE", "reason": "x"}, "moveMortgageCase"
    )
    assert (refuse["__typename"], refuse["field"]) == ("ConflictError", "step"), refuse
    balances, journals = await books(engine, tenant)
    assert (balances, journals) == ({"bank": PRICE, "sale_receipts": -PRICE}, 2)
    steps = [e["data"].get("step") for e in (await timeline(http, slug, unit))["timeline"]]
    for step in (
        "payment_plan_set",
        "mortgage_collecting",
        "mortgage_submitted",
        "mortgage_approved",
        "mortgage_disbursed",
        "collection_recorded",
    ):
        assert step in steps, (step, steps)
    [purchase] = await _call(http, slug, MINE, {}, "myPurchases", owner)
    assert (purchase["mortgages"][0]["stage"], minor(purchase["outstanding"])) == ("DISBURSED", 0)
    assert purchase["nextDueOn"] is None

    # A provident-fund case refused (a reason is required); nothing more can be collected.
    pf = {**case_input, "loan": "PROVIDENT", "amount": 1, "documents": ["公积金缴存证明"]}
    other = (await _call(http, slug, OPEN_CASE, {"input": pf}, "openMortgageCase", agent))["case"]
    assert [d["code"] for d in other["documents"]] == ["doc1"]
    bare = await _call(http, slug, MOVE, {"c": other["id"], "step": "REFUSE"}, "moveMortgageCase")
    assert (bare["__typename"], bare["field"]) == ("ValidationError", "reason"), bare
    refused = await _call(
        http,
        slug,
        MOVE,
        {"c": other["id"], "step": "REFUSE", "reason": "收入不足"},
        "moveMortgageCase",
    )
    assert (refused["case"]["stage"], refused["case"]["refusedReason"]) == ("REFUSED", "收入不足")
    # Another tenant's case id: not found.
    stranger = await make_tenant()
    alien = await _call(
        http, stranger.slug, MOVE, {"c": case["id"], "step": "APPROVE"}, "moveMortgageCase"
    )
    assert (alien["__typename"], alien["field"]) == ("NotFoundError", "caseId"), alien


async def test_a_stripe_payment_is_recorded_by_its_webhook(
    http, sms, fake_stripe, engine, db_url, make_tenant, member, stripe_worker_settings
):
    tenant = await make_tenant()
    slug = tenant.slug
    account = await connect(engine, tenant)
    _, agent = await member(tenant, ["agent"])
    _, finance = await member(tenant, ["finance"])
    price = 2_000_000
    contract, unit, _, _ = await signed_contract(http, sms, tenant, agent, price=price)

    async def start(amount, key=None):
        return await _call(
            http,
            slug,
            START,
            {"c": contract["id"], "amount": amount, "key": key},
            "startContractPayment",
            agent,
        )

    got = await start(1_000_000, "pay-1")
    assert got["__typename"] == "ContractPaymentPayload", got
    assert (got["payment"]["kind"], got["stripeAccountId"]) == ("COLLECTION", account)
    assert (await start(1_000_000, "pay-1"))["payment"]["id"] == got["payment"]["id"]
    [call] = [
        c
        for c in fake_stripe.calls("POST", "/v1/payment_intents")
        if c.body["metadata"].get("contract_id") == contract["id"]
    ]
    assert call.headers["idempotency-key"] == f"collection:{got['payment']['id']}"
    s = await schedule(http, slug, contract["id"])
    assert (minor(s["pending"]), minor(s["collected"])) == (1_000_000, 0)
    # Under way, it counts against what is outstanding.
    slip = await proof(http, slug, unit)
    over = await bank(http, slug, contract["id"], 1_000_001, slip, finance)
    assert over["__typename"] == "OverpaymentError", over
    over = await start(1_000_001)
    assert over["__typename"] == "OverpaymentError", over

    pi = pi_of(got)
    assert (await deliver(http, fake_stripe, fake_stripe.succeed(pi))).status_code == 200
    await work(stripe_worker_settings, engine, db_url)
    s = await schedule(http, slug, contract["id"])
    assert (minor(s["pending"]), minor(s["collected"])) == (0, 1_000_000)
    [c] = s["collections"]
    assert (c["source"], c["status"]) == ("STRIPE", "RECORDED")
    balances, _ = await books(engine, tenant)
    assert balances == {
        "stripe_balance": 980_000,
        "platform_fees": 20_000,
        "sale_receipts": -1_000_000,
    }
    [event] = await outbox(engine, tenant, "sales.collection.recorded")
    assert (event["source"], event["collected_total_minor"]) == ("stripe", 1_000_000)
    steps = [e["data"].get("step") for e in (await timeline(http, slug, unit))["timeline"]]
    assert "collection_recorded" in steps


async def test_declared_days_move_the_due_dates(http, sms, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    first = day_off_ahead(10)
    rolled = Calendar().roll(first)
    off = await _call(http, slug, DECLARE, {"d": rolled.isoformat(), "w": False}, "declareWorkday")
    assert off["workday"] == {"day": rolled.isoformat(), "working": False}
    denied = await _call(
        http, slug, DECLARE, {"d": rolled.isoformat(), "w": True}, "declareWorkday", agent
    )
    assert denied["__typename"] == "PermissionDeniedError", denied
    far = await _call(http, slug, DECLARE, {"d": "2999-01-01", "w": True}, "declareWorkday")
    assert (far["__typename"], far["field"]) == ("ValidationError", "day"), far
    sub, _, _, _ = await buyer_with_subscription(http, tenant, agent, price=PRICE)
    contract = await created(http, slug, sub["id"], agent)
    saved = await save_plan(
        http, slug, contract["id"], agent, kind="FULL", firstDue=first.isoformat()
    )
    [line] = saved["schedule"]["lines"]
    assert line["dueOn"] == Calendar({rolled: False}).roll(first).isoformat() != rolled.isoformat()
    # The declaration removed: the official calendar again.
    gone = await _call(http, slug, DECLARE, {"d": rolled.isoformat(), "w": None}, "declareWorkday")
    assert gone["workday"] is None
    saved = await save_plan(
        http, slug, contract["id"], agent, kind="FULL", firstDue=first.isoformat()
    )
    assert saved["schedule"]["lines"][0]["dueOn"] == rolled.isoformat()
    past = await save_plan(
        http,
        slug,
        contract["id"],
        agent,
        kind="FULL",
        firstDue=(today() - timedelta(days=1)).isoformat(),
    )
    assert (past["__typename"], past["field"]) == ("ValidationError", "firstDue"), past


AMEND = """
mutation($input: AmendContractInput!) {
  amendContract(input: $input) {
    __typename ... on SalesContractPayload { contract { id status revision } } {ERR}
  }
}
""".replace("{ERR}", ERR)


async def test_an_amendment_changes_the_plan_and_keeps_what_was_collected(
    http, sms, make_tenant, member, engine
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    _, finance = await member(tenant, ["finance"])
    first = today() + timedelta(days=5)
    contract, unit, phone, _ = await signed_contract(
        http, sms, tenant, agent, plan={"kind": "FULL", "firstDue": first.isoformat()}
    )
    slip = await proof(http, slug, unit)
    assert (await bank(http, slug, contract["id"], 50_000_000, slip, finance))[
        "__typename"
    ] == "CollectionPayload"
    amended = await _call(
        http,
        slug,
        AMEND,
        {"input": {"contractId": contract["id"], "reason": "分期付款"}},
        "amendContract",
        agent,
    )
    draft = amended["contract"]
    assert (draft["status"], draft["revision"]) == ("DRAFT", 2), amended
    # The draft amendment keeps the plan it amends until one is saved on it.
    kept = await schedule(http, slug, draft["id"])
    assert (kept["kind"], kept["structured"], minor(kept["collected"])) == (
        "FULL",
        True,
        50_000_000,
    )
    saved = await save_plan(
        http,
        slug,
        draft["id"],
        agent,
        kind="INSTALMENTS",
        firstDue=first.isoformat(),
        instalments=3,
    )
    assert saved["__typename"] == "PaymentPlanPayload", saved
    sent = await request_code(http, slug, draft["id"], agent)
    assert sent["documentSha256"] == saved["documentSha256"]
    signed = await sign(http, slug, draft["id"], code_sent(sms, phone), sent["documentSha256"])
    assert signed["contract"]["status"] == "SIGNED", signed
    s = await schedule(http, slug, draft["id"])
    assert [minor(x["paid"]) for x in s["lines"]] == [50_000_000, 0, 0]
    assert minor(s["outstanding"]) == PRICE - 50_000_000
    # The superseded revision takes no money; the one in force does.
    old = await bank(http, slug, contract["id"], 1, slip, finance)
    assert (old["__typename"], old["field"]) == ("ConflictError", "contractId"), old
    new = await bank(http, slug, draft["id"], PRICE - 50_000_000, slip, finance)
    assert minor(new["schedule"]["outstanding"]) == 0
    over = await bank(http, slug, draft["id"], 1, slip, finance)
    assert over["__typename"] == "OverpaymentError", over
    assert (await books(engine, tenant))[0] == {"bank": PRICE, "sale_receipts": -PRICE}
