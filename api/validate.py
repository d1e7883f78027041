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


def unique_texts(values: list[str], field: str, *, max_len: int = 50, max_count: int = 30):
    """Distinct non-empty texts (first occurrence kept), each and the count bounded."""
    out: list[str] = []
    for v in values:
        v = text(v, field, required=True, max_len=max_len)
        if v not in out:
            out.append(v)
    if len(out) > max_count:
        raise ValidationFailed(f"at most {max_count} {field}", field)
    return out


def https_url(value: str, field: str, *, max_len: int = 500) -> str:
    """A URL Stripe may send a browser back to: https, at most ``max_len`` characters."""
    if not value.startswith("https://") or len(value) > max_len:
        raise ValidationFailed("an https URL", field)
    return value
