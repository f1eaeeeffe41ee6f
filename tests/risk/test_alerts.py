"""Monitors judge rates against staff-set bounds; alerts open once, resolve by themselves,
and go out by log, e-mail and webhook without ever breaking the evaluation."""

import datetime as dt
import hashlib
import hmac
import json
import logging
from decimal import Decimal

import httpx
import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from risk import alerts
from risk.models import Alert, Monitor
from risk.tasks import evaluate_monitors
from tests.risk.factories import MonitorFactory, attempts, delivered_order

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.com/services/T0KEN-SECRET/abc"


@pytest.fixture
def webhook(settings):
    """Records webhook requests (or fails them with ``hook.fail``)."""

    class Hook:
        requests: list[httpx.Request] = []
        fail: Exception | None = None
        status = 200

        def handler(self, request):
            if self.fail:
                raise self.fail
            self.requests.append(request)
            return httpx.Response(self.status)

    hook = Hook()
    hook.requests = []
    settings.RISK_ALERT_HTTP_TRANSPORT = lambda: httpx.MockTransport(hook.handler)
    return hook


def test_a_rate_below_the_lower_bound_opens_one_alert_per_channel_and_method():
    MonitorFactory(lower_bound=Decimal("80"))
    attempts(5, status="failed", channel="ali-1")
    attempts(6, status="succeeded", channel="ali-2")
    summary = alerts.monitors_evaluate()
    alert = Alert.objects.get()
    assert summary.opened == [alert.pk]
    assert alert.dimensions == {"channel": "ali-1", "method": "alipay"}
    assert (alert.bound, alert.threshold, alert.value) == (
        "lower",
        Decimal("80.00"),
        Decimal("0.00"),
    )
    assert (alert.numerator, alert.denominator) == (0, 5) and alert.resolved_at is None


def test_evaluating_again_does_not_duplicate_an_open_alert():
    MonitorFactory()
    attempts(5, status="failed")
    alerts.monitors_evaluate()
    attempts(1, status="succeeded")
    summary = alerts.monitors_evaluate()
    alert = Alert.objects.get()
    assert summary.opened == [] and summary.still_open == [alert.pk]
    assert alert.value == Decimal("16.67") and alert.denominator == 6


def test_the_alert_resolves_when_the_rate_is_back_within_bounds():
    MonitorFactory()
    attempts(5, status="failed", at=timezone.now() - dt.timedelta(minutes=50))
    alerts.monitors_evaluate()
    attempts(40, status="succeeded")
    summary = alerts.monitors_evaluate()
    alert = Alert.objects.get()
    assert (
        summary.resolved == [alert.pk] and alert.resolved_at is not None and alert.resolved_by == ""
    )
    attempts(30, status="failed")
    alerts.monitors_evaluate()
    assert (
        Alert.objects.filter(resolved_at__isnull=True).count() == 1 and Alert.objects.count() == 2
    )


def test_an_upper_bound_alerts_on_a_dispute_rate_that_rises_too_high():
    MonitorFactory(
        metric="marketplace.dispute_rate",
        lower_bound=None,
        upper_bound=Decimal("10"),
        min_sample=3,
        window_hours=72,
    )
    delivered_order(dispute="open")
    delivered_order()
    delivered_order()
    alerts.monitors_evaluate()
    alert = Alert.objects.get()
    assert (alert.bound, alert.value) == ("upper", Decimal("33.33"))


def test_too_few_events_are_not_judged():
    MonitorFactory(min_sample=10)
    attempts(9, status="failed")
    assert alerts.monitors_evaluate().opened == []
    assert not Alert.objects.exists()


def test_the_dimension_filter_and_an_overall_total():
    MonitorFactory(dimensions={"method": "card"}, per_dimension=False)
    attempts(5, status="failed", channel="ali-1", method="alipay")
    attempts(3, status="failed", channel="card-1", method="card")
    attempts(3, status="succeeded", channel="card-2", method="card")
    alerts.monitors_evaluate()
    alert = Alert.objects.get()
    assert alert.dimensions == {"method": "card"} and (alert.numerator, alert.denominator) == (3, 6)


def test_disabled_monitors_and_unknown_metrics_are_skipped(caplog):
    MonitorFactory(enabled=False)
    Monitor.objects.create(name="gone", metric="no.such.metric", lower_bound=Decimal("1"))
    attempts(5, status="failed")
    with caplog.at_level(logging.WARNING, logger="risk.alerts"):
        summary = alerts.monitors_evaluate()
    assert summary.skipped == ["gone"] and not Alert.objects.exists()
    assert "no.such.metric" in caplog.text


def test_monitors_sharing_a_metric_and_window_query_it_once(django_assert_max_num_queries):
    MonitorFactory(lower_bound=Decimal("80"))
    MonitorFactory(lower_bound=Decimal("50"))
    attempts(5, status="failed")
    # 1 monitor list + 1 metric query + per monitor: lock, open alerts, one insert
    # (+ savepoint pairs)
    with django_assert_max_num_queries(1 + 1 + 2 * 5):
        alerts.monitors_evaluate()
    assert Alert.objects.count() == 2


