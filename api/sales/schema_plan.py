"""GraphQL of payment plans (付款方式), collections (回款) and mortgage cases (按揭): the plan
of a draft contract, its schedule with paid and outstanding per line, money in (Stripe, bank
transfers with proof, mortgage disbursements), the mortgage's stages, the buyer's own view,
and the company's declared working days."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated

import strawberry

from api.graphql.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UserError,
    ValidationError,
    attempt,
    typed_as,
)
from api.graphql.permissions import requires
from api.graphql.types import Long, Money, parse_id, require_id
from api.payment.schema import Payment, PaymentPlatform
from api.sales import plan_service as service
from api.sales.plan_models import (
    Collection as CollectionRow,
)
from api.sales.plan_models import (
    CollectionSource,
    CollectionStatus,
    LineKind,
    LoanKind,
    MortgageStage,
    PlanKind,
)
from api.sales.plan_models import (
    MortgageCase as CaseRow,
)
from api.sales.plan_models import (
    Workday as WorkdayRow,
)

strawberry.enum(
    PlanKind,
    name="PaymentPlanKind",
    description="FULL: 一次性付款; INSTALMENTS: 分期 (an optional down payment, then equal "
    "instalments); COMMERCIAL_MORTGAGE: 商业贷款; PROVIDENT_MORTGAGE: 公积金贷款; "
    "COMBINATION: 组合贷款 (down payment + provident-fund part + commercial part).",
)
strawberry.enum(LineKind, name="PlanLineKind")
strawberry.enum(LoanKind, name="LoanKind")
strawberry.enum(
    CollectionSource,
    name="CollectionSource",
    description="STRIPE: paid in the app; BANK_TRANSFER: recorded by finance with proof; "
    "MORTGAGE: a mortgage case's disbursement.",
)
strawberry.enum(
    CollectionStatus,
    name="CollectionStatus",
    description="PENDING: a Stripe payment under way (it counts against what is "
    "outstanding); RECORDED: money in; REFUNDED: arrived when nothing was left, sent back.",
)
strawberry.enum(MortgageStage, name="MortgageStage")


@strawberry.enum(description="SUBMIT (every document received), APPROVE, REFUSE (a reason).")
class MortgageStep(enum.Enum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REFUSE = "refuse"


@strawberry.type(description="More money than the contract has outstanding: nothing changed.")
class OverpaymentError(UserError):
    pass


typed_as(service.Overpayment, OverpaymentError)


def _money(minor: int, currency: str) -> Money:
    return Money(minor_units=Long(minor), currency=currency.upper())


@strawberry.type(description="One line of a schedule, allocated oldest due first.")
class PlanLine:
    seq: int
    kind: LineKind
    loan: LoanKind | None
    label: str
    amount: Money
    scheduled_on: date = strawberry.field(description="Before rolling to a working day.")
    due_on: date = strawberry.field(description="A working day, the company's local date.")
    paid: Money
    outstanding: Money
    overdue: bool

    @classmethod
    def of(cls, x: service.ScheduleLine, currency: str) -> PlanLine:
        return cls(
            seq=x.seq,
            kind=LineKind(x.kind),
            loan=LoanKind(x.loan) if x.loan else None,
            label=x.label,
            amount=_money(x.amount, currency),
            scheduled_on=x.scheduled_on,
            due_on=x.due_on,
            paid=_money(x.paid, currency),
            outstanding=_money(x.outstanding, currency),
            overdue=x.overdue,
        )


@strawberry.type(description="Money received on a contract (回款).")
class SalesCollection:
    id: strawberry.ID
    contract_id: strawberry.ID = strawberry.field(description="The revision in force then.")
    number: str
    source: CollectionSource
    status: CollectionStatus
    amount: Money
    reference: str
    note: str
    proof_media_id: strawberry.ID | None
    mortgage_case_id: strawberry.ID | None
    payment_id: strawberry.ID | None
    recorded_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, r: CollectionRow) -> SalesCollection:
        def sid(v: object) -> strawberry.ID | None:
            return strawberry.ID(str(v)) if v is not None else None

        return cls(
            id=strawberry.ID(str(r.id)),
            contract_id=strawberry.ID(str(r.contract_id)),
            number=r.number,
            source=CollectionSource(r.source),
            status=CollectionStatus(r.status),
            amount=_money(r.amount, r.currency),
            reference=r.reference,
            note=r.note,
            proof_media_id=sid(r.proof_media_id),
            mortgage_case_id=sid(r.mortgage_case_id),
            payment_id=sid(r.payment_id),
            recorded_at=r.recorded_at,
            created_at=r.created_at,
        )


@strawberry.type
class MortgageDocument:
    code: str
    label: str
    received: bool
    received_at: datetime | None


@strawberry.type(description="The buyer's loan application: documents, bank, amount, stage.")
class MortgageCase:
    id: strawberry.ID
    contract_id: strawberry.ID
    number: str
    loan: LoanKind
    bank: str
    amount: Money
    stage: MortgageStage
    documents: list[MortgageDocument]
    missing: list[str] = strawberry.field(description="Labels of the documents not received.")
    note: str
    submitted_at: datetime | None
    approved_at: datetime | None
    disbursed_at: datetime | None
    refused_at: datetime | None
    refused_reason: str | None
    collection_id: strawberry.ID | None
    created_at: datetime
    version: int

    @classmethod
    def of(cls, c: CaseRow) -> MortgageCase:
        return cls(
            id=strawberry.ID(str(c.id)),
            contract_id=strawberry.ID(str(c.contract_id)),
            number=c.number,
            loan=LoanKind(c.loan),
            bank=c.bank,
            amount=_money(c.amount, c.currency),
            stage=MortgageStage(c.stage),
            documents=[
                MortgageDocument(
                    code=str(d["code"]),
                    label=str(d["label"]),
                    received=bool(d.get("received_at")),
                    received_at=(
                        datetime.fromisoformat(str(d["received_at"]))
                        if d.get("received_at")
                        else None
                    ),
                )
                for d in c.documents
            ],
            missing=[str(d["label"]) for d in service.missing(c)],
            note=c.note,
            submitted_at=c.submitted_at,
            approved_at=c.approved_at,
            disbursed_at=c.disbursed_at,
            refused_at=c.refused_at,
            refused_reason=c.refused_reason,
            collection_id=strawberry.ID(str(c.collection_id)) if c.collection_id else None,
            created_at=c.created_at,
            version=c.version,
        )


@strawberry.type(
    description="A contract's payment schedule: the plan's lines with what each has been "
    "paid (collections allocated oldest due first) and what is outstanding."
)
class PaymentSchedule:
    contract_id: strawberry.ID
    number: str
    kind: PlanKind
    structured: bool = strawberry.field(
        description="A plan was saved (else the contract's installments, read as they are)."
    )
    price: Money
    collected: Money
    pending: Money = strawberry.field(description="Stripe payments under way.")
    outstanding: Money = strawberry.field(description="The price less what was collected.")
    due_now: Money = strawberry.field(description="Outstanding on lines due by today.")
    overdue: Money = strawberry.field(description="Outstanding on lines due before today.")
    calendar_known: bool = strawberry.field(
        description="Every due date falls in a year whose official holidays are known (else "
        "only weekends and the company's declared days were skipped)."
    )
    lines: list[PlanLine]
    collections: list[SalesCollection]
    mortgage_cases: list[MortgageCase]

    @classmethod
    def of(cls, s: service.Schedule) -> PaymentSchedule:
        c = s.contract
        cur = c.currency
        return cls(
            contract_id=strawberry.ID(str(c.id)),
            number=c.number,
            kind=PlanKind(s.kind),
            structured=s.structured,
            price=_money(c.price, cur),
            collected=_money(s.collected, cur),
            pending=_money(s.pending, cur),
            outstanding=_money(s.outstanding, cur),
            due_now=_money(s.due_now, cur),
            overdue=_money(s.overdue, cur),
            calendar_known=s.calendar_known,
            lines=[PlanLine.of(x, cur) for x in s.lines],
            collections=[SalesCollection.of(r) for r in s.collections],
            mortgage_cases=[MortgageCase.of(m) for m in s.cases],
        )


@strawberry.type(description="A buyer's mortgage as the buyer sees it.")
class PurchaseMortgage:
    loan: LoanKind
    bank: str
    amount: Money
    stage: MortgageStage
    missing: list[str]


@strawberry.type(description="One of the buyer's own purchases (a contract in force).")
class Purchase:
    contract_id: strawberry.ID
    number: str
    unit_id: strawberry.ID
    kind: PlanKind
    price: Money
    collected: Money
    outstanding: Money
    due_now: Money
    overdue: Money
    next_due_on: date | None = strawberry.field(description="The next line with money due.")
    lines: list[PlanLine]
    mortgages: list[PurchaseMortgage]

    @classmethod
    def of(cls, s: service.Schedule) -> Purchase:
        c, cur = s.contract, s.contract.currency
        upcoming = sorted(x.due_on for x in s.lines if x.outstanding)
        return cls(
            contract_id=strawberry.ID(str(c.id)),
            number=c.number,
            unit_id=strawberry.ID(str(c.unit_id)),
            kind=PlanKind(s.kind),
            price=_money(c.price, cur),
            collected=_money(s.collected, cur),
            outstanding=_money(s.outstanding, cur),
            due_now=_money(s.due_now, cur),
            overdue=_money(s.overdue, cur),
            next_due_on=upcoming[0] if upcoming else None,
            lines=[PlanLine.of(x, cur) for x in s.lines],
            mortgages=[
                PurchaseMortgage(
                    loan=LoanKind(m.loan),
                    bank=m.bank,
                    amount=_money(m.amount, m.currency),
                    stage=MortgageStage(m.stage),
                    missing=[str(d["label"]) for d in service.missing(m)],
                )
                for m in s.cases
            ],
        )


@strawberry.type(description="A day the company declared worked or off.")
class Workday:
    day: date
    working: bool
    note: str

    @classmethod
    def of(cls, w: WorkdayRow) -> Workday:
        return cls(day=w.day, working=w.working, note=w.note)


# ---------------------------------------------------------------- inputs and payloads


@strawberry.input(
    description="The plan of a DRAFT contract; lines sum exactly to the price and fall due on "
    "working days (rolled forward). FULL: firstDue only. INSTALMENTS: instalments (1-60) "
    "every intervalMonths (1-12), after an optional downPayment due on firstDue (the first "
    "instalment a period later; without one, on firstDue); the remainder of an uneven split "
    "goes to the first instalment. Mortgages: downPayment (at least "
    "sales.min_down_payment_pct of the price) on firstDue, the loan on loanDue; "
    "COMBINATION: providentAmount of the loan from the provident fund, the rest commercial."
)
class PaymentPlanInput:
    contract_id: strawberry.ID
    kind: PlanKind
    first_due: date
    down_payment: Long | None = None
    instalments: int | None = None
    interval_months: int = 1
    provident_amount: Long | None = None
    loan_due: date | None = None


@strawberry.input(description="A bank transfer received, with its proof (a private media id).")
class BankTransferInput:
    contract_id: strawberry.ID
    amount: Long
    proof_media_id: strawberry.ID
    reference: str = ""
    note: str = ""
    idempotency_key: str | None = strawberry.field(
        default=None, description="The same key again gives the same collection."
    )


@strawberry.input(
    description="Open a mortgage case on a contract in force. documents: the labels of the "
    "checklist (default: the bank's usual list for the loan kind)."
)
class MortgageCaseInput:
    contract_id: strawberry.ID
    loan: LoanKind
    bank: str
    amount: Long
    documents: list[str] | None = None
    note: str = ""


@strawberry.type
class PaymentPlanPayload:
    schedule: PaymentSchedule
    document_sha256: str = strawberry.field(
        description="The contract's document, drawn again with the schedule: show and sign "
        "this one."
    )


@strawberry.type
class ContractPaymentPayload:
    collection: SalesCollection
    payment: Payment
    client_secret: str
    publishable_key: str
    stripe_account_id: str = strawberry.field(description="Pay on this connected account.")


@strawberry.type
class CollectionPayload:
    collection: SalesCollection
    schedule: PaymentSchedule


@strawberry.type
class MortgageCasePayload:
    case: MortgageCase


@strawberry.type
class DisbursementPayload:
    case: MortgageCase
    collection: SalesCollection
    schedule: PaymentSchedule


@strawberry.type
class WorkdayPayload:
    workday: Workday | None = strawberry.field(description="null: the declaration removed.")


_Errors = ValidationError | ConflictError | NotFoundError | PermissionDeniedError | AuthError
PaymentPlanResult = Annotated[PaymentPlanPayload | _Errors, strawberry.union("PaymentPlanResult")]
ContractPaymentResult = Annotated[
    ContractPaymentPayload | OverpaymentError | _Errors, strawberry.union("ContractPaymentResult")
]
CollectionResult = Annotated[
    CollectionPayload | OverpaymentError | _Errors, strawberry.union("CollectionResult")
]
MortgageCaseResult = Annotated[
    MortgageCasePayload | _Errors, strawberry.union("MortgageCaseResult")
]
DisbursementResult = Annotated[
    DisbursementPayload | OverpaymentError | _Errors, strawberry.union("DisbursementResult")
]
WorkdayResult = Annotated[WorkdayPayload | _Errors, strawberry.union("WorkdayResult")]


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("sales.plan.read")],
        description="A contract's payment schedule, collections and mortgage cases (null "
        "when missing or outside the scope).",
    )
    async def contract_schedule(
        self, info: strawberry.Info, contract_id: strawberry.ID
    ) -> PaymentSchedule | None:
        ctx = info.context
        cid = parse_id(contract_id)
        if cid is None:
            return None
        found = await service.schedule(ctx.session, ctx.principal_now(), cid)
        return PaymentSchedule.of(found) if found else None

    @strawberry.field(
        permission_classes=[requires("sales.plan.read")],
        description="A mortgage case (null when missing or outside the scope).",
    )
    async def mortgage_case(self, info: strawberry.Info, id: strawberry.ID) -> MortgageCase | None:
        ctx = info.context
        cid = parse_id(id)
        if cid is None:
            return None
        row = await service.case_of(ctx.session, ctx.principal_now(), cid)
        return MortgageCase.of(row) if row else None

    @strawberry.field(
        permission_classes=[requires("sales.purchase.own")],
        description="The caller's own purchases (contracts in force of the client records "
        "linked to the caller): the plan, what is due, the mortgage's stage.",
    )
    async def my_purchases(self, info: strawberry.Info) -> list[Purchase]:
        ctx = info.context
        return [
            Purchase.of(s) for s in await service.my_purchases(ctx.session, ctx.principal_now())
        ]

    @strawberry.field(
        permission_classes=[requires("sales.plan.read")],
        description="The days the company declared worked or off (over the official calendar).",
    )
    async def company_workdays(self, info: strawberry.Info) -> list[Workday]:
        return [Workday.of(w) for w in await service.workdays(info.context.session)]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("sales.plan.write")],
        description="Create or replace the payment plan of a DRAFT contract (an original or "
        "an amendment); its document is drawn again with the schedule.",
    )
    async def save_payment_plan(
        self, info: strawberry.Info, input: PaymentPlanInput
    ) -> PaymentPlanResult:
        ctx = info.context

        async def work() -> PaymentPlanPayload:
            cid = require_id(input.contract_id, "contract", "contractId")
            plan = await service.save_plan(
                ctx.session,
                ctx.kit,
                ctx.storage,
                ctx.principal_now(),
                service.PlanInput(
                    contract_id=cid,
                    kind=input.kind.value,
                    first_due=input.first_due,
                    down_payment=input.down_payment,
                    instalments=input.instalments,
                    interval_months=input.interval_months,
                    provident_amount=input.provident_amount,
                    loan_due=input.loan_due,
                ),
            )
            found = await service.schedule(ctx.session, ctx.principal_now(), cid)
            assert found is not None
            ctx.audit(
                "sales.plan.saved",
                target_type="contract",
                target_id=cid,
                kind=plan.kind,
                version=plan.version,
            )
            return PaymentPlanPayload(
                schedule=PaymentSchedule.of(found),
                document_sha256=found.contract.document_sha256,
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.collection.write")],
        description="A payment of `amount` on a contract in force through Stripe (the buyer "
        "pays with PaymentSheet); Stripe's event records the collection.",
    )
    async def start_contract_payment(
        self,
        info: strawberry.Info,
        contract_id: strawberry.ID,
        amount: Long,
        platform: PaymentPlatform,
        idempotency_key: str | None = None,
    ) -> ContractPaymentResult:
        ctx = info.context
        settings = ctx.kit.settings

        async def work() -> ContractPaymentPayload:
            started = await service.start_stripe_collection(
                ctx.session,
                settings,
                ctx.tenant,
                ctx.principal_now(),
                require_id(contract_id, "contract", "contractId"),
                amount=amount,
                platform=platform.value,
                idempotency_key=idempotency_key,
            )
            ctx.audit(
                "sales.collection.payment_started",
                target_type="contract",
                target_id=started.collection.contract_id,
                payment_id=str(started.payment.id),
                amount=amount,
            )
            return ContractPaymentPayload(
                collection=SalesCollection.of(started.collection),
                payment=Payment.of(started.payment),
                client_secret=started.client_secret,
                publishable_key=settings.stripe_publishable_key,
                stripe_account_id=started.payment.stripe_account,
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.collection.record")],
        description="Record a bank transfer received on a contract in force, with its proof.",
    )
    async def record_bank_transfer(
        self, info: strawberry.Info, input: BankTransferInput
    ) -> CollectionResult:
        ctx = info.context

        async def work() -> CollectionPayload:
            p = ctx.principal_now()
            cid = require_id(input.contract_id, "contract", "contractId")
            row = await service.record_bank_transfer(
                ctx.session,
                p,
                cid,
                amount=input.amount,
                proof_media_id=require_id(input.proof_media_id, "media", "proofMediaId"),
                reference=input.reference,
                note=input.note,
                idempotency_key=input.idempotency_key,
            )
            found = await service.schedule(ctx.session, p, cid)
            assert found is not None
            ctx.audit(
                "sales.collection.recorded",
                target_type="contract",
                target_id=cid,
                collection_id=str(row.id),
                source=row.source,
                amount=row.amount,
            )
            return CollectionPayload(
                collection=SalesCollection.of(row), schedule=PaymentSchedule.of(found)
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.mortgage.write")],
        description="Open the buyer's mortgage case on a contract in force (collecting its "
        "documents). One open case per contract and loan kind.",
    )
    async def open_mortgage_case(
        self, info: strawberry.Info, input: MortgageCaseInput
    ) -> MortgageCaseResult:
        ctx = info.context

        async def work() -> MortgageCasePayload:
            if input.documents is not None and len(input.documents) > service.MAX_DOCUMENTS:
                raise service.ValidationFailed(
                    f"at most {service.MAX_DOCUMENTS} documents", "documents"
                )
            row = await service.open_case(
                ctx.session,
                ctx.principal_now(),
                service.CaseInput(
                    contract_id=require_id(input.contract_id, "contract", "contractId"),
                    loan=input.loan.value,
                    bank=input.bank,
                    amount=input.amount,
                    documents=tuple(input.documents) if input.documents is not None else None,
                    note=input.note,
                ),
            )
            ctx.audit(
                "sales.mortgage.opened",
                target_type="mortgage_case",
                target_id=row.id,
                contract_id=str(row.contract_id),
                loan=row.loan,
                amount=row.amount,
            )
            return MortgageCasePayload(case=MortgageCase.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.mortgage.write")],
        description="Mark one document of a collecting case received (or not).",
    )
    async def mark_mortgage_document(
        self, info: strawberry.Info, case_id: strawberry.ID, code: str, received: bool = True
    ) -> MortgageCaseResult:
        ctx = info.context

        async def work() -> MortgageCasePayload:
            row = await service.mark_document(
                ctx.session,
                ctx.principal_now(),
                require_id(case_id, "mortgage case", "caseId"),
                code,
                received,
            )
            ctx.audit(
                "sales.mortgage.document",
                target_type="mortgage_case",
                target_id=row.id,
                code=code[:40],
                received=received,
            )
            return MortgageCasePayload(case=MortgageCase.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.mortgage.write")],
        description="Move a case: SUBMIT (collecting -> submitted, every document received), "
        "APPROVE (submitted -> approved), REFUSE (any open stage, a reason). Disbursing is "
        "disburseMortgage.",
    )
    async def move_mortgage_case(
        self,
        info: strawberry.Info,
        case_id: strawberry.ID,
        step: MortgageStep,
        reason: str = "",
    ) -> MortgageCaseResult:
        ctx = info.context

        async def work() -> MortgageCasePayload:
            row = await service.move_case(
                ctx.session,
                ctx.principal_now(),
                require_id(case_id, "mortgage case", "caseId"),
                step.value,
                reason=reason,
            )
            ctx.audit(
                "sales.mortgage.moved",
                target_type="mortgage_case",
                target_id=row.id,
                stage=row.stage,
            )
            return MortgageCasePayload(case=MortgageCase.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.collection.record")],
        description="The bank paid an APPROVED case's loan: a collection of its amount, the "
        "case disbursed.",
    )
    async def disburse_mortgage(
        self,
        info: strawberry.Info,
        case_id: strawberry.ID,
        reference: str = "",
        idempotency_key: str | None = None,
    ) -> DisbursementResult:
        ctx = info.context

        async def work() -> DisbursementPayload:
            p = ctx.principal_now()
            case, row = await service.disburse(
                ctx.session,
                p,
                require_id(case_id, "mortgage case", "caseId"),
                reference=reference,
                idempotency_key=idempotency_key,
            )
            found = await service.schedule(ctx.session, p, row.contract_id)
            assert found is not None
            ctx.audit(
                "sales.mortgage.disbursed",
                target_type="mortgage_case",
                target_id=case.id,
                collection_id=str(row.id),
                amount=row.amount,
            )
            return DisbursementPayload(
                case=MortgageCase.of(case),
                collection=SalesCollection.of(row),
                schedule=PaymentSchedule.of(found),
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.calendar")],
        description="Declare a day worked (true) or off (false) for the company, over the "
        "official calendar; null removes the declaration. Plans saved afterwards use it.",
    )
    async def declare_workday(
        self, info: strawberry.Info, day: date, working: bool | None = None, note: str = ""
    ) -> WorkdayResult:
        ctx = info.context

        async def work() -> WorkdayPayload:
            row = await service.declare_workday(
                ctx.session, ctx.principal_now(), day, working, note
            )
            ctx.audit(
                "sales.calendar.declared",
                target_type="workday",
                target_id=day.isoformat(),
                day=day.isoformat(),
                working=working,
            )
            return WorkdayPayload(workday=Workday.of(row) if row else None)

        result, error = await attempt(ctx.session, work)
        return error or result
