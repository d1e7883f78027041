"""Client profiles built from behaviour.

What a client does in the owner/client app (units and listings viewed, searches) is recorded
under the app account that did it (``trackActivity``). A client record is linked to that
account by phone: when the record is created (the account's blind index in the shared scope)
or when the account first sends activity (its phone, decrypted, against the tenant's client
blind index). Activity recorded before a record existed is attached when it is linked.

The profile sums that activity with what the agent's side knows (showings and their ratings,
followed units and listings) into preferred districts, price, area and rooms, counts, tags and
a suggested grade (A/B/C) with the tags that decided it. It is stored on the client (read by
lists without work) and refreshed by a job after each change (one waiting job per client) and
daily, so a grade fades when the client goes quiet. Never commits."""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.client.models import Client, ClientActivity, Showing
from api.db import JsonObject, utcnow
from api.errors import ValidationFailed
from api.follow.models import Follow
from api.identity.models import Account
from api.identity.service import SHARED_SCOPE, account_phone
from api.ids import uuid7
from api.listing.models import Listing
from api.project.models import Project
from api.security.kit import SecurityKit
from api.unit.models import Unit
from tenants.registry import DEFAULT_TIME_ZONE
from tenants.sessions import tenant_of

MAX_EVENTS = 50  # one trackActivity call
BACKDATE = timedelta(days=7)  # an app sends what it kept offline, up to a week old
WINDOW = timedelta(days=90)  # what a profile is built from
RETENTION = timedelta(days=180)  # activity older than this is deleted
MAX_LINKED = 3  # client records one account's activity goes to (duplicates across owners)
DEFAULT_ZONE = ZoneInfo(DEFAULT_TIME_ZONE)

# Weights of each signal in the preferences (a rating adds (rating - 3) * 2 to "shown").
W_VIEW, W_LONG_VIEW, W_SEARCH, W_FOLLOW, W_SHOWN = 1.0, 2.0, 0.5, 3.0, 3.0
LONG_VIEW_SECONDS = 60


class ProfileTag(enum.StrEnum):
    VERY_ACTIVE = "very_active"  # 10 or more views and searches in 7 days
    RETURNING = "returning"  # active on 3 or more days of the last 14
    FOLLOWS_ITEMS = "follows_items"  # follows units or listings
    COMPARING_PROJECTS = "comparing_projects"  # viewed units of 3 or more projects in 30 days
    NEW_AND_RESALE = "new_and_resale"  # viewed both new units and resale listings in 30 days
    UPCOMING_SHOWING = "upcoming_showing"  # a scheduled or confirmed showing ahead
    LIKED_A_SHOWING = "liked_a_showing"  # rated something shown 4 or 5 in the last 30 days
    DISLIKED_SHOWINGS = "disliked_showings"  # rated two or more shown things 1 or 2
    GONE_QUIET = "gone_quiet"  # was active, nothing in the last 14 days


TAGS = tuple(t.value for t in ProfileTag)
GRADE_A = {"very_active", "upcoming_showing", "liked_a_showing"}


@dataclass
class Event:
    kind: str  # view_unit, view_listing, search
    subject_id: uuid.UUID | None = None
    seconds: int | None = None
    at: datetime | None = None
    search: JsonObject | None = None


class ActivityRow(NamedTuple):
    """One recorded activity, as ``build`` reads it."""

    kind: str
    subject_id: uuid.UUID | None
    data: JsonObject
    seconds: int | None
    at: datetime


class ShowingRow(NamedTuple):
    """One showing, as ``build`` reads it."""

    status: str
    starts_at: datetime
    unit_ids: list[uuid.UUID]
    listing_ids: list[uuid.UUID]
    feedback: list[JsonObject]


def _scope(tenant_id: str) -> str:
    return str(uuid.UUID(str(tenant_id)))


# ---------------------------------------------------------------- linking


