"""Showings (带看) and the agent's private calendar feed.

A showing belongs to a client in the caller's scope and to an agent (the client's owner). An
agent's active showings (scheduled, confirmed) never overlap: scheduling takes a transaction
lock on the agent, so of two overlapping requests one wins and the other is a CONFLICT. After
the visit, feedback and a rating per unit or listing. The calendar feed is an ICS document at a
private URL (``/calendar/<tenant>/<token>.ics``) holding the agent's showings and scheduled
follow-ups; a new URL or a revocation ends the old one."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.client import profile
from api.client.models import CalendarFeed, Client, FollowUp, Showing
from api.client.profile import JsonObject
from api.client.service import get_visible
from api.db import lock_for_transaction, utcnow
from api.errors import Conflict, NotFound, ValidationFailed
from api.identity.auth import Principal
from api.ids import uuid7
from api.listing.models import Listing
from api.unit.models import Unit
from api.validate import existing, text

ACTIVE = ("scheduled", "confirmed")
MAX_LENGTH = timedelta(hours=8)


async def schedule(
    session: AsyncSession,
    p: Principal,
    client_id: uuid.UUID,
    *,
    starts_at: datetime,
    ends_at: datetime,
    unit_ids: list[uuid.UUID],
    listing_ids: list[uuid.UUID],
    place: str = "",
) -> Showing:
    if not ends_at > starts_at or ends_at - starts_at > MAX_LENGTH:
        raise ValidationFailed("a showing ends after it starts, within 8 hours", "endsAt")
    if starts_at < utcnow() - timedelta(minutes=5):
        raise ValidationFailed("a showing is scheduled in the future", "startsAt")
    if (not unit_ids and not listing_ids) or len(unit_ids) + len(listing_ids) > 20:
        raise ValidationFailed("show 1 to 20 units or listings", "unitIds")
    client = await get_visible(session, p, client_id)
    await existing(session, Unit.id, unit_ids, "unit", "unitIds")
    await existing(session, Listing.id, listing_ids, "listing", "listingIds")
    agent = client.owner_id or p.account_id
    # One agent's schedule at a time (the lock ends with the transaction).
    await lock_for_transaction(session, b"showing:" + agent.bytes)
    clash = await session.scalar(
        select(Showing.id)
        .where(
            Showing.agent_id == agent,
            Showing.status.in_(ACTIVE),
            Showing.starts_at < ends_at,
            Showing.ends_at > starts_at,
        )
        .limit(1)
    )
    if clash is not None:
        raise Conflict("the agent has another showing then", "startsAt")
    row = Showing(
        id=uuid7(),
        client_id=client.id,
        agent_id=agent,
        starts_at=starts_at,
        ends_at=ends_at,
        unit_ids=list(dict.fromkeys(unit_ids)),
        listing_ids=list(dict.fromkeys(listing_ids)),
        place=text(place, "place", required=False, max_len=300),
    )
    session.add(row)
    if client.stage in ("new", "contacted", "qualified"):
        client.stage, client.stage_changed_at = "showing", utcnow()
        client.version += 1
    await session.flush()
    await profile.refresh_later(session, [row.client_id])
    return row


async def _visible_showing(session: AsyncSession, p: Principal, showing_id: uuid.UUID) -> Showing:
    row = await session.get(Showing, showing_id, with_for_update=True)
    missing = NotFound("showing not found", "showingId")
    if row is None:
        raise missing
    try:
        await get_visible(session, p, row.client_id)
    except NotFound:
        raise missing from None
    return row


async def set_status(
    session: AsyncSession, p: Principal, showing_id: uuid.UUID, status: str, *, reason: str = ""
) -> Showing:
    row = await _visible_showing(session, p, showing_id)
    allowed = {
        "scheduled": {"confirmed", "cancelled", "done"},
        "confirmed": {"cancelled", "done"},
    }.get(row.status, set())
    if status not in allowed:
        raise Conflict(f"a showing that is {row.status} cannot become {status}", "status")
    if status == "cancelled":
        row.cancel_reason = text(reason, "reason", required=True, max_len=300)
    row.status, row.version = status, row.version + 1
    await session.flush()
    await profile.refresh_later(session, [row.client_id])
    return row


@dataclass(frozen=True, slots=True)
class Feedback:
    """The rating (1-5) and comment on one unit or listing shown."""

    kind: str  # unit | listing
    id: str
    rating: int
    comment: str = ""


async def give_feedback(
    session: AsyncSession, p: Principal, showing_id: uuid.UUID, items: Sequence[Feedback]
) -> Showing:
    """Feedback on what was shown: a rating (1-5) and a comment per unit or listing; the
    showing is done (and the client's profile rebuilt)."""
    row = await _visible_showing(session, p, showing_id)
    if row.status == "cancelled":
        raise Conflict("a cancelled showing has no feedback", "showingId")
    shown = {("unit", str(u)) for u in row.unit_ids} | {
        ("listing", str(x)) for x in row.listing_ids
    }
    clean: list[JsonObject] = []
    for item in items:
        key = (item.kind, str(item.id))
        if key not in shown:
            raise ValidationFailed("feedback is on what the showing showed", "items")
        if not 1 <= int(item.rating) <= 5:
            raise ValidationFailed("a rating is 1 to 5", "items.rating")
        clean.append(
            {
                "kind": key[0],
                "id": key[1],
                "rating": int(item.rating),
                "comment": text(item.comment, "items.comment", required=False, max_len=1000),
            }
        )
    row.feedback = clean
    row.status, row.version = "done", row.version + 1
    client = await session.get(Client, row.client_id)
    assert client is not None  # a showing's client row is kept (deleted: its showings too)
    client.last_contact_at = max(client.last_contact_at or row.ends_at, row.ends_at)
    await session.flush()
    await profile.refresh_later(session, [row.client_id])
    return row


async def showings(
    session: AsyncSession,
    p: Principal,
    *,
    client_id: uuid.UUID | None = None,
    since: datetime | None = None,
) -> list[Showing]:
    stmt = select(Showing)
    if client_id is not None:
        await get_visible(session, p, client_id)
        stmt = stmt.where(Showing.client_id == client_id)
    else:
        stmt = stmt.where(Showing.agent_id == p.account_id)
    if since is not None:
        stmt = stmt.where(Showing.ends_at >= since)
    return list((await session.scalars(stmt.order_by(Showing.starts_at))).all())


# ---------------------------------------------------------------- calendar feed


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def new_feed(session: AsyncSession, account_id: uuid.UUID) -> str:
    """A new private token for the account's calendar (the old one stops working)."""
    token = secrets.token_urlsafe(24)
    await session.execute(
        insert(CalendarFeed)
        .values(account_id=account_id, token_hash=_hash(token), created_at=utcnow())
        .on_conflict_do_update(
            index_elements=[CalendarFeed.account_id],
            set_={"token_hash": _hash(token), "created_at": utcnow()},
        )
    )
    return token


async def revoke_feed(session: AsyncSession, account_id: uuid.UUID) -> bool:
    done = await session.execute(delete(CalendarFeed).where(CalendarFeed.account_id == account_id))
    # AsyncSession.execute's stubs type a DELETE's result as Result; it is a CursorResult
    return bool(cast("CursorResult[Any]", done).rowcount)


async def feed_owner(session: AsyncSession, token: str) -> uuid.UUID | None:
    return await session.scalar(
        select(CalendarFeed.account_id).where(CalendarFeed.token_hash == _hash(token))
    )


async def ics(session: AsyncSession, account_id: uuid.UUID, *, tenant_name: str) -> bytes:
    """The agent's calendar: active showings and open follow-ups from 30 days back."""
    from icalendar import Calendar, Event

    since = utcnow() - timedelta(days=30)
    cal = Calendar()
    cal.add("prodid", "-//Anju//Agent calendar//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{tenant_name} · Anju")
    rows = (
        await session.execute(
            select(Showing, Client.name)
            .join(Client, Client.id == Showing.client_id)
            .where(
                Showing.agent_id == account_id, Showing.status.in_(ACTIVE), Showing.ends_at >= since
            )
            .order_by(Showing.starts_at)
        )
    ).all()
    for s, name in rows:
        ev = Event()
        ev.add("uid", f"showing-{s.id}@anju")
        ev.add("dtstamp", s.created_at)
        ev.add("dtstart", s.starts_at)
        ev.add("dtend", s.ends_at)
        ev.add("summary", f"带看 / Showing: {name}")
        ev.add("location", s.place)
        ev.add("status", "CONFIRMED" if s.status == "confirmed" else "TENTATIVE")
        cal.add_component(ev)
    follow_ups = (
        await session.execute(
            select(FollowUp, Client.name)
            .join(Client, Client.id == FollowUp.client_id)
            .where(
                FollowUp.assignee_id == account_id,
                FollowUp.done_at.is_(None),
                FollowUp.due_at.is_not(None),
                FollowUp.due_at >= since,
            )
            .order_by(FollowUp.due_at)
        )
    ).all()
    for f, name in follow_ups:
        assert f.due_at is not None  # selected with a due time
        ev = Event()
        ev.add("uid", f"follow-up-{f.id}@anju")
        ev.add("dtstamp", f.created_at)
        ev.add("dtstart", f.due_at)
        ev.add("dtend", f.due_at + timedelta(minutes=15))
        ev.add("summary", f"跟进 / Follow up: {name}")
        ev.add("description", f.next_step)
        cal.add_component(ev)
    return cal.to_ical()
