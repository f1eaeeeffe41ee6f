"""How the shop writes money, discounts and durations, the way Chinese card shops do:
``¥1,234.56``, ``8.8折`` and ``7 天`` (English: ``12% off``, ``7 days``)."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.translation import get_language, ngettext

from payments.money import format_money

register = template.Library()


def yuan(value) -> str:
    """``¥1,234.56`` (two places, thousands separated); an unknown amount is a dash."""
    return format_money(value, "CNY")


def discount(listing) -> str:
    """The discount as the buyer's market says it: ``8.8折`` in Chinese (the price in tenths
    of the face value), ``12% off`` in English."""
    face, price = Decimal(listing.face_value), Decimal(listing.price)
    if face <= 0:
        return ""
    if (get_language() or "").startswith("zh"):
        tenths = (price / face * 10).quantize(Decimal("0.01")).normalize()
        return f"{tenths:f}折"
    off = ((face - price) / face * 100).quantize(Decimal("0.1")).normalize()
    return f"{off:f}% off"


def hours_as_days(hours) -> str:
    """``7 天`` / ``7 days`` for whole days, hours otherwise."""
    hours = int(hours)
    if hours and hours % 24 == 0:
        days = hours // 24
        return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}
    return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}


register.filter("yuan", yuan)
register.filter("discount", discount)
register.filter("hours_as_days", hours_as_days)
