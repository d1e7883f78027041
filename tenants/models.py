from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from api.db import SharedBase, Timestamped
from api.ids import uuid7


class TenantStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Tenant(Timestamped, SharedBase):
    __tablename__ = "tenant"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended')", name="status"),
        CheckConstraint("locale IN ('zh-CN', 'en')", name="locale"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    slug: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    schema_name: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default=TenantStatus.ACTIVE, server_default="active"
    )
    plan: Mapped[str] = mapped_column(
        String(32), nullable=False, default="free", server_default="free"
    )
    # Admins must sign in with a second factor (TOTP).
    require_admin_totp: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default="false"
    )
    # Times are shown in this IANA zone, texts in this locale, amounts in this ISO 4217 currency.
    time_zone: Mapped[str] = mapped_column(
        String(64), nullable=False, default="Asia/Shanghai", server_default="Asia/Shanghai"
    )
    locale: Mapped[str] = mapped_column(
        String(8), nullable=False, default="zh-CN", server_default="zh-CN"
    )
    currency: Mapped[str] = mapped_column(
        String(3), nullable=False, default="CNY", server_default="CNY"
    )
    # The tenant's Stripe Connect account: its customers' payments are created on it.
    stripe_account_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The tenant's own Anju plan, paid through Stripe Billing (docs/payments.md).
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(64))
    # none, active, past_due, suspended (past due beyond the grace period), canceled
    billing_status: Mapped[str] = mapped_column(String(12), nullable=False, default="none")
    past_due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
