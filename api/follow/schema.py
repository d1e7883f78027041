"""Follows over GraphQL: follow a unit or a listing, save a search, list and remove follows."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from api.errors import ValidationFailed
from api.follow import service
from api.follow.models import Follow as FollowRow
from api.graphql.errors import (
    AuthError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    attempt,
)
from api.graphql.permissions import requires
from api.graphql.types import require_id
from api.listing.schema import Listing, ListingFilter, listing_loader
from api.listing.schema import to_search as listing_search
from api.unit.schema import Unit, UnitFilter, unit_loader
from api.unit.schema import to_search as unit_search


@strawberry.enum
class FollowKind(enum.Enum):
    UNIT = "unit"
    LISTING = "listing"
    SEARCH = "search"


@strawberry.type(description="Something you follow: a unit, a listing or a saved search.")
class Follow:
    id: strawberry.ID
    kind: FollowKind
    target_id: strawberry.ID | None
    name: str
    search: JSON | None = strawberry.field(description="A saved search: {on, filter}")
    created_at: datetime

    @classmethod
    def of(cls, r: FollowRow) -> Follow:
        return cls(
            id=strawberry.ID(str(r.id)),
            kind=FollowKind(r.target_kind),
            target_id=strawberry.ID(str(r.target_id)) if r.target_id else None,
            name=r.name,
            search=JSON(r.search) if r.search is not None else None,
            created_at=r.created_at,
        )

    @strawberry.field(permission_classes=[requires("unit.read")])
    async def unit(self, info: strawberry.Info) -> Unit | None:
        if self.kind is not FollowKind.UNIT:
            return None
        row = await info.context.loaders.get("unit.by_id", unit_loader).load(
            uuid.UUID(self.target_id)
        )
        return Unit.of(row) if row else None

    @strawberry.field(permission_classes=[requires("listing.read")])
    async def listing(self, info: strawberry.Info) -> Listing | None:
        if self.kind is not FollowKind.LISTING:
            return None
        row = await info.context.loaders.get("listing.by_id", listing_loader).load(
            uuid.UUID(self.target_id)
        )
        return Listing.of(row) if row else None


@strawberry.input
class SaveSearchInput:
    name: str
    units: UnitFilter | None = None
    listings: ListingFilter | None = None


@strawberry.type
class FollowPayload:
    follow: Follow


@strawberry.type
class UnfollowPayload:
    id: strawberry.ID


FollowResult = Annotated[
    FollowPayload | ValidationError | NotFoundError | PermissionDeniedError | AuthError,
    strawberry.union("FollowResult"),
]
UnfollowResult = Annotated[
    UnfollowPayload | NotFoundError | PermissionDeniedError | AuthError,
    strawberry.union("UnfollowResult"),
]


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[requires("follow")], description="What you follow.")
    async def my_follows(
        self, info: strawberry.Info, kind: FollowKind | None = None
    ) -> list[Follow]:
        p = await info.context.principal()
        rows = await service.follows_of(
            info.context.session, p.account_id, kind.value if kind else None
        )
        return [Follow.of(r) for r in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("follow")],
        description="Follow a unit or a listing (following twice is the same follow).",
    )
    async def follow(
        self, info: strawberry.Info, kind: FollowKind, target_id: strawberry.ID
    ) -> FollowResult:
        p = await info.context.principal()

        async def work() -> FollowPayload:
            if kind is FollowKind.SEARCH:
                raise ValidationFailed("use saveSearch to follow a search", "kind")
            row = await service.follow(
                info.context.session,
                p.account_id,
                kind.value,
                require_id(target_id, kind.value, "targetId"),
            )
            return FollowPayload(follow=Follow.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("follow")],
        description="Save a search of units or of listings (give exactly one filter).",
    )
    async def save_search(self, info: strawberry.Info, input: SaveSearchInput) -> FollowResult:
        p = await info.context.principal()

        async def work() -> FollowPayload:
            if (input.units is None) == (input.listings is None):
                raise ValidationFailed("give exactly one of units, listings", "units")
            session, name = info.context.session, input.name
            if input.units is not None:
                row = await service.save_search(
                    session, p.account_id, name, "units", unit_search(input.units)
                )
            else:
                row = await service.save_search(
                    session, p.account_id, name, "listings", listing_search(input.listings)
                )
            return FollowPayload(follow=Follow.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(permission_classes=[requires("follow")])
    async def unfollow(self, info: strawberry.Info, id: strawberry.ID) -> UnfollowResult:
        p = await info.context.principal()

        async def work() -> UnfollowPayload:
            await service.unfollow(
                info.context.session, p.account_id, require_id(id, "follow", "id")
            )
            return UnfollowPayload(id=id)

        result, error = await attempt(info.context.session, work)
        return error or result
