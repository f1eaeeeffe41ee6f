"""Disputes: the buyer reports a bad code within the brand's guarantee window, the seller
answers, Support/Finance decide. A refund marks the code bad, reverses the seller's pending
money for it (journal) and asks the payment platform to refund the code's price."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from marketplace import postings
from marketplace.errors import DisputeRefused, OrderNotFound
from marketplace.evidence import EvidenceRefused, clean_images
from marketplace.models import CardCode, Dispute, DisputeEvidence, Order

logger = logging.getLogger(__name__)

_DISPUTABLE = {Order.Status.DELIVERED, Order.Status.DISPUTED}


def dispute_open(
    *, order: Order, buyer, code_id: int, reason: str, note: str, evidence=()
) -> Dispute:
    """Open a dispute about one delivered code. One dispute per code, ever. ``evidence``:
    up to three screenshots, all checked before anything is saved."""
    if order.buyer_id != getattr(buyer, "pk", None):
        raise OrderNotFound(_("No such order."))
    try:
        images = clean_images(evidence)
    except EvidenceRefused as exc:
        raise DisputeRefused(str(exc))
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("listing__seller")
            .get(pk=order.pk)
        )
        if order.status not in _DISPUTABLE or order.guarantee_until is None:
            raise DisputeRefused(
                _("This order is %(status)s: only delivered orders can be disputed.")
                % {"status": order.get_status_display()}
            )
        if timezone.now() >= order.guarantee_until:
            raise DisputeRefused(
                _(
                    "The guarantee window of this order ended on %(when)s; disputes are no longer "
                    "accepted."
                )
                % {"when": timezone.localtime(order.guarantee_until).strftime("%Y-%m-%d %H:%M")}
            )
        code = CardCode.objects.filter(pk=code_id, order=order).first()
        if code is None:
            raise DisputeRefused(_("That code is not part of this order."))
        existing = Dispute.objects.filter(code=code).first()
        if existing is not None:
            raise DisputeRefused(
                _("This code has already been disputed (status: %(status)s); one dispute per code.")
                % {"status": existing.get_status_display()}
            )
        if code.status != CardCode.Status.SOLD:
            raise DisputeRefused(_("This code cannot be disputed."))
        dispute = Dispute(order=order, code=code, reason=reason, note=note)
        try:
            dispute.full_clean()
        except ValidationError as exc:
            raise DisputeRefused(" ".join(exc.messages))
        try:
            with transaction.atomic():
                dispute.save()
        except IntegrityError:
            raise DisputeRefused(_("This code has already been disputed; one dispute per code."))
        _attach(dispute, images, by=buyer)
        if order.status == Order.Status.DELIVERED:
            order.transition(Order.Status.DISPUTED)
            order.save(update_fields=["status"])
        seller_email = order.listing.seller.email
        number = order.number
        if seller_email:
            transaction.on_commit(
                lambda: send_mail(
                    _("A buyer disputed a code of order %(number)s") % {"number": number},
                    _("Please answer the dispute from your seller dashboard on Cardex."),
                    None,
                    [seller_email],
                ),
                robust=True,
            )
    return dispute


def _attach(dispute: Dispute, images, *, by) -> None:
    stored = []
    try:
        for image in images:
            item = DisputeEvidence(
                dispute=dispute,
                content_type=image.content_type,
                original_name=image.original_name,
                uploaded_by=by,
            )
            item.file.save(image.content.name, image.content, save=False)
            stored.append(item.file.name)
            item.save()
    except Exception:
        for name in stored:  # the transaction rolls back: leave no orphan file behind
            DisputeEvidence.file.field.storage.delete(name)
        raise


def dispute_answer(*, dispute: Dispute, seller, answer: str) -> Dispute:
    """The seller's side of the story, for the staff who decide."""
    answer = (answer or "").strip()
    if not answer:
        raise DisputeRefused(_("Write an answer first."))
    with transaction.atomic():
        dispute = (
            Dispute.objects.select_for_update(of=("self",))
            .select_related("order__listing")
            .get(pk=dispute.pk)
        )
        if dispute.order.listing.seller_id != getattr(seller, "pk", None):
            raise DisputeRefused(_("This dispute is not about one of your codes."))
        if not dispute.is_open:
            raise DisputeRefused(_("This dispute has been decided already."))
        dispute.seller_answer = answer[:2000]
        dispute.seller_answered_at = timezone.now()
        dispute.status = Dispute.Status.ANSWERED
        dispute.full_clean()
        dispute.save()
    return dispute


