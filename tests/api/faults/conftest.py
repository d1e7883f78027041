"""Fixtures of the fault tests: a scratch directory for the processes they start."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def scratch():
    with tempfile.TemporaryDirectory(prefix="anju-faults-") as d:
        yield Path(d)
