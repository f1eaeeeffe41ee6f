"""Dispute and fraud rates for risk monitoring (risk/monitoring.py), per channel account ×
method of the payment that paid the order. Registered on import (``MarketplaceConfig.ready``).

Both are rates over the orders *delivered* in a period (a cohort): the share of them with a
dispute (the buyer's, or a channel's: a chargeback, a PayPal case), and the share that was
fraud — a dispute refunded to the buyer (the code was confirmed bad: fraud against the
buyer) or a chargeback not won (the card or account was not the payer's: fraud against the
seller; counted from the moment it opens, dropped again if it is won). A period's rates keep
rising while its orders are still inside their guarantee window; bad codes are usually
reported within hours, so monitors over a few days of deliveries react quickly enough.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import TruncDay, TruncHour
from django.utils.translation import gettext_lazy as _

from marketplace.models import Dispute, Order
from payments.models import Attempt, Payment, ProviderDispute
from payments.states import AttemptStatus
from risk import monitoring

DISPUTE_RATE = "marketplace.dispute_rate"
FRAUD_RATE = "marketplace.fraud_rate"
_TRUNC = {monitoring.HOUR: TruncHour, monitoring.DAY: TruncDay}


def delivered_order_outcomes(
    *, since: dt.datetime, until: dt.datetime, grain: monitoring.Grain
) -> Iterator[monitoring.DataPoint]:
    """Both rates from one GROUP BY over delivered orders; the channel and method come from
    the order's payment (its succeeded attempt), looked up in the same query."""
    paid_by = OuterRef("payment_public_id")
    channel = (
        Attempt.objects.filter(payment__public_id=paid_by, status=AttemptStatus.SUCCEEDED)
        .order_by("pk")
        .values("account__code")[:1]
    )
    method = Payment.objects.filter(public_id=paid_by).values("method")[:1]
    disputes = Dispute.objects.filter(order_id=OuterRef("pk"))
    chargebacks = ProviderDispute.objects.filter(payment__public_id=OuterRef("payment_public_id"))
    not_won = chargebacks.filter(outcome__in=[ProviderDispute.Outcome.OPEN, "lost"])
    rows = (
        Order.objects.filter(delivered_at__gte=since, delivered_at__lt=until)
        .values(
            period=_TRUNC[grain]("delivered_at"), channel=Subquery(channel), method=Subquery(method)
        )
        .annotate(
            delivered=Count("pk"),
            disputed=Count("pk", filter=Q(Exists(disputes)) | Q(Exists(chargebacks))),
            refunded=Count(
                "pk",
                filter=Q(Exists(disputes.filter(status=Dispute.Status.REFUNDED)))
                | Q(Exists(not_won)),
            ),
        )
        .order_by()
    )
    for row in rows:
        dims = {"channel": row["channel"], "method": row["method"]}
        yield monitoring.DataPoint.of(
            DISPUTE_RATE,
            period_start=row["period"],
            numerator=row["disputed"],
            denominator=row["delivered"],
            **dims,
        )
        yield monitoring.DataPoint.of(
            FRAUD_RATE,
            period_start=row["period"],
            numerator=row["refunded"],
            denominator=row["delivered"],
            **dims,
        )


monitoring.register(
    DISPUTE_RATE,
    label=_("Dispute rate"),
    source=delivered_order_outcomes,
    description=_("Delivered orders with a dispute or a chargeback ÷ orders delivered."),
    higher_is_better=False,
)
monitoring.register(
    FRAUD_RATE,
    label=_("Fraud rate (bad codes and chargebacks)"),
    source=delivered_order_outcomes,
    description=_(
        "Delivered orders with a dispute refunded to the buyer or a chargeback not won"
        " ÷ orders delivered."
    ),
    higher_is_better=False,
)
