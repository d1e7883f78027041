"""Teams (company > office > team) and data scopes.

A record that belongs to a person (a client, a follow-up...) is visible to the caller by the
widest data scope of the caller's roles:
- ``own``: records the caller owns;
- ``team``: records owned by anyone in the caller's teams or in the teams below them (a manager
  of an office sees its teams);
- ``all``: every record of the tenant.
``visible_owners`` gives the owner ids to filter on (None: no filter); domains apply it as
``owner_id IN (...)`` in their repositories."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sqlalchemy import ColumnElement, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from api.errors import Conflict, NotFound, ValidationFailed
from api.identity.auth import Principal
from api.identity.models import Team, TeamMember

PARENT_KIND = {"company": None, "office": "company", "team": "office"}


async def create_team(
    session: AsyncSession, name: str, kind: str, parent_id: uuid.UUID | None
) -> Team:
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise ValidationFailed("name must be 1 to 100 characters", "name")
    if kind not in PARENT_KIND:
        raise ValidationFailed("kind must be company, office or team", "kind")
    want_parent = PARENT_KIND[kind]
    if want_parent is None:
        if parent_id is not None:
            raise ValidationFailed("a company has no parent", "parentId")
    else:
        parent = await session.get(Team, parent_id) if parent_id else None
        if parent is None:
            raise NotFound(f"a {kind} needs its {want_parent}", "parentId")
        if parent.kind != want_parent:
            raise ValidationFailed(f"a {kind} belongs to a {want_parent}", "parentId")
    team = Team(name=name, kind=kind, parent_id=parent_id)
    session.add(team)
    await session.flush()
    return team


async def add_member(session: AsyncSession, team_id: uuid.UUID, account_id: uuid.UUID) -> None:
    if await session.get(Team, team_id) is None:
        raise NotFound("team not found", "teamId")
    if await session.get(TeamMember, (team_id, account_id)) is not None:
        raise Conflict("already in this team", "accountId")
    session.add(TeamMember(team_id=team_id, account_id=account_id))
    await session.flush()


async def remove_member(session: AsyncSession, team_id: uuid.UUID, account_id: uuid.UUID) -> None:
    row = await session.get(TeamMember, (team_id, account_id))
    if row is None:
        raise NotFound("not in this team", "accountId")
    await session.delete(row)
    await session.flush()


class TeamList(NamedTuple):
    teams: Sequence[Team]
    members: dict[uuid.UUID, list[uuid.UUID]]  # team id -> its members' account ids


async def list_teams(session: AsyncSession) -> TeamList:
    teams = (await session.scalars(select(Team).order_by(Team.kind, Team.name))).all()
    members = (await session.execute(select(TeamMember.team_id, TeamMember.account_id))).all()
    by_team: dict[uuid.UUID, list[uuid.UUID]] = {}
    for team_id, account_id in members:
        by_team.setdefault(team_id, []).append(account_id)
    return TeamList(teams, by_team)


async def visible_owners(session: AsyncSession, p: Principal) -> set[uuid.UUID] | None:
    """Owner ids whose records the caller may see; None means all of the tenant's."""
    if p.scope == "all":
        return None
    if p.scope == "own":
        return {p.account_id}
    # team: the caller's teams and every team below them (one recursive query).
    mine = select(TeamMember.team_id.label("id")).where(TeamMember.account_id == p.account_id)
    tree = mine.cte("tree", recursive=True)
    tree = tree.union(select(Team.id).where(Team.parent_id == tree.c.id))
    owners = await session.scalars(
        select(TeamMember.account_id).where(TeamMember.team_id.in_(select(tree.c.id)))
    )
    return set(owners) | {p.account_id}


async def active_members(session: AsyncSession, accounts: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Of ``accounts``, those with an active membership of the session's tenant."""
    from api.identity.models import Membership

    stmt = select(Membership.account_id).where(
        Membership.account_id.in_(list(accounts)),
        Membership.status == "active",
        Membership.tenant_id == uuid.UUID(str(session.info["tenant_id"])),
    )
    return set(await session.scalars(stmt))


def owner_filter(
    column: QueryableAttribute[uuid.UUID] | QueryableAttribute[uuid.UUID | None],
    owners: set[uuid.UUID] | None,
) -> ColumnElement[bool]:
    """The WHERE clause for a repository: ``owner_id IN (...)``, or true for scope all."""
    return literal(True) if owners is None else column.in_(owners)
