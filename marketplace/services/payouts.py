"""Payouts: a seller asks for (part of) their available balance; Finance approves and marks it
paid. The request moves the money out of ``available`` at once (see ``postings``), under a
lock on the seller, so two requests can never spend the same balance."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from marketplace import postings
from marketplace.errors import PayoutRefused
from marketplace.models import CENT, Payout, PayoutDestination
from payments import ledger


def payout_destination_create(
    *, seller, kind: str, holder_name: str, account: str, bank_name: str = ""
) -> PayoutDestination:
    destination = PayoutDestination(
        seller=seller,
        kind=kind,
        holder_name=holder_name.strip(),
        account=account.strip().replace(" ", ""),
        bank_name=bank_name.strip(),
    )
    destination.full_clean()
    try:
        with transaction.atomic():
            destination.save()
    except IntegrityError:
        raise ValidationError({"account": _("You have added this account already.")})
    return destination


def seller_available_balance(*, seller_id: int) -> Decimal:
    return ledger.balance(postings.seller_available(seller_id), natural=True)


def payout_request(*, seller, destination: PayoutDestination, amount) -> Payout:
    """Request a payout of ``amount`` (≤ available balance) to one of the seller's
    destinations. Raises :class:`PayoutRefused` and changes nothing otherwise."""
    try:
        amount = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise PayoutRefused(_("Enter an amount such as 100.00."))
    if amount <= 0 or amount != amount.quantize(CENT):
        raise PayoutRefused(_("Enter a positive amount with at most two decimals."))
    if destination.seller_id != getattr(seller, "pk", None):
        raise PayoutRefused(_("Choose one of your own payout accounts."))
    with transaction.atomic():
        # One seller's requests queue here; the balance read below cannot go stale.
        get_user_model().objects.select_for_update().filter(pk=seller.pk).first()
        available = seller_available_balance(seller_id=seller.pk)
        if amount > available:
            raise PayoutRefused(
                _(
                    "You can request at most %(available)s; %(amount)s is more than your "
                    "available balance."
                )
                % {"available": available, "amount": amount}
            )
        payout = Payout(seller=seller, destination=destination, amount=amount)
        payout.full_clean()
        payout.save()
        postings.payout_request_post(payout=payout)
    return payout


def _locked(payout: Payout) -> Payout:
    return Payout.objects.select_for_update().get(pk=payout.pk)


def payout_approve(*, payout: Payout, staff) -> Payout:
    with transaction.atomic():
        payout = _locked(payout)
        if payout.status != Payout.Status.REQUESTED:
            raise PayoutRefused(_("Only a requested payout can be approved."))
        if payout.seller_id == getattr(staff, "pk", None):
            raise PayoutRefused(
                _("Nobody approves their own payout; another member of Finance must.")
            )
        payout.transition(Payout.Status.APPROVED)
        payout.decided_by = payout.approved_by = staff
        payout.decided_at = payout.approved_at = timezone.now()
        payout.save()
    return payout


def payout_mark_paid(*, payout: Payout, staff, reference: str = "") -> Payout:
    """Finance sent the money: the request's hold becomes paid-out money in the journal."""
    with transaction.atomic():
        payout = _locked(payout)
        if payout.status != Payout.Status.APPROVED:
            raise PayoutRefused(_("Approve the payout before marking it paid."))
        if payout.seller_id == getattr(staff, "pk", None):
            raise PayoutRefused(_("Nobody pays out to themselves; another member of Finance must."))
        payout.transition(Payout.Status.PAID)
        payout.paid_at = timezone.now()
        payout.paid_by = staff
        payout.reference = (reference or payout.reference)[:64]
        payout.save()
        postings.payout_paid_post(payout=payout)
    return payout


def payout_reject(*, payout: Payout, staff, note: str = "") -> Payout:
    """Refuse a payout: the amount goes back to the seller's available balance."""
    with transaction.atomic():
        payout = _locked(payout)
        if payout.status not in {Payout.Status.REQUESTED, Payout.Status.APPROVED}:
            raise PayoutRefused(_("Only a requested or approved payout can be rejected."))
        payout.transition(Payout.Status.REJECTED)
        payout.rejected_by = staff
        payout.rejected_at = timezone.now()
        if payout.decided_by_id is None:  # the first decision stays recorded as it was
            payout.decided_by, payout.decided_at = staff, payout.rejected_at
        payout.note = note[:255]
        payout.save()
        postings.payout_release_post(payout=payout)
    return payout
