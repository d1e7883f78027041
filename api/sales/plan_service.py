"""Payment plans (付款方式), collections (回款) and mortgage cases (按揭) of sale contracts.
Never commits: the request or the job owns the transaction.

- A **plan** is set on a contract while it is a draft (an original or an amendment): its kind
  (full, instalments, commercial or provident-fund mortgage, or a combination) and parts make
  schedule lines that sum exactly to the price, each due on a working day in the tenant's
  time zone (``api/sales/workdays.py``). The contract's document is drawn again with the
  schedule, so the buyer signs what will be collected.
- A **collection** is money in: a Stripe payment (kind ``collection``; its webhook records
  it), a bank transfer recorded by finance with proof, or a mortgage disbursement. Each is
  booked (``sale_receipts``, a liability until delivery), allocated to the schedule oldest due
  first, shown on the unit's timeline, and announced by the outbox event
  ``sales.collection.recorded`` (commissions react to it). More than what is outstanding is
  refused (``Overpayment``) with nothing changed. Collections of one contract are serialised
  by the lock of the contract in force.
- A **mortgage case** follows the buyer's loan: documents checklist, bank, amount, stage
  (collecting -> submitted -> approved -> disbursed, or refused); a daily job reminds the
  agent and the buyer of what is missing while collecting.

Collections are keyed by the contract's number: an amendment (a new revision, same number and
price) keeps what was collected, and its own plan re-allocates it. See docs/sales.md."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.client import service as clients
from api.client.models import Client
from api.db import JsonObject, utcnow
from api.errors import Conflict, DomainError, ErrorCode, NotFound, ValidationFailed
from api.identity.auth import Principal
from api.ids import uuid7
from api.live.outbox import emit
from api.media.models import Media
from api.media.storage import Storage
from api.payment import ledger, stripe_api
from api.payment import service as payments
from api.payment.ledger import Line
from api.payment.models import PAYMENT_PLATFORMS, Payment
from api.sales import contract_repository as contract_repo
from api.sales import contract_service as contracts
from api.sales.models import IN_FORCE, Contract
from api.sales.plan_models import (
    LOAN_KINDS,
    OPEN_STAGES,
    PLAN_KINDS,
    Collection,
    MortgageCase,
    PaymentPlan,
    PlanLine,
    Workday,
)
from api.sales.workdays import Calendar, add_months
from api.security.kit import SecurityKit
from api.settings import Settings
from api.unit import service as units
from api.validate import text, unique_texts
from tenants.registry import TenantInfo
from tenants.sessions import tenant_of

COLLECTION_EVENT = "sales.collection.recorded"  # the outbox event commissions react to
MAX_INSTALMENTS = 60
MAX_INTERVAL_MONTHS = 12
MAX_PLAN_YEARS = 10
MAX_DOCUMENTS = 30
REMIND_EVERY = timedelta(hours=20)  # a case is reminded at most once a day
REMIND_BATCH = 200

LABELS = {
    "zh-CN": {
        "full": "一次性付款",
        "down_payment": "首付款",
        "instalment": "第{n}期",
        "commercial": "商业贷款",
        "provident": "公积金贷款",
    },
    "en": {
        "full": "Full payment",
        "down_payment": "Down payment",
        "instalment": "Instalment {n}",
        "commercial": "Commercial mortgage loan",
        "provident": "Provident-fund loan",
    },
}

# The documents banks ask for (a case may name its own list instead).
DOCUMENTS: dict[str, list[tuple[str, str]]] = {
    "commercial": [
        ("id_card", "身份证 / ID card"),
        ("household_register", "户口簿 / household register"),
        ("marital_status", "婚姻状况证明 / marital status"),
        ("income_proof", "收入证明 / proof of income"),
        ("bank_statements", "近六个月银行流水 / bank statements (6 months)"),
        ("purchase_contract", "购房合同 / the purchase contract"),
        ("down_payment_receipt", "首付款收据 / down payment receipt"),
    ],
}
DOCUMENTS["provident"] = [
    *DOCUMENTS["commercial"],
    ("provident_record", "公积金缴存证明 / provident-fund contribution record"),
]


class Overpayment(DomainError):
    """More money than the contract still has outstanding: nothing was recorded."""

    code = ErrorCode.BAD_USER_INPUT


# ---------------------------------------------------------------- the calendar


async def calendar(session: AsyncSession) -> Calendar:
    """The official calendar with the tenant's declared days."""
    rows = (await session.execute(select(Workday.day, Workday.working))).all()
    return Calendar({d: w for d, w in rows})


