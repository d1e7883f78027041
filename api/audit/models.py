from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db import JsonObject, TenantBase


class AuditLog(TenantBase):
    """One audited event. The database refuses UPDATE, DELETE and TRUNCATE on this table."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False, unique=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    actor_ip: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")
    actor_app: Mapped[str] = mapped_column(
        String(32), nullable=False, default="", server_default=""
    )
    action: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    outcome: Mapped[str] = mapped_column(String(100), nullable=False, default="", server_default="")
    target_type: Mapped[str] = mapped_column(
        String(64), nullable=False, default="", server_default=""
    )
    target_id: Mapped[str] = mapped_column(
        String(64), nullable=False, default="", server_default=""
    )
    details: Mapped[JsonObject] = mapped_column(
        JSONB, nullable=False, default=dict, server_default="{}"
    )
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class AuditHead(TenantBase):
    """The chain's tip (one row): appends lock it, so entries form one line per tenant."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
