"""GraphQL of commissions: rules per project and channel, the commissions of signed contracts
(approve, pay; clawed back when the contract is canceled), one's own commissions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry

from api.errors import ValidationFailed
from api.graphql.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    attempt,
)
from api.graphql.permissions import requires
from api.graphql.types import (
    Long,
    Money,
    Node,
    PageInfo,
    after_values,
    edges_of,
    parse_id,
    require_id,
)
from api.sales import commission as service
from api.sales.commission_models import (
    Commission as CommissionRow,
)
from api.sales.commission_models import (
    CommissionLine as LineRow,
)
from api.sales.commission_models import (
    CommissionRule as RuleRow,
)
from api.sales.commission_models import (
    CommissionStatus,
    Condition,
    RuleBasis,
    RulePeriod,
    SplitKind,
    TierMeasure,
)

strawberry.enum(
    RuleBasis,
    name="CommissionBasis",
    description="FIXED: an amount per contract; PERCENT: basis points of the contract price.",
)
strawberry.enum(
    TierMeasure,
    name="CommissionTierMeasure",
    description="COUNT: contracts signed in the period; AMOUNT: their prices summed (minor units).",
)
strawberry.enum(
    RulePeriod,
    name="CommissionPeriod",
    description="The tenant's calendar period in which tier volumes are counted.",
)
strawberry.enum(
    Condition,
    name="CommissionCondition",
    description="SIGNED: payable when the "
    "contract is signed; COLLECTED: once collectedBp of the price is collected.",
)
strawberry.enum(SplitKind, name="CommissionSplitKind")
strawberry.enum(
    CommissionStatus,
    name="CommissionStatus",
    description="PENDING: its condition is not met; PAYABLE: waits for approval; APPROVED: "
    "accrued in the ledger; PAID: paid out; REJECTED: refused; CANCELED: its contract was "
    "canceled before the accrual; CLAWED_BACK: canceled after it (reversed in the ledger).",
)

SORT = "NEWEST"
MAX_LIST = 20


def _sid(value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry.type
class CommissionTier:
    start: Long = strawberry.field(description="The volume from which it applies.")
    amount: Money | None
    rate_bp: int | None


@strawberry.type
class CommissionSplit:
    kind: SplitKind
    share_bp: int
    account_id: strawberry.ID | None = strawberry.field(
        description="An agent split's payee; null: the contract's agent."
    )
    team_id: strawberry.ID | None


@strawberry.type(
    description="How a project's contracts earn commission when a channel (or "
    "none: the project's default) holds the buyer."
)
class CommissionRule(Node):
    id: strawberry.ID
    project_id: strawberry.ID
    channel_id: strawberry.ID | None
    active: bool
    basis: RuleBasis
    amount: Money | None
    rate_bp: int | None
    tier_measure: TierMeasure | None
    period: RulePeriod
    tiers: list[CommissionTier]
    splits: list[CommissionSplit]
    condition: Condition
    collected_bp: int | None
    created_at: datetime
    version: int

    @classmethod
    def of(cls, r: RuleRow) -> CommissionRule:
        cur = r.currency
        return cls(
            id=strawberry.ID(str(r.id)),
            project_id=strawberry.ID(str(r.project_id)),
            channel_id=_sid(r.channel_id),
            active=r.active,
            basis=RuleBasis(r.basis),
            amount=Money.of(r.amount, cur),
            rate_bp=r.rate_bp,
            tier_measure=TierMeasure(r.tier_measure) if r.tier_measure else None,
            period=RulePeriod(r.period),
            tiers=[
                CommissionTier(
                    start=Long(int(t["from"])),
                    amount=Money.of(t.get("amount"), cur),
                    rate_bp=t.get("rate_bp"),
                )
                for t in r.tiers
            ],
            splits=[
                CommissionSplit(
                    kind=SplitKind(str(s["kind"])),
                    share_bp=int(s["share_bp"]),
                    account_id=_sid(
                        uuid.UUID(str(s["account_id"])) if s.get("account_id") else None
                    ),
                    team_id=_sid(uuid.UUID(str(s["team_id"])) if s.get("team_id") else None),
                )
                for s in r.splits
            ],
            condition=Condition(r.condition),
            collected_bp=r.collected_bp,
            created_at=r.created_at,
            version=r.version,
        )


@strawberry.type
class CommissionLine:
    kind: SplitKind
    account_id: strawberry.ID | None
    team_id: strawberry.ID | None
    channel_id: strawberry.ID | None
    share_bp: int
    amount: Money

    @classmethod
    def of(cls, line: LineRow, currency: str) -> CommissionLine:
        return cls(
            kind=SplitKind(line.kind),
            account_id=_sid(line.account_id),
            team_id=_sid(line.team_id),
            channel_id=_sid(line.channel_id),
            share_bp=line.share_bp,
            amount=Money(minor_units=Long(line.amount), currency=currency),
        )


@strawberry.type(description="What a signed contract earns under its rule, split in lines.")
class Commission(Node):
    id: strawberry.ID
    contract_id: strawberry.ID
    project_id: strawberry.ID
    unit_id: strawberry.ID
    client_id: strawberry.ID
    rule_id: strawberry.ID
    channel_id: strawberry.ID | None = strawberry.field(
        description="The channel that held the buyer at signing (null: none)."
    )
    registration_id: strawberry.ID | None
    price: Money
    tier: int | None = strawberry.field(description="The rule's tier applied (null: base).")
    volume: Long = strawberry.field(description="The rule's volume in its period, with it.")
    rate_bp: int | None
    amount: Money
    condition: Condition
    collected_bp: int | None
    status: CommissionStatus
    signed_at: datetime
    payable_at: datetime | None
    approved_by: strawberry.ID | None
    approved_at: datetime | None
    decision_note: str
    paid_at: datetime | None
    pay_reference: str
    clawed_back: Money
    ended_at: datetime | None
    end_reason: str
    version: int
    lines: list[CommissionLine]

    @classmethod
    def of(cls, c: CommissionRow, lines: list[LineRow]) -> Commission:
        cur = c.currency
        return cls(
            id=strawberry.ID(str(c.id)),
            contract_id=strawberry.ID(str(c.contract_id)),
            project_id=strawberry.ID(str(c.project_id)),
            unit_id=strawberry.ID(str(c.unit_id)),
            client_id=strawberry.ID(str(c.client_id)),
            rule_id=strawberry.ID(str(c.rule_id)),
            channel_id=_sid(c.channel_id),
            registration_id=_sid(c.registration_id),
            price=Money(minor_units=Long(c.price), currency=cur),
            tier=c.tier,
            volume=Long(c.volume),
            rate_bp=c.rate_bp,
            amount=Money(minor_units=Long(c.amount), currency=cur),
            condition=Condition(c.condition),
            collected_bp=c.collected_bp,
            status=CommissionStatus(c.status),
            signed_at=c.signed_at,
            payable_at=c.payable_at,
            approved_by=_sid(c.approved_by),
            approved_at=c.approved_at,
            decision_note=c.decision_note,
            paid_at=c.paid_at,
            pay_reference=c.pay_reference,
            clawed_back=Money(minor_units=Long(c.clawed_back), currency=cur),
            ended_at=c.ended_at,
            end_reason=c.end_reason,
            version=c.version,
            lines=[CommissionLine.of(line, cur) for line in lines],
        )


@strawberry.type
class CommissionEdge:
    cursor: str
    node: Commission


@strawberry.type
class CommissionConnection:
    edges: list[CommissionEdge]
    page_info: PageInfo


@strawberry.input(description="A tier: from this volume on, this amount (FIXED) or rate.")
class CommissionTierInput:
    start: Long
    amount: Long | None = None
    rate_bp: int | None = None


@strawberry.input(
    description="A payee's share in basis points; shares sum to 10000. AGENT "
    "with no accountId: the contract's agent; TEAM needs teamId; CHANNEL: the "
    "channel holding the buyer at signing (left out when none does)."
)
class CommissionSplitInput:
    kind: SplitKind
    share_bp: int
    account_id: strawberry.ID | None = None
    team_id: strawberry.ID | None = None


@strawberry.input(
    description="The rule of a project and a channel (none: the project's "
    "default), replacing the one in force."
)
class CommissionRuleInput:
    project_id: strawberry.ID
    channel_id: strawberry.ID | None = None
    basis: RuleBasis
    amount: Long | None = None
    rate_bp: int | None = None
    splits: list[CommissionSplitInput]
    tier_measure: TierMeasure | None = None
    period: RulePeriod = RulePeriod.MONTH
    tiers: list[CommissionTierInput] | None = None
    condition: Condition = Condition.SIGNED
    collected_bp: int | None = None


@strawberry.type
class CommissionRulePayload:
    rule: CommissionRule


@strawberry.type
class CommissionPayload:
    commission: Commission


_Errors = ValidationError | ConflictError | NotFoundError | PermissionDeniedError | AuthError
CommissionRuleResult = Annotated[
    CommissionRulePayload | _Errors, strawberry.union("CommissionRuleResult")
]
CommissionResult = Annotated[CommissionPayload | _Errors, strawberry.union("CommissionResult")]


def _opt_id(value: strawberry.ID | None, what: str, field: str) -> uuid.UUID | None:
    return require_id(value, what, field) if value else None


def _rule_input(i: CommissionRuleInput) -> service.RuleInput:
    if len(i.splits) > MAX_LIST:
        raise ValidationFailed(f"at most {MAX_LIST} splits", "splits")
    if i.tiers and len(i.tiers) > MAX_LIST:
        raise ValidationFailed(f"at most {MAX_LIST} tiers", "tiers")
    return service.RuleInput(
        project_id=require_id(i.project_id, "project", "projectId"),
        channel_id=_opt_id(i.channel_id, "channel", "channelId"),
        basis=i.basis.value,
        amount=i.amount,
        rate_bp=i.rate_bp,
        splits=tuple(
            service.SplitInput(
                kind=s.kind.value,
                share_bp=s.share_bp,
                account_id=_opt_id(s.account_id, "agent", f"splits.{n}.accountId"),
                team_id=_opt_id(s.team_id, "team", f"splits.{n}.teamId"),
            )
            for n, s in enumerate(i.splits)
        ),
        tier_measure=i.tier_measure.value if i.tier_measure else None,
        period=i.period.value,
        tiers=tuple(
            service.TierInput(start=t.start, amount=t.amount, rate_bp=t.rate_bp)
            for t in i.tiers or ()
        ),
        condition=i.condition.value,
        collected_bp=i.collected_bp,
    )


async def _one(session, row: CommissionRow) -> Commission:
    lines = await service.lines_of(session, [row.id])
    return Commission.of(row, lines[row.id])


async def _page(
    info: strawberry.Info,
    *,
    mine: bool,
    project_id: strawberry.ID | None,
    status: CommissionStatus | None,
    contract_id: strawberry.ID | None,
    first: int,
    after: str | None,
) -> CommissionConnection:
    ctx = info.context
    cursor = after_values(after, SORT, None)
    project = parse_id(project_id) if project_id else None
    contract = parse_id(contract_id) if contract_id else None
    if (project_id and project is None) or (contract_id and contract is None):
        return CommissionConnection(
            edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None)
        )
    first = max(0, min(first, service.MAX_PAGE))
    rows = await service.commissions(
        ctx.session,
        ctx.principal_now(),
        mine=mine,
        project_id=project,
        status=status.value if status else None,
        contract_id=contract,
        after=cursor[0] if cursor else None,
        first=first,
    )
    lines = await service.lines_of(ctx.session, [r.id for r in rows])
    edges, page_info = edges_of(
        [(r, None) for r in rows],
        first,
        SORT,
        lambda c, r: CommissionEdge(cursor=c, node=Commission.of(r, lines[r.id])),
    )
    return CommissionConnection(edges=edges, page_info=page_info)


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("sales.commission.read")],
        description="Commission rules (those in force unless activeOnly is false).",
    )
    async def commission_rules(
        self,
        info: strawberry.Info,
        project_id: strawberry.ID | None = None,
        active_only: bool = True,
    ) -> list[CommissionRule]:
        project = parse_id(project_id) if project_id else None
        if project_id and project is None:
            return []
        rows = await service.rules(
            info.context.session, project_id=project, active_only=active_only
        )
        return [CommissionRule.of(r) for r in rows]

    @strawberry.field(
        permission_classes=[requires("sales.commission.read")],
        description="Every commission, newest first.",
    )
    async def commissions(
        self,
        info: strawberry.Info,
        project_id: strawberry.ID | None = None,
        status: CommissionStatus | None = None,
        contract_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> CommissionConnection:
        return await _page(
            info,
            mine=False,
            project_id=project_id,
            status=status,
            contract_id=contract_id,
            first=first,
            after=after,
        )

    @strawberry.field(
        permission_classes=[requires("sales.commission.mine")],
        description="Commissions with a line of the caller's (as an agent, or as the broker "
        "of a channel), newest first.",
    )
    async def my_commissions(
        self,
        info: strawberry.Info,
        status: CommissionStatus | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> CommissionConnection:
        return await _page(
            info,
            mine=True,
            project_id=None,
            status=status,
            contract_id=None,
            first=first,
            after=after,
        )

    @strawberry.field(
        permission_classes=[requires("sales.commission.read")],
        description="One commission (null when missing).",
    )
    async def commission(self, info: strawberry.Info, id: strawberry.ID) -> Commission | None:
        cid = parse_id(id)
        row = await service.get(info.context.session, cid) if cid else None
        return await _one(info.context.session, row) if row else None


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("sales.channel.manage")],
        description="Save the commission rule of a project and a channel (none: the project's "
        "default), replacing the one in force. Shares sum to 10000 basis points.",
    )
    async def save_commission_rule(
        self, info: strawberry.Info, input: CommissionRuleInput
    ) -> CommissionRuleResult:
        ctx = info.context

        async def work() -> CommissionRulePayload:
            row = await service.save_rule(ctx.session, ctx.principal_now(), _rule_input(input))
            ctx.audit(
                "sales.commission.rule_saved",
                target_type="commission_rule",
                target_id=row.id,
                project_id=str(row.project_id),
                channel_id=str(row.channel_id) if row.channel_id else None,
            )
            return CommissionRulePayload(rule=CommissionRule.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.channel.manage")],
        description="Take a commission rule out of force (contracts signed later fall back to "
        "the project's default rule, or earn none).",
    )
    async def deactivate_commission_rule(
        self, info: strawberry.Info, rule_id: strawberry.ID
    ) -> CommissionRuleResult:
        ctx = info.context

        async def work() -> CommissionRulePayload:
            row = await service.deactivate_rule(ctx.session, require_id(rule_id, "rule", "ruleId"))
            ctx.audit(
                "sales.commission.rule_deactivated", target_type="commission_rule", target_id=row.id
            )
            return CommissionRulePayload(rule=CommissionRule.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.commission.approve")],
        description="Approve (accrued in the ledger) or reject a PAYABLE commission; not one "
        "that the caller earns a part of.",
    )
    async def decide_commission(
        self, info: strawberry.Info, commission_id: strawberry.ID, approve: bool, note: str = ""
    ) -> CommissionResult:
        ctx = info.context

        async def work() -> CommissionPayload:
            row = await service.decide(
                ctx.session,
                ctx.principal_now(),
                require_id(commission_id, "commission", "commissionId"),
                approve=approve,
                note=note,
            )
            ctx.audit(
                "sales.commission.decided",
                target_type="commission",
                target_id=row.id,
                approve=approve,
                amount=row.amount,
            )
            return CommissionPayload(commission=await _one(ctx.session, row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.commission.pay")],
        description="Record an APPROVED commission as paid out (reference: the transfer's).",
    )
    async def pay_commission(
        self, info: strawberry.Info, commission_id: strawberry.ID, reference: str
    ) -> CommissionResult:
        ctx = info.context

        async def work() -> CommissionPayload:
            row = await service.pay(
                ctx.session,
                ctx.principal_now(),
                require_id(commission_id, "commission", "commissionId"),
                reference=reference,
            )
            ctx.audit(
                "sales.commission.paid",
                target_type="commission",
                target_id=row.id,
                amount=row.amount,
                reference=row.pay_reference,
            )
            return CommissionPayload(commission=await _one(ctx.session, row))

        result, error = await attempt(ctx.session, work)
        return error or result
