"""Amounts in Chinese capital numerals (人民币大写), as contracts and receipts write them:
``123456789`` fen is 壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分; a whole amount ends in 整.

The rules followed (those of the People's Bank of China for bills and vouchers): digits are
壹贰叁肆伍陆柒捌玖, places 拾佰仟 within a group of four and 万/亿 between groups; one 零
stands for any run of zeros inside the amount (1,000,001 yuan is 壹佰万零壹元); a group of
zeros writes no place; 10 is 壹拾 (the financial form, never a bare 拾); after 元 with no
角 and 分 comes 整; a missing 角 before 分 is written 零 (壹亿元零伍分); nothing follows 角
(伍角, the rules allow leaving 整 off there). Zero is 零元整."""

from __future__ import annotations

DIGITS = "零壹贰叁肆伍陆柒捌玖"
PLACES = ("", "拾", "佰", "仟")
WAN, YI = 10**4, 10**8
MAX_MINOR = 10**18 - 1  # below ten thousand trillion yuan (万万亿): beyond any real price


def _four(n: int) -> str:
    """1..9999: digits with their places; one 零 for zeros between digits."""
    out: list[str] = []
    zero = False
    for place in range(3, -1, -1):
        d = n // 10**place % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(DIGITS[d] + PLACES[place])
    return "".join(out)


def _whole(n: int) -> str:
    """A positive whole number of yuan, groups of four joined by 万 and 亿."""
    if n >= YI:
        high, low = divmod(n, YI)
        text = _whole(high) + "亿"
        return text + ("零" if low < YI // 10 else "") + _whole(low) if low else text
    if n >= WAN:
        high, low = divmod(n, WAN)
        text = _four(high) + "万"
        return text + ("零" if low < WAN // 10 else "") + _four(low) if low else text
    return _four(n)


def capitals(minor_units: int) -> str:
    """``minor_units`` fen (an int, 0 or more) in capital numerals. ValueError when negative,
    not an int, or above ``MAX_MINOR``."""
    if isinstance(minor_units, bool) or not isinstance(minor_units, int):
        raise ValueError("an amount in minor units (an int)")
    if not 0 <= minor_units <= MAX_MINOR:
        raise ValueError(f"an amount from 0 to {MAX_MINOR} minor units")
    yuan, cents = divmod(minor_units, 100)
    jiao, fen = divmod(cents, 10)
    if minor_units == 0:
        return "零元整"
    text = _whole(yuan) + "元" if yuan else ""
    if not cents:
        return text + "整"
    if jiao:
        text += DIGITS[jiao] + "角"
    elif yuan:
        text += "零"
    if fen:
        text += DIGITS[fen] + "分"
    return text
