"""Payment success rates for risk monitoring (risk/monitoring.py), per channel account ×
method, from attempts. Registered on import (``PaymentsConfig.ready``).

An attempt counts once it has finished: succeeded, failed or expired. Attempts still open are
not counted yet, and attempts *we* closed (the buyer switched method, the order was
cancelled) say nothing about the channel, so they are left out too. Periods are by the
attempt's creation time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.functions import TruncDay, TruncHour
from django.utils.translation import gettext_lazy as _

from payments.models import Attempt
from payments.states import AttemptStatus
from risk import monitoring

SUCCESS_RATE = "payments.success_rate"
FIRST_ATTEMPT_SUCCESS_RATE = "payments.first_attempt_success_rate"
FINISHED = [AttemptStatus.SUCCEEDED, AttemptStatus.FAILED, AttemptStatus.EXPIRED]
_TRUNC = {monitoring.HOUR: TruncHour, monitoring.DAY: TruncDay}


def attempt_outcomes(
    *, since: dt.datetime, until: dt.datetime, grain: monitoring.Grain
) -> Iterator[monitoring.DataPoint]:
    """Both payment metrics from one GROUP BY over attempts. The first attempt of a payment
    is the one with no earlier attempt; its success means no failover was needed."""
    earlier = Attempt.objects.filter(payment_id=OuterRef("payment_id"), pk__lt=OuterRef("pk"))
    first = Q(~Exists(earlier))
    succeeded = Q(status=AttemptStatus.SUCCEEDED)
    rows = (
        Attempt.objects.filter(created_at__gte=since, created_at__lt=until, status__in=FINISHED)
        .values(period=_TRUNC[grain]("created_at"), channel=F("account__code"), method_=F("method"))
        .annotate(
            finished=Count("pk"),
            succeeded=Count("pk", filter=succeeded),
            first_finished=Count("pk", filter=first),
            first_succeeded=Count("pk", filter=first & succeeded),
        )
        .order_by()
    )
    for row in rows:
        dims = {"channel": row["channel"], "method": row["method_"]}
        yield monitoring.DataPoint.of(
            SUCCESS_RATE,
            period_start=row["period"],
            numerator=row["succeeded"],
            denominator=row["finished"],
            **dims,
        )
        yield monitoring.DataPoint.of(
            FIRST_ATTEMPT_SUCCESS_RATE,
            period_start=row["period"],
            numerator=row["first_succeeded"],
            denominator=row["first_finished"],
            **dims,
        )


monitoring.register(
    SUCCESS_RATE,
    label=_("Payment success rate"),
    source=attempt_outcomes,
    description=_("Attempts succeeded ÷ attempts finished (succeeded, failed, expired)."),
)
monitoring.register(
    FIRST_ATTEMPT_SUCCESS_RATE,
    label=_("First-attempt success rate"),
    source=attempt_outcomes,
    description=_("Payments whose first attempt succeeded ÷ first attempts finished."),
)