async def account_for_phones(
    session: AsyncSession, kit: SecurityKit, phones: Iterable[str | None]
) -> uuid.UUID | None:
    """The app account with one of these (normalised) phones, the first given first."""
    given = [p for p in dict.fromkeys(phones) if p]
    if not given:
        return None
    digests = [kit.blind_index.digest(p, scope=SHARED_SCOPE, column="phone") for p in given]
    found = dict(
        (
            await session.execute(
                select(Account.phone_bidx, Account.id).where(Account.phone_bidx.in_(digests))
            )
        ).all()
    )
    return next((found[d] for d in digests if d in found), None)


async def attach_orphans(session: AsyncSession, client: Client) -> None:
    """Activity the client's account sent before this record existed becomes the client's."""
    if client.account_id is None:
        return
    await session.execute(
        update(ClientActivity)
        .where(ClientActivity.account_id == client.account_id, ClientActivity.client_id.is_(None))
        .values(client_id=client.id)
    )
    client.last_active_at = await session.scalar(
        select(func.max(ClientActivity.at)).where(ClientActivity.client_id == client.id)
    )


async def linked_clients(
    session: AsyncSession, kit: SecurityKit, tenant_id: str, account_id: uuid.UUID
) -> list[Client]:
    """The client records of this account; when none is linked yet, those with the account's
    phone are linked now (and get the activity sent before)."""
    live = (Client.merged_into.is_(None),)
    rows = list(
        (
            await session.scalars(
                select(Client)
                .where(Client.account_id == account_id, *live)
                .order_by(Client.created_at)
                .limit(MAX_LINKED)
            )
        ).all()
    )
    if rows:
        return rows
    account = await session.get(Account, account_id)
    phone = account_phone(kit, account) if account is not None else None
    if not phone:
        return []
    digest = kit.blind_index.digest(phone, scope=_scope(tenant_id), column="phone")
    rows = list(
        (
            await session.scalars(
                select(Client)
                .where(Client.phone_bidx == digest, Client.account_id.is_(None), *live)
                .order_by(Client.created_at)
                .limit(MAX_LINKED)
                .with_for_update()
            )
        ).all()
    )
    for row in rows:
        row.account_id = account_id
    await session.flush()
    if rows:
        await attach_orphans(session, rows[0])
    return rows


async def queue_refresh(
    session: AsyncSession, tenant_slug: str, client_ids: Iterable[uuid.UUID]
) -> None:
    """Rebuild these profiles after the transaction commits: one waiting job per client
    however many changes queue it."""
    from api.client import tasks
    from api.jobs import enqueue

    for cid in dict.fromkeys(client_ids):
        await session.execute(
            enqueue(
                tasks.refresh_profile,
                tenant=tenant_slug,
                client_id=str(cid),
                queueing_lock=f"profile:{tenant_slug}:{cid}",
            )
        )


async def refresh_later(session: AsyncSession, client_ids: Iterable[uuid.UUID]) -> None:
    """``queue_refresh`` for the tenant this session serves (what a change of a client's
    activity, showings or links does within a request)."""
    await queue_refresh(session, tenant_of(session).slug, client_ids)


# ---------------------------------------------------------------- recording


def _decimal(value: object, field: str) -> str | None:
    if value is None:
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValidationFailed("not a number", field) from None
    if not d.is_finite() or d < 0 or d > 100_000:
        raise ValidationFailed("an area between 0 and 100,000 m²", field)
    return str(d.quantize(Decimal("0.01")))


