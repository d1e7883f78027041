"""Fixtures of the contract (签约) tests: a loopback timestamp authority and a gateway that
seals through it."""

from __future__ import annotations

import httpx
import pytest

from tests.api.signing.tsa import LoopbackTsa
from tests.conftest import test_settings


@pytest.fixture(scope="module")
def tsa():
    with LoopbackTsa(test_settings()) as server:
        yield server


@pytest.fixture(scope="module")
def signing_server(live_server_factory, tsa):
    """A gateway that timestamps its seals at the loopback TSA."""
    with live_server_factory(signing_tsa_url=tsa.tsa_url, live_relay_in_process=False) as s:
        yield s


@pytest.fixture
async def http(signing_server):
    async with httpx.AsyncClient(base_url=signing_server.url, timeout=60) as c:
        yield c


@pytest.fixture
def sms(signing_server):
    return signing_server.server.config.app.state.sms
