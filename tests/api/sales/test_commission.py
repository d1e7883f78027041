"""Commissions: a rule per project and channel (fixed or basis points, tiers by volume, splits
among agents, teams and the channel); a signed contract makes its commission (payable, or
pending until a share of the price is collected), approved (accrued) by someone who earns none
of it, paid by finance, clawed back when the contract is canceled; the ledger balances after
every step; refusals are typed and change nothing."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from api.errors import NotFound, ValidationFailed
from api.live import outbox
from api.sales import commission as service
from api.sales.commission_models import Commission, CommissionRule
from tenants.sessions import TenantDatabase
from tests.api.client.helpers import CREATE, join, team
from tests.api.sales.commission_helpers import (
    DEACTIVATE_RULE,
    MINE,
    RULES,
    books,
    channel,
    commissions,
    decide,
    pay,
    register,
    save_rule,
    visit,
)
from tests.api.sales.contract_helpers import (
    CANCEL,
    PHONES,
    code_sent,
    created,
    request_code,
    sign,
)
from tests.api.sales.helpers import data
from tests.api.sales.subscription_helpers import reserve, subscribed
from tests.api.unit.helpers import inventory
from tests.conftest import gql

PRICE = 300_000_000  # ¥3,000,000.00


async def _buyer(http, slug, agent, name="王五") -> tuple[str, str]:
    n = next(PHONES)
    phone = f"+86139{n:08d}"
    variables = {"input": {"name": name, "phone": phone, "idNumber": f"1101011990{n:08d}"}}
    got = data(await gql(http, CREATE, variables, tenant=slug, token=agent), "createClient")
    return got["client"]["id"], phone


async def _sold(http, sms, slug, agent, unit, buyer, phone) -> dict:
    """The unit reserved, subscribed by the buyer, its contract drawn and signed."""
    await reserve(http, slug, unit)
    sub = await subscribed(http, slug, unit, buyer, agent)
    contract = await created(http, slug, sub["id"], agent)
    sent = await request_code(http, slug, contract["id"], agent)
    assert sent["__typename"] == "ContractSigningCodeSent", sent
    got = await sign(
        http, slug, contract["id"], code_sent(sms, phone), contract["documentSha256"], agent
    )
    assert got["__typename"] == "SalesContractPayload", got
    return got["contract"]


async def test_commissions_are_payable_approved_paid_and_clawed_back_with_the_books_balanced(
    http, sms, make_tenant, member, engine
):
    tenant = await make_tenant()
    slug = tenant.slug
    agent_id, agent = await member(tenant, ["agent"], name="李经理")
    manager_id, manager = await member(tenant, ["manager"], name="王主管")
    _, finance = await member(tenant, ["finance"], name="财务")
    inv = await inventory(http, slug, floors=1, per_floor=3, price=PRICE, project_name="湾区")
    project, units = inv["project"]["id"], [u["id"] for u in inv["units"]]
    company = await team(http, slug, "公司", "company")
    office = await team(http, slug, "门店", "office", company)
    sales_team = await team(http, slug, "一组", "team", office)
    await join(http, slug, sales_team, agent_id)
    agency = await channel(http, slug, "链家渠道")

    # The project's default rule: 1.5%, 2.0% from the 2nd contract of the month; 60% to the
    # contract's agent, 10% to the team, 30% to the channel holding the buyer.
    got = await save_rule(
        http,
        slug,
        projectId=project,
        basis="PERCENT",
        rateBp=150,
        tierMeasure="COUNT",
        period="MONTH",
        tiers=[{"start": 2, "rateBp": 200}],
        splits=[
            {"kind": "AGENT", "shareBp": 6000},
            {"kind": "TEAM", "shareBp": 1000, "teamId": sales_team},
            {"kind": "CHANNEL", "shareBp": 3000},
        ],
    )
    assert got["__typename"] == "CommissionRulePayload", got
    rule = got["rule"]
    assert (rule["basis"], rule["rateBp"], rule["condition"]) == ("PERCENT", 150, "SIGNED")

    # Buyer 1 came through the agency: registered (报备), visit code scanned at the site.
    buyer1, phone1 = await _buyer(http, slug, agent)
    reg = await register(http, slug, agency["id"], project, "王五", phone1[3:], token=agent)
    assert reg["__typename"] == "ChannelRegistrationPayload" and not reg["clientCreated"], reg
    assert reg["registration"]["clientId"] == buyer1  # found by phone, not duplicated
    seen = await visit(http, slug, reg["registration"]["code"], token=manager)
    assert seen["registration"]["status"] == "VISITED", seen

    assert await books(engine, tenant) == {}
    c1 = await _sold(http, sms, slug, agent, units[0], buyer1, phone1)
    [k1] = await commissions(http, slug, c=c1["id"])
    expected = (c1["price"]["minorUnits"] * 150 + 5000) // 10000
    assert (k1["status"], k1["amount"]["minorUnits"], k1["rateBp"]) == ("PAYABLE", expected, 150)
    assert (k1["tier"], k1["volume"], k1["channelId"]) == (None, 1, agency["id"])
    by_kind = {line["kind"]: line for line in k1["lines"]}
    assert by_kind["AGENT"]["accountId"] == str(agent_id)
    assert by_kind["TEAM"]["teamId"] == sales_team
    assert by_kind["CHANNEL"]["channelId"] == agency["id"]
    parts = [line["amount"]["minorUnits"] for line in k1["lines"]]
    assert sum(parts) == expected
    assert parts[1:] == [expected * 1000 // 10000, expected * 3000 // 10000]
    assert await books(engine, tenant) == {}  # nothing posted before the approval

    # The agent earns part of it: cannot approve (no permission); the manager approves.
    res = await gql(http, DECIDE_Q, {"c": k1["id"]}, tenant=slug, token=agent)
    assert res["data"]["decideCommission"]["__typename"] == "PermissionDeniedError", res
    approved = await decide(http, slug, k1["id"], token=manager, note="ok")
    assert approved["commission"]["status"] == "APPROVED", approved
    assert approved["commission"]["approvedBy"] == str(manager_id)
    assert await books(engine, tenant) == {
        "commission_expense": expected,
        "commissions_payable": -expected,
    }
    again = await decide(http, slug, k1["id"], token=manager)
    assert (again["__typename"], again["field"]) == ("ConflictError", "commissionId"), again
    paid = await pay(http, slug, k1["id"], reference="TRF-0001", token=finance)
    assert (paid["commission"]["status"], paid["commission"]["payReference"]) == (
        "PAID",
        "TRF-0001",
    )
    assert await books(engine, tenant) == {
        "commission_expense": expected,
        "commissions_payable": 0,
        "bank": -expected,
    }

    # Buyer 2, nobody's channel: the second contract this month reaches the 2.0% tier and the
    # channel's share is left out. Approved, paid, then the contract is canceled: clawed back.
    buyer2, phone2 = await _buyer(http, slug, agent, name="赵六")
    c2 = await _sold(http, sms, slug, agent, units[1], buyer2, phone2)
    [k2] = await commissions(http, slug, c=c2["id"])
    full = (c2["price"]["minorUnits"] * 200 + 5000) // 10000
    assert (k2["tier"], k2["volume"], k2["rateBp"], k2["channelId"]) == (0, 2, 200, None)
    assert [line["kind"] for line in k2["lines"]] == ["AGENT", "TEAM"]
    amount2 = k2["amount"]["minorUnits"]
    parts2 = service.split(full, [6000, 1000, 3000])
    assert amount2 == parts2[0] + parts2[1] and sum(parts2) == full
    assert (await decide(http, slug, k2["id"], token=manager))["commission"]["status"] == "APPROVED"
    assert (await pay(http, slug, k2["id"], token=finance))["commission"]["status"] == "PAID"
    mine = data(await gql(http, MINE, {}, tenant=slug, token=agent), "myCommissions")
    assert {e["node"]["id"] for e in mine["edges"]} == {k1["id"], k2["id"]}
    canceled = data(
        await gql(http, CANCEL, {"c": c2["id"], "reason": "解约: 贷款未批"}, tenant=slug),
        "cancelContract",
    )
    assert canceled["contract"]["status"] == "CANCELED", canceled
    [k2] = await commissions(http, slug, c=c2["id"])
    assert (k2["status"], k2["clawedBack"]["minorUnits"]) == ("CLAWED_BACK", amount2)
    assert k2["endReason"] == "解约: 贷款未批"
    assert await books(engine, tenant) == {
        "commission_expense": expected,
        "commissions_payable": 0,
        "bank": -(expected + amount2),
        "commission_clawbacks": amount2,
    }
    # A clawed-back commission is not paid again, and its contract's cancellation is final.
    late = await pay(http, slug, k2["id"], token=finance)
    assert (late["__typename"], late["field"]) == ("ConflictError", "commissionId"), late
    assert (await commissions(http, slug, c=c1["id"]))[0]["status"] == "PAID"


DECIDE_Q = """
mutation($c: ID!) { decideCommission(commissionId: $c, approve: true) { __typename } }
"""


async def test_collected_condition_waits_for_its_share_and_approval_reversed_on_cancel(
    http, sms, make_tenant, member, engine
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    _, manager = await member(tenant, ["manager"])
    inv = await inventory(http, slug, floors=1, per_floor=1, price=PRICE)
    project, unit = inv["project"]["id"], inv["units"][0]["id"]
    got = await save_rule(
        http,
        slug,
        projectId=project,
        basis="FIXED",
        amount=1_000_001,
        condition="COLLECTED",
        collectedBp=3000,
        splits=[{"kind": "AGENT", "shareBp": 3333}, {"kind": "AGENT", "shareBp": 6667}],
    )
    assert got["__typename"] == "CommissionRulePayload", got
    buyer, phone = await _buyer(http, slug, agent)
    c = await _sold(http, sms, slug, agent, unit, buyer, phone)
    [k] = await commissions(http, slug, c=c["id"])
    assert (k["status"], k["amount"]["minorUnits"], k["collectedBp"]) == (
        "PENDING",
        1_000_001,
        3000,
    )
    # Each line rounded down (333,300.33 and 666,700.67); the 1 left goes to the first line.
    assert [line["amount"]["minorUnits"] for line in k["lines"]] == [333_301, 666_700]
    price = c["price"]["minorUnits"]
    not_yet = price * 3000 // 10000 - 1
    cid = uuid.UUID(c["id"])
    db = TenantDatabase(engine)
    async with db.session(tenant) as session:
        assert await service.on_collection(session, cid, not_yet, price) == []
        for bad in ((-1, price), (not_yet, 0), (10**20, price), (True, price)):
            try:
                await service.on_collection(session, cid, *bad)
            except ValidationFailed:
                pass
            else:
                raise AssertionError(bad)
        try:
            await service.on_collection(session, uuid.uuid4(), not_yet, price)
        except NotFound:
            pass
        else:
            raise AssertionError("unknown contract")
        await session.commit()
    assert (await commissions(http, slug, c=c["id"]))[0]["status"] == "PENDING"
    pending = await decide(http, slug, k["id"], token=manager)
    assert pending["__typename"] == "ConflictError", pending  # not payable yet
    async with db.session(tenant) as session:
        [moved] = await service.on_collection(session, cid, not_yet + 1, price)
        assert moved.status == "payable" and moved.payable_at is not None
        await session.commit()
    assert await books(engine, tenant) == {}
    assert (await decide(http, slug, k["id"], token=manager))["commission"]["status"] == "APPROVED"
    canceled = data(
        await gql(http, CANCEL, {"c": c["id"], "reason": "退房"}, tenant=slug),
        "cancelContract",
    )
    assert canceled["contract"]["status"] == "CANCELED", canceled
    [k] = await commissions(http, slug, c=c["id"])
    assert k["status"] == "CLAWED_BACK"
    # Approved, not paid: the accrual is reversed, nothing is left owed either way.
    assert await books(engine, tenant) == {"commission_expense": 0, "commissions_payable": 0}


async def test_a_collection_event_queues_the_commission_job(make_tenant, engine):
    """The collections feature's outbox event (``sales.collection.recorded``) queues
    ``sales:apply_collection`` in the same transaction, with the event's amounts."""
    from api.jobs import JOBS

    tenant = await make_tenant()
    contract_id = uuid.uuid4()
    async with TenantDatabase(engine).session(tenant) as session:
        outbox.emit(
            session,
            service.COLLECTION_EVENT,
            contract_id,
            {
                "contract_id": str(contract_id),
                "amount_minor": 100,
                "collected_total_minor": 900,
                "price_minor": 1000,
            },
        )
        await session.flush()
        args = list(
            await session.scalars(
                select(JOBS.c.args).where(JOBS.c.task_name == "sales:apply_collection")
            )
        )
        await session.rollback()
    assert {
        "tenant": tenant.slug,
        "contract_id": str(contract_id),
        "collected_total_minor": 900,
        "price_minor": 1000,
    } in args


