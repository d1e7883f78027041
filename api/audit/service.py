"""Recording and verifying the audit log.

During an operation an ``AuditRecorder`` collects what happened: row changes seen by the
session's flushes (before/after, personal data and secrets masked) and explicit events such as a
read of unmasked personal data. Just before the operation commits, ``append`` writes one entry
per event, each hashed over the previous entry's hash, with the chain's tip row locked so the
entries of concurrent operations form one line. ``verify`` walks the chain and names the first
entry that does not match.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypedDict

from sqlalchemy import event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from api.audit.models import AuditHead, AuditLog, JsonObject
from api.ids import uuid7

MASK = "***"
# Keys whose values never reach the log (compared lowercased, without _ and -).
SENSITIVE = {
    "password",
    "newpassword",
    "refreshtoken",
    "accesstoken",
    "token",
    "code",
    "otp",
    "secret",
    "totp",
    "phone",
    "email",
    "identifier",
    "idnumber",
    "passwordhash",
    "tokenhash",
}
SKIP_TABLES = {"audit_log", "audit_head", "refresh_token"}


def _sensitive(key: str) -> bool:
    k = key.lower().replace("_", "").replace("-", "")
    # Any key naming a phone, an email or an ID number (sellerPhone, ownerEmail...) too.
    return k in SENSITIVE or k.endswith(("enc", "bidx", "hash", "phone", "email", "idnumber"))


def clean(value: Any, key: str = "") -> Any:
    """JSON-safe, masked copy (only str, int, bool, None, lists and dicts remain, so the
    stored JSON re-serialises to the same bytes)."""
    if key and _sensitive(key):
        return MASK if value not in (None, "", [], {}) else value
    if isinstance(value, dict):
        return {clean(str(k)): clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return clean(value.value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return MASK
    if isinstance(value, (float, Decimal, uuid.UUID)):
        return str(value)
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return clean({k: v for k, v in vars(value).items() if not k.startswith("_")})
    # PostgreSQL's jsonb cannot hold NUL characters.
    return str(value).replace("\x00", "\ufffd")


class Entry(TypedDict):
    """An entry as hashed into the chain (JSON: the canonical form of this object)."""

    seq: int
    id: str
    at: str
    actor_id: str | None
    actor_ip: str
    actor_app: str
    action: str
    outcome: str
    target_type: str
    target_id: str
    details: JsonObject


def canonical(entry: Entry) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(prev: bytes, entry: Entry) -> bytes:
    return hashlib.sha256(prev + canonical(entry)).digest()


@dataclass
class Event:
    action: str
    outcome: str = "ok"
    target_type: str = ""
    target_id: str = ""
    details: JsonObject = field(default_factory=dict)


class AuditRecorder:
    """Collects the audit events of one operation."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changes: list[JsonObject] = []
        self.user_errors: list[str] = []

    def add(
        self, action: str, *, target_type: str = "", target_id: object = "", **details: Any
    ) -> None:
        self.events.append(
            Event(action, "ok", target_type, str(target_id), clean(details) if details else {})
        )

    def track(self, session: AsyncSession) -> None:
        """Collect the row changes this session flushes (one listener for all sessions is
        registered below; a per-session listener costs about a millisecond per request)."""
        session.sync_session.info["audit_recorder"] = self

    def _after_flush(self, session: Session, flush_context: UOWTransaction) -> None:
        for kind, objs in (
            ("insert", session.new),
            ("update", session.dirty),
            ("delete", session.deleted),
        ):
            for obj in objs:
                table = getattr(obj, "__tablename__", "")
                if table in SKIP_TABLES:
                    continue
                state = inspect(obj)
                before: JsonObject = {}
                after: JsonObject = {}
                for attr in state.mapper.column_attrs:
                    hist = state.attrs[attr.key].history
                    if kind == "insert":
                        after[attr.key] = clean(getattr(obj, attr.key), attr.key)
                    elif kind == "delete":
                        before[attr.key] = clean(getattr(obj, attr.key), attr.key)
                    elif hist.has_changes():
                        before[attr.key] = clean(
                            hist.deleted[0] if hist.deleted else None, attr.key
                        )
                        after[attr.key] = clean(hist.added[0] if hist.added else None, attr.key)
                if kind == "update" and not after:
                    continue
                pk = state.identity or state.mapper.primary_key_from_instance(obj)
                self.changes.append(
                    {
                        "op": kind,
                        "table": table,
                        "id": clean(pk[0] if len(pk) == 1 else list(pk)),
                        "before": before,
                        "after": after,
                    }
                )