async def declare_workday(
    session: AsyncSession, p: Principal, day: date, working: bool | None, note: str = ""
) -> Workday | None:
    """Declare ``day`` worked or off for the tenant (over the official calendar); ``None``
    removes the declaration. Days already due are not moved: only plans saved afterwards."""
    note = text(note, "note", required=False, max_len=100)
    if not date(2000, 1, 1) <= day <= date(2100, 12, 31):
        raise ValidationFailed("day is between 2000 and 2100", "day")
    row = await session.get(Workday, day, with_for_update=True)
    if working is None:
        if row is not None:
            await session.delete(row)
            await session.flush()
        return None
    if row is None:
        row = Workday(day=day, working=working, note=note, created_by=p.account_id)
        session.add(row)
    else:
        row.working, row.note, row.created_by = working, note, p.account_id
    await session.flush()
    return row


async def workdays(session: AsyncSession) -> list[Workday]:
    return list((await session.scalars(select(Workday).order_by(Workday.day))).all())


# ---------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class PlanInput:
    contract_id: uuid.UUID
    kind: str
    first_due: date
    down_payment: int | None = None
    instalments: int | None = None
    interval_months: int = 1
    provident_amount: int | None = None
    loan_due: date | None = None


@dataclass(frozen=True, slots=True)
class LineDraft:
    kind: str
    loan: str | None
    label: str
    amount: int
    scheduled_on: date


def _absent(value: object, name: str, kind: str) -> None:
    if value is not None:
        raise ValidationFailed(f"{name} is not part of a {kind} plan", name)


def _within(day: date, today: date, name: str) -> None:
    last = today + timedelta(days=366 * MAX_PLAN_YEARS)
    if not today <= day <= last:
        raise ValidationFailed(f"{name} is from today to {MAX_PLAN_YEARS} years ahead", name)


def draft_lines(
    i: PlanInput, price: int, today: date, locale: str, min_down_pct: int
) -> list[LineDraft]:
    """The plan's lines before rolling to working days. Amounts are whole minor units and sum
    exactly to ``price``; equal instalments leave the remainder (fewer minor units than
    there are instalments) on the **first** instalment."""
    words = LABELS["en" if locale == "en" else "zh-CN"]
    if i.kind not in PLAN_KINDS:
        raise ValidationFailed(f"kind is one of {', '.join(PLAN_KINDS)}", "kind")
    _within(i.first_due, today, "firstDue")
    dp = i.down_payment
    if i.kind == "full":
        for value, name in (
            (dp, "downPayment"),
            (i.instalments, "instalments"),
            (i.provident_amount, "providentAmount"),
            (i.loan_due, "loanDue"),
        ):
            _absent(value, name, "full")
        return [LineDraft("instalment", None, words["full"], price, i.first_due)]
    if i.kind == "instalments":
        _absent(i.provident_amount, "providentAmount", "instalments")
        _absent(i.loan_due, "loanDue", "instalments")
        n = i.instalments
        if n is None or not 1 <= n <= MAX_INSTALMENTS:
            raise ValidationFailed(f"instalments is 1 to {MAX_INSTALMENTS}", "instalments")
        if not 1 <= i.interval_months <= MAX_INTERVAL_MONTHS:
            raise ValidationFailed(
                f"intervalMonths is 1 to {MAX_INTERVAL_MONTHS}", "intervalMonths"
            )
        dp = dp or 0
        if not 0 <= dp < price:
            raise ValidationFailed("downPayment is 0 to less than the price", "downPayment")
        rest = price - dp
        if rest < n:
            raise ValidationFailed("each instalment must be at least one minor unit", "instalments")
        part, extra = divmod(rest, n)
        out: list[LineDraft] = []
        if dp:
            out.append(LineDraft("down_payment", None, words["down_payment"], dp, i.first_due))
        offset = 1 if dp else 0
        for k in range(n):
            due = add_months(i.first_due, i.interval_months * (k + offset))
            amount = part + (extra if k == 0 else 0)
            out.append(
                LineDraft("instalment", None, words["instalment"].format(n=k + 1), amount, due)
            )
        _within(out[-1].scheduled_on, today, "instalments")
        return out
    # mortgages: a down payment, then the loan part(s) when the bank pays
    _absent(i.instalments, "instalments", i.kind)
    if dp is None or not 0 < dp < price:
        raise ValidationFailed("downPayment is more than 0 and less than the price", "downPayment")
    if dp * 100 < price * min_down_pct:
        raise ValidationFailed(
            f"the down payment is at least {min_down_pct}% of the price "
            "(setting sales.min_down_payment_pct)",
            "downPayment",
        )
    if i.loan_due is None:
        raise ValidationFailed("loanDue (when the bank is expected to pay) is required", "loanDue")
    _within(i.loan_due, today, "loanDue")
    if i.loan_due < i.first_due:
        raise ValidationFailed("loanDue is on or after firstDue", "loanDue")
    out = [LineDraft("down_payment", None, words["down_payment"], dp, i.first_due)]
    loan = price - dp
    if i.kind == "combination":
        pa = i.provident_amount
        if pa is None or not 0 < pa < loan:
            raise ValidationFailed(
                "providentAmount is more than 0 and less than the price less the down payment",
                "providentAmount",
            )
        out.append(LineDraft("loan_part", "provident", words["provident"], pa, i.loan_due))
        out.append(LineDraft("loan_part", "commercial", words["commercial"], loan - pa, i.loan_due))
        return out
    _absent(i.provident_amount, "providentAmount", i.kind)
    which = "commercial" if i.kind == "commercial_mortgage" else "provident"
    out.append(LineDraft("loan_part", which, words[which], loan, i.loan_due))
    return out


