"""Monitors judged against their bounds, and the alerts they open, resolve and send.

Every alert is logged (WARNING when opened); e-mail and a JSON webhook are optional, per
monitor or site-wide (settings ``RISK_ALERT_EMAILS``, ``RISK_ALERT_WEBHOOK_URL``). Sending
never fails an evaluation: a broken mail server or webhook is logged and the next alert is
still judged. URLs are logged only as scheme and host (webhook URLs often carry a token).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from risk import monitoring
from risk.models import Alert, Monitor

log = logging.getLogger(__name__)

OPENED, RESOLVED = "opened", "resolved"


@dataclass
class EvaluationSummary:
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    still_open: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _grain_for(window_hours: int) -> monitoring.Grain:
    # Sources filter on exact timestamps, so sums over either grain are the same; days are
    # just fewer rows for long windows.
    return monitoring.DAY if window_hours > 48 else monitoring.HOUR


def _crossed(monitor: Monitor, value: Decimal) -> tuple[str, Decimal] | None:
    if monitor.lower_bound is not None and value < monitor.lower_bound:
        return Alert.Bound.LOWER, monitor.lower_bound
    if monitor.upper_bound is not None and value > monitor.upper_bound:
        return Alert.Bound.UPPER, monitor.upper_bound
    return None


def monitors_evaluate(*, now: dt.datetime | None = None) -> EvaluationSummary:
    """Judge every enabled monitor over its trailing window: open an alert for each set of
    dimensions out of bounds (one open alert per monitor × dimensions, however often this
    runs), resolve the open ones back within bounds. Groups below the monitor's minimum
    sample are not judged, so their open alerts stay open until there is evidence."""
    now = now or timezone.now()
    collector = monitoring.Collector()
    summary = EvaluationSummary()
    for monitor in Monitor.objects.filter(enabled=True).order_by("pk"):
        if monitoring.metric(monitor.metric) is None:
            log.warning(
                "monitor %s: no metric %r is registered; skipped", monitor.pk, monitor.metric
            )
            summary.skipped.append(monitor.name)
            continue
        since = now - dt.timedelta(hours=monitor.window_hours)
        points = collector.points(
            monitor.metric, since=since, until=now, grain=_grain_for(monitor.window_hours)
        )
        groups = monitoring.totals(
            points, where=monitor.dimensions or {}, split=monitor.per_dimension
        )
        opened, resolved = _judge(monitor, groups, now=now, summary=summary)
        for alert in opened:
            alert_notify(alert, event=OPENED)
        for alert in resolved:
            alert_notify(alert, event=RESOLVED)
    return summary


def _judge(
    monitor: Monitor,
    groups: dict[str, monitoring.Total],
    *,
    now: dt.datetime,
    summary: EvaluationSummary,
) -> tuple[list[Alert], list[Alert]]:
    opened: list[Alert] = []
    resolved: list[Alert] = []
    with transaction.atomic():
        # One evaluation of a monitor at a time: two workers never open the same alert twice.
        Monitor.objects.select_for_update().filter(pk=monitor.pk).first()
        open_alerts = {
            a.dimensions_key: a
            for a in Alert.objects.filter(monitor=monitor, resolved_at__isnull=True)
        }
        for key, total in sorted(groups.items()):
            if total.denominator < monitor.min_sample or total.percent is None:
                continue
            crossed = _crossed(monitor, total.percent)
            alert = open_alerts.get(key)
            if crossed and alert is None:
                bound, threshold = crossed
                alert = Alert.objects.create(
                    monitor=monitor,
                    dimensions=total.dimensions,
                    dimensions_key=key,
                    bound=bound,
                    threshold=threshold,
                    value=total.percent,
                    numerator=total.numerator,
                    denominator=total.denominator,
                    opened_at=now,
                    last_evaluated_at=now,
                )
                opened.append(alert)
                summary.opened.append(alert.pk)
            elif crossed:
                alert.value, alert.numerator, alert.denominator = (
                    total.percent,
                    total.numerator,
                    total.denominator,
                )
                alert.last_evaluated_at = now
                alert.save(update_fields=["value", "numerator", "denominator", "last_evaluated_at"])
                summary.still_open.append(alert.pk)
            elif alert is not None:
                alert.value, alert.numerator, alert.denominator = (
                    total.percent,
                    total.numerator,
                    total.denominator,
                )
                alert.last_evaluated_at = alert.resolved_at = now
                alert.save(
                    update_fields=[
                        "value",
                        "numerator",
                        "denominator",
                        "last_evaluated_at",
                        "resolved_at",
                    ]
                )
                resolved.append(alert)
                summary.resolved.append(alert.pk)
    return opened, resolved


def alert_resolve(*, alert: Alert, by: str) -> bool:
    """A person closes an alert (e.g. the cause is known). If the rate is still out of
    bounds, the next evaluation opens a new one. Returns False if it was already resolved."""
    updated = Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolved_by=by[:150]
    )
    return bool(updated)


# --- sending ----------------------------------------------------------------------------------


def _describe(alert: Alert, event: str) -> str:
    dims = alert.dimensions_key or "all"
    if event == RESOLVED:
        return (
            f"[Cardex risk] resolved: {alert.monitor.name} ({alert.monitor.metric}, {dims}) "
            f"is back within bounds at {alert.value}% ({alert.numerator}/{alert.denominator})"
        )
    side = "below" if alert.bound == Alert.Bound.LOWER else "above"
    return (
        f"[Cardex risk] {alert.monitor.name} ({alert.monitor.metric}, {dims}) is {alert.value}% "
        f"({alert.numerator}/{alert.denominator}), {side} the bound of {alert.threshold}% "
        f"over the last {alert.monitor.window_hours} h"
    )


def payload(alert: Alert, event: str) -> dict:
    """The webhook's JSON body (documented in docs/risk.md)."""
    return {
        "event": f"alert.{event}",
        "alert_id": alert.pk,
        "monitor": alert.monitor.name,
        "metric": alert.monitor.metric,
        "dimensions": alert.dimensions,
        "value_percent": str(alert.value),
        "bound": alert.bound,
        "bound_percent": str(alert.threshold),
        "numerator": alert.numerator,
        "denominator": alert.denominator,
        "window_hours": alert.monitor.window_hours,
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "text": _describe(alert, event),
    }


