"""The one money formatter: integer minor units to text with every minor digit, exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from api.money import format_money, major_units


@pytest.mark.parametrize(
    ("minor", "currency", "locale", "shown"),
    [
        (12345, "CNY", "zh-CN", "¥123.45"),
        (50, "CNY", "zh-CN", "¥0.50"),
        (5, "cny", "zh-CN", "¥0.05"),  # Stripe's lowercase codes
        (0, "CNY", "zh-CN", "¥0.00"),
        (-12345, "CNY", "zh-CN", "-¥123.45"),
        (123450, "USD", "zh-CN", "US$1,234.50"),
        (123450, "USD", "en", "$1,234.50"),
        (12345, "CNY", "en", "CN¥123.45"),
        (1500, "JPY", "zh-CN", "JP¥1,500"),  # no minor digits
        (1500, "JPY", "en", "¥1,500"),
        (1234, "KWD", "en", "KWD 1.234"),  # three minor digits
        (1200, "CHF", "en", "CHF 12.00"),  # no symbol: the code
        (9_223_372_036_854_775_807, "CNY", "zh-CN", "¥92,233,720,368,547,758.07"),
        (10**30 + 1, "CNY", "zh-CN", "¥10,000,000,000,000,000,000,000,000,000.01"),
        (None, "CNY", "zh-CN", "-"),
    ],
)
def test_format_money(minor, currency, locale, shown):
    assert format_money(minor, currency, locale) == shown


def test_floats_are_refused():
    with pytest.raises(TypeError):
        format_money(123.45, "CNY")


def test_major_units_are_exact():
    assert major_units(9_007_199_254_740_993, "CNY") == Decimal("90071992547409.93")
    assert str(major_units(1500, "JPY")) == "1500" and str(major_units(5, "USD")) == "0.05"
