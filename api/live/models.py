"""The outbox of live events and each tenant's event sequence (shared schema, keyed by tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db import SharedBase
from api.ids import uuid7


class OutboxEvent(SharedBase):
    __tablename__ = "outbox"
    # Partial indexes of the relay's queries (shared migration 0008): numbering the unnumbered
    # rows in insert order, publishing the numbered unpublished ones, pruning by age.
    __table_args__ = (
        Index(
            "uq_outbox_tenant_seq",
            "tenant_id",
            "seq",
            unique=True,
            postgresql_where=text("seq IS NOT NULL"),
        ),
        Index("ix_outbox_unsequenced", "created_at", "id", postgresql_where=text("seq IS NULL")),
        Index(
            "ix_outbox_unpublished",
            "seq",
            postgresql_where=text("published_at IS NULL AND seq IS NOT NULL"),
        ),
        Index(
            "ix_outbox_published_at",
            "published_at",
            postgresql_where=text("published_at IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("tenant.id", ondelete="CASCADE"), nullable=False
    )
    # Numbered by the relay after commit: per tenant, gapless, in publish order.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    entity_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    # The database clock at insert (not the transaction's start): the relay's numbering order.
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")
    )
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EventStream(SharedBase):
    __tablename__ = "event_stream"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    pruned_through: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
