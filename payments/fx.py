"""Exchange rates and conversions for buyers who pay in their own currency.

Orders are priced in CNY and the journal keeps CNY; a buyer abroad may be charged the CNY
price converted into a currency the channel account can charge. A *rate* is how many CNY one
unit of the foreign currency buys (USD 7.1375); the foreign amount is the CNY price divided by
it, rounded half-up to the currency's minor unit (:func:`payments.money.round_minor`).

Rates come from the class ``settings.PAYMENTS_FX_PROVIDER`` names: by default
:class:`TableRates`, the staff-edited :class:`~payments.models.FxRate` table; a provider feed
plugs in as any class with ``quote(currency) -> Quote | None``. A rate older than
``settings.PAYMENTS_FX_MAX_AGE`` seconds is stale: nothing is converted at it, and the buyer
is told so in their language (:class:`RateUnavailable`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from django.conf import settings
from django.utils import formats, timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from payments.client import RegionInfo
from payments.money import CENT, format_money, round_minor

HOME = "CNY"


@dataclass(frozen=True)
class Quote:
    """One rate: CNY per unit of ``currency``, the time it is for and where it came from."""

    currency: str
    rate: Decimal
    at: dt.datetime
    source: str


class RateUnavailable(Exception):
    """No usable rate for a currency (none, or stale): nothing may be converted at it."""

    def __init__(self, message: str, *, currency: str):
        super().__init__(message)
        self.message = message
        self.currency = currency


class TableRates:
    """The default source: the rate table staff keep in the admin (payments.FxRate)."""

    def quote(self, currency: str) -> Quote | None:
        return self.quotes([currency]).get(currency)

    def quotes(self, currencies: list[str]) -> dict[str, Quote]:
        """Several currencies' rates in one query: an offer prices in all of them at once.
        The table holds a row per currency, a handful: all of them, by a compiled read."""
        wanted = set(currencies)
        rows = [row for row in _rate_table().all() if row.currency in wanted]
        return {
            row.currency: Quote(
                currency=row.currency,
                rate=row.rate,
                at=row.as_of,
                source=row.source or "rate table",
            )
            for row in rows
        }


@cache
def _rate_table():
    from config.prepared import PreparedRead
    from payments.models import FxRate

    return PreparedRead(lambda: FxRate.objects.order_by())


@cache
def _provider_class(path: str):
    return import_string(path)


def provider():
    """The configured rate source (``PAYMENTS_FX_PROVIDER``)."""
    return _provider_class(settings.PAYMENTS_FX_PROVIDER)()


def quote(currency: str, *, now: dt.datetime | None = None) -> Quote:
    """A fresh rate for ``currency``; raises RateUnavailable, in the buyer's language, when
    there is none or it is older than ``PAYMENTS_FX_MAX_AGE``."""
    currency = (currency or "").upper()
    return _fresh(currency, provider().quote(currency), now=now)


def _fresh(currency: str, found: Quote | None, *, now: dt.datetime | None) -> Quote:
    """``found`` when it is a usable rate, else RateUnavailable saying why."""
    if found is None or found.rate <= 0:
        raise RateUnavailable(
            _("There is no exchange rate for %(currency)s right now; please pay in CNY.")
            % {"currency": currency},
            currency=currency,
        )
    now = now or timezone.now()
    if now - found.at > dt.timedelta(seconds=settings.PAYMENTS_FX_MAX_AGE):
        raise RateUnavailable(
            _(
                "The %(currency)s exchange rate (of %(time)s) is out of date, so we cannot "
                "charge you in %(currency)s now. Nothing was charged; pay in CNY or try again "
                "later."
            )
            % {"currency": currency, "time": _when(found.at)},
            currency=currency,
        )
    return found


def to_foreign(cny: Decimal, rate: Decimal, currency: str) -> Decimal:
    """The CNY amount in ``currency`` at ``rate``, exact in its minor units."""
    return round_minor(Decimal(cny) / Decimal(rate), currency)


def to_cny(amount: Decimal, rate: Decimal) -> Decimal:
    """A foreign amount's CNY value at ``rate``, to the fen."""
    return (Decimal(amount) * Decimal(rate)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Price:
    """A CNY price and what it is in the buyer's currency: what the page and API show."""

    cny: Decimal
    amount: Decimal
    currency: str
    quote: Quote

    @property
    def text(self) -> str:
        """``US$13.87 ≈ ¥99.00 at 7.1375, rate of 14:02``."""
        return _("%(foreign)s ≈ %(cny)s at %(rate)s, rate of %(time)s") % {
            "foreign": format_money(self.amount, self.currency),
            "cny": format_money(self.cny, HOME),
            "rate": rate_text(self.quote.rate),
            "time": _when(self.quote.at),
        }

    def as_dict(self) -> dict:
        return {
            "currency": self.currency,
            "amount": str(self.amount),
            "cny_amount": str(self.cny),
            "rate": rate_text(self.quote.rate),
            "rate_at": self.quote.at.isoformat(),
            "rate_source": self.quote.source,
            "text": self.text,
        }


def price(cny: Decimal, currency: str, *, now: dt.datetime | None = None) -> Price:
    """``cny`` converted at the current rate of ``currency``; raises RateUnavailable."""
    return _priced(cny, quote(currency, now=now))


def _priced(cny: Decimal, found: Quote) -> Price:
    return Price(
        cny=cny,
        amount=to_foreign(cny, found.rate, found.currency),
        currency=found.currency,
        quote=found,
    )


def prices(
    cny: Decimal, currencies: list[str], *, now: dt.datetime | None = None
) -> tuple[dict[str, Price], dict[str, str]]:
    """``cny`` in each of ``currencies`` at its current rate, the rates read together where
    the source can (one query for the rate table; a source with only ``quote`` is asked
    once per currency), and each currency without a fresh rate with the buyer's message."""
    source = provider()
    wanted = [(code or "").upper() for code in currencies]
    if hasattr(source, "quotes"):
        found = source.quotes(wanted)
    else:
        found = {code: source.quote(code) for code in wanted}
    now = now or timezone.now()
    converted: dict[str, Price] = {}
    unavailable: dict[str, str] = {}
    for code in wanted:
        try:
            rate = _fresh(code, found.get(code), now=now)
        except RateUnavailable as exc:
            unavailable[code] = exc.message
            continue
        converted[code] = _priced(cny, rate)
    return converted, unavailable


def seen_rates(text: str) -> dict[str, str]:
    """``USD:7.1375 EUR:7.741`` (what the order page shows) → ``{"USD": "7.1375", …}``."""
    found = {}
    for part in (text or "").split():
        code, _sep, rate = part.partition(":")
        if code and rate:
            found[code.upper()[:3]] = rate[:32]
    return found


def rate_text(rate: Decimal) -> str:
    """A rate as people quote it: no trailing zeros past four places (7.1375, 0.0478)."""
    text = f"{Decimal(rate).normalize():f}"
    whole, _sep, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(4, '0')}" if len(decimals) < 4 else text


