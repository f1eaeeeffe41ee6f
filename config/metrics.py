"""Prometheus metrics (GET /metrics, staff or METRICS_TOKEN): what each process counts itself
(requests, latencies, task runs and failures) and what the database says at scrape time
(payments and success per channel account, breaker states, notices by outcome), so the
figures agree however many processes serve.

Under `make serve` every process writes its counters to PROMETHEUS_MULTIPROC_DIR and a scrape
of any web worker adds them all up (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import datetime as dt
import hmac
import os

from django.conf import settings
from django.db.models import Count, Q
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

HTTP_REQUESTS = Counter(
    "cardex_http_requests", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "cardex_http_request_duration_seconds",
    "Time to answer a request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30),
)
TASK_RUNS = Counter("cardex_task_runs", "Celery task runs by outcome", ["task", "outcome"])
TASK_LATENCY = Histogram(
    "cardex_task_duration_seconds",
    "Celery task run time",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 360),
)

#: how far back the database-derived gauges look
WINDOW = dt.timedelta(hours=24)


class DatabaseCollector:
    """Gauges read from the payment platform's own tables at scrape time (last 24 hours)."""

    def describe(self):
        return []

    def collect(self):
        from payments.health import breaker_states
        from payments.models import Attempt, ChannelAccount, Notification
        from payments.states import AttemptStatus

        since = timezone.now() - WINDOW
        attempts = GaugeMetricFamily(
            "cardex_payment_attempts",
            "Attempts in the last 24 h by account, method, status",
            labels=["account", "method", "status"],
        )
        success = GaugeMetricFamily(
            "cardex_payment_success_ratio",
            "Succeeded ÷ finished attempts in the last 24 h, per account",
            labels=["account"],
        )
        finished = {}
        rows = (
            Attempt.objects.filter(created_at__gte=since)
            .values_list("account__code", "method", "status")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for code, method, status, n in rows:
            attempts.add_metric([code, method, status], n)
            done, ok = finished.get(code, (0, 0))
            if status in {AttemptStatus.SUCCEEDED, AttemptStatus.FAILED, AttemptStatus.EXPIRED}:
                done += n
                ok += n if status == AttemptStatus.SUCCEEDED else 0
            finished[code] = (done, ok)
        for code, (done, ok) in sorted(finished.items()):
            if done:
                success.add_metric([code], ok / done)
        yield attempts
        yield success

        breakers = GaugeMetricFamily(
            "cardex_breaker_state",
            "1 for the state each account's circuit breaker is in",
            labels=["account", "state"],
        )
        codes = list(ChannelAccount.objects.filter(enabled=True).values_list("code", flat=True))
        for code, state in sorted(breaker_states(codes).items()):
            for candidate in ("closed", "open", "half_open"):
                breakers.add_metric([code, candidate], 1.0 if str(state) == candidate else 0.0)
        yield breakers

        notices = GaugeMetricFamily(
            "cardex_notifications",
            "Inbound notices in the last 24 h by channel and outcome",
            labels=["channel", "outcome"],
        )
        rows = (
            Notification.objects.filter(received_at__gte=since)
            .values_list("channel_code", "outcome")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for channel, outcome, n in rows:
            notices.add_metric([channel, outcome], n)
        yield notices
        pending = Attempt.objects.filter(Q(status=AttemptStatus.PENDING)).count()
        yield GaugeMetricFamily(
            "cardex_payment_attempts_pending", "Attempts waiting at a channel now", value=pending
        )


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessOnly())
    registry.register(DatabaseCollector())
    return registry


class _ProcessOnly:
    """This process's own counters when there is no multiprocess directory (`make run`)."""

    def describe(self):
        return []

    def collect(self):
        yield from REGISTRY.collect()


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.encode())
    return bool(request.user.is_authenticated and request.user.is_staff)


@never_cache
@require_GET
def metrics_view(request):
    """Prometheus text format; a scraper sends `Authorization: Bearer $METRICS_TOKEN`."""
    if not _allowed(request):
        return HttpResponse(
            "metrics need a staff log-in or the metrics token\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
