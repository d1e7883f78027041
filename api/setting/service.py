"""Tenant settings, declared here with their type, bounds and default.

A tenant row exists only for a key its admin changed; reading returns the default otherwise."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import utcnow
from api.errors import ValidationFailed
from api.setting.models import Setting
from tenants.registry import TenantError, TenantInfo, set_preferences


@dataclass(frozen=True)
class Spec:
    key: str
    kind: type  # int, Decimal, or str (one of choices)
    default: Any
    low: Any
    high: Any
    description: str
    choices: tuple[str, ...] = ()

    def parse(self, raw: str) -> Any:
        if self.kind is str:
            choice = str(raw).strip()
            if choice not in self.choices:
                raise ValidationFailed(f"{self.key} is one of {', '.join(self.choices)}", self.key)
            return choice
        try:
            value = self.kind(raw)
        except (ValueError, InvalidOperation) as exc:
            raise ValidationFailed(f"{self.key} must be a {self.kind.__name__}", self.key) from exc
        if self.kind is Decimal:
            if not value.is_finite():
                raise ValidationFailed(f"{self.key} must be a number", self.key)
            value = Decimal(format(value, "f"))  # "1e1" is stored and shown as "10"
        if not self.low <= value <= self.high:
            raise ValidationFailed(
                f"{self.key} must be between {self.low} and {self.high}", self.key
            )
        return value


SPECS: dict[str, Spec] = {
    s.key: s
    for s in (
        Spec(
            "inventory.hold_minutes",
            int,
            30,
            5,
            7 * 24 * 60,
            "How long a hold keeps a unit for an agent, unless the hold names a shorter time",
        ),
        Spec(
            "inventory.max_discount_pct",
            Decimal,
            Decimal("3"),
            Decimal(0),
            Decimal(100),
            "A price decrease larger than this percentage waits for approval",
        ),
        Spec(
            "crm.neglect_days",
            int,
            7,
            1,
            365,
            "An open client with no contact and no follow-up planned for this many days "
            "returns to the shared pool",
        ),
        Spec(
            "crm.duplicates",
            str,
            "flag",
            None,
            None,
            "A new client with the phone or ID number of an existing one: flag (create it, "
            "marked as a duplicate), refuse (the first agent keeps the client), or merge "
            "(into the existing record when it is within the creator's scope, else flag)",
            choices=("flag", "refuse", "merge"),
        ),
        Spec(
            "payments.deposit_amount",
            int,
            2_000_000,
            100,
            10_000_000_000,
            "The deposit a buyer pays to reserve a unit, in minor units of the tenant's currency",
        ),
        Spec(
            "payments.refund_full_hours",
            int,
            24,
            0,
            24 * 90,
            "A reservation cancelled within this many hours of paying is refunded in full",
        ),
        Spec(
            "payments.refund_late_pct",
            int,
            50,
            0,
            100,
            "The part of the deposit refunded (percent) when a reservation is cancelled later",
        ),
        Spec(
            "sales.pledge_refund_pct",
            int,
            100,
            0,
            100,
            "The part of a paid pledge fee refunded (percent) when the pledge is withdrawn; the "
            "rest is kept",
        ),
        Spec(
            "sales.max_discount_pct",
            Decimal,
            Decimal("3"),
            Decimal(0),
            Decimal(100),
            "A subscription's discount larger than this percentage of the unit's list price "
            "waits for approval",
        ),
        Spec(
            "sales.sign_deadline_days",
            int,
            7,
            1,
            90,
            "Days a subscribed client has to sign the contract (until the end of the last day, "
            "in the company's time zone)",
        ),
        Spec(
            "sales.withdraw_refund_pct",
            int,
            0,
            0,
            100,
            "The part of the reservation's deposit refunded (percent) when a subscription is "
            "withdrawn (退房); the rest is kept",
        ),
        Spec(
            "sales.expire_overdue",
            str,
            "keep",
            None,
            None,
            "A subscription not signed by its deadline: keep (it stays active, shown as "
            "overdue) or expire (a job ends it as a withdrawal: the unit back on sale, the "
            "deposit refunded by sales.withdraw_refund_pct)",
            choices=("keep", "expire"),
        ),
        Spec(
            "sales.min_down_payment_pct",
            int,
            15,
            0,
            100,
            "The smallest down payment (percent of the price) of a payment plan with a "
            "mortgage (commercial, provident-fund or a combination)",
        ),
        Spec(
            "sales.attribution_window_hours",
            int,
            72,
            1,
            24 * 90,
            "Hours a channel's registration (报备) of a client protects it for that channel "
            "until the visit code is scanned; another channel registering the client meanwhile "
            "opens a dispute",
        ),
    )
}


def _decode(spec: Spec, stored: Any) -> Any:
    return spec.kind(str(stored))


async def get(session: AsyncSession, key: str) -> Any:
    spec = SPECS[key]
    stored = await session.scalar(select(Setting.value).where(Setting.key == key))
    return spec.default if stored is None else _decode(spec, stored)


async def get_all(session: AsyncSession) -> dict[str, Any]:
    rows: dict[str, Any] = dict((await session.execute(select(Setting.key, Setting.value))).all())
    return {
        key: (_decode(spec, rows[key]) if key in rows else spec.default)
        for key, spec in SPECS.items()
    }


async def update(
    session: AsyncSession, changes: dict[str, str], *, actor_id: uuid.UUID | None
) -> dict[str, Any]:
    """Validate every change first; store them all or none."""
    parsed: dict[str, Any] = {}
    for key, raw in changes.items():
        spec = SPECS.get(key)
        if spec is None:
            raise ValidationFailed(f"unknown setting '{key}'", "key")
        parsed[key] = spec.parse(raw)
    for key, value in parsed.items():
        stmt = insert(Setting).values(
            key=key,
            value=str(value) if isinstance(value, Decimal) else value,
            updated_at=utcnow(),
            updated_by=actor_id,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Setting.key],
            set_={
                "value": stmt.excluded.value,
                "updated_at": stmt.excluded.updated_at,
                "updated_by": stmt.excluded.updated_by,
            },
        )
        await session.execute(stmt)
    return await get_all(session)


async def set_regional(
    session: AsyncSession,
    tenant: TenantInfo,
    *,
    time_zone: str | None,
    locale: str | None,
    currency: str | None,
) -> TenantInfo:
    """Change the tenant's time zone, locale or currency (those given; kept in the tenants
    registry, see ``tenants.registry.set_preferences``). Returns the tenant as it now is."""
    try:
        values = await set_preferences(
            session, tenant.id, time_zone=time_zone, locale=locale, currency=currency
        )
    except TenantError as exc:
        raise ValidationFailed(exc.message, exc.field) from exc
    return replace(
        tenant,
        time_zone=values.get("time_zone", tenant.time_zone),
        locale=values.get("locale", tenant.locale),
        currency=values.get("currency", tenant.currency),
    )
