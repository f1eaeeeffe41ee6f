"""After the money: deliver on payment success, refund what cannot be delivered, reveal codes
(always audited), mail them, and mature the seller's money after the guarantee window.

A success is never lost and nothing is sold twice (DESIGN.md §3): a success that arrives after
the reservation lapsed re-reserves from the listing if stock allows, otherwise the payment
is refunded and the order says why; a second success for a paid order is refunded too.
Refunds are requested after the platform's transaction commits, never from inside it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from config.prepared import PreparedRead
from marketplace import postings, signals, vault
from marketplace.errors import OrderNotFound
from marketplace.models import HOLDING_STATUSES, CardCode, Dispute, Listing, Order, RevealAudit
from marketplace.services.orders import codes_release, codes_take
from payments import services as payment_services
from payments.models import ProviderDispute
from payments.payables import order_number_of
from payments.states import RefundStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RevealedCode:
    """One delivered secret in plaintext, for the buyer's eyes only (never printed by repr)."""

    id: int
    code: str = field(repr=False)
    pin: str = field(repr=False)
    status: str = CardCode.Status.SOLD
    disputed: bool = False


def _note(order: Order, text: str) -> None:
    stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M")
    order.note = f"{order.note}\n{stamp} {text}".strip()


def _refund_after_commit(*, payment, reason: str, order_id: int | None = None) -> None:
    """Ask the payment platform to give a payment the shop cannot take back — once the
    payment's success has committed, in a transaction of its own: never from inside the
    platform's locked transaction, and a refusal can never roll the success back. A refusal
    is logged and said on the order for staff (integrity_check also reports the paid,
    undelivered order)."""

    def request() -> None:
        try:
            # Nobody asked: the buyer paid and got nothing, and the money goes back to the
            # source it came from — exempt from four eyes, recorded as the system's request.
            payment_services.refund_request(
                payment=payment,
                amount=payment.amount,
                reason=reason[:255],
                origin="shop",
                requested_by=payment_services.SYSTEM,
            )
        except Exception:
            logger.exception("refund request for payment %s failed", payment.public_id)
            if order_id is not None:
                _note_refund_refused(order_id)

    transaction.on_commit(request)


def _note_refund_refused(order_id: int) -> None:
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).get(pk=order_id)
        _note(
            order, _("The automatic refund could not be requested: staff must refund this payment.")
        )
        order.save(update_fields=["note"])


def _refund_or_flag(*, order: Order, payment, reason: str) -> None:
    """Refund a payment the order cannot take; if the platform refuses, say so on the order."""
    _refund_after_commit(payment=payment, reason=reason, order_id=order.pk)


def _deliver(*, order: Order, payment) -> None:
    now = timezone.now()
    CardCode.objects.filter(order=order, status=CardCode.Status.RESERVED).update(
        status=CardCode.Status.SOLD, sold_at=now, reserved_until=None
    )
    order.transition(Order.Status.PAID)
    order.paid_at = getattr(payment, "succeeded_at", None) or now
    order.payment_public_id = payment.public_id
    order.transition(Order.Status.DELIVERED)
    order.delivered_at = now
    order.guarantee_until = now + dt.timedelta(hours=order.listing.brand.guarantee_hours)
    order.save(
        update_fields=[
            "status",
            "paid_at",
            "payment_public_id",
            "delivered_at",
            "guarantee_until",
            "note",
        ]
    )
    postings.sale_post(order=order, codes=order.quantity)
    order_id = order.pk
    transaction.on_commit(
        lambda: signals.order_delivered.send(sender=Order, order_id=order_id), robust=True
    )


def order_payment_succeeded(*, payment) -> Order | None:
    """React to a succeeded payment whose reference is ``order:<number>`` (idempotent).

    Runs inside the payment platform's transaction: delivery commits with the success; a
    refund the shop needs instead is requested once that has committed."""
    number = order_number_of(payment.reference)
    if number is None:
        return None
    # Inside the platform's transaction no savepoint is needed: a failure here propagates and
    # rolls the payment's success back with it (the channel then notifies again).
    with transaction.atomic(savepoint=False):
        return _payment_succeeded(payment=payment, number=number)


# Every paid order is locked with its listing and brand (the guarantee window): compiled once.
_ORDER_LOCKED = PreparedRead(
    lambda number: (
        Order.objects.select_for_update(of=("self",))
        .select_related("listing__brand")
        .filter(number=number)
    ),
    number=str,
)


_HELD_CODES_LOCKED = PreparedRead(
    lambda order_id: (
        CardCode.objects.select_for_update(of=("self",))
        .filter(order_id=order_id, status=CardCode.Status.RESERVED)
        .values_list("id", flat=True)
    ),
    order_id=int,
)


