"""Buying: reserve codes for an order, pay it, cancel it, release lapsed reservations.

Reservation takes row locks on the codes it hands out. On PostgreSQL it uses
``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent buyers take different codes instead of
queueing behind each other; SQLite has no row locks, but its write transactions are
serialised (``transaction_mode = IMMEDIATE``), which gives the same guarantee.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from marketplace.errors import ListingUnavailable, OrderNotFound, OrderNotPayable, OutOfStock
from marketplace.models import HOLDING_STATUSES, CardCode, Listing, Order

logger = logging.getLogger(__name__)

MAX_QUANTITY = 100


def codes_take(*, listing: Listing, order: Order, quantity: int, until: dt.datetime) -> int:
    """Reserve up to ``quantity`` of the listing's oldest available codes for ``order`` in one
    statement; returns how many it got (the caller rolls back when that is too few).

    ``UPDATE … WHERE id IN (SELECT … ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED)``: rows another
    buyer is taking right now are skipped, not waited for."""
    candidates = CardCode.objects.filter(
        listing=listing, status=CardCode.Status.AVAILABLE
    ).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True)
    else:
        candidates = candidates.select_for_update()
    return CardCode.objects.filter(pk__in=candidates.values("pk")[:quantity]).update(
        status=CardCode.Status.RESERVED, order=order, reserved_until=until
    )


def codes_release(*, order: Order) -> int:
    """Give the order's reserved codes back to the listing (or withdraw them if the listing
    was withdrawn meanwhile)."""
    back_to = (
        CardCode.Status.WITHDRAWN
        if order.listing.status == Listing.Status.WITHDRAWN
        else CardCode.Status.AVAILABLE
    )
    return CardCode.objects.filter(order=order, status=CardCode.Status.RESERVED).update(
        status=back_to, order=None, reserved_until=None
    )


def _stock_message(available: int) -> str:
    if available == 0:
        return _("Sold out: no codes of this listing are available right now.")
    return ngettext(
        "Only %(n)d code is available right now.",
        "Only %(n)d codes are available right now.",
        available,
    ) % {"n": available}


def order_create(*, buyer, listing: Listing, quantity: int) -> Order:
    """Reserve ``quantity`` codes of ``listing`` for ``buyer`` until the reservation window
    ends. Raises :class:`OutOfStock` (nothing reserved) when there are not enough."""
    if (
        not isinstance(quantity, int)
        or isinstance(quantity, bool)
        or not 1 <= quantity <= MAX_QUANTITY
    ):
        raise OrderNotPayable(_("Choose a quantity from 1 to %(max)d.") % {"max": MAX_QUANTITY})
    from marketplace.selectors import listing_with_brand

    listing = listing_with_brand(pk=listing.pk)  # as it stands now, whatever the caller holds
    if listing.status != Listing.Status.ACTIVE or not listing.brand.active:
        raise ListingUnavailable(_("This listing is not on sale at the moment."))
    if listing.seller_id == buyer.pk:
        raise ListingUnavailable(_("You cannot buy your own listing."))
    expires_at = timezone.now() + dt.timedelta(minutes=settings.ORDER_RESERVATION_MINUTES)
    with transaction.atomic():
        order = Order(
            buyer=buyer,
            listing=listing,
            quantity=quantity,
            unit_price=listing.price,
            unit_commission=listing.brand.unit_commission(listing.price),
            amount=listing.price * quantity,
            currency=listing.currency,
            expires_at=expires_at,
        )
        # Fields are checked here; buyer and listing are instances in hand, and uniqueness and
        # check constraints are the database's (each would cost a round trip per reservation).
        order.full_clean(
            exclude=["buyer", "listing"], validate_unique=False, validate_constraints=False
        )
        order.save()
        taken = codes_take(listing=listing, order=order, quantity=quantity, until=expires_at)
        if taken < quantity:
            raise OutOfStock(_stock_message(taken), available=taken)  # rolls the order back too
    return order


def order_cancel(*, order: Order, buyer) -> Order:
    """The buyer gives up an unpaid order; its codes go back on sale at once."""
    if order.buyer_id != getattr(buyer, "pk", None):
        raise OrderNotFound(_("No such order."))
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",)).select_related("listing").get(pk=order.pk)
        )
        if order.status not in HOLDING_STATUSES:
            raise OrderNotPayable(_("Only an unpaid order can be cancelled."))
        codes_release(order=order)
        order.transition(Order.Status.CANCELLED)
        order.save(update_fields=["status"])
    return order


def order_reservation_release(*, order_id: int, now: dt.datetime | None = None) -> bool:
    """Expire one lapsed, unpaid order and free its codes. Skips an order another
    transaction holds (it is being paid right now) and re-checks state under the lock."""
    now = now or timezone.now()
    with transaction.atomic():
        candidates = Order.objects.filter(
            pk=order_id, status__in=HOLDING_STATUSES, expires_at__lte=now
        )
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        else:
            candidates = candidates.select_for_update(of=("self",))
        order = candidates.select_related("listing").first()
        if order is None:
            return False
        codes_release(order=order)
        order.transition(Order.Status.EXPIRED)
        order.save(update_fields=["status"])
    return True


def order_reservations_release(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Expire every lapsed, unpaid order (the beat task); returns how many."""
    now = now or timezone.now()
    ids = list(
        Order.objects.filter(status__in=HOLDING_STATUSES, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", flat=True)[:limit]
    )
    released = sum(order_reservation_release(order_id=order_id, now=now) for order_id in ids)
    if released:
        logger.info("released %d lapsed reservation(s)", released)
    return released


def _with_risk_relations(order: Order) -> bool:
    """Whether the order came with its buyer, listing, brand and seller (as the buyer's own
    read, ``selectors.order_for_buyer``, gives it)."""
    if not (Order.buyer.is_cached(order) and Order.listing.is_cached(order)):
        return False
    listing = order.listing
    return Listing.brand.is_cached(listing) and Listing.seller.is_cached(listing)


def order_pay(
    *,
    order: Order,
    buyer,
    method: str,
    client,
    return_url: str,
    instalments: int | None = None,
    ordering: dict | None = None,
    charge_currency: str = "",
):
    """Start paying ``order`` with ``method`` through the payment platform; returns the
    ``payments.models.Payment`` (its status/action tell the page what to do next)."""
    from marketplace.selectors import order_risk_facts
    from payments import services as payment_services

    if order.buyer_id != getattr(buyer, "pk", None):
        raise OrderNotFound(_("No such order."))
    if not _with_risk_relations(order):
        # read with what risk's facts need, so they cost no lookups of the buyer or seller
        order = Order.objects.select_related("buyer", "listing__brand", "listing__seller").get(
            pk=order.pk
        )
    if order.status != Order.Status.AWAITING_PAYMENT:
        raise OrderNotPayable(
            _("This order is %(status)s and cannot be paid.")
            % {"status": order.get_status_display()}
        )
    if not order.is_payable:
        raise OrderNotPayable(_("The reservation of this order has lapsed; please order again."))
    listing = order.listing
    subject = _("%(brand)s %(face)s ×%(quantity)d") % {
        "brand": listing.brand.name,
        "face": listing.face_value,
        "quantity": order.quantity,
    }
    return payment_services.payment_start(
        buyer=buyer,
        reference=order.payable,
        amount=order.amount,
        currency=order.currency,
        method=method,
        subject=str(subject)[:128],
        client=client,
        return_url=return_url,
        expires_at=order.expires_at,
        instalments=instalments,
        risk_facts=order_risk_facts(order=order, client_ip=getattr(client, "ip", "") or ""),
        ordering=ordering,
        charge_currency=charge_currency,
    )
