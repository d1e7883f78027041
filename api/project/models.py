from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.db import TenantBase, Timestamped
from api.ids import uuid7


class Project(Timestamped, TenantBase):
    __tablename__ = "project"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    city: Mapped[str] = mapped_column(String(100), nullable=False, default="", server_default="")
    district: Mapped[str] = mapped_column(
        String(100), nullable=False, default="", server_default=""
    )
    address: Mapped[str] = mapped_column(String(300), nullable=False, default="", server_default="")
    latitude: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    longitude: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    facilities: Mapped[list[str]] = mapped_column(
        ARRAY(String(50)), nullable=False, default=list, server_default="{}"
    )
    surroundings: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")

    buildings: Mapped[list[Building]] = relationship(back_populates="project", lazy="raise")


class Building(Timestamped, TenantBase):
    __tablename__ = "building"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        CheckConstraint("floors BETWEEN 1 AND 200", name="floors"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    floors: Mapped[int] = mapped_column(Integer, nullable=False)

    project: Mapped[Project] = relationship(back_populates="buildings", lazy="raise")