def test_amounts_round_and_split_to_the_minor_unit():
    assert service.rate_of(123_456_789, 150) == 1_851_852  # 1,851,851.835 half up
    assert service.rate_of(1, 5000) == 1 and service.rate_of(1, 4999) == 0
    assert service.split(100, [3333, 3333, 3334]) == [34, 33, 33]
    assert service.split(1_000_001, [10_000]) == [1_000_001]
    assert sum(service.split(999_999_999, [1, 9999])) == 999_999_999
    from datetime import date

    assert service.period_start(date(2026, 8, 17), "quarter") == date(2026, 7, 1)
    assert service.period_start(date(2026, 8, 17), "year") == date(2026, 1, 1)
    assert service.period_start(date(2026, 8, 17), "month") == date(2026, 8, 1)
    rule = CommissionRule(
        basis="percent",
        rate_bp=100,
        amount=None,
        tiers=[{"from": 3, "rate_bp": 150}, {"from": 10, "rate_bp": 200}],
    )
    assert service.tier_of(rule, 2) == (None, None, 100)
    assert service.tier_of(rule, 3) == (0, None, 150)
    assert service.tier_of(rule, 99) == (1, None, 200)


async def test_bad_rules_are_typed_errors_and_change_nothing(http, make_tenant, member, engine):
    tenant = await make_tenant()
    other = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    project = (await inventory(http, slug, floors=1, per_floor=1))["project"]["id"]
    theirs = (await inventory(http, other.slug, floors=1, per_floor=1))["project"]["id"]
    foreign_channel = (await channel(http, other.slug, "外部"))["id"]
    ok_split = [{"kind": "AGENT", "shareBp": 10000}]
    base = {"projectId": project, "basis": "PERCENT", "rateBp": 100, "splits": ok_split}
    cases = [
        ({"splits": [{"kind": "AGENT", "shareBp": 5000}]}, "ValidationError", "splits"),
        (
            {"splits": [{"kind": "AGENT", "shareBp": 6000}, {"kind": "AGENT", "shareBp": 5000}]},
            "ValidationError",
            "splits",
        ),
        ({"splits": []}, "ValidationError", "splits"),
        ({"splits": [{"kind": "AGENT", "shareBp": 400}] * 25}, "ValidationError", "splits"),
        ({"splits": [{"kind": "AGENT", "shareBp": 1000}] * 11}, "ValidationError", "splits"),
        (
            {
                "tierMeasure": "AMOUNT",
                "tiers": [{"start": 10**9 * (n + 1), "rateBp": 100 + n} for n in range(11)],
            },
            "ValidationError",
            "tiers",
        ),
        (
            {"tierMeasure": "AMOUNT", "tiers": [{"start": 10**18, "rateBp": 200}]},
            "ValidationError",
            "tiers.0.start",
        ),
        (
            {"splits": [{"kind": "AGENT", "shareBp": 0}, {"kind": "AGENT", "shareBp": 10000}]},
            "ValidationError",
            "splits.0.shareBp",
        ),
        (
            {"splits": [{"kind": "AGENT", "shareBp": -5000}, {"kind": "AGENT", "shareBp": 15000}]},
            "ValidationError",
            "splits.0.shareBp",
        ),
        (
            {
                "splits": [
                    {"kind": "CHANNEL", "shareBp": 5000},
                    {"kind": "CHANNEL", "shareBp": 5000},
                ]
            },
            "ValidationError",
            "splits",
        ),
        ({"splits": [{"kind": "TEAM", "shareBp": 10000}]}, "NotFoundError", "splits.0.teamId"),
        (
            {"splits": [{"kind": "TEAM", "shareBp": 10000, "teamId": str(uuid.uuid4())}]},
            "NotFoundError",
            "splits.0.teamId",
        ),
        (
            {"splits": [{"kind": "AGENT", "shareBp": 10000, "accountId": str(uuid.uuid4())}]},
            "NotFoundError",
            "splits.0.accountId",
        ),
        ({"rateBp": 10001}, "ValidationError", "rateBp"),
        ({"rateBp": 0}, "ValidationError", "rateBp"),
        ({"rateBp": -1}, "ValidationError", "rateBp"),
        ({"basis": "FIXED", "rateBp": None, "amount": -100}, "ValidationError", "amount"),
        ({"basis": "FIXED", "rateBp": None, "amount": 10**15}, "ValidationError", "amount"),
        ({"basis": "FIXED", "amount": 100}, "ValidationError", "rateBp"),
        ({"amount": 100}, "ValidationError", "amount"),
        ({"tiers": [{"start": 5, "rateBp": 200}]}, "ValidationError", "tierMeasure"),
        (
            {
                "tierMeasure": "COUNT",
                "tiers": [{"start": 5, "rateBp": 200}, {"start": 5, "rateBp": 300}],
            },
            "ValidationError",
            "tiers.1.start",
        ),
        (
            {"tierMeasure": "COUNT", "tiers": [{"start": 0, "rateBp": 200}]},
            "ValidationError",
            "tiers.0.start",
        ),
        (
            {"tierMeasure": "COUNT", "tiers": [{"start": 2, "rateBp": 20000}]},
            "ValidationError",
            "tiers.0.rateBp",
        ),
        ({"condition": "COLLECTED"}, "ValidationError", "collectedBp"),
        ({"condition": "COLLECTED", "collectedBp": 10001}, "ValidationError", "collectedBp"),
        ({"collectedBp": 5000}, "ValidationError", "collectedBp"),
        ({"channelId": str(uuid.uuid4())}, "NotFoundError", "channelId"),
        ({"channelId": foreign_channel}, "NotFoundError", "channelId"),
        ({"channelId": "not-an-id"}, "NotFoundError", "channelId"),
        ({"projectId": theirs}, "NotFoundError", "projectId"),
        ({"projectId": str(uuid.uuid4())}, "NotFoundError", "projectId"),
    ]
    for change, typename, field in cases:
        got = await save_rule(http, slug, **{**base, **change})
        assert (got["__typename"], got.get("field") or "") == (typename, field), (change, got)
    # A 64-bit overflow or a NUL never reaches the service.
    res = await gql(
        http,
        "mutation($i: CommissionRuleInput!) { saveCommissionRule(input: $i) { __typename } }",
        {"i": {**base, "basis": "FIXED", "rateBp": None, "amount": 2**70}},
        tenant=slug,
    )
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", res
    # Agents do not configure rules.
    res = await gql(
        http,
        "mutation($i: CommissionRuleInput!) { saveCommissionRule(input: $i) { __typename } }",
        {"i": base},
        tenant=slug,
        token=agent,
    )
    assert res["data"]["saveCommissionRule"]["__typename"] == "PermissionDeniedError", res
    async with TenantDatabase(engine).session(tenant) as session:
        assert list(await session.scalars(select(CommissionRule))) == []
        assert list(await session.scalars(select(Commission))) == []
    # A good rule, replaced: the old one leaves force; unknown ids are typed.
    first = (await save_rule(http, slug, **base))["rule"]
    second = (await save_rule(http, slug, **{**base, "rateBp": 120}))["rule"]
    rules = data(
        await gql(http, RULES, {"p": project, "all": False}, tenant=slug), "commissionRules"
    )
    assert {(r["id"], r["active"]) for r in rules} == {(first["id"], False), (second["id"], True)}
    gone = data(
        await gql(http, DEACTIVATE_RULE, {"r": first["id"]}, tenant=slug),
        "deactivateCommissionRule",
    )
    assert (gone["__typename"], gone["field"]) == ("ConflictError", "ruleId"), gone
    gone = data(
        await gql(http, DEACTIVATE_RULE, {"r": str(uuid.uuid4())}, tenant=slug),
        "deactivateCommissionRule",
    )
    assert (gone["__typename"], gone["field"]) == ("NotFoundError", "ruleId"), gone
    for bad in (str(uuid.uuid4()), "nope"):
        got = await decide(http, slug, bad)
        assert (got["__typename"], got["field"]) == ("NotFoundError", "commissionId"), got
        got = await pay(http, slug, bad)
        assert (got["__typename"], got["field"]) == ("NotFoundError", "commissionId"), got
    res = await gql(http, PAY_Q, {"c": str(uuid.uuid4()), "ref": "x\x00y"}, tenant=slug)
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", res


