"""The money and stock invariants (CONTRACT.md ``integrity_check``), each a set-based count of
violations: 0 means the invariant holds. Run nightly by beat and on demand."""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal

from django.core.mail import mail_admins
from django.db.models import Count, Exists, F, OuterRef, Q, Sum, Value
from django.db.models.functions import Concat, Substr
from django.utils import timezone

from marketplace.models import HOLDING_STATUSES, CardCode, Order
from payments import ledger
from payments.models import JournalEntry, Payment, Refund
from payments.payables import PayableRef

logger = logging.getLogger(__name__)

DELIVERED_STATES = [
    Order.Status.DELIVERED,
    Order.Status.COMPLETED,
    Order.Status.DISPUTED,
    Order.Status.REFUNDED,
]
# The beat task frees lapsed reservations every minute; this much lag means it is not running.
RESERVATION_GRACE = dt.timedelta(minutes=30)


def codes_sold_twice() -> int:
    """Codes handed over outside a delivery, plus delivered orders holding more codes than
    they bought (a code can only reach a second buyer through one of those)."""
    stray = (
        CardCode.objects.filter(status__in=[CardCode.Status.SOLD, CardCode.Status.BAD])
        .exclude(order__status__in=DELIVERED_STATES)
        .count()
    )
    overfull = (
        Order.objects.filter(status__in=DELIVERED_STATES)
        .annotate(
            handed=Count(
                "codes", filter=Q(codes__status__in=[CardCode.Status.SOLD, CardCode.Status.BAD])
            )
        )
        .filter(handed__gt=F("quantity"))
        .count()
    )
    return stray + overfull


def delivered_orders_short_of_codes() -> int:
    return (
        Order.objects.filter(status__in=DELIVERED_STATES, delivered_at__isnull=False)
        .annotate(
            handed=Count(
                "codes", filter=Q(codes__status__in=[CardCode.Status.SOLD, CardCode.Status.BAD])
            )
        )
        .filter(handed__lt=F("quantity"))
        .count()
    )


def ledger_unbalanced() -> int:
    """Entries whose lines do not sum to zero, plus one if the journal as a whole does not.

    Compared against half a cent rather than exactly 0: SQLite sums decimals as floats
    (184.00 − 174.80 − 9.20 comes back as 1e-14), PostgreSQL sums them exactly."""
    half_cent = Decimal("0.005")
    entries = (
        JournalEntry.objects.annotate(total=Sum("lines__amount"))
        .filter(Q(total__gte=half_cent) | Q(total__lte=-half_cent))
        .count()
    )
    return entries + (1 if ledger.journal_total() != 0 else 0)


ORDER_PREFIX = PayableRef.prefix(PayableRef.ORDER)


def paid_not_delivered_or_refunded() -> int:
    """Succeeded order payments that neither delivered their order nor are being refunded."""
    delivered_by_it = Order.objects.filter(
        number=Substr(OuterRef("reference"), len(ORDER_PREFIX) + 1),
        payment_public_id=OuterRef("public_id"),
        status__in=DELIVERED_STATES,
    )
    refund_on_its_way = Refund.objects.filter(
        payment=OuterRef("pk"), status__in=["pending", "succeeded"]
    ).exclude(
        origin=Refund.Origin.DOUBLE_CHARGE  # gives back a duplicate capture, not the payment
    )
    return (
        Payment.objects.filter(status="succeeded", reference__startswith=ORDER_PREFIX)
        .filter(~Exists(delivered_by_it), ~Exists(refund_on_its_way))
        .count()
    )


def expired_reservations_holding_stock() -> int:
    now = timezone.now()
    return (
        CardCode.objects.filter(status=CardCode.Status.RESERVED)
        .filter(
            ~Q(order__status__in=HOLDING_STATUSES)
            | Q(order__expires_at__lt=now - RESERVATION_GRACE)
        )
        .count()
    )


def deliveries_without_sale_entry() -> int:
    sale = JournalEntry.objects.filter(key=Concat(Value("sale:"), OuterRef("number")))
    return (
        Order.objects.filter(status__in=DELIVERED_STATES, payment_public_id__isnull=False)
        .filter(~Exists(sale))
        .count()
    )


def refunds_in_flight_mismatch() -> int:
    """1 when what the journal says is owed back to buyers (refunds sent, not yet confirmed)
    is not exactly the sum of the refunds waiting for their channel."""
    waiting = Refund.objects.filter(status="pending").aggregate(s=Sum("amount"))["s"] or Decimal(
        "0"
    )
    owed = ledger.balance(ledger.REFUNDS_IN_FLIGHT, natural=True)
    return int(abs(owed - Decimal(waiting)) >= Decimal("0.005"))


CHECKS = {
    "codes_sold_twice": codes_sold_twice,
    "ledger_unbalanced": ledger_unbalanced,
    "paid_not_delivered_or_refunded": paid_not_delivered_or_refunded,
    "expired_reservations_holding_stock": expired_reservations_holding_stock,
    "delivered_orders_short_of_codes": delivered_orders_short_of_codes,
    "deliveries_without_sale_entry": deliveries_without_sale_entry,
    "refunds_in_flight_mismatch": refunds_in_flight_mismatch,
}


def integrity_report() -> dict:
    """``{"ok": bool, "checks": {name: violations}}``."""
    checks = {name: int(check()) for name, check in CHECKS.items()}
    return {"ok": not any(checks.values()), "checks": checks}


def integrity_report_alert(*, report: dict) -> None:
    """Tell people: an error in the log and a mail to ADMINS."""
    failing = {name: count for name, count in report["checks"].items() if count}
    logger.error("integrity check failed: %s", failing)
    mail_admins(
        "Integrity check failed", json.dumps(report, indent=2, sort_keys=True), fail_silently=True
    )
