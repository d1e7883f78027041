"""Client behaviour in GraphQL: the owner/client app reports what its user views and searches
(``trackActivity``); agents read a client's activity (``clientActivity``) and profile
(``Client.profile``, in schema.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from api.client import profile, service
from api.client.models import ActivityKind
from api.client.models import ClientActivity as ActivityRow
from api.errors import DomainError, ValidationFailed
from api.graphql.errors import AuthError, PermissionDeniedError, ValidationError, attempt
from api.graphql.permissions import requires
from api.graphql.types import Long, parse_id

strawberry.enum(ActivityKind)  # the model's enum, registered as a GraphQL enum


@strawberry.input(description="What a search asked for (send what the user chose).")
class ActivitySearchInput:
    districts: list[str] = strawberry.field(default_factory=list)
    price_min: Long | None = None
    price_max: Long | None = None
    area_min: Decimal | None = None
    area_max: Decimal | None = None
    rooms: list[int] = strawberry.field(default_factory=list)
    keyword: str = ""


@strawberry.input(
    description="One thing the user did: viewed a unit or a listing (id), or searched "
    "(search). at: when, if sent later (up to 7 days)."
)
class ActivityInput:
    kind: ActivityKind
    id: strawberry.ID | None = None
    seconds: int | None = strawberry.field(default=None, description="Time spent on the page.")
    at: datetime | None = None
    search: ActivitySearchInput | None = None


@strawberry.type
class TrackActivityPayload:
    accepted: int


TrackActivityResult = Annotated[
    TrackActivityPayload | ValidationError | PermissionDeniedError | AuthError,
    strawberry.union("TrackActivityResult"),
]


@strawberry.type(description="What a search asked for.")
class ActivitySearch:
    districts: list[str]
    price_min: Long | None
    price_max: Long | None
    area_min: float | None
    area_max: float | None
    rooms: list[int]
    keyword: str


@strawberry.type(
    description="Something the client did in the app, with the facts of what "
    "they viewed at the time."
)
class ClientActivity:
    kind: ActivityKind
    at: datetime
    seconds: int | None
    unit_id: strawberry.ID | None
    listing_id: strawberry.ID | None
    price: Long | None
    district: str | None
    rooms: int | None
    search: ActivitySearch | None

    @classmethod
    def of(cls, r: ActivityRow) -> ClientActivity:
        d = r.data or {}
        sid = strawberry.ID(str(r.subject_id)) if r.subject_id else None
        search = None
        if r.kind == "search":
            search = ActivitySearch(
                districts=d.get("districts", []),
                price_min=d.get("price_min"),
                price_max=d.get("price_max"),
                area_min=float(d["area_min"]) if d.get("area_min") else None,
                area_max=float(d["area_max"]) if d.get("area_max") else None,
                rooms=d.get("rooms", []),
                keyword=d.get("keyword", ""),
            )
        return cls(
            kind=ActivityKind(r.kind),
            at=r.at,
            seconds=r.seconds,
            unit_id=sid if r.kind == "view_unit" else None,
            listing_id=sid if r.kind == "view_listing" else None,
            price=d.get("price"),
            district=d.get("district"),
            rooms=d.get("rooms") if r.kind != "search" else None,
            search=search,
        )


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("client.read")],
        description="What a client in your scope did in the app, latest first (at most 100).",
    )
    async def client_activity(
        self, info: strawberry.Info, client_id: strawberry.ID, first: int = 50
    ) -> list[ClientActivity]:
        cid = parse_id(client_id)
        if cid is None:
            return []
        session = info.context.session
        try:
            await service.get_visible(session, info.context.principal_now(), cid)
        except DomainError:
            return []
        rows = await profile.activity_of(session, cid, max(1, min(first, 100)))
        return [ClientActivity.of(r) for r in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("activity.track")],
        description="The owner/client app reports views and searches (up to 50 at once; all "
        "or none are kept). Your agent sees them, and they shape what you are recommended.",
    )
    async def track_activity(
        self, info: strawberry.Info, events: list[ActivityInput]
    ) -> TrackActivityResult:
        ctx = info.context

        async def work() -> TrackActivityPayload:
            parsed = []
            for i, e in enumerate(events[: profile.MAX_EVENTS + 1]):
                search = None
                if e.search is not None:
                    search = {
                        k: getattr(e.search, k)
                        for k in (
                            "districts",
                            "price_min",
                            "price_max",
                            "area_min",
                            "area_max",
                            "rooms",
                            "keyword",
                        )
                    }
                sid = parse_id(e.id) if e.id else None
                if e.id and sid is None:  # the result has no NotFoundError: a malformed id
                    raise ValidationFailed("not the id of a unit or listing", f"events.{i}.id")
                parsed.append(
                    profile.Event(
                        kind=e.kind.value, subject_id=sid, seconds=e.seconds, at=e.at, search=search
                    )
                )
            accepted, _ = await profile.track(
                ctx.session, ctx.kit, ctx.tenant.id, ctx.principal_now().account_id, parsed
            )
            return TrackActivityPayload(accepted=accepted)

        result, error = await attempt(ctx.session, work)
        return error or result