async def _draft_contract(session: AsyncSession, p: Principal, contract_id: uuid.UUID) -> Contract:
    c = await contracts._visible(session, p, contract_id, lock=True)
    if c.status != "draft":
        raise Conflict(
            f"a contract that is {c.status} keeps its plan: amend it to change the plan",
            "contractId",
        )
    return c


async def save_plan(
    session: AsyncSession, kit: SecurityKit, storage: Storage, p: Principal, i: PlanInput
) -> PaymentPlan:
    """Create or replace the plan of a draft contract; the contract's document is drawn
    again with the schedule (a signing code sent before is for the old document: ask
    another)."""
    from api.setting import service as tenant_settings

    tenant = tenant_of(session)
    c = await _draft_contract(session, p, i.contract_id)
    today = utcnow().astimezone(tenant.zone).date()
    min_down: int = await tenant_settings.get(session, "sales.min_down_payment_pct")
    drafts = draft_lines(i, c.price, today, c.locale, min_down)
    assert sum(d.amount for d in drafts) == c.price  # the rules above make it so
    cal = await calendar(session)
    try:
        dues = [cal.roll(d.scheduled_on) for d in drafts]
    except ValueError as exc:  # a tenant that declared two months off
        raise ValidationFailed(str(exc), "firstDue") from exc
    old = await session.scalar(
        select(PaymentPlan).where(PaymentPlan.contract_id == c.id).with_for_update()
    )
    if old is not None:
        await session.execute(delete(PlanLine).where(PlanLine.plan_id == old.id))
        old.kind, old.version, old.created_by = i.kind, old.version + 1, p.account_id
        old.created_at = utcnow()
        plan = old
    else:
        plan = PaymentPlan(
            id=uuid7(),
            contract_id=c.id,
            kind=i.kind,
            price=c.price,
            currency=c.currency,
            created_by=p.account_id,
            created_at=utcnow(),
            version=1,
        )
        session.add(plan)
    await session.flush()
    session.add_all(
        PlanLine(
            id=uuid7(),
            plan_id=plan.id,
            seq=k + 1,
            kind=d.kind,
            loan=d.loan,
            label=d.label,
            amount=d.amount,
            scheduled_on=d.scheduled_on,
            due_on=due,
        )
        for k, (d, due) in enumerate(zip(drafts, dues, strict=True))
    )
    c.payment_plan = [
        {"label": d.label, "amount": d.amount, "due": due.isoformat()}
        for d, due in zip(drafts, dues, strict=True)
    ]
    chosen = await contract_repo.template(session, c.template_id) if c.template_id else None
    await contracts._draw(session, kit, storage, c, chosen)
    c.version += 1
    units.deal_event(
        session,
        c.unit_id,
        actor_id=p.account_id,
        reason="",
        ref_id=c.id,
        data={
            "step": "payment_plan_set",
            "number": c.number,
            "revision": c.revision,
            "plan": i.kind,
            "lines": len(drafts),
        },
    )
    await session.flush()
    return plan


# ---------------------------------------------------------------- schedules


@dataclass(frozen=True, slots=True)
class ScheduleLine:
    seq: int
    kind: str
    loan: str | None
    label: str
    amount: int
    scheduled_on: date
    due_on: date
    paid: int
    outstanding: int
    overdue: bool


@dataclass(frozen=True, slots=True)
class Schedule:
    contract: Contract
    kind: str
    structured: bool  # a plan saved here (else read from the contract's installments)
    lines: list[ScheduleLine]
    collected: int
    pending: int  # Stripe payments under way
    outstanding: int  # price - collected
    due_now: int  # outstanding on lines due today or before
    overdue: int  # outstanding on lines due before today
    calendar_known: bool
    collections: list[Collection] = field(default_factory=list)
    cases: list[MortgageCase] = field(default_factory=list)


