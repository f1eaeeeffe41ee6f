"""What a buyer is offered for one payment, and the check every way in applies to a choice.

The order page and the REST API both start a payment from an :class:`Offer`: the ranking for
this buyer, amount and client, and the instalment plans when card instalments can be used.
:meth:`Offer.choose` refuses a method the ranking does not offer as usable, or a plan that is
not one of the offered ones, before anything is created; the ranking the buyer was offered
(``Ranking.as_dict``) is stored with the payment when it is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from payments.client import Client
from payments.models import Method
from payments.ordering.instalments import InstalmentPlan, instalment_plans
from payments.ordering.ranking import Ranking, rank_methods
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
    """A checked choice: a usable method, and the months when it is card instalments."""

    method: str
    instalments: int | None = None


@dataclass(frozen=True)
class Offer:
    """The ranking a buyer sees for one payment and the instalment plans offered with it."""

    ranking: Ranking
    plans: tuple[InstalmentPlan, ...] = ()

    def choose(self, *, method: str, instalments: int | None = None) -> Choice:
        """Check ``method`` and ``instalments`` against what is offered. No plan chosen for
        card instalments means the shortest one, as the page preselects it."""
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
    ranking = rank_methods(
        checkout_context(
            user=buyer,
            amount=amount,
            currency=currency,
            device=client.device_info,
            region=client.region_info,
            config=config,
        ),
        config,
    )
    usable_instalments = ranking.is_usable(Method.CARD_INSTALMENTS)
    plans = tuple(instalment_plans(amount, config)) if usable_instalments else ()
    return Offer(ranking=ranking, plans=plans)
