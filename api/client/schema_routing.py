"""Lead routing in GraphQL: the rules (lead.route), agents pausing themselves, the offers an
agent may claim, and a manager routing or assigning a client."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

import strawberry

from api.client import routing, service
from api.client.models import AgentRouting, RouteMode
from api.client.models import LeadRoute as LeadRouteRow
from api.client.schema import Client, ClientPayload, ClientResult, ClientSource
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

strawberry.enum(  # the model's enum, registered as a GraphQL enum
    RouteMode,
    description="ROUND_ROBIN: the available member who waited longest gets the lead; CLAIM: "
    "the team's available members are offered it, the first to claim gets it.",
)


def _long(value: int | None) -> Long | None:
    return Long(value) if value is not None else None


def _ids(values: Iterable[uuid.UUID] | None) -> list[strawberry.ID]:
    return [strawberry.ID(str(v)) for v in values or ()]


@strawberry.type(description="A lead routing rule; empty conditions match every lead.")
class LeadRoute:
    id: strawberry.ID
    name: str
    position: int
    active: bool
    sources: list[ClientSource]
    districts: list[str]
    languages: list[str]
    budget_min: Long | None
    budget_max: Long | None
    team_id: strawberry.ID | None
    agent_id: strawberry.ID | None
    mode: RouteMode
    claim_minutes: int
    fallback_team_ids: list[strawberry.ID]
    version: int

    @classmethod
    def of(cls, r: LeadRouteRow) -> LeadRoute:
        return cls(
            id=strawberry.ID(str(r.id)),
            name=r.name,
            position=r.position,
            active=r.active,
            sources=[ClientSource(s) for s in r.sources],
            districts=list(r.districts),
            languages=list(r.languages),
            budget_min=_long(r.budget_min),
            budget_max=_long(r.budget_max),
            team_id=strawberry.ID(str(r.team_id)) if r.team_id else None,
            agent_id=strawberry.ID(str(r.agent_id)) if r.agent_id else None,
            mode=RouteMode(r.mode),
            claim_minutes=r.claim_minutes,
            fallback_team_ids=_ids(r.fallback_team_ids),
            version=r.version,
        )


@strawberry.input
class LeadRouteInput:
    name: str
    team_id: strawberry.ID | None = None
    agent_id: strawberry.ID | None = None
    mode: RouteMode = RouteMode.ROUND_ROBIN
    position: int = 0
    active: bool = True
    sources: list[ClientSource] = strawberry.field(default_factory=list)
    districts: list[str] = strawberry.field(default_factory=list)
    languages: list[str] = strawberry.field(default_factory=list)
    budget_min: Long | None = None
    budget_max: Long | None = None
    claim_minutes: int = 15
    fallback_team_ids: list[strawberry.ID] = strawberry.field(default_factory=list)

    def to_service(self) -> routing.RouteInput:
        return routing.RouteInput(
            name=self.name,
            mode=self.mode.value,
            position=self.position,
            active=self.active,
            team_id=require_id(self.team_id, "team", "teamId") if self.team_id else None,
            agent_id=require_id(self.agent_id, "member", "agentId") if self.agent_id else None,
            sources=tuple(s.value for s in self.sources),
            districts=tuple(self.districts),
            languages=tuple(self.languages),
            budget_min=self.budget_min,
            budget_max=self.budget_max,
            claim_minutes=self.claim_minutes,
            fallback_team_ids=tuple(
                require_id(t, "team", "fallbackTeamIds") for t in self.fallback_team_ids
            ),
        )


@strawberry.type
class LeadRoutePayload:
    route: LeadRoute


@strawberry.type(description="Whether routing gives you leads now (a pause may end by itself).")
class RoutingAvailability:
    account_id: strawberry.ID
    paused: bool
    paused_until: datetime | None
    reason: str
    last_assigned_at: datetime | None


LeadRouteResult = Annotated[
    LeadRoutePayload
    | ValidationError
    | ConflictError
    | NotFoundError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("LeadRouteResult"),
]
AvailabilityResult = Annotated[
    RoutingAvailability | ValidationError | NotFoundError | PermissionDeniedError | AuthError,
    strawberry.union("AvailabilityResult"),
]


def _availability(r: AgentRouting) -> RoutingAvailability:
    return RoutingAvailability(
        account_id=strawberry.ID(str(r.account_id)),
        paused=r.paused,
        paused_until=r.paused_until,
        reason=r.pause_reason or "",
        last_assigned_at=r.last_assigned_at,
    )


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("lead.route")],
        description="The routing rules, in the order they are tried.",
    )
    async def lead_routes(self, info: strawberry.Info) -> list[LeadRoute]:
        return [LeadRoute.of(r) for r in await routing.routes(info.context.session)]

    @strawberry.field(
        permission_classes=[requires("client.read")],
        description="Leads offered to your teams now: claim one with claimClient.",
    )
    async def my_lead_offers(self, info: strawberry.Info, first: int = 50) -> list[Client]:
        ctx = info.context
        rows = await routing.offers(ctx.session, ctx.principal_now(), first=max(1, min(first, 100)))
        return [Client.of(r) for r in rows]

    @strawberry.field(permission_classes=[requires("client.read")])
    async def my_routing(self, info: strawberry.Info) -> RoutingAvailability:
        ctx = info.context
        return _availability(
            await routing.availability(ctx.session, ctx.principal_now().account_id)
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[requires("lead.route")])
    async def create_lead_route(
        self, info: strawberry.Info, input: LeadRouteInput
    ) -> LeadRouteResult:
        ctx = info.context

        async def work() -> LeadRoutePayload:
            row = await routing.create_route(ctx.session, input.to_service())
            return LeadRoutePayload(route=LeadRoute.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(permission_classes=[requires("lead.route")])
    async def update_lead_route(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        input: LeadRouteInput,
        expected_version: int | None = None,
    ) -> LeadRouteResult:
        ctx = info.context

        async def work() -> LeadRoutePayload:
            row = await routing.update_route(
                ctx.session,
                require_id(id, "routing rule", "id"),
                input.to_service(),
                expected_version=expected_version,
            )
            return LeadRoutePayload(route=LeadRoute.of(row))

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(permission_classes=[requires("lead.route")])
    async def delete_lead_route(self, info: strawberry.Info, id: strawberry.ID) -> bool:
        await routing.delete_route(info.context.session, require_id(id, "routing rule", "id"))
        return True

    @strawberry.mutation(
        permission_classes=[requires("client.read")],
        description="Pause (or resume) routing to yourself; a pause may end at a given time.",
    )
    async def set_my_routing_pause(
        self, info: strawberry.Info, paused: bool, until: datetime | None = None, reason: str = ""
    ) -> AvailabilityResult:
        ctx = info.context

        async def work() -> RoutingAvailability:
            return _availability(
                await routing.set_paused(
                    ctx.session,
                    ctx.principal_now().account_id,
                    paused=paused,
                    until=until,
                    reason=reason,
                )
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("lead.route")],
        description="Pause or resume routing to an agent.",
    )
    async def set_agent_routing_pause(
        self,
        info: strawberry.Info,
        agent_id: strawberry.ID,
        paused: bool,
        until: datetime | None = None,
        reason: str = "",
    ) -> AvailabilityResult:
        ctx = info.context

        async def work() -> RoutingAvailability:
            agent = require_id(agent_id, "member", "agentId")
            await routing.check_agent(ctx.session, ctx.principal_now(), agent)
            return _availability(
                await routing.set_paused(
                    ctx.session, agent, paused=paused, until=until, reason=reason
                )
            )

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("lead.route")],
        description="Route a client in your scope by the rules now (e.g. from the pool).",
    )
    async def route_client(self, info: strawberry.Info, client_id: strawberry.ID) -> ClientResult:
        ctx = info.context

        async def work() -> ClientPayload:
            row = await service.get_visible(
                ctx.session,
                ctx.principal_now(),
                require_id(client_id, "client", "clientId"),
                lock=True,
            )
            routed = await routing.route(ctx.session, row, by=ctx.principal_now().account_id)
            await routing.announce(ctx.session, row, routed)
            return ClientPayload(client=Client.of(row), duplicates=[])

        result, error = await attempt(ctx.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("lead.route")],
        description="Give a client in your scope to an agent (notified; the note is the reason).",
    )
    async def assign_client(
        self,
        info: strawberry.Info,
        client_id: strawberry.ID,
        agent_id: strawberry.ID,
        note: str = "",
    ) -> ClientResult:
        ctx = info.context

        async def work() -> ClientPayload:
            p = ctx.principal_now()
            row = await service.get_visible(
                ctx.session, p, require_id(client_id, "client", "clientId"), lock=True
            )
            routed = await routing.assign(
                ctx.session, p, row, require_id(agent_id, "member", "agentId"), note
            )
            await routing.announce(ctx.session, row, routed)
            return ClientPayload(client=Client.of(row), duplicates=[])

        result, error = await attempt(ctx.session, work)
        return error or result
