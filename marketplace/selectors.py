"""The shop's read side: catalogue, stock, seller ratings, a buyer's orders, a seller's
dashboard and the facts risk scoring needs. Query counts do not grow with the data."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.prepared import PreparedRead
from marketplace.errors import OrderNotFound
from marketplace.models import CardCode, Dispute, Listing, Order, Payout, PayoutDestination
from marketplace.postings import (
    seller_available,
    seller_held,
    seller_paid_out,
    seller_payouts_requested,
    seller_pending,
)
from payments import ledger
from payments.models import Payment
from payments.payables import PayableFacts

SORTS = {
    "discount": ("-discount", "price", "-id"),
    "price": ("price", "-discount", "-id"),
    "-price": ("-price", "-id"),
    "face_value": ("face_value", "price", "-id"),
    "newest": ("-created_at", "-id"),
}
GOOD_CODE_STATES = [CardCode.Status.SOLD, CardCode.Status.BAD]


def _count_subquery(queryset: QuerySet, group_field: str) -> Coalesce:
    counted = queryset.order_by().values(group_field).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def with_stock(listings: QuerySet[Listing]) -> QuerySet[Listing]:
    """Annotate ``stock`` (available codes) with one correlated count, not one query each."""
    available = CardCode.objects.filter(listing=OuterRef("pk"), status=CardCode.Status.AVAILABLE)
    return listings.annotate(stock=_count_subquery(available, "listing"))


def with_seller_record(listings: QuerySet[Listing]) -> QuerySet[Listing]:
    """Annotate ``seller_sold`` (codes the seller ever delivered) and ``seller_bad`` (of those,
    refunded after a dispute): the seller rating."""
    sold = CardCode.objects.filter(listing__seller=OuterRef("seller"), status__in=GOOD_CODE_STATES)
    bad = Dispute.objects.filter(
        order__listing__seller=OuterRef("seller"), status=Dispute.Status.REFUNDED
    )
    return listings.annotate(
        seller_sold=_count_subquery(sold, "listing__seller"),
        seller_bad=_count_subquery(bad, "order__listing__seller"),
    )


def seller_rating(*, sold: int, bad: int) -> Decimal | None:
    """Share of the seller's delivered codes that were not refunded after a dispute (None
    for a seller with no sales yet)."""
    if not sold:
        return None
    return (Decimal(sold - bad) * 100 / Decimal(sold)).quantize(Decimal("0.1"))


def catalogue_listings(
    *,
    q: str = "",
    category: str = "",
    brand_id: int | None = None,
    face_value: Decimal | None = None,
    face_value_min: Decimal | None = None,
    face_value_max: Decimal | None = None,
    sort: str = "discount",
    include_sold_out: bool = False,
) -> QuerySet[Listing]:
    """Listings on sale, with ``stock``, ``discount`` and the seller's record annotated."""
    listings = Listing.objects.filter(
        status=Listing.Status.ACTIVE, brand__active=True
    ).select_related("brand", "seller")
    if q:
        listings = listings.filter(
            Q(brand__name__icontains=q)
            | Q(brand__name_en__icontains=q)
            | Q(brand__description__icontains=q)
            | Q(brand__slug__icontains=q)
        )
    if category:
        listings = listings.filter(brand__category=category)
    if brand_id:
        listings = listings.filter(brand_id=brand_id)
    if face_value is not None:
        listings = listings.filter(face_value=face_value)
    if face_value_min is not None:
        listings = listings.filter(face_value__gte=face_value_min)
    if face_value_max is not None:
        listings = listings.filter(face_value__lte=face_value_max)
    listings = with_seller_record(with_stock(listings)).annotate(
        discount=ExpressionWrapper(
            (F("face_value") - F("price")) * Value(Decimal("100")) / F("face_value"),
            output_field=DecimalField(max_digits=12, decimal_places=4),
        )
    )
    if not include_sold_out:
        listings = listings.filter(stock__gt=0)
    return listings.order_by(*SORTS.get(sort, SORTS["discount"]))


def listing_for_sale(*, listing_id: int) -> Listing:
    """One listing with its stock and seller record (raises ``Listing.DoesNotExist``)."""
    return with_seller_record(with_stock(Listing.objects.select_related("brand", "seller"))).get(
        pk=listing_id
    )


def buyer_orders(*, buyer) -> QuerySet[Order]:
    return (
        Order.objects.filter(buyer=buyer).select_related("listing__brand").order_by("-created_at")
    )