@event.listens_for(Session, "after_flush")
def _collect_changes(session: Session, flush_context: UOWTransaction) -> None:
    recorder = session.info.get("audit_recorder")
    if recorder is not None:
        recorder._after_flush(session, flush_context)


async def append(
    session: AsyncSession,
    events: list[Event],
    *,
    actor_id: uuid.UUID | None,
    actor_ip: str,
    actor_app: str,
) -> list[int]:
    """Append ``events`` to the tenant's chain (inside the caller's transaction)."""
    if not events:
        return []
    head = await session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    assert head is not None, "no audit_head row"  # the tenant's migration 0004 inserts it
    seqs = []
    for e in events:
        row: Entry = {
            "seq": head.seq + 1,
            "id": str(uuid7()),
            "at": datetime.now(UTC).isoformat(),
            "actor_id": str(actor_id) if actor_id else None,
            "actor_ip": actor_ip[:64],
            "actor_app": actor_app[:32],
            "action": e.action[:100],
            "outcome": e.outcome[:100],
            "target_type": e.target_type[:64],
            "target_id": e.target_id[:64],
            "details": e.details,
        }
        digest = chain_hash(head.hash, row)
        session.add(
            AuditLog(
                seq=row["seq"],
                id=uuid.UUID(row["id"]),
                at=datetime.fromisoformat(row["at"]),
                actor_id=actor_id,
                actor_ip=row["actor_ip"],
                actor_app=row["actor_app"],
                action=row["action"],
                outcome=row["outcome"],
                target_type=row["target_type"],
                target_id=row["target_id"],
                details=row["details"],
                prev_hash=head.hash,
                hash=digest,
            )
        )
        head.seq, head.hash = row["seq"], digest
        seqs.append(row["seq"])
    await session.flush()
    return seqs


def _entry_of(row: AuditLog) -> Entry:
    return {
        "seq": row.seq,
        "id": str(row.id),
        "at": row.at.astimezone(UTC).isoformat(),
        "actor_id": str(row.actor_id) if row.actor_id else None,
        "actor_ip": row.actor_ip,
        "actor_app": row.actor_app,
        "action": row.action,
        "outcome": row.outcome,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "details": row.details,
    }


@dataclass
class VerifyReport:
    entries: int
    first_broken_seq: int | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


async def verify(session: AsyncSession, batch: int = 1000) -> VerifyReport:
    """Recompute the chain from the first entry; report the first entry that does not fit."""
    prev, expected_seq, count, last = b"", 1, 0, 0
    while True:
        rows = (
            await session.scalars(
                select(AuditLog).where(AuditLog.seq > last).order_by(AuditLog.seq).limit(batch)
            )
        ).all()
        if not rows:
            break
        for row in rows:
            count += 1
            if row.seq != expected_seq:
                return VerifyReport(count, expected_seq, f"entry {expected_seq} is missing")
            if row.prev_hash != prev:
                return VerifyReport(count, row.seq, "link to the previous entry is broken")
            if chain_hash(prev, _entry_of(row)) != row.hash:
                return VerifyReport(count, row.seq, "entry content does not match its hash")
            prev, expected_seq, last = row.hash, expected_seq + 1, row.seq
        session.expunge_all()
    head = await session.scalar(select(AuditHead).where(AuditHead.id == 1))
    if head is not None and (head.seq != last or head.hash != prev):
        return VerifyReport(count, last + 1, "entries after the last one were removed")
    return VerifyReport(count, None)
