"""Lead routing: which agent a new lead goes to, and why.

Rules are tried by position; the first whose conditions all match (source, district, budget,
language; an empty condition matches every lead) decides. Its target is an agent or a team;
after it come its fallback teams, in order, and after them the shared pool.

- ``round_robin``: the available member of the team who waited longest since a rule last gave
  them a lead gets it (a transaction lock per team, so two leads routed at once go to two
  agents). A team with nobody available (all paused, or no active member) passes the lead on.
- ``claim``: the lead is offered to the team's available members (each gets a notification);
  the first to claim it gets it. Nobody within ``claim_minutes``: the next fallback team is
  offered it, and after the last one it goes to the pool.

Every step is an ``assignments`` entry with the reason in words (the app shows it): the rule,
what matched, which group, and what was skipped on the way. Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.client.models import ROUTE_MODES, SOURCES, AgentRouting, Assignment, Client, LeadRoute
from api.client.service import LANGUAGES, OPEN
from api.db import lock_for_transaction, utcnow
from api.errors import Conflict, NotFound, ValidationFailed
from api.identity.auth import Principal
from api.identity.models import Team, TeamMember
from api.identity.teams import active_members, visible_owners
from api.validate import text, unique_texts

# ---------------------------------------------------------------- rules


@dataclass
class RouteInput:
    name: str
    team_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    mode: str = "round_robin"
    position: int = 0
    active: bool = True
    sources: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    budget_min: int | None = None
    budget_max: int | None = None
    claim_minutes: int = 15
    fallback_team_ids: tuple[uuid.UUID, ...] = ()


async def _check_route(session: AsyncSession, i: RouteInput) -> None:
    if (i.team_id is None) == (i.agent_id is None):
        raise ValidationFailed("a rule sends leads to a team or to an agent", "teamId")
    if i.mode not in ROUTE_MODES:
        raise ValidationFailed("mode is round_robin or claim", "mode")
    if i.agent_id is not None and i.mode == "claim":
        raise ValidationFailed("only a team can be offered leads to claim", "mode")
    if not 1 <= i.claim_minutes <= 1440:
        raise ValidationFailed("claim minutes are 1 to 1440", "claimMinutes")
    if any(s not in SOURCES for s in i.sources):
        raise ValidationFailed(f"sources are among {', '.join(SOURCES)}", "sources")
    if any(lang not in LANGUAGES for lang in i.languages):
        raise ValidationFailed(f"languages are among {', '.join(LANGUAGES)}", "languages")
    for value, name in ((i.budget_min, "budgetMin"), (i.budget_max, "budgetMax")):
        if value is not None and value < 0:
            raise ValidationFailed("a budget is not negative", name)
    if i.budget_min is not None and i.budget_max is not None and i.budget_min > i.budget_max:
        raise ValidationFailed("the budget's minimum is above its maximum", "budgetMin")
    if len(i.fallback_team_ids) > 5 or len(set(i.fallback_team_ids)) < len(i.fallback_team_ids):
        raise ValidationFailed("at most 5 different fallback teams", "fallbackTeamIds")
    if i.team_id is not None and i.team_id in i.fallback_team_ids:
        raise ValidationFailed("the rule's team is not its own fallback", "fallbackTeamIds")
    teams = {t for t in (i.team_id, *i.fallback_team_ids) if t is not None}
    if teams:
        found = set(await session.scalars(select(Team.id).where(Team.id.in_(teams))))
        if teams - found:
            field = "teamId" if i.team_id in teams - found else "fallbackTeamIds"
            raise NotFound("team not found", field)
    if i.agent_id is not None and not await active_members(session, [i.agent_id]):
        raise NotFound("no active member with this id", "agentId")


def _apply(row: LeadRoute, i: RouteInput) -> None:
    row.name = text(i.name, "name", required=True, max_len=100)
    row.team_id, row.agent_id, row.mode = i.team_id, i.agent_id, i.mode
    row.position, row.active, row.claim_minutes = i.position, i.active, i.claim_minutes
    row.sources = list(dict.fromkeys(i.sources))
    row.districts = unique_texts(list(i.districts), "districts", max_len=100, max_count=50)
    row.languages = list(dict.fromkeys(i.languages))
    row.budget_min, row.budget_max = i.budget_min, i.budget_max
    row.fallback_team_ids = list(i.fallback_team_ids)


async def create_route(session: AsyncSession, i: RouteInput) -> LeadRoute:
    await _check_route(session, i)
    row = LeadRoute()
    _apply(row, i)
    session.add(row)
    await session.flush()
    return row


async def update_route(
    session: AsyncSession, route_id: uuid.UUID, i: RouteInput, *, expected_version: int | None
) -> LeadRoute:
    row = await session.get(LeadRoute, route_id, with_for_update=True)
    if row is None:
        raise NotFound("routing rule not found", "id")
    if expected_version is not None and row.version != expected_version:
        raise Conflict(f"the rule changed meanwhile (version {row.version})", "expectedVersion")
    await _check_route(session, i)
    _apply(row, i)
    row.version += 1
    await session.flush()
    return row


async def delete_route(session: AsyncSession, route_id: uuid.UUID) -> None:
    row = await session.get(LeadRoute, route_id)
    if row is None:
        raise NotFound("routing rule not found", "id")
    await session.delete(row)
    await session.flush()


async def routes(session: AsyncSession) -> list[LeadRoute]:
    stmt = select(LeadRoute).order_by(LeadRoute.position, LeadRoute.created_at, LeadRoute.id)
    return list((await session.scalars(stmt)).all())


# ---------------------------------------------------------------- matching


def _budget(client: Client) -> tuple[int | None, int | None]:
    needs = client.needs or {}
    return needs.get("budget_min"), needs.get("budget_max")


def matches(rule: LeadRoute, client: Client) -> list[str] | None:
    """What of the client matched the rule (for the reason), or None when it does not."""
    why: list[str] = []
    if rule.sources:
        if client.source not in rule.sources:
            return None
        why.append(f"source {client.source}")
    if rule.districts:
        wanted = [d for d in (client.needs or {}).get("districts", []) if d in rule.districts]
        if not wanted:
            return None
        why.append("district " + ", ".join(wanted))
    if rule.languages:
        if client.language not in rule.languages:
            return None
        why.append(f"language {client.language}")
    if rule.budget_min is not None or rule.budget_max is not None:
        lo, hi = _budget(client)
        if lo is None and hi is None:
            return None
        # The client's range (open where not given) overlaps the rule's.
        if rule.budget_max is not None and lo is not None and lo > rule.budget_max:
            return None
        if rule.budget_min is not None and hi is not None and hi < rule.budget_min:
            return None
        why.append("budget " + "-".join(str(v // 100) if v is not None else "" for v in (lo, hi)))
    return why


# ---------------------------------------------------------------- availability


def _available_clause(now: datetime) -> ColumnElement[bool]:
    return or_(
        AgentRouting.paused.is_(None),
        AgentRouting.paused.is_(False),
        AgentRouting.paused_until <= now,
    )


async def available_members(
    session: AsyncSession, team_id: uuid.UUID, now: datetime
) -> list[uuid.UUID]:
    """The team's active, unpaused members, who waited longest first (then by id)."""
    rows = (
        (
            await session.execute(
                select(TeamMember.account_id)
                .outerjoin(AgentRouting, AgentRouting.account_id == TeamMember.account_id)
                .where(TeamMember.team_id == team_id, _available_clause(now))
                .order_by(AgentRouting.last_assigned_at.asc().nullsfirst(), TeamMember.account_id)
            )
        )
        .scalars()
        .all()
    )
    active = await active_members(session, rows) if rows else set()
    return [a for a in rows if a in active]


