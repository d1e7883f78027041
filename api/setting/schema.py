"""Tenant settings over GraphQL (tenant admins)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import strawberry

from api.graphql.errors import (
    AuthError,
    PermissionDeniedError,
    ValidationError,
    attempt,
)
from api.graphql.permissions import Authenticated, requires
from api.setting import service
from tenants.registry import TenantInfo


@strawberry.type(
    description="One tenant setting: its current value, its default and what it accepts "
    "(a form can be drawn from kind, min, max and choices)."
)
class TenantSetting:
    key: str
    value: str
    default: str
    description: str
    kind: str = strawberry.field(
        description="int (a whole number), decimal (a number with a fraction), or choice "
        "(one of choices)."
    )
    min: str | None = strawberry.field(description="The lowest value accepted (not for choice).")
    max: str | None = strawberry.field(description="The highest value accepted (not for choice).")
    choices: list[str] = strawberry.field(description="The values a choice accepts (else empty).")


_KINDS = {int: "int", Decimal: "decimal", str: "choice"}


def _settings(values: dict[str, Any]) -> list[TenantSetting]:
    return [
        TenantSetting(
            key=k,
            value=str(v),
            default=str(spec.default),
            description=spec.description,
            kind=_KINDS[spec.kind],
            min=None if spec.low is None else str(spec.low),
            max=None if spec.high is None else str(spec.high),
            choices=list(spec.choices),
        )
        for k, v in values.items()
        for spec in (service.SPECS[k],)
    ]


@strawberry.input
class SettingChange:
    key: str
    value: str


@strawberry.type
class TenantSettingsPayload:
    settings: list[TenantSetting]


UpdateTenantSettingsResult = Annotated[
    TenantSettingsPayload | ValidationError | PermissionDeniedError | AuthError,
    strawberry.union("UpdateTenantSettingsResult"),
]


@strawberry.type(
    description="Where the tenant works: times are shown in its time zone (bills' due dates, "
    "receipts, the agent's day, reminders, listing expiry), texts in its locale when a "
    "member's device names none, amounts in its currency."
)
class RegionalSettings:
    time_zone: str = strawberry.field(description="An IANA time zone name (Asia/Shanghai).")
    locale: str = strawberry.field(description="zh-CN or en.")
    currency: str = strawberry.field(description="An ISO 4217 code (CNY).")

    @classmethod
    def of(cls, t: TenantInfo) -> RegionalSettings:
        return cls(time_zone=t.time_zone, locale=t.locale, currency=t.currency)


@strawberry.input(description="The regional settings to change; those left out stay.")
class RegionalSettingsInput:
    time_zone: str | None = None
    locale: str | None = None
    currency: str | None = None


UpdateRegionalSettingsResult = Annotated[
    RegionalSettings | ValidationError | PermissionDeniedError | AuthError,
    strawberry.union("UpdateRegionalSettingsResult"),
]


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[Authenticated],
        description="The tenant's time zone, locale and currency.",
    )
    def regional_settings(self, info: strawberry.Info) -> RegionalSettings:
        return RegionalSettings.of(info.context.tenant)

    @strawberry.field(permission_classes=[requires("tenant.manage")])
    async def tenant_settings(self, info: strawberry.Info) -> list[TenantSetting]:
        return _settings(await service.get_all(info.context.session))


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[requires("tenant.manage")])
    async def update_tenant_settings(
        self, info: strawberry.Info, changes: list[SettingChange]
    ) -> UpdateTenantSettingsResult:
        principal = await info.context.principal()

        async def work() -> TenantSettingsPayload:
            values = await service.update(
                info.context.session,
                {c.key: c.value for c in changes},
                actor_id=principal.account_id,
            )
            return TenantSettingsPayload(settings=_settings(values))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("tenant.manage")],
        description="Change the tenant's time zone, locale or currency.",
    )
    async def update_regional_settings(
        self, info: strawberry.Info, input: RegionalSettingsInput
    ) -> UpdateRegionalSettingsResult:
        ctx = info.context
        tenant, error = await attempt(
            ctx.session,
            lambda: service.set_regional(
                ctx.session,
                ctx.tenant,
                time_zone=input.time_zone,
                locale=input.locale,
                currency=input.currency,
            ),
        )
        if error:
            return error
        ctx.tenant_changed()
        return RegionalSettings.of(tenant)