def listing_with_brand(*, pk) -> Listing:
    """The listing with its brand (Listing.DoesNotExist when there is none): every order
    starts with it, so it is compiled once."""
    return _LISTING_WITH_BRAND.get(pk=pk)


_LISTING_WITH_BRAND = PreparedRead(
    lambda pk: Listing.objects.select_related("brand").filter(pk=pk), pk=int
)


def order_for_buyer(*, buyer, number: str) -> Order:
    """The buyer's own order; anyone else's does not exist for them."""
    buyer_id = getattr(buyer, "pk", None)
    if buyer_id is None:
        raise OrderNotFound("No such order.")
    try:  # every poll of the order page and every payment start reads it: compiled once
        order = _BUYERS_ORDER.get(number=number, buyer_id=buyer_id)
    except Order.DoesNotExist:
        raise OrderNotFound("No such order.") from None
    if isinstance(buyer, Order.buyer.field.related_model):
        Order.buyer.field.set_cached_value(order, buyer)  # the one asking: no second read
    return order


_BUYERS_ORDER = PreparedRead(
    lambda number, buyer_id: Order.objects.select_related(
        "listing__brand", "listing__seller"
    ).filter(number=number, buyer_id=buyer_id),
    number=str,
    buyer_id=int,
)


def order_disputes_by_code(*, order: Order) -> dict[int, Dispute]:
    disputes = order.disputes.select_related("code", "refund").prefetch_related("evidence")
    return {dispute.code_id: dispute for dispute in disputes}


@dataclass(frozen=True)
class SellerBalances:
    pending: Decimal
    available: Decimal
    payouts_requested: Decimal
    paid_out: Decimal
    #: held while a channel's dispute (a chargeback) over one of the seller's orders is open
    held: Decimal = Decimal("0.00")


def seller_balances(*, seller_id: int) -> SellerBalances:
    """Pending (in the guarantee window), available (may be paid out), requested (awaiting
    Finance) and paid out — all sums of the journal, in one query."""
    codes = {
        "pending": seller_pending(seller_id),
        "available": seller_available(seller_id),
        "payouts_requested": seller_payouts_requested(seller_id),
        "paid_out": seller_paid_out(seller_id),
        "held": seller_held(seller_id),
    }
    found = ledger.balances(codes.values(), natural=True)
    return SellerBalances(
        pending=found[codes["pending"]],
        available=found[codes["available"]],
        payouts_requested=found[codes["payouts_requested"]],
        paid_out=-found[codes["paid_out"]],  # an outflow: credits on an asset account
        held=found[codes["held"]],
    )


@dataclass(frozen=True)
class SellerDashboard:
    listings: list[Listing]
    balances: SellerBalances
    recent_sales: list[Order]
    payouts: list[Payout]
    destinations: list[PayoutDestination]
    disputes: list[Dispute]


def seller_listings(*, seller) -> QuerySet[Listing]:
    by_status = {
        "reserved": CardCode.Status.RESERVED,
        "sold": CardCode.Status.SOLD,
        "bad": CardCode.Status.BAD,
    }
    listings = with_stock(Listing.objects.filter(seller=seller).select_related("brand"))
    for name, status in by_status.items():
        listings = listings.annotate(
            **{
                name: _count_subquery(
                    CardCode.objects.filter(listing=OuterRef("pk"), status=status), "listing"
                )
            }
        )
    return listings.order_by("status", "-created_at")


def seller_dashboard(*, seller) -> SellerDashboard:
    return SellerDashboard(
        listings=list(seller_listings(seller=seller)),
        balances=seller_balances(seller_id=seller.pk),
        recent_sales=list(
            Order.objects.filter(listing__seller=seller, delivered_at__isnull=False)
            .select_related("listing__brand")
            .order_by("-delivered_at")[:20]
        ),
        payouts=list(Payout.objects.filter(seller=seller).select_related("destination")[:20]),
        destinations=list(PayoutDestination.objects.filter(seller=seller)),
        disputes=list(
            Dispute.objects.filter(order__listing__seller=seller)
            .select_related("order__listing__brand", "code", "refund")
            .prefetch_related("evidence")
            .order_by("status", "-created_at")[:50]
        ),
    )