def redact_url(url: str) -> str:
    """``https://hooks.example.com/…``: enough to tell which endpoint, never its token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…" if parts.scheme else "…"


def alert_notify(alert: Alert, *, event: str) -> None:
    """Log always; e-mail and webhook where configured. Never raises."""
    text = _describe(alert, event)
    log.log(logging.WARNING if event == OPENED else logging.INFO, text)
    emails = alert.monitor.email_list or list(getattr(settings, "RISK_ALERT_EMAILS", []) or [])
    if emails:
        try:
            send_mail(text[:200], text, None, emails)
        except Exception as exc:  # any mail backend failure: logged, evaluation goes on
            log.warning(
                "alert %s: e-mail to %d recipient(s) failed: %s",
                alert.pk,
                len(emails),
                type(exc).__name__,
            )
    url = alert.monitor.webhook_url or getattr(settings, "RISK_ALERT_WEBHOOK_URL", "")
    if url:
        _webhook_post(url, payload(alert, event), alert_id=alert.pk)


def _transport() -> httpx.BaseTransport | None:
    spec = getattr(settings, "RISK_ALERT_HTTP_TRANSPORT", None)
    if spec is None:
        return None
    factory = import_string(spec) if isinstance(spec, str) else spec
    return factory()


def _webhook_post(url: str, body: dict, *, alert_id: int) -> bool:
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Cardex-Risk/1"}
    secret = getattr(settings, "RISK_ALERT_WEBHOOK_SECRET", "")
    if secret:
        digest = hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
        headers["X-Cardex-Signature"] = f"sha256={digest}"
    timeout = float(getattr(settings, "RISK_ALERT_WEBHOOK_TIMEOUT", 3.0))
    try:
        with httpx.Client(timeout=timeout, transport=_transport()) as client:
            response = client.post(url, content=data, headers=headers)
        if response.status_code >= 300:
            log.warning(
                "alert %s: webhook %s answered HTTP %s",
                alert_id,
                redact_url(url),
                response.status_code,
            )
            return False
    except Exception as exc:  # timeouts, refused connections, bad URLs: logged, never raised
        log.warning(
            "alert %s: webhook %s failed: %s", alert_id, redact_url(url), type(exc).__name__
        )
        return False
    return True


def staff_notify(text: str, body: dict, *, emails: list[str] | None = None, key: str = "") -> None:
    """Any other part of the site alerting staff through the same channels as monitors: the
    log (WARNING), e-mail to ``emails`` plus ``RISK_ALERT_EMAILS``, and the signed webhook
    ``RISK_ALERT_WEBHOOK_URL`` with ``body`` (its ``text`` added). Never raises."""
    log.warning(text)
    recipients = sorted({*(emails or []), *(getattr(settings, "RISK_ALERT_EMAILS", []) or [])})
    if recipients:
        try:
            send_mail(text[:200], text, None, recipients)
        except Exception as exc:  # any mail backend failure: logged, the caller goes on
            log.warning(
                "alert %s: e-mail to %d recipient(s) failed: %s",
                key,
                len(recipients),
                type(exc).__name__,
            )
    url = getattr(settings, "RISK_ALERT_WEBHOOK_URL", "")
    if url:
        _webhook_post(url, {**body, "text": text}, alert_id=key)
