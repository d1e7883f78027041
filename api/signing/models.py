"""Electronic signing's tables, in each tenant schema (docs/signing.md).

``signing_seal``: the tenant's seal, a signing key (encrypted through the field registry)
and its X.509 certificate issued by the platform CA. ``signing_code``: one-time SMS codes a
signer confirms their identity and consent with, bound to one document (its SHA-256) of one
subject (e.g. a contract). ``signing_event``: what happened to a subject's signing, each
event hashed over the previous one (a chain per subject), the evidence the completion
certificate lists."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db import JsonObject, TenantBase, ciphertext_column, utcnow
from api.ids import uuid7


class SigningSeal(TenantBase):
    """The tenant's seal: a P-256 key (its PKCS#8 PEM encrypted, bound to this row) and the
    certificate the platform CA issued for it. One is current (``retired_at`` null)."""

    __tablename__ = "signing_seal"
    __table_args__ = (
        Index(
            "ux_signing_seal_current",
            "provider",
            unique=True,
            postgresql_where="retired_at IS NULL",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    key_enc: Mapped[bytes] = ciphertext_column("seal_key", nullable=False)
    cert_pem: Mapped[str] = mapped_column(Text, nullable=False)
    chain_pem: Mapped[str] = mapped_column(Text, nullable=False)  # the issuing CA(s)
    serial: Mapped[str] = mapped_column(String(64), nullable=False)
    subject: Mapped[str] = mapped_column(String(300), nullable=False)
    not_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SigningCode(TenantBase):
    """A one-time code sent by SMS to a signer: only its HMAC is kept, bound to the subject
    and the document's SHA-256; single use, limited attempts, short-lived."""

    __tablename__ = "signing_code"
    __table_args__ = (
        Index("ix_signing_code_subject", "subject_type", "subject_id", "created_at"),
        Index("ix_signing_code_phone", "phone_bidx", "created_at"),
        Index("ix_signing_code_ip", "ip", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    subject_type: Mapped[str] = mapped_column(String(32), nullable=False)
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    document_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    phone_bidx: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    code_hmac: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class SigningEvent(TenantBase):
    """One step of a subject's signing (document drawn, code sent, code refused, consent,
    sealed, registered, canceled...), hashed over the previous event of the subject:
    ``hash = SHA-256(prev_hash || canonical JSON of the event)``."""

    __tablename__ = "signing_event"
    __table_args__ = (UniqueConstraint("subject_type", "subject_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    subject_type: Mapped[str] = mapped_column(String(32), nullable=False)
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    ip: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    user_agent: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    data: Mapped[JsonObject] = mapped_column(JSONB, nullable=False, default=dict)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
