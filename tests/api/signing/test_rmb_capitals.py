"""Amounts in Chinese capital numerals (人民币大写): zero, tens, zeros inside and across groups,
jiao and fen, the largest amount, and what is refused."""

from __future__ import annotations

import pytest

from api.rmb import MAX_MINOR, capitals


@pytest.mark.parametrize(
    ("minor", "expected"),
    [
        (0, "零元整"),
        (1, "壹分"),
        (50, "伍角"),
        (105, "壹元零伍分"),
        (1000, "壹拾元整"),  # the financial form: 壹拾, never a bare 拾
        (1005, "壹拾元零伍分"),
        (1_100, "壹拾壹元整"),
        (101_000, "壹仟零壹拾元整"),
        (10_001_000, "壹拾万零壹拾元整"),
        (100_000_100, "壹佰万零壹元整"),  # 1,000,001 yuan
        (123_456_789, "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分"),
        (10_000_000_005, "壹亿元零伍分"),  # 100,000,000.05 yuan
        (110_000_000_00, "壹亿壹仟万元整"),
        (100_001_000_000, "壹拾亿零壹万元整"),
        (100_000_000_000_000, "壹万亿元整"),
        (299_876_544, "贰佰玖拾玖万捌仟柒佰陆拾伍元肆角肆分"),
        (
            12_345_678_901_234_501,
            "壹佰贰拾叁万肆仟伍佰陆拾柒亿捌仟玖佰零壹万贰仟叁佰肆拾伍元零壹分",
        ),
        (
            MAX_MINOR,
            "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分",
        ),
    ],
)
def test_capitals(minor, expected):
    assert capitals(minor) == expected


@pytest.mark.parametrize("bad", [-1, MAX_MINOR + 1, 1.5, True, "100"])
def test_what_is_not_an_amount_is_refused(bad):
    with pytest.raises(ValueError):
        capitals(bad)