def _when(at: dt.datetime) -> str:
    """The rate's time as the buyer reads it: the hour today, the date and hour before."""
    local = timezone.localtime(at)
    if local.date() == timezone.localdate():
        return formats.time_format(local, "H:i")
    return formats.date_format(local, "Y-m-d H:i")


#: the currency a buyer in a region pays in when their profile names none
REGION_CURRENCIES = {
    "US": "USD",
    "GB": "GBP",
    "JP": "JPY",
    "HK": "HKD",
    "SG": "SGD",
    "AU": "AUD",
    "CA": "CAD",
    "CH": "CHF",
    "NZ": "NZD",
    **dict.fromkeys(
        ("AT", "BE", "DE", "ES", "FI", "FR", "GR", "IE", "IT", "NL", "PT", "LU", "SK", "SI"),
        "EUR",
    ),
}


#: where a buyer who prefers a currency (and whose address says nothing) is taken to be
CURRENCY_REGIONS = {currency: region for region, currency in REGION_CURRENCIES.items()} | {
    "EUR": "EU"
}


def buyer_region(buyer, region: RegionInfo) -> RegionInfo:
    """The region ordering ranks by: the client's, unless the buyer's profile prefers a
    foreign currency and neither the proxy nor the browser placed them abroad — then the
    currency's region, so card and PayPal lead as for any buyer abroad."""
    preferred = (getattr(buyer, "preferred_currency", "") or "").upper()
    if region.cross_border or region.source == "proxy" or preferred in ("", HOME):
        return region
    code = CURRENCY_REGIONS.get(preferred)
    return RegionInfo(code, "profile") if code else region


def buyer_currency(buyer, region: str) -> str:
    """The currency a buyer would rather see: their profile's choice, else their region's."""
    preferred = (getattr(buyer, "preferred_currency", "") or "").upper()
    return preferred or REGION_CURRENCIES.get((region or "").upper(), HOME)


def refund_share(
    *,
    cny_amount: Decimal,
    cny_total: Decimal,
    charged: Decimal,
    already: Decimal,
    committed: Decimal,
    currency: str,
) -> Decimal:
    """The foreign amount a refund of ``cny_amount`` returns: its share of what was
    ``charged``, exact in minor units. Counted cumulatively — the refunds so far covering
    ``committed`` CNY returned ``already`` — so the refunds of the whole price return exactly
    the amount charged, never a minor unit more or less."""
    covered = committed + cny_amount
    if covered >= cny_total:
        return charged - already
    return round_minor(charged * covered / cny_total, currency) - already
