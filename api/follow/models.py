"""Follows: someone follows a unit, a listing or a saved search (live updates and push use them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db import TenantBase, utcnow
from api.ids import uuid7
from api.live.outbox import watch
from api.unit.models import _in


class Follow(TenantBase):
    __tablename__ = "follow"
    __table_args__ = (
        CheckConstraint(_in("target_kind", ("unit", "listing", "search")), name="kind"),
        CheckConstraint("(target_kind = 'search') = (target_id IS NULL)", name="target"),
        Index(
            "uq_follow_account_target",
            "account_id",
            "target_kind",
            "target_id",
            unique=True,
            postgresql_where="target_id IS NOT NULL",
        ),
        Index("ix_follow_target", "target_kind", "target_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    target_kind: Mapped[str] = mapped_column(String(10), nullable=False)
    target_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    # A saved search: {"on": "units" | "listings", "filter": {...}}.
    search: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


LivePayload = dict[str, str | None]


def follow_payload(
    account_id: uuid.UUID, target_kind: str, target_id: uuid.UUID | None
) -> LivePayload:
    """Followed-items feeds of the account update their set from these."""
    return {
        "account_id": str(account_id),
        "target_kind": target_kind,
        "target_id": str(target_id) if target_id else None,
    }


def live_payload(f: Follow) -> LivePayload:
    return follow_payload(f.account_id, f.target_kind, f.target_id)


watch(Follow, "follow", {}, live_payload, on_new=True, on_delete=True)
