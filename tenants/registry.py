"""The tenant registry in the ``shared`` schema, slug rules, and a per-process lookup cache."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from api.money import valid_currency
from tenants.models import Tenant, TenantStatus

SLUG_RE = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")  # use fullmatch
RESERVED_SLUGS = frozenset(
    {
        "admin",
        "api",
        "app",
        "apps",
        "assets",
        "auth",
        "billing",
        "cdn",
        "console",
        "dashboard",
        "docs",
        "graphql",
        "help",
        "internal",
        "login",
        "mail",
        "metrics",
        "public",
        "root",
        "shared",
        "signup",
        "static",
        "status",
        "support",
        "system",
        "template",
        "test",
        "webhooks",
        "www",
        "anju",
        "postgres",
        "pg",
        "private",  # media keys: a tenant's public files would land under the private prefix
    }
)


class TenantError(Exception):
    """A tenant operation refused with a clear reason; ``code`` is one of the API error codes."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidSlug(TenantError):
    pass


class SlugTaken(TenantError):
    code = "CONFLICT"


class TenantNotFound(TenantError):
    code = "NOT_FOUND"


def validate_slug(slug: str) -> str:
    """Return the slug when it is valid, else raise InvalidSlug saying why."""
    if not isinstance(slug, str) or not slug:
        raise InvalidSlug("slug is required", "slug")
    if not 3 <= len(slug) <= 40:
        raise InvalidSlug(f"slug must be 3 to 40 characters long (got {len(slug)})", "slug")
    if slug != slug.lower():
        raise InvalidSlug("slug must be lowercase", "slug")
    if "--" in slug or not SLUG_RE.fullmatch(slug):
        raise InvalidSlug(
            "slug may contain only a-z, 0-9 and single hyphens, start with a letter "
            "and not end with a hyphen",
            "slug",
        )
    if slug in RESERVED_SLUGS:
        raise InvalidSlug(f"slug '{slug}' is reserved", "slug")
    return slug


DEFAULT_TIME_ZONE, DEFAULT_LOCALE, DEFAULT_CURRENCY = "Asia/Shanghai", "zh-CN", "CNY"
LOCALES = ("zh-CN", "en")
# Files of the zoneinfo directory that are not IANA zones: ``localtime`` is the server's own.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def validate_time_zone(name: str) -> str:
    """An IANA time zone name (``America/Los_Angeles``) that zoneinfo knows, else TenantError."""
    name = (name or "").strip()
    try:
        if name in _NOT_ZONES or len(name) > 64:
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise TenantError(
            f"unknown time zone {name[:64]!r}: an IANA name like Asia/Shanghai", "timeZone"
        ) from exc
    return name


def validate_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise TenantError(f"locale is one of {', '.join(LOCALES)}", "locale")
    return locale


def validate_currency(code: str) -> str:
    code = (code or "").strip().upper()
    if not valid_currency(code):
        raise TenantError(f"unknown currency {code!r}: an ISO 4217 code like CNY", "currency")
    return code


def schema_for(slug: str) -> str:
    """Schema name of a tenant: ``t_`` + slug with hyphens as underscores (slugs hold no
    underscores, so two slugs never share a schema)."""
    return "t_" + validate_slug(slug).replace("-", "_")


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """What a request needs to know about its tenant (immutable, safe to cache)."""

    id: str
    slug: str
    name: str
    schema_name: str
    status: str
    plan: str
    require_admin_totp: bool = False
    time_zone: str = DEFAULT_TIME_ZONE
    locale: str = DEFAULT_LOCALE
    currency: str = DEFAULT_CURRENCY

    @property
    def active(self) -> bool:
        return self.status == TenantStatus.ACTIVE

    @property
    def zone(self) -> ZoneInfo:
        """The tenant's time zone (zoneinfo caches each zone once per process)."""
        return ZoneInfo(self.time_zone)

    def today(self, now: datetime | None = None) -> date:
        """The tenant's calendar date at ``now`` (default: this instant)."""
        return (now or datetime.now(UTC)).astimezone(self.zone).date()

    def midnight(self, day: date) -> datetime:
        """The instant (in UTC) the tenant's calendar day ``day`` begins."""
        return datetime.combine(day, clock(0), tzinfo=self.zone).astimezone(UTC)


