"""Devices, the inbox and notification preferences, for the signed-in member (own data only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON

from api.errors import ValidationFailed
from api.graphql.errors import AuthError, PermissionDeniedError, ValidationError, attempt
from api.graphql.permissions import Authenticated, requires
from api.graphql.types import parse_id
from api.notify import service
from api.notify.models import App, NotificationCategory, Platform
from api.notify.models import Device as DeviceRow
from api.notify.models import Notification as NotificationRow

# The domain's enums are the GraphQL enums (strawberry.enum registers the class itself).
strawberry.enum(App, name="App")
strawberry.enum(Platform, name="Platform")
strawberry.enum(
    NotificationCategory,
    name="NotificationCategory",
    description="What a notification is about; preferences are per category.",
)


@strawberry.type(description="An app installation that receives pushes.")
class Device:
    id: strawberry.ID
    app: App
    platform: Platform
    locale: str
    app_version: str
    last_seen_at: datetime

    @classmethod
    def of(cls, r: DeviceRow) -> Device:
        return cls(
            id=strawberry.ID(str(r.id)),
            app=App(r.app),
            platform=Platform(r.platform),
            locale=r.locale,
            app_version=r.app_version,
            last_seen_at=r.last_seen_at,
        )


@strawberry.type(description="A notification in your inbox.")
class Notification:
    id: strawberry.ID
    category: NotificationCategory
    urgent: bool
    title: str
    body: str
    data: JSON = strawberry.field(description="Where the app goes: {kind, id}.")
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, r: NotificationRow) -> Notification:
        return cls(
            id=strawberry.ID(str(r.id)),
            category=NotificationCategory(r.category),
            urgent=r.urgent,
            title=r.title,
            body=r.body,
            data=JSON(r.data or {}),
            created_at=r.created_at,
            read_at=r.read_at,
        )


@strawberry.type
class Inbox:
    items: list[Notification]
    has_more: bool
    unread_count: int


@strawberry.type
class CategoryPreference:
    category: NotificationCategory
    push: bool
    email: bool
    sms: bool


@strawberry.type(description="Non-urgent pushes wait until the end (times in your time zone).")
class QuietHours:
    start: str = strawberry.field(description="HH:MM")
    end: str = strawberry.field(description="HH:MM")
    time_zone: str


@strawberry.type
class NotificationSettings:
    categories: list[CategoryPreference]
    quiet_hours: QuietHours | None


@strawberry.input
class RegisterDeviceInput:
    app: App
    platform: Platform
    token: str = strawberry.field(default="", description="The FCM registration token.")
    installation_id: str = strawberry.field(
        default="", description="The Firebase installation ID (alone: FCM addresses it)."
    )
    locale: str = "zh-CN"
    app_version: str = ""


@strawberry.input
class CategoryPreferenceInput:
    category: NotificationCategory
    push: bool
    email: bool = False
    sms: bool = False


@strawberry.input
class QuietHoursInput:
    start: str = strawberry.field(description="HH:MM")
    end: str = strawberry.field(description="HH:MM")
    time_zone: str | None = strawberry.field(
        default=None, description="An IANA time zone name; default: the tenant's."
    )


@strawberry.input
class NotificationSettingsInput:
    categories: list[CategoryPreferenceInput] = strawberry.field(default_factory=list)
    quiet_hours: QuietHoursInput | None = strawberry.field(
        default=None, description="Set them; see clearQuietHours to remove them."
    )
    clear_quiet_hours: bool = False


@strawberry.type
class DevicePayload:
    device: Device


@strawberry.type
class DoneCount:
    count: int
    unread_count: int


@strawberry.type
class NotificationSettingsPayload:
    settings: NotificationSettings


@strawberry.input
class PublishNoticeInput:
    title: str
    text: str
    roles: list[str] = strawberry.field(
        default_factory=list, description="Only members with one of these roles (empty: all)."
    )
    urgent: bool = strawberry.field(default=False, description="Pushed even in quiet hours.")


@strawberry.type(description="The notice is on its way (sent by the job worker).")
class NoticePayload:
    recipients: int


DeviceResult = Annotated[
    DevicePayload | ValidationError | AuthError, strawberry.union("DeviceResult")
]
NoticeResult = Annotated[
    NoticePayload | ValidationError | PermissionDeniedError | AuthError,
    strawberry.union("NoticeResult"),
]
SettingsResult = Annotated[
    NotificationSettingsPayload | ValidationError | AuthError,
    strawberry.union("NotificationSettingsResult"),
]


def _minute(value: str, field: str) -> int:
    try:
        hh, mm = value.split(":")
        h, m = int(hh), int(mm)
    except ValueError as exc:
        raise ValidationFailed("a time of day is HH:MM", field) from exc
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValidationFailed("a time of day is HH:MM", field)
    return h * 60 + m


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


async def _settings(session: AsyncSession, account_id: uuid.UUID) -> NotificationSettings:
    chosen = await service.preferences(session, account_id)
    q = await service.quiet_hours(session, account_id)
    return NotificationSettings(
        categories=[
            CategoryPreference(
                category=NotificationCategory(c), push=v.push, email=v.email, sms=v.sms
            )
            for c, v in chosen.items()
        ],
        quiet_hours=QuietHours(
            start=_hhmm(q.start_minute), end=_hhmm(q.end_minute), time_zone=q.time_zone
        )
        if q
        else None,
    )


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[Authenticated], description="Your inbox, newest first.")
    async def inbox(
        self,
        info: strawberry.Info,
        first: int = 20,
        before: strawberry.ID | None = None,
        unread_only: bool = False,
    ) -> Inbox:
        p = info.context.principal_now()
        session = info.context.session
        page = await service.inbox(
            session,
            p.account_id,
            first=max(1, min(first, 100)),
            before=parse_id(before) if before else None,
            unread_only=unread_only,
        )
        return Inbox(
            items=[Notification.of(r) for r in page.items],
            has_more=page.has_more,
            unread_count=await service.unread_count(session, p.account_id),
        )

    @strawberry.field(permission_classes=[Authenticated])
    async def notification_settings(self, info: strawberry.Info) -> NotificationSettings:
        return await _settings(info.context.session, info.context.principal_now().account_id)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[Authenticated],
        description="Register this device for pushes (again after a token refresh).",
    )
    async def register_device(
        self, info: strawberry.Info, input: RegisterDeviceInput
    ) -> DeviceResult:
        p = info.context.principal_now()

        async def work() -> DevicePayload:
            row = await service.register_device(
                info.context.session,
                p.account_id,
                app=input.app.value,
                platform=input.platform.value,
                token=input.token,
                installation_id=input.installation_id,
                locale=input.locale,
                app_version=input.app_version,
            )
            return DevicePayload(device=Device.of(row))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[Authenticated], description="At sign-out: this token gets no pushes."
    )
    async def unregister_device(self, info: strawberry.Info, token: str) -> bool:
        p = info.context.principal_now()
        return await service.unregister_device(info.context.session, p.account_id, token)

    @strawberry.mutation(
        permission_classes=[Authenticated],
        description="Mark notifications read (no ids: all of them).",
    )
    async def mark_notifications_read(
        self, info: strawberry.Info, ids: list[strawberry.ID] | None = None
    ) -> DoneCount:
        p = info.context.principal_now()
        session = info.context.session
        parsed = None if ids is None else [i for i in (parse_id(x) for x in ids[:500]) if i]
        n = await service.mark_read(session, p.account_id, parsed)
        return DoneCount(count=n, unread_count=await service.unread_count(session, p.account_id))

    @strawberry.mutation(permission_classes=[Authenticated])
    async def update_notification_settings(
        self, info: strawberry.Info, input: NotificationSettingsInput
    ) -> SettingsResult:
        p = info.context.principal_now()
        session = info.context.session

        async def work() -> NotificationSettingsPayload:
            quiet = None
            if input.quiet_hours is not None and not input.clear_quiet_hours:
                q = input.quiet_hours  # checked before anything is written
                quiet = (
                    _minute(q.start, "quietHours.start"),
                    _minute(q.end, "quietHours.end"),
                    q.time_zone or info.context.tenant.time_zone,
                )
                service.check_quiet_hours(*quiet)
            for c in input.categories:
                await service.set_preference(
                    session, p.account_id, c.category.value, push=c.push, email=c.email, sms=c.sms
                )
            if input.clear_quiet_hours:
                await service.set_quiet_hours(session, p.account_id, None, None)
            elif quiet is not None:
                await service.set_quiet_hours(session, p.account_id, *quiet)
            return NotificationSettingsPayload(settings=await _settings(session, p.account_id))

        result, error = await attempt(info.context.session, work)
        return error or result

    @strawberry.mutation(
        permission_classes=[requires("notice.publish")],
        description="Publish a notice to the tenant's members: in every inbox, and pushed.",
    )
    async def publish_notice(
        self, info: strawberry.Info, input: PublishNoticeInput
    ) -> NoticeResult:
        ctx = info.context

        async def work() -> NoticePayload:
            notice = service.check_notice(input.title, input.text, input.roles, urgent=input.urgent)
            recipients = await service.queue_notice(ctx.session, ctx.tenant, notice)
            return NoticePayload(recipients=recipients)

        result, error = await attempt(ctx.session, work)
        return error or result
