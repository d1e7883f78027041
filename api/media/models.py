"""Media of projects, unit types, units and listings: photos, videos, floor plans, 360 links
(public), and documents (private: contracts, ID scans, proofs of payment)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from api.db import TenantBase, utcnow
from api.ids import uuid7
from api.unit.models import _in


class MediaKind(enum.StrEnum):
    PHOTO = "photo"
    VIDEO = "video"
    FLOOR_PLAN = "floor_plan"
    VR = "vr"
    DOCUMENT = "document"


class MediaOwner(enum.StrEnum):
    PROJECT = "project"
    UNIT_TYPE = "unit_type"
    UNIT = "unit"
    LISTING = "listing"


class MediaVisibility(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


OWNER_KINDS = tuple(k.value for k in MediaOwner)
MEDIA_KINDS = tuple(k.value for k in MediaKind)
VISIBILITIES = tuple(v.value for v in MediaVisibility)


class Media(TenantBase):
    __tablename__ = "media"
    __table_args__ = (
        CheckConstraint(_in("owner_kind", OWNER_KINDS), name="owner_kind"),
        CheckConstraint(_in("kind", MEDIA_KINDS), name="kind"),
        CheckConstraint("(storage_key IS NULL) <> (link_url IS NULL)", name="source"),
        CheckConstraint(_in("visibility", VISIBILITIES), name="visibility"),
        CheckConstraint("kind <> 'document' OR visibility = 'private'", name="document_private"),
        Index("ix_media_owner", "owner_id", "kind", "position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    owner_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    # Stored bytes (a key in the storage backend), or an outside link (360 tours, video sites).
    storage_key: Mapped[str | None] = mapped_column(String(200))
    thumb_key: Mapped[str | None] = mapped_column(String(200))
    link_url: Mapped[str | None] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    size: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    caption: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    # Decided at upload: public (permanent URL) or private (signed links that expire).
    visibility: Mapped[str] = mapped_column(
        String(8), nullable=False, default="public", server_default="public"
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
