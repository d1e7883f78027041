"""The run's random seed, the one source of the suite's random orders and data.

``ANJU_TEST_SEED`` (an integer) replays a run; without it each run draws a new seed. pytest
prints it in its header and, when a test failed, in the summary (tests/conftest.py)."""

from __future__ import annotations

import os
import random
import secrets

SEED = int(os.environ.get("ANJU_TEST_SEED") or secrets.randbits(32))


def rng(name: str) -> random.Random:
    """A generator for ``name`` (the test or data set it serves) seeded from the run's seed: with
    the same seed it gives the same sequence whichever other tests ran, and in whatever order."""
    return random.Random(f"{SEED}:{name}")
