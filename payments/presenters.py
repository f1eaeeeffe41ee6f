"""The public shape of a payment (CONTRACT.md "REST API"), shared by the API and pages."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from payments.models import Payment
from payments.states import PaymentStatus


def latest_attempt(payment: Payment):
    attempts = list(payment.attempts.all())  # prefetched by callers that list many
    return max(attempts, key=lambda a: (a.created_at, a.pk)) if attempts else None


def payment_as_dict(payment: Payment) -> dict[str, Any]:
    attempt = latest_attempt(payment)
    data: dict[str, Any] = {
        "id": str(payment.public_id),
        "status": payment.status,
        "method": payment.method,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "channel": attempt.account.code if attempt else None,
        "action": attempt.action if attempt and payment.status == PaymentStatus.PENDING else None,
    }
    if payment.status in {PaymentStatus.FAILED, PaymentStatus.BLOCKED, PaymentStatus.EXPIRED}:
        data["reason"] = payment.failure_reason or _("The payment did not go through.")
        data["guidance"] = payment.failure_guidance
        data["code"] = payment.failure_code
    if payment.status == PaymentStatus.CHALLENGE:
        data["challenge"] = {
            "type": "one_time_code",
            "how": _("We sent a six-digit code to your e-mail. Send it back to confirm this payment."),
            "answer_field": "code",
        }
    if payment.status == PaymentStatus.REVIEW:
        data["reason"] = _("This payment is being checked by our team; you will be told shortly.")
    if payment.refunded_amount:
        data["refunded"] = str(payment.refunded_amount)
    return data
