"""A channel's dispute over an order's payment (a card chargeback, a PayPal case), as the
shop sees it: the seller's money for the order is held from the moment the dispute opens —
it neither matures nor can be paid out — then released when the dispute is won, or charged
to the seller (and the commission given up) when it is lost, the order then refunded by the
buyer's bank. Called by the receivers of ``payments.signals.chargeback_*``, inside the
transaction that recorded the dispute."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.utils import timezone

from marketplace import postings
from marketplace.models import CENT, CardCode, Order

logger = logging.getLogger(__name__)
ZERO = Decimal("0.00")

#: orders whose sale is posted: the seller has money for them to hold
_SOLD = {Order.Status.DELIVERED, Order.Status.DISPUTED, Order.Status.COMPLETED}


def _order(payment) -> Order | None:
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("listing")
        .filter(payment_public_id=payment.public_id)
        .first()
    )


def _shares(order: Order, amount: Decimal) -> tuple[Decimal, Decimal]:
    """The seller's net and the commission in ``amount`` of the order's good codes (a
    dispute over part of the order holds that part)."""
    good = order.codes.filter(status=CardCode.Status.SOLD).count()
    price = order.unit_price * good
    if price <= 0:
        return ZERO, ZERO
    part = min(Decimal(amount) / price, Decimal(1))
    net = (order.seller_net_per_code * good * part).quantize(CENT)
    commission = (order.unit_commission * good * part).quantize(CENT)
    return net, commission


def order_chargeback_hold(*, dispute, payment) -> Decimal:
    """Hold the seller's share of the disputed amount; returns what was held (0 when the
    payment paid no order of ours, or none whose sale was posted)."""
    order = _order(payment)
    if order is None or order.status not in _SOLD:
        return ZERO
    net, _commission = _shares(order, dispute.price_share(dispute.amount))
    if net <= 0:
        return ZERO
    postings.chargeback_hold_post(
        order=order,
        dispute_id=dispute.pk,
        amount=net,
        matured=order.status == Order.Status.COMPLETED,
    )
    _note(order, f"provider dispute {dispute.provider_id} opened: {net} held")
    return net


def order_chargeback_close(*, dispute, payment) -> None:
    """Won or closed: the hold is released. Lost: the seller's share is charged to them, the
    commission given up, and the order is refunded (by the buyer's bank, not by us)."""
    order = _order(payment)
    if order is None:
        return
    if dispute.outcome != "lost":
        if postings.chargeback_release_post(order=order, dispute_id=dispute.pk):
            _note(order, f"provider dispute {dispute.provider_id} {dispute.outcome}: released")
        return
    net, commission = _shares(order, dispute.price_share(dispute.lost_amount or dispute.amount))
    if postings.chargeback_debit_post(
        order=order, dispute_id=dispute.pk, net=net, commission=commission
    ):
        _note(order, f"provider dispute {dispute.provider_id} lost: {net} charged to the seller")
    if order.status in _SOLD:
        order.transition(Order.Status.REFUNDED)
        order.refunded_at = timezone.now()
        order.save(update_fields=["status", "refunded_at"])


def _note(order: Order, text: str) -> None:
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M")
    order.note = f"{order.note}\n{stamp} {text}".strip()
    order.save(update_fields=["note"])
    logger.info("order %s: %s", order.number, text)
