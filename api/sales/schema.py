"""GraphQL of pledges (认筹): register, pay the fee, withdraw; the queue of a project and a
manager's counts of genuine and padded pledges."""

from __future__ import annotations

import uuid
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
from api.graphql.loading import now_or_later, then
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
from api.payment.models import PaymentPlatform
from api.payment.schema import Payment
from api.project.schema import Project, project_loader
from api.sales import service
from api.sales.models import PledgeFeeStatus, PledgeStatus
from api.sales.repository import PledgeCounts, PledgeRow

strawberry.enum(PledgeStatus, name="PledgeStatus")
strawberry.enum(
    PledgeFeeStatus,
    name="PledgeFeeStatus",
    description="NONE: no fee asked; UNPAID; PAID; REFUNDED: withdrawn and refunded.",
)

SORT = "QUEUE"


@strawberry.type(description="A client's pledge (认筹) for a project: a place in its queue.")
class Pledge(Node):
    id: strawberry.ID
    queue_number: int = strawberry.field(
        description="The place in the project's queue: from 1, without gaps, kept when withdrawn."
    )
    status: PledgeStatus
    client_id: strawberry.ID
    agent_id: strawberry.ID = strawberry.field(description="Who registered it.")
    fee: Money = strawberry.field(description="Zero when no fee is asked.")
    fee_status: PledgeFeeStatus
    refunded: Money
    payment_id: strawberry.ID | None = strawberry.field(description="The fee's latest payment.")
    paid_at: datetime | None
    genuine: bool = strawberry.field(
        description="诚意筹: the client had a showing of the project's units done, paid a "
        "deposit on one of them, or paid this pledge's fee (docs/sales.md). Else padded (水筹)."
    )
    withdrawn_at: datetime | None
    withdraw_reason: str | None
    created_at: datetime
    version: int
    project_id: strawberry.Private[uuid.UUID]

    @classmethod
    def of(cls, r: PledgeRow) -> Pledge:
        p = r.pledge
        currency = p.currency
        return cls(
            id=strawberry.ID(str(p.id)),
            queue_number=p.queue_number,
            status=PledgeStatus(p.status),
            client_id=strawberry.ID(str(p.client_id)),
            agent_id=strawberry.ID(str(p.agent_id)),
            fee=Money(minor_units=Long(p.fee), currency=currency),
            fee_status=p.fee_status,
            refunded=Money(minor_units=Long(p.refunded), currency=currency),
            payment_id=strawberry.ID(str(p.payment_id)) if p.payment_id else None,
            paid_at=p.paid_at,
            genuine=r.genuine,
            withdrawn_at=p.withdrawn_at,
            withdraw_reason=p.withdraw_reason,
            created_at=p.created_at,
            version=p.version,
            project_id=p.project_id,
        )

    @strawberry.field(permission_classes=[requires("project.read")])
    def project(self, info: strawberry.Info) -> Project:
        loader = info.context.loaders.get("project.by_id", project_loader)
        return then(now_or_later(loader, self.project_id), Project.of)


@strawberry.type
class PledgeEdge:
    cursor: str
    node: Pledge


@strawberry.type
class PledgeConnection:
    edges: list[PledgeEdge]
    page_info: PageInfo


@strawberry.type(description="A project's pledges counted; genuine + padded = active.")
class PledgeSummary:
    project_id: strawberry.ID
    active: int
    genuine: int
    padded: int
    withdrawn: int
    converted: int
    total: int = strawberry.field(description="Every pledge ever registered for the project.")
    last_queue_number: int

    @classmethod
    def of(cls, project_id: uuid.UUID, c: PledgeCounts) -> PledgeSummary:
        return cls(
            project_id=strawberry.ID(str(project_id)),
            active=c.active,
            genuine=c.genuine,
            padded=c.padded,
            withdrawn=c.withdrawn,
            converted=c.converted,
            total=c.active + c.withdrawn + c.converted,
            last_queue_number=c.last_queue_number,
        )


@strawberry.input
class RegisterPledgeInput:
    project_id: strawberry.ID
    client_id: strawberry.ID
    fee: Long = strawberry.field(
        default=0,
        description="Minor units of the company's currency; 0 (the default): no fee. A fee "
        "is paid with startPledgePayment.",
    )


@strawberry.type
class PledgePayload:
    pledge: Pledge


@strawberry.type(description="What Stripe's mobile SDK (PaymentSheet) needs to pay the fee.")
class PledgePaymentPayload:
    pledge: Pledge
    payment: Payment
    client_secret: str
    publishable_key: str
    stripe_account_id: str = strawberry.field(description="Pay on this connected account.")


@strawberry.type(description="The pledge left the queue; refunded is what went back.")
class WithdrawPledgePayload:
    pledge: Pledge
    refunded: Money


