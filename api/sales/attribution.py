"""Channels and buyer attribution (报备), without face capture. Never commits.

A channel (an agency, or an individual broker: 全民经纪人) registers a client for a project:
the client is found by phone (the CRM's blind index; no decryption) or created as a CRM
record, and the registration gets a short random visit code (and a signed QR payload).
Site staff enter or scan the code when the client visits: the visit is confirmed with its
time and who confirmed it. A registration protects the client for its channel for
``sales.attribution_window_hours`` (default 72) from registering; a confirmed visit holds the
client for the channel in that project. Another channel registering the client while a
registration protects it opens a dispute with the evidence (codes, times, who registered
first, visits), decided by a manager. Whoever holds the client when the contract is signed
earns the channel's share of the commission (``api/sales/commission.py``). No biometric data
is collected anywhere. See docs/sales.md, "Buyer attribution"."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.client import service as clients
from api.db import JsonObject, utcnow
from api.errors import Conflict, Forbidden, NotFound, ValidationFailed
from api.identity.auth import Principal
from api.identity.service import normalize_phone
from api.identity.teams import active_members
from api.ids import uuid7
from api.project.models import Project
from api.sales.attribution_models import (
    CHANNEL_KINDS,
    REGISTRATION_STATUSES,
    AttributionDispute,
    ChannelRegistration,
    SalesChannel,
)
from api.security.crypto import mask_phone
from api.setting import service as settings
from api.signed_link import SignedLink
from api.validate import text as clean_text
from tenants.sessions import tenant_of

if TYPE_CHECKING:
    from api.security.kit import SecurityKit
    from tenants.registry import TenantInfo

WINDOW_SETTING = "sales.attribution_window_hours"
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed
CODE_LENGTH = 8  # 40 random bits; unique per tenant
QR_PREFIX = "ANJU-VISIT"
QR_TTL = 15 * 60  # the QR image link
MAX_PAGE = 100
MAX_INPUT = 200  # a code or QR payload as typed or scanned


# ---------------------------------------------------------------- channels


async def create_channel(
    session: AsyncSession,
    p: Principal,
    *,
    name: str,
    kind: str,
    account_id: uuid.UUID | None = None,
) -> SalesChannel:
    name = clean_text(name, "name", required=True, max_len=100)
    if kind not in CHANNEL_KINDS:
        raise ValidationFailed(f"kind is one of {', '.join(CHANNEL_KINDS)}", "kind")
    if account_id is not None and not await active_members(session, [account_id]):
        raise NotFound("account not found among the company's members", "accountId")
    row = SalesChannel(
        id=uuid7(),
        name=name,
        kind=kind,
        account_id=account_id,
        active=True,
        created_by=p.account_id,
        created_at=utcnow(),
        version=1,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("a channel of this name exists", "name") from exc
    return row


async def update_channel(
    session: AsyncSession,
    channel_id: uuid.UUID,
    *,
    name: str | None = None,
    active: bool | None = None,
) -> SalesChannel:
    row = await session.get(SalesChannel, channel_id, with_for_update=True)
    if row is None:
        raise NotFound("channel not found", "channelId")
    if name is not None:
        row.name = clean_text(name, "name", required=True, max_len=100)
    if active is not None:
        row.active = active
    row.version += 1
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("a channel of this name exists", "name") from exc
    return row


async def channels(session: AsyncSession, *, active_only: bool = True) -> list[SalesChannel]:
    stmt = select(SalesChannel).order_by(SalesChannel.name)
    if active_only:
        stmt = stmt.where(SalesChannel.active)
    return list((await session.scalars(stmt)).all())


async def channel(session: AsyncSession, channel_id: uuid.UUID, field: str) -> SalesChannel:
    row = await session.get(SalesChannel, channel_id)
    if row is None:
        raise NotFound("channel not found", field)
    return row


# ---------------------------------------------------------------- codes


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _sig(kit: SecurityKit, tenant_id: str, value: str, column: str, size: int = 10) -> str:
    digest = kit.blind_index.digest(value, scope=str(tenant_id), column=column)
    return base64.b32encode(digest[:size]).decode().rstrip("=")


def qr_payload(kit: SecurityKit, tenant: TenantInfo, code: str) -> str:
    """What the QR holds: the tenant, the code and the tenant's keyed signature of both, so a
    scanned code of another company or a made-up one is told apart from a mistyped one."""
    return f"{QR_PREFIX}:{tenant.slug}:{code}:{_sig(kit, tenant.id, code, 'visit_code')}"


def qr_svg(payload: str) -> bytes:
    """The QR code of ``payload`` as SVG (reportlab's QR widget: no extra dependency)."""
    from reportlab.graphics import renderSVG
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing

    widget = QrCodeWidget(payload, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    size = 240
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    return renderSVG.drawToString(drawing).encode()


async def svg_of(
    session: AsyncSession, tenant: TenantInfo, kit: SecurityKit, reg_id: str, locale: str = ""
) -> bytes | None:
    """The QR image of a registration still waiting for its visit (None otherwise)."""
    try:
        rid = uuid.UUID(reg_id)
    except ValueError:
        return None
    row = await session.get(ChannelRegistration, rid)
    if row is None or row.status not in ("registered", "disputed"):
        return None
    return qr_svg(qr_payload(kit, tenant, row.code))


def _parse_code(kit: SecurityKit, tenant: TenantInfo, raw: str) -> str:
    """The code typed (any case, spaces or dashes) or the QR payload scanned."""
    value = (raw or "").strip()
    if not value or len(value) > MAX_INPUT or any(ord(c) < 32 for c in value):
        raise ValidationFailed("enter the visit code or scan its QR code", "code")
    if value.upper().startswith(QR_PREFIX + ":"):
        parts = value.split(":")
        if len(parts) != 4:
            raise ValidationFailed("this QR code is not a visit code", "code")
        _, slug, code, sig = parts
        if slug != tenant.slug:
            raise ValidationFailed("this visit code belongs to another company", "code")
        if not hmac.compare_digest(_sig(kit, tenant.id, code, "visit_code"), sig):
            raise ValidationFailed("this QR code is not a valid visit code", "code")
        return code
    code = "".join(ch for ch in value.upper() if ch not in " -")
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        raise ValidationFailed(f"a visit code is {CODE_LENGTH} letters and digits", "code")
    return code


# ---------------------------------------------------------------- registering (报备)


async def window_hours(session: AsyncSession) -> int:
    return int(await settings.get(session, WINDOW_SETTING))


def protects(r: ChannelRegistration, now: datetime) -> bool:
    """A registration protects its client: visited, or registered and not yet expired."""
    return r.status == "visited" or (r.status == "registered" and r.expires_at > now)


async def _lock_client(session: AsyncSession, project_id: uuid.UUID, key: bytes) -> None:
    """Registrations of one phone for one project are serialised (a transaction lock)."""
    tenant = tenant_of(session)
    digest = f"{tenant.id}:{project_id}:{key.hex()}".encode()
    k = int.from_bytes(hashlib.sha256(digest).digest()[:8], "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": k})


@dataclass(frozen=True, slots=True)
class Registered:
    registration: ChannelRegistration
    dispute: AttributionDispute | None
    client_created: bool


def evidence_of(r: ChannelRegistration, ch: SalesChannel) -> JsonObject:
    return {
        "registration_id": str(r.id),
        "channel_id": str(ch.id),
        "channel": ch.name,
        "code": r.code,
        "registered_at": r.registered_at.isoformat(),
        "registered_by": str(r.registered_by),
        "expires_at": r.expires_at.isoformat(),
        "status": r.status,
        "visited_at": r.visited_at.isoformat() if r.visited_at else None,
        "visited_by": str(r.visited_by) if r.visited_by else None,
    }


async def register(
    session: AsyncSession,
    kit: SecurityKit,
    p: Principal,
    *,
    channel_id: uuid.UUID,
    project_id: uuid.UUID,
    name: str,
    phone: str,
    note: str = "",
) -> Registered:
    """A channel registers a client for a project. The client is the CRM record with this
    phone (oldest first), or a new one owned by the caller. Within another channel's
    protection the registration is ``disputed`` and a dispute opened; within the same
    channel's own, CONFLICT."""
    tenant = tenant_of(session)
    name = clean_text(name, "name", required=True, max_len=100)
    note = clean_text(note, "note", required=False, max_len=300)
    try:
        e164 = normalize_phone(phone or "")
    except ValidationFailed:
        raise ValidationFailed("enter a valid phone number", "phone") from None
    ch = await channel(session, channel_id, "channelId")
    if not ch.active:
        raise Conflict("the channel is inactive", "channelId")
    if await session.get(Project, project_id) is None:
        raise NotFound("project not found", "projectId")
    bidx = kit.blind_index.digest(e164, scope=str(uuid.UUID(str(tenant.id))), column="phone")
    await _lock_client(session, project_id, bidx)
    found = await clients.duplicates(session, kit, tenant.id, phones=[e164], id_number=None)
    created = not found
    if found:
        client = found[0]
    else:
        client, _ = await clients.create_client(
            session,
            kit,
            tenant.id,
            p,
            clients.ClientInput(name=name, phone=e164, source="referral"),
        )
    now = utcnow()
    earlier = list(
        (
            await session.scalars(
                select(ChannelRegistration)
                .where(
                    ChannelRegistration.project_id == project_id,
                    ChannelRegistration.client_id == client.id,
                    ChannelRegistration.status.in_(("registered", "visited", "disputed")),
                )
                .order_by(ChannelRegistration.registered_at)
                .with_for_update()
            )
        ).all()
    )
    first = next((r for r in earlier if protects(r, now)), None)
    mine = [
        r for r in earlier if r.channel_id == ch.id and (protects(r, now) or r.status == "disputed")
    ]
    if mine:
        raise Conflict(f"the channel registered this client already (code {mine[0].code})", "phone")
    hours = await window_hours(session)
    row = ChannelRegistration(
        id=uuid7(),
        project_id=project_id,
        channel_id=ch.id,
        client_id=client.id,
        code=new_code(),
        phone_mask=mask_phone(e164),
        status="disputed" if first is not None else "registered",
        registered_by=p.account_id,
        registered_at=now,
        expires_at=now + timedelta(hours=hours),
        note=note,
        version=1,
    )
    session.add(row)
    await session.flush()
    dispute = None
    if first is not None:
        first_channel = await session.get(SalesChannel, first.channel_id)
        assert first_channel is not None
        dispute = AttributionDispute(
            id=uuid7(),
            project_id=project_id,
            client_id=client.id,
            first_id=first.id,
            second_id=row.id,
            evidence={
                "first": evidence_of(first, first_channel),
                "second": evidence_of(row, ch),
                "registered_first": str(first.id),
                "window_hours": hours,
                "opened_at": now.isoformat(),
            },
            status="open",
            created_at=now,
        )
        session.add(dispute)
        await session.flush()
    return Registered(row, dispute, created)


async def confirm_visit(
    session: AsyncSession, kit: SecurityKit, p: Principal, raw: str
) -> ChannelRegistration:
    """Site staff enter or scan the visit code: the visit is confirmed (time, staff). A
    disputed registration's visit is recorded as evidence; its status waits for the
    dispute."""
    tenant = tenant_of(session)
    code = _parse_code(kit, tenant, raw)
    row = (
        await session.scalars(
            select(ChannelRegistration).where(ChannelRegistration.code == code).with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound("no registration has this visit code", "code")
    if row.status in ("lost", "rejected"):
        raise Conflict(f"this registration was {row.status} in a dispute", "code")
    if row.visited_at is not None:
        raise Conflict(f"the visit was confirmed already at {row.visited_at.isoformat()}", "code")
    now = utcnow()
    if row.expires_at <= now:
        raise ValidationFailed(
            f"the visit code expired at {row.expires_at.astimezone(tenant.zone):%Y-%m-%d %H:%M}",
            "code",
        )
    row.visited_at, row.visited_by = now, p.account_id
    if row.status == "registered":
        row.status = "visited"
    row.version += 1
    await session.flush()
    return row


async def holder(
    session: AsyncSession, project_id: uuid.UUID, client_id: uuid.UUID
) -> ChannelRegistration | None:
    """The registration that holds the client for the project: the earliest visited one (a
    dispute's winner is made visited or registered; its loser lost)."""
    return (
        await session.scalars(
            select(ChannelRegistration)
            .where(
                ChannelRegistration.project_id == project_id,
                ChannelRegistration.client_id == client_id,
                ChannelRegistration.status == "visited",
            )
            .order_by(ChannelRegistration.visited_at)
            .limit(1)
        )
    ).first()


# ---------------------------------------------------------------- disputes


async def resolve(
    session: AsyncSession,
    p: Principal,
    dispute_id: uuid.UUID,
    *,
    winner_id: uuid.UUID,
    note: str,
) -> AttributionDispute:
    """A manager decides which registration holds the client. The loser is ``rejected`` (the
    later one) or ``lost`` (the earlier one); commissions not yet approved follow the
    winner's channel."""
    from api.sales import commission

    note = clean_text(note, "note", required=True, max_len=300)
    d = await session.get(AttributionDispute, dispute_id, with_for_update=True)
    if d is None:
        raise NotFound("dispute not found", "disputeId")
    if d.status != "open":
        raise Conflict("the dispute was resolved already", "disputeId")
    if winner_id not in (d.first_id, d.second_id):
        raise ValidationFailed("the winner is one of the dispute's two registrations", "winnerId")
    first = await session.get(ChannelRegistration, d.first_id, with_for_update=True)
    second = await session.get(ChannelRegistration, d.second_id, with_for_update=True)
    assert first is not None and second is not None
    if p.account_id in (first.registered_by, second.registered_by):
        raise Forbidden("a dispute is decided by someone who registered neither side")
    winner, loser = (first, second) if winner_id == first.id else (second, first)
    loser.status = "rejected" if loser is second else "lost"
    loser.version += 1
    if winner.status == "disputed" or winner.status == "registered":
        winner.status = "visited" if winner.visited_at is not None else "registered"
        winner.version += 1
    now = utcnow()
    d.status, d.winner_id, d.resolved_by, d.resolved_at = "resolved", winner.id, p.account_id, now
    d.resolution_note = note
    await session.flush()
    if winner.status == "visited":
        await commission.reattribute(session, winner)
    return d


async def disputes(
    session: AsyncSession,
    *,
    status: str | None = None,
    project_id: uuid.UUID | None = None,
    first: int = 50,
) -> list[AttributionDispute]:
    stmt = select(AttributionDispute).order_by(AttributionDispute.created_at.desc())
    if status is not None:
        stmt = stmt.where(AttributionDispute.status == status)
    if project_id is not None:
        stmt = stmt.where(AttributionDispute.project_id == project_id)
    return list((await session.scalars(stmt.limit(max(0, min(first, MAX_PAGE))))).all())


# ---------------------------------------------------------------- reads


async def registrations(
    session: AsyncSession,
    p: Principal,
    *,
    project_id: uuid.UUID | None = None,
    channel_id: uuid.UUID | None = None,
    status: str | None = None,
    first: int = 50,
) -> list[ChannelRegistration]:
    """Newest first. Whoever registered sees their own; those who resolve disputes (and a
    scope of all) see every channel's."""
    if status is not None and status not in REGISTRATION_STATUSES:
        raise ValueError(status)
    stmt = select(ChannelRegistration).order_by(ChannelRegistration.registered_at.desc())
    if not (p.can("sales.attribution.resolve") or p.scope == "all"):
        mine = [ChannelRegistration.registered_by == p.account_id]
        broker = select(SalesChannel.id).where(SalesChannel.account_id == p.account_id)
        mine.append(ChannelRegistration.channel_id.in_(broker))
        stmt = stmt.where(or_(*mine))
    if project_id is not None:
        stmt = stmt.where(ChannelRegistration.project_id == project_id)
    if channel_id is not None:
        stmt = stmt.where(ChannelRegistration.channel_id == channel_id)
    if status is not None:
        stmt = stmt.where(ChannelRegistration.status == status)
    return list((await session.scalars(stmt.limit(max(0, min(first, MAX_PAGE))))).all())


# The QR image of a visit code, at /visit-codes/<tenant>/<registration id>.svg.
QR_LINK = SignedLink(
    kind="visit-codes",
    column="visit_qr_url",
    ext="svg",
    media_type="image/svg+xml",
    ttl=QR_TTL,
    render=svg_of,
)
