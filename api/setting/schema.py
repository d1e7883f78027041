"""Tenant settings over GraphQL (tenant admins)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.errors import DomainError
from api.graphql.errors import AuthError, PermissionDeniedError, ValidationError, user_error
from api.graphql.permissions import requires
from api.setting import service


@strawberry.type(description="One tenant setting: its current value and its default.")
class TenantSetting:
    key: str
    value: str
    default: str
    description: str


def _settings(values: dict) -> list[TenantSetting]:
    return [
        TenantSetting(key=k, value=str(v), default=str(service.SPECS[k].default),
                      description=service.SPECS[k].description)
        for k, v in values.items()
    ]  # fmt: skip


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


@strawberry.type
class Query:
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
        try:
            values = await service.update(
                info.context.session, {c.key: c.value for c in changes},
                actor_id=principal.account_id,
            )  # fmt: skip
        except DomainError as exc:
            return user_error(exc)
        return TenantSettingsPayload(settings=_settings(values))