_Errors = ValidationError | ConflictError | NotFoundError | PermissionDeniedError | AuthError
RegisterPledgeResult = Annotated[PledgePayload | _Errors, strawberry.union("RegisterPledgeResult")]
StartPledgePaymentResult = Annotated[
    PledgePaymentPayload | _Errors, strawberry.union("StartPledgePaymentResult")
]
WithdrawPledgeResult = Annotated[
    WithdrawPledgePayload | _Errors, strawberry.union("WithdrawPledgeResult")
]


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("sales.pledge.read")],
        description="A pledge whose client the caller may see.",
    )
    async def pledge(self, info: strawberry.Info, id: strawberry.ID) -> Pledge | None:
        ctx = info.context
        pid = parse_id(id)
        if pid is None:
            return None
        row = await service.get(ctx.session, ctx.principal_now(), pid)
        return Pledge.of(row) if row else None

    @strawberry.field(
        permission_classes=[requires("sales.pledge.read")],
        description="A project's pledges in queue order (those whose client the caller may "
        "see); filters by status, genuine and client.",
    )
    async def pledges(
        self,
        info: strawberry.Info,
        project_id: strawberry.ID,
        status: PledgeStatus | None = None,
        genuine: bool | None = None,
        client_id: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> PledgeConnection:
        ctx = info.context
        cursor = after_values(after, SORT, int)
        project, client = parse_id(project_id), parse_id(client_id) if client_id else None
        if project is None or (client_id and client is None):
            return PledgeConnection(
                edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None)
            )
        first = max(0, min(first, service.MAX_PAGE))
        rows = await service.pledges(
            ctx.session,
            ctx.principal_now(),
            project_id=project,
            status=status.value if status else None,
            genuine=genuine,
            client_id=client,
            after=cursor[0] if cursor else None,
            first=first,
        )
        edges, page_info = edges_of(
            [(r, r.pledge.queue_number) for r in rows],
            first,
            SORT,
            lambda c, r: PledgeEdge(cursor=c, node=Pledge.of(r)),
        )
        return PledgeConnection(edges=edges, page_info=page_info)

    @strawberry.field(
        permission_classes=[requires("sales.pledge.summary")],
        description="A project's pledges counted: active ones genuine (诚意筹) and padded (水筹), "
        "withdrawn, converted. Null for an unknown project.",
    )
    async def pledge_summary(
        self, info: strawberry.Info, project_id: strawberry.ID
    ) -> PledgeSummary | None:
        pid = parse_id(project_id)
        if pid is None:
            return None
        counts = await service.summary(info.context.session, pid)
        return PledgeSummary.of(pid, counts) if counts else None


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("sales.pledge.write")],
        description="Register a client's pledge for a project: the project's next queue "
        "number. One active pledge per client and project (CONFLICT).",
    )
    async def register_pledge(
        self, info: strawberry.Info, input: RegisterPledgeInput
    ) -> RegisterPledgeResult:
        ctx = info.context

        async def work() -> PledgePayload:
            row = await service.register(
                ctx.session,
                ctx.kit.settings,
                ctx.principal_now(),
                service.PledgeInput(
                    project_id=require_id(input.project_id, "project", "projectId"),
                    client_id=require_id(input.client_id, "client", "clientId"),
                    fee=input.fee,
                ),
            )
            ctx.audit(
                "sales.pledge.registered",
                target_type="pledge",
                target_id=row.pledge.id,
                project_id=str(row.pledge.project_id),
                client_id=str(row.pledge.client_id),
                queue_number=row.pledge.queue_number,
                fee=row.pledge.fee,
            )
            return PledgePayload(pledge=Pledge.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.pledge.write")],
        description="Take the pledge's fee: pay with clientSecret on stripeAccountId; the "
        "pledge is paid when the payment succeeds.",
    )
    async def start_pledge_payment(
        self, info: strawberry.Info, pledge_id: strawberry.ID, platform: PaymentPlatform
    ) -> StartPledgePaymentResult:
        ctx = info.context
        settings = ctx.kit.settings

        async def work() -> PledgePaymentPayload:
            started = await service.start_payment(
                ctx.session,
                settings,
                ctx.tenant,
                ctx.principal_now(),
                require_id(pledge_id, "pledge", "pledgeId"),
                platform=platform.value,
            )
            ctx.audit(
                "sales.pledge.payment_started",
                target_type="pledge",
                target_id=started.row.pledge.id,
                payment_id=str(started.payment.id),
            )
            return PledgePaymentPayload(
                pledge=Pledge.of(started.row),
                payment=Payment.of(started.payment),
                client_secret=started.client_secret,
                publishable_key=settings.stripe_publishable_key,
                stripe_account_id=started.payment.stripe_account,
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.pledge.write")],
        description="Withdraw a pledge: its queue number is kept (never given again); a paid "
        "fee is refunded by the company's rule (sales.pledge_refund_pct).",
    )
    async def withdraw_pledge(
        self, info: strawberry.Info, pledge_id: strawberry.ID, reason: str = ""
    ) -> WithdrawPledgeResult:
        ctx = info.context

        async def work() -> WithdrawPledgePayload:
            done = await service.withdraw(
                ctx.session,
                ctx.kit.settings,
                ctx.principal_now(),
                require_id(pledge_id, "pledge", "pledgeId"),
                reason=reason,
            )
            ctx.audit(
                "sales.pledge.withdrawn",
                target_type="pledge",
                target_id=done.row.pledge.id,
                refunded=done.refunded,
            )
            pledge = Pledge.of(done.row)
            refunded = Money(minor_units=Long(done.refunded), currency=pledge.fee.currency)
            return WithdrawPledgePayload(pledge=pledge, refunded=refunded)

        result, error = await attempt(ctx.session, work)
        return error or result
