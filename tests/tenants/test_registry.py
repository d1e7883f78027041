"""Slug rules, schema names and the per-process tenant cache."""

from __future__ import annotations

import types

import pytest

from tenants import registry
from tenants.models import TenantStatus
from tenants.registry import (
    RESERVED_SLUGS,
    InvalidSlug,
    TenantCache,
    TenantError,
    schema_for,
    set_status,
    validate_slug,
)
from tests.conftest import unique_slug

# ---------------------------------------------------------------- slugs


@pytest.mark.parametrize(
    "slug",
    ["abc", "acme", "acme-realty", "a-1-b-2", "x" * 40, "sunrise-homes-2024", "a0b", "a12"],
    ids=lambda s: s if len(s) < 20 else f"len{len(s)}",
)
def test_valid_slugs_are_returned_unchanged(slug):
    assert validate_slug(slug) == slug


@pytest.mark.parametrize(
    ("slug", "words"),
    [
        ("", "required"),
        ("ab", "3 to 40"),
        ("x" * 41, "3 to 40"),
        ("Acme", "lowercase"),
        ("ACME-REALTY", "lowercase"),
        ("1acme", "start with a letter"),
        ("-acme", "start with a letter"),
        ("acme-", "not end with a hyphen"),
        ("ac--me", "single hyphens"),
        ("ac_me", "a-z, 0-9"),
        ("ac.me", "a-z, 0-9"),
        ("ac me", "a-z, 0-9"),
        ("café", "a-z, 0-9"),
        ("acme/../x", "a-z, 0-9"),
        ('ac"me', "a-z, 0-9"),
    ],
)
def test_invalid_slugs_say_why(slug, words):
    with pytest.raises(InvalidSlug) as info:
        validate_slug(slug)
    err = info.value
    assert err.field == "slug"
    assert words in err.message
    assert str(err) == err.message
    assert err.code == "BAD_USER_INPUT"
    assert isinstance(err, TenantError)


def test_length_message_reports_the_length():
    with pytest.raises(InvalidSlug, match=r"\(got 41\)"):
        validate_slug("a" * 41)
    with pytest.raises(InvalidSlug, match=r"\(got 2\)"):
        validate_slug("ab")


@pytest.mark.parametrize("value", [None, 123, b"acme"])
def test_non_string_slug_is_required_error(value):
    with pytest.raises(InvalidSlug, match="slug is required") as info:
        validate_slug(value)
    assert info.value.field == "slug"


@pytest.mark.parametrize(
    "slug", ["www", "admin", "shared", "api", "graphql", "public", "postgres", "anju", "status"]
)
def test_reserved_slugs_are_refused(slug):
    assert slug in RESERVED_SLUGS
    with pytest.raises(InvalidSlug, match=f"'{slug}' is reserved") as info:
        validate_slug(slug)
    assert info.value.field == "slug"


def test_reserved_check_is_exact_not_prefix():
    assert validate_slug("www-homes") == "www-homes"
    assert validate_slug("admins") == "admins"


@pytest.mark.parametrize("slug", ["acme\n", "acme-realty\n"])
def test_trailing_newline_is_refused(slug):
    with pytest.raises(InvalidSlug):
        validate_slug(slug)


# ---------------------------------------------------------------- schema names


@pytest.mark.parametrize(
    ("slug", "schema"),
    [
        ("acme", "t_acme"),
        ("acme-realty", "t_acme_realty"),
        ("a-b-c-1", "t_a_b_c_1"),
        ("x" * 40, "t_" + "x" * 40),
    ],
)
def test_schema_for_maps_hyphens_to_underscores(slug, schema):
    assert schema_for(slug) == schema
    assert len(schema) <= 63  # PostgreSQL identifier limit


@pytest.mark.parametrize("slug", ["ac_me", "Acme", "www", "ab"])
def test_schema_for_validates(slug):
    with pytest.raises(InvalidSlug):
        schema_for(slug)