def _clean_search(raw: JsonObject | None, field: str) -> JsonObject:
    raw = raw or {}
    districts = [str(d).strip()[:100] for d in (raw.get("districts") or ()) if str(d).strip()]
    rooms = [int(r) for r in (raw.get("rooms") or ())]
    if len(districts) > 20 or len(rooms) > 10 or any(not 0 <= r <= 20 for r in rooms):
        raise ValidationFailed("at most 20 districts and 10 room counts (0 to 20)", field)
    out: JsonObject = {
        "districts": list(dict.fromkeys(districts)),
        "rooms": sorted(set(rooms)),
        "keyword": str(raw.get("keyword") or "").strip()[:100],
        "area_min": _decimal(raw.get("area_min"), field),
        "area_max": _decimal(raw.get("area_max"), field),
    }
    for key in ("price_min", "price_max"):
        value = raw.get(key)
        if value is not None and not 0 < int(value) < 10**14:
            raise ValidationFailed("a price is positive (minor units)", field)
        out[key] = int(value) if value is not None else None
    if not any(v for v in out.values()):
        raise ValidationFailed("a search names at least one criterion", field)
    return out


async def _subjects(
    session: AsyncSession, events: list[Event]
) -> dict[tuple[str, uuid.UUID | None], JsonObject]:
    """What each viewed unit or listing was then: price, area, rooms, district (and project)."""

    def viewed(kind: str) -> set[uuid.UUID]:
        return {e.subject_id for e in events if e.kind == kind and e.subject_id is not None}

    units = await _facts(session, "unit", viewed("view_unit"))
    listings = await _facts(session, "listing", viewed("view_listing"))
    return {
        **{("view_unit", k): v for k, v in units.items()},
        **{("view_listing", k): v for k, v in listings.items()},
    }


async def track(
    session: AsyncSession,
    kit: SecurityKit,
    tenant_id: str,
    account_id: uuid.UUID,
    events: list[Event],
) -> tuple[int, list[uuid.UUID]]:
    """Record what the account did; returns how many events were kept and the linked clients
    (whose profiles are queued for a rebuild). All or nothing: one bad event refuses the call."""
    if not events:
        return 0, []
    if len(events) > MAX_EVENTS:
        raise ValidationFailed(f"at most {MAX_EVENTS} events a call", "events")
    now = utcnow()
    for i, e in enumerate(events):
        where = f"events.{i}"
        if e.kind not in ("view_unit", "view_listing", "search"):
            raise ValidationFailed("an event is a unit or listing view, or a search", where)
        if e.at is not None and (e.at > now + timedelta(minutes=5) or e.at < now - BACKDATE):
            raise ValidationFailed("an event is from the last 7 days", f"{where}.at")
        if e.seconds is not None and not 0 <= e.seconds <= 86_400:
            raise ValidationFailed("seconds between 0 and 86,400", f"{where}.seconds")
        if e.kind == "search":
            e.search = _clean_search(e.search, f"{where}.search")
        elif e.subject_id is None:
            raise ValidationFailed("a view names the unit or listing", f"{where}.id")
    subjects = await _subjects(session, events)
    for i, e in enumerate(events):
        if e.kind != "search" and (e.kind, e.subject_id) not in subjects:
            raise ValidationFailed("no such unit or listing", f"events.{i}.id")
    clients = await linked_clients(session, kit, tenant_id, account_id)
    targets: list[uuid.UUID | None] = [c.id for c in clients] or [None]
    for e in events:
        data = e.search if e.kind == "search" else subjects[(e.kind, e.subject_id)]
        for client_id in targets:
            session.add(
                ClientActivity(
                    id=uuid7(),
                    account_id=account_id,
                    client_id=client_id,
                    kind=e.kind,
                    subject_id=e.subject_id if e.kind != "search" else None,
                    data=data,
                    seconds=e.seconds,
                    at=e.at or now,
                )
            )
    latest = max(e.at or now for e in events)
    for c in clients:
        c.last_active_at = max(c.last_active_at or latest, latest)
    await session.flush()
    await refresh_later(session, [c.id for c in clients])
    return len(events), [c.id for c in clients]


# ---------------------------------------------------------------- building


