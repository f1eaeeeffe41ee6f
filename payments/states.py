"""The payment and attempt state machines: every transition is checked here and only here.

Transitions are monotone: once money is known to have moved, nothing moves the record back to
"waiting". A success that arrives after failure/expiry is allowed on purpose — the channel
took the buyer's money and that fact must not be lost (DESIGN.md §3).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class PaymentStatus(models.TextChoices):
    CREATED = "created", _("created")
    CHALLENGE = "challenge", _("waiting for a one-time code")
    REVIEW = "review", _("held for review")
    BLOCKED = "blocked", _("blocked")
    PENDING = "pending", _("waiting for the buyer")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    EXPIRED = "expired", _("expired")
    CANCELLED = "cancelled", _("cancelled")
    PARTIALLY_REFUNDED = "partially_refunded", _("partially refunded")
    REFUNDED = "refunded", _("refunded")


class AttemptStatus(models.TextChoices):
    CREATED = "created", _("created")
    PENDING = "pending", _("pending at the channel")
    UNKNOWN = "unknown", _("outcome unknown")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    EXPIRED = "expired", _("expired")
    CANCELLED = "cancelled", _("closed")


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", _("awaiting Finance approval")
    PENDING = "pending", _("pending")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    DECLINED = "declined", _("declined by Finance")


P, A, R = PaymentStatus, AttemptStatus, RefundStatus
_LATE_MONEY = {P.SUCCEEDED}

PAYMENT_TRANSITIONS: dict[str, set[str]] = {
    P.CREATED: {
        P.PENDING,
        P.CHALLENGE,
        P.REVIEW,
        P.BLOCKED,
        P.FAILED,
        P.CANCELLED,
        P.EXPIRED,
        P.SUCCEEDED,
    },
    P.CHALLENGE: {P.CREATED, P.PENDING, P.BLOCKED, P.FAILED, P.CANCELLED, P.EXPIRED},
    P.REVIEW: {P.CREATED, P.PENDING, P.BLOCKED, P.CANCELLED, P.EXPIRED},
    P.BLOCKED: set(),
    P.PENDING: {P.SUCCEEDED, P.FAILED, P.EXPIRED, P.CANCELLED},
    P.FAILED: _LATE_MONEY,
    P.EXPIRED: _LATE_MONEY,
    P.CANCELLED: _LATE_MONEY,
    P.SUCCEEDED: {P.PARTIALLY_REFUNDED, P.REFUNDED},
    P.PARTIALLY_REFUNDED: {P.PARTIALLY_REFUNDED, P.REFUNDED},
    P.REFUNDED: set(),
}

ATTEMPT_TRANSITIONS: dict[str, set[str]] = {
    A.CREATED: {A.PENDING, A.UNKNOWN, A.SUCCEEDED, A.FAILED, A.CANCELLED, A.EXPIRED},
    A.PENDING: {A.UNKNOWN, A.SUCCEEDED, A.FAILED, A.EXPIRED, A.CANCELLED},
    A.UNKNOWN: {A.PENDING, A.SUCCEEDED, A.FAILED, A.EXPIRED, A.CANCELLED},
    A.FAILED: {A.SUCCEEDED},
    A.EXPIRED: {A.SUCCEEDED},
    A.CANCELLED: {A.SUCCEEDED},
    A.SUCCEEDED: set(),
}

REFUND_TRANSITIONS: dict[str, set[str]] = {
    R.REQUESTED: {R.PENDING, R.DECLINED},
    R.PENDING: {R.SUCCEEDED, R.FAILED},
    R.SUCCEEDED: set(),
    R.FAILED: set(),
    R.DECLINED: set(),
}

PAYMENT_OPEN = {P.CREATED, P.CHALLENGE, P.REVIEW, P.PENDING}
PAYMENT_PAID = {P.SUCCEEDED, P.PARTIALLY_REFUNDED, P.REFUNDED}
ATTEMPT_OPEN = {A.CREATED, A.PENDING, A.UNKNOWN}


class IllegalTransition(Exception):
    """A state change the machine forbids; callers treat it as a bug or a stale message."""

    def __init__(self, kind: str, current: str, target: str):
        super().__init__(f"{kind} cannot go from {current!r} to {target!r}")
        self.kind, self.current, self.target = kind, current, target


def check(kind: str, table: dict[str, set[str]], current: str, target: str) -> None:
    if target not in table.get(current, set()):
        raise IllegalTransition(kind, current, target)