async def _plan_lines(session: AsyncSession, c: Contract) -> tuple[str, bool, list[PlanLine]]:
    """The contract's plan: its own; else, for an amendment that kept the installments, the
    plan of the contract it amends; else its installments as they are (kind ``full`` for one,
    ``instalments`` otherwise)."""
    here: Contract | None = c
    while here is not None:
        plan = await session.scalar(select(PaymentPlan).where(PaymentPlan.contract_id == here.id))
        if plan is not None:
            rows = await session.scalars(
                select(PlanLine).where(PlanLine.plan_id == plan.id).order_by(PlanLine.seq)
            )
            return plan.kind, True, list(rows)
        if here.amends_id is None:
            break
        older = await session.get(Contract, here.amends_id)
        if older is None or older.payment_plan != here.payment_plan:
            break
        here = older
    lines = [
        PlanLine(
            seq=k + 1,
            kind="instalment",
            loan=None,
            label=str(x["label"]),
            amount=int(x["amount"]),
            scheduled_on=date.fromisoformat(str(x["due"])),
            due_on=date.fromisoformat(str(x["due"])),
        )
        for k, x in enumerate(c.payment_plan)
    ]
    return ("full" if len(lines) == 1 else "instalments"), False, lines


def allocate(lines: Sequence[PlanLine], collected: int, today: date) -> list[ScheduleLine]:
    """``collected`` spread over the lines oldest due first (ties: plan order): what each
    collection pays, one after the other, adds up to this."""
    left = collected
    paid: dict[int, int] = {}
    for line in sorted(lines, key=lambda x: (x.due_on, x.seq)):
        paid[line.seq] = min(line.amount, left)
        left -= paid[line.seq]
    return [
        ScheduleLine(
            seq=x.seq,
            kind=x.kind,
            loan=x.loan,
            label=x.label,
            amount=x.amount,
            scheduled_on=x.scheduled_on,
            due_on=x.due_on,
            paid=paid[x.seq],
            outstanding=x.amount - paid[x.seq],
            overdue=x.amount > paid[x.seq] and x.due_on < today,
        )
        for x in lines
    ]


async def totals(session: AsyncSession, number: str) -> tuple[int, int]:
    """(collected, pending) on the contract number: recorded collections, and Stripe
    collections whose payment is still under way."""
    collected = await session.scalar(
        select(func.coalesce(func.sum(Collection.amount), 0)).where(
            Collection.number == number, Collection.status == "recorded"
        )
    )
    pending = await session.scalar(
        select(func.coalesce(func.sum(Collection.amount), 0))
        .join(Payment, Payment.id == Collection.payment_id)
        .where(
            Collection.number == number,
            Collection.status == "pending",
            Payment.status == "pending",
        )
    )
    return int(collected or 0), int(pending or 0)


async def schedule_of(session: AsyncSession, c: Contract, *, with_records: bool = True) -> Schedule:
    tenant = tenant_of(session)
    today = utcnow().astimezone(tenant.zone).date()
    kind, structured, rows = await _plan_lines(session, c)
    collected, pending = await totals(session, c.number)
    lines = allocate(rows, collected, today)
    due_now = sum(x.outstanding for x in lines if x.due_on <= today)
    overdue = sum(x.outstanding for x in lines if x.overdue)
    found: list[Collection] = []
    cases: list[MortgageCase] = []
    if with_records:
        found = list(
            await session.scalars(
                select(Collection)
                .where(Collection.number == c.number)
                .order_by(Collection.created_at, Collection.id)
            )
        )
        cases = list(
            await session.scalars(
                select(MortgageCase)
                .where(MortgageCase.number == c.number)
                .order_by(MortgageCase.created_at)
            )
        )
    return Schedule(
        contract=c,
        kind=kind,
        structured=structured,
        lines=lines,
        collected=collected,
        pending=pending,
        outstanding=c.price - collected,
        due_now=due_now,
        overdue=overdue,
        calendar_known=Calendar().known(x.due_on for x in lines),
        collections=found,
        cases=cases,
    )


async def schedule(session: AsyncSession, p: Principal, contract_id: uuid.UUID) -> Schedule | None:
    """A contract's schedule with paid and outstanding per line (null outside the scope)."""
    c = await contracts.get(session, p, contract_id)
    return await schedule_of(session, c) if c is not None else None


