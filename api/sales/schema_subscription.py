"""GraphQL of subscriptions (认购): subscribe a reserved unit at a locked price, decide a
discount above the company's limit, ask for and decide more days to sign, change unit (换房),
withdraw (退房); the agreement as PDF; lists with an overdue filter."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from api.db import utcnow
from api.graphql.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    attempt,
)
from api.graphql.loading import batch_loader, now_or_later, then
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
from api.project.schema import Project, project_loader
from api.sales import agreement
from api.sales import subscription_repository as repo
from api.sales import subscription_service as service
from api.sales.models import RequestKind, RequestStatus, SubscriptionStatus
from api.sales.models import Subscription as SubscriptionRow
from api.sales.models import SubscriptionRequest as RequestRow
from api.unit.schema import Unit, unit_loader

strawberry.enum(
    SubscriptionStatus,
    name="SalesSubscriptionStatus",
    description="PENDING_APPROVAL: its discount waits (the unit stays reserved); ACTIVE: price "
    "agreed, unit subscribed, contract to sign by signDeadline; REJECTED: its discount was "
    "refused (the unit stays reserved); WITHDRAWN: 退房, the unit is back on sale; EXPIRED: "
    "not signed by the deadline, ended by the job (sales.expire_overdue).",
)
strawberry.enum(RequestKind, name="SubscriptionRequestKind")
strawberry.enum(RequestStatus, name="SubscriptionRequestStatus")

SORT = "NEWEST"
_requests_loader = batch_loader(repo.requests_of, list)


def _sid(value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry.type(
    description="What a subscription waits for someone else to decide: a discount above the "
    "company's limit, or more days to sign."
)
class SubscriptionRequest(Node):
    id: strawberry.ID
    subscription_id: strawberry.ID
    kind: RequestKind
    status: RequestStatus
    unit_id: strawberry.ID | None = strawberry.field(description="DISCOUNT: the unit reviewed.")
    list_price: Money | None = strawberry.field(description="DISCOUNT: the price reviewed.")
    agreed_price: Money | None = strawberry.field(description="DISCOUNT: the price asked.")
    days: int | None = strawberry.field(description="EXTENSION: days after the deadline.")
    reason: str
    requested_by: strawberry.ID
    requested_at: datetime
    decided_by: strawberry.ID | None
    decided_at: datetime | None
    decision_note: str

    @classmethod
    def of(cls, r: RequestRow, currency: str) -> SubscriptionRequest:
        return cls(
            id=strawberry.ID(str(r.id)),
            subscription_id=strawberry.ID(str(r.subscription_id)),
            kind=RequestKind(r.kind),
            status=RequestStatus(r.status),
            unit_id=_sid(r.unit_id),
            list_price=Money.of(r.list_price, currency),
            agreed_price=Money.of(r.agreed_price, currency),
            days=r.days,
            reason=r.reason,
            requested_by=strawberry.ID(str(r.requested_by)),
            requested_at=r.requested_at,
            decided_by=_sid(r.decided_by),
            decided_at=r.decided_at,
            decision_note=r.decision_note,
        )


@strawberry.type(
    description="A client's subscription (认购) of a unit: the price locked, the contract to "
    "sign by a deadline."
)
class SalesSubscription(Node):
    id: strawberry.ID
    status: SubscriptionStatus
    project_id: strawberry.ID
    unit_id: strawberry.ID = strawberry.field(description="The unit now (after any change).")
    client_id: strawberry.ID
    agent_id: strawberry.ID = strawberry.field(description="Who subscribed it.")
    pledge_id: strawberry.ID | None = strawberry.field(
        description="The client's pledge for the project it converted."
    )
    deposit_id: strawberry.ID | None = strawberry.field(
        description="The reservation's paid deposit (a payment), refunded by the company's "
        "rule when withdrawn."
    )
    list_price: Money = strawberry.field(description="The unit's list price when locked.")
    discount: Money
    discount_pct: Decimal = strawberry.field(description="The discount, % of the list price.")
    agreed_price: Money
    sign_deadline: datetime | None = strawberry.field(
        description="Sign the contract by then: the end of a day in the company's time zone."
    )
    overdue: bool = strawberry.field(description="Active and past signDeadline.")
    note: str
    withdrawn_at: datetime | None
    withdraw_reason: str | None
    refunded: Money = strawberry.field(description="What went back of the deposit.")
    created_at: datetime
    version: int
    row_id: strawberry.Private[uuid.UUID]
    row_unit: strawberry.Private[uuid.UUID]
    row_project: strawberry.Private[uuid.UUID]
    currency: strawberry.Private[str]

    @classmethod
    def of(cls, s: SubscriptionRow) -> SalesSubscription:
        c = s.currency
        return cls(
            id=strawberry.ID(str(s.id)),
            status=SubscriptionStatus(s.status),
            project_id=strawberry.ID(str(s.project_id)),
            unit_id=strawberry.ID(str(s.unit_id)),
            client_id=strawberry.ID(str(s.client_id)),
            agent_id=strawberry.ID(str(s.agent_id)),
            pledge_id=_sid(s.pledge_id),
            deposit_id=_sid(s.deposit_id),
            list_price=Money(minor_units=Long(s.list_price), currency=c),
            discount=Money(minor_units=Long(s.discount), currency=c),
            discount_pct=s.discount_pct,
            agreed_price=Money(minor_units=Long(s.agreed_price), currency=c),
            sign_deadline=s.sign_deadline,
            overdue=s.status == "active"
            and s.sign_deadline is not None
            and s.sign_deadline < utcnow(),
            note=s.note,
            withdrawn_at=s.withdrawn_at,
            withdraw_reason=s.withdraw_reason,
            refunded=Money(minor_units=Long(s.refunded), currency=c),
            created_at=s.created_at,
            version=s.version,
            row_id=s.id,
            row_unit=s.unit_id,
            row_project=s.project_id,
            currency=c,
        )

    @strawberry.field(permission_classes=[requires("project.read")])
    def project(self, info: strawberry.Info) -> Project:
        loader = info.context.loaders.get("project.by_id", project_loader)
        return then(now_or_later(loader, self.row_project), Project.of)

    @strawberry.field(permission_classes=[requires("unit.read")])
    async def unit(self, info: strawberry.Info) -> Unit | None:
        row = await info.context.loaders.get("unit.by_id", unit_loader).load(self.row_unit)
        return Unit.of(row) if row else None

    @strawberry.field(
        permission_classes=[requires("sales.subscription.read")],
        description="Its discount and extension requests, oldest first.",
    )
    async def requests(self, info: strawberry.Info) -> list[SubscriptionRequest]:
        rows = await info.context.loaders.get("subscription.requests", _requests_loader).load(
            self.row_id
        )
        return [SubscriptionRequest.of(r, self.currency) for r in rows]

    @strawberry.field(
        permission_classes=[requires("sales.subscription.read")],
        description="The agreement (认购协议书) as PDF (zh-CN or en; default: the company's "
        "locale), valid for 15 minutes; null unless ACTIVE. Phone and ID number are masked.",
    )
    def agreement_url(self, info: strawberry.Info, locale: str | None = None) -> str | None:
        if self.status != SubscriptionStatus.ACTIVE:
            return None
        ctx = info.context
        base = str(ctx.request.base_url).rstrip("/")
        return agreement.LINK.url(
            base, ctx.kit, ctx.tenant, self.row_id, locale or ctx.tenant.locale
        )


@strawberry.type
class SalesSubscriptionEdge:
    cursor: str
    node: SalesSubscription


@strawberry.type
class SalesSubscriptionConnection:
    edges: list[SalesSubscriptionEdge]
    page_info: PageInfo


@strawberry.input(
    description="At most one of discountAmount (minor units) and discountPercent (two "
    "decimals at most); neither: no discount."
)
class SubscribeUnitInput:
    unit_id: strawberry.ID
    client_id: strawberry.ID
    discount_amount: Long | None = None
    discount_percent: Decimal | None = None
    note: str = ""


@strawberry.input
class ChangeSubscriptionUnitInput:
    subscription_id: strawberry.ID
    unit_id: strawberry.ID = strawberry.field(description="An available unit of the project.")
    reason: str
    discount_amount: Long | None = None
    discount_percent: Decimal | None = None


@strawberry.type
class SalesSubscriptionPayload:
    subscription: SalesSubscription


@strawberry.type
class SubscriptionRequestPayload:
    subscription: SalesSubscription
    request: SubscriptionRequest


@strawberry.type(description="退房: refunded is what went back of the deposit.")
class WithdrawSubscriptionPayload:
    subscription: SalesSubscription
    refunded: Money


_Errors = ValidationError | ConflictError | NotFoundError | PermissionDeniedError | AuthError
SalesSubscriptionResult = Annotated[
    SalesSubscriptionPayload | _Errors, strawberry.union("SalesSubscriptionResult")
]
SubscriptionRequestResult = Annotated[
    SubscriptionRequestPayload | _Errors, strawberry.union("SubscriptionRequestResult")
]
WithdrawSubscriptionResult = Annotated[
    WithdrawSubscriptionPayload | _Errors, strawberry.union("WithdrawSubscriptionResult")
]


def _discount(amount: int | None, percent: Decimal | None) -> service.Discount:
    return service.Discount(amount=amount, percent=percent)


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("sales.subscription.read")],
        description="A subscription whose client the caller may see.",
    )
    async def sales_subscription(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> SalesSubscription | None:
        ctx = info.context
        sid = parse_id(id)
        if sid is None:
            return None
        row = await service.get(ctx.session, ctx.principal_now(), sid)
        return SalesSubscription.of(row) if row else None

    @strawberry.field(
        permission_classes=[requires("sales.subscription.read")],
        description="Subscriptions whose client the caller may see, newest first; filters by "
        "project, status, client and overdue (active and past the deadline now).",
    )
    async def sales_subscriptions(
        self,
        info: strawberry.Info,
        project_id: strawberry.ID | None = None,
        status: SubscriptionStatus | None = None,
        client_id: strawberry.ID | None = None,
        overdue: bool | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> SalesSubscriptionConnection:
        ctx = info.context
        cursor = after_values(after, SORT, None)
        project = parse_id(project_id) if project_id else None
        client = parse_id(client_id) if client_id else None
        if (project_id and project is None) or (client_id and client is None):
            return SalesSubscriptionConnection(
                edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None)
            )
        first = max(0, min(first, service.MAX_PAGE))
        rows = await service.subscriptions(
            ctx.session,
            ctx.principal_now(),
            project_id=project,
            status=status.value if status else None,
            client_id=client,
            overdue=overdue,
            after=cursor[0] if cursor else None,
            first=first,
        )
        edges, page_info = edges_of(
            [(r, None) for r in rows],
            first,
            SORT,
            lambda c, r: SalesSubscriptionEdge(cursor=c, node=SalesSubscription.of(r)),
        )
        return SalesSubscriptionConnection(edges=edges, page_info=page_info)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("sales.subscription.write")],
        description="Subscribe a reserved unit for a client: the price is locked from the "
        "unit's list price less the discount. A discount above the company's limit "
        "(sales.max_discount_pct) waits for approval (PENDING_APPROVAL); otherwise the unit "
        "is subscribed and the contract is to be signed by signDeadline. One subscription per "
        "unit (CONFLICT).",
    )
    async def subscribe_unit(
        self, info: strawberry.Info, input: SubscribeUnitInput
    ) -> SalesSubscriptionResult:
        ctx = info.context

        async def work() -> SalesSubscriptionPayload:
            sub = await service.subscribe(
                ctx.session,
                ctx.principal_now(),
                service.SubscribeInput(
                    unit_id=require_id(input.unit_id, "unit", "unitId"),
                    client_id=require_id(input.client_id, "client", "clientId"),
                    discount=_discount(input.discount_amount, input.discount_percent),
                    note=input.note,
                ),
            )
            ctx.audit(
                "sales.subscription.created",
                target_type="subscription",
                target_id=sub.id,
                unit_id=str(sub.unit_id),
                client_id=str(sub.client_id),
                status=sub.status,
                list_price=sub.list_price,
                agreed_price=sub.agreed_price,
            )
            return SalesSubscriptionPayload(subscription=SalesSubscription.of(sub))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.subscription.approve_discount")],
        description="Approve or reject the discount a subscription waits on (not one's own "
        "request). If the unit or its price moved since, nothing is applied and the "
        "subscription is rejected (its request STALE).",
    )
    async def decide_subscription_discount(
        self,
        info: strawberry.Info,
        subscription_id: strawberry.ID,
        approve: bool,
        note: str = "",
    ) -> SalesSubscriptionResult:
        ctx = info.context

        async def work() -> SalesSubscriptionPayload:
            sub = await service.decide_discount(
                ctx.session,
                ctx.principal_now(),
                require_id(subscription_id, "subscription", "subscriptionId"),
                approve=approve,
                note=note,
            )
            ctx.audit(
                "sales.subscription.discount_decided",
                target_type="subscription",
                target_id=sub.id,
                approve=approve,
                status=sub.status,
            )
            return SalesSubscriptionPayload(subscription=SalesSubscription.of(sub))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.subscription.write")],
        description="Ask for more days (1 to 30 after the current deadline) to sign an active "
        "subscription's contract; one request waits at a time.",
    )
    async def request_subscription_extension(
        self, info: strawberry.Info, subscription_id: strawberry.ID, days: int, reason: str
    ) -> SubscriptionRequestResult:
        ctx = info.context

        async def work() -> SubscriptionRequestPayload:
            sid = require_id(subscription_id, "subscription", "subscriptionId")
            req = await service.request_extension(
                ctx.session, ctx.principal_now(), sid, days=days, reason=reason
            )
            sub = await service.get(ctx.session, ctx.principal_now(), sid)
            assert sub is not None  # (just locked and seen)
            ctx.audit(
                "sales.subscription.extension_requested",
                target_type="subscription",
                target_id=sid,
                request_id=str(req.id),
                days=days,
            )
            return SubscriptionRequestPayload(
                subscription=SalesSubscription.of(sub),
                request=SubscriptionRequest.of(req, sub.currency),
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.subscription.extend")],
        description="Approve (the deadline moves by the days asked, to the end of that day) "
        "or reject an extension request; not one's own.",
    )
    async def decide_subscription_extension(
        self, info: strawberry.Info, request_id: strawberry.ID, approve: bool, note: str = ""
    ) -> SubscriptionRequestResult:
        ctx = info.context

        async def work() -> SubscriptionRequestPayload:
            done = await service.decide_extension(
                ctx.session,
                ctx.principal_now(),
                require_id(request_id, "extension request", "requestId"),
                approve=approve,
                note=note,
            )
            ctx.audit(
                "sales.subscription.extension_decided",
                target_type="subscription",
                target_id=done.subscription.id,
                request_id=str(done.request.id),
                status=done.request.status,
            )
            return SubscriptionRequestPayload(
                subscription=SalesSubscription.of(done.subscription),
                request=SubscriptionRequest.of(done.request, done.subscription.currency),
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.subscription.write")],
        description="换房: move an active subscription to an available unit of its project; "
        "the old unit goes back on sale, the price is locked again (a discount above the "
        "limit waits for approval again).",
    )
    async def change_subscription_unit(
        self, info: strawberry.Info, input: ChangeSubscriptionUnitInput
    ) -> SalesSubscriptionResult:
        ctx = info.context

        async def work() -> SalesSubscriptionPayload:
            sid = require_id(input.subscription_id, "subscription", "subscriptionId")
            before = await service.get(ctx.session, ctx.principal_now(), sid)
            from_unit = str(before.unit_id) if before else None
            sub = await service.change_unit(
                ctx.session,
                ctx.principal_now(),
                service.ChangeInput(
                    subscription_id=sid,
                    unit_id=require_id(input.unit_id, "unit", "unitId"),
                    reason=input.reason,
                    discount=_discount(input.discount_amount, input.discount_percent),
                ),
            )
            ctx.audit(
                "sales.subscription.unit_changed",
                target_type="subscription",
                target_id=sub.id,
                from_unit=from_unit,
                to_unit=str(sub.unit_id),
                status=sub.status,
                agreed_price=sub.agreed_price,
            )
            return SalesSubscriptionPayload(subscription=SalesSubscription.of(sub))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.subscription.write")],
        description="退房: withdraw a subscription with a reason; its unit goes back on sale "
        "and the deposit is refunded by the company's rule (sales.withdraw_refund_pct).",
    )
    async def withdraw_subscription(
        self, info: strawberry.Info, subscription_id: strawberry.ID, reason: str
    ) -> WithdrawSubscriptionResult:
        ctx = info.context

        async def work() -> WithdrawSubscriptionPayload:
            done = await service.withdraw(
                ctx.session,
                ctx.kit.settings,
                ctx.principal_now(),
                require_id(subscription_id, "subscription", "subscriptionId"),
                reason=reason,
            )
            ctx.audit(
                "sales.subscription.withdrawn",
                target_type="subscription",
                target_id=done.subscription.id,
                refunded=done.refunded,
            )
            sub = SalesSubscription.of(done.subscription)
            refunded = Money(minor_units=Long(done.refunded), currency=sub.currency)
            return WithdrawSubscriptionPayload(subscription=sub, refunded=refunded)

        result, error = await attempt(ctx.session, work)
        return error or result
