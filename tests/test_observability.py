"""Observability: every request has an id that its log line and the tasks it queues carry;
/metrics serves Prometheus figures to staff or the metrics token only."""

import json
import logging
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from kombu import Connection, Queue

from config.celery import app, restore_request_id, stamp_request_id
from config.logging import JsonFormatter, RequestIdFilter, request_id
from payments.models import Attempt, ChannelAccount, Notification
from tests.accounts.factories import UserFactory
from tests.payments.factories import PaymentFactory, sandbox_account

pytestmark = pytest.mark.django_db


def test_each_response_names_its_request_id(client):
    first = client.get("/healthz")
    second = client.get("/healthz")
    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_proxys_request_id_is_kept_and_a_malformed_one_replaced(client):
    kept = client.get("/healthz", headers={"X-Request-ID": "edge-4f1c2a9b7e"})
    assert kept["X-Request-ID"] == "edge-4f1c2a9b7e"
    replaced = client.get("/healthz", headers={"X-Request-ID": "<script>\n"})
    assert replaced["X-Request-ID"] != "<script>\n" and len(replaced["X-Request-ID"]) == 32


def test_the_request_log_line_is_json_with_the_id_status_and_time(client, caplog):
    caplog.set_level(logging.INFO, logger="cardex.request")
    response = client.get("/healthz")
    record = next(r for r in caplog.records if r.name == "cardex.request")
    RequestIdFilter().filter(record)  # caplog's handler bypasses the configured filters
    line = json.loads(JsonFormatter().format(record))
    assert line["status"] == 200 and line["path"] == "/healthz" and line["route"] == "healthz"
    assert line["level"] == "INFO" and isinstance(line["duration_ms"], float)
    assert record.status == 200 and response.status_code == 200


def test_a_queued_task_carries_the_request_id_and_the_worker_restores_it():
    token = request_id.set("req-0123456789")
    try:
        headers = {}
        stamp_request_id(headers=headers)
    finally:
        request_id.reset(token)
    assert headers == {"request_id": "req-0123456789"}

    class Task:
        name = "payments.tasks.query_attempt"

        class request:  # noqa: N801 - shaped like Celery's task.request
            request_id = "req-0123456789"

    restore_request_id(task_id="t1", task=Task)
    assert request_id.get() == "req-0123456789"
    from config.celery import count_task_run

    count_task_run(task_id="t1", task=Task, state="SUCCESS")
    assert request_id.get() == ""


@pytest.mark.skipif(
    settings.CELERY_BROKER_URL.startswith("filesystem://"),
    reason="embedded broker; set CELERY_BROKER_URL",
)
def test_the_request_id_travels_in_the_message_on_a_real_broker():
    queue = Queue(f"cardex-test-{uuid.uuid4().hex}")
    token = request_id.set("req-on-the-wire-42")
    try:
        with app.connection_for_write() as conn:
            app.send_task(
                "payments.tasks.fold_health", queue=queue.name, connection=conn, declare=[queue]
            )
    finally:
        request_id.reset(token)
    with Connection(settings.CELERY_BROKER_URL) as conn:
        simple = conn.SimpleQueue(queue)
        message = simple.get(timeout=5)
        assert message.headers["request_id"] == "req-on-the-wire-42"
        message.ack()
        simple.queue.delete()
        simple.close()


def test_metrics_are_refused_without_staff_or_the_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics").status_code == 403
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    client.force_login(UserFactory())
    assert client.get("/metrics").status_code == 403


def test_metrics_show_requests_payments_breakers_and_notices(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    account = sandbox_account("alipay")
    for status in ("succeeded", "succeeded", "failed"):
        Attempt.objects.create(
            payment=PaymentFactory(),
            account=account,
            method="alipay",
            amount=Decimal("10.00"),
            status=status,
        )
    for outcome in ("applied", "duplicate", "rejected"):
        Notification.objects.create(
            account=account, channel_code="alipay", body=b"x", outcome=outcome
        )
    client.get("/healthz")
    body = client.get(
        "/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"}
    ).content.decode()
    assert 'cardex_http_requests_total{method="GET",route="healthz",status="200"}' in body
    assert "cardex_http_request_duration_seconds_bucket" in body
    assert (
        'cardex_payment_attempts{account="alipay",method="alipay",status="succeeded"} 2.0' in body
    )
    assert 'cardex_payment_success_ratio{account="alipay"} 0.666' in body
    assert 'cardex_breaker_state{account="alipay",state="closed"} 1.0' in body
    for outcome in ("applied", "duplicate", "rejected"):
        assert f'cardex_notifications{{channel="alipay",outcome="{outcome}"}} 1.0' in body
    assert ChannelAccount.objects.count() == 1


def test_staff_can_read_metrics_in_the_browser(client):
    client.force_login(UserFactory(is_staff=True))
    response = client.get("/metrics")
    assert response.status_code == 200 and b"cardex_task_runs" in response.content
