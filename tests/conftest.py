"""Test fixtures: a real PostgreSQL (embedded by default, ANJU_TEST_DATABASE_URL for a server),
a fresh database per run migrated with Alembic, tenant factories and a live uvicorn server."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db import ensure_database, make_engine, server_url
from api.http import UVICORN_OPTIONS
from api.logging import configure_logging
from api.security.kit import SecurityKit, build_kit
from api.settings import Settings
from tenants.migrate import upgrade_shared
from tenants.provisioning import create_tenant
from tenants.registry import TenantInfo
from tenants.sessions import TenantDatabase
from tests.loopback import LoopbackServer
from tests.randomness import SEED

_RUN = uuid.uuid4().hex[:6]
_counter = itertools.count(1)


def unique_slug(prefix: str = "t") -> str:
    return f"{prefix}-{_RUN}-{next(_counter)}"


# Media written by the test run's gateways (local storage backend); removed at exit.
_MEDIA_DIR = Path(tempfile.mkdtemp(prefix="anju-test-media-"))
atexit.register(shutil.rmtree, _MEDIA_DIR, ignore_errors=True)


def test_settings(**overrides) -> Settings:
    base = {
        "env": "test",
        "media_dir": _MEDIA_DIR,
        # Rate limits off for the suite (tests make many calls a minute); their own tests
        # turn them on.
        "rate_user_per_minute": 0,
        "rate_tenant_per_minute": 0,
        "rate_anonymous_per_minute": 0,
        "tenant_cache_ttl": 0.0,
        "log_json": True,
        "log_level": "WARNING",
        "sms_backend": "capture",
        # The suite runs many apps in one process, each with its own engine: each keeps at most
        # 5 idle connections (a gateway process keeps its fixed 20), so together they stay
        # under the server's max_connections; bursts of 20 are still possible.
        "db_pool_size": 5,
        "db_max_overflow": 15,
        # The suite's clients play a load balancer on loopback: their X-Forwarded-For names
        # the client (one address per test keeps per-IP limits apart). Default: none trusted.
        "trusted_proxies": ["127.0.0.1"],
        # No warming of the lanes at start (each app would plan every test tenant's tables);
        # tests/tenants/test_warming.py turns it on.
        "db_warm_tables": [],
    }
    base.update(overrides)
    return Settings(**base)


def production_overrides() -> dict:
    """Settings overrides of a gateway in production mode: its own secrets (production refuses
    to start without them; tokens and personal data of the suite's kit do not pass there)."""
    import base64

    from api.security.secrets import new_ed25519_pem as ed25519_pem

    return {
        "env": "production",
        "jwt_private_key": ed25519_pem(),
        "field_keys": "1:" + base64.b64encode(os.urandom(32)).decode(),
        "blind_index_key": base64.b64encode(os.urandom(32)).decode(),
    }


@pytest.fixture(scope="session", autouse=True)
def _app_logging():
    """Log as the gateway process does (api/main.py): JSON lines, plain tracebacks (structlog's
    default development renderer draws every traceback with its local variables: slow)."""
    configure_logging(test_settings())


@pytest.fixture(scope="session")
def settings() -> Settings:
    return test_settings()


@pytest.fixture(scope="session")
async def db_url(settings: Settings) -> URL:
    url = server_url(settings, for_tests=True)
    await ensure_database(url, recreate=True)
    engine = make_engine(url, settings)
    try:
        await upgrade_shared(engine)
    finally:
        await engine.dispose()
    return url


@pytest.fixture(scope="session")
async def engine(db_url: URL, settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url, settings)
    yield eng
    await eng.dispose()


# Access tokens of each tenant's admin made by ``make_tenant``; ``gql`` sends them by default.
TOKENS: dict[str, str] = {}


@pytest.fixture(scope="session")
def kit(settings: Settings) -> SecurityKit:
    return build_kit(settings)


async def add_member(
    engine: AsyncEngine,
    kit: SecurityKit,
    tenant: TenantInfo,
    roles: list[str],
    *,
    name: str = "Member",
    email: str | None = None,
    phone: str | None = None,
    password: str | None = None,
) -> tuple[uuid.UUID, str]:
    """An account with a membership of ``roles`` in ``tenant`` and a signed-in session.
    Returns (account id, access token)."""
    from api.identity import service
    from api.identity.models import Membership

    email = email or f"{uuid.uuid4().hex[:12]}@{tenant.slug}.example.com"
    async with TenantDatabase(engine).session(tenant) as session:
        account = await service.create_account(
            session, kit, name=name, phone=phone, email=email, password=password
        )
        session.add(Membership(account_id=account.id, tenant_id=uuid.UUID(tenant.id), roles=roles))
        tokens = await service.start_session(session, kit, account.id, tenant)
        await session.commit()
    return account.id, tokens.access_token


@pytest.fixture
def member(engine: AsyncEngine, kit: SecurityKit) -> Callable:
    """``await member(tenant, ["agent"])`` -> (account id, access token)."""

    async def make(tenant: TenantInfo, roles: list[str], **kw) -> tuple[uuid.UUID, str]:
        return await add_member(engine, kit, tenant, roles, **kw)

    return make


@pytest.fixture
def make_tenant(engine: AsyncEngine, kit: SecurityKit) -> Callable:
    """``await make_tenant()`` provisions a tenant with a unique slug, adds an admin member
    whose token ``gql`` sends for that tenant by default, and returns the tenant's info."""

    async def make(slug: str | None = None, name: str = "Test Realty", **regional) -> TenantInfo:
        """``regional``: time_zone, locale, currency (default: provisioning's)."""
        tenant = (await create_tenant(engine, slug or unique_slug(), name, **regional)).tenant
        _, TOKENS[tenant.slug] = await add_member(engine, kit, tenant, ["admin"], name="Admin")
        return tenant

    return make


def auth_headers(slug: str, token: str | None = None) -> dict[str, str]:
    """X-Tenant plus the tenant admin's bearer token (or ``token``)."""
    token = token if token is not None else TOKENS.get(slug)
    headers = {"X-Tenant": slug}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


class LiveServer(LoopbackServer):
    """A gateway app (uvicorn with the gateway's options) on a loopback port, in a thread with its
    own event loop."""

    def __init__(self, app) -> None:
        super().__init__(app, label="gateway", **UVICORN_OPTIONS)


@pytest.fixture(scope="session")
def live_server_factory(db_url: URL):
    """``with live_server_factory(**settings_overrides) as server:`` runs a gateway made by
    ``create_app`` against the test database."""
    from api.app import create_app

    @contextmanager
    def factory(**overrides):
        server = LiveServer(create_app(test_settings(**overrides), url=db_url)).start()
        try:
            yield server
        finally:
            server.stop()

    return factory


@pytest.fixture(scope="session")
def live_server(live_server_factory):
    with live_server_factory() as server:
        yield server


# ---------------------------------------------------------------- a loopback Stripe

# The keys and webhook secret a gateway or worker is given to talk to the loopback Stripe
# (tests/api/payment/stripe_server.py) through the real ``stripe`` library.
STRIPE_WEBHOOK_SECRET = "whsec_test_anju"
STRIPE = {
    "stripe_secret_key": "sk_test_anju",
    "stripe_publishable_key": "pk_test_anju",
    "stripe_webhook_secret": STRIPE_WEBHOOK_SECRET,
    "stripe_retries": 0,
    "stripe_wechat_app_id": "wx_anju_test",
}


@pytest.fixture(scope="session")
def fake_stripe():
    """One loopback Stripe for the run (started on first use). Tests share it: pick your own
    calls out of ``fake_stripe.calls(...)`` by account, metadata or intent id."""
    from tests.api.payment.stripe_server import FakeStripe

    with FakeStripe(api_key=STRIPE["stripe_secret_key"]) as server:
        yield server


@pytest.fixture(scope="session")
def stripe_plans(fake_stripe) -> dict[str, str]:
    """The paid plans' prices at the loopback Stripe: plan -> price id."""
    return {
        "standard": fake_stripe.add_price("standard", 99_900)["id"],
        "pro": fake_stripe.add_price("pro", 299_900)["id"],
    }


def stripe_overrides(fake, plans: dict[str, str]) -> dict:
    """Settings overrides that point the real ``stripe`` library at ``fake``."""
    return {"stripe_api_url": fake.url, "stripe_plan_prices": plans, **STRIPE}


@pytest.fixture(scope="session")
def stripe_gateway(live_server_factory, fake_stripe, stripe_plans):
    """A gateway with payments on, talking to the loopback Stripe."""
    # No outbox relay here: with the in-process bus, a second relay that became leader would
    # publish live events in this process only, and the suite's main gateway would miss them.
    with live_server_factory(
        live_relay_in_process=False, **stripe_overrides(fake_stripe, stripe_plans)
    ) as server:
        yield server


@pytest.fixture
def stripe_worker_settings(fake_stripe, stripe_plans) -> Settings:
    """Settings of a job worker that talks to the loopback Stripe."""
    return test_settings(**stripe_overrides(fake_stripe, stripe_plans))


_ADMIN = object()


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict | None = None,
    *,
    tenant: str | None = None,
    token: str | object | None = _ADMIN,
    expect_status: int = 200,
) -> dict:
    """POST a GraphQL operation. With ``tenant``, sends X-Tenant and, unless ``token`` is
    given (None: anonymous), the bearer token of that tenant's admin."""
    headers = {}
    if tenant:
        headers = auth_headers(tenant, None if token is _ADMIN else (token or ""))
    elif token not in (_ADMIN, None):
        headers = {"Authorization": f"Bearer {token}"}
    resp = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert resp.status_code == expect_status, resp.text
    return resp.json()


@pytest.fixture
async def client(live_server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as c:
        yield c


def pytest_report_header(config) -> str:
    return f"ANJU_TEST_SEED={SEED} (random orders and data of this run; set it to replay them)"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """With a failure, the seed again (the header is not shown with -q)."""
    if terminalreporter.stats.get("failed") or terminalreporter.stats.get("error"):
        terminalreporter.write_line(f"replay this run's random orders: ANJU_TEST_SEED={SEED}")


def pytest_sessionfinish(session, exitstatus):
    """With ANJU_FAIL_ON_SKIP=1 (CI), a skipped test fails the run."""
    if os.environ.get("ANJU_FAIL_ON_SKIP") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        reporter.write_line(f"ANJU_FAIL_ON_SKIP: {skipped} test(s) skipped; CI requires none")
        session.exitstatus = 1
