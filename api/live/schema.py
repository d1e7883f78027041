"""Live subscriptions: unit status and price changes of a project or building, listing
changes matching a filter or saved search, and the caller's followed items.

They are served by the graphql-transport-ws endpoint (api/live/ws.py), which builds each
event's payload once per document shape. Each field here declares its arguments, payload and
permission; ``PLANS`` says which events a subscription receives."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import strawberry

from api.errors import ErrorCode, ValidationFailed
from api.follow import service as follow_service
from api.graphql.permissions import Authenticated, requires
from api.graphql.types import Long, Money, parse_id, require_id
from api.listing import service as listing_service
from api.listing.schema import ListingFilter, ListingStatus
from api.listing.schema import to_search as listing_search
from api.live.hub import Control, Hub, LiveEvent, Topic
from api.notify.schema import Notification, NotificationCategory
from api.project.models import Building, Project
from api.unit.schema import StandardStatus, UnitStatus
from api.unit.status import RESO
from api.validate import existing

if TYPE_CHECKING:
    from api.live.hub import Feed
    from api.live.ws import PlanContext


@strawberry.enum(description="What changed on a unit.")
class UnitChangeKind(enum.Enum):
    STATUS = "status"
    PRICE = "price"


@strawberry.enum(description="What changed on a listing.")
class ListingChangeKind(enum.Enum):
    CREATED = "created"
    STATUS = "status"
    PRICE = "price"
    VERIFIED = "verified"


@strawberry.type(description="A unit's new status or price, as a sales table patches its row.")
class UnitChange:
    seq: Long = strawberry.field(description="The tenant's event sequence (resume from it).")
    kind: UnitChangeKind
    unit_id: strawberry.ID
    building_id: strawberry.ID
    project_id: strawberry.ID
    number: str
    floor: int
    status: UnitStatus
    standard_status: StandardStatus
    list_price: Money | None
    version: int = strawberry.field(description="The unit's version after the change.")
    hold_expires_at: datetime | None
    occurred_at: datetime


@strawberry.type(description="A listing created, or its status, price or verification changed.")
class ListingChange:
    seq: Long
    kind: ListingChangeKind
    listing_id: strawberry.ID
    unit_id: strawberry.ID | None
    status: ListingStatus
    standard_status: StandardStatus
    asking_price: Money
    version: int
    verified: bool
    city: str
    district: str
    community: str
    rooms: int
    gross_area: Decimal
    occurred_at: datetime


@strawberry.type(
    description="Events since the given sequence are no longer all kept (or the sequence is "
    "unknown): read the current state again, then go on from this message's sequence."
)
class RefetchRequired:
    seq: Long = strawberry.field(description="The tenant's latest sequence.")
    reason: str


UnitLive = Annotated[UnitChange | RefetchRequired, strawberry.union("UnitLive")]
ListingLive = Annotated[ListingChange | RefetchRequired, strawberry.union("ListingLive")]
FollowedLive = Annotated[
    UnitChange | ListingChange | RefetchRequired, strawberry.union("FollowedLive")
]


def to_object(ev: LiveEvent) -> Any:
    """The GraphQL object of one bus event (built once per event)."""
    p, kind = ev["payload"], ev["kind"].split(".", 1)[1]
    at = datetime.fromisoformat(ev["at"])
    if ev["kind"].startswith("notification."):
        return Notification(
            id=p["notification_id"],
            category=NotificationCategory(p["category"]),
            urgent=p["urgent"],
            title=p["title"],
            body=p["body"],
            data=p["data"],
            created_at=datetime.fromisoformat(p["created_at"]),
            read_at=None,
        )
    if ev["kind"].startswith("unit."):
        hold = p.get("hold_expires_at")
        return UnitChange(
            seq=ev["seq"],
            kind=UnitChangeKind(kind),
            unit_id=p["unit_id"],
            building_id=p["building_id"],
            project_id=p["project_id"],
            number=p["number"],
            floor=p["floor"],
            status=UnitStatus(p["status"]),
            standard_status=StandardStatus(RESO[p["status"]]),
            list_price=Money.of(p["list_price"], p["currency"]),
            version=p["version"],
            hold_expires_at=datetime.fromisoformat(hold) if hold else None,
            occurred_at=at,
        )
    return ListingChange(
        seq=ev["seq"],
        kind=ListingChangeKind(kind),
        listing_id=p["listing_id"],
        unit_id=p["unit_id"],
        status=ListingStatus(p["status"]),
        standard_status=StandardStatus(listing_service.RESO[p["status"]]),
        asking_price=Money(minor_units=p["asking_price"], currency=p["currency"]),
        version=p["version"],
        verified=p["verified"],
        city=p["city"],
        district=p["district"],
        community=p["community"],
        rooms=p["rooms"],
        gross_area=Decimal(p["gross_area"]),
        occurred_at=at,
    )


# ---------------------------------------------------------------- plans


@dataclass
class Plan:
    """Which events a subscription receives: its topic keys (under its tenant), a filter,
    and for followed items a control hook that re-keys the feed when a follow changes."""

    keys: set[Topic]
    accept: Callable[[LiveEvent], bool]
    control: Control | None = None


Args = dict[str, Any]
"""A subscription field's arguments, converted (snake_case names)."""