async def my_purchases(session: AsyncSession, p: Principal) -> list[Schedule]:
    """The buyer's own contracts in force (clients linked to the caller's account)."""
    rows = await session.scalars(
        select(Contract)
        .join(Client, Client.id == Contract.client_id)
        .where(Client.account_id == p.account_id, Contract.status.in_(IN_FORCE))
        .order_by(Contract.created_at.desc())
        .limit(20)
    )
    return [await schedule_of(session, c) for c in rows]


# ---------------------------------------------------------------- collections


def _key(value: str | None) -> str | None:
    if value is None:
        return None
    return text(value, "idempotencyKey", required=True, max_len=64)


async def _in_force(session: AsyncSession, p: Principal, contract_id: uuid.UUID) -> Contract:
    """The contract, locked (it serialises the collections of its number), in force."""
    c = await contracts._visible(session, p, contract_id, lock=True)
    if c.status not in IN_FORCE:
        raise Conflict(
            f"a contract that is {c.status} takes no money: only a signed one", "contractId"
        )
    return c


async def _by_key(
    session: AsyncSession, key: str | None, c: Contract, source: str, amount: int
) -> Collection | None:
    """The collection made earlier with this key (the same request again), or None. A key
    used for something else is CONFLICT."""
    if key is None:
        return None
    row = await session.scalar(select(Collection).where(Collection.idempotency_key == key))
    if row is None:
        return None
    if (row.number, row.source, row.amount) != (c.number, source, amount):
        raise Conflict("idempotencyKey was used for another collection", "idempotencyKey")
    return row


async def _room(session: AsyncSession, c: Contract, amount: int, field_name: str) -> None:
    """Refuse an amount that is not positive, or more than is still outstanding (less the
    Stripe payments under way)."""
    if amount <= 0:
        raise ValidationFailed("amount is more than 0", field_name)
    collected, pending = await totals(session, c.number)
    room = c.price - collected - pending
    if amount > room:
        under_way = f" ({pending} under way through Stripe)" if pending else ""
        raise Overpayment(
            f"{amount} is more than the {room} outstanding on contract {c.number}{under_way} "
            "(minor units): nothing was recorded",
            field_name,
        )


async def _recorded(session: AsyncSession, c: Contract, row: Collection) -> None:
    """What follows every recorded collection: the unit's timeline and the outbox event."""
    collected, _ = await totals(session, c.number)
    units.deal_event(
        session,
        c.unit_id,
        actor_id=row.recorded_by,
        reason=row.note,
        ref_id=row.id,
        data={
            "step": "collection_recorded",
            "number": c.number,
            "source": row.source,
            "amount": row.amount,
            "collected": collected,
            "price": c.price,
        },
    )
    emit(
        session,
        COLLECTION_EVENT,
        c.id,
        {
            "contract_id": str(c.id),
            "number": c.number,
            "collection_id": str(row.id),
            "source": row.source,
            "amount_minor": row.amount,
            "collected_total_minor": collected,
            "price_minor": c.price,
            "currency": c.currency,
        },
    )
    await session.flush()


async def _book(session: AsyncSession, c: Contract, row: Collection) -> None:
    """A bank transfer or a disbursement: the money is in the bank, owed to the buyer as
    goods until delivery."""
    await ledger.post(
        session,
        f"collection:{row.id}",
        f"{row.source} on contract {c.number}",
        c.currency.lower(),
        [Line("bank", row.amount, 0), Line("sale_receipts", 0, row.amount)],
    )


async def record_bank_transfer(
    session: AsyncSession,
    p: Principal,
    contract_id: uuid.UUID,
    *,
    amount: int,
    proof_media_id: uuid.UUID,
    reference: str = "",
    note: str = "",
    idempotency_key: str | None = None,
) -> Collection:
    """Finance records a bank transfer received on a contract in force, with its proof (a
    private media item: the transfer slip uploaded beforehand)."""
    reference = text(reference, "reference", required=False, max_len=64)
    note = text(note, "note", required=False, max_len=300)
    key = _key(idempotency_key)
    # The proof first: an id of nothing (or of another company's file) is NOT_FOUND whatever
    # the contract's state.
    proof = await session.get(Media, proof_media_id)
    if proof is None:
        raise NotFound("proof not found", "proofMediaId")
    if proof.visibility != "private":
        raise ValidationFailed("the proof must be uploaded as private", "proofMediaId")
    c = await _in_force(session, p, contract_id)
    again = await _by_key(session, key, c, "bank_transfer", amount)
    if again is not None:
        return again
    await _room(session, c, amount, "amount")
    now = utcnow()
    row = Collection(
        id=uuid7(),
        contract_id=c.id,
        number=c.number,
        source="bank_transfer",
        status="recorded",
        amount=amount,
        currency=c.currency,
        proof_media_id=proof.id,
        reference=reference,
        note=note,
        idempotency_key=key,
        recorded_by=p.account_id,
        created_at=now,
        recorded_at=now,
    )
    await _add(session, row)
    await _book(session, c, row)
    await _recorded(session, c, row)
    return row