async def is_available(session: AsyncSession, account_id: uuid.UUID, now: datetime) -> bool:
    if not await active_members(session, [account_id]):
        return False
    row = await session.get(AgentRouting, account_id)
    return (
        row is None or not row.paused or (row.paused_until is not None and row.paused_until <= now)
    )


async def set_paused(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    paused: bool,
    until: datetime | None = None,
    reason: str = "",
) -> AgentRouting:
    if until is not None:
        if not paused:
            raise ValidationFailed("until is for a pause", "until")
        if until <= utcnow():
            raise ValidationFailed("a pause ends in the future", "until")
    reason = text(reason, "reason", required=False, max_len=200)
    await session.execute(
        insert(AgentRouting)
        .values(account_id=account_id, paused=paused, paused_until=until, pause_reason=reason)
        .on_conflict_do_update(
            index_elements=[AgentRouting.account_id],
            set_={"paused": paused, "paused_until": until, "pause_reason": reason},
        )
    )
    row = await session.get(AgentRouting, account_id, populate_existing=True)
    assert row is not None  # upserted just above, in this transaction
    return row


async def availability(session: AsyncSession, account_id: uuid.UUID) -> AgentRouting:
    row = await session.get(AgentRouting, account_id)
    return row or AgentRouting(account_id=account_id, paused=False, pause_reason="")


