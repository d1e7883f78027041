"""All queries of the project domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import rows_where_in
from api.project.models import Building, Project


async def list_projects(
    session: AsyncSession, *, limit: int, after: uuid.UUID | None = None
) -> Sequence[Project]:
    stmt = select(Project).order_by(Project.id).limit(limit)
    if after is not None:
        stmt = stmt.where(Project.id > after)
    return (await session.scalars(stmt)).all()


async def projects_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Project]:
    rows = await rows_where_in(session, Project.id, ids)
    return {p.id: p for p in rows}


async def buildings_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Building]:
    rows = await rows_where_in(session, Building.id, ids)
    return {b.id: b for b in rows}


async def buildings_by_project_ids(
    session: AsyncSession, project_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Building]]:
    rows = await session.scalars(
        select(Building).where(Building.project_id.in_(project_ids)).order_by(Building.name)
    )
    out: dict[uuid.UUID, list[Building]] = {pid: [] for pid in project_ids}
    for b in rows:
        out[b.project_id].append(b)
    return out


async def building_name_taken(session: AsyncSession, project_id: uuid.UUID, name: str) -> bool:
    stmt = select(Building.id).where(Building.project_id == project_id, Building.name == name)
    return (await session.scalar(stmt)) is not None


async def add(session: AsyncSession, obj: Project | Building) -> None:
    session.add(obj)
    await session.flush()