async def _add(session: AsyncSession, row: Collection) -> None:
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as exc:  # the key taken meanwhile on another contract
        raise Conflict("idempotencyKey was used for another collection", "idempotencyKey") from exc


@dataclass(frozen=True, slots=True)
class StripeStarted:
    collection: Collection
    payment: Payment
    client_secret: str


async def start_stripe_collection(
    session: AsyncSession,
    settings: Settings,
    tenant: TenantInfo,
    p: Principal,
    contract_id: uuid.UUID,
    *,
    amount: int,
    platform: str,
    idempotency_key: str | None = None,
) -> StripeStarted:
    """A PaymentIntent for ``amount`` of a contract in force, on the tenant's account (the
    deposit's machinery: ``payments.open_payment``, key ``collection:<payment id>``). The
    amount counts against what is outstanding while the payment is under way; Stripe's
    event records it."""
    if platform not in PAYMENT_PLATFORMS:
        raise ValueError(platform)
    key = _key(idempotency_key)
    c = await _in_force(session, p, contract_id)
    again = await _by_key(session, key, c, "stripe", amount)
    if again is not None:
        assert again.payment_id is not None  # a Stripe collection has its payment
        payment = await session.get(Payment, again.payment_id)
        assert payment is not None
        intent = await stripe_api.retrieve_intent(
            settings, payment.stripe_account, payments.intent_of(payment)
        )
        return StripeStarted(again, payment, stripe_api.client_secret(intent))
    await _room(session, c, amount, "amount")
    account = await payments.require_account(session, settings, tenant)
    client = await session.get(Client, c.client_id)
    payment = Payment(
        id=uuid7(),
        kind="collection",
        status="pending",
        amount=amount,
        currency=c.currency.lower(),
        unit_id=c.unit_id,
        client_id=c.client_id,
        payer_id=client.account_id if client is not None else None,
        agent_id=p.account_id,
        stripe_account=account,
    )
    row_id = uuid7()
    secret = await payments.open_payment(
        session,
        settings,
        tenant,
        payment,
        platform=platform,
        metadata={"contract_id": str(c.id), "collection_id": str(row_id)},
        description=f"Contract {c.number}",
    )
    row = Collection(
        id=row_id,
        contract_id=c.id,
        number=c.number,
        source="stripe",
        status="pending",
        amount=amount,
        currency=c.currency,
        payment_id=payment.id,
        idempotency_key=key,
        recorded_by=p.account_id,
        created_at=utcnow(),
    )
    await _add(session, row)
    return StripeStarted(row, payment, secret)


async def collection_paid(session: AsyncSession, settings: Settings, payment: Payment) -> str:
    """A collection's payment succeeded (``apply_intent``: paid and booked to
    ``sale_receipts``). Under the lock of the contract in force it is recorded; if the
    contract is no longer in force, or the amount no longer fits, it is refunded whole (by
    the refund job)."""
    row = await session.scalar(
        select(Collection).where(Collection.payment_id == payment.id).with_for_update()
    )
    if row is None:  # (made in the payment's own transaction: never)
        await payments.refund_later(
            session, payment, reason="collection_unknown", amount=payment.amount
        )
        return "paid; no collection: to refund"
    if row.status != "pending":
        return f"already {row.status}"
    c = await session.scalar(
        select(Contract)
        .where(Contract.number == row.number, Contract.status.in_(IN_FORCE))
        .with_for_update()
    )
    if c is not None:
        collected, pending = await totals(session, row.number)
        if row.amount <= c.price - collected - pending:
            row.status, row.recorded_at, row.contract_id = "recorded", utcnow(), c.id
            await session.flush()
            await _recorded(session, c, row)
            return f"paid; collection recorded on {c.number}"
    row.status = "refunded"
    await session.flush()
    await payments.refund_later(session, payment, reason="collection_closed", amount=payment.amount)
    return "paid; contract closed or paid: to refund"


# ---------------------------------------------------------------- mortgage cases


@dataclass(frozen=True, slots=True)
class CaseInput:
    contract_id: uuid.UUID
    loan: str
    bank: str
    amount: int
    documents: tuple[str, ...] | None = None
    note: str = ""


