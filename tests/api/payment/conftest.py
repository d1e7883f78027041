"""Fixtures of the payment tests: a loopback Stripe, a gateway and worker settings using it."""

from __future__ import annotations

import httpx
import pytest

from tests.api.payment.stripe_server import FakeStripe
from tests.conftest import test_settings as settings_with

SECRET = "whsec_test_anju"
STRIPE = {"stripe_secret_key": "sk_test_anju", "stripe_publishable_key": "pk_test_anju",
          "stripe_webhook_secret": SECRET, "stripe_retries": 0,
          "stripe_wechat_app_id": "wx_anju_test"}  # fmt: skip


@pytest.fixture(scope="session")
def fake():
    with FakeStripe(api_key="sk_test_anju") as server:
        yield server


@pytest.fixture(scope="session")
def plans(fake) -> dict[str, str]:
    """The paid plans' prices at the loopback Stripe: plan -> price id."""
    return {"standard": fake.add_price("standard", 99_900)["id"],
            "pro": fake.add_price("pro", 299_900)["id"]}  # fmt: skip


@pytest.fixture(scope="session")
def gateway(live_server_factory, fake, plans):
    # No outbox relay here: with the in-process bus, a second relay that became leader would
    # publish live events in this process only, and the suite's main gateway would miss them.
    with live_server_factory(stripe_api_url=fake.url, stripe_plan_prices=plans,
                             live_relay_in_process=False, **STRIPE) as server:  # fmt: skip
        yield server


@pytest.fixture
async def http(gateway):
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as c:
        yield c


@pytest.fixture
def worker_settings(fake, plans):
    return settings_with(stripe_api_url=fake.url, stripe_plan_prices=plans, **STRIPE)