def _payment_succeeded(*, payment, number: str) -> Order | None:
    try:
        order = _ORDER_LOCKED.get(number=number)
    except Order.DoesNotExist:
        logger.error(
            "payment %s succeeded for unknown order %s: refunding", payment.public_id, number
        )
        _refund_after_commit(payment=payment, reason=f"no order {number}")
        return None
    if order.payment_public_id == payment.public_id:
        return order  # the same success announced again
    if order.payment_public_id is not None:
        _note(
            order,
            _("A second payment (%(id)s) succeeded for this paid order: it is being refunded.")
            % {"id": payment.public_id},
        )
        order.save(update_fields=["note"])
        _refund_or_flag(order=order, payment=payment, reason=f"order {number} was already paid")
        return order
    if payment.amount != order.amount or payment.currency != order.currency:
        _note(
            order,
            _(
                "A payment of %(amount)s %(currency)s does not match the order: it is being "
                "refunded."
            )
            % {
                "amount": payment.amount,
                "currency": payment.currency,
            },
        )
        order.save(update_fields=["note"])
        _refund_or_flag(
            order=order, payment=payment, reason=f"amount does not match order {number}"
        )
        return order
    if order.status not in HOLDING_STATUSES | {Order.Status.EXPIRED, Order.Status.CANCELLED}:
        _note(
            order,
            _("A payment succeeded for this %(status)s order: it is being refunded.")
            % {"status": order.get_status_display()},
        )
        order.save(update_fields=["note"])
        _refund_or_flag(order=order, payment=payment, reason=f"order {number} is {order.status}")
        return order

    held = _HELD_CODES_LOCKED.all(order_id=order.pk)
    if order.status in HOLDING_STATUSES and len(held) == order.quantity:
        _deliver(order=order, payment=payment)
        return order

    # The payment arrived after the reservation lapsed (or was cancelled): re-reserve.
    missing = order.quantity - len(held)
    with transaction.atomic():  # a savepoint: a partial take is undone, never half-kept
        taken = 0
        if order.listing.status == Listing.Status.ACTIVE:
            taken = codes_take(
                listing=order.listing, order=order, quantity=missing, until=timezone.now()
            )
        if taken != missing:
            transaction.set_rollback(True)
    if taken == missing:
        if order.status in HOLDING_STATUSES:
            order.status = Order.Status.EXPIRED  # lapsed while waiting; the success revives it
        _note(
            order,
            _("Paid after the reservation lapsed; the codes were reserved again and delivered."),
        )
        _deliver(order=order, payment=payment)
        return order

    codes_release(order=order)
    if order.status in HOLDING_STATUSES:
        order.transition(Order.Status.EXPIRED)
    _note(
        order,
        _(
            "Paid after the reservation lapsed and the listing no longer has enough codes: the "
            "payment is being refunded."
        ),
    )
    order.save(update_fields=["status", "note"])
    _refund_or_flag(order=order, payment=payment, reason=f"order {number} expired, out of stock")
    return order


def order_payment_status_sync(*, payment) -> Order | None:
    """Mirror a payment held for review on the order (and release the hold when the payment
    goes back to waiting or fails), so the buyer sees why nothing happens yet."""
    number = order_number_of(payment.reference)
    if number is None:
        return None
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).filter(number=number).first()
        if order is None or order.payment_public_id is not None:
            return order
        if payment.status == "review" and order.status == Order.Status.AWAITING_PAYMENT:
            order.transition(Order.Status.UNDER_REVIEW)
            order.save(update_fields=["status"])
        elif payment.status != "review" and order.status == Order.Status.UNDER_REVIEW:
            order.transition(Order.Status.AWAITING_PAYMENT)
            order.save(update_fields=["status"])
    return order


def _refunded_total(payment) -> Decimal:
    """What went back to the buyer of this payment's amount. A refund of a duplicate capture
    (two attempts of one payment both succeeding) gives back the extra money, not the order's."""
    settled = payment.refunds.filter(status="succeeded").exclude(origin="double_charge").aggregate(
        s=Sum("amount")
    )["s"] or Decimal("0")
    return max(Decimal(payment.refunded_amount or 0), settled)


def order_refund_succeeded(*, refund) -> Order | None:
    """Money went back to the buyer: the order becomes ``refunded`` once the whole of it is
    refunded. A full refund of a delivered order that was not decided through disputes
    (e.g. by staff) reverses the seller's remaining sale in the journal."""
    payment = refund.payment
    number = order_number_of(payment.reference)
    if number is None:
        return None
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("listing")
            .filter(number=number)
            .first()
        )
        if order is None or order.status == Order.Status.REFUNDED:
            return order
        refunded = _refunded_total(payment)
        if order.payment_public_id != payment.public_id:
            # A late or duplicate payment went back; the order itself may never have been paid.
            if (
                order.payment_public_id is None
                and refunded >= payment.amount
                and order.status
                in {
                    Order.Status.EXPIRED,
                    Order.Status.CANCELLED,
                }
            ):
                order.transition(Order.Status.REFUNDED)
                order.refunded_at = timezone.now()
                _note(order, _("The late payment was refunded in full."))
                order.save(update_fields=["status", "refunded_at", "note"])
            return order
        if refunded < order.amount:
            return order
        still_sold = order.codes.filter(status=CardCode.Status.SOLD).count()
        if still_sold:
            postings.order_refund_post(
                order=order, codes=still_sold, matured=order.status == Order.Status.COMPLETED
            )
        order.transition(Order.Status.REFUNDED)
        order.refunded_at = timezone.now()
        order.save(update_fields=["status", "refunded_at"])
    return order


