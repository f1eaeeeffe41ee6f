"""The payment platform's services: start a payment (risk → routing → channel, with
failover), apply notices exactly once, chase lost callbacks, refund — every state change a
named transition (:mod:`payments.services.transitions`) that posts its journal entry and
announces itself.

Channel calls never run inside a database transaction: a slow provider must not hold row
locks. State changes are short transactions that lock Payment first, then Attempt.

The modules depend on each other one way: ``start`` and ``review`` → ``failover`` →
``queries`` → ``notices`` → ``refunds`` → (``four_eyes``, ``transitions`` →
``postings``).
"""

from payments.services.common import CENT, ApplyResult, PaymentError
from payments.services.four_eyes import SYSTEM, may_approve, self_approval_limit
from payments.services.notices import (
    notice_apply,
    notification_receive,
    payment_confirm_settled,
)
from payments.services.paypal_buttons import (
    ButtonsRefused,
    paypal_buttons_abandon,
    paypal_buttons_capture,
    paypal_buttons_order,
)
from payments.services.queries import attempt_query, attempts_due_for_query
from payments.services.refunds import refund_decide, refund_request, refund_send, refund_settle
from payments.services.review import payment_challenge_answer, payment_review_decide
from payments.services.settlements import settlement_funds_receive
from payments.services.start import payment_start

__all__ = [
    "CENT",
    "SYSTEM",
    "ApplyResult",
    "ButtonsRefused",
    "PaymentError",
    "attempt_query",
    "may_approve",
    "attempts_due_for_query",
    "notice_apply",
    "notification_receive",
    "payment_challenge_answer",
    "payment_confirm_settled",
    "payment_review_decide",
    "payment_start",
    "paypal_buttons_abandon",
    "paypal_buttons_capture",
    "paypal_buttons_order",
    "refund_decide",
    "refund_request",
    "refund_send",
    "refund_settle",
    "self_approval_limit",
    "settlement_funds_receive",
]
