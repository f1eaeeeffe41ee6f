"""The shop's state-changing services (HackSoft style: ``<noun>_<verb>``, keyword-only).

Views, the API, admin actions, receivers, tasks and commands all come in through here.
"""

from marketplace.services.chargebacks import order_chargeback_close, order_chargeback_hold
from marketplace.services.checkout import order_checkout_offer, order_checkout_pay
from marketplace.services.delivery import (
    RevealedCode,
    order_codes_reveal,
    order_delivery_email_send,
    order_payment_status_sync,
    order_payment_succeeded,
    order_refund_succeeded,
    seller_funds_mature,
    seller_funds_mature_one,
)
from marketplace.services.disputes import (
    dispute_answer,
    dispute_open,
    dispute_refund,
    dispute_refund_declined,
    dispute_reject,
)
from marketplace.services.listings import (
    card_code_withdraw,
    codes_check,
    codes_split,
    listing_codes_add,
    listing_create,
    listing_moderate,
    listing_update,
)
from marketplace.services.orders import (
    MAX_QUANTITY,
    order_cancel,
    order_create,
    order_pay,
    order_reservation_release,
    order_reservations_release,
)
from marketplace.services.payouts import (
    payout_approve,
    payout_destination_create,
    payout_mark_paid,
    payout_reject,
    payout_request,
    seller_available_balance,
)

__all__ = [
    "MAX_QUANTITY",
    "RevealedCode",
    "card_code_withdraw",
    "codes_check",
    "codes_split",
    "dispute_answer",
    "dispute_open",
    "dispute_refund",
    "dispute_refund_declined",
    "dispute_reject",
    "listing_codes_add",
    "listing_create",
    "listing_moderate",
    "listing_update",
    "order_cancel",
    "order_chargeback_close",
    "order_chargeback_hold",
    "order_checkout_offer",
    "order_checkout_pay",
    "order_codes_reveal",
    "order_create",
    "order_delivery_email_send",
    "order_pay",
    "order_payment_status_sync",
    "order_payment_succeeded",
    "order_refund_succeeded",
    "order_reservation_release",
    "order_reservations_release",
    "payout_approve",
    "payout_destination_create",
    "payout_mark_paid",
    "payout_reject",
    "payout_request",
    "seller_available_balance",
    "seller_funds_mature",
    "seller_funds_mature_one",
]
