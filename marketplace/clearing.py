"""What the shop knows for the clearing of seller amounts (reconciliation asks, DESIGN.md §7).

Reconciliation knows which payments a channel's settlement file confirmed as settled; only the
shop knows which orders those payments paid and whose money is in them. These are reads:
clearing moves no money (the sale already sits in the seller's pending balance).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, QuerySet, Sum

from marketplace.models import CENT, Order

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class SellerAmounts:
    """One seller's orders paid by a set of payments, in one currency."""

    seller_id: int
    currency: str
    orders: int
    gross: Decimal
    commission: Decimal

    @property
    def net(self) -> Decimal:
        return self.gross - self.commission


def orders_paid_by(payment_ids: Iterable | QuerySet) -> QuerySet[Order]:
    """The orders paid by these payments (``Payment.public_id`` values or a subquery of them).

    Only the payment an order records as its own counts: a late payment that was refunded, or
    a second payment of an already paid order, paid nothing."""
    return Order.objects.filter(payment_public_id__in=payment_ids)


def seller_amounts(payment_ids: Iterable | QuerySet) -> list[SellerAmounts]:
    """Per seller and currency: orders paid by these payments, their gross (what the buyers
    paid), the platform's commission and so the seller's net — as the sale was posted
    (``postings.sale_post``: net per code × quantity). One grouped query."""
    commission = ExpressionWrapper(
        F("unit_commission") * F("quantity"),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )
    rows = (
        orders_paid_by(payment_ids)
        .values("listing__seller_id", "currency")
        .annotate(n=Count("id"), gross=Sum("amount"), commission=Sum(commission))
        .order_by("listing__seller_id", "currency")
    )
    return [
        SellerAmounts(
            seller_id=row["listing__seller_id"],
            currency=row["currency"],
            orders=row["n"],
            gross=Decimal(row["gross"] or ZERO).quantize(CENT),
            commission=Decimal(row["commission"] or ZERO).quantize(CENT),
        )
        for row in rows
    ]
