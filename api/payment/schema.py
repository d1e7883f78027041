"""Payments in GraphQL: start a deposit (what the mobile SDK needs to pay), list payments,
and connect the tenant to Stripe."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

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
from api.payment import service
from api.payment.models import Payment as PaymentRow
from api.payment.models import PaymentKind, PaymentPlatform, PaymentStatus

# The domain's enums are the GraphQL enums (strawberry.enum registers the class itself).
strawberry.enum(PaymentStatus, name="PaymentStatus")
strawberry.enum(PaymentKind, name="PaymentKind")
strawberry.enum(
    PaymentPlatform,
    name="PaymentPlatform",
    description="Where the buyer pays (WeChat Pay needs to know).",
)


@strawberry.type(description="Money paid to the company through Stripe.")
class Payment:
    id: strawberry.ID
    kind: PaymentKind
    status: PaymentStatus
    amount: Long = strawberry.field(description="Minor units of `currency` (fen, cents).")
    currency: str
    refunded_amount: Long
    unit_id: strawberry.ID | None
    client_id: strawberry.ID | None
    failure_code: str | None
    refund_reason: str | None
    paid_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, r: PaymentRow) -> Payment:
        return cls(
            id=strawberry.ID(str(r.id)),
            kind=PaymentKind(r.kind),
            status=PaymentStatus(r.status),
            amount=Long(r.amount),
            currency=r.currency,
            refunded_amount=Long(r.refunded_amount),
            unit_id=strawberry.ID(str(r.unit_id)) if r.unit_id else None,
            client_id=strawberry.ID(str(r.client_id)) if r.client_id else None,
            failure_code=r.failure_code,
            refund_reason=r.refund_reason,
            paid_at=r.paid_at,
            created_at=r.created_at,
        )


@strawberry.type(description="What Stripe's mobile SDK (PaymentSheet) needs to take the deposit.")
class DepositPayload:
    payment: Payment
    client_secret: str
    publishable_key: str
    stripe_account_id: str = strawberry.field(description="Pay on this connected account.")
    hold_expires_at: datetime | None = strawberry.field(
        description="Pay before this, or the unit is released."
    )


@strawberry.type(description="The unit is available again; refunded is what went back.")
class CancelReservationPayload:
    payment: Payment
    refunded: Long


CancelReservationResult = Annotated[
    CancelReservationPayload
    | ValidationError
    | ConflictError
    | NotFoundError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("CancelReservationResult"),
]


@strawberry.type(description="The company's own Anju plan, paid through Stripe Billing.")
class TenantBilling:
    plan: str
    status: str = strawberry.field(
        description="none, active, past_due, suspended (past due beyond the grace days), canceled"
    )
    past_due_since: datetime | None
    payments_account_id: str | None = strawberry.field(
        description="The Stripe account customers' payments go to (connectStripe)."
    )


@strawberry.type
class PlanCheckoutPayload:
    url: str


PlanCheckoutResult = Annotated[
    PlanCheckoutPayload | ValidationError | ConflictError | PermissionDeniedError | AuthError,
    strawberry.union("PlanCheckoutResult"),
]


@strawberry.type
class StripeConnectPayload:
    account_id: str
    onboarding_url: str


DepositResult = Annotated[
    DepositPayload
    | ValidationError
    | ConflictError
    | NotFoundError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("DepositResult"),
]
StripeConnectResult = Annotated[
    StripeConnectPayload | ValidationError | ConflictError | PermissionDeniedError | AuthError,
    strawberry.union("StripeConnectResult"),
]


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[requires("tenant.manage")])
    async def billing(self, info: strawberry.Info) -> TenantBilling:
        from api.payment import billing

        ctx = info.context
        row = await billing.status_of(ctx.session, ctx.tenant.id)
        return TenantBilling(
            plan=row.plan,
            status=row.billing_status,
            past_due_since=row.past_due_since,
            payments_account_id=row.stripe_account_id,
        )

    @strawberry.field(permission_classes=[requires("payment.read")])
    async def payments(
        self, info: strawberry.Info, unit_id: strawberry.ID | None = None, first: int = 50
    ) -> list[Payment]:
        ctx = info.context
        unit = require_id(unit_id, "unit", "unitId") if unit_id else None
        rows = await service.payments(
            ctx.session, ctx.principal_now(), unit_id=unit, first=max(1, min(first, 200))
        )
        return [Payment.of(r) for r in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("unit.hold")],
        description="Hold a unit for a buyer and take the deposit: pay with clientSecret on "
        "stripeAccountId before holdExpiresAt; the unit is reserved when the payment succeeds.",
    )
    async def start_deposit(
        self,
        info: strawberry.Info,
        unit_id: strawberry.ID,
        platform: PaymentPlatform,
        client_id: strawberry.ID | None = None,
    ) -> DepositResult:
        ctx = info.context
        settings = ctx.kit.settings

        async def work() -> DepositPayload:
            started = await service.start_deposit(
                ctx.session,
                settings,
                ctx.tenant,
                ctx.principal_now(),
                require_id(unit_id, "unit", "unitId"),
                client_id=require_id(client_id, "client", "clientId") if client_id else None,
                platform=platform.value,
            )
            return DepositPayload(
                payment=Payment.of(started.payment),
                client_secret=started.client_secret,
                publishable_key=settings.stripe_publishable_key,
                stripe_account_id=started.payment.stripe_account,
                hold_expires_at=started.hold_expires_at,
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("payment.refund")],
        description="Cancel a reservation paid by deposit: the unit goes back on sale and the "
        "deposit is refunded by the company's rules (payments.refund_full_hours, "
        "payments.refund_late_pct).",
    )
    async def cancel_reservation(
        self, info: strawberry.Info, unit_id: strawberry.ID, reason: str
    ) -> CancelReservationResult:
        ctx = info.context

        async def work() -> CancelReservationPayload:
            canceled = await service.cancel_reservation(
                ctx.session,
                ctx.kit.settings,
                ctx.principal_now(),
                require_id(unit_id, "unit", "unitId"),
                reason=reason,
            )
            ctx.audit(
                "payment.cancel_reservation",
                target_type="payment",
                target_id=canceled.payment.id,
                refunded=canceled.refunded,
            )
            return CancelReservationPayload(
                payment=Payment.of(canceled.payment), refunded=Long(canceled.refunded)
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("tenant.manage")],
        description="A Stripe Checkout page where the company subscribes to a plan.",
    )
    async def start_plan_checkout(
        self, info: strawberry.Info, plan: str, success_url: str, cancel_url: str
    ) -> PlanCheckoutResult:
        from api.payment import billing

        ctx = info.context

        async def work() -> PlanCheckoutPayload:
            url = await billing.start_checkout(
                ctx.session,
                ctx.kit.settings,
                ctx.tenant,
                plan,
                success_url=success_url,
                cancel_url=cancel_url,
            )
            ctx.audit(
                "payment.plan_checkout", target_type="tenant", target_id=ctx.tenant.id, plan=plan
            )
            return PlanCheckoutPayload(url=url)

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("tenant.manage")],
        description="Create the company's Stripe account (once) and a link to finish "
        "onboarding on Stripe.",
    )
    async def connect_stripe(
        self, info: strawberry.Info, return_url: str, refresh_url: str
    ) -> StripeConnectResult:
        ctx = info.context

        async def work() -> StripeConnectPayload:
            connected = await service.connect(
                ctx.session,
                ctx.kit.settings,
                ctx.tenant,
                return_url=return_url,
                refresh_url=refresh_url,
            )
            ctx.audit("payment.connect", target_type="tenant", target_id=ctx.tenant.id)
            return StripeConnectPayload(
                account_id=connected.account_id, onboarding_url=connected.onboarding_url
            )

        result, error = await attempt(ctx.session, work)
        return error or result
