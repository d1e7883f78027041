"""GraphQL types, queries and mutations of the project domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

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
from api.graphql.types import Node, parse_id, require_id
from api.project import repository as repo
from api.project import service
from api.project.models import Building as BuildingRow
from api.project.models import Project as ProjectRow

MAX_PAGE = 100

if TYPE_CHECKING:
    from api.media.schema import Media
    from api.unit.schema import UnitType


# ---------------------------------------------------------------- loaders (one set per request)


project_loader = batch_loader(repo.projects_by_ids)


_buildings_of_project_loader = batch_loader(repo.buildings_by_project_ids, list)


building_loader = batch_loader(repo.buildings_by_ids)


# ---------------------------------------------------------------- types


@strawberry.type(description="A development: one site with its buildings.")
class Project(Node):
    id: strawberry.ID
    name: str
    city: str
    district: str
    address: str
    latitude: Decimal | None
    longitude: Decimal | None
    facilities: list[str]
    surroundings: str
    created_at: datetime

    @classmethod
    def of(cls, row: ProjectRow) -> Project:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            city=row.city,
            district=row.district,
            address=row.address,
            latitude=row.latitude,
            longitude=row.longitude,
            facilities=list(row.facilities),
            surroundings=row.surroundings,
            created_at=row.created_at,
        )

    @strawberry.field(permission_classes=[requires("project.read")])
    async def buildings(self, info: strawberry.Info) -> list[Building]:
        loader = info.context.loaders.get("project.buildings", _buildings_of_project_loader)
        rows = await loader.load(uuid.UUID(self.id))
        return [Building.of(b) for b in rows]

    @strawberry.field(permission_classes=[requires("unit.read")])
    async def unit_types(
        self, info: strawberry.Info
    ) -> list[Annotated[UnitType, strawberry.lazy("api.unit.schema")]]:
        from api.unit.schema import UnitType, types_of_project_loader

        loader = info.context.loaders.get("project.unit_types", types_of_project_loader)
        return [UnitType.of(t) for t in await loader.load(uuid.UUID(self.id))]

    @strawberry.field(permission_classes=[requires("project.read")])
    async def media(
        self, info: strawberry.Info
    ) -> list[Annotated[Media, strawberry.lazy("api.media.schema")]]:
        from api.media.schema import media_of

        return await media_of(info, uuid.UUID(self.id))


@strawberry.type(description="A building of a project.")
class Building(Node):
    id: strawberry.ID
    name: str
    floors: int
    created_at: datetime
    project_id: strawberry.Private[uuid.UUID]

    @classmethod
    def of(cls, row: BuildingRow) -> Building:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            floors=row.floors,
            created_at=row.created_at,
            project_id=row.project_id,
        )

    @strawberry.field(permission_classes=[requires("project.read")])
    def project(self, info: strawberry.Info) -> Project:
        loader = info.context.loaders.get("project.by_id", project_loader)
        return then(now_or_later(loader, self.project_id), Project.of)


# ---------------------------------------------------------------- inputs and payloads


@strawberry.input
class CreateProjectInput:
    name: str
    city: str = ""
    district: str = ""
    address: str = ""
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    facilities: list[str] = strawberry.field(default_factory=list)
    surroundings: str = ""


@strawberry.input
class CreateBuildingInput:
    project_id: strawberry.ID
    name: str
    floors: int


@strawberry.type
class ProjectPayload:
    project: Project


@strawberry.type
class BuildingPayload:
    building: Building


CreateProjectResult = Annotated[
    ProjectPayload | ValidationError | PermissionDeniedError | AuthError,
    strawberry.union("CreateProjectResult"),
]
CreateBuildingResult = Annotated[
    BuildingPayload
    | ValidationError
    | NotFoundError
    | ConflictError
    | PermissionDeniedError
    | AuthError,
    strawberry.union("CreateBuildingResult"),
]


# ---------------------------------------------------------------- root fields


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[requires("project.read")], description="Projects ordered by id."
    )
    async def projects(
        self, info: strawberry.Info, first: int = 50, after: strawberry.ID | None = None
    ) -> list[Project]:
        first = max(0, min(first, MAX_PAGE))
        rows = await repo.list_projects(
            info.context.session, limit=first, after=parse_id(after) if after else None
        )
        return [Project.of(r) for r in rows]

    @strawberry.field(permission_classes=[requires("project.read")])
    async def project(self, info: strawberry.Info, id: strawberry.ID) -> Project | None:
        pid = parse_id(id)
        if pid is None:
            return None
        row = await info.context.loaders.get("project.by_id", project_loader).load(pid)
        return Project.of(row) if row else None

    @strawberry.field(permission_classes=[requires("project.read")])
    async def building(self, info: strawberry.Info, id: strawberry.ID) -> Building | None:
        bid = parse_id(id)
        if bid is None:
            return None
        row = await info.context.loaders.get("building.by_id", building_loader).load(bid)
        return Building.of(row) if row else None


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[requires("project.write")])
    async def create_project(
        self, info: strawberry.Info, input: CreateProjectInput
    ) -> CreateProjectResult:
        async def work() -> ProjectPayload:
            row = await service.create_project(
                info.context.session,
                service.ProjectInput(
                    name=input.name,
                    city=input.city,
                    district=input.district,
                    address=input.address,
                    latitude=input.latitude,
                    longitude=input.longitude,
                    facilities=input.facilities,
                    surroundings=input.surroundings,
                ),
            )
            return ProjectPayload(project=Project.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(permission_classes=[requires("project.write")])
    async def create_building(
        self, info: strawberry.Info, input: CreateBuildingInput
    ) -> CreateBuildingResult:
        async def work() -> BuildingPayload:
            project_id = require_id(input.project_id, "project", "projectId")
            row = await service.create_building(
                info.context.session,
                service.BuildingInput(project_id=project_id, name=input.name, floors=input.floors),
            )
            return BuildingPayload(building=Building.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result