async def _touch(session: AsyncSession, account_id: uuid.UUID) -> None:
    # The database clock when the team lock is held (not the request's start): of two leads
    # routed at once, the one that got the lock later is the later assignment.
    at = func.clock_timestamp()
    await session.execute(
        insert(AgentRouting)
        .values(account_id=account_id, paused=False, pause_reason="", last_assigned_at=at)
        .on_conflict_do_update(
            index_elements=[AgentRouting.account_id], set_={"last_assigned_at": at}
        )
    )


# ---------------------------------------------------------------- routing


@dataclass
class Routed:
    """What routing did: the agent who got the lead, or the team it is offered to, or neither
    (the pool); ``notify`` lists who to tell what (account ids per template)."""

    agent_id: uuid.UUID | None = None
    offered_to: uuid.UUID | None = None
    notify: dict[str, list[uuid.UUID]] | None = None


async def _team_names(
    session: AsyncSession, ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    known = [i for i in ids if i is not None]
    if not known:
        return {}
    stmt = select(Team.id, Team.name).where(Team.id.in_(known))
    return {i: name for i, name in (await session.execute(stmt)).all()}


def _groups(rule: LeadRoute) -> list[tuple[str, uuid.UUID]]:
    if rule.agent_id is not None:
        head = ("agent", rule.agent_id)
    else:
        assert rule.team_id is not None  # a rule has an agent or a team (CHECK "target")
        head = ("team", rule.team_id)
    return [head] + [("team", t) for t in rule.fallback_team_ids or ()]


async def route(
    session: AsyncSession,
    client: Client,
    *,
    by: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Routed:
    """Route a lead (locked by the caller) by the first rule that matches; without one it
    stays in (or goes to) the pool, and the reason says so."""
    now = now or utcnow()
    for rule in await routes(session):
        if not rule.active:
            continue
        why = matches(rule, client)
        if why is not None:
            matched = f"rule “{rule.name}” ({', '.join(why) or 'every lead'})"
            return await _walk(session, client, rule, 0, matched, [], by=by, now=now)
    return await _to_pool(session, client, "unrouted", "no routing rule matched", by=by, now=now)


async def _walk(
    session: AsyncSession,
    client: Client,
    rule: LeadRoute,
    step: int,
    matched: str,
    skipped: list[str],
    *,
    by: uuid.UUID | None,
    now: datetime,
) -> Routed:
    groups = _groups(rule)
    names = await _team_names(session, [g for kind, g in groups if kind == "team"])
    for index in range(step, len(groups)):
        kind, target = groups[index]
        if kind == "agent":
            if await is_available(session, target, now):
                return await _assign(
                    session,
                    client,
                    target,
                    "routed",
                    f"{matched}: to its agent",
                    skipped,
                    by=by,
                    now=now,
                )
            skipped.append("its agent is paused or inactive")
            continue
        team = names.get(target, str(target))
        label = "team" if index == 0 else "fallback team"
        # One lead at a time per team: the next one sees who got this one.
        await lock_for_transaction(session, b"route:" + target.bytes)
        members = await available_members(session, target, now)
        if not members:
            skipped.append(f"{label} {team}: nobody available")
            continue
        if rule.mode == "round_robin":
            return await _assign(
                session,
                client,
                members[0],
                "routed",
                f"{matched}: round-robin in {label} {team}",
                skipped,
                by=by,
                now=now,
            )
        client.owner_id = None
        client.offer_team_id, client.offer_route_id, client.offer_step = target, rule.id, index
        client.offer_expires_at = now + timedelta(minutes=rule.claim_minutes)
        client.version += 1
        detail = _detail(
            f"{matched}: offered to {label} {team} for {rule.claim_minutes} min", skipped
        )
        session.add(
            Assignment(
                client_id=client.id,
                from_owner=None,
                to_owner=None,
                reason="offered",
                detail=detail,
                by_id=by,
                at=now,
            )
        )
        await session.flush()
        return Routed(offered_to=target, notify={"lead.offered": members})
    return await _to_pool(
        session,
        client,
        "unclaimed" if rule.mode == "claim" else "unrouted",
        _detail(f"{matched}: nobody to give it to", skipped),
        by=by,
        now=now,
    )


def _detail(text_: str, skipped: list[str]) -> str:
    if skipped:
        text_ += " (skipped: " + "; ".join(skipped) + ")"
    return text_[:300]


def _clear_offer(client: Client) -> None:
    client.offer_team_id = client.offer_route_id = None
    client.offer_step = client.offer_expires_at = None


async def _assign(
    session: AsyncSession,
    client: Client,
    agent: uuid.UUID,
    reason: str,
    detail: str,
    skipped: list[str],
    *,
    by: uuid.UUID | None,
    now: datetime,
) -> Routed:
    session.add(
        Assignment(
            client_id=client.id,
            from_owner=client.owner_id,
            to_owner=agent,
            reason=reason,
            detail=_detail(detail, skipped),
            by_id=by,
            at=now,
        )
    )
    client.owner_id, client.version = agent, client.version + 1
    _clear_offer(client)
    await _touch(session, agent)
    await session.flush()
    return Routed(agent_id=agent, notify={"lead.assigned": [agent]})


async def _to_pool(
    session: AsyncSession,
    client: Client,
    reason: str,
    detail: str,
    *,
    by: uuid.UUID | None,
    now: datetime,
) -> Routed:
    session.add(
        Assignment(
            client_id=client.id,
            from_owner=client.owner_id,
            to_owner=None,
            reason=reason,
            detail=detail[:300],
            by_id=by,
            at=now,
        )
    )
    client.owner_id, client.version = None, client.version + 1
    _clear_offer(client)
    await session.flush()
    return Routed()


OFFER_BATCH = 500  # expired lead offers moved on a job


async def expire_offers(
    session: AsyncSession, now: datetime | None = None
) -> list[tuple[Client, Routed]]:
    """Offers nobody claimed in time move on to the rule's next group (or the pool)."""
    now = now or utcnow()
    rows = (
        await session.scalars(
            select(Client)
            .where(Client.offer_team_id.is_not(None), Client.offer_expires_at <= now)
            .order_by(Client.offer_expires_at)
            .with_for_update(skip_locked=True)
            .limit(OFFER_BATCH)
        )
    ).all()
    done: list[tuple[Client, Routed]] = []
    for client in rows:
        # selected with an offer, which sets its team and its step together (_walk)
        assert client.offer_team_id is not None and client.offer_step is not None
        rule = (
            await session.get(LeadRoute, client.offer_route_id) if client.offer_route_id else None
        )
        team = (await _team_names(session, [client.offer_team_id])).get(client.offer_team_id, "")
        minutes = rule.claim_minutes if rule is not None else 0
        gone = f"nobody in {team} claimed it within {minutes} min"
        if rule is None or client.stage not in OPEN:
            done.append(
                (client, await _to_pool(session, client, "unclaimed", gone, by=None, now=now))
            )
            continue
        done.append(
            (
                client,
                await _walk(
                    session,
                    client,
                    rule,
                    client.offer_step + 1,
                    f"rule “{rule.name}”",
                    [gone],
                    by=None,
                    now=now,
                ),
            )
        )
    return done


async def claim_offer(session: AsyncSession, p: Principal, client: Client, now: datetime) -> None:
    """The caller claims a lead offered to one of their teams (the client row is locked)."""
    team_id = client.offer_team_id
    assert team_id is not None  # service.claim calls this for an offered client only
    member = await session.get(TeamMember, (team_id, p.account_id))
    if member is None:
        raise Conflict("this lead is offered to another team", "clientId")
    team = (await _team_names(session, [team_id])).get(team_id, "")
    session.add(
        Assignment(
            client_id=client.id,
            to_owner=p.account_id,
            reason="claimed",
            detail=f"claimed from the offer to {team}",
            by_id=p.account_id,
            at=now,
        )
    )
    client.owner_id, client.version = p.account_id, client.version + 1
    _clear_offer(client)
    await _touch(session, p.account_id)
    await session.flush()


async def check_agent(session: AsyncSession, p: Principal, agent: uuid.UUID) -> None:
    """``agent`` is an active member within the caller's data scope (else NOT_FOUND)."""
    owners = await visible_owners(session, p)
    if (owners is not None and agent not in owners) or not await active_members(session, [agent]):
        raise NotFound("no active member with this id", "agentId")


async def assign(
    session: AsyncSession, p: Principal, client: Client, agent: uuid.UUID, note: str
) -> Routed:
    """A manager gives a client to an agent (an active member within the manager's scope)."""
    await check_agent(session, p, agent)
    if client.owner_id == agent:
        raise Conflict("the client is this agent's already", "agentId")
    detail = text(note, "note", required=False, max_len=250)
    return await _assign(
        session,
        client,
        agent,
        "assigned",
        detail or "assigned by a manager",
        [],
        by=p.account_id,
        now=utcnow(),
    )


async def offers(session: AsyncSession, p: Principal, *, first: int = 50) -> list[Client]:
    """Leads offered now to the caller's teams (the agent app's claim list)."""
    teams = select(TeamMember.team_id).where(TeamMember.account_id == p.account_id)
    stmt = (
        select(Client)
        .where(Client.offer_team_id.in_(teams), Client.merged_into.is_(None))
        .order_by(Client.offer_expires_at)
        .limit(first)
    )
    return list((await session.scalars(stmt)).all())


async def announce(session: AsyncSession, client: Client, routed: Routed) -> None:
    """Tell the agent who got a lead, or the team members it is offered to (category leads;
    the notification opens the client)."""
    from api.notify import service as notify

    slug = session.info.get("tenant_slug")
    if not routed.notify or slug is None:
        return
    budget = "-".join(str(v // 100) for v in _budget(client) if v is not None)
    params = {
        "client": client.name,
        "source": client.source,
        "budget": budget,
        "minutes": int((client.offer_expires_at - utcnow()).total_seconds() // 60)
        if client.offer_expires_at
        else 0,
    }
    for template, accounts in routed.notify.items():
        await notify.notify(
            session,
            slug,
            accounts,
            "leads",
            template,
            params,
            data={"kind": "client", "id": str(client.id)},
        )
