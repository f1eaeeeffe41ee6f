"""A payment risk held back: the buyer answers a challenge, or an analyst decides a review.
Either way a payment let through is opened at a channel as if risk had allowed it."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from payments.models import Payment
from payments.services import transitions
from payments.services.common import PaymentError
from payments.services.failover import open_at_channel
from payments.services.risk import challenge_check
from payments.states import PaymentStatus
from risk.services import assessment_review_record


def payment_challenge_answer(*, payment: Payment, code: str) -> Payment:
    """The buyer typed the one-time code; a right answer lets the payment proceed."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status != PaymentStatus.CHALLENGE:
            raise PaymentError(_("This payment is not waiting for a code."))
        passed = challenge_check(payment, code)
    if not passed:
        if payment.status == PaymentStatus.BLOCKED:
            return payment
        raise PaymentError(_("That code is not right. Check the latest e-mail and try again."))
    return open_at_channel(payment)


def payment_review_decide(*, payment: Payment, approve: bool, reviewer: str) -> Payment:
    """A risk analyst releases or blocks a payment held for review. Released, it is opened at
    a channel as if risk had allowed it; either way the shop hears of it, and risk records
    who decided what."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status != PaymentStatus.REVIEW:
            raise PaymentError(_("This payment is not held for review."))
        risk = {
            **payment.risk,
            "reviewed_by": reviewer,
            "review": "approved" if approve else "blocked",
        }
        if risk.get("assessment_id"):
            assessment_review_record(
                assessment_id=risk["assessment_id"], reviewer=reviewer, approve=approve
            )
        if not approve:
            return transitions.apply(
                payment,
                "block",
                risk=risk,
                failure_code="REVIEW_BLOCKED",
                failure_reason=_("Blocked after review."),
                failure_guidance=_("Contact support if you think this is a mistake."),
            )
        transitions.apply(payment, "release", risk=risk)
    payment = open_at_channel(payment)
    if payment.status == PaymentStatus.PENDING:  # success and failure have their own signals
        transitions.announce(payment)
    return payment
