"""A loopback timestamp authority for the signing tests (and the contract tests)."""

from __future__ import annotations

import pytest

from tests.api.signing.tsa import LoopbackTsa
from tests.conftest import test_settings


@pytest.fixture(scope="module")
def tsa():
    with LoopbackTsa(test_settings()) as server:
        yield server
