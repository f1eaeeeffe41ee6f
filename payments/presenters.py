"""The public shape of a payment (CONTRACT.md "REST API"), shared by the API and pages."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from payments.errors import NO_CHANNEL, buyer_message, error_known, error_spec
from payments.models import Payment
from payments.states import PaymentStatus

# The platform's own refusals, by the code stored on the payment.
_PLATFORM_REASONS = {
    "RISK_BLOCKED": (
        gettext_lazy("This payment cannot be accepted."),
        gettext_lazy("Contact support if you think this is a mistake."),
    ),
    "REVIEW_BLOCKED": (
        gettext_lazy("Blocked after review."),
        gettext_lazy("Contact support if you think this is a mistake."),
    ),
    "CHALLENGE_FAILED": (gettext_lazy("Too many wrong codes."), ""),
}


def latest_attempt(payment: Payment):
    attempts = list(payment.attempts.all())  # prefetched by callers that list many
    return max(attempts, key=lambda a: (a.created_at, a.pk)) if attempts else None


def failure_for_viewer(payment: Payment) -> tuple[str, str]:
    """(reason, guidance) of a payment that did not go through, in the language of whoever
    looks now: the stored code is rendered again, since the decline may have been learnt by
    a notification or a query under another language."""
    code = payment.failure_code
    if code in _PLATFORM_REASONS:
        reason, guidance = _PLATFORM_REASONS[code]
        return str(reason), str(guidance)
    if code == "NO_CHANNEL":
        message = buyer_message(NO_CHANNEL, code)
        return message.reason, message.guidance
    attempt = latest_attempt(payment)
    if code and attempt is not None and error_known(attempt.account.backend, code):
        message = buyer_message(error_spec(attempt.account.backend, code), code)
        return message.reason, message.guidance
    # A code no table knows: the words stored with it (the channel's own, or ours).
    return payment.failure_reason or _("The payment did not go through."), payment.failure_guidance


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
        data["reason"], data["guidance"] = failure_for_viewer(payment)
        data["code"] = payment.failure_code
    if payment.status == PaymentStatus.CHALLENGE:
        data["challenge"] = {
            "type": "one_time_code",
            "how": _(
                "We sent a six-digit code to your e-mail. Send it back to confirm this payment."
            )
            if payment.buyer.email
            else _(
                "We sent a six-digit code by text message to your phone. Send it back to "
                "confirm this payment."
            ),
            "answer_field": "code",
        }
    if payment.status == PaymentStatus.REVIEW:
        data["reason"] = _("This payment is being checked by our team; you will be told shortly.")
    if payment.refunded_amount:
        data["refunded"] = str(payment.refunded_amount)
    if payment.foreign:
        data["charge"] = charge_as_dict(payment)
    return data


def charge_as_dict(payment: Payment) -> dict[str, Any]:
    """What a foreign-currency payment charges: amount, currency, the rate and its time."""
    from payments import fx

    quote = fx.Quote(
        currency=payment.charge_currency,
        rate=payment.fx_rate,
        at=payment.fx_rate_at,
        source=payment.fx_source,
    )
    price = fx.Price(
        cny=payment.amount,
        amount=payment.charge_amount,
        currency=payment.charge_currency,
        quote=quote,
    )
    return price.as_dict()
