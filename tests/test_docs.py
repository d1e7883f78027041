"""The docs that list things the code defines keep up with it."""

from __future__ import annotations

import re
from pathlib import Path

from api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_and_every_documented_setting_exists():
    """docs/settings.md has a table row for each ``Settings`` field (``ANJU_<FIELD>``), and no
    row for a setting that does not exist."""
    page = (ROOT / "docs" / "settings.md").read_text()
    documented = set(re.findall(r"^\| `(ANJU_[A-Z0-9_]+)`", page, flags=re.M))
    fields = {f"ANJU_{name.upper()}" for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from docs/settings.md"
    assert documented - fields == set(), "docs/settings.md names settings that do not exist"
