"""Follows of units, listings and saved searches. Never commits.

Live updates and push (later issues) ask ``followers`` who to tell about a change."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import NotFound, ValidationFailed
from api.follow.models import Follow, follow_payload, live_payload
from api.ids import uuid7
from api.listing import repository as listing_repo
from api.listing.repository import ListingSearch
from api.live import outbox
from api.unit import repository as unit_repo
from api.unit.repository import UnitSearch
from api.validate import text

MAX_FOLLOWS = 500

# A saved search's filter as stored (``Follow.search["filter"]``): the search's fields as JSON.
SearchFilter = dict[str, Any]


async def follow(
    session: AsyncSession, account_id: uuid.UUID, kind: str, target_id: uuid.UUID
) -> Follow:
    """Follow a unit or a listing; following twice is the same follow."""
    fetch = unit_repo.units_by_ids if kind == "unit" else listing_repo.listings_by_ids
    if not await fetch(session, [target_id]):
        raise NotFound(f"{kind} not found", "targetId")
    existing = await _existing(session, account_id, kind, target_id)
    if existing is not None:
        return existing
    await _check_room(session, account_id)
    stmt = (
        insert(Follow)
        .values(id=uuid7(), account_id=account_id, target_kind=kind, target_id=target_id, name="")
        .on_conflict_do_nothing(
            index_elements=[Follow.account_id, Follow.target_kind, Follow.target_id],
            index_where=Follow.target_id.is_not(None),
        )
        .returning(Follow.id)
    )
    created = (await session.execute(stmt)).scalar_one_or_none()
    row = await _existing(session, account_id, kind, target_id)
    if row is None:  # inserted or there already, unless unfollowed meanwhile (a race)
        raise NotFound("follow not found", "targetId")
    if created is not None:  # a bulk insert: the flush hook does not see it
        outbox.emit(session, "follow.created", row.id, live_payload(row))
    return row


async def _existing(
    session: AsyncSession, account_id: uuid.UUID, kind: str, target_id: uuid.UUID
) -> Follow | None:
    stmt = select(Follow).where(
        Follow.account_id == account_id, Follow.target_kind == kind, Follow.target_id == target_id
    )
    return (await session.scalars(stmt)).first()


def _jsonable(search: UnitSearch | ListingSearch) -> SearchFilter:
    filter_: SearchFilter = json.loads(json.dumps(dataclasses.asdict(search), default=str))
    return filter_


async def save_search(
    session: AsyncSession,
    account_id: uuid.UUID,
    name: str,
    on: Literal["units", "listings"],
    search: UnitSearch | ListingSearch,
) -> Follow:
    """Follow a saved search (``on``: units or listings) with the filter as the caller gave it."""
    name = text(name, "name", required=True, max_len=100)
    await _check_room(session, account_id)
    row = Follow(
        account_id=account_id,
        target_kind="search",
        name=name,
        search={"on": on, "filter": _jsonable(search)},
    )
    session.add(row)
    await session.flush()
    return row


async def _check_room(session: AsyncSession, account_id: uuid.UUID) -> None:
    n = await session.scalar(select(func.count()).where(Follow.account_id == account_id))
    if (n or 0) >= MAX_FOLLOWS:
        raise ValidationFailed(f"at most {MAX_FOLLOWS} follows; remove some first", "targetId")


async def unfollow(session: AsyncSession, account_id: uuid.UUID, follow_id: uuid.UUID) -> None:
    stmt = (
        delete(Follow)
        .where(Follow.id == follow_id, Follow.account_id == account_id)
        .returning(Follow.account_id, Follow.target_kind, Follow.target_id)
    )
    gone = (await session.execute(stmt)).first()
    if gone is None:
        raise NotFound("follow not found", "id")
    outbox.emit(session, "follow.deleted", follow_id, follow_payload(*gone))


async def follows_of(
    session: AsyncSession, account_id: uuid.UUID, kind: str | None
) -> Sequence[Follow]:
    stmt = select(Follow).where(Follow.account_id == account_id).order_by(Follow.id.desc())
    if kind is not None:
        stmt = stmt.where(Follow.target_kind == kind)
    return (await session.scalars(stmt)).all()


async def followers(session: AsyncSession, kind: str, target_id: uuid.UUID) -> list[uuid.UUID]:
    """Accounts following this unit or listing."""
    stmt = select(Follow.account_id).where(
        Follow.target_kind == kind, Follow.target_id == target_id
    )
    return list(await session.scalars(stmt))


async def followed_entity_ids(session: AsyncSession, account_id: uuid.UUID) -> list[uuid.UUID]:
    """The units and listings this account follows (live ``followedChanges`` listens to them)."""
    stmt = select(Follow.target_id).where(
        Follow.account_id == account_id, Follow.target_kind.in_(("unit", "listing"))
    )
    return list(await session.scalars(stmt))


async def saved_listing_search(
    session: AsyncSession, account_id: uuid.UUID, follow_id: uuid.UUID | None
) -> SearchFilter:
    """The filter of this account's saved listing search; anything else (someone else's, a
    unit search, a follow of an item, an unknown id) is NOT_FOUND."""
    row = None if follow_id is None else await session.get(Follow, follow_id)
    if (
        row is None
        or row.account_id != account_id
        or row.target_kind != "search"
        or row.search is None
        or row.search.get("on") != "listings"
    ):
        raise NotFound("saved listing search not found", "savedSearchId")
    filter_: SearchFilter = row.search["filter"]
    return filter_