def _order_settle_after_decision(order: Order) -> None:
    still_open = order.disputes.filter(
        status__in=[Dispute.Status.OPEN, Dispute.Status.ANSWERED]
    ).exists()
    if not still_open and order.status == Order.Status.DISPUTED:
        order.transition(Order.Status.DELIVERED)
        order.save(update_fields=["status"])


def dispute_refund(*, dispute: Dispute, staff, note: str = "") -> Dispute:
    """Decide for the buyer: code marked bad, seller's pending money for it reversed, and a
    refund of the code's price asked of the payment platform in ``staff``'s name — it waits
    for Finance's approval unless ``staff`` may send it on their own word (four eyes,
    docs/backoffice.md). All or nothing. Finance declining the refund reopens the dispute
    (``dispute_refund_declined``)."""
    from payments import services as payment_services
    from payments.models import Payment

    with transaction.atomic():
        dispute = Dispute.objects.select_for_update(of=("self",)).get(pk=dispute.pk)
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("listing")
            .get(pk=dispute.order_id)
        )
        if not dispute.is_open:
            raise DisputeRefused(_("This dispute has been decided already."))
        payment = Payment.objects.filter(public_id=order.payment_public_id).first()
        if payment is None:
            raise DisputeRefused(_("The order's payment cannot be found; refund it by hand."))
        CardCode.objects.filter(pk=dispute.code_id).update(status=CardCode.Status.BAD)
        dispute.status = Dispute.Status.REFUNDED
        dispute.decided_by = staff
        dispute.decided_at = timezone.now()
        dispute.decision_note = note[:255]
        dispute.save()
        dispute.order = order
        postings.dispute_refund_post(dispute=dispute)
        try:
            with transaction.atomic():
                refund = payment_services.refund_request(
                    payment=payment,
                    amount=order.unit_price,
                    reason=f"dispute #{dispute.pk} on order {order.number}",
                    origin="shop",
                    requested_by=staff,
                )
                if refund is not None:
                    Dispute.objects.filter(pk=dispute.pk).update(refund=refund)
                    dispute.refund = refund
        except Exception as exc:
            logger.warning("refund for dispute %s refused: %s", dispute.pk, exc)
            raise DisputeRefused(
                _("The payment platform refused the refund (%(error)s); nothing was changed.")
                % {"error": exc}
            )
        _order_settle_after_decision(order)
    return dispute


def dispute_reject(*, dispute: Dispute, staff, note: str = "") -> Dispute:
    """Decide for the seller: the code stays sold, the seller keeps the money."""
    with transaction.atomic():
        dispute = Dispute.objects.select_for_update(of=("self",)).get(pk=dispute.pk)
        order = Order.objects.select_for_update(of=("self",)).get(pk=dispute.order_id)
        if not dispute.is_open:
            raise DisputeRefused(_("This dispute has been decided already."))
        dispute.status = Dispute.Status.REJECTED
        dispute.decided_by = staff
        dispute.decided_at = timezone.now()
        dispute.decision_note = note[:255]
        dispute.save()
        _order_settle_after_decision(order)
    return dispute


def dispute_refund_declined(*, refund) -> Dispute | None:
    """Finance declined the refund a decision for the buyer asked for: no money left, so the
    decision is undone — the code is sold again, the seller's money for it back in pending,
    the dispute open again for Support with Finance's reason in its note (the audit trail
    keeps the first decision)."""
    with transaction.atomic():
        dispute = Dispute.objects.select_for_update(of=("self",)).filter(refund=refund).first()
        if dispute is None or dispute.status != Dispute.Status.REFUNDED:
            return dispute
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("listing")
            .get(pk=dispute.order_id)
        )
        dispute.order = order
        postings.dispute_refund_declined_post(dispute=dispute, refund_id=refund.pk)
        CardCode.objects.filter(pk=dispute.code_id).update(status=CardCode.Status.SOLD)
        dispute.status = (
            Dispute.Status.ANSWERED if dispute.seller_answered_at else Dispute.Status.OPEN
        )
        declined = _("Finance declined the refund: %(reason)s") % {"reason": refund.decision_note}
        dispute.decision_note = f"{dispute.decision_note} · {declined}".strip(" ·")[:255]
        dispute.decided_by = None
        dispute.decided_at = None
        dispute.save()
        if order.status == Order.Status.DELIVERED:
            order.transition(Order.Status.DISPUTED)
            order.save(update_fields=["status"])
    return dispute
