"""PayPal's JS SDK buttons, the platform's side: the order id createOrder hands the SDK,
the capture onApprove asks for, and what onCancel / onError leave behind.

The PayPal order itself is opened like every other channel's trade, by ``payment_start``
(risk, routing, failover, ``PayPalBackend.create`` by Orders v2); the buttons approve that
order. Each call names the PayPal order id the SDK holds, and it must be the one of this
payment's own open attempt: an approval of another order (or another payment's) is refused
before PayPal is asked to capture anything, and ``approval_capture`` checks the order's
amount against the attempt's before capturing. A capture answers through the same
``notice_apply`` as the webhook, so a replay, or the webhook arriving first, changes nothing.
"""

from __future__ import annotations

import logging
from typing import Literal

from django.utils.translation import gettext as _

from payments.accounts import backend_for
from payments.channels.base import ChannelDeclined, ChannelError
from payments.errors import BuyerMessage, buyer_message, error_spec
from payments.models import Attempt, Method, Payment
from payments.services.common import PaymentError
from payments.services.notices import notice_apply
from payments.states import ATTEMPT_OPEN, AttemptStatus, PaymentStatus

log = logging.getLogger(__name__)

BACKEND = "paypal"
Abandon = Literal["cancel", "error"]
_ABANDON_CODES = {"cancel": "PAYER_CANCELLED", "error": "BUTTONS_ERROR"}


class ButtonsRefused(PaymentError):
    """The buttons' call cannot go through; nothing was charged. ``message`` is for the
    buyer, in their language; ``code`` names why (the PayPal error table's words)."""

    def __init__(self, message: BuyerMessage):
        super().__init__(message.reason)
        self.code = message.code
        self.reason = message.reason
        self.guidance = message.guidance


def _refused(code: str) -> ButtonsRefused:
    return ButtonsRefused(buyer_message(error_spec(BACKEND, code), code))


def _paypal_attempts(payment: Payment):
    return payment.attempts.filter(account__backend=BACKEND).select_related("account")


def paypal_buttons_order(*, payment: Payment) -> str:
    """The PayPal order id for the SDK's ``createOrder``: that of the payment's open PayPal
    attempt (opened by Orders v2 when the buyer chose PayPal)."""
    if payment.method != Method.PAYPAL or payment.status != PaymentStatus.PENDING:
        raise PaymentError(_("This payment is not waiting for PayPal; nothing was charged."))
    attempt = (
        _paypal_attempts(payment)
        .filter(status__in=ATTEMPT_OPEN)
        .exclude(channel_trade_no="")
        .order_by("-created_at", "-pk")
        .first()
    )
    if attempt is None:
        raise PaymentError(_("This payment is not waiting for PayPal; nothing was charged."))
    return attempt.channel_trade_no


def _attempt_of(payment: Payment, order_id: str) -> Attempt:
    """The payment's PayPal attempt for ``order_id``, or the refusal of another order's."""
    attempt = (
        _paypal_attempts(payment).filter(channel_trade_no=order_id).first() if order_id else None
    )
    if attempt is None:
        log.warning(
            "PayPal buttons: order %r is not an attempt of payment %s", order_id, payment.pk
        )
        raise _refused("ORDER_MISMATCH")
    return attempt


def paypal_buttons_capture(*, payment: Payment, order_id: str) -> Payment:
    """``onApprove``: capture the approved order ``order_id`` by Orders v2 and apply the
    outcome; the answer is the payment as it stands afterwards.

    Refused (:class:`ButtonsRefused`, nothing charged): an order that is not this payment's
    (``ORDER_MISMATCH``), an order whose amount or currency is not the attempt's
    (``AMOUNT_MISMATCH``), an order not approved yet. A repeat after success answers the
    paid payment again; PayPal out of reach is a :class:`PaymentError` and leaves the
    approved order to the query task, which captures it.
    """
    attempt = _attempt_of(payment, order_id)
    if attempt.status == AttemptStatus.SUCCEEDED:
        return Payment.objects.get(pk=payment.pk)  # a replay: captured already
    if attempt.status not in ATTEMPT_OPEN or payment.status != PaymentStatus.PENDING:
        raise PaymentError(_("This payment is no longer open; nothing was charged."))
    backend = backend_for(attempt.account)
    try:
        notice = backend.approval_capture(
            channel_trade_no=order_id,
            out_trade_no=attempt.out_trade_no,
            amount=attempt.channel_amount,  # a foreign charge is checked in its currency
            currency=attempt.channel_currency,
        )
    except ChannelDeclined as exc:
        log.warning(
            "PayPal buttons: capture of %s refused for attempt %s: %s",
            order_id,
            attempt.out_trade_no,
            exc.code,
        )
        if exc.code in {"ORDER_MISMATCH", "AMOUNT_MISMATCH"}:
            Attempt.objects.filter(pk=attempt.pk).update(
                flagged=f"PayPal buttons: {exc.code} for order {order_id}"[:255]
            )
        raise _refused(exc.code) from None
    except ChannelError as exc:
        log.warning("PayPal buttons: capture of %s did not answer: %s", order_id, exc)
        raise PaymentError(
            _(
                "PayPal did not answer in time. If you approved the payment, this page "
                "updates by itself once PayPal confirms it."
            )
        ) from None
    result, detail = notice_apply(account=attempt.account, notice=notice)
    if result == "rejected":  # the capture does not match the attempt: flagged for staff
        log.error("PayPal buttons: capture of %s refused by the platform: %s", order_id, detail)
        raise _refused("AMOUNT_MISMATCH")
    return Payment.objects.get(pk=payment.pk)


def paypal_buttons_abandon(
    *, payment: Payment, order_id: str, why: Abandon, detail: str = ""
) -> BuyerMessage:
    """``onCancel`` / ``onError``: the buyer closed PayPal, or the buttons failed. The
    attempt stays open (the same order can still be approved from the buttons; PayPal lets
    an unapproved order expire by itself), the order stays payable, nothing is charged; the
    code is kept on the attempt for staff and the buyer gets the reason in their language."""
    code = _ABANDON_CODES[why]
    attempt = _attempt_of(payment, order_id)
    if attempt.status in ATTEMPT_OPEN:
        Attempt.objects.filter(pk=attempt.pk).update(
            error_code=code, error_message=detail[:255] or code
        )
    return buyer_message(error_spec(BACKEND, code), code)
