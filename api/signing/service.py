"""Electronic signing, the part any document's signing shares (contracts now; resale
agreements next): the signer's one-time SMS code bound to the exact document, the hash-chained
event list of a subject, the seal applied by a provider, the completion certificate.

Never commits: the request owns the transaction. The caller locks its subject's row (e.g.
the contract) before recording events, so a subject's events form one line."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit.service import clean
from api.db import JsonObject
from api.identity.service import AuthFailed, normalize_phone
from api.identity.sms import CodeSent, Later, check_send_limits, send_quietly
from api.ids import uuid7
from api.notify.sms import SmsSender
from api.security.kit import SecurityKit
from api.signing.models import SigningCode, SigningEvent

CODE_COLUMN = "signing_code"
GENESIS = b""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Subject:
    """What is signed: a kind (``contract``) and its id, in the session's tenant."""

    kind: str
    id: uuid.UUID
    scope: str  # the tenant id: codes' blind indexes and HMACs are per tenant


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did a step, from where (recorded in the event and the certificate)."""

    account_id: uuid.UUID | None
    ip: str = ""
    user_agent: str = ""


# ---------------------------------------------------------------- the event chain


def _canonical(e: SigningEvent) -> bytes:
    body = {
        "subject_type": e.subject_type,
        "subject_id": str(e.subject_id),
        "seq": e.seq,
        "at": e.at.astimezone(UTC).isoformat(),
        "kind": e.kind,
        "actor_id": str(e.actor_id) if e.actor_id else None,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "data": e.data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(prev: bytes, e: SigningEvent) -> bytes:
    return hashlib.sha256(prev + _canonical(e)).digest()


async def events(session: AsyncSession, subject: Subject) -> list[SigningEvent]:
    return list(
        (
            await session.scalars(
                select(SigningEvent)
                .where(
                    SigningEvent.subject_type == subject.kind, SigningEvent.subject_id == subject.id
                )
                .order_by(SigningEvent.seq)
            )
        ).all()
    )


async def record(
    session: AsyncSession, subject: Subject, kind: str, actor: Actor, **data: Any
) -> SigningEvent:
    """Append an event to the subject's chain (the caller holds the subject's row lock)."""
    last = await session.scalar(
        select(SigningEvent)
        .where(SigningEvent.subject_type == subject.kind, SigningEvent.subject_id == subject.id)
        .order_by(SigningEvent.seq.desc())
        .limit(1)
    )
    prev = last.hash if last is not None else GENESIS
    # Second precision, UTC: the stored value reads back the same (the hash covers it).
    at = datetime.now(UTC).replace(microsecond=0)
    e = SigningEvent(
        id=uuid7(),
        subject_type=subject.kind,
        subject_id=subject.id,
        seq=(last.seq + 1) if last is not None else 1,
        at=at,
        kind=kind,
        actor_id=actor.account_id,
        ip=actor.ip[:64],
        user_agent=actor.user_agent[:300],
        data=clean(data),
        prev_hash=prev,
    )
    e.hash = event_hash(prev, e)
    session.add(e)
    await session.flush()
    return e


def verify_chain(chain: list[SigningEvent]) -> int | None:
    """The seq of the first event that does not fit its predecessor or its content; None
    when the chain holds."""
    prev = GENESIS
    for i, e in enumerate(chain, start=1):
        if e.seq != i or e.prev_hash != prev or event_hash(prev, e) != e.hash:
            return e.seq
        prev = e.hash
    return None


def event_json(e: SigningEvent) -> JsonObject:
    return {
        "seq": e.seq,
        "at": e.at.astimezone(UTC).isoformat(),
        "kind": e.kind,
        "actor_id": str(e.actor_id) if e.actor_id else None,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "data": e.data,
        "prev_hash": e.prev_hash.hex(),
        "hash": e.hash.hex(),
    }


# ---------------------------------------------------------------- one-time codes


def _code_hmac(kit: SecurityKit, subject: Subject, row: SigningCode, code: str) -> bytes:
    """Bound to the row, the subject and the document: a code proves consent to this one."""
    return kit.blind_index.digest(
        f"{row.id}:{row.subject_type}:{row.subject_id}:{row.document_sha256}:{code}",
        scope=subject.scope,
        column=CODE_COLUMN,
    )


def phone_digest(kit: SecurityKit, subject: Subject, phone: str) -> bytes:
    return kit.blind_index.digest(phone, scope=subject.scope, column="signing_phone")


async def send_code(
    session: AsyncSession,
    kit: SecurityKit,
    sender: SmsSender,
    subject: Subject,
    *,
    document_sha256: str,
    phone: str,
    ip: str,
    message: str,
    later: Later | None = None,
) -> CodeSent:
    """Send a 6-digit code to ``phone`` for the signer to confirm their consent to the
    document ``document_sha256`` of ``subject``. ``message`` holds ``{code}`` and
    ``{minutes}``. The limits of sign-in codes apply (``ANJU_SMS_*``: one a minute per phone,
    so many an hour per phone and per address); an earlier unused code of the subject is
    superseded (only the latest one is good)."""
    s = kit.settings
    phone = normalize_phone(phone)
    bidx = phone_digest(kit, subject, phone)
    t = await check_send_limits(
        session,
        kit,
        SigningCode,
        SigningCode.phone_bidx,
        bidx,
        ip,
        SigningCode.subject_id == subject.id,
    )
    code = f"{secrets.randbelow(10**6):06d}"
    row = SigningCode(
        id=uuid7(),
        subject_type=subject.kind,
        subject_id=subject.id,
        document_sha256=document_sha256,
        phone_bidx=bidx,
        expires_at=t + timedelta(seconds=s.sms_code_ttl),
        attempts=0,
        ip=ip[:64],
        created_at=t,
    )
    row.code_hmac = _code_hmac(kit, subject, row, code)
    session.add(row)
    await session.flush()
    minutes = max(1, s.sms_code_ttl // 60)
    text = message.replace("{code}", code).replace("{minutes}", str(minutes))
    await send_quietly(later, lambda: sender.send(phone, text), "sms signing code")
    return CodeSent(row.expires_at, s.sms_resend_after)


async def check_code(
    session: AsyncSession,
    kit: SecurityKit,
    subject: Subject,
    *,
    document_sha256: str,
    code: str,
) -> SigningCode:
    """The subject's latest unused code, checked against ``code`` and the document. A wrong
    code counts an attempt (written at once: the caller keeps it when it refuses); the
    ``ANJU_SMS_CODE_MAX_ATTEMPTS``-th wrong one burns the code. Returns the row, not yet
    spent: ``spend`` it once everything else has passed."""
    row = await session.scalar(
        select(SigningCode)
        .where(
            SigningCode.subject_type == subject.kind,
            SigningCode.subject_id == subject.id,
            SigningCode.used_at.is_(None),
        )
        .order_by(SigningCode.created_at.desc(), SigningCode.id.desc())
        .limit(1)
        .with_for_update()
    )
    now = datetime.now(UTC)
    if row is None or row.expires_at <= now:
        raise AuthFailed("the code expired or was never sent; request a new one", "code")
    if row.attempts >= kit.settings.sms_code_max_attempts:
        raise AuthFailed("too many wrong codes; request a new one", "code")
    if row.document_sha256 != document_sha256:
        raise AuthFailed("the code was sent for another version of the document", "code")
    given = (code or "").strip()
    if not (len(given) == 6 and given.isdigit()) or not hmac.compare_digest(
        _code_hmac(kit, subject, row, given), row.code_hmac
    ):
        row.attempts += 1
        await session.flush()
        raise AuthFailed("wrong code", "code")
    return row


def spend(row: SigningCode) -> None:
    row.used_at = datetime.now(UTC)
