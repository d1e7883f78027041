"""Commissions: the rules per project and channel, and what each signed contract earns. Never
commits: the request (or job) owns the transaction.

A rule pays a fixed amount or basis points of the contract price; tiers replace that value
once the rule's volume in its period (contracts signed, or their prices summed, this one
included, in the tenant's calendar month, quarter or year) reaches a threshold; the amount is
split among agents, teams and the channel by shares in basis points summing to 10,000 (each
line rounded down to the minor unit, the remainder to the first line). A commission is made
when its contract is signed (``on_contract_signed``, called by the contract service), from
the rule of the channel that holds the buyer then (``api/sales/attribution.py``), else the
project's default rule; without a channel the channel's line is left out (the company keeps
it). It is ``payable`` at once (condition ``signed``) or ``pending`` until the given share of
the price is collected (``on_collection``). ``payable -> approved`` by someone who earns none
of it (accrued: commission expense / commissions payable), ``approved -> paid`` by finance
(commissions payable / bank). A canceled contract ends its commission: ``canceled`` when
nothing was accrued, else ``clawed_back`` with a journal reversing the accrual (approved) or
recording what the payees owe back (paid: commission clawbacks / commission expense). Every
journal balances. See docs/sales.md, "Commissions"."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from api.db import JsonObject, utcnow
from api.errors import Conflict, Forbidden, NotFound, ValidationFailed
from api.identity.auth import Principal
from api.identity.models import Team
from api.identity.teams import active_members
from api.ids import uuid7
from api.live import outbox
from api.payment import ledger
from api.project.models import Project
from api.sales import attribution
from api.sales.attribution_models import ChannelRegistration, SalesChannel
from api.sales.commission_models import (
    COMMISSION_STATUSES,
    CONDITIONS,
    OPEN_COMMISSION,
    RULE_BASES,
    RULE_PERIODS,
    SPLIT_KINDS,
    TIER_MEASURES,
    Commission,
    CommissionLine,
    CommissionRule,
)
from api.sales.models import Contract
from api.validate import text
from tenants.sessions import tenant_of

BP = 10_000  # basis points in a whole
MAX_AMOUNT = 100_000_000_000  # minor units: 1,000,000,000.00 in major units
MAX_TIERS = 10
MAX_SPLITS = 10
MAX_PAGE = 100
NIL = uuid.UUID(int=0)


# ---------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class TierInput:
    start: int  # the volume from which the tier applies (count, or minor units)
    amount: int | None = None
    rate_bp: int | None = None


@dataclass(frozen=True, slots=True)
class SplitInput:
    kind: str
    share_bp: int
    account_id: uuid.UUID | None = None  # agent: None means the contract's agent
    team_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class RuleInput:
    project_id: uuid.UUID
    channel_id: uuid.UUID | None
    basis: str
    splits: tuple[SplitInput, ...]
    amount: int | None = None
    rate_bp: int | None = None
    tier_measure: str | None = None
    period: str = "month"
    tiers: tuple[TierInput, ...] = ()
    condition: str = "signed"
    collected_bp: int | None = None


def _amount(value: int | None, field: str) -> int:
    if value is None or not 0 < value <= MAX_AMOUNT:
        raise ValidationFailed(
            f"an amount is more than 0 and at most {MAX_AMOUNT} (minor units)", field
        )
    return value


def _bp(value: int | None, field: str, *, low: int = 1) -> int:
    if value is None or not low <= value <= BP:
        raise ValidationFailed(f"basis points are from {low} to {BP} (100%)", field)
    return value


def _value(basis: str, amount: int | None, rate_bp: int | None, prefix: str) -> tuple:
    """(amount, rate_bp) of a fixed or a percentage rule (or tier); ``prefix`` names where."""
    if basis == "fixed":
        if rate_bp is not None:
            raise ValidationFailed("a fixed rule gives an amount, not a rate", f"{prefix}rateBp")
        return _amount(amount, f"{prefix}amount"), None
    if amount is not None:
        raise ValidationFailed("a percentage rule gives a rate, not an amount", f"{prefix}amount")
    return None, _bp(rate_bp, f"{prefix}rateBp")


async def _splits(session: AsyncSession, given: tuple[SplitInput, ...]) -> list[JsonObject]:
    if not given:
        raise ValidationFailed("a rule has at least one split", "splits")
    if len(given) > MAX_SPLITS:
        raise ValidationFailed(f"at most {MAX_SPLITS} splits", "splits")
    out: list[JsonObject] = []
    for i, s in enumerate(given):
        if s.kind not in SPLIT_KINDS:
            raise ValidationFailed(f"kind is one of {', '.join(SPLIT_KINDS)}", f"splits.{i}.kind")
        _bp(s.share_bp, f"splits.{i}.shareBp")
        if s.kind != "agent" and s.account_id is not None:
            raise ValidationFailed("only an agent split names an account", f"splits.{i}.accountId")
        if s.kind != "team" and s.team_id is not None:
            raise ValidationFailed("only a team split names a team", f"splits.{i}.teamId")
        if s.kind == "team" and s.team_id is None:  # (a named team was found already)
            raise NotFound("a team split names its team", f"splits.{i}.teamId")
        out.append(
            {
                "kind": s.kind,
                "share_bp": s.share_bp,
                "account_id": str(s.account_id) if s.account_id else None,
                "team_id": str(s.team_id) if s.team_id else None,
            }
        )
    if sum(s.share_bp for s in given) != BP:
        total = sum(s.share_bp for s in given)
        raise ValidationFailed(f"the shares sum to {total} basis points, not {BP}", "splits")
    if sum(1 for s in given if s.kind == "channel") > 1:
        raise ValidationFailed("at most one channel split", "splits")
    return out


async def save_rule(session: AsyncSession, p: Principal, i: RuleInput) -> CommissionRule:
    """The rule of a project and a channel (None: the project's default), replacing the one
    in force (deactivated; commissions made under it keep it)."""
    # What the rule names first: an unknown or another company's id is NOT_FOUND whatever
    # else is wrong with the input.
    if await session.get(Project, i.project_id) is None:
        raise NotFound("project not found", "projectId")
    if i.channel_id is not None:
        await attribution.channel(session, i.channel_id, "channelId")
    for n, sp in enumerate(i.splits[:MAX_SPLITS]):
        if sp.team_id is not None and await session.get(Team, sp.team_id) is None:
            raise NotFound("team not found", f"splits.{n}.teamId")
        if sp.account_id is not None and not await active_members(session, [sp.account_id]):
            raise NotFound("agent not found among the members", f"splits.{n}.accountId")
    if i.basis not in RULE_BASES:
        raise ValidationFailed(f"basis is one of {', '.join(RULE_BASES)}", "basis")
    amount, rate = _value(i.basis, i.amount, i.rate_bp, "")
    if i.period not in RULE_PERIODS:
        raise ValidationFailed(f"period is one of {', '.join(RULE_PERIODS)}", "period")
    if i.condition not in CONDITIONS:
        raise ValidationFailed(f"condition is one of {', '.join(CONDITIONS)}", "condition")
    if i.condition == "collected":
        collected = _bp(i.collected_bp, "collectedBp")
    elif i.collected_bp is not None:
        raise ValidationFailed("collectedBp goes with the condition collected", "collectedBp")
    else:
        collected = None
    if len(i.tiers) > MAX_TIERS:
        raise ValidationFailed(f"at most {MAX_TIERS} tiers", "tiers")
    if i.tiers and i.tier_measure not in TIER_MEASURES:
        raise ValidationFailed(
            f"tiers need a tierMeasure: {', '.join(TIER_MEASURES)}", "tierMeasure"
        )
    if not i.tiers and i.tier_measure is not None:
        raise ValidationFailed("a tierMeasure goes with tiers", "tierMeasure")
    tiers: list[JsonObject] = []
    last = 0
    for n, t in enumerate(i.tiers):
        if not last < t.start <= MAX_AMOUNT:
            raise ValidationFailed(
                "tiers start at 1 or more, each above the one before",
                f"tiers.{n}.start",
            )
        last = t.start
        a, r = _value(i.basis, t.amount, t.rate_bp, f"tiers.{n}.")
        tiers.append({"from": t.start, "amount": a, "rate_bp": r})
    splits = await _splits(session, i.splits)
    current = (
        await session.scalars(
            select(CommissionRule)
            .where(
                CommissionRule.project_id == i.project_id,
                func.coalesce(CommissionRule.channel_id, NIL) == (i.channel_id or NIL),
                CommissionRule.active,
            )
            .with_for_update()
        )
    ).first()
    if current is not None:
        current.active, current.version = False, current.version + 1
        await session.flush()
    row = CommissionRule(
        id=uuid7(),
        project_id=i.project_id,
        channel_id=i.channel_id,
        active=True,
        basis=i.basis,
        amount=amount,
        rate_bp=rate,
        currency=tenant_of(session).currency,
        tier_measure=i.tier_measure if i.tiers else None,
        period=i.period,
        tiers=tiers,
        splits=splits,
        condition=i.condition,
        collected_bp=collected,
        created_by=p.account_id,
        created_at=utcnow(),
        version=1,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("the rule was replaced meanwhile: try again", "projectId") from exc
    return row


async def deactivate_rule(session: AsyncSession, rule_id: uuid.UUID) -> CommissionRule:
    row = await session.get(CommissionRule, rule_id, with_for_update=True)
    if row is None:
        raise NotFound("rule not found", "ruleId")
    if not row.active:
        raise Conflict("the rule is not in force", "ruleId")
    row.active, row.version = False, row.version + 1
    await session.flush()
    return row


async def rules(
    session: AsyncSession, *, project_id: uuid.UUID | None = None, active_only: bool = True
) -> list[CommissionRule]:
    stmt = select(CommissionRule).order_by(CommissionRule.created_at.desc())
    if project_id is not None:
        stmt = stmt.where(CommissionRule.project_id == project_id)
    if active_only:
        stmt = stmt.where(CommissionRule.active)
    return list((await session.scalars(stmt.limit(500))).all())


# ---------------------------------------------------------------- computing


def period_start(day: date, period: str) -> date:
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def rate_of(price: int, rate_bp: int) -> int:
    """``rate_bp`` of ``price``, rounded half up to the minor unit."""
    return (price * rate_bp + BP // 2) // BP


def split(amount: int, shares: list[int]) -> list[int]:
    """Each share rounded down; what rounding leaves goes to the first line."""
    parts = [amount * s // BP for s in shares]
    if parts:
        parts[0] += amount * sum(shares) // BP - sum(parts)
    return parts


def tier_of(rule: CommissionRule, volume: int) -> tuple[int | None, int | None, int | None]:
    """(tier index or None, amount, rate_bp) for a volume."""
    chosen: int | None = None
    for n, t in enumerate(rule.tiers):
        if volume >= int(t["from"]):
            chosen = n
    if chosen is None:
        return None, rule.amount, rule.rate_bp
    t = rule.tiers[chosen]
    return chosen, t.get("amount"), t.get("rate_bp")


async def _volume(session: AsyncSession, rule: CommissionRule, since: datetime, price: int) -> int:
    """The rule's volume in its period, with this contract: its project's and channel's
    commissions (whichever version of the rule) signed since ``since`` and not ended."""
    same = and_(
        CommissionRule.project_id == rule.project_id,
        func.coalesce(CommissionRule.channel_id, NIL) == (rule.channel_id or NIL),
    )
    measure = func.count() if rule.tier_measure != "amount" else func.sum(Commission.price)
    got = await session.scalar(
        select(measure)
        .select_from(Commission)
        .join(CommissionRule, CommissionRule.id == Commission.rule_id)
        .where(same, Commission.signed_at >= since, Commission.status.in_(OPEN_COMMISSION))
    )
    return int(got or 0) + (1 if rule.tier_measure != "amount" else price)


async def _rule_for(
    session: AsyncSession, project_id: uuid.UUID, channel_id: uuid.UUID | None
) -> CommissionRule | None:
    wanted = [None] if channel_id is None else [channel_id, None]
    for ch in wanted:
        row = (
            await session.scalars(
                select(CommissionRule).where(
                    CommissionRule.project_id == project_id,
                    func.coalesce(CommissionRule.channel_id, NIL) == (ch or NIL),
                    CommissionRule.active,
                )
            )
        ).first()
        if row is not None:
            return row
    return None


async def on_contract_signed(session: AsyncSession, c: Contract) -> Commission | None:
    """The commission of a contract just signed (not an amendment): from the rule of the
    channel holding the buyer, else the project's default rule; none without a rule."""
    if c.amends_id is not None:
        return None
    held = await attribution.holder(session, c.project_id, c.client_id)
    channel_id = held.channel_id if held is not None else None
    rule = await _rule_for(session, c.project_id, channel_id)
    if rule is None:
        return None
    tenant = tenant_of(session)
    now = c.signed_at or utcnow()
    start = period_start(now.astimezone(tenant.zone).date(), rule.period)
    since = datetime.combine(start, datetime.min.time(), tenant.zone)
    volume = await _volume(session, rule, since, c.price) if rule.tiers else 0
    tier, fixed, rate = tier_of(rule, volume)
    total = fixed if fixed is not None else rate_of(c.price, int(rate or 0))
    total = int(total or 0)
    shares = [int(s["share_bp"]) for s in rule.splits]
    parts = split(total, shares)
    lines: list[CommissionLine] = []
    for n, (s, part) in enumerate(zip(rule.splits, parts, strict=True)):
        kind = str(s["kind"])
        if kind == "channel" and channel_id is None:
            continue  # nobody holds the buyer: the company keeps the channel's share
        lines.append(
            CommissionLine(
                id=uuid7(),
                position=n,
                kind=kind,
                account_id=(
                    (uuid.UUID(str(s["account_id"])) if s.get("account_id") else c.agent_id)
                    if kind == "agent"
                    else None
                ),
                team_id=uuid.UUID(str(s["team_id"])) if kind == "team" else None,
                channel_id=channel_id if kind == "channel" else None,
                share_bp=int(s["share_bp"]),
                amount=part,
            )
        )
    amount = sum(line.amount for line in lines)
    if amount <= 0:
        return None
    payable = rule.condition == "signed"
    row = Commission(
        id=uuid7(),
        contract_id=c.id,
        subscription_id=c.subscription_id,
        project_id=c.project_id,
        unit_id=c.unit_id,
        client_id=c.client_id,
        rule_id=rule.id,
        channel_id=channel_id,
        registration_id=held.id if held is not None else None,
        price=c.price,
        currency=c.currency,
        tier=tier,
        volume=volume,
        rate_bp=rate if fixed is None else None,
        amount=amount,
        condition=rule.condition,
        collected_bp=rule.collected_bp,
        status="payable" if payable else "pending",
        signed_at=now,
        payable_at=now if payable else None,
        created_at=utcnow(),
        version=1,
    )
    session.add(row)
    await session.flush()
    for line in lines:
        line.commission_id = row.id
        session.add(line)
    await session.flush()
    return row


async def on_collection(
    session: AsyncSession, contract_id: uuid.UUID, collected_total_minor: int, price_minor: int
) -> list[Commission]:
    """Money was collected on a contract (the collections feature's outbox event
    ``sales.collection.recorded`` calls this through a job): its pending commissions whose
    share of the price is now collected become payable. Returns those that moved."""
    for value, field in ((collected_total_minor, "collectedTotal"), (price_minor, "price")):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationFailed("amounts are integers (minor units)", field)
        if not 0 <= value <= MAX_AMOUNT * 100:
            raise ValidationFailed("an amount is from 0 to the largest price", field)
    if price_minor <= 0:
        raise ValidationFailed("the price is more than 0", "price")
    c = await session.get(Contract, contract_id)
    if c is None:
        raise NotFound("contract not found", "contractId")
    rows = (
        await session.scalars(
            select(Commission)
            .where(
                Commission.subscription_id == c.subscription_id,
                Commission.status == "pending",
                Commission.condition == "collected",
            )
            .with_for_update()
        )
    ).all()
    moved: list[Commission] = []
    now = utcnow()
    for row in rows:
        # collected / price >= collected_bp / 10000, in integers
        if collected_total_minor * BP >= price_minor * int(row.collected_bp or BP):
            row.status, row.payable_at, row.version = "payable", now, row.version + 1
            moved.append(row)
    await session.flush()
    return moved


# ---------------------------------------------------------------- approval, payment, clawback


def _source(row: Commission, step: str) -> str:
    return f"commission:{row.id}:{step}"


async def _locked(session: AsyncSession, commission_id: uuid.UUID) -> Commission:
    row = await session.get(Commission, commission_id, with_for_update=True)
    if row is None:
        raise NotFound("commission not found", "commissionId")
    return row


async def lines_of(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[CommissionLine]]:
    out: dict[uuid.UUID, list[CommissionLine]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await session.scalars(
        select(CommissionLine)
        .where(CommissionLine.commission_id.in_(ids))
        .order_by(CommissionLine.commission_id, CommissionLine.position)
    )
    for r in rows:
        out[r.commission_id].append(r)
    return out


async def _beneficiaries(session: AsyncSession, row: Commission) -> set[uuid.UUID]:
    lines = (await lines_of(session, [row.id]))[row.id]
    out = {line.account_id for line in lines if line.account_id is not None}
    if row.channel_id is not None:
        ch = await session.get(SalesChannel, row.channel_id)
        if ch is not None and ch.account_id is not None:
            out.add(ch.account_id)
    return out


async def decide(
    session: AsyncSession, p: Principal, commission_id: uuid.UUID, *, approve: bool, note: str
) -> Commission:
    """Approve (accrue in the ledger) or reject a payable commission; never one's own."""
    note = text(note, "note", required=False, max_len=300)
    row = await _locked(session, commission_id)
    if row.status != "payable":
        raise Conflict(f"a commission that is {row.status} is not to approve", "commissionId")
    if p.account_id in await _beneficiaries(session, row):
        raise Forbidden("a commission is approved by someone who earns none of it")
    now = utcnow()
    row.approved_by, row.decision_note, row.version = p.account_id, note, row.version + 1
    if not approve:
        row.status, row.ended_at, row.end_reason = "rejected", now, note or "rejected"
        await session.flush()
        return row
    row.status, row.approved_at = "approved", now
    await ledger.post(
        session,
        _source(row, "accrued"),
        f"commission accrued: contract {row.contract_id}",
        row.currency,
        [
            ledger.Line("commission_expense", row.amount, 0),
            ledger.Line("commissions_payable", 0, row.amount),
        ],
    )
    await session.flush()
    return row


async def pay(
    session: AsyncSession, p: Principal, commission_id: uuid.UUID, *, reference: str
) -> Commission:
    """Record an approved commission as paid out (a bank transfer: its reference)."""
    reference = text(reference, "reference", required=True, max_len=100)
    row = await _locked(session, commission_id)
    if row.status != "approved":
        raise Conflict(f"a commission that is {row.status} is not to pay", "commissionId")
    row.status, row.paid_at, row.paid_by = "paid", utcnow(), p.account_id
    row.pay_reference, row.version = reference, row.version + 1
    await ledger.post(
        session,
        _source(row, "paid"),
        f"commission paid: {reference}",
        row.currency,
        [
            ledger.Line("commissions_payable", row.amount, 0),
            ledger.Line("bank", 0, row.amount),
        ],
    )
    await session.flush()
    return row


async def on_contract_canceled(
    session: AsyncSession, c: Contract, *, reason: str
) -> list[Commission]:
    """A contract in force was canceled (解约): its commission ends. Nothing accrued:
    ``canceled``. Approved: the accrual is reversed. Paid: the payees owe it back
    (commission clawbacks, an asset, against the expense). Either way ``clawed_back``."""
    rows = (
        await session.scalars(
            select(Commission)
            .where(
                Commission.subscription_id == c.subscription_id,
                Commission.status.in_(OPEN_COMMISSION),
            )
            .with_for_update()
        )
    ).all()
    now = utcnow()
    for row in rows:
        row.ended_at, row.end_reason, row.version = now, reason[:300], row.version + 1
        if row.status in ("pending", "payable"):
            row.status = "canceled"
            continue
        debit = "commissions_payable" if row.status == "approved" else "commission_clawbacks"
        await ledger.post(
            session,
            _source(row, "clawback"),
            f"commission clawed back: contract {row.contract_id} canceled",
            row.currency,
            [ledger.Line(debit, row.amount, 0), ledger.Line("commission_expense", 0, row.amount)],
        )
        row.status, row.clawed_back = "clawed_back", row.amount
    await session.flush()
    return list(rows)


async def reattribute(session: AsyncSession, winner: ChannelRegistration) -> int:
    """A dispute was decided: commissions of the client and project not yet approved follow
    the winner's channel (their channel line changes payee). Returns how many."""
    rows = (
        await session.scalars(
            select(Commission)
            .where(
                Commission.project_id == winner.project_id,
                Commission.client_id == winner.client_id,
                Commission.status.in_(("pending", "payable")),
                Commission.channel_id.is_not(None),
                Commission.channel_id != winner.channel_id,
            )
            .with_for_update()
        )
    ).all()
    for row in rows:
        row.channel_id, row.registration_id = winner.channel_id, winner.id
        row.version += 1
        for line in (await lines_of(session, [row.id]))[row.id]:
            if line.kind == "channel":
                line.channel_id = winner.channel_id
    await session.flush()
    return len(rows)


# ---------------------------------------------------------------- reads


async def get(session: AsyncSession, commission_id: uuid.UUID) -> Commission | None:
    return await session.get(Commission, commission_id)


def _mine(p: Principal) -> ColumnElement[bool]:
    broker = select(SalesChannel.id).where(SalesChannel.account_id == p.account_id)
    lines = select(CommissionLine.commission_id).where(
        or_(CommissionLine.account_id == p.account_id, CommissionLine.channel_id.in_(broker))
    )
    return Commission.id.in_(lines)


async def commissions(
    session: AsyncSession,
    p: Principal,
    *,
    mine: bool,
    project_id: uuid.UUID | None = None,
    status: str | None = None,
    contract_id: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
    first: int = 50,
) -> list[Commission]:
    """Newest first; ``mine``: those with a line of the caller's (as an agent, or as the
    broker of a channel)."""
    if status is not None and status not in COMMISSION_STATUSES:
        raise ValueError(status)
    stmt = select(Commission).order_by(Commission.id.desc())
    if mine:
        stmt = stmt.where(_mine(p))
    if project_id is not None:
        stmt = stmt.where(Commission.project_id == project_id)
    if status is not None:
        stmt = stmt.where(Commission.status == status)
    if contract_id is not None:
        stmt = stmt.where(Commission.contract_id == contract_id)
    if after is not None:
        stmt = stmt.where(Commission.id < after)
    return list((await session.scalars(stmt.limit(max(0, min(first, MAX_PAGE)) + 1))).all())


# ---------------------------------------------------------------- collections (wiring)

COLLECTION_EVENT = "sales.collection.recorded"


def _react(session: Session, events: list[JsonObject]) -> None:
    """Outbox reactor: each ``sales.collection.recorded`` event (payload ``contract_id``,
    ``amount_minor``, ``collected_total_minor``, ``price_minor``) queues ``apply_collection``
    in the same transaction, which calls ``on_collection``."""
    from api.jobs import enqueue
    from api.sales import tasks

    slug = session.info.get("tenant_slug")
    if not slug:
        return
    for e in events:
        if e["kind"] != COLLECTION_EVENT:
            continue
        p = e["payload"]
        session.execute(
            enqueue(
                tasks.apply_collection,
                tenant=slug,
                contract_id=str(p["contract_id"]),
                collected_total_minor=int(p["collected_total_minor"]),
                price_minor=int(p["price_minor"]),
            )
        )


outbox.react(_react)
