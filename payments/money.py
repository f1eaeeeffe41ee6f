"""One money format for every page, export and message staff or buyers read: ``¥1,234.56``,
and each currency's minor unit, the one rule every conversion and channel rounds by.

Amounts are shown with their currency's symbol, thousands separators and the currency's own
decimals (two for most, none for yen or won); a sign, when there is one, comes before the
symbol (``-¥62.64``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
SYMBOLS = {"CNY": "¥", "USD": "US$", "EUR": "€", "HKD": "HK$", "GBP": "£", "JPY": "JP¥"}

#: Currencies without decimals and with three (ISO 4217 as card acquirers apply it); every
#: other currency has two.
ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def exponent(currency: str) -> int:
    """How many decimals ``currency``'s smallest unit has (JPY 0, USD 2, KWD 3)."""
    currency = (currency or "").upper()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def round_minor(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up to ``currency``'s smallest unit (US$13.8704 → 13.87,
    JP¥2071.4 → 2071), kept with two places at least so it fits the money fields."""
    unit = Decimal(1).scaleb(-exponent(currency))
    rounded = Decimal(amount).quantize(unit, rounding=ROUND_HALF_UP)
    return rounded.quantize(Decimal(1).scaleb(-max(exponent(currency), 2)))


def format_money(amount, currency: str = "CNY") -> str:
    """``amount`` (Decimal, int, str or None) as ``¥1,234.56``; None and blanks as ``—``."""
    if amount is None or amount == "":
        return "—"
    places = exponent(currency or "CNY")
    try:
        value = Decimal(str(amount)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(amount)
    symbol = SYMBOLS.get((currency or "CNY").upper(), f"{currency} ")
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.{places}f}"
