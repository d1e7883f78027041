"""Client rules: contact details encrypted with a blind index (duplicates are found by it),
the lifecycle, follow-ups, and the data scope every read goes through. Never commits."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api import search as search_kit
from api.client import profile
from api.client.models import (
    GRADES,
    KINDS,
    SOURCES,
    STAGES,
    Assignment,
    Client,
    ClientActivity,
    ClientPhone,
    FollowUp,
)
from api.db import utcnow
from api.errors import Conflict, NotFound, ValidationFailed
from api.identity.auth import Principal
from api.identity.service import normalize_phone
from api.identity.teams import visible_owners
from api.ids import uuid7
from api.security.crypto import mask_phone
from api.security.kit import SecurityKit
from api.setting import service as settings
from api.validate import text, unique_texts
from tenants.sessions import tenant_of

LANGUAGES = ("zh", "en", "yue", "ja", "ko", "fr", "de", "es", "ru", "ar")
OPEN = ("new", "contacted", "qualified", "showing", "negotiating")
ORDER = {s: i for i, s in enumerate(STAGES)}


def _scope(tenant_id: str) -> str:
    return str(uuid.UUID(str(tenant_id)))


def _mask_id(value: str) -> str:
    return value[:3] + "*" * max(0, len(value) - 7) + value[-4:] if len(value) > 7 else "****"


def _normalize_id(raw: str) -> str:
    value = "".join(raw.split()).upper()
    if not 6 <= len(value) <= 32 or not value.isalnum():
        raise ValidationFailed("an ID number is 6 to 32 letters and digits", "idNumber")
    return value


# A client's needs as stored (budget_min/max, area_min/max, rooms, districts, purpose,
# must_haves; see ``Client.needs``): free-form JSON the GraphQL input shapes.
Needs = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClientInput:
    name: str = ""
    phone: str | None = None
    id_number: str | None = None
    source: str = "other"
    grade: str | None = None
    needs: Needs = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    consent_marketing: bool = False
    owner_id: uuid.UUID | None = None
    language: str = ""
    other_phones: list[str] = field(default_factory=list)


MAX_OTHER_PHONES = 4


def _seal(kit: SecurityKit, tenant_id: str, row: Client, column: str, value: str) -> None:
    scope = _scope(tenant_id)
    setattr(
        row,
        f"{column}_enc",
        kit.cipher.encrypt(value, scope=scope, table="client", column=column, row_id=row.id),
    )
    setattr(row, f"{column}_bidx", kit.blind_index.digest(value, scope=scope, column=column))
    setattr(row, f"{column}_mask", mask_phone(value) if column == "phone" else _mask_id(value))


def _other_phones(raw: list[str] | None, primary: str | None) -> list[str]:
    """Other phones normalised, without the main one or repeats (at most 4)."""
    out: list[str] = []
    for i, value in enumerate(raw or ()):
        try:
            phone = normalize_phone(value)
        except ValidationFailed:
            raise ValidationFailed("enter valid phone numbers", f"otherPhones.{i}") from None
        if phone != primary and phone not in out:
            out.append(phone)
    if len(out) > MAX_OTHER_PHONES:
        raise ValidationFailed(f"at most {MAX_OTHER_PHONES} other phones", "otherPhones")
    return out


async def _set_other_phones(
    session: AsyncSession, kit: SecurityKit, tenant_id: str, row: Client, phones: list[str]
) -> None:
    scope = _scope(tenant_id)
    await session.execute(delete(ClientPhone).where(ClientPhone.client_id == row.id))
    for position, phone in enumerate(phones):
        pid = uuid7()
        session.add(
            ClientPhone(
                id=pid,
                client_id=row.id,
                position=position,
                phone_mask=mask_phone(phone),
                phone_enc=kit.cipher.encrypt(
                    phone, scope=scope, table="client_phone", column="phone", row_id=pid
                ),
                phone_bidx=kit.blind_index.digest(phone, scope=scope, column="phone"),
            )
        )
    row.other_phone_masks = [mask_phone(p) for p in phones]


async def phone_rows_by_client_ids(
    session: AsyncSession, client_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ClientPhone]]:
    """The other-phone rows of many clients in one query (a DataLoader's fetch)."""
    out: dict[uuid.UUID, list[ClientPhone]] = {}
    stmt = select(ClientPhone).where(ClientPhone.client_id.in_(client_ids))
    rows = await session.scalars(stmt.order_by(ClientPhone.client_id, ClientPhone.position))
    for r in rows:
        out.setdefault(r.client_id, []).append(r)
    return out


def reveal_phones(kit: SecurityKit, tenant_id: str, rows: Iterable[ClientPhone]) -> list[str]:
    return [
        kit.cipher.decrypt(
            r.phone_enc, scope=_scope(tenant_id), table="client_phone", column="phone", row_id=r.id
        )
        for r in rows
    ]


async def _add_phones(
    session: AsyncSession,
    kit: SecurityKit,
    tenant_id: str,
    row: Client,
    phones: Iterable[str | None],
) -> None:
    """Phones the client does not have yet become other phones (as many as fit)."""
    main = reveal(kit, tenant_id, row, "phone")
    known = await other_phones(session, kit, tenant_id, row.id)
    extra = [x for x in dict.fromkeys(phones) if x and x != main and x not in known]
    if extra:
        await _set_other_phones(session, kit, tenant_id, row, [*known, *extra][:MAX_OTHER_PHONES])


async def other_phones(
    session: AsyncSession, kit: SecurityKit, tenant_id: str, client_id: uuid.UUID
) -> list[str]:
    """A client's other phones in plain text (callers check pii.read and audit)."""
    rows = (await phone_rows_by_client_ids(session, [client_id])).get(client_id, [])
    return reveal_phones(kit, tenant_id, rows)


def reveal(kit: SecurityKit, tenant_id: str, row: Client, column: str) -> str | None:
    blob: bytes | None = getattr(row, f"{column}_enc")
    if blob is None:
        return None
    return kit.cipher.decrypt(
        blob, scope=_scope(tenant_id), table="client", column=column, row_id=row.id
    )


def _check(i: ClientInput) -> None:
    if i.source not in SOURCES:
        raise ValidationFailed(f"source is one of {', '.join(SOURCES)}", "source")
    if i.language and i.language not in LANGUAGES:
        raise ValidationFailed(f"language is one of {', '.join(LANGUAGES)}", "language")
    if i.grade is not None and i.grade not in GRADES:
        raise ValidationFailed("grade is A, B or C", "grade")
    needs = i.needs or {}
    lo, hi = needs.get("budget_min"), needs.get("budget_max")
    if lo is not None and hi is not None and lo > hi:
        raise ValidationFailed("the budget's minimum is above its maximum", "needs.budgetMin")


async def duplicates(
    session: AsyncSession,
    kit: SecurityKit,
    tenant_id: str,
    *,
    phones: Iterable[str | None],
    id_number: str | None,
    exclude: uuid.UUID | None = None,
) -> list[Client]:
    """Live clients sharing one of these phones (main or other) or the ID number (blind
    index: no decryption, no plain text in the query), oldest first."""
    scope = _scope(tenant_id)
    clauses: list[ColumnElement[bool]] = []
    digests = [kit.blind_index.digest(p, scope=scope, column="phone") for p in phones if p]
    if digests:
        clauses.append(Client.phone_bidx.in_(digests))
        clauses.append(
            Client.id.in_(select(ClientPhone.client_id).where(ClientPhone.phone_bidx.in_(digests)))
        )
    if id_number:
        clauses.append(
            Client.id_number_bidx
            == kit.blind_index.digest(id_number, scope=scope, column="id_number")
        )
    if not clauses:
        return []
    stmt = select(Client).where(or_(*clauses), Client.merged_into.is_(None))
    if exclude is not None:
        stmt = stmt.where(Client.id != exclude)
    return list((await session.scalars(stmt.order_by(Client.created_at))).all())


async def create_client(
    session: AsyncSession,
    kit: SecurityKit,
    tenant_id: str,
    p: Principal,
    i: ClientInput,
    *,
    refuse_duplicates: bool = False,
    route: bool = False,
) -> tuple[Client, list[Client]]:
    """A new client (owned by the caller unless another owner is given, or by whoever the
    routing rules pick with ``route``). Returns it and the existing clients it duplicates:
    refused (CONFLICT naming the first) or flagged. A repeat merged into another agent's
    client tells that agent (category leads); a client whose app account has been active gets
    its profile rebuilt."""
    row, found = await _create_or_merge(
        session, kit, tenant_id, p, i, refuse_duplicates=refuse_duplicates, route=route
    )
    merged = any(d.id == row.id for d in found)
    if merged and row.owner_id is not None and row.owner_id != p.account_id:
        from api.notify import service as notify

        await notify.notify(
            session,
            tenant_of(session).slug,
            [row.owner_id],
            "leads",
            "client.repeat",
            {"client": row.name, "source": i.source},
            data={"kind": "client", "id": str(row.id)},
        )
    if row.last_active_at is not None:  # the app account's activity came along
        await profile.refresh_later(session, [row.id])
    return row, found


async def _create_or_merge(
    session: AsyncSession,
    kit: SecurityKit,
    tenant_id: str,
    p: Principal,
    i: ClientInput,
    *,
    refuse_duplicates: bool,
    route: bool,
) -> tuple[Client, list[Client]]:
    name = text(i.name, "name", required=True, max_len=100)
    phone = normalize_phone(i.phone) if i.phone else None
    id_number = _normalize_id(i.id_number) if i.id_number else None
    if not phone and not id_number:
        raise ValidationFailed("a client needs a phone or an ID number", "phone")
    _check(i)
    others = _other_phones(i.other_phones, phone)
    found = await duplicates(session, kit, tenant_id, phones=[phone, *others], id_number=id_number)
    if found:
        rule = "refuse" if refuse_duplicates else await settings.get(session, "crm.duplicates")
        if rule == "refuse":
            raise Conflict(f"this client exists already ({found[0].id})", "phone")
        if rule == "merge":
            scope = await visible(session, p)
            mine = (
                await session.scalars(
                    select(Client)
                    .where(Client.id.in_([f.id for f in found]), scope)
                    .order_by(Client.created_at)
                    .limit(1)
                    .with_for_update()
                )
            ).first()
            if mine is not None:
                await _absorb(session, kit, tenant_id, mine, i, name, others, p)
                return mine, found
    row = Client(
        id=uuid7(),
        name=name,
        source=i.source,
        grade=i.grade,
        needs=i.needs or {},
        tags=unique_texts(i.tags, "tags", max_len=50, max_count=30),
        notes=text(i.notes, "notes", required=False, max_len=5000),
        consent_marketing=i.consent_marketing,
        language=i.language,
        owner_id=None if route else i.owner_id if i.owner_id is not None else p.account_id,
        duplicate_of=found[0].id if found else None,
        created_by=p.account_id,
    )
    if phone:
        _seal(kit, tenant_id, row, "phone", phone)
    if id_number:
        _seal(kit, tenant_id, row, "id_number", id_number)
    row.account_id = await profile.account_for_phones(session, kit, [phone, *others])
    session.add(row)
    await session.flush()  # the row first: its assignment refers to it
    await _set_other_phones(session, kit, tenant_id, row, others)
    await profile.attach_orphans(session, row)
    session.add(
        Assignment(client_id=row.id, to_owner=row.owner_id, reason="created", by_id=p.account_id)
    )
    await session.flush()
    if route:
        from api.client import routing

        await routing.announce(session, row, await routing.route(session, row, by=p.account_id))
    return row, found


async def _absorb(
    session: AsyncSession,
    kit: SecurityKit,
    tenant_id: str,
    row: Client,
    i: ClientInput,
    name: str,
    others: list[str],
    p: Principal,
) -> None:
    """A repeated lead merged into the existing record (tenant rule ``merge``): what it
    lacked is taken over, tags joined, a note of the repeat logged."""
    given = normalize_phone(i.phone) if i.phone else None
    if row.phone_enc is None and given:
        _seal(kit, tenant_id, row, "phone", given)
    await _add_phones(session, kit, tenant_id, row, [given, *others])
    if row.id_number_enc is None and i.id_number:
        _seal(kit, tenant_id, row, "id_number", _normalize_id(i.id_number))
    row.needs = {**(i.needs or {}), **(row.needs or {})}
    row.tags = unique_texts([*(row.tags or ()), *(i.tags or ())], "tags", max_len=50, max_count=30)
    row.consent_marketing = row.consent_marketing or i.consent_marketing
    row.language = row.language or i.language
    note = f"repeated lead ({i.source}) as {name}" + (f": {i.notes}" if i.notes else "")
    session.add(
        FollowUp(
            id=uuid7(),
            client_id=row.id,
            kind="note",
            happened_at=utcnow(),
            outcome=text(note, "notes", required=False, max_len=2000),
            created_by=p.account_id,
        )
    )
    row.version += 1
    await session.flush()


class Keep(enum.Enum):
    """A field of ``ClientChanges`` not given: it stays as it is."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


@dataclass(frozen=True, slots=True)
class ClientChanges:
    """What ``update_client`` changes: only the fields given (not ``KEEP``) change; None
    clears a nullable one (the GraphQL input's fields)."""

    name: str | Keep = KEEP
    phone: str | Keep | None = KEEP
    other_phones: list[str] | Keep | None = KEEP
    id_number: str | Keep | None = KEEP
    grade: str | Keep | None = KEEP
    needs: Needs | Keep = KEEP
    tags: list[str] | Keep | None = KEEP
    notes: str | Keep | None = KEEP
    consent_marketing: bool | Keep | None = KEEP
    language: str | Keep | None = KEEP


# The fields an update may give.
CHANGEABLE = tuple(f.name for f in fields(ClientChanges))


async def update_client(
    session: AsyncSession,
    kit: SecurityKit,
    tenant_id: str,
    p: Principal,
    client_id: uuid.UUID,
    changes: ClientChanges,
    *,
    expected_version: int | None = None,
) -> tuple[Client, list[Client]]:
    """Change what the agent knows of a client: only the fields given change (name, phone,
    other_phones, id_number, grade, needs, tags, notes, consent_marketing, language). A new
    phone or ID number is checked for duplicates (flagged; refused under the tenant's
    ``refuse`` rule). Returns the client and the duplicates found."""
    c = changes
    row = await get_visible(session, p, client_id, lock=True)
    if expected_version is not None and row.version != expected_version:
        raise Conflict(f"the client changed meanwhile (version {row.version})", "expectedVersion")
    probe = ClientInput(
        name=row.name if c.name is KEEP else c.name,
        source=row.source,
        grade=row.grade if c.grade is KEEP else c.grade,
        needs=row.needs if c.needs is KEEP else c.needs,
        language=row.language if c.language is KEEP else c.language or "",
    )
    _check(probe)
    if c.name is not KEEP:
        row.name = text(c.name, "name", required=True, max_len=100)
    stored_phone = phone = reveal(kit, tenant_id, row, "phone")
    if c.phone is not KEEP:
        phone = normalize_phone(c.phone) if c.phone else None
    stored_id = id_number = reveal(kit, tenant_id, row, "id_number")
    if c.id_number is not KEEP:
        id_number = _normalize_id(c.id_number) if c.id_number else None
    if not phone and not id_number:
        raise ValidationFailed("a client needs a phone or an ID number", "phone")
    others = (
        _other_phones(c.other_phones, phone)
        if c.other_phones is not KEEP
        else [x for x in await other_phones(session, kit, tenant_id, row.id) if x != phone]
    )
    new_phones = [x for x in [phone, *others] if x and x != stored_phone]
    new_id = id_number if id_number != stored_id else None
    found = await duplicates(
        session, kit, tenant_id, phones=new_phones, id_number=new_id, exclude=row.id
    )
    if found:
        if await settings.get(session, "crm.duplicates") == "refuse":
            raise Conflict(f"this client exists already ({found[0].id})", "phone")
        row.duplicate_of = row.duplicate_of or found[0].id
    for column, value, given in (
        ("phone", phone, c.phone is not KEEP),
        ("id_number", id_number, c.id_number is not KEEP),
    ):
        if not given:
            continue
        if value is None:
            setattr(row, f"{column}_enc", None)
            setattr(row, f"{column}_bidx", None)
            setattr(row, f"{column}_mask", "")
        else:
            _seal(kit, tenant_id, row, column, value)
    if c.phone is not KEEP or c.other_phones is not KEEP:
        await _set_other_phones(session, kit, tenant_id, row, others)
        if row.account_id is None:
            row.account_id = await profile.account_for_phones(session, kit, [phone, *others])
            await profile.attach_orphans(session, row)
    if c.grade is not KEEP:
        row.grade = c.grade
    if c.needs is not KEEP:
        row.needs = c.needs or {}
    if c.tags is not KEEP:
        row.tags = unique_texts(c.tags or [], "tags", max_len=50, max_count=30)
    if c.notes is not KEEP:
        row.notes = text(c.notes or "", "notes", required=False, max_len=5000)
    if c.consent_marketing is not KEEP:
        row.consent_marketing = bool(c.consent_marketing)
    if c.language is not KEEP:
        row.language = c.language or ""
    row.version += 1
    await session.flush()
    if row.last_active_at is not None and row.profile == {}:  # an app account just linked
        await profile.refresh_later(session, [row.id])
    return row, found


async def visible(session: AsyncSession, p: Principal) -> ColumnElement[bool]:
    """The WHERE clause of the caller's data scope: own records, the team's (and the teams
    below), or all; the unassigned pool is visible to team and all scopes."""
    owners = await visible_owners(session, p)
    live = Client.merged_into.is_(None)
    if owners is None:
        return live
    clause = Client.owner_id.in_(owners)
    return and_(live, or_(clause, Client.owner_id.is_(None)) if p.scope != "own" else clause)


async def get_visible(
    session: AsyncSession, p: Principal, client_id: uuid.UUID, *, lock: bool = False
) -> Client:
    stmt = select(Client).where(Client.id == client_id, await visible(session, p))
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.scalars(stmt)).first()
    if row is None:  # another scope's client and a missing one look the same
        raise NotFound("client not found", "clientId")
    return row


async def change_stage(
    session: AsyncSession,
    p: Principal,
    client_id: uuid.UUID,
    stage: str,
    *,
    reason: str = "",
    expected_version: int | None = None,
) -> Client:
    """Forward along new -> contacted -> qualified -> showing -> negotiating -> won (steps may
    be skipped); lost from any open stage, with a reason; a lost client reopens as contacted.
    Won is final."""
    row = await get_visible(session, p, client_id, lock=True)
    if expected_version is not None and row.version != expected_version:
        raise Conflict(f"the client changed meanwhile (version {row.version})", "expectedVersion")
    if stage not in STAGES:
        raise ValidationFailed(f"stage is one of {', '.join(STAGES)}", "stage")
    now, current = utcnow(), row.stage
    if stage == current:
        return row
    if current == "won":
        raise Conflict("a won client's stage is final", "stage")
    if stage == "lost":
        reason = text(reason, "reason", required=True, max_len=300)
        row.lost_reason = reason
    elif current == "lost":
        if stage != "contacted":
            raise Conflict("a lost client reopens as contacted", "stage")
        row.lost_reason = None
    elif ORDER[stage] < ORDER[current]:
        raise Conflict(f"a client who is {current} cannot go back to {stage}", "stage")
    row.stage, row.stage_changed_at = stage, now
    row.version += 1
    await session.flush()
    return row


async def log_contact(
    session: AsyncSession,
    p: Principal,
    client_id: uuid.UUID,
    *,
    kind: str,
    outcome: str,
    next_step: str = "",
    happened_at: datetime | None = None,
    next_due_at: datetime | None = None,
) -> FollowUp:
    """Record a contact; a new client becomes contacted. With ``next_due_at`` the next
    follow-up is scheduled at once (the agent's usual "call again Friday")."""
    if kind not in KINDS:
        raise ValidationFailed(f"kind is one of {', '.join(KINDS)}", "kind")
    if next_due_at is not None and next_due_at < utcnow() - timedelta(minutes=5):
        raise ValidationFailed("a follow-up is scheduled in the future", "nextDueAt")
    row = await get_visible(session, p, client_id, lock=True)
    now = utcnow()
    when = happened_at or now
    if when > now + timedelta(minutes=5):
        raise ValidationFailed("a logged contact cannot be in the future", "happenedAt")
    f = FollowUp(
        id=uuid7(),
        client_id=row.id,
        kind=kind,
        happened_at=when,
        outcome=text(outcome, "outcome", required=kind != "note", max_len=2000),
        next_step=text(next_step, "nextStep", required=False, max_len=500),
        created_by=p.account_id,
    )
    session.add(f)
    if kind != "note":
        row.last_contact_at = max(row.last_contact_at or when, when)
        if row.stage == "new":
            row.stage, row.stage_changed_at = "contacted", now
    row.version += 1
    await session.flush()
    if next_due_at is not None:
        await schedule(session, p, row.id, due_at=next_due_at, kind="call", note=next_step)
    return f


async def schedule(
    session: AsyncSession,
    p: Principal,
    client_id: uuid.UUID,
    *,
    due_at: datetime,
    kind: str = "call",
    note: str = "",
) -> FollowUp:
    if kind not in KINDS:
        raise ValidationFailed(f"kind is one of {', '.join(KINDS)}", "kind")
    row = await get_visible(session, p, client_id, lock=True)
    if due_at < utcnow() - timedelta(minutes=5):
        raise ValidationFailed("a follow-up is scheduled in the future", "dueAt")
    f = FollowUp(
        id=uuid7(),
        client_id=row.id,
        kind=kind,
        due_at=due_at,
        next_step=text(note, "note", required=False, max_len=500),
        assignee_id=row.owner_id or p.account_id,
        created_by=p.account_id,
    )
    session.add(f)
    await session.flush()
    await _refresh_next(session, row)
    return f


async def complete(
    session: AsyncSession, p: Principal, follow_up_id: uuid.UUID, *, outcome: str
) -> FollowUp:
    outcome = text(outcome, "outcome", required=True, max_len=2000)
    missing = NotFound("scheduled follow-up not found", "followUpId")
    client_id = await session.scalar(
        select(FollowUp.client_id).where(FollowUp.id == follow_up_id, FollowUp.due_at.is_not(None))
    )
    if client_id is None:
        raise missing
    try:  # scope first: another scope's follow-up and a missing one look the same
        row = await get_visible(session, p, client_id, lock=True)
    except NotFound:
        raise missing from None
    f = await session.get(FollowUp, follow_up_id, with_for_update=True, populate_existing=True)
    if f is None:  # deleted with its client since the first read
        raise missing
    if f.done_at is not None:
        raise Conflict("this follow-up is done already", "followUpId")
    now = utcnow()
    f.done_at, f.happened_at, f.outcome = now, now, outcome
    if f.kind != "note":
        row.last_contact_at = now
        if row.stage == "new":
            row.stage, row.stage_changed_at = "contacted", now
    row.version += 1
    await session.flush()
    await _refresh_next(session, row)
    return f


async def _refresh_next(session: AsyncSession, row: Client) -> None:
    row.next_follow_up_at = await session.scalar(
        select(func.min(FollowUp.due_at)).where(
            FollowUp.client_id == row.id, FollowUp.done_at.is_(None), FollowUp.due_at.is_not(None)
        )
    )
    await session.flush()


# ---------------------------------------------------------------- views


async def clients(
    session: AsyncSession,
    p: Principal,
    *,
    stage: str | None,
    mine_only: bool,
    first: int,
    after: uuid.UUID | None,
    search: str = "",
    kit: SecurityKit | None = None,
    tenant_id: str | None = None,
) -> list[Client]:
    """Clients in scope, newest first; ``search``: a phone (any of theirs, exact, through the
    blind index) or a part of the name."""
    stmt = select(Client).where(await visible(session, p))
    search = (search or "").strip()[:100]
    if search:
        phone = None
        if kit is not None and sum(c.isdigit() for c in search) >= 7:
            try:
                phone = normalize_phone(search)
            except ValidationFailed:
                phone = None
        if phone is not None:
            assert kit is not None  # a phone is only parsed with the kit
            if tenant_id is None:
                raise ValueError("a phone search needs the tenant")
            digest = kit.blind_index.digest(phone, scope=_scope(tenant_id), column="phone")
            others = select(ClientPhone.client_id).where(ClientPhone.phone_bidx == digest)
            stmt = stmt.where(or_(Client.phone_bidx == digest, Client.id.in_(others)))
        else:
            stmt = stmt.where(Client.name.ilike(search_kit.like(search)))
    if stage is not None:
        stmt = stmt.where(Client.stage == stage)
    if mine_only:
        stmt = stmt.where(Client.owner_id == p.account_id)
    if after is not None:
        stmt = stmt.where(Client.id < after)
    return list((await session.scalars(stmt.order_by(Client.id.desc()).limit(first))).all())


async def stage_counts(session: AsyncSession, p: Principal) -> dict[str, int]:
    rows = (
        await session.execute(
            select(Client.stage, func.count())
            .where(await visible(session, p), Client.owner_id == p.account_id)
            .group_by(Client.stage)
        )
    ).all()
    return {s: dict(rows).get(s, 0) for s in STAGES}


async def recently_active(
    session: AsyncSession, p: Principal, *, since: datetime, first: int
) -> tuple[list[Client], int]:
    """The caller's own clients active in the app since then (latest first), and how many."""
    where = (
        await visible(session, p),
        Client.owner_id == p.account_id,
        Client.last_active_at >= since,
    )
    rows = (
        await session.scalars(
            select(Client).where(*where).order_by(Client.last_active_at.desc()).limit(first)
        )
    ).all()
    count = await session.scalar(select(func.count()).select_from(Client).where(*where))
    return list(rows), count or 0


async def agenda(
    session: AsyncSession, p: Principal, *, day_start: datetime, day_end: datetime
) -> tuple[list[FollowUp], list[FollowUp]]:
    """The caller's open follow-ups due today, and those overdue (before today)."""
    base = select(FollowUp).where(
        FollowUp.assignee_id == p.account_id,
        FollowUp.done_at.is_(None),
        FollowUp.due_at.is_not(None),
    )
    today = (
        await session.scalars(
            base.where(and_(FollowUp.due_at >= day_start, FollowUp.due_at < day_end)).order_by(
                FollowUp.due_at
            )
        )
    ).all()
    overdue = (
        await session.scalars(base.where(FollowUp.due_at < day_start).order_by(FollowUp.due_at))
    ).all()
    return list(today), list(overdue)


async def follow_ups(session: AsyncSession, p: Principal, client_id: uuid.UUID) -> list[FollowUp]:
    await get_visible(session, p, client_id)
    stmt = select(FollowUp).where(FollowUp.client_id == client_id).order_by(FollowUp.id.desc())
    return list((await session.scalars(stmt)).all())


REMINDER_BATCH = 1000  # follow-up reminders sent a job


class DueFollowUp(NamedTuple):
    follow_up: FollowUp
    client_name: str


async def due_for_reminder(
    session: AsyncSession, now: datetime, ahead: timedelta
) -> list[DueFollowUp]:
    """Scheduled follow-ups of open clients due within ``ahead`` (and not over an hour ago:
    those are on the overdue list) and not reminded yet (locked), with the client's name."""
    rows = (
        await session.execute(
            select(FollowUp, Client.name)
            .join(Client, Client.id == FollowUp.client_id)
            .where(
                FollowUp.due_at <= now + ahead,
                FollowUp.due_at > now - timedelta(hours=1),
                FollowUp.done_at.is_(None),
                FollowUp.reminded_at.is_(None),
                FollowUp.assignee_id.is_not(None),
                Client.stage.in_(OPEN),
            )
            .with_for_update(of=FollowUp, skip_locked=True)
            .limit(REMINDER_BATCH)
        )
    ).all()
    return [DueFollowUp(f, name) for f, name in rows]


async def merge(
    session: AsyncSession,
    p: Principal,
    keep_id: uuid.UUID,
    merge_id: uuid.UUID,
    *,
    kit: SecurityKit,
    tenant_id: str,
) -> Client:
    """Merge ``merge_id`` into ``keep_id`` (both within the caller's scope): every follow-up
    moves to the kept client, contact details and needs it lacks are taken over, tags are
    joined and notes appended; the merged record stays (``merged_into``) for the history and
    disappears from lists; the kept one's profile is rebuilt. The mutation's audit entry
    records who merged what."""
    if keep_id == merge_id:
        raise ValidationFailed("a client cannot be merged into itself", "mergeId")
    first, second = sorted([keep_id, merge_id])  # lock in one order: no deadlock
    rows = {
        first: await get_visible(session, p, first, lock=True),
        second: await get_visible(session, p, second, lock=True),
    }
    keep, gone = rows[keep_id], rows[merge_id]
    for column in ("phone", "id_number"):
        if getattr(keep, f"{column}_enc") is None and getattr(gone, f"{column}_enc") is not None:
            raise Conflict(f"the kept client has no {column}: keep the other one instead", "keepId")
    await session.execute(
        update(FollowUp).where(FollowUp.client_id == gone.id).values(client_id=keep.id)
    )
    # Activity moves too, unless it is the same account's (then the kept record has a copy).
    same = gone.account_id is not None and gone.account_id == keep.account_id
    moved = delete(ClientActivity) if same else update(ClientActivity).values(client_id=keep.id)
    await session.execute(moved.where(ClientActivity.client_id == gone.id))
    keep.account_id = keep.account_id or gone.account_id
    actives = [t for t in (keep.last_active_at, gone.last_active_at) if t]
    keep.last_active_at = max(actives) if actives else None
    # The merged record's phones become the kept one's other phones (as many as fit).
    await _add_phones(
        session,
        kit,
        tenant_id,
        keep,
        [
            reveal(kit, tenant_id, gone, "phone"),
            *await other_phones(session, kit, tenant_id, gone.id),
        ],
    )
    keep.needs = {**(gone.needs or {}), **(keep.needs or {})}
    keep.tags = list(dict.fromkeys([*(keep.tags or ()), *(gone.tags or ())]))[:30]
    if gone.notes:
        keep.notes = (keep.notes + "\n" if keep.notes else "") + gone.notes
    keep.grade = keep.grade or gone.grade
    keep.consent_marketing = keep.consent_marketing or gone.consent_marketing
    times = [t for t in (keep.last_contact_at, gone.last_contact_at) if t]
    keep.last_contact_at = max(times) if times else None
    keep.version += 1
    gone.merged_into, gone.version = keep.id, gone.version + 1
    await session.flush()
    await _refresh_next(session, keep)
    await profile.refresh_later(session, [keep.id])
    return keep


async def claim(session: AsyncSession, p: Principal, client_id: uuid.UUID) -> Client:
    """Take a client from the shared pool, or one offered to the caller's team: the first to
    claim gets it (row lock); a client someone owns meanwhile is a CONFLICT."""
    row = (
        await session.scalars(
            select(Client)
            .where(Client.id == client_id, Client.merged_into.is_(None))
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound("client not found", "clientId")
    if row.owner_id is not None:
        raise Conflict("this client has an agent already", "clientId")
    if row.offer_team_id is not None:  # offered by a routing rule: that team's members only
        from api.client import routing

        await routing.claim_offer(session, p, row, utcnow())
        return row
    row.owner_id, row.version = p.account_id, row.version + 1
    session.add(
        Assignment(client_id=row.id, to_owner=p.account_id, reason="claimed", by_id=p.account_id)
    )
    await session.flush()
    return row


async def return_neglected(session: AsyncSession, *, days: int, now: datetime | None = None) -> int:
    """Open clients with no contact (or creation) for ``days`` and no follow-up planned go
    back to the pool, each with the reason recorded."""
    now = now or utcnow()
    cutoff = now - timedelta(days=days)
    rows = (
        await session.scalars(
            select(Client)
            .where(
                Client.owner_id.is_not(None),
                Client.merged_into.is_(None),
                Client.stage.in_(OPEN),
                Client.next_follow_up_at.is_(None),
                func.coalesce(Client.last_contact_at, Client.created_at) < cutoff,
            )
            .with_for_update(skip_locked=True)
            .limit(1000)
        )
    ).all()
    for row in rows:
        why = f"no contact and nothing planned for {days} days"
        session.add(
            Assignment(client_id=row.id, from_owner=row.owner_id, reason="returned", detail=why)
        )
        row.owner_id, row.version = None, row.version + 1
    await session.flush()
    return len(rows)


async def pool(session: AsyncSession, p: Principal, *, first: int) -> list[Client]:
    """Unassigned clients any agent with client.read may claim (name and masked contact)."""
    stmt = (
        select(Client)
        .where(
            Client.owner_id.is_(None), Client.merged_into.is_(None), Client.offer_team_id.is_(None)
        )
        .order_by(Client.id.desc())
        .limit(first)
    )
    return list((await session.scalars(stmt)).all())


async def assignments(
    session: AsyncSession, p: Principal, client_id: uuid.UUID
) -> list[Assignment]:
    await get_visible(session, p, client_id)
    stmt = select(Assignment).where(Assignment.client_id == client_id).order_by(Assignment.id)
    return list((await session.scalars(stmt)).all())
