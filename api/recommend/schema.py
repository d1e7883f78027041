"""Recommendations over GraphQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry

from api.errors import DomainError, ErrorCode
from api.graphql.errors import QueryError
from api.graphql.permissions import requires
from api.graphql.types import Long, parse_id
from api.listing.models import Listing as ListingRow
from api.listing.schema import Listing
from api.recommend import service
from api.unit.models import Unit as UnitRow
from api.unit.schema import Unit
from api.unit.service import MAX_PRICE

MAX_RESULTS = 50


@strawberry.type(description="Why a candidate scored what it did, one factor at a time.")
class ScoreReason:
    factor: str = strawberry.field(description="budget, area, rooms, district or must_haves")
    points: float
    text: str


@strawberry.type(description="A unit or a listing, its score out of 100 and the reasons.")
class Recommendation:
    score: float
    reasons: list[ScoreReason]
    unit: Unit | None
    listing: Listing | None


@strawberry.input(description="What the client wants. Anything left out ranks nothing.")
class NeedsInput:
    budget_min: Long | None = None
    budget_max: Long | None = None
    area_min: Decimal | None = None
    area_max: Decimal | None = None
    rooms: list[int] | None = None
    districts: list[str] | None = None
    must_haves: list[str] | None = strawberry.field(
        default=None, description="Tags or project facilities that must be there."
    )


async def _needs(
    info: strawberry.Info, given: NeedsInput, client_id: strawberry.ID | None
) -> NeedsInput:
    if client_id is None:
        return given
    principal = info.context.principal_now()
    missing = QueryError(ErrorCode.NOT_FOUND, "client not found")
    cid = parse_id(client_id)
    if cid is None or not principal.can("client.read"):
        raise missing
    try:  # another scope's client and a missing one look the same
        wanted = await service.client_needs(
            info.context.session,
            principal,
            cid,
            service.AskedNeeds(
                budget_min=given.budget_min,
                budget_max=given.budget_max,
                area_min=given.area_min,
                area_max=given.area_max,
                rooms=given.rooms,
                districts=given.districts,
                must_haves=given.must_haves,
            ),
        )
    except DomainError:
        raise missing from None
    return NeedsInput(
        budget_min=Long(wanted.budget_min) if wanted.budget_min is not None else None,
        budget_max=Long(wanted.budget_max) if wanted.budget_max is not None else None,
        area_min=wanted.area_min,
        area_max=wanted.area_max,
        rooms=wanted.rooms,
        districts=wanted.districts,
        must_haves=wanted.must_haves,
    )


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("unit.read")],
        description="Units on sale and (with listing.read) resale listings ranked against "
        "the needs, best first, each with the reasons for its score.",
    )
    async def recommendations(
        self,
        info: strawberry.Info,
        needs: NeedsInput | None = None,
        first: int = 20,
        include_listings: bool = True,
        for_client: Annotated[
            strawberry.ID | None,
            strawberry.argument(
                description="A client in your scope (client.read): their stated needs, with what "
                "their profile shows filling what they left out; `needs` given here override.",
            ),
        ] = None,
    ) -> list[Recommendation]:
        needs = await _needs(info, needs or NeedsInput(), for_client)
        lists = [needs.rooms, needs.districts, needs.must_haves]
        if any(len(v or ()) > 50 for v in lists):
            raise QueryError(ErrorCode.BAD_USER_INPUT, "at most 50 values in each list")
        for value in (needs.budget_min, needs.budget_max):
            if value is not None and not 0 < value <= MAX_PRICE:
                raise QueryError(
                    ErrorCode.BAD_USER_INPUT, f"a budget is between 1 and {MAX_PRICE} minor units"
                )
        if needs.area_min is not None and (not needs.area_min.is_finite() or needs.area_min < 0):
            raise QueryError(ErrorCode.BAD_USER_INPUT, "areaMin must be a positive number")
        if needs.area_max is not None and (not needs.area_max.is_finite() or needs.area_max <= 0):
            raise QueryError(ErrorCode.BAD_USER_INPUT, "areaMax must be a positive number")
        principal = await info.context.principal()
        found = await service.recommend(
            info.context.session,
            service.Needs(
                budget_min=needs.budget_min,
                budget_max=needs.budget_max,
                area_min=needs.area_min,
                area_max=needs.area_max,
                rooms=list(needs.rooms or ()),
                districts=list(needs.districts or ()),
                must_haves=list(needs.must_haves or ()),
            ),
            units=True,
            listings=include_listings and principal.can("listing.read"),
            first=max(0, min(first, MAX_RESULTS)),
        )
        return [
            Recommendation(
                score=s.score,
                reasons=[
                    ScoreReason(factor=r.factor, points=r.points, text=r.text) for r in s.reasons
                ],
                unit=Unit.of(s.row) if isinstance(s.row, UnitRow) else None,
                listing=Listing.of(s.row) if isinstance(s.row, ListingRow) else None,
            )
            for s in found
        ]
