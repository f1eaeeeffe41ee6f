"""What staff read first: today / 7 / 30 days of the shop and the platform, and the queues
that wait for someone. Every figure is a bounded aggregate (one query per table, never one
per row) and comes with the admin list it was counted from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from marketplace.models import Dispute, Order, Payout
from payments.health import breaker_states
from payments.models import Attempt, ChannelAccount, Method, Payment, Refund
from payments.states import AttemptStatus, PaymentStatus, RefundStatus
from reconciliation.models import Discrepancy

WINDOWS = (("today", _("today")), ("7d", _("last 7 days")), ("30d", _("last 30 days")))
SERIES_DAYS = 30
PAID_STATUSES = [
    Order.Status.PAID,
    Order.Status.DELIVERED,
    Order.Status.COMPLETED,
    Order.Status.DISPUTED,
    Order.Status.REFUNDED,
    Order.Status.UNDER_REVIEW,
]
FINISHED = [
    AttemptStatus.SUCCEEDED,
    AttemptStatus.FAILED,
    AttemptStatus.EXPIRED,
    AttemptStatus.CANCELLED,
]


@dataclass(frozen=True)
class Figure:
    label: str
    values: dict[str, object]  # window key → number or Decimal
    links: dict[str, str]  # window key → the admin list filtered to that window
    money: bool = False

    def cells(self):
        return [(self.values[w], self.links[w]) for w, _label in WINDOWS]


@dataclass(frozen=True)
class Rate:
    label: str
    values: dict[str, tuple[int, int]]  # window → (succeeded, finished)
    url: str

    def percent(self, window: str) -> Decimal | None:
        ok, done = self.values.get(window, (0, 0))
        return (Decimal(100) * ok / done).quantize(Decimal("0.1")) if done else None

    def cells(self):
        return [(self.percent(w), *self.values[w]) for w, _label in WINDOWS]


@dataclass(frozen=True)
class Waiting:
    label: str
    count: int
    url: str


@dataclass
class Dashboard:
    now: dt.datetime
    starts: dict[str, dt.datetime]
    figures: list[Figure] = field(default_factory=list)
    by_method: list[Rate] = field(default_factory=list)
    by_account: list[Rate] = field(default_factory=list)
    breakers: list[tuple[ChannelAccount, str]] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    series: dict[str, list] = field(default_factory=dict)

    @property
    def rate_tables(self):
        return [
            (_("Payment success per method"), self.by_method),
            (_("Payment success per channel account"), self.by_account),
        ]


def window_starts(now: dt.datetime) -> dict[str, dt.datetime]:
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "today": midnight,
        "7d": midnight - dt.timedelta(days=6),
        "30d": midnight - dt.timedelta(days=29),
    }


def _per_window(queryset, field_name: str, starts, make) -> dict:
    """One aggregate query over the 30-day window with a column per window."""
    since = starts["30d"]
    columns = {key: make(Q(**{f"{field_name}__gte": start})) for key, start in starts.items()}
    return queryset.filter(**{f"{field_name}__gte": since}).aggregate(**columns)


def _changelist(name: str, **params) -> str:
    from urllib.parse import urlencode

    from django.urls import reverse

    url = reverse(f"admin:{name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _rates(rows, key_label, url_for, starts) -> list[Rate]:
    rates = []
    for row in rows:
        values = {w: (row[f"ok_{w}"] or 0, row[f"done_{w}"] or 0) for w in starts}
        rates.append(Rate(label=key_label(row), values=values, url=url_for(row)))
    return rates


def _attempt_rates(group_by: str, starts) -> list[dict]:
    columns = {}
    for w, start in starts.items():
        columns[f"ok_{w}"] = Count(
            "id", filter=Q(created_at__gte=start, status=AttemptStatus.SUCCEEDED)
        )
        columns[f"done_{w}"] = Count("id", filter=Q(created_at__gte=start, status__in=FINISHED))
    return list(
        Attempt.objects.filter(created_at__gte=starts["30d"])
        .values(group_by)
        .annotate(**columns)
        .order_by(group_by)
    )


def daily_series(*, now: dt.datetime, days: int = SERIES_DAYS) -> dict[str, list]:
    """Per day for the last ``days`` days: GMV, orders, payment success rate — three queries."""
    tz = timezone.get_current_timezone()
    first = window_starts(now)["today"] - dt.timedelta(days=days - 1)
    dates = [(first + dt.timedelta(days=i)).date() for i in range(days)]
    orders = {
        row["day"]: row
        for row in Order.objects.filter(paid_at__gte=first, status__in=PAID_STATUSES)
        .annotate(day=TruncDate("paid_at", tzinfo=tz))
        .values("day")
        .annotate(gmv=Sum("amount"), n=Count("id"))
    }
    attempts = {
        row["day"]: row
        for row in Attempt.objects.filter(created_at__gte=first)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(
            ok=Count("id", filter=Q(status=AttemptStatus.SUCCEEDED)),
            done=Count("id", filter=Q(status__in=FINISHED)),
        )
    }

    def rate(day):
        row = attempts.get(day)
        return round(100 * row["ok"] / row["done"], 1) if row and row["done"] else None

    return {
        "days": [d.isoformat() for d in dates],
        "gmv": [float((orders.get(d) or {}).get("gmv") or 0) for d in dates],
        "orders": [(orders.get(d) or {}).get("n") or 0 for d in dates],
        "success": [rate(d) for d in dates],
    }


def staff_dashboard(*, now: dt.datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    starts = window_starts(now)
    board = Dashboard(now=now, starts=starts)
    since = {w: timezone.localtime(s).date().isoformat() for w, s in starts.items()}

    orders = _per_window(
        Order.objects.filter(status__in=PAID_STATUSES),
        "paid_at",
        starts,
        lambda q: Sum("amount", filter=q),
    )
    counts = _per_window(
        Order.objects.filter(status__in=PAID_STATUSES),
        "paid_at",
        starts,
        lambda q: Count("id", filter=q),
    )
    refunds = _per_window(
        Refund.objects.filter(status=RefundStatus.SUCCEEDED),
        "created_at",
        starts,
        lambda q: Sum("amount", filter=q),
    )
    disputes = _per_window(
        Dispute.objects.all(), "created_at", starts, lambda q: Count("id", filter=q)
    )

    def links(url, date_field):
        return {w: _with_since(url, date_field, since[w]) for w in starts}

    board.figures = [
        Figure(
            _("GMV (paid orders)"),
            {w: orders[w] or Decimal("0") for w in starts},
            links(_changelist("marketplace_order"), "paid_at"),
            money=True,
        ),
        Figure(
            _("paid orders"),
            {w: counts[w] for w in starts},
            links(_changelist("marketplace_order"), "paid_at"),
        ),
        Figure(
            _("refunded"),
            {w: refunds[w] or Decimal("0") for w in starts},
            links(
                _changelist("payments_refund", status__exact=RefundStatus.SUCCEEDED), "created_at"
            ),
            money=True,
        ),
        Figure(
            _("disputes opened"),
            {w: disputes[w] for w in starts},
            links(_changelist("marketplace_dispute"), "created_at"),
        ),
    ]

    methods = dict(Method.choices)
    board.by_method = _rates(
        _attempt_rates("method", starts),
        lambda r: str(methods.get(r["method"], r["method"])),
        lambda r: _changelist("payments_attempt", method__exact=r["method"]),
        starts,
    )
    accounts = {a.pk: a for a in ChannelAccount.objects.all()}
    board.by_account = _rates(
        _attempt_rates("account_id", starts),
        lambda r: accounts[r["account_id"]].name if r["account_id"] in accounts else "?",
        lambda r: _changelist("payments_attempt", account__id__exact=r["account_id"]),
        starts,
    )
    states = breaker_states([a.code for a in accounts.values()])
    board.breakers = [(a, states[a.code]) for a in sorted(accounts.values(), key=lambda a: a.code)]

    board.waiting = [
        Waiting(
            _("refunds awaiting Finance approval"),
            Refund.objects.filter(status=RefundStatus.REQUESTED).count(),
            _changelist("payments_refund", status__exact=RefundStatus.REQUESTED),
        ),
        Waiting(
            _("payouts to approve or pay"),
            Payout.objects.filter(
                status__in=[Payout.Status.REQUESTED, Payout.Status.APPROVED]
            ).count(),
            _changelist("marketplace_payout", status__exact=Payout.Status.REQUESTED),
        ),
        Waiting(
            _("payments held for review"),
            Payment.objects.filter(status=PaymentStatus.REVIEW).count(),
            _changelist("payments_payment", status__exact=PaymentStatus.REVIEW),
        ),
        Waiting(
            _("orders under review"),
            Order.objects.filter(status=Order.Status.UNDER_REVIEW).count(),
            _changelist("marketplace_order", status__exact=Order.Status.UNDER_REVIEW),
        ),
        Waiting(
            _("open disputes"),
            Dispute.objects.filter(
                status__in=[Dispute.Status.OPEN, Dispute.Status.ANSWERED]
            ).count(),
            _changelist("marketplace_dispute", status__exact=Dispute.Status.OPEN),
        ),
        Waiting(
            _("open reconciliation discrepancies"),
            Discrepancy.objects.filter(status=Discrepancy.Status.OPEN).count(),
            _changelist("reconciliation_discrepancy", status__exact=Discrepancy.Status.OPEN),
        ),
    ]
    board.series = daily_series(now=now)
    return board


def _with_since(url: str, date_field: str, day: str) -> str:
    if not date_field:
        return url
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}{date_field}__gte={day}"