_COLUMNS = (
    Tenant.id,
    Tenant.slug,
    Tenant.name,
    Tenant.schema_name,
    Tenant.status,
    Tenant.plan,
    Tenant.require_admin_totp,
    Tenant.time_zone,
    Tenant.locale,
    Tenant.currency,
)


def _info(row: Row[*tuple[Any, ...]]) -> TenantInfo:
    return TenantInfo(str(row[0]), *row[1:])


async def get_tenant(engine: AsyncEngine, slug: str) -> TenantInfo | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(*_COLUMNS).where(Tenant.slug == slug))).first()
    return _info(row) if row else None


async def list_tenants(engine: AsyncEngine) -> list[TenantInfo]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(*_COLUMNS).order_by(Tenant.slug))).all()
    return [_info(r) for r in rows]


async def set_require_admin_totp(
    engine_or_conn: AsyncConnection | AsyncSession, tenant_id: str, required: bool
) -> None:
    await engine_or_conn.execute(
        update(Tenant).where(Tenant.id == tenant_id).values(require_admin_totp=required)
    )


async def set_preferences(
    engine_or_conn: AsyncConnection | AsyncSession,
    tenant_id: str,
    *,
    time_zone: str | None = None,
    locale: str | None = None,
    currency: str | None = None,
) -> dict[str, str]:
    """Validate and store the tenant's time zone, locale and currency (those given); returns
    the stored values. Raises TenantError naming the field."""
    values: dict[str, str] = {}
    if time_zone is not None:
        values["time_zone"] = validate_time_zone(time_zone)
    if locale is not None:
        values["locale"] = validate_locale(locale)
    if currency is not None:
        values["currency"] = validate_currency(currency)
    if values:
        await engine_or_conn.execute(update(Tenant).where(Tenant.id == tenant_id).values(**values))
    return values


async def set_status(engine: AsyncEngine, slug: str, status: TenantStatus) -> TenantInfo:
    async with engine.begin() as conn:
        res = await conn.execute(
            update(Tenant).where(Tenant.slug == slug).values(status=status).returning(*_COLUMNS)
        )
        row = res.first()
    if row is None:
        raise TenantNotFound(f"no tenant with slug '{slug}'", "slug")
    return _info(row)


CACHE_MAX = 100_000  # tenants a process keeps resolved (tens of bytes each)


class TenantCache:
    """Slug -> TenantInfo (or None for unknown) with a short TTL, one per gateway process.

    Suspending a tenant takes effect in other processes within ``ttl`` seconds; in this process
    ``invalidate`` makes it immediate."""

    def __init__(self, engine: AsyncEngine, ttl: float):
        self.engine = engine
        self.ttl = ttl
        self._entries: dict[str, tuple[float, TenantInfo | None]] = {}
        self._invalidations = 0  # counts invalidate() calls (see prime)

    @property
    def generation(self) -> int:
        """Changes with every ``invalidate``: take it before reading the registry for ``prime``."""
        return self._invalidations

    def prime(self, tenants: Iterable[TenantInfo], generation: int) -> int:
        """Fill the cache with ``tenants`` read from the registry (the warm-up's list, so that
        the first request of each tenant after a start does not read it again). Entries expire
        spread over the second half of the TTL, not all at once. Nothing is stored if the cache
        was invalidated since ``generation`` was taken (the list may predate a suspension), and
        entries already present are kept. Returns the entries added."""
        if self.ttl <= 0 or generation != self._invalidations:
            return 0
        now = time.monotonic()
        added = 0
        for info in tenants:
            if info.slug in self._entries or len(self._entries) >= CACHE_MAX:
                continue
            jitter = self.ttl * (0.5 + 0.5 * (hash(info.slug) % 1000) / 1000)
            self._entries[info.slug] = (now + jitter, info)
            added += 1
        return added

    async def get(self, slug: str) -> TenantInfo | None:
        now = time.monotonic()
        hit = self._entries.get(slug)
        if hit is not None and hit[0] > now:
            return hit[1]
        info = await get_tenant(self.engine, slug)
        if self.ttl > 0:
            if len(self._entries) >= CACHE_MAX:
                # Expired entries go first; only a registry larger than the bound empties it.
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= CACHE_MAX:
                    self._entries.clear()
            self._entries[slug] = (now + self.ttl, info)
        return info

    def invalidate(self, slug: str | None = None) -> None:
        self._invalidations += 1
        if slug is None:
            self._entries.clear()
        else:
            self._entries.pop(slug, None)
