"""One money format for every page, export and message staff or buyers read: ``¥1,234.56``.

Amounts are shown with their currency's symbol, thousands separators and exactly two
decimals; a sign, when there is one, comes before the symbol (``-¥62.64``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
SYMBOLS = {"CNY": "¥", "USD": "US$", "EUR": "€", "HKD": "HK$", "GBP": "£", "JPY": "JP¥"}


def format_money(amount, currency: str = "CNY") -> str:
    """``amount`` (Decimal, int, str or None) as ``¥1,234.56``; None and blanks as ``—``."""
    if amount is None or amount == "":
        return "—"
    try:
        value = Decimal(str(amount)).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(amount)
    symbol = SYMBOLS.get((currency or "CNY").upper(), f"{currency} ")
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.2f}"
