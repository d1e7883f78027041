"""GraphQL types, queries and mutations of resale listings."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from api import search as search_kit
from api.db import utcnow
from api.errors import NotFound, ValidationFailed
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
from api.graphql.types import (
    Long,
    Money,
    Node,
    PageInfo,
    edges_of,
    parse_id,
    require_id,
    search_args,
)
from api.listing import repository as repo
from api.listing import service
from api.listing.models import Decoration, ListingStatus, PropertyRight
from api.listing.models import Listing as ListingRow
from api.listing.models import ListingEvent as EventRow
from api.media.schema import Media, first_photo_of, media_of
from api.security.crypto import mask_phone
from api.unit.schema import StandardStatus, Unit, unit_loader
from api.validate import fits
from tenants.registry import TenantInfo

strawberry.enum(ListingStatus, description="The local status of a resale listing.")
strawberry.enum(Decoration)
strawberry.enum(PropertyRight, description="The kind of property right on the title.")


@strawberry.enum
class ListingSort(enum.Enum):
    NEWEST = "NEWEST"
    PRICE_ASC = "PRICE_ASC"
    PRICE_DESC = "PRICE_DESC"
    AREA_ASC = "AREA_ASC"
    AREA_DESC = "AREA_DESC"
    PRICE_PER_M2_ASC = "PRICE_PER_M2_ASC"
    DISTANCE = strawberry.enum_value("DISTANCE", description="Needs filter.near")
    RELEVANCE = strawberry.enum_value("RELEVANCE", description="Needs filter.keyword")


SORT_KEYS = {
    ListingSort.NEWEST: None,
    ListingSort.PRICE_ASC: int,
    ListingSort.PRICE_DESC: int,
    ListingSort.AREA_ASC: Decimal,
    ListingSort.AREA_DESC: Decimal,
    ListingSort.PRICE_PER_M2_ASC: int,
    ListingSort.DISTANCE: float,
    ListingSort.RELEVANCE: float,
}


def _sid(value) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


_events_loader = batch_loader(repo.events_by_listing_ids, list)


listing_loader = batch_loader(repo.listings_by_ids)


@strawberry.type
class ListingEvent:
    id: strawberry.ID
    kind: str = strawberry.field(description="created, status, price or verified")
    from_status: ListingStatus | None
    to_status: ListingStatus | None
    old_price: Money | None
    new_price: Money | None
    actor_id: strawberry.ID | None
    reason: str
    at: datetime

    @classmethod
    def of(cls, row: EventRow) -> ListingEvent:
        return cls(
            id=strawberry.ID(str(row.id)),
            kind=row.kind,
            from_status=ListingStatus(row.from_status) if row.from_status else None,
            to_status=ListingStatus(row.to_status) if row.to_status else None,
            old_price=Money.of(row.old_price, "CNY"),
            new_price=Money.of(row.new_price, "CNY"),
            actor_id=_sid(row.actor_id),
            reason=row.reason,
            at=row.at,
        )


@strawberry.type(description="A second-hand home for sale.")
class Listing(Node):
    id: strawberry.ID
    community: str
    city: str
    district: str
    address: str
    latitude: Decimal | None
    longitude: Decimal | None
    gross_area: Decimal
    rooms: int
    living_rooms: int
    bathrooms: int
    floor: int | None
    total_floors: int | None
    orientation: str | None
    year_built: int | None
    decoration: Decoration | None
    property_right: PropertyRight | None
    right_years: int | None
    title_registered_on: date | None
    mortgaged: bool
    only_home: bool
    agent_id: strawberry.ID | None
    asking_price: Money
    price_per_m2: Money
    status: ListingStatus
    standard_status: StandardStatus
    verified: bool
    verified_at: datetime | None
    description: str
    tags: list[str]
    listed_at: datetime
    expires_at: datetime | None
    version: int
    row: strawberry.Private[ListingRow]

    @classmethod
    def of(cls, r: ListingRow) -> Listing:
        return cls(
            id=strawberry.ID(str(r.id)),
            community=r.community,
            city=r.city,
            district=r.district,
            address=r.address,
            latitude=r.latitude,
            longitude=r.longitude,
            gross_area=r.gross_area,
            rooms=r.rooms,
            living_rooms=r.living_rooms,
            bathrooms=r.bathrooms,
            floor=r.floor,
            total_floors=r.total_floors,
            orientation=r.orientation,
            year_built=r.year_built,
            decoration=Decoration(r.decoration) if r.decoration else None,
            property_right=PropertyRight(r.property_right) if r.property_right else None,
            right_years=r.right_years,
            title_registered_on=r.title_registered_on,
            mortgaged=r.mortgaged,
            only_home=r.only_home,
            agent_id=_sid(r.agent_id),
            asking_price=Money(minor_units=Long(r.asking_price), currency=r.currency),
            price_per_m2=Money(minor_units=Long(r.price_per_m2), currency=r.currency),
            status=ListingStatus(r.status),
            standard_status=StandardStatus(service.RESO[r.status]),
            verified=r.verified,
            verified_at=r.verified_at,
            description=r.description,
            tags=list(r.tags),
            listed_at=r.listed_at,
            expires_at=r.expires_at,
            version=r.version,
            row=r,
        )

    @strawberry.field(
        description="Title held five years or more (满五), as of today in the tenant's time zone."
    )
    def title_over_five_years(self, info: strawberry.Info) -> bool | None:
        registered = self.title_registered_on
        if registered is None:
            return None
        today = info.context.tenant.today()
        try:
            return registered <= today.replace(year=today.year - 5)
        except ValueError:  # 29 February
            return registered <= today.replace(year=today.year - 5, day=28)

    @strawberry.field(permission_classes=[requires("listing.seller")])
    def seller_name(self) -> str:
        return self.row.seller_name

    @strawberry.field(
        permission_classes=[requires("listing.seller")],
        description="Masked unless you are the listing agent or have pii.read (audited).",
    )
    async def seller_phone(self, info: strawberry.Info) -> str | None:
        ctx = info.context
        phone = service.seller_phone(ctx.kit, ctx.tenant.id, self.row)
        if phone is None:
            return None
        p = await ctx.principal()
        if p.account_id == self.row.agent_id:
            return phone
        if p.can("pii.read"):
            ctx.audit(
                "pii.read", target_type="listing", target_id=self.row.id, fields=["seller_phone"]
            )
            return phone
        return mask_phone(phone)

    @strawberry.field(
        permission_classes=[requires("unit.read")],
        description="The unit this listing resells, when the tenant sold it earlier.",
    )
    async def unit(self, info: strawberry.Info) -> Unit | None:
        if self.row.unit_id is None:
            return None
        row = await info.context.loaders.get("unit.by_id", unit_loader).load(self.row.unit_id)
        return Unit.of(row) if row else None

    @strawberry.field(permission_classes=[requires("listing.read")])
    async def media(self, info: strawberry.Info) -> list[Media]:
        return await media_of(info, self.row.id)

    @strawberry.field(permission_classes=[requires("listing.read")])
    def first_photo(self, info: strawberry.Info) -> Media | None:
        return first_photo_of(info, self.row.id)

    @strawberry.field(permission_classes=[requires("listing.read")])
    async def timeline(self, info: strawberry.Info) -> list[ListingEvent]:
        rows = await info.context.loaders.get("listing.events", _events_loader).load(self.row.id)
        return [ListingEvent.of(r) for r in rows]

    @strawberry.field(permission_classes=[requires("listing.read")])
    async def price_history(self, info: strawberry.Info) -> list[ListingEvent]:
        rows = await info.context.loaders.get("listing.events", _events_loader).load(self.row.id)
        return [ListingEvent.of(r) for r in rows if r.new_price is not None]


@strawberry.type
class ListingEdge:
    cursor: str
    node: Listing


@strawberry.type
class ListingConnection:
    edges: list[ListingEdge]
    page_info: PageInfo
    search: strawberry.Private[repo.ListingSearch]

    @strawberry.field(description="How many listings match (one more query, on demand).")
    async def total_count(self, info: strawberry.Info) -> int:
        return await repo.count(info.context.session, self.search)


@strawberry.input
class ListingNearInput:
    latitude: float
    longitude: float
    radius_km: float = 5.0


@strawberry.input(description="Every given filter must hold (lists: any of the values).")
class ListingFilter:
    districts: list[str] | None = None
    communities: list[str] | None = None
    statuses: list[ListingStatus] | None = None
    rooms: list[int] | None = None
    orientations: list[str] | None = None
    decorations: list[Decoration] | None = None
    tags: list[str] | None = strawberry.field(default=None, description="All of these tags.")
    agent_ids: list[strawberry.ID] | None = None
    price_min: Long | None = None
    price_max: Long | None = None
    area_min: Decimal | None = None
    area_max: Decimal | None = None
    built_after: int | None = None
    verified_only: bool = False
    keyword: str | None = None
    near: ListingNearInput | None = None


def to_search(f: ListingFilter | None) -> repo.ListingSearch:
    f = f or ListingFilter()
    for name in (
        "districts",
        "communities",
        "rooms",
        "orientations",
        "tags",
        "agent_ids",
        "statuses",
        "decorations",
    ):
        if len(getattr(f, name) or ()) > 100:
            raise ValidationFailed(f"at most 100 values in {name}", name)
    agents = []
    for a in f.agent_ids or ():
        if (aid := parse_id(a)) is None:
            raise ValidationFailed("agentIds holds an id that is not one", "agentIds")
        agents.append(aid)
    near = None
    if f.near is not None:
        near = search_kit.near(f.near.latitude, f.near.longitude, f.near.radius_km)
    return repo.ListingSearch(
        districts=list(f.districts or ()),
        communities=list(f.communities or ()),
        statuses=[s.value for s in f.statuses or ()],
        rooms=fits(list(f.rooms or ()), "rooms", ListingRow.rooms),
        orientations=[o.upper() for o in f.orientations or ()],
        decorations=[d.value for d in f.decorations or ()],
        tags=list(f.tags or ()),
        agent_ids=agents,
        price_min=f.price_min,
        price_max=f.price_max,
        area_min=fits(f.area_min, "areaMin", ListingRow.gross_area),
        area_max=fits(f.area_max, "areaMax", ListingRow.gross_area),
        built_after=fits(f.built_after, "builtAfter", ListingRow.year_built),
        verified_only=f.verified_only,
        keyword=(f.keyword or "").strip().lower()[:100] or None,
        near=near,
    )


@strawberry.input
class CreateListingInput:
    asking_price: Long
    community: str = strawberry.field(default="", description="Default: the unit's project")
    unit_id: strawberry.ID | None = strawberry.field(
        default=None, description="A unit the tenant sold earlier: fills the gaps from it."
    )
    gross_area: Decimal | None = None
    rooms: int | None = None
    city: str = ""
    district: str = ""
    address: str = ""
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    living_rooms: int = 1
    bathrooms: int = 1
    floor: int | None = None
    total_floors: int | None = None
    orientation: str | None = None
    year_built: int | None = None
    decoration: Decoration | None = None
    property_right: PropertyRight | None = None
    right_years: int | None = None
    title_registered_on: date | None = None
    mortgaged: bool = False
    only_home: bool = False
    seller_name: str = ""
    seller_phone: str | None = None
    description: str = ""
    tags: list[str] = strawberry.field(default_factory=list)
    expires_in_days: int | None = strawberry.field(
        default=None,
        description="Listed through this many days after today (the tenant's calendar): it "
        "expires at the tenant's midnight that ends the last of them.",
    )


def listing_input(i: CreateListingInput, tenant: TenantInfo, **extra) -> service.ListingInput:
    unit_id = None
    if i.unit_id:
        unit_id = parse_id(i.unit_id)
        if unit_id is None:
            raise NotFound("unit not found", "unitId")
    if i.expires_in_days is not None and not 1 <= i.expires_in_days <= 3650:
        raise ValidationFailed("expiresInDays must be between 1 and 3650", "expiresInDays")
    expires = service.expiry(i.expires_in_days, tenant, utcnow()) if i.expires_in_days else None
    return service.ListingInput(
        community=i.community,
        asking_price=i.asking_price,
        gross_area=i.gross_area,
        rooms=i.rooms,
        unit_id=unit_id,
        city=i.city,
        district=i.district,
        address=i.address,
        latitude=i.latitude,
        longitude=i.longitude,
        living_rooms=i.living_rooms,
        bathrooms=i.bathrooms,
        floor=i.floor,
        total_floors=i.total_floors,
        orientation=i.orientation,
        year_built=i.year_built,
        decoration=i.decoration.value if i.decoration else None,
        property_right=i.property_right.value if i.property_right else None,
        right_years=i.right_years,
        title_registered_on=i.title_registered_on,
        mortgaged=i.mortgaged,
        only_home=i.only_home,
        seller_name=i.seller_name,
        seller_phone=i.seller_phone,
        description=i.description,
        tags=i.tags,
        expires_at=expires,
        **extra,
    )


@strawberry.input
class ChangeListingPriceInput:
    listing_id: strawberry.ID
    asking_price: Long
    reason: str = ""


@strawberry.input
class ChangeListingStatusInput:
    listing_id: strawberry.ID
    status: ListingStatus
    reason: str = ""
    expected_version: int | None = None


@strawberry.type
class ListingPayload:
    listing: Listing


ListingResult = Annotated[
    ListingPayload
    | ValidationError
    | NotFoundError
    | ConflictError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("ListingResult"),
]


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[requires("listing.read")])
    async def listing(self, info: strawberry.Info, id: strawberry.ID) -> Listing | None:
        lid = parse_id(id)
        row = (
            await info.context.loaders.get("listing.by_id", listing_loader).load(lid)
            if lid
            else None
        )
        return Listing.of(row) if row else None

    @strawberry.field(
        permission_classes=[requires("listing.read")],
        description="Search resale listings: filters, keyword, distance, sort, cursors.",
    )
    async def listings(
        self,
        info: strawberry.Info,
        filter: ListingFilter | None = None,
        sort: ListingSort = ListingSort.NEWEST,
        first: int = 20,
        after: str | None = None,
    ) -> ListingConnection:
        search, first, cursor = search_args(to_search, filter, sort, first, after, SORT_KEYS[sort])
        rows = await repo.search(
            info.context.session, search, sort=sort.value, limit=first + 1, after=cursor
        )
        edges, page_info = edges_of(
            rows, first, sort.value, lambda c, x: ListingEdge(cursor=c, node=Listing.of(x))
        )
        return ListingConnection(edges=edges, page_info=page_info, search=search)


async def _principal(info):
    return await info.context.principal()


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[requires("listing.write")],
        description="List a second-hand home; you are its listing agent.",
    )
    async def create_listing(
        self, info: strawberry.Info, input: CreateListingInput
    ) -> ListingResult:
        ctx = info.context
        p = await _principal(info)

        async def work():
            row = await service.create_listing(
                ctx.session,
                ctx.kit,
                ctx.tenant.id,
                listing_input(input, ctx.tenant),
                actor_id=p.account_id,
            )
            return ListingPayload(listing=Listing.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("listing.write")],
        description="Change the asking price (your listings; all with listing.manage).",
    )
    async def change_listing_price(
        self, info: strawberry.Info, input: ChangeListingPriceInput
    ) -> ListingResult:
        p = await _principal(info)

        async def work():
            row = await service.change_price(
                info.context.session,
                require_id(input.listing_id, "listing", "listingId"),
                input.asking_price,
                reason=input.reason,
                actor_id=p.account_id,
                can_all=p.can("listing.manage"),
            )
            return ListingPayload(listing=Listing.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("listing.write")],
        description="Move a listing along active / under contract / sold / withdrawn / expired.",
    )
    async def change_listing_status(
        self, info: strawberry.Info, input: ChangeListingStatusInput
    ) -> ListingResult:
        p = await _principal(info)

        async def work():
            row = await service.change_status(
                info.context.session,
                require_id(input.listing_id, "listing", "listingId"),
                input.status.value,
                reason=input.reason,
                actor_id=p.account_id,
                can_all=p.can("listing.manage"),
                expected_version=input.expected_version,
            )
            return ListingPayload(listing=Listing.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("listing.verify")],
        description="Mark a listing's facts as checked (title, seller, on-site visit).",
    )
    async def verify_listing(
        self, info: strawberry.Info, listing_id: strawberry.ID, note: str = ""
    ) -> ListingResult:
        p = await _principal(info)

        async def work():
            row = await service.verify(
                info.context.session,
                require_id(listing_id, "listing", "listingId"),
                actor_id=p.account_id,
                note=note,
            )
            return ListingPayload(listing=Listing.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result