# ---------------------------------------------------------------- cache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """Replace the clock the registry module sees (not the global one the event loop uses)."""
    fake = FakeClock()
    monkeypatch.setattr(registry, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


async def test_cache_returns_cached_info_within_ttl(engine, make_tenant, clock):
    tenant = await make_tenant()
    cache = TenantCache(engine, ttl=5.0)
    first = await cache.get(tenant.slug)
    assert first == tenant
    assert first.active

    await set_status(engine, tenant.slug, TenantStatus.SUSPENDED)
    clock.now += 4.9
    assert (await cache.get(tenant.slug)).status == TenantStatus.ACTIVE  # still cached

    clock.now += 0.2  # TTL over: read again
    again = await cache.get(tenant.slug)
    assert again.status == TenantStatus.SUSPENDED
    assert not again.active


async def test_cache_rereads_after_invalidate(engine, make_tenant, clock):
    tenant = await make_tenant()
    other = await make_tenant()
    cache = TenantCache(engine, ttl=60.0)
    assert (await cache.get(tenant.slug)).active
    assert (await cache.get(other.slug)).active

    await set_status(engine, tenant.slug, TenantStatus.SUSPENDED)
    await set_status(engine, other.slug, TenantStatus.SUSPENDED)
    assert (await cache.get(tenant.slug)).active

    cache.invalidate(tenant.slug)
    assert (await cache.get(tenant.slug)).status == TenantStatus.SUSPENDED
    assert (await cache.get(other.slug)).active  # only the named slug was dropped

    cache.invalidate()  # everything
    assert (await cache.get(other.slug)).status == TenantStatus.SUSPENDED
    cache.invalidate("never-seen")  # no error for a slug not in the cache


async def test_cache_remembers_unknown_slugs_as_none(engine, clock):
    slug = unique_slug("late")
    cache = TenantCache(engine, ttl=60.0)
    assert await cache.get(slug) is None

    from tenants.provisioning import create_tenant

    created = (await create_tenant(engine, slug, "Late Realty")).tenant
    assert await cache.get(slug) is None  # the miss is cached too

    cache.invalidate(slug)
    assert await cache.get(slug) == created


async def test_cache_with_zero_ttl_always_reads(engine, make_tenant, clock):
    tenant = await make_tenant()
    cache = TenantCache(engine, ttl=0.0)
    assert (await cache.get(tenant.slug)).active
    await set_status(engine, tenant.slug, TenantStatus.SUSPENDED)
    assert (await cache.get(tenant.slug)).status == TenantStatus.SUSPENDED


async def test_set_status_unknown_slug_raises_not_found(engine):
    from tenants.registry import TenantNotFound

    with pytest.raises(TenantNotFound, match="no tenant with slug") as info:
        await set_status(engine, unique_slug("ghost"), TenantStatus.SUSPENDED)
    assert info.value.code == "NOT_FOUND"
    assert info.value.field == "slug"


async def test_a_full_cache_drops_its_expired_entries_first(
    engine, make_tenant, clock, monkeypatch
):
    import tenants.registry

    monkeypatch.setattr(tenants.registry, "CACHE_MAX", 3)
    a, b, c, d = [await make_tenant() for _ in range(4)]
    cache = TenantCache(engine, ttl=60.0)
    await cache.get(a.slug)
    await cache.get(b.slug)
    clock.now += 30
    await cache.get(c.slug)
    await set_status(engine, c.slug, TenantStatus.SUSPENDED)
    clock.now += 31  # a and b expired, c not
    await cache.get(d.slug)  # full: the expired go, c stays
    assert (await cache.get(c.slug)).active  # still the cached answer
    assert set(cache._entries) == {c.slug, d.slug}


async def test_a_primed_cache_answers_without_reading_and_expires_spread(
    engine, make_tenant, clock
):
    from tenants.registry import list_tenants

    a, b = await make_tenant(), await make_tenant()
    cache = TenantCache(engine, ttl=60.0)
    generation = cache.generation
    registry = await list_tenants(engine)
    assert cache.prime(registry, generation) == len(registry)
    await set_status(engine, a.slug, TenantStatus.SUSPENDED)
    assert (await cache.get(a.slug)).active  # from the primed entry, not the registry
    # every entry expires within the second half of the TTL
    expiries = [at - clock.now for at, _ in cache._entries.values()]
    assert all(30.0 <= e <= 60.0 for e in expiries)
    clock.now += 60.1
    assert not (await cache.get(a.slug)).active
    assert (await cache.get(b.slug)).active


async def test_priming_after_an_invalidation_stores_nothing(engine, make_tenant, clock):
    from tenants.registry import list_tenants

    a = await make_tenant()
    cache = TenantCache(engine, ttl=60.0)
    generation = cache.generation
    registry = await list_tenants(engine)  # read before the suspension below
    await set_status(engine, a.slug, TenantStatus.SUSPENDED)
    cache.invalidate(a.slug)  # what suspending through this process does
    assert cache.prime(registry, generation) == 0
    assert not (await cache.get(a.slug)).active


async def test_priming_keeps_the_entries_already_read(engine, make_tenant, clock):
    from tenants.registry import list_tenants

    a = await make_tenant()
    cache = TenantCache(engine, ttl=60.0)
    generation = cache.generation
    registry = await list_tenants(engine)
    await set_status(engine, a.slug, TenantStatus.SUSPENDED)
    assert not (await cache.get(a.slug)).active  # read after the suspension
    cache.prime(registry, generation)
    assert not (await cache.get(a.slug)).active  # not replaced by the older list
    assert TenantCache(engine, ttl=0.0).prime(registry, 0) == 0  # no cache, nothing kept
