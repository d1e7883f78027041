"""Fee bills in GraphQL: staff issue and void them (bill.manage); owners and clients see and
pay their own (bill.pay), in part or in full, and download numbered receipts (PDF)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from api.graphql.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    attempt,
)
from api.graphql.permissions import requires
from api.graphql.types import Long, require_id
from api.payment import bills, receipts
from api.payment.models import Bill as BillRow
from api.payment.models import BillKind, BillStatus
from api.payment.models import Receipt as ReceiptRow
from api.payment.schema import Payment, PaymentPlatform

# The domain's enums are the GraphQL enums (strawberry.enum registers the class itself).
strawberry.enum(BillKind, name="BillKind")
strawberry.enum(BillStatus, name="BillStatus")


@strawberry.type(description="A numbered receipt for one payment of a bill.")
class Receipt:
    id: strawberry.ID
    number: str
    amount: Long
    currency: str
    issued_at: datetime
    row: strawberry.Private[ReceiptRow]

    @strawberry.field(
        description="A PDF of this receipt (zh-CN or en; default: the tenant's "
        "locale), valid for 15 minutes."
    )
    def pdf_url(self, info: strawberry.Info, locale: str | None = None) -> str:
        ctx = info.context
        base = str(ctx.request.base_url).rstrip("/")
        return receipts.LINK.url(
            base, ctx.kit, ctx.tenant, self.row.id, locale or ctx.tenant.locale
        )


@strawberry.type(description="A fee an owner or client owes.")
class Bill:
    id: strawberry.ID
    number: str
    kind: BillKind
    title: str
    period: str
    payer_id: strawberry.ID
    unit_id: strawberry.ID | None
    amount: Long
    paid_amount: Long
    outstanding: Long
    currency: str
    due_on: date
    status: BillStatus
    overdue: bool = strawberry.field(description="Open past its due date (the tenant's time zone).")
    issued_at: datetime
    receipts: list[Receipt]

    @classmethod
    def of(cls, r: BillRow, made: list[ReceiptRow], today: date) -> Bill:
        return cls(
            id=strawberry.ID(str(r.id)),
            number=r.number,
            kind=BillKind(r.kind),
            title=r.title,
            period=r.period,
            payer_id=strawberry.ID(str(r.payer_id)),
            unit_id=strawberry.ID(str(r.unit_id)) if r.unit_id else None,
            amount=Long(r.amount),
            paid_amount=Long(r.paid_amount),
            outstanding=Long(r.amount - r.paid_amount),
            currency=r.currency,
            due_on=r.due_on,
            status=BillStatus(r.status),
            overdue=bills.overdue(r, today),
            issued_at=r.issued_at,
            receipts=[
                Receipt(
                    id=strawberry.ID(str(x.id)),
                    number=x.number,
                    amount=Long(x.amount),
                    currency=x.currency,
                    issued_at=x.issued_at,
                    row=x,
                )
                for x in made
            ],
        )


async def _bills(session: AsyncSession, rows: list[BillRow]) -> list[Bill]:
    made = await bills.receipts(session, [r.id for r in rows])
    today = bills.today(session)
    return [Bill.of(r, made[r.id], today) for r in rows]


@strawberry.input
class IssueBillInput:
    kind: BillKind
    title: str
    payer_id: strawberry.ID
    amount: Long = strawberry.field(
        description="Minor units of the tenant's currency (fen, cents)."
    )
    due_on: date
    period: str = ""
    unit_id: strawberry.ID | None = None


@strawberry.type
class BillPayload:
    bill: Bill


@strawberry.type(description="What Stripe's mobile SDK needs to pay (part of) a bill.")
class BillPaymentPayload:
    payment: Payment
    client_secret: str
    publishable_key: str
    stripe_account_id: str


BillResult = Annotated[
    BillPayload
    | ValidationError
    | ConflictError
    | NotFoundError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("BillResult"),
]
BillPaymentResult = Annotated[
    BillPaymentPayload
    | ValidationError
    | ConflictError
    | NotFoundError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("BillPaymentResult"),
]


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("bill.pay")], description="Your bills, soonest due first."
    )
    async def my_bills(
        self, info: strawberry.Info, status: BillStatus | None = None, first: int = 50
    ) -> list[Bill]:
        ctx = info.context
        rows = await bills.listing(
            ctx.session,
            payer_id=ctx.principal_now().account_id,
            status=status.value if status else None,
            first=max(1, min(first, 200)),
        )
        return await _bills(ctx.session, rows)

    @strawberry.field(permission_classes=[requires("bill.manage")])
    async def bills(
        self,
        info: strawberry.Info,
        status: BillStatus | None = None,
        payer_id: strawberry.ID | None = None,
        overdue: bool = False,
        first: int = 50,
    ) -> list[Bill]:
        ctx = info.context
        payer = require_id(payer_id, "member", "payerId") if payer_id else None
        rows = await bills.listing(
            ctx.session,
            payer_id=payer,
            status=status.value if status else None,
            first=max(1, min(first, 500)),
            overdue_only=overdue,
        )
        return await _bills(ctx.session, rows)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("bill.manage")],
        description="Bill an owner or client (they are notified).",
    )
    async def issue_bill(self, info: strawberry.Info, input: IssueBillInput) -> BillResult:
        ctx = info.context

        async def work() -> BillPayload:
            row = await bills.issue(
                ctx.session,
                ctx.principal_now(),
                bills.BillInput(
                    kind=input.kind.value,
                    title=input.title,
                    amount=input.amount,
                    payer_id=require_id(input.payer_id, "member", "payerId"),
                    due_on=input.due_on,
                    period=input.period,
                    unit_id=require_id(input.unit_id, "unit", "unitId") if input.unit_id else None,
                ),
            )
            return BillPayload(bill=Bill.of(row, [], bills.today(ctx.session)))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("bill.manage")],
        description="Cancel an open bill nothing was paid on.",
    )
    async def void_bill(
        self, info: strawberry.Info, bill_id: strawberry.ID, reason: str
    ) -> BillResult:
        ctx = info.context

        async def work() -> BillPayload:
            row = await bills.void(ctx.session, require_id(bill_id, "bill", "billId"), reason)
            return BillPayload(bill=(await _bills(ctx.session, [row]))[0])

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("bill.pay")],
        description="Pay your bill: all that is left, or part of it (amount, in minor units: at "
        "least one unit of the bill's currency, e.g. ¥1 or $1).",
    )
    async def pay_bill(
        self,
        info: strawberry.Info,
        bill_id: strawberry.ID,
        platform: PaymentPlatform,
        amount: Long | None = None,
    ) -> BillPaymentResult:
        ctx = info.context
        settings = ctx.kit.settings

        async def work() -> BillPaymentPayload:
            started = await bills.pay(
                ctx.session,
                settings,
                ctx.tenant,
                ctx.principal_now(),
                require_id(bill_id, "bill", "billId"),
                amount=amount,
                platform=platform.value,
            )
            return BillPaymentPayload(
                payment=Payment.of(started.payment),
                client_secret=started.client_secret,
                publishable_key=settings.stripe_publishable_key,
                stripe_account_id=started.payment.stripe_account,
            )

        result, error = await attempt(ctx.session, work)
        return error or result
