"""Clients in GraphQL: records (contact details masked unless pii.read, and audited then),
the lifecycle, follow-ups and the agent's day. Every read is within the caller's scope."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Annotated, TypeVar

import strawberry

from api.client import service, showings
from api.client.models import Client as ClientRow
from api.client.models import ClientSource, ClientStage, ContactKind
from api.client.models import FollowUp as FollowUpRow
from api.client.models import Showing as ShowingRow
from api.client.profile import JsonObject, ProfileTag
from api.errors import DomainError
from api.graphql.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    attempt,
)
from api.graphql.loading import batch_loader
from api.graphql.permissions import requires
from api.graphql.types import Long, parse_id, require_id
from tenants.registry import TenantInfo

T = TypeVar("T")

# The models' enums, registered as GraphQL enums (named as the classes).
strawberry.enum(ClientStage)
strawberry.enum(ClientSource)
strawberry.enum(ContactKind)


@strawberry.enum(description="Intent grade: A hot, B warm, C cold.")
class ClientGrade(enum.Enum):
    A = "A"
    B = "B"
    C = "C"


@strawberry.type(description="What the client looks for.")
class ClientNeeds:
    budget_min: Long | None
    budget_max: Long | None
    area_min: float | None
    area_max: float | None
    rooms: list[int]
    districts: list[str]
    purpose: str | None
    must_haves: list[str]

    @classmethod
    def of(cls, d: service.Needs) -> ClientNeeds:
        return cls(
            budget_min=d.get("budget_min"),
            budget_max=d.get("budget_max"),
            area_min=d.get("area_min"),
            area_max=d.get("area_max"),
            rooms=d.get("rooms", []),
            districts=d.get("districts", []),
            purpose=d.get("purpose"),
            must_haves=d.get("must_haves", []),
        )


@strawberry.input
class ClientNeedsInput:
    budget_min: Long | None = None
    budget_max: Long | None = None
    area_min: float | None = None
    area_max: float | None = None
    rooms: list[int] = strawberry.field(default_factory=list)
    districts: list[str] = strawberry.field(default_factory=list)
    purpose: str | None = None
    must_haves: list[str] = strawberry.field(default_factory=list)

    def as_dict(self) -> service.Needs:
        return {k: v for k, v in vars(self).items() if v not in (None, [])}


@strawberry.type(description="A contact that happened, or a follow-up scheduled (dueAt).")
class FollowUp:
    id: strawberry.ID
    client_id: strawberry.ID
    kind: ContactKind
    outcome: str
    next_step: str
    happened_at: datetime | None
    due_at: datetime | None
    done_at: datetime | None
    assignee_id: strawberry.ID | None

    @classmethod
    def of(cls, r: FollowUpRow) -> FollowUp:
        assignee = strawberry.ID(str(r.assignee_id)) if r.assignee_id else None
        return cls(
            id=strawberry.ID(str(r.id)),
            client_id=strawberry.ID(str(r.client_id)),
            kind=ContactKind(r.kind),
            outcome=r.outcome,
            next_step=r.next_step,
            happened_at=r.happened_at,
            due_at=r.due_at,
            done_at=r.done_at,
            assignee_id=assignee,
        )


strawberry.enum(
    ProfileTag,
    description="What the client's behaviour shows (api/client/profile.py): VERY_ACTIVE 10+ "
    "views and searches in 7 days; RETURNING active on 3+ of the last 14 days; FOLLOWS_ITEMS; "
    "COMPARING_PROJECTS units of 3+ projects viewed in 30 days; NEW_AND_RESALE both viewed; "
    "UPCOMING_SHOWING; LIKED_A_SHOWING rated 4-5 in 30 days; DISLIKED_SHOWINGS two or more "
    "rated 1-2; GONE_QUIET nothing for 14 days.",
)


@strawberry.type
class DistrictShare:
    district: str
    share: float = strawberry.field(description="Of the interest seen, 0 to 1.")


@strawberry.type(
    description="What the client's activity shows: the app's views and searches "
    "(when the client's app account is linked by phone), follows, "
    "showings and their ratings, over 90 days."
)
class ClientProfile:
    districts: list[DistrictShare]
    price_min: Long | None = strawberry.field(description="Middle half of prices looked at.")
    price_max: Long | None
    area_min: float | None
    area_max: float | None
    rooms: list[int]
    views_7d: int
    views_30d: int
    searches_30d: int
    follows: int
    showings: int
    average_rating: float | None
    active_days_14d: int
    tags: list[ProfileTag]
    grade_factors: list[ProfileTag] = strawberry.field(
        description="The tags that decided the suggested grade."
    )
    computed_at: datetime | None

    @classmethod
    def of(cls, d: JsonObject) -> ClientProfile:
        def area(key: str) -> float | None:
            return float(d[key]) if d.get(key) is not None else None

        return cls(
            districts=[
                DistrictShare(district=x["district"], share=x["share"])
                for x in d.get("districts", ())
            ],
            price_min=d.get("price_min"),
            price_max=d.get("price_max"),
            area_min=area("area_min"),
            area_max=area("area_max"),
            rooms=d.get("rooms", []),
            views_7d=d.get("views_7d", 0),
            views_30d=d.get("views_30d", 0),
            searches_30d=d.get("searches_30d", 0),
            follows=d.get("follows", 0),
            showings=d.get("showings", 0),
            average_rating=d.get("average_rating"),
            active_days_14d=d.get("active_days_14d", 0),
            tags=[ProfileTag(t) for t in d.get("tags", ())],
            grade_factors=[ProfileTag(t) for t in d.get("grade_factors", ())],
            computed_at=datetime.fromisoformat(d["computed_at"]) if d.get("computed_at") else None,
        )


_phones_loader = batch_loader(service.phone_rows_by_client_ids, list)


@strawberry.type(description="A client (a lead until won).")
class Client:
    id: strawberry.ID
    name: str
    source: ClientSource
    stage: ClientStage
    lost_reason: str | None
    grade: ClientGrade | None
    owner_id: strawberry.ID | None
    needs: ClientNeeds
    tags: list[str]
    notes: str
    consent_marketing: bool
    language: str = strawberry.field(description="zh, en, yue...; empty when unknown.")
    offer_team_id: strawberry.ID | None = strawberry.field(
        description="Offered by a routing rule to this team: its members may claim it."
    )
    offer_expires_at: datetime | None = strawberry.field(
        description="Until then the offer stands; then the next team, or the pool."
    )
    duplicate_of: strawberry.ID | None = strawberry.field(
        description="An existing client this one matched when it was created."
    )
    merged_into: strawberry.ID | None
    created_at: datetime
    last_contact_at: datetime | None
    next_follow_up_at: datetime | None
    suggested_grade: ClientGrade | None = strawberry.field(
        description="The grade the client's behaviour suggests (see profile.gradeFactors)."
    )
    last_active_at: datetime | None = strawberry.field(
        description="The client's latest activity in the app."
    )
    app_linked: bool = strawberry.field(
        description="The client's own app account is linked (by phone): its activity counts."
    )
    version: int
    row: strawberry.Private[ClientRow]

    @classmethod
    def of(cls, r: ClientRow) -> Client:
        return cls(
            id=strawberry.ID(str(r.id)),
            name=r.name,
            source=ClientSource(r.source),
            stage=ClientStage(r.stage),
            lost_reason=r.lost_reason,
            grade=ClientGrade(r.grade) if r.grade else None,
            owner_id=strawberry.ID(str(r.owner_id)) if r.owner_id else None,
            needs=ClientNeeds.of(r.needs or {}),
            tags=list(r.tags or ()),
            notes=r.notes,
            consent_marketing=r.consent_marketing,
            language=r.language,
            offer_team_id=strawberry.ID(str(r.offer_team_id)) if r.offer_team_id else None,
            offer_expires_at=r.offer_expires_at,
            duplicate_of=strawberry.ID(str(r.duplicate_of)) if r.duplicate_of else None,
            merged_into=strawberry.ID(str(r.merged_into)) if r.merged_into else None,
            created_at=r.created_at,
            last_contact_at=r.last_contact_at,
            next_follow_up_at=r.next_follow_up_at,
            suggested_grade=ClientGrade(r.suggested_grade) if r.suggested_grade else None,
            last_active_at=r.last_active_at,
            app_linked=r.account_id is not None,
            version=r.version,
            row=r,
        )

    def _reveal(self, info: strawberry.Info, column: str) -> str | None:
        ctx = info.context
        p = ctx.principal_now()
        mask = getattr(self.row, f"{column}_mask") or None
        if mask is None or p is None or not p.can("pii.read"):
            return mask
        ctx.audit("pii.read", target_type="client", target_id=self.row.id, fields=[column])
        return service.reveal(ctx.kit, ctx.tenant.id, self.row, column)

    @strawberry.field(description="Preferences, activity and tags from behaviour.")
    def profile(self) -> ClientProfile:
        return ClientProfile.of(self.row.profile or {})

    @strawberry.field(description="Masked unless you have pii.read (then audited).")
    def phone(self, info: strawberry.Info) -> str | None:
        return self._reveal(info, "phone")

    @strawberry.field(description="Masked unless you have pii.read (then audited).")
    def id_number(self, info: strawberry.Info) -> str | None:
        return self._reveal(info, "id_number")

    @strawberry.field(description="More phones; masked unless you have pii.read (then audited).")
    async def other_phones(self, info: strawberry.Info) -> list[str]:
        ctx = info.context
        p = ctx.principal_now()
        masks = list(self.row.other_phone_masks or ())
        if not masks or p is None or not p.can("pii.read"):
            return masks
        ctx.audit("pii.read", target_type="client", target_id=self.row.id, fields=["other_phones"])
        rows = await ctx.loaders.get("client.phones", _phones_loader).load(self.row.id)
        return service.reveal_phones(ctx.kit, ctx.tenant.id, rows)

    @strawberry.field(
        permission_classes=[requires("client.read")],
        description="Who had this client, and why it went where it did.",
    )
    async def assignments(self, info: strawberry.Info) -> list[Assignment]:
        p = info.context.principal_now()
        rows = await service.assignments(info.context.session, p, self.row.id)
        return [
            Assignment(
                from_owner=strawberry.ID(str(a.from_owner)) if a.from_owner else None,
                to_owner=strawberry.ID(str(a.to_owner)) if a.to_owner else None,
                reason=a.reason,
                detail=a.detail,
                at=a.at,
            )
            for a in rows
        ]

    @strawberry.field(permission_classes=[requires("client.read")])
    async def showings(self, info: strawberry.Info) -> list[Showing]:
        p = info.context.principal_now()
        rows = await showings.showings(info.context.session, p, client_id=self.row.id)
        return [Showing.of(r) for r in rows]

    @strawberry.field(permission_classes=[requires("client.read")])
    async def follow_ups(self, info: strawberry.Info) -> list[FollowUp]:
        p = info.context.principal_now()
        rows = await service.follow_ups(info.context.session, p, self.row.id)
        return [FollowUp.of(r) for r in rows]


@strawberry.type(
    description="A change of a client's agent and why: created, routed, offered, claimed, "
    "assigned, unrouted, unclaimed, returned (neglected); detail says it in words."
)
class Assignment:
    from_owner: strawberry.ID | None
    to_owner: strawberry.ID | None
    reason: str
    detail: str
    at: datetime


@strawberry.type
class ShowingFeedback:
    kind: str
    id: strawberry.ID
    rating: int
    comment: str


@strawberry.type(description="A visit with a client to units or listings.")
class Showing:
    id: strawberry.ID
    client_id: strawberry.ID
    agent_id: strawberry.ID
    starts_at: datetime
    ends_at: datetime
    status: str
    unit_ids: list[strawberry.ID]
    listing_ids: list[strawberry.ID]
    place: str
    feedback: list[ShowingFeedback]
    cancel_reason: str | None
    version: int

    @classmethod
    def of(cls, r: ShowingRow) -> Showing:
        return cls(
            id=strawberry.ID(str(r.id)),
            client_id=strawberry.ID(str(r.client_id)),
            agent_id=strawberry.ID(str(r.agent_id)),
            starts_at=r.starts_at,
            ends_at=r.ends_at,
            status=r.status,
            unit_ids=[strawberry.ID(str(u)) for u in r.unit_ids],
            listing_ids=[strawberry.ID(str(x)) for x in r.listing_ids],
            place=r.place,
            feedback=[
                ShowingFeedback(
                    kind=f["kind"],
                    id=strawberry.ID(f["id"]),
                    rating=f["rating"],
                    comment=f["comment"],
                )
                for f in r.feedback or ()
            ],
            cancel_reason=r.cancel_reason,
            version=r.version,
        )


@strawberry.input
class ScheduleShowingInput:
    client_id: strawberry.ID
    starts_at: datetime
    ends_at: datetime
    unit_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    listing_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    place: str = ""


@strawberry.enum
class ShownKind(enum.Enum):
    UNIT = "unit"
    LISTING = "listing"


@strawberry.input
class ShowingFeedbackInput:
    kind: ShownKind
    id: strawberry.ID
    rating: int
    comment: str = ""


@strawberry.type
class ShowingPayload:
    showing: Showing


@strawberry.type(description="Subscribe to this URL in a calendar app; keep it private.")
class CalendarFeedPayload:
    url: str


@strawberry.type
class StageCount:
    stage: ClientStage
    count: int


@strawberry.type(
    description="The agent's day (in the tenant's time zone): follow-ups due today, overdue, "
    "clients by stage, and who was active in the app lately."
)
class MyDay:
    today: list[FollowUp]
    overdue: list[FollowUp]
    stage_counts: list[StageCount]
    recently_active: list[Client] = strawberry.field(
        description="Your clients active in the app in the last 7 days, latest first (20)."
    )
    recently_active_count: int


@strawberry.input
class CreateClientInput:
    name: str
    phone: str | None = None
    id_number: str | None = None
    source: ClientSource = ClientSource.OTHER
    grade: ClientGrade | None = None
    needs: ClientNeedsInput | None = None
    tags: list[str] = strawberry.field(default_factory=list)
    notes: str = ""
    consent_marketing: bool = False
    language: str = strawberry.field(default="", description="zh, en, yue, ja, ko...")
    other_phones: list[str] = strawberry.field(
        default_factory=list, description="Up to 4 more phones (encrypted like the main one)."
    )
    refuse_duplicates: bool = strawberry.field(
        default=False, description="Refuse (CONFLICT) instead of flagging a duplicate."
    )
    route: bool = strawberry.field(
        default=False,
        description="Let the tenant's routing rules choose the agent (else: you own it).",
    )


@strawberry.type
class ClientPayload:
    client: Client
    duplicates: list[strawberry.ID] = strawberry.field(
        description="Existing clients with the same phone, or the same ID number."
    )
    merged_into_existing: bool = strawberry.field(
        default=False,
        description="createClient: the lead repeated a client in your scope and was merged "
        "into that record (the tenant's crm.duplicates rule is merge); `client` is it.",
    )


@strawberry.input(description="Only the fields given change; null clears a nullable one.")
class UpdateClientInput:
    name: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    other_phones: list[str] | None = strawberry.UNSET
    id_number: str | None = strawberry.UNSET
    grade: ClientGrade | None = strawberry.UNSET
    needs: ClientNeedsInput | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    notes: str | None = strawberry.UNSET
    consent_marketing: bool | None = strawberry.UNSET
    language: str | None = strawberry.UNSET

    def changes(self) -> service.ClientChanges:
        keep = service.KEEP

        def given(value: T) -> T | service.Keep:
            return keep if value is strawberry.UNSET else value

        grade, needs = self.grade, self.needs
        return service.ClientChanges(
            name=keep if self.name is strawberry.UNSET else self.name or "",
            phone=given(self.phone),
            other_phones=given(self.other_phones),
            id_number=given(self.id_number),
            grade=keep if grade is strawberry.UNSET else grade.value if grade else None,
            needs=keep if needs is strawberry.UNSET else needs.as_dict() if needs else {},
            tags=given(self.tags),
            notes=given(self.notes),
            consent_marketing=given(self.consent_marketing),
            language=given(self.language),
        )


@strawberry.type
class FollowUpPayload:
    follow_up: FollowUp
    client: Client


ShowingResult = Annotated[
    ShowingPayload
    | ValidationError
    | ConflictError
    | NotFoundError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("ShowingResult"),
]
ClientResult = Annotated[
    ClientPayload
    | ValidationError
    | ConflictError
    | NotFoundError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("ClientResult"),
]
FollowUpResult = Annotated[
    FollowUpPayload
    | ValidationError
    | ConflictError
    | NotFoundError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("FollowUpResult"),
]


def _day(now: datetime, tenant: TenantInfo) -> tuple[datetime, datetime]:
    """The tenant's calendar day that contains ``now``: from its midnight to the next (23 or
    25 hours on a daylight-saving change)."""
    day = tenant.today(now)
    return tenant.midnight(day), tenant.midnight(day + timedelta(days=1))


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("client.read")],
        description="Clients within your scope, newest first (mineOnly: those you own).",
    )
    async def clients(
        self,
        info: strawberry.Info,
        stage: ClientStage | None = None,
        mine_only: bool = False,
        first: int = 20,
        after: strawberry.ID | None = None,
        search: Annotated[
            str,
            strawberry.argument(
                description="A phone (any of the client's, matched exactly) or part of the name."
            ),
        ] = "",
    ) -> list[Client]:
        ctx = info.context
        rows = await service.clients(
            ctx.session,
            ctx.principal_now(),
            stage=stage.value if stage else None,
            mine_only=mine_only,
            first=max(1, min(first, 100)),
            after=parse_id(after) if after else None,
            search=search,
            kit=ctx.kit,
            tenant_id=ctx.tenant.id,
        )
        return [Client.of(r) for r in rows]

    @strawberry.field(permission_classes=[requires("client.read")])
    async def client(self, info: strawberry.Info, id: strawberry.ID) -> Client | None:
        cid = parse_id(id)
        if cid is None:
            return None
        try:
            row = await service.get_visible(info.context.session, info.context.principal_now(), cid)
        except DomainError:
            return None
        return Client.of(row)

    @strawberry.field(
        permission_classes=[requires("client.read")],
        description="Unassigned clients (returned or new) that an agent may claim.",
    )
    async def client_pool(self, info: strawberry.Info, first: int = 20) -> list[Client]:
        rows = await service.pool(
            info.context.session, info.context.principal_now(), first=max(1, min(first, 100))
        )
        return [Client.of(r) for r in rows]

    @strawberry.field(
        permission_classes=[requires("client.read")],
        description="Your showings (since: from that time; default: 30 days back).",
    )
    async def my_showings(
        self, info: strawberry.Info, since: datetime | None = None
    ) -> list[Showing]:
        from api.db import utcnow

        rows = await showings.showings(
            info.context.session,
            info.context.principal_now(),
            since=since or utcnow() - timedelta(days=30),
        )
        return [Showing.of(r) for r in rows]

    @strawberry.field(permission_classes=[requires("client.read")])
    async def my_day(self, info: strawberry.Info) -> MyDay:
        from api.db import utcnow

        p, session = info.context.principal_now(), info.context.session
        start, end = _day(utcnow(), info.context.tenant)
        today, overdue = await service.agenda(session, p, day_start=start, day_end=end)
        counts = await service.stage_counts(session, p)
        active, active_count = await service.recently_active(
            session, p, since=utcnow() - timedelta(days=7), first=20
        )
        return MyDay(
            today=[FollowUp.of(f) for f in today],
            overdue=[FollowUp.of(f) for f in overdue],
            stage_counts=[StageCount(stage=ClientStage(s), count=n) for s, n in counts.items()],
            recently_active=[Client.of(c) for c in active],
            recently_active_count=active_count,
        )


@strawberry.type
class Mutation:
    """Each runs in a savepoint (``attempt``): a refusal undoes whatever it had written."""

    @strawberry.mutation(permission_classes=[requires("client.write")])
    async def create_client(self, info: strawberry.Info, input: CreateClientInput) -> ClientResult:
        ctx = info.context

        async def work() -> ClientPayload:
            row, found = await service.create_client(
                ctx.session,
                ctx.kit,
                ctx.tenant.id,
                ctx.principal_now(),
                service.ClientInput(
                    name=input.name,
                    phone=input.phone,
                    id_number=input.id_number,
                    source=input.source.value,
                    grade=input.grade.value if input.grade else None,
                    needs=input.needs.as_dict() if input.needs else {},
                    tags=input.tags,
                    notes=input.notes,
                    consent_marketing=input.consent_marketing,
                    language=input.language,
                    other_phones=input.other_phones,
                ),
                refuse_duplicates=input.refuse_duplicates,
                route=input.route,
            )
            merged = any(d.id == row.id for d in found)  # a repeat, merged by the tenant's rule
            return ClientPayload(
                client=Client.of(row),
                merged_into_existing=merged,
                duplicates=[strawberry.ID(str(d.id)) for d in found if d.id != row.id],
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("client.write")],
        description="Change a client's details (only the fields given); a new phone or ID "
        "number is checked for duplicates like a new client.",
    )
    async def update_client(
        self,
        info: strawberry.Info,
        client_id: strawberry.ID,
        input: UpdateClientInput,
        expected_version: int | None = None,
    ) -> ClientResult:
        ctx = info.context

        async def work() -> ClientPayload:
            row, found = await service.update_client(
                ctx.session,
                ctx.kit,
                ctx.tenant.id,
                ctx.principal_now(),
                require_id(client_id, "client", "clientId"),
                input.changes(),
                expected_version=expected_version,
            )
            return ClientPayload(
                client=Client.of(row), duplicates=[strawberry.ID(str(d.id)) for d in found]
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("client.write")],
        description="Move a client along its lifecycle (lost needs a reason).",
    )
    async def change_client_stage(
        self,
        info: strawberry.Info,
        client_id: strawberry.ID,
        stage: ClientStage,
        reason: str = "",
        expected_version: int | None = None,
    ) -> ClientResult:
        ctx = info.context

        async def work() -> ClientPayload:
            row = await service.change_stage(
                ctx.session,
                ctx.principal_now(),
                require_id(client_id, "client", "clientId"),
                stage.value,
                reason=reason,
                expected_version=expected_version,
            )
            return ClientPayload(client=Client.of(row), duplicates=[])

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("client.write")],
        description="Log a contact (call, message, visit, showing, note); nextDueAt schedules "
        "the next follow-up.",
    )
    async def log_client_contact(
        self,
        info: strawberry.Info,
        client_id: strawberry.ID,
        kind: ContactKind,
        outcome: str,
        next_step: str = "",
        happened_at: datetime | None = None,
        next_due_at: datetime | None = None,
    ) -> FollowUpResult:
        ctx = info.context

        async def work() -> FollowUpPayload:
            cid = require_id(client_id, "client", "clientId")
            f = await service.log_contact(
                ctx.session,
                ctx.principal_now(),
                cid,
                kind=kind.value,
                outcome=outcome,
                next_step=next_step,
                happened_at=happened_at,
                next_due_at=next_due_at,
            )
            row = await service.get_visible(ctx.session, ctx.principal_now(), cid)
            return FollowUpPayload(follow_up=FollowUp.of(f), client=Client.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(permission_classes=[requires("client.write")])
    async def schedule_follow_up(
        self,
        info: strawberry.Info,
        client_id: strawberry.ID,
        due_at: datetime,
        kind: ContactKind = ContactKind.CALL,
        note: str = "",
    ) -> FollowUpResult:
        ctx = info.context

        async def work() -> FollowUpPayload:
            cid = require_id(client_id, "client", "clientId")
            f = await service.schedule(
                ctx.session, ctx.principal_now(), cid, due_at=due_at, kind=kind.value, note=note
            )
            row = await service.get_visible(ctx.session, ctx.principal_now(), cid)
            return FollowUpPayload(follow_up=FollowUp.of(f), client=Client.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(permission_classes=[requires("client.write")])
    async def complete_follow_up(
        self, info: strawberry.Info, follow_up_id: strawberry.ID, outcome: str
    ) -> FollowUpResult:
        ctx = info.context

        async def work() -> FollowUpPayload:
            f = await service.complete(
                ctx.session,
                ctx.principal_now(),
                require_id(follow_up_id, "follow-up", "followUpId"),
                outcome=outcome,
            )
            row = await service.get_visible(ctx.session, ctx.principal_now(), f.client_id)
            return FollowUpPayload(follow_up=FollowUp.of(f), client=Client.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("client.write")],
        description="Merge a duplicate into the client to keep: all history moves there.",
    )
    async def merge_clients(
        self, info: strawberry.Info, keep_id: strawberry.ID, merge_id: strawberry.ID
    ) -> ClientResult:
        ctx = info.context

        async def work() -> ClientPayload:
            row = await service.merge(
                ctx.session,
                ctx.principal_now(),
                require_id(keep_id, "client", "keepId"),
                require_id(merge_id, "client", "mergeId"),
                kit=ctx.kit,
                tenant_id=ctx.tenant.id,
            )
            return ClientPayload(client=Client.of(row), duplicates=[])

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("client.write")],
        description="Take a client from the shared pool (the first to claim gets it).",
    )
    async def claim_client(self, info: strawberry.Info, client_id: strawberry.ID) -> ClientResult:
        ctx = info.context

        async def work() -> ClientPayload:
            row = await service.claim(
                ctx.session, ctx.principal_now(), require_id(client_id, "client", "clientId")
            )
            return ClientPayload(client=Client.of(row), duplicates=[])

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("client.write")],
        description="Schedule a showing; the agent's overlapping showings are refused.",
    )
    async def schedule_showing(
        self, info: strawberry.Info, input: ScheduleShowingInput
    ) -> ShowingResult:
        ctx = info.context

        async def work() -> ShowingPayload:
            row = await showings.schedule(
                ctx.session,
                ctx.principal_now(),
                require_id(input.client_id, "client", "clientId"),
                starts_at=input.starts_at,
                ends_at=input.ends_at,
                unit_ids=[require_id(u, "unit", "unitIds") for u in input.unit_ids],
                listing_ids=[require_id(x, "listing", "listingIds") for x in input.listing_ids],
                place=input.place,
            )
            return ShowingPayload(showing=Showing.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(permission_classes=[requires("client.write")])
    async def confirm_showing(
        self, info: strawberry.Info, showing_id: strawberry.ID
    ) -> ShowingResult:
        return await _showing_status(info, showing_id, "confirmed", "")

    @strawberry.mutation(permission_classes=[requires("client.write")])
    async def cancel_showing(
        self, info: strawberry.Info, showing_id: strawberry.ID, reason: str
    ) -> ShowingResult:
        return await _showing_status(info, showing_id, "cancelled", reason)

    @strawberry.mutation(
        permission_classes=[requires("client.write")],
        description="After the visit: a rating and a comment per unit or listing shown.",
    )
    async def showing_feedback(
        self, info: strawberry.Info, showing_id: strawberry.ID, items: list[ShowingFeedbackInput]
    ) -> ShowingResult:
        ctx = info.context

        async def work() -> ShowingPayload:
            row = await showings.give_feedback(
                ctx.session,
                ctx.principal_now(),
                require_id(showing_id, "showing", "showingId"),
                [
                    showings.Feedback(
                        kind=i.kind.value, id=str(i.id), rating=i.rating, comment=i.comment
                    )
                    for i in items[:40]
                ],
            )
            return ShowingPayload(showing=Showing.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("client.read")],
        description="A new private calendar URL of your showings and follow-ups (the previous "
        "one stops working).",
    )
    async def create_calendar_feed(self, info: strawberry.Info) -> CalendarFeedPayload:
        ctx = info.context
        token = await showings.new_feed(ctx.session, ctx.principal_now().account_id)
        base = str(ctx.request.base_url).rstrip("/")
        return CalendarFeedPayload(url=f"{base}/calendar/{ctx.tenant.slug}/{token}.ics")

    @strawberry.mutation(permission_classes=[requires("client.read")])
    async def revoke_calendar_feed(self, info: strawberry.Info) -> bool:
        ctx = info.context
        return await showings.revoke_feed(ctx.session, ctx.principal_now().account_id)


async def _showing_status(
    info: strawberry.Info, showing_id: strawberry.ID, status: str, reason: str
) -> ShowingResult:
    ctx = info.context

    async def work() -> ShowingPayload:
        row = await showings.set_status(
            ctx.session,
            ctx.principal_now(),
            require_id(showing_id, "showing", "showingId"),
            status,
            reason=reason,
        )
        return ShowingPayload(showing=Showing.of(row))

    result, error = await attempt(ctx.session, work)
    return error or result
