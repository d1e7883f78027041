"""Devices, the notification inbox, deliveries per channel, and preferences (tenant schema)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db import JsonObject, TenantBase, utcnow
from api.ids import uuid7
from api.unit.models import _in


class App(enum.StrEnum):
    AGENT = "agent"
    OWNER = "owner"
    STAFF = "staff"


class Platform(enum.StrEnum):
    IOS = "ios"
    ANDROID = "android"
    WEB = "web"


class NotificationCategory(enum.StrEnum):
    """What a notification is about; preferences are per category."""

    LEADS = "leads"
    LISTING_UPDATES = "listing_updates"
    PAYMENTS = "payments"
    PROPERTY_NOTICES = "property_notices"
    MARKETING = "marketing"
    SYSTEM = "system"


APPS = tuple(a.value for a in App)
PLATFORMS = tuple(p.value for p in Platform)
CATEGORIES = tuple(c.value for c in NotificationCategory)
CHANNELS = ("push", "email", "sms")
# pending: to send (at next_attempt_at); deferred: quiet hours, sent at next_attempt_at;
# sent; collapsed: throttled, in the inbox only; dropped: the device's token is gone;
# failed: gave up; skipped: no device / address, or the channel is off.
STATUSES = ("pending", "deferred", "sent", "collapsed", "dropped", "failed", "skipped")


class Device(TenantBase):
    __tablename__ = "device"
    __table_args__ = (
        CheckConstraint(_in("app", APPS), name="app"),
        CheckConstraint(_in("platform", PLATFORMS), name="platform"),
        Index("uq_device_token", "token", unique=True),
        Index("ix_device_account", "account_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    app: Mapped[str] = mapped_column(String(10), nullable=False)
    platform: Mapped[str] = mapped_column(String(10), nullable=False)
    # Where FCM sends: a registration token, or (is_fid) the Firebase installation ID itself.
    token: Mapped[str] = mapped_column(String(4096), nullable=False)
    is_fid: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    installation_id: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    locale: Mapped[str] = mapped_column(String(10), nullable=False, default="zh-CN")
    app_version: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class Notification(TenantBase):
    __tablename__ = "notification"
    __table_args__ = (
        CheckConstraint(_in("category", CATEGORIES), name="category"),
        Index("ix_notification_account", "account_id", "id"),
        Index("ix_notification_unread", "account_id", postgresql_where="read_at IS NULL"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    category: Mapped[str] = mapped_column(String(20), nullable=False)
    urgent: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    template: Mapped[str] = mapped_column(String(50), nullable=False)
    params: Mapped[JsonObject] = mapped_column(JSONB, nullable=False, default=dict)
    locale: Mapped[str] = mapped_column(String(10), nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    # Where the app goes when the notification is opened: {"kind": "unit", "id": "..."}.
    data: Mapped[JsonObject] = mapped_column(JSONB, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Delivery(TenantBase):
    __tablename__ = "notification_delivery"
    __table_args__ = (
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("status", STATUSES), name="status"),
        Index("ix_notification_delivery_notification", "notification_id"),
        Index(
            "ix_notification_delivery_due",
            "next_attempt_at",
            postgresql_where="status IN ('pending', 'deferred')",
        ),
        Index(
            "ix_notification_delivery_throttle",
            "account_id",
            "category",
            "sent_at",
            postgresql_where="channel = 'push' AND status = 'sent'",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notification.id", ondelete="CASCADE"), nullable=False
    )
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    category: Mapped[str] = mapped_column(String(20), nullable=False)
    channel: Mapped[str] = mapped_column(String(8), nullable=False)
    device_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(String(300), nullable=False, default="")


class Preference(TenantBase):
    """One account's channels for one category (no row: the category's defaults)."""

    __tablename__ = "notification_preference"
    __table_args__ = (CheckConstraint(_in("category", CATEGORIES), name="category"),)

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    push: Mapped[bool] = mapped_column(Boolean, nullable=False)
    email: Mapped[bool] = mapped_column(Boolean, nullable=False)
    sms: Mapped[bool] = mapped_column(Boolean, nullable=False)


class QuietHours(TenantBase):
    """An account's quiet hours in its time zone (minutes after midnight; start > end spans
    midnight). Non-urgent pushes wait until the end."""

    __tablename__ = "notification_quiet_hours"

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    start_minute: Mapped[int] = mapped_column(Integer, nullable=False)
    end_minute: Mapped[int] = mapped_column(Integer, nullable=False)
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False, default="Asia/Shanghai")