PAY_Q = """
mutation($c: ID!, $ref: String!) { payCommission(commissionId: $c, reference: $ref) { __typename } }
"""


async def test_the_channel_holding_the_buyer_earns_and_a_dispute_moves_an_unapproved_share(
    http, sms, make_tenant, member, engine
):
    """The channel's own rule applies when it holds the buyer; a dispute decided for the
    other channel afterwards moves the channel line of a commission not yet approved."""
    from tests.api.sales.commission_helpers import RESOLVE

    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    _, manager = await member(tenant, ["manager"])
    inv = await inventory(http, slug, floors=1, per_floor=1, price=PRICE)
    project, unit = inv["project"]["id"], inv["units"][0]["id"]
    a = await channel(http, slug, "甲")
    b = await channel(http, slug, "乙", kind="BROKER")
    split = [{"kind": "AGENT", "shareBp": 5000}, {"kind": "CHANNEL", "shareBp": 5000}]
    default = await save_rule(
        http, slug, projectId=project, basis="FIXED", amount=10_000, splits=split
    )
    own = await save_rule(
        http, slug, projectId=project, channelId=a["id"], basis="FIXED", amount=30_000, splits=split
    )
    assert own["rule"]["channelId"] == a["id"] and default["rule"]["channelId"] is None
    buyer, phone = await _buyer(http, slug, agent)
    reg_a = (await register(http, slug, a["id"], project, "钱", phone, token=agent))["registration"]
    await visit(http, slug, reg_a["code"], token=manager)
    got = await register(http, slug, b["id"], project, "钱", phone, token=agent)
    reg_b, dispute = got["registration"], got["dispute"]
    await visit(http, slug, reg_b["code"], token=manager)  # recorded: still disputed
    c = await _sold(http, sms, slug, agent, unit, buyer, phone)
    [k] = await commissions(http, slug, c=c["id"])
    assert (k["ruleId"], k["channelId"], k["amount"]["minorUnits"]) == (
        own["rule"]["id"],
        a["id"],
        30_000,
    )
    assert k["registrationId"] == reg_a["id"]
    res = await gql(
        http,
        RESOLVE,
        {"d": dispute["id"], "w": reg_b["id"], "note": "乙先带看"},
        tenant=slug,
        token=manager,
    )
    assert res["data"]["resolveAttributionDispute"]["__typename"] == "AttributionDisputePayload"
    [k] = await commissions(http, slug, c=c["id"])
    assert (k["channelId"], k["registrationId"]) == (b["id"], reg_b["id"])
    assert [line["channelId"] for line in k["lines"] if line["kind"] == "CHANNEL"] == [b["id"]]
    assert k["status"] == "PAYABLE" and await books(engine, tenant) == {}