async def _case(
    session: AsyncSession, p: Principal, case_id: uuid.UUID, *, lock: bool = True
) -> tuple[MortgageCase, Contract]:
    """The case, if its contract's client is in the caller's scope (NotFound otherwise)."""
    stmt = (
        select(MortgageCase, Contract)
        .join(Contract, Contract.id == MortgageCase.contract_id)
        .join(Client, Client.id == Contract.client_id)
        .where(MortgageCase.id == case_id, await clients.visible(session, p))
    )
    if lock:
        stmt = stmt.with_for_update(of=MortgageCase)
    found = (await session.execute(stmt)).first()
    if found is None:
        raise NotFound("mortgage case not found", "caseId")
    return found[0], found[1]


def missing(case: MortgageCase) -> list[JsonObject]:
    return [d for d in case.documents if not d.get("received_at")]


def _timeline(
    session: AsyncSession, p: Principal | None, c: Contract, case: MortgageCase, reason: str = ""
) -> None:
    units.deal_event(
        session,
        c.unit_id,
        actor_id=p.account_id if p else None,
        reason=reason,
        ref_id=case.id,
        data={
            "step": f"mortgage_{case.stage}",
            "number": c.number,
            "loan": case.loan,
            "bank": case.bank,
            "amount": case.amount,
        },
    )


async def open_case(session: AsyncSession, p: Principal, i: CaseInput) -> MortgageCase:
    """Open the buyer's mortgage case on a contract in force: collecting its documents."""
    if i.loan not in LOAN_KINDS:
        raise ValidationFailed(f"loan is one of {', '.join(LOAN_KINDS)}", "loan")
    bank = text(i.bank, "bank", required=True, max_len=100)
    note = text(i.note, "note", required=False, max_len=300)
    if i.documents is None:
        docs: list[JsonObject] = [
            {"code": code, "label": label, "received_at": None} for code, label in DOCUMENTS[i.loan]
        ]
    else:
        labels = unique_texts(list(i.documents), "documents", max_len=100, max_count=MAX_DOCUMENTS)
        if not labels or len(i.documents) > MAX_DOCUMENTS:
            raise ValidationFailed(f"documents lists 1 to {MAX_DOCUMENTS} items", "documents")
        docs = [
            {"code": f"doc{k + 1}", "label": label, "received_at": None}
            for k, label in enumerate(labels)
        ]
    c = await _in_force(session, p, i.contract_id)
    if not 0 < i.amount <= c.price:
        raise ValidationFailed("amount is more than 0 and at most the price", "amount")
    open_one = await session.scalar(
        select(MortgageCase.id).where(
            MortgageCase.number == c.number,
            MortgageCase.loan == i.loan,
            MortgageCase.stage.in_(OPEN_STAGES),
        )
    )
    if open_one is not None:
        raise Conflict(f"a {i.loan} mortgage case is already open on this contract", "loan")
    case = MortgageCase(
        id=uuid7(),
        contract_id=c.id,
        number=c.number,
        client_id=c.client_id,
        agent_id=p.account_id,
        loan=i.loan,
        bank=bank,
        amount=i.amount,
        currency=c.currency,
        stage="collecting",
        documents=docs,
        note=note,
        created_at=utcnow(),
        version=1,
    )
    try:
        async with session.begin_nested():
            session.add(case)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a {i.loan} mortgage case is already open", "loan") from exc
    _timeline(session, p, c, case)
    await session.flush()
    return case


async def mark_document(
    session: AsyncSession, p: Principal, case_id: uuid.UUID, code: str, received: bool
) -> MortgageCase:
    """Tick (or untick) a document of a case that is still collecting."""
    case, _ = await _case(session, p, case_id)
    if case.stage != "collecting":
        raise Conflict(f"a case that is {case.stage} has its documents settled", "caseId")
    docs = [dict(d) for d in case.documents]
    hit = next((d for d in docs if d["code"] == code), None)
    if hit is None:
        raise NotFound(f"no document {code[:40]!r} in this case", "code")
    hit["received_at"] = utcnow().isoformat() if received else None
    case.documents, case.version = docs, case.version + 1
    await session.flush()
    return case


# step -> (from stages, to stage)
STEPS: dict[str, tuple[tuple[str, ...], str]] = {
    "submit": (("collecting",), "submitted"),
    "approve": (("submitted",), "approved"),
    "refuse": (OPEN_STAGES, "refused"),
}


