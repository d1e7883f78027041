"""Input checks shared by the domains' services."""

from __future__ import annotations

from api.errors import ValidationFailed


def text(value: str, field: str, *, required: bool, max_len: int) -> str:
    """Trimmed text without control characters (tab and newline allowed), within ``max_len``."""
    value = (value or "").strip()
    if any(ord(c) < 32 and c not in "\t\n" for c in value):
        raise ValidationFailed(f"{field} must not contain control characters", field)
    if required and not value:
        raise ValidationFailed(f"{field} is required", field)
    if len(value) > max_len:
        raise ValidationFailed(f"{field} must be at most {max_len} characters", field)
    return value