def order_risk_facts(*, order: Order, client_ip: str = "") -> PayableFacts:
    """What the shop knows about the buyer, seller and goods, for the payment platform's risk
    engine (``payments.services.payment_start(risk_facts=…)``)."""
    buyer, listing = order.buyer, order.listing
    seller = listing.seller
    now = timezone.now()
    good_orders = _GOOD_ORDERS.first(buyer_id=buyer.pk, order_id=order.pk) or 0
    disputes, refunded = _DISPUTES.first(buyer_id=buyer.pk) or (0, 0)
    seller_linked = bool(client_ip) and _SELLER_PAID_FROM.exists(seller_id=seller.pk, ip=client_ip)
    return PayableFacts(
        account_age_days=(now - buyer.date_joined).days,
        good_orders=good_orders,
        disputes=disputes,
        disputes_refunded=refunded,
        brand=listing.brand.slug,
        brand_high_risk=listing.brand.high_risk,
        seller_id=seller.pk,
        seller_account_age_days=(now - seller.date_joined).days,
        seller_linked=seller_linked,
        listing_age_days=(now - listing.created_at).days,
    )


# Read at every payment start: compiled once per connection. Grouped by the buyer, so a buyer
# with none has no row (no COUNT over an empty set to compile apart).
_GOOD_ORDERS = PreparedRead(
    lambda buyer_id, order_id: (
        Order.objects.filter(
            buyer_id=buyer_id, status__in=[Order.Status.DELIVERED, Order.Status.COMPLETED]
        )
        .exclude(pk=order_id)
        .values("buyer_id")
        .annotate(n=Count("pk"))
        .values_list("n", flat=True)
    ),
    buyer_id=int,
    order_id=int,
)
_DISPUTES = PreparedRead(
    lambda buyer_id: (
        Dispute.objects.filter(order__buyer_id=buyer_id)
        .values("order__buyer_id")
        .annotate(all=Count("pk"), refunded=Count("pk", filter=Q(status=Dispute.Status.REFUNDED)))
        .values_list("all", "refunded")
    ),
    buyer_id=int,
)


# the address as text (``client->>'ip'``): a plain parameter, as the address index has it
_SELLER_PAID_FROM = PreparedRead(
    lambda seller_id, ip: Payment.objects.annotate(paid_from=KT("client__ip")).filter(
        buyer_id=seller_id, paid_from=ip
    ),
    seller_id=int,
    ip=str,
)


def seller_upload_facts(*, listing: Listing, codes: int, client_ip: str = ""):
    """What risk needs to judge a seller's upload (DESIGN.md §6: "a new seller dumping many
    high-value codes"): the seller's age, sales and disputes, and what they listed in the last
    24 hours, this upload included. Three queries."""
    import datetime as dt

    from risk.engine import SellerFacts

    seller, now = listing.seller, timezone.now()
    recent = CardCode.objects.filter(
        listing__seller=seller, created_at__gte=now - dt.timedelta(hours=24)
    ).aggregate(
        n=Count("pk"),
        face=Sum("listing__face_value"),
        risky=Count("pk", filter=Q(listing__brand__high_risk=True)),
    )
    good_sales = Order.objects.filter(listing__seller=seller, status=Order.Status.COMPLETED).count()
    disputes = Dispute.objects.filter(order__listing__seller=seller).aggregate(
        n=Count("pk"),
        refunded=Count("pk", filter=Q(status=Dispute.Status.REFUNDED)),
    )
    n = recent["n"]
    return SellerFacts(
        subject=f"listing-upload:{listing.pk}",
        seller_ref=str(seller.pk),
        upload_codes=codes,
        upload_face_value=listing.face_value * codes,
        account_age_days=(now - seller.date_joined).days,
        good_sales=good_sales,
        disputes=disputes["n"],
        disputes_refunded=disputes["refunded"],
        codes_last_24h=n,
        face_value_last_24h=Decimal(recent["face"] or 0).quantize(Decimal("0.01")),
        high_risk_share=(Decimal(recent["risky"]) / n).quantize(Decimal("0.01"))
        if n
        else Decimal("0"),
        brand_high_risk=listing.brand.high_risk,
        ip=client_ip,
        email=seller.email,
    )


def dispute_evidence_for(*, user, dispute_id: int, evidence_id: int):
    """The screenshot if ``user`` may see it: the order's buyer, its seller, or staff with
    the permission to view disputes."""
    from marketplace.models import DisputeEvidence

    item = (
        DisputeEvidence.objects.select_related("dispute__order__listing")
        .filter(pk=evidence_id, dispute_id=dispute_id)
        .first()
    )
    if item is None:
        return None
    order = item.dispute.order
    if user.pk in {order.buyer_id, order.listing.seller_id}:
        return item
    if user.is_staff and user.has_perm("marketplace.view_dispute"):
        return item
    return None
