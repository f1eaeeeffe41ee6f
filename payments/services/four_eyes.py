"""Four eyes on refunds: who may let money go back, and the trail each step leaves.

Every way a refund starts (the refund form, the bulk action, a dispute decision, the shop's
automatic refunds) goes through ``refunds.refund_request``, which asks this module whether
the refund may leave at once. A person's refund waits for someone allowed to approve it
(``payments.approve_refund``: Finance) who is not the person who asked — except Finance's
own refunds up to ``settings.REFUND_SELF_APPROVAL_LIMIT``. The system's own refunds (an
order that could not be delivered, a double charge) go at once: nobody asked, and the money
goes back to the source it came from.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext as _

from accounts import audit
from payments.models import Refund
from payments.services.common import PaymentError

APPROVE_PERMISSION = "payments.approve_refund"


class _System:
    """The requester of a refund nobody asked for (the platform gives back what it cannot
    keep). Passed as ``requested_by=SYSTEM`` so that forgetting the requester is an error,
    never a silent exemption."""

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = _System()


def self_approval_limit() -> Decimal:
    return Decimal(settings.REFUND_SELF_APPROVAL_LIMIT)


def may_approve(user) -> bool:
    """Whether ``user`` may let a refund leave (Finance, or a superuser)."""
    return bool(
        user is not None
        and user is not SYSTEM
        and user.is_active
        and user.has_perm(APPROVE_PERMISSION)
    )


def check_requester(requested_by) -> None:
    if requested_by is None:
        raise PaymentError(_("A refund must say who asks for it."))


def goes_at_once(requested_by, amount: Decimal) -> bool:
    """The system's refunds, and Finance's own up to the self-approval limit, need no
    second person."""
    if requested_by is SYSTEM:
        return True
    return may_approve(requested_by) and amount <= self_approval_limit()


def check_decider(refund: Refund, by, *, approve: bool, reason: str) -> None:
    """Refuse a decision the rule forbids, with the reason, before anything changes."""
    if not may_approve(by):
        raise PaymentError(_("Only Finance may approve or decline refunds."))
    if approve and refund.requested_by_id is not None and refund.requested_by_id == by.pk:
        raise PaymentError(
            _("You asked for this refund; another member of Finance must approve it.")
        )
    if not approve and not reason:
        raise PaymentError(_("Say why the refund is declined."))


def record(refund: Refund, *, actor, event: str, detail: str = "") -> None:
    """One audit row per step: asked, approved, declined (``accounts.audit``)."""
    audit.record(
        actor=None if actor is SYSTEM else actor,
        event=event,
        obj=refund,
        detail=detail,
        refund_no=refund.refund_no,
        amount=refund.amount,
        status=refund.status,
        requested_by="system" if refund.requested_by_system else refund.requested_by_id,
    )