def _weighted_range(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """The 25th to 75th weighted percentile of (value, weight) points of positive weight."""
    points = sorted((v, w) for v, w in points if w > 0)
    total = sum(w for _, w in points)
    if not points or total <= 0:
        return None

    def at(q: float) -> float:
        run = 0.0
        for v, w in points:
            run += w
            if run >= q * total:
                return v
        return points[-1][0]

    return at(0.25), at(0.75)


def build(
    *,
    now: datetime,
    activity: list[ActivityRow],
    followed: list[JsonObject],
    showings: list[ShowingRow],
    shown: dict[tuple[str, str], JsonObject],
    zone: ZoneInfo = DEFAULT_ZONE,
) -> JsonObject:
    """The profile from gathered rows (pure, so it is tested directly as well):
    ``activity``: (kind, subject_id, data, seconds, at); ``followed``: subject facts of
    followed units and listings; ``showings``: (status, starts_at, unit_ids, listing_ids,
    feedback); ``shown``: facts of what was shown by (kind, id); active days are counted in
    ``zone`` (the tenant's)."""
    weights: list[tuple[JsonObject, float]] = []  # (facts, weight)
    searches: list[tuple[JsonObject, float]] = []
    days14: set[date] = set()
    views7 = searches7 = 0
    projects30: set[str] = set()
    kinds30: set[str] = set()
    counts = {"views30d": 0, "searches30d": 0}
    for kind, _subject, data, seconds, at in activity:
        recent7, recent30 = at >= now - timedelta(days=7), at >= now - timedelta(days=30)
        if at >= now - timedelta(days=14):
            days14.add(at.astimezone(zone).date())
        if kind == "search":
            searches.append((data, W_SEARCH))
            searches7 += recent7
            counts["searches30d"] += recent30
            continue
        long = seconds is not None and seconds >= LONG_VIEW_SECONDS
        weights.append((data, W_LONG_VIEW if long else W_VIEW))
        views7 += recent7
        if recent30:
            counts["views30d"] += 1
            kinds30.add(kind)
            if data.get("project_id"):
                projects30.add(data["project_id"])
    for facts in followed:
        weights.append((facts, W_FOLLOW))
    ratings: list[tuple[int, datetime]] = []
    upcoming = False
    for status, starts_at, unit_ids, listing_ids, feedback in showings:
        if status in ("scheduled", "confirmed") and starts_at >= now:
            upcoming = True
        if status == "cancelled":
            continue
        rated = {
            (f["kind"], f["id"]): int(f["rating"])
            for f in feedback or ()
            if f.get("rating") is not None
        }
        for kind, ids in (("unit", unit_ids), ("listing", listing_ids)):
            for sid in ids:
                seen = shown.get((kind, str(sid)))
                rating = rated.get((kind, str(sid)))
                if rating is not None:
                    ratings.append((rating, starts_at))
                if seen is not None:
                    bonus = (rating - 3) * 2 if rating is not None else 0
                    weights.append((seen, W_SHOWN + bonus))

    by_district: dict[str, float] = defaultdict(float)
    for facts, w in weights:
        if facts.get("district"):
            by_district[facts["district"]] += w
    for data, w in searches:
        for d in data.get("districts") or ():
            by_district[d] += w
    positive = {d: w for d, w in by_district.items() if w > 0}
    total = sum(positive.values())
    districts = [
        {"district": d, "share": round(w / total, 2)}
        for d, w in sorted(positive.items(), key=lambda x: (-x[1], x[0]))[:3]
    ]

    price_points = [(float(f["price"]), w) for f, w in weights if f.get("price")]
    area_points = [(float(f["area"]), w) for f, w in weights if f.get("area")]
    for data, w in searches:
        for key in ("price_min", "price_max"):
            if data.get(key):
                price_points.append((float(data[key]), w))
        for key in ("area_min", "area_max"):
            if data.get(key):
                area_points.append((float(data[key]), w))
    price, area = _weighted_range(price_points), _weighted_range(area_points)
    by_rooms: dict[int, float] = defaultdict(float)
    for facts, w in weights:
        if facts.get("rooms") is not None:
            by_rooms[int(facts["rooms"])] += w
    for data, w in searches:
        for r in data.get("rooms") or ():
            by_rooms[int(r)] += w
    rooms = [r for r, w in sorted(by_rooms.items(), key=lambda x: (-x[1], x[0])) if w > 0][:2]

    last = max((a[4] for a in activity), default=None)
    tags = []
    if views7 + searches7 >= 10:
        tags.append("very_active")
    if len(days14) >= 3:
        tags.append("returning")
    if followed:
        tags.append("follows_items")
    if len(projects30) >= 3:
        tags.append("comparing_projects")
    if kinds30 >= {"view_unit", "view_listing"}:
        tags.append("new_and_resale")
    if upcoming:
        tags.append("upcoming_showing")
    if any(r >= 4 and at >= now - timedelta(days=30) for r, at in ratings):
        tags.append("liked_a_showing")
    if sum(1 for r, _ in ratings if r <= 2) >= 2:
        tags.append("disliked_showings")
    if last is not None and last < now - timedelta(days=14) and not upcoming:
        tags.append("gone_quiet")

    recent_showing = any(s[1] >= now - timedelta(days=30) and s[0] != "cancelled" for s in showings)
    active30 = last is not None and last >= now - timedelta(days=30)
    decided = [t for t in tags if t in GRADE_A]
    if "returning" in tags and "follows_items" in tags:
        decided += ["returning", "follows_items"]
    if decided:
        grade = "A"
    elif active30 or recent_showing or "returning" in tags:
        grade = "B"
        decided = [
            t
            for t in tags
            if t in ("returning", "follows_items", "comparing_projects", "new_and_resale")
        ]
    else:
        grade = "C"
        decided = [t for t in tags if t == "gone_quiet"]
    return {
        "districts": districts,
        "price_min": int(price[0]) if price else None,
        "price_max": int(price[1]) if price else None,
        "area_min": f"{area[0]:.2f}" if area else None,
        "area_max": f"{area[1]:.2f}" if area else None,
        "rooms": rooms,
        "views_7d": views7,
        "views_30d": counts["views30d"],
        "searches_30d": counts["searches30d"],
        "follows": len(followed),
        "showings": sum(1 for s in showings if s[0] != "cancelled"),
        "average_rating": round(sum(r for r, _ in ratings) / len(ratings), 1) if ratings else None,
        "active_days_14d": len(days14),
        "tags": tags,
        "grade": grade,
        "grade_factors": list(dict.fromkeys(decided)),
        "computed_at": now.isoformat(),
    }


async def _facts(
    session: AsyncSession, kind: str, ids: set[uuid.UUID]
) -> dict[uuid.UUID, JsonObject]:
    """Price, area, rooms and district of units (with their project) or listings, by id."""
    if not ids:
        return {}
    if kind == "unit":
        rows = await session.execute(
            select(
                Unit.id,
                Unit.list_price,
                Unit.gross_area,
                Unit.rooms,
                Project.district,
                Unit.project_id,
            )
            .join(Project, Project.id == Unit.project_id)
            .where(Unit.id.in_(ids))
        )
        return {
            i: {"price": p, "area": str(a), "rooms": r, "district": d or "", "project_id": str(pid)}
            for i, p, a, r, d, pid in rows
        }
    listings = await session.execute(
        select(
            Listing.id, Listing.asking_price, Listing.gross_area, Listing.rooms, Listing.district
        ).where(Listing.id.in_(ids))
    )
    return {
        i: {"price": p, "area": str(a), "rooms": r, "district": d or ""}
        for i, p, a, r, d in listings
    }


async def refresh(
    session: AsyncSession, client_id: uuid.UUID, now: datetime | None = None
) -> tuple[Client, str | None] | None:
    """Rebuild one client's profile; returns the client and its previous suggested grade."""
    now = now or utcnow()
    client = await session.get(Client, client_id, with_for_update=True)
    if client is None or client.merged_into is not None:
        return None
    activity = [
        ActivityRow(*r)
        for r in (
            await session.execute(
                select(
                    ClientActivity.kind,
                    ClientActivity.subject_id,
                    ClientActivity.data,
                    ClientActivity.seconds,
                    ClientActivity.at,
                )
                .where(ClientActivity.client_id == client.id, ClientActivity.at >= now - WINDOW)
                .order_by(ClientActivity.at.desc())
                .limit(5000)
            )
        ).all()
    ]
    followed: list[JsonObject] = []
    if client.account_id is not None:
        follows = (
            await session.execute(
                select(Follow.target_kind, Follow.target_id).where(
                    Follow.account_id == client.account_id, Follow.target_id.is_not(None)
                )
            )
        ).all()
        for kind in ("unit", "listing"):
            ids = {t for k, t in follows if k == kind and t is not None}
            followed += list((await _facts(session, kind, ids)).values())
    showings = [
        ShowingRow(*r)
        for r in (
            await session.execute(
                select(
                    Showing.status,
                    Showing.starts_at,
                    Showing.unit_ids,
                    Showing.listing_ids,
                    Showing.feedback,
                ).where(Showing.client_id == client.id, Showing.starts_at >= now - WINDOW)
            )
        ).all()
    ]
    unit_ids = {x for s in showings for x in s.unit_ids}
    listing_ids = {x for s in showings for x in s.listing_ids}
    shown = {
        (kind, str(i)): facts
        for kind, ids in (("unit", unit_ids), ("listing", listing_ids))
        for i, facts in (await _facts(session, kind, ids)).items()
    }
    before = client.suggested_grade
    profile = build(
        now=now,
        activity=activity,
        followed=followed,
        showings=showings,
        shown=shown,
        zone=tenant_of(session).zone,
    )
    client.profile, client.suggested_grade = profile, profile["grade"]
    await session.flush()
    return client, before


async def stale(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Clients whose profile may have changed with time alone (active in the window, or
    graded A): the daily refresh."""
    rows = await session.scalars(
        select(Client.id)
        .where(
            Client.merged_into.is_(None),
            or_(Client.last_active_at >= now - timedelta(days=35), Client.suggested_grade == "A"),
        )
        .limit(20_000)
    )
    return list(rows.all())


async def prune(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(ClientActivity).where(ClientActivity.at < now - RETENTION)
    )
    # AsyncSession.execute's stubs type a DELETE's result as Result; it is a CursorResult
    return cast("CursorResult[Any]", result).rowcount or 0


def needs_from(client: Client) -> JsonObject:
    """The client's stated needs, with what the profile shows filling what they left out."""
    needs, prof = dict(client.needs or {}), client.profile or {}
    if (
        needs.get("budget_min") is None
        and needs.get("budget_max") is None
        and prof.get("price_max")
    ):
        needs["budget_min"], needs["budget_max"] = prof.get("price_min"), prof["price_max"]
    if needs.get("area_min") is None and needs.get("area_max") is None and prof.get("area_max"):
        needs["area_min"], needs["area_max"] = prof.get("area_min"), prof["area_max"]
    if not needs.get("rooms") and prof.get("rooms"):
        needs["rooms"] = list(prof["rooms"])
    if not needs.get("districts") and prof.get("districts"):
        needs["districts"] = [d["district"] for d in prof["districts"]]
    return needs


async def activity_of(
    session: AsyncSession, client_id: uuid.UUID, first: int
) -> list[ClientActivity]:
    stmt = (
        select(ClientActivity)
        .where(ClientActivity.client_id == client_id)
        .order_by(ClientActivity.at.desc(), ClientActivity.id.desc())
        .limit(first)
    )
    return list((await session.scalars(stmt)).all())
