"""Paying an order: the one way in for the order page and the REST API.

Both hand the buyer's choice to :func:`order_checkout_pay`, which asks the platform what this
buyer is offered for this order (``payments.ordering.offer_for``), refuses a method or an
instalment plan outside that offer before anything is created, starts the payment through
:func:`order_pay` and keeps the ranking the buyer was offered on the payment.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from marketplace.errors import OrderNotFound, OrderNotPayable
from marketplace.models import Order
from marketplace.services.orders import order_pay
from payments.client import Client
from payments.ordering import Offer, offer_for


def order_checkout_offer(*, order: Order, client: Client) -> Offer:
    """What the order's buyer may pay it with from this client: the ranked methods and the
    instalment plans (reads only)."""
    return offer_for(buyer=order.buyer, amount=order.amount, currency=order.currency, client=client)


def order_checkout_pay(
    *,
    order: Order,
    buyer,
    method: str,
    client: Client,
    return_url: str,
    instalments: int | None = None,
):
    """Start paying ``order`` with a method (and plan) the buyer is offered; returns the
    ``payments.models.Payment``.

    Raises ``payments.ordering.ChoiceRefused`` for a method that is not offered as usable or
    a plan that is not offered (nothing is created), ``OrderNotPayable`` when the order can no
    longer be paid, and whatever :func:`order_pay` and the platform raise."""
    if order.buyer_id != getattr(buyer, "pk", None):
        raise OrderNotFound(_("No such order."))
    if not order.is_payable:
        raise OrderNotPayable(_("This order can no longer be paid."))
    offer = order_checkout_offer(order=order, client=client)
    choice = offer.choose(method=method, instalments=instalments)
    payment = order_pay(
        order=order,
        buyer=buyer,
        method=choice.method,
        client=client,
        return_url=return_url,
        instalments=choice.instalments,
        ordering=offer.ranking.as_dict(),
    )
    return payment
