"""What a buyer is offered for one payment, and the check every way in applies to a choice.

The order page and the REST API both start a payment from an :class:`Offer`: the ranking for
this buyer, amount and client, and the instalment plans when card instalments can be used.
:meth:`Offer.choose` refuses a method the ranking does not offer as usable, or a plan that is
not one of the offered ones, before anything is created; the ranking the buyer was offered
(``Ranking.as_dict``) is stored with the payment when it is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.translation import gettext as _

from payments import fx
from payments.client import Client
from payments.models import Method
from payments.ordering.instalments import InstalmentPlan, instalment_plans
from payments.ordering.ranking import Ranking, charge_currencies, rank_methods
from payments.ordering.rules import DEFAULT_CONFIG, OrderingConfig
from payments.ordering.selectors import checkout_context


class ChoiceRefused(Exception):
    """A method or an instalment plan this buyer was not offered; nothing was started.

    ``field`` names the input at fault (``method`` or ``instalments``); ``allowed`` lists
    what would have been accepted, for API clients."""

    def __init__(self, message: str, *, field: str, allowed: list):
        super().__init__(message)
        self.message = message
        self.field = field
        self.allowed = allowed


@dataclass(frozen=True)
class Choice:
    """A checked choice: a usable method, the months when it is card instalments, and the
    foreign currency to charge in ('' for the price's own)."""

    method: str
    instalments: int | None = None
    currency: str = ""


@dataclass(frozen=True)
class Offer:
    """The ranking a buyer sees for one payment and the instalment plans offered with it;
    for a CNY price, the foreign currencies some usable method charges, each with its price
    at the current rate (or why its rate cannot be used), and the one shown first."""

    ranking: Ranking
    plans: tuple[InstalmentPlan, ...] = ()
    currency: str = fx.HOME
    #: method → the foreign currencies it can charge for this payment
    charges: Mapping[str, frozenset[str]] = field(default_factory=dict)
    prices: Mapping[str, fx.Price] = field(default_factory=dict)
    #: currency → why it cannot be charged now (no rate, stale rate), in the buyer's language
    unavailable: Mapping[str, str] = field(default_factory=dict)
    preferred: str = fx.HOME

    @property
    def currencies(self) -> list[str]:
        """The currencies the buyer may pick: the price's own first, then the foreign ones."""
        return [self.currency, *sorted({*self.prices, *self.unavailable})]

    def charged_in(self, method: str) -> str:
        """The currency ``method`` charges when the buyer keeps the price's own: that one, or
        the foreign one its accounts charge instead (what :meth:`choose` would pick)."""
        try:
            return self._choose_currency(method=method, currency="") or self.currency
        except ChoiceRefused:
            return self.currency

    def methods_charging(self, currency: str) -> list[str]:
        return [m.method for m in self.ranking.usable if currency in self.charges.get(m.method, ())]

    def as_dict(self) -> dict:
        """The currency part of the offer, as the API shows it."""
        return {
            "currency": self.currency,
            "preferred_currency": self.preferred,
            "prices": [
                {**price.as_dict(), "methods": self.methods_charging(code)}
                for code, price in sorted(self.prices.items())
            ],
            "unavailable": [
                {"currency": code, "reason": reason}
                for code, reason in sorted(self.unavailable.items())
            ],
        }

    def choose(
        self,
        *,
        method: str,
        instalments: int | None = None,
        currency: str = "",
        seen_rates: Mapping[str, str] | None = None,
    ) -> Choice:
        """Check ``method``, ``instalments`` and ``currency`` against what is offered. No
        plan chosen for card instalments means the shortest one, as the page preselects it;
        no currency means the price's own. ``seen_rates`` (currency → rate) are the rates the
        buyer was shown: paying at another one (it changed since) is refused, so nobody is
        charged an amount they did not see."""
        choice = self._choose_method(method=method, instalments=instalments)
        charge = self._choose_currency(method=choice.method, currency=currency)
        seen = (seen_rates or {}).get(charge) if charge else None
        if seen is not None:
            current = self.prices[charge]
            try:
                same = Decimal(str(seen)) == current.quote.rate
            except ArithmeticError:
                same = False
            if not same:
                raise ChoiceRefused(
                    _(
                        "The %(currency)s rate changed since the page was shown: it is now "
                        "%(price)s. Nothing was charged; check the amount and pay again."
                    )
                    % {"currency": charge, "price": current.text},
                    field="rate",
                    allowed=[fx.rate_text(current.quote.rate)],
                )
        return Choice(choice.method, choice.instalments, charge)

    def _choose_currency(self, *, method: str, currency: str) -> str:
        code = (currency or "").strip().upper() or self.currency
        able = self.charges.get(method)
        if code == self.currency and (able is None or code in able):
            return ""
        if code == self.currency:
            # The method's accounts charge only foreign currencies (a PayPal account outside
            # China): the buyer's own if it is one of them, else the first with a rate.
            priced = [c for c in sorted(able) if c in self.prices]
            if self.preferred in priced:
                return self.preferred
            if priced:
                return priced[0]
            reasons = [self.unavailable[c] for c in sorted(able) if c in self.unavailable]
            raise ChoiceRefused(
                reasons[0]
                if reasons
                else _("This payment method is not available for this order."),
                field="currency",
                allowed=[],
            )
        if code in self.unavailable:
            raise ChoiceRefused(self.unavailable[code], field="currency", allowed=[self.currency])
        if code not in self.prices:
            raise ChoiceRefused(
                _("Paying in %(currency)s is not offered for this order.") % {"currency": code},
                field="currency",
                allowed=self.currencies,
            )
        if code not in self.charges.get(method, ()):
            able = sorted(
                c for c in self.charges.get(method, ()) if c in self.prices or c == self.currency
            )
            raise ChoiceRefused(
                _("%(method)s cannot charge %(currency)s; pay in %(allowed)s with it.")
                % {
                    "method": Method(method).label,
                    "currency": code,
                    "allowed": ", ".join(able),
                },
                field="currency",
                allowed=able,
            )
        return code

    def _choose_method(self, *, method: str, instalments: int | None = None) -> Choice:
        ranked = self.ranking.get(method)
        if ranked is None or not ranked.enabled:
            usable = [m.method for m in self.ranking.usable]
            message = (
                ranked.disabled_reason
                if ranked is not None
                else _("This payment method is not available for this order.")
            )
            raise ChoiceRefused(message, field="method", allowed=usable)
        months = [plan.months for plan in self.plans]
        if method != Method.CARD_INSTALMENTS:
            if instalments is not None:
                raise ChoiceRefused(
                    _("Instalment plans are only offered with card instalments."),
                    field="instalments",
                    allowed=[],
                )
            return Choice(method)
        if instalments is None:
            return Choice(method, months[0])
        if instalments not in months:
            raise ChoiceRefused(
                _(
                    "%(months)s months is not an instalment plan offered for this order; "
                    "choose %(plans)s months."
                )
                % {"months": instalments, "plans": ", ".join(str(m) for m in months)},
                field="instalments",
                allowed=months,
            )
        return Choice(method, instalments)


def offer_for(
    *,
    buyer,
    amount: Decimal,
    currency: str,
    client: Client,
    config: OrderingConfig = DEFAULT_CONFIG,
) -> Offer:
    """The offer for ``buyer`` paying ``amount`` from ``client`` (selector: reads only)."""
    context = checkout_context(
        user=buyer,
        amount=amount,
        currency=currency,
        device=client.device_info,
        region=fx.buyer_region(buyer, client.region_info),
        config=config,
    )
    ranking = rank_methods(context, config)
    usable_instalments = ranking.is_usable(Method.CARD_INSTALMENTS)
    plans = tuple(instalment_plans(amount, config)) if usable_instalments else ()
    if currency != fx.HOME:
        return Offer(ranking=ranking, plans=plans, currency=currency, preferred=currency)
    charges = {m.method: charge_currencies(m.method, context) for m in ranking.usable}
    foreign = sorted(set().union(*charges.values()) - {currency} if charges else ())
    prices, unavailable = fx.prices(amount, foreign)  # one read of the rates for all
    wanted = fx.buyer_currency(buyer, client.region_info.code)
    # The buyer's own currency is preselected when the method the page puts first can charge
    # it (a buyer abroad: card or PayPal lead); where the scene puts a CNY wallet first
    # (inside WeChat or Alipay's app) the page starts in CNY, so the first method just pays.
    leader = ranking.usable[0].method if ranking.usable else ""
    if wanted not in charges.get(leader, ()):
        wanted = currency
    return Offer(
        ranking=ranking,
        plans=plans,
        currency=currency,
        charges=charges,
        prices=prices,
        unavailable=unavailable,
        preferred=wanted if wanted in prices or wanted in unavailable else currency,
    )