def _is_unit(ev: LiveEvent) -> bool:
    return ev["kind"].startswith("unit.")


async def plan_units(ctx: PlanContext, args: Args) -> Plan:
    project, building = args.get("project_id"), args.get("building_id")
    if (project is None) == (building is None):
        raise ValidationFailed("give exactly one of projectId and buildingId", "projectId")
    if building is not None:
        kind, column, field = "building", Building.id, "buildingId"
    else:
        kind, column, field = "project", Project.id, "projectId"
    target = require_id(building if building is not None else project, kind, field)
    async with ctx.session() as session:  # like a saved search: an unknown one is NOT_FOUND
        await existing(session, column, [target], kind, field)
    return Plan({(ctx.tenant_id, kind, str(target))}, _is_unit)


async def plan_listings(ctx: PlanContext, args: Args) -> Plan:
    saved, given = args.get("saved_search_id"), args.get("filter")
    if saved is not None and given is not None:
        raise ValidationFailed("give a filter or a saved search, not both", "filter")
    if saved is not None:
        sid = parse_id(saved)
        async with ctx.session() as session:
            search = await follow_service.saved_listing_search(
                session, ctx.principal.account_id, sid
            )
    else:
        search = follow_service._jsonable(listing_search(given))

    def accept(ev: LiveEvent) -> bool:
        return ev["kind"].startswith("listing.") and listing_service.matches(search, ev["payload"])

    return Plan({(ctx.tenant_id, "listings")}, accept)


async def plan_followed(ctx: PlanContext, args: Args) -> Plan:
    t, me = ctx.tenant_id, ctx.principal.account_id
    async with ctx.session() as session:
        rows = await follow_service.followed_entity_ids(session, me)
    keys: set[Topic] = {(t, "entity", str(i)) for i in rows} | {(t, "account", str(me))}

    def control(hub: Hub, feed: Feed, ev: LiveEvent) -> None:
        p = ev["payload"]
        if p["account_id"] != str(me) or p["target_id"] is None:
            return
        key = (t, "entity", p["target_id"])
        if ev["kind"] == "follow.created":
            hub.add_key(feed, key)
        else:
            hub.remove_key(feed, key)

    def accept(ev: LiveEvent) -> bool:
        return not ev["kind"].startswith("follow.")

    return Plan(keys, accept, control)


async def plan_inbox(ctx: PlanContext, args: Args) -> Plan:
    key = (ctx.tenant_id, "inbox", str(ctx.principal.account_id))
    return Plan({key}, lambda ev: ev["kind"].startswith("notification."))


PLANS: dict[str, Callable[[PlanContext, Args], Awaitable[Plan]]] = {
    "inboxChanges": plan_inbox,
    "unitChanges": plan_units,
    "listingChanges": plan_listings,
    "followedChanges": plan_followed,
}


def _websocket_only() -> NoReturn:
    from api.graphql.errors import QueryError

    raise QueryError(
        ErrorCode.BAD_USER_INPUT,
        "subscriptions are served over WebSocket (graphql-transport-ws) at /graphql",
    )


SINCE = "Resume: the last sequence this client saw; missed events come first (or RefetchRequired)."


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=[requires("unit.read")],
        description="Status and price changes of a project's or a building's units.",
    )
    async def unit_changes(
        self,
        project_id: strawberry.ID | None = None,
        building_id: strawberry.ID | None = None,
        since: Annotated[Long | None, strawberry.argument(description=SINCE)] = None,
    ) -> AsyncGenerator[UnitLive, None]:
        _websocket_only()
        yield  # pragma: no cover

    @strawberry.subscription(
        permission_classes=[requires("listing.read")],
        description="Listings created or changed that match a filter or one of your saved "
        "listing searches (neither: every listing).",
    )
    async def listing_changes(
        self,
        filter: ListingFilter | None = None,
        saved_search_id: strawberry.ID | None = None,
        since: Annotated[Long | None, strawberry.argument(description=SINCE)] = None,
    ) -> AsyncGenerator[ListingLive, None]:
        _websocket_only()
        yield  # pragma: no cover

    @strawberry.subscription(
        permission_classes=[Authenticated],
        description="New notifications in your inbox, as they are made.",
    )
    async def inbox_changes(self) -> AsyncGenerator[Notification, None]:
        _websocket_only()
        yield  # pragma: no cover

    @strawberry.subscription(
        permission_classes=[requires("follow")],
        description="Changes of the units and listings you follow (follows made meanwhile "
        "count at once).",
    )
    async def followed_changes(
        self,
        since: Annotated[Long | None, strawberry.argument(description=SINCE)] = None,
    ) -> AsyncGenerator[FollowedLive, None]:
        _websocket_only()
        yield  # pragma: no cover
