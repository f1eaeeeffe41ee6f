"""What the monitoring page reads: open alerts and, per metric, a time series per channel ×
method for the last 24 hours (hourly) and the last 14 days (daily). Two source calls per
shared source, whatever the data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from risk import monitoring
from risk.models import Alert

HOURS, DAYS = 24, 14


@dataclass(frozen=True)
class Series:
    """One row: a set of dimensions, its rate per period (``None`` where nothing happened)
    and the total over the whole range."""

    dimensions: dict[str, str]
    values: list[Decimal | None]
    total: monitoring.Total


@dataclass(frozen=True)
class Row:
    dimensions: dict[str, str]
    labels: list[str]
    hourly: Series | None
    daily: Series | None


@dataclass(frozen=True)
class MetricPanel:
    metric: monitoring.Metric
    rows: list[Row]
    chart: dict | None = None  # daily rates of the busiest rows, for static/js/backoffice-charts.js


CHART_ROWS = 6


def _chart(rows: list[Row], days: list[dt.datetime]) -> dict | None:
    """The daily series of the rows with the most finished events, as a chart spec."""
    daily = [row for row in rows if row.daily]
    if not daily:
        return None
    busiest = sorted(daily, key=lambda row: -row.daily.total.denominator)[:CHART_ROWS]
    from django.utils.translation import gettext as _

    return {
        "xLabel": _("date"),
        "days": [timezone.localtime(day).date().isoformat() for day in days],
        "series": [
            {
                "label": " · ".join(row.labels),
                "unit": "%",
                "values": [float(v) if v is not None else None for v in row.daily.values],
            }
            for row in busiest
        ],
    }


@dataclass(frozen=True)
class Dashboard:
    alerts: list[Alert]
    panels: list[MetricPanel]
    hours: list[dt.datetime]
    days: list[dt.datetime]
    generated_at: dt.datetime


def _periods(*, now: dt.datetime) -> tuple[list[dt.datetime], list[dt.datetime]]:
    local = timezone.localtime(now)
    this_hour = local.replace(minute=0, second=0, microsecond=0)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    hours = [this_hour - dt.timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]
    tz = timezone.get_current_timezone()
    # Calendar days, not 24-hour steps, so a daylight-saving change does not shift buckets.
    days = [
        timezone.make_aware(
            dt.datetime.combine(today.date() - dt.timedelta(days=DAYS - 1 - i), dt.time()), tz
        )
        for i in range(DAYS)
    ]
    return hours, days


def _series(points: list[monitoring.DataPoint], periods: list[dt.datetime]) -> dict[str, Series]:
    by_key: dict[str, dict[dt.datetime, list[int]]] = {}
    dims_of: dict[str, dict[str, str]] = {}
    for point in points:
        key = monitoring.dimensions_key(point.dims)
        dims_of[key] = point.dims
        counts = by_key.setdefault(key, {}).setdefault(point.period_start, [0, 0])
        counts[0] += point.numerator
        counts[1] += point.denominator
    totals = monitoring.totals(points)
    return {
        key: Series(
            dimensions=dims_of[key],
            values=[monitoring.rate_percent(*per_period.get(period, (0, 0))) for period in periods],
            total=totals[key],
        )
        for key, per_period in by_key.items()
    }


def monitoring_dashboard(
    *, now: dt.datetime | None = None, metric_names=None, with_alerts: bool = True
) -> Dashboard:
    """The monitoring page's data; ``metric_names`` limits it to some metrics (Finance sees
    the success rates only)."""
    now = now or timezone.now()
    hours, days = _periods(now=now)
    collector = monitoring.Collector()
    panels = []
    for metric in monitoring.metrics():
        if metric_names is not None and metric.name not in metric_names:
            continue
        hourly = _series(
            collector.points(metric.name, since=hours[0], until=now, grain=monitoring.HOUR), hours
        )
        daily = _series(
            collector.points(metric.name, since=days[0], until=now, grain=monitoring.DAY), days
        )
        keys = sorted(set(hourly) | set(daily))
        rows = []
        for key in keys:
            dims = (daily.get(key) or hourly[key]).dimensions
            labels = [dims.get(name, "") or "—" for name in metric.dimensions]
            rows.append(
                Row(dimensions=dims, labels=labels, hourly=hourly.get(key), daily=daily.get(key))
            )
        panels.append(MetricPanel(metric=metric, rows=rows, chart=_chart(rows, days)))
    alerts = (
        list(
            Alert.objects.filter(resolved_at__isnull=True)
            .select_related("monitor")
            .order_by("-opened_at")
        )
        if with_alerts
        else []
    )
    return Dashboard(alerts=alerts, panels=panels, hours=hours, days=days, generated_at=now)
