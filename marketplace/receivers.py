"""The shop listens to the payment platform's announcements (payments never imports us).

Receivers run inside the transaction that changed the payment, so delivery (or the refund
request) commits or rolls back together with the payment's new state. They only route to
services; payments whose reference is not ``order:…`` are not ours and are ignored.
"""

import logging

from django.dispatch import receiver

from marketplace import services
from payments import signals
from payments.payables import order_number_of

logger = logging.getLogger(__name__)


@receiver(signals.payment_succeeded, dispatch_uid="marketplace.payment_succeeded")
def on_payment_succeeded(sender, payment, **kwargs):
    if order_number_of(payment.reference):
        services.order_payment_succeeded(payment=payment)


@receiver(signals.payment_failed, dispatch_uid="marketplace.payment_failed")
def on_payment_failed(sender, payment, **kwargs):
    # The order stays payable with another method; only a review hold needs lifting.
    if order_number_of(payment.reference):
        services.order_payment_status_sync(payment=payment)


@receiver(signals.payment_status_changed, dispatch_uid="marketplace.payment_status_changed")
def on_payment_status_changed(sender, payment, **kwargs):
    if order_number_of(payment.reference):
        services.order_payment_status_sync(payment=payment)


@receiver(signals.refund_succeeded, dispatch_uid="marketplace.refund_succeeded")
def on_refund_succeeded(sender, refund, **kwargs):
    if order_number_of(refund.payment.reference):
        services.order_refund_succeeded(refund=refund)


@receiver(signals.refund_declined, dispatch_uid="marketplace.refund_declined")
def on_refund_declined(sender, refund, **kwargs):
    # A dispute decided for the buyer whose refund Finance declined is open again.
    if order_number_of(refund.payment.reference):
        services.dispute_refund_declined(refund=refund)


@receiver(signals.chargeback_opened, dispatch_uid="marketplace.chargeback_opened")
def on_chargeback_opened(sender, dispute, payment, **kwargs):
    # The seller's money for the order is held until the channel's dispute closes.
    if order_number_of(payment.reference):
        services.order_chargeback_hold(dispute=dispute, payment=payment)


@receiver(signals.chargeback_closed, dispatch_uid="marketplace.chargeback_closed")
def on_chargeback_closed(sender, dispute, payment, **kwargs):
    if order_number_of(payment.reference):
        services.order_chargeback_close(dispute=dispute, payment=payment)


@receiver(signals.refund_failed, dispatch_uid="marketplace.refund_failed")
def on_refund_failed(sender, refund, **kwargs):
    if order_number_of(refund.payment.reference):
        logger.error(
            "refund %s of %s failed at the channel: staff must act",
            refund.refund_no,
            refund.payment.reference,
        )