@sensitive_variables()
def order_codes_reveal(
    *, order: Order, user, channel: str, ip: str | None = None, user_agent: str = ""
) -> list[RevealedCode]:
    """The order's delivered codes in plaintext, for its buyer only, and an audit record of
    the reveal (who, when, order, channel, IP, user agent). Before delivery: an empty list
    and no record. Anyone but the buyer gets :class:`OrderNotFound`."""
    if user is None or getattr(user, "pk", None) != order.buyer_id:
        raise OrderNotFound(_("No such order."))
    if not order.codes_revealable:
        return []
    codes = _REVEALABLE_CODES.all(order_id=order.pk)
    revealed = [
        RevealedCode(
            id=code.pk,
            code=vault.decrypt(code.code_encrypted),
            pin=vault.decrypt(code.pin_encrypted),
            status=code.status,
            disputed=hasattr(code, "dispute"),
        )
        for code in codes
    ]
    RevealAudit.objects.create(
        order=order,
        user=user,
        channel=channel,
        codes=len(revealed),
        ip=ip or None,
        user_agent=(user_agent or "")[:255],
    )
    return revealed


_REVEALABLE_CODES = PreparedRead(
    lambda order_id: (
        CardCode.objects.filter(
            order_id=order_id, status__in=[CardCode.Status.SOLD, CardCode.Status.BAD]
        )
        .select_related("dispute")
        .order_by("id")
    ),
    order_id=int,
)


@sensitive_variables()
def order_delivery_email_send(*, order: Order) -> bool:
    """Tell the buyer their codes are ready: a link to the order page by default (mail is
    read on shared screens and kept in mailboxes for years); the codes themselves only for
    a buyer who opted in, as an audited reveal on channel ``email``."""
    order = Order.objects.select_related("buyer", "listing__brand").get(pk=order.pk)
    buyer = order.buyer
    if not buyer.email or not order.codes_revealable:
        return False
    language = getattr(buyer, "preferred_language", "") or settings.LANGUAGE_CODE
    with translation.override(language):
        codes = []
        if buyer.email_codes:
            codes = order_codes_reveal(order=order, user=buyer, channel=RevealAudit.Channel.EMAIL)
        context = {
            "order": order,
            "codes": codes,
            "brand": order.listing.brand,
            "order_url": f"{settings.SITE_URL}/orders/{order.number}/",
        }
        subject = _("Your %(brand)s codes — order %(number)s") % {
            "brand": order.listing.brand.name,
            "number": order.number,
        }
        text = render_to_string("marketplace/email/delivery.txt", context)
        html = render_to_string("marketplace/email/delivery.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[buyer.email])
    message.attach_alternative(html, "text/html")
    message.send()
    return True


def seller_funds_mature_one(*, order_id: int, now: dt.datetime | None = None) -> bool:
    """After the guarantee window, the seller's money for the order's good codes moves from
    pending to available and the order completes (skipped while a dispute is open)."""
    now = now or timezone.now()
    with transaction.atomic():
        candidates = Order.objects.filter(
            pk=order_id, status=Order.Status.DELIVERED, guarantee_until__lte=now
        )
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        else:
            candidates = candidates.select_for_update(of=("self",))
        order = candidates.select_related("listing").first()
        if order is None:
            return False
        undecided = Q(status__in=[Dispute.Status.OPEN, Dispute.Status.ANSWERED]) | Q(
            status=Dispute.Status.REFUNDED, refund__status=RefundStatus.REQUESTED
        )
        if Dispute.objects.filter(undecided, order=order).exists():
            # Open, or decided for the buyer with the refund still awaiting Finance (a
            # decline reopens it).
            return False
        if ProviderDispute.objects.filter(
            payment__public_id=order.payment_public_id, outcome=ProviderDispute.Outcome.OPEN
        ).exists():
            # A chargeback is open: the seller's money for the order is held until it closes.
            return False
        good = order.codes.filter(status=CardCode.Status.SOLD).count()
        amount = order.seller_net_per_code * good
        if amount > 0:
            postings.funds_mature_post(order=order, amount=amount)
        order.transition(Order.Status.COMPLETED)
        order.completed_at = now
        order.save(update_fields=["status", "completed_at"])
    return True


def seller_funds_mature(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Mature every order whose guarantee window has ended (the beat task)."""
    now = now or timezone.now()
    ids = list(
        Order.objects.filter(status=Order.Status.DELIVERED, guarantee_until__lte=now)
        .order_by("guarantee_until")
        .values_list("id", flat=True)[:limit]
    )
    return sum(seller_funds_mature_one(order_id=order_id, now=now) for order_id in ids)
