"""Business rules of projects and buildings. Never commits: the request or job owns the
transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Conflict, NotFound, ValidationFailed
from api.project import repository as repo
from api.project.models import Building, Project
from api.validate import text, unique_texts

MAX_FLOORS = 200


@dataclass(frozen=True, slots=True)
class ProjectInput:
    name: str
    city: str = ""
    district: str = ""
    address: str = ""
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    facilities: list[str] = field(default_factory=list)
    surroundings: str = ""


@dataclass(frozen=True, slots=True)
class BuildingInput:
    project_id: uuid.UUID
    name: str
    floors: int


async def create_project(session: AsyncSession, data: ProjectInput) -> Project:
    project = Project(
        name=text(data.name, "name", required=True, max_len=200),
        city=text(data.city, "city", required=False, max_len=100),
        district=text(data.district, "district", required=False, max_len=100),
        address=text(data.address, "address", required=False, max_len=300),
        facilities=unique_texts(data.facilities, "facilities", max_count=50),
        surroundings=text(data.surroundings, "surroundings", required=False, max_len=2000),
    )
    latitude, longitude = data.latitude, data.longitude
    if (latitude is None) != (longitude is None):
        raise ValidationFailed("latitude and longitude go together", "latitude")
    if latitude is not None and longitude is not None:
        if not (latitude.is_finite() and longitude.is_finite()):
            raise ValidationFailed("latitude and longitude must be numbers", "latitude")
        if not Decimal(-90) <= latitude <= Decimal(90):
            raise ValidationFailed("latitude must be between -90 and 90", "latitude")
        if not Decimal(-180) <= longitude <= Decimal(180):
            raise ValidationFailed("longitude must be between -180 and 180", "longitude")
        project.latitude = latitude.quantize(Decimal("0.000001"))
        project.longitude = longitude.quantize(Decimal("0.000001"))
    await repo.add(session, project)
    return project


async def create_building(session: AsyncSession, data: BuildingInput) -> Building:
    name = text(data.name, "name", required=True, max_len=100)
    if not 1 <= data.floors <= MAX_FLOORS:
        raise ValidationFailed(f"floors must be between 1 and {MAX_FLOORS}", "floors")
    if not await repo.projects_by_ids(session, [data.project_id]):
        raise NotFound("project not found", "projectId")
    if await repo.building_name_taken(session, data.project_id, name):
        raise Conflict(f"building '{name}' already exists in this project", "name")
    building = Building(project_id=data.project_id, name=name, floors=data.floors)
    try:
        async with session.begin_nested():  # a concurrent twin loses on the unique key
            await repo.add(session, building)
    except IntegrityError as exc:
        raise Conflict(f"building '{name}' already exists in this project", "name") from exc
    return building