async def move_case(
    session: AsyncSession, p: Principal, case_id: uuid.UUID, step: str, *, reason: str = ""
) -> MortgageCase:
    """submit (every document received), approve, or refuse (with a reason). Disbursing is
    ``disburse``. Any other move is CONFLICT."""
    if step not in STEPS:
        raise ValidationFailed(f"step is one of {', '.join(STEPS)}", "step")
    reason = text(reason, "reason", required=step == "refuse", max_len=300)
    case, c = await _case(session, p, case_id)
    sources, to = STEPS[step]
    if case.stage not in sources:
        raise Conflict(f"a case that is {case.stage} cannot become {to}", "step")
    if step == "submit" and (left := missing(case)):
        names = ", ".join(str(d["label"]) for d in left)
        raise Conflict(f"documents still missing: {names}", "step")
    now = utcnow()
    case.stage, case.version = to, case.version + 1
    if to == "submitted":
        case.submitted_at = now
    elif to == "approved":
        case.approved_at = now
    else:
        case.refused_at, case.refused_reason = now, reason
    _timeline(session, p, c, case, reason)
    await session.flush()
    return case


async def disburse(
    session: AsyncSession,
    p: Principal,
    case_id: uuid.UUID,
    *,
    reference: str = "",
    idempotency_key: str | None = None,
) -> tuple[MortgageCase, Collection]:
    """The bank paid the approved loan: a collection of the case's amount (booked to the
    bank), and the case is disbursed."""
    reference = text(reference, "reference", required=False, max_len=64)
    key = _key(idempotency_key)
    case, _ = await _case(session, p, case_id)
    # The revision in force of the case's contract (an amendment may have been signed since
    # the case was opened), locked: it serialises the contract's collections.
    c = await session.scalar(
        select(Contract)
        .where(Contract.number == case.number, Contract.status.in_(IN_FORCE))
        .with_for_update()
    )
    if c is None:
        raise Conflict("the case's contract is no longer in force", "caseId")
    if case.stage == "disbursed" and case.collection_id is not None:
        done = await session.get(Collection, case.collection_id)
        if key is not None and done is not None and done.idempotency_key == key:
            return case, done  # the same request again
    if case.stage != "approved":
        raise Conflict(f"a case that is {case.stage} cannot be disbursed", "caseId")
    await _by_key(session, key, c, "mortgage", case.amount)  # a key used elsewhere: CONFLICT
    await _room(session, c, case.amount, "caseId")
    now = utcnow()
    row = Collection(
        id=uuid7(),
        contract_id=c.id,
        number=c.number,
        source="mortgage",
        status="recorded",
        amount=case.amount,
        currency=c.currency,
        mortgage_case_id=case.id,
        reference=reference,
        note=f"{case.bank} {case.loan} loan",
        idempotency_key=key,
        recorded_by=p.account_id,
        created_at=now,
        recorded_at=now,
    )
    await _add(session, row)
    await _book(session, c, row)
    case.stage, case.disbursed_at, case.collection_id = "disbursed", now, row.id
    case.version += 1
    _timeline(session, p, c, case)
    await _recorded(session, c, row)
    return case, row


async def case_of(session: AsyncSession, p: Principal, case_id: uuid.UUID) -> MortgageCase | None:
    try:
        return (await _case(session, p, case_id, lock=False))[0]
    except NotFound:
        return None


# ---------------------------------------------------------------- reminders


async def remind_missing_documents(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Cases still collecting with documents missing, not reminded in the last 20 hours:
    the agent who opened the case and the buyer (their account, when the client has one)
    are told what is missing. Returns how many cases were reminded."""
    from api.notify import service as notify

    now = now or utcnow()
    rows = (
        await session.scalars(
            select(MortgageCase)
            .where(
                MortgageCase.stage == "collecting",
                or_(
                    MortgageCase.reminded_at.is_(None),
                    MortgageCase.reminded_at < now - REMIND_EVERY,
                ),
            )
            .order_by(MortgageCase.created_at)
            .with_for_update(skip_locked=True)
            .limit(REMIND_BATCH)
        )
    ).all()
    slug = session.info.get("tenant_slug")
    told = 0
    for case in rows:
        left = missing(case)
        if not left:
            continue
        buyer = await session.scalar(select(Client.account_id).where(Client.id == case.client_id))
        people = [a for a in (case.agent_id, buyer) if a is not None]
        if slug is not None:
            await notify.notify(
                session,
                slug,
                people,
                "payments",
                "mortgage.documents_missing",
                {
                    "number": case.number,
                    "bank": case.bank,
                    "count": len(left),
                    "missing": "、".join(str(d["label"]).split(" / ")[0] for d in left),
                },
                data={"kind": "mortgage_case", "id": str(case.id)},
            )
        case.reminded_at = now
        told += 1
    await session.flush()
    return told