def test_an_opened_alert_is_logged_at_warning(caplog):
    MonitorFactory(name="alipay success")
    attempts(5, status="failed")
    with caplog.at_level(logging.INFO, logger="risk.alerts"):
        alerts.monitors_evaluate()
    [record] = [r for r in caplog.records if r.name == "risk.alerts"]
    assert record.levelno == logging.WARNING
    assert "alipay success" in record.getMessage() and "0.00%" in record.getMessage()


def test_alerts_are_e_mailed_to_the_monitor_addresses_or_the_site_default(settings):
    MonitorFactory(alert_emails="risk@example.com, oncall@example.com")
    attempts(5, status="failed")
    alerts.monitors_evaluate()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["risk@example.com", "oncall@example.com"]
    settings.RISK_ALERT_EMAILS = ["desk@example.com"]
    MonitorFactory(metric="payments.first_attempt_success_rate")
    alerts.monitors_evaluate()
    assert mail.outbox[-1].to == ["desk@example.com"]


def test_a_failing_mail_server_is_logged_and_the_alert_still_opens(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(alerts, "send_mail", broken)
    MonitorFactory(alert_emails="risk@example.com")
    attempts(5, status="failed")
    with caplog.at_level(logging.WARNING, logger="risk.alerts"):
        alerts.monitors_evaluate()
    assert Alert.objects.filter(resolved_at__isnull=True).exists()
    assert "e-mail to 1 recipient(s) failed" in caplog.text


def test_the_webhook_gets_a_signed_json_post_when_an_alert_opens_and_resolves(webhook, settings):
    settings.RISK_ALERT_WEBHOOK_SECRET = "s3cret"
    MonitorFactory(webhook_url=HOOK)
    attempts(5, status="failed", at=timezone.now() - dt.timedelta(minutes=50))
    alerts.monitors_evaluate()
    attempts(50, status="succeeded")
    alerts.monitors_evaluate()
    opened, resolved = webhook.requests
    body = json.loads(opened.content)
    assert str(opened.url) == HOOK and opened.headers["content-type"] == "application/json"
    assert body["event"] == "alert.opened" and body["metric"] == "payments.success_rate"
    assert (
        body["dimensions"] == {"channel": "ali-1", "method": "alipay"}
        and body["value_percent"] == "0.00"
    )
    expected = hmac.new(b"s3cret", opened.content, hashlib.sha256).hexdigest()
    assert opened.headers["x-cardex-signature"] == f"sha256={expected}"
    assert json.loads(resolved.content)["event"] == "alert.resolved"


def test_the_site_webhook_is_used_when_the_monitor_has_none(webhook, settings):
    settings.RISK_ALERT_WEBHOOK_URL = HOOK
    MonitorFactory()
    attempts(5, status="failed")
    alerts.monitors_evaluate()
    assert len(webhook.requests) == 1


@pytest.mark.parametrize("failure", ["timeout", "http_500"])
def test_a_failing_webhook_is_logged_without_its_token_and_never_raised(webhook, caplog, failure):
    if failure == "timeout":
        webhook.fail = httpx.ReadTimeout("timed out")
    else:
        webhook.status = 500
    MonitorFactory(webhook_url=HOOK)
    attempts(5, status="failed")
    with caplog.at_level(logging.WARNING, logger="risk.alerts"):
        summary = alerts.monitors_evaluate()
    assert len(summary.opened) == 1
    assert "https://hooks.example.com/…" in caplog.text
    assert "T0KEN-SECRET" not in caplog.text


def test_a_person_resolves_an_alert_and_a_persisting_problem_opens_a_new_one():
    MonitorFactory()
    attempts(5, status="failed")
    alerts.monitors_evaluate()
    alert = Alert.objects.get()
    assert alerts.alert_resolve(alert=alert, by="rita") is True
    assert alerts.alert_resolve(alert=alert, by="rita") is False
    alert.refresh_from_db()
    assert alert.resolved_by == "rita"
    alerts.monitors_evaluate()
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1


def test_the_celery_task_evaluates_the_monitors():
    MonitorFactory()
    attempts(5, status="failed")
    assert evaluate_monitors.delay().get() == {"opened": 1, "resolved": 0, "still_open": 0}


def test_a_monitor_needs_a_known_metric_and_sensible_bounds():
    with pytest.raises(ValidationError) as error:
        Monitor(name="x", metric="nope", lower_bound=None, upper_bound=None).full_clean()
    assert {"metric", "upper_bound"} <= set(error.value.message_dict)
    with pytest.raises(ValidationError):
        Monitor(
            name="y",
            metric="payments.success_rate",
            lower_bound=Decimal("90"),
            upper_bound=Decimal("10"),
        ).full_clean()
    with pytest.raises(ValidationError):
        Monitor(
            name="z",
            metric="payments.success_rate",
            lower_bound=Decimal("90"),
            dimensions={"method": 3},
        ).full_clean()
    Monitor(
        name="ok",
        metric="payments.success_rate",
        lower_bound=Decimal("90"),
        dimensions={"method": "card"},
    ).full_clean()
