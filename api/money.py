"""Money as text: integer minor units and an ISO 4217 currency, shown with all its minor digits.

The one formatter of amounts shown to people (notifications, receipts, emails, reasons). It
works on integers only (``divmod`` by 10 ** the currency's minor digits), so any amount, however
large, is shown exactly; there is no float anywhere. ``format_money(12345, "CNY")`` is
``¥123.45``, ``format_money(123450, "USD")`` is ``US$1,234.50`` (``$1,234.50`` in English),
``format_money(-50, "CNY")`` is ``-¥0.50``, ``format_money(1500, "JPY")`` is ``JP¥1,500``.
Symbols follow CLDR for the two locales (zh-CN, en); a currency without one is shown by its
code (``CHF 12.00``)."""

from __future__ import annotations

from decimal import Decimal

# ISO 4217 currencies in circulation (no funds, precious metals or test codes).
_ISO_4217 = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
    BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
CURRENCIES = frozenset(_ISO_4217.split())
# Minor digits where ISO 4217 says other than two.
_ZERO_DIGITS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DIGITS = "BHD IQD JOD KWD LYD OMR TND"
_DIGITS = {**dict.fromkeys(_ZERO_DIGITS.split(), 0), **dict.fromkeys(_THREE_DIGITS.split(), 3)}
# CLDR symbols; in Chinese, ¥ is the yuan, in English the yen.
_SYMBOLS = {
    "zh-CN": {
        "CNY": "¥",
        "USD": "US$",
        "HKD": "HK$",
        "JPY": "JP¥",
        "EUR": "€",
        "GBP": "£",
        "TWD": "NT$",
        "MOP": "MOP$",
        "KRW": "￦",
        "AUD": "AU$",
        "CAD": "CA$",
    },
    "en": {
        "CNY": "CN¥",
        "USD": "$",
        "HKD": "HK$",
        "JPY": "¥",
        "EUR": "€",
        "GBP": "£",
        "TWD": "NT$",
        "KRW": "₩",
        "AUD": "A$",
        "CAD": "CA$",
        "INR": "₹",
        "ILS": "₪",
    },
}


def minor_digits(currency: str) -> int:
    """Digits after the decimal point of ``currency`` (ISO 4217 exponent; 2 when unknown)."""
    return _DIGITS.get(currency.upper(), 2)


def valid_currency(code: str) -> bool:
    return code in CURRENCIES


def major_units(minor: int, currency: str) -> Decimal:
    """The exact amount in major units (``Decimal("123.45")`` for 12345 fen)."""
    digits = minor_digits(currency)
    return Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def format_money(minor: int | None, currency: str = "CNY", locale: str = "zh-CN") -> str:
    """``minor`` units of ``currency`` as text in ``locale`` (zh-CN or en); None is ``-``."""
    if minor is None:
        return "-"
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"money is an integer of minor units, not {type(minor).__name__}")
    code = (currency or "").upper()
    digits = minor_digits(code)
    whole, part = divmod(abs(minor), 10**digits)
    number = f"{whole:,}" + (f".{part:0{digits}d}" if digits else "")
    table = _SYMBOLS["en" if (locale or "").lower().startswith("en") else "zh-CN"]
    symbol = table.get(code)
    shown = f"{symbol}{number}" if symbol else f"{code} {number}"
    return f"-{shown}" if minor < 0 else shown
