"""Fixtures of the payment tests: the suite's loopback Stripe (tests/conftest.py), a gateway and
worker settings using it, under the short names these tests use."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import STRIPE, STRIPE_WEBHOOK_SECRET

SECRET = STRIPE_WEBHOOK_SECRET
__all__ = ["SECRET", "STRIPE"]


@pytest.fixture(scope="session")
def fake(fake_stripe):
    return fake_stripe


@pytest.fixture(scope="session")
def plans(stripe_plans) -> dict[str, str]:
    return stripe_plans


@pytest.fixture(scope="session")
def gateway(stripe_gateway):
    return stripe_gateway


@pytest.fixture
async def http(gateway):
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as c:
        yield c


@pytest.fixture
def worker_settings(stripe_worker_settings):
    return stripe_worker_settings
