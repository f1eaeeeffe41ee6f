"""Which payment methods a buyer sees first on checkout, and why (DESIGN.md §3 "Checkout
ordering"). docs/checkout.md explains the model and its weights.

The core, :func:`rank_methods`, is pure: it sees a frozen :class:`CheckoutContext` (the
amount, the buyer's past payments, device, region, the configured channel accounts and the
wallet balance) and answers a :class:`Ranking` in which every method carries a score and the
human-readable reasons that add up to it. Only :func:`checkout_context` touches the database,
in a constant number of queries; :func:`offer_for` wraps both for one payment and its
:meth:`Offer.choose` is the check every way in applies to the buyer's choice.

In one breath: a method is *offered* when at least one enabled account with a closed (or
probing) circuit breaker serves it in the order's currency; it is *shown disabled, with the
reason,* when no such account's per-payment limits fit the amount, or — for ``balance`` — when
the wallet holds less than the amount. Offered methods are scored by adding points per signal;
the method of the buyer's last successful payment gets a bonus larger than every other signal
together, so it is always first while it can be used.

Modules: ``signals`` (the inputs), ``rules`` (each signal's points), ``ranking`` (offered,
disabled, order), ``instalments``, ``selectors`` (loading the inputs), ``offer`` (one payment's
offer, the choice check and the record kept on the payment).
"""

from payments.ordering.instalments import InstalmentPlan, instalment_plans
from payments.ordering.offer import Choice, ChoiceRefused, Offer, offer_for
from payments.ordering.ranking import RankedMethod, Ranking, Withheld, rank_methods
from payments.ordering.rules import DEFAULT_CONFIG, OrderingConfig, Reason, money_text
from payments.ordering.selectors import checkout_context
from payments.ordering.signals import AccountOption, CheckoutContext, PastPayment

__all__ = [
    "DEFAULT_CONFIG",
    "AccountOption",
    "CheckoutContext",
    "Choice",
    "ChoiceRefused",
    "InstalmentPlan",
    "Offer",
    "OrderingConfig",
    "PastPayment",
    "RankedMethod",
    "Ranking",
    "Reason",
    "Withheld",
    "checkout_context",
    "instalment_plans",
    "money_text",
    "offer_for",
    "rank_methods",
]
