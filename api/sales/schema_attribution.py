"""GraphQL of channels and buyer attribution (报备): channels, registering a client for a
channel (a visit code and its QR), confirming the visit by the code, disputes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from api.graphql.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    attempt,
)
from api.graphql.permissions import requires
from api.graphql.types import Node, parse_id, require_id
from api.sales import attribution as service
from api.sales.attribution_models import AttributionDispute as DisputeRow
from api.sales.attribution_models import ChannelKind, DisputeStatus, RegistrationStatus
from api.sales.attribution_models import ChannelRegistration as RegistrationRow
from api.sales.attribution_models import SalesChannel as ChannelRow

strawberry.enum(
    ChannelKind,
    name="SalesChannelKind",
    description="AGENCY: 渠道分销, an "
    "external agency; BROKER: 全民经纪人, an individual who refers buyers.",
)
strawberry.enum(
    RegistrationStatus,
    name="ChannelRegistrationStatus",
    description="REGISTERED: waits for the visit (protected until expiresAt); VISITED: the "
    "code was scanned, the channel holds the client; DISPUTED: registered within another "
    "channel's protection, a manager decides; LOST / REJECTED: the other side won.",
)
strawberry.enum(DisputeStatus, name="AttributionDisputeStatus")


def _sid(value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry.type(description="A channel that brings buyers: an agency or a broker.")
class SalesChannel(Node):
    id: strawberry.ID
    name: str
    kind: ChannelKind
    account_id: strawberry.ID | None = strawberry.field(
        description="A broker's account of the company (sees their commissions)."
    )
    active: bool
    version: int

    @classmethod
    def of(cls, c: ChannelRow) -> SalesChannel:
        return cls(
            id=strawberry.ID(str(c.id)),
            name=c.name,
            kind=ChannelKind(c.kind),
            account_id=_sid(c.account_id),
            active=c.active,
            version=c.version,
        )


@strawberry.type(description="A channel's registration (报备) of a client for a project.")
class ChannelRegistration(Node):
    id: strawberry.ID
    project_id: strawberry.ID
    channel_id: strawberry.ID
    client_id: strawberry.ID
    code: str = strawberry.field(description="The visit code to enter at the site.")
    phone: str = strawberry.field(description="The client's phone, masked.")
    status: RegistrationStatus
    registered_by: strawberry.ID
    registered_at: datetime
    expires_at: datetime = strawberry.field(
        description="The end of its protection unless the visit is confirmed."
    )
    visited_at: datetime | None
    visited_by: strawberry.ID | None
    note: str
    version: int
    row: strawberry.Private[RegistrationRow]

    @classmethod
    def of(cls, r: RegistrationRow) -> ChannelRegistration:
        return cls(
            id=strawberry.ID(str(r.id)),
            project_id=strawberry.ID(str(r.project_id)),
            channel_id=strawberry.ID(str(r.channel_id)),
            client_id=strawberry.ID(str(r.client_id)),
            code=r.code,
            phone=r.phone_mask,
            status=RegistrationStatus(r.status),
            registered_by=strawberry.ID(str(r.registered_by)),
            registered_at=r.registered_at,
            expires_at=r.expires_at,
            visited_at=r.visited_at,
            visited_by=_sid(r.visited_by),
            note=r.note,
            version=r.version,
            row=r,
        )

    @strawberry.field(
        permission_classes=[requires("sales.attribution.register")],
        description="What the QR code holds (the company, the code and their signature): "
        "the staff app scans it; null once the visit is confirmed or the registration lost.",
    )
    def qr_payload(self, info: strawberry.Info) -> str | None:
        if self.row.status not in ("registered", "disputed") or self.row.visited_at:
            return None
        return service.qr_payload(info.context.kit, info.context.tenant, self.row.code)

    @strawberry.field(
        permission_classes=[requires("sales.attribution.register")],
        description="The QR code as SVG, a signed link valid 15 minutes; null when there is "
        "no visit left to confirm.",
    )
    def qr_url(self, info: strawberry.Info) -> str | None:
        if self.row.status not in ("registered", "disputed") or self.row.visited_at:
            return None
        ctx = info.context
        base = str(ctx.request.base_url).rstrip("/")
        return service.QR_LINK.url(base, ctx.kit, ctx.tenant, self.row.id)


@strawberry.type(description="Two channels registered one client for one project.")
class AttributionDispute(Node):
    id: strawberry.ID
    project_id: strawberry.ID
    client_id: strawberry.ID
    first_id: strawberry.ID = strawberry.field(description="The registration made first.")
    second_id: strawberry.ID
    evidence: JSON = strawberry.field(
        description="Both registrations as they stood: channel, code, registered at and by, "
        "expiry, visit; which was first; the window."
    )
    status: DisputeStatus
    winner_id: strawberry.ID | None
    resolved_by: strawberry.ID | None
    resolved_at: datetime | None
    resolution_note: str
    created_at: datetime

    @classmethod
    def of(cls, d: DisputeRow) -> AttributionDispute:
        return cls(
            id=strawberry.ID(str(d.id)),
            project_id=strawberry.ID(str(d.project_id)),
            client_id=strawberry.ID(str(d.client_id)),
            first_id=strawberry.ID(str(d.first_id)),
            second_id=strawberry.ID(str(d.second_id)),
            evidence=JSON(d.evidence),
            status=DisputeStatus(d.status),
            winner_id=_sid(d.winner_id),
            resolved_by=_sid(d.resolved_by),
            resolved_at=d.resolved_at,
            resolution_note=d.resolution_note,
            created_at=d.created_at,
        )


@strawberry.input
class RegisterChannelClientInput:
    channel_id: strawberry.ID
    project_id: strawberry.ID
    name: str
    phone: str
    note: str = ""


@strawberry.type
class SalesChannelPayload:
    channel: SalesChannel


@strawberry.type
class ChannelRegistrationPayload:
    registration: ChannelRegistration
    dispute: AttributionDispute | None = strawberry.field(
        description="Opened when another channel's registration protected the client."
    )
    client_created: bool = strawberry.field(description="No client had this phone: one was made.")


@strawberry.type
class VisitConfirmedPayload:
    registration: ChannelRegistration


@strawberry.type
class AttributionDisputePayload:
    dispute: AttributionDispute


_Errors = ValidationError | ConflictError | NotFoundError | PermissionDeniedError | AuthError
SalesChannelResult = Annotated[
    SalesChannelPayload | _Errors, strawberry.union("SalesChannelResult")
]
ChannelRegistrationResult = Annotated[
    ChannelRegistrationPayload | _Errors, strawberry.union("ChannelRegistrationResult")
]
VisitConfirmedResult = Annotated[
    VisitConfirmedPayload | _Errors, strawberry.union("VisitConfirmedResult")
]
AttributionDisputeResult = Annotated[
    AttributionDisputePayload | _Errors, strawberry.union("AttributionDisputeResult")
]


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("sales.attribution.register")],
        description="The company's channels (active ones unless activeOnly is false).",
    )
    async def sales_channels(
        self, info: strawberry.Info, active_only: bool = True
    ) -> list[SalesChannel]:
        rows = await service.channels(info.context.session, active_only=active_only)
        return [SalesChannel.of(c) for c in rows]

    @strawberry.field(
        permission_classes=[requires("sales.attribution.register")],
        description="Registrations, newest first: one's own (or one's channel's as its "
        "broker); every one for those who resolve disputes.",
    )
    async def channel_registrations(
        self,
        info: strawberry.Info,
        project_id: strawberry.ID | None = None,
        channel_id: strawberry.ID | None = None,
        status: RegistrationStatus | None = None,
        first: int = 50,
    ) -> list[ChannelRegistration]:
        ctx = info.context
        project = parse_id(project_id) if project_id else None
        channel = parse_id(channel_id) if channel_id else None
        if (project_id and project is None) or (channel_id and channel is None):
            return []
        rows = await service.registrations(
            ctx.session,
            ctx.principal_now(),
            project_id=project,
            channel_id=channel,
            status=status.value if status else None,
            first=first,
        )
        return [ChannelRegistration.of(r) for r in rows]

    @strawberry.field(
        permission_classes=[requires("sales.attribution.resolve")],
        description="Attribution disputes, newest first.",
    )
    async def attribution_disputes(
        self,
        info: strawberry.Info,
        status: DisputeStatus | None = None,
        project_id: strawberry.ID | None = None,
        first: int = 50,
    ) -> list[AttributionDispute]:
        project = parse_id(project_id) if project_id else None
        if project_id and project is None:
            return []
        rows = await service.disputes(
            info.context.session,
            status=status.value if status else None,
            project_id=project,
            first=first,
        )
        return [AttributionDispute.of(d) for d in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("sales.channel.manage")],
        description="A new channel: an agency, or a broker (optionally with their account).",
    )
    async def create_sales_channel(
        self,
        info: strawberry.Info,
        name: str,
        kind: ChannelKind,
        account_id: strawberry.ID | None = None,
    ) -> SalesChannelResult:
        ctx = info.context

        async def work() -> SalesChannelPayload:
            row = await service.create_channel(
                ctx.session,
                ctx.principal_now(),
                name=name,
                kind=kind.value,
                account_id=require_id(account_id, "account", "accountId") if account_id else None,
            )
            ctx.audit("sales.channel.created", target_type="sales_channel", target_id=row.id)
            return SalesChannelPayload(channel=SalesChannel.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.channel.manage")],
        description="Rename a channel, or make it inactive (no new registrations) or active.",
    )
    async def update_sales_channel(
        self,
        info: strawberry.Info,
        channel_id: strawberry.ID,
        name: str | None = None,
        active: bool | None = None,
    ) -> SalesChannelResult:
        ctx = info.context

        async def work() -> SalesChannelPayload:
            row = await service.update_channel(
                ctx.session,
                require_id(channel_id, "channel", "channelId"),
                name=name,
                active=active,
            )
            ctx.audit("sales.channel.updated", target_type="sales_channel", target_id=row.id)
            return SalesChannelPayload(channel=SalesChannel.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.attribution.register")],
        description="报备: register a client (name, phone) for a channel and a project; the "
        "client is found by phone or created. Answers the visit code; within another "
        "channel's protection the registration is DISPUTED and a dispute opened.",
    )
    async def register_channel_client(
        self, info: strawberry.Info, input: RegisterChannelClientInput
    ) -> ChannelRegistrationResult:
        ctx = info.context

        async def work() -> ChannelRegistrationPayload:
            got = await service.register(
                ctx.session,
                ctx.kit,
                ctx.principal_now(),
                channel_id=require_id(input.channel_id, "channel", "channelId"),
                project_id=require_id(input.project_id, "project", "projectId"),
                name=input.name,
                phone=input.phone,
                note=input.note,
            )
            r = got.registration
            ctx.audit(
                "sales.attribution.registered",
                target_type="channel_registration",
                target_id=r.id,
                channel_id=str(r.channel_id),
                client_id=str(r.client_id),
                disputed=got.dispute is not None,
            )
            return ChannelRegistrationPayload(
                registration=ChannelRegistration.of(r),
                dispute=AttributionDispute.of(got.dispute) if got.dispute else None,
                client_created=got.client_created,
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.attribution.visit")],
        description="Site staff confirm a client's visit: the visit code as typed, or the "
        "QR code's content as scanned. No biometric data is taken.",
    )
    async def confirm_channel_visit(self, info: strawberry.Info, code: str) -> VisitConfirmedResult:
        ctx = info.context

        async def work() -> VisitConfirmedPayload:
            row = await service.confirm_visit(ctx.session, ctx.kit, ctx.principal_now(), code)
            ctx.audit(
                "sales.attribution.visited",
                target_type="channel_registration",
                target_id=row.id,
                channel_id=str(row.channel_id),
            )
            return VisitConfirmedPayload(registration=ChannelRegistration.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("sales.attribution.resolve")],
        description="Decide an attribution dispute: the winning registration holds the "
        "client; commissions not yet approved follow its channel. Not by someone who "
        "registered either side.",
    )
    async def resolve_attribution_dispute(
        self,
        info: strawberry.Info,
        dispute_id: strawberry.ID,
        winner_id: strawberry.ID,
        note: str,
    ) -> AttributionDisputeResult:
        ctx = info.context

        async def work() -> AttributionDisputePayload:
            d = await service.resolve(
                ctx.session,
                ctx.principal_now(),
                require_id(dispute_id, "dispute", "disputeId"),
                winner_id=require_id(winner_id, "registration", "winnerId"),
                note=note,
            )
            ctx.audit(
                "sales.attribution.dispute_resolved",
                target_type="attribution_dispute",
                target_id=d.id,
                winner_id=str(d.winner_id),
            )
            return AttributionDisputePayload(dispute=AttributionDispute.of(d))

        result, error = await attempt(ctx.session, work)
        return error or result
