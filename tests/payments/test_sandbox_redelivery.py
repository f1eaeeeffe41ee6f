"""The simulators owe their notices as real providers do: a database outage or a lost task
does not lose one."""

from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.db import OperationalError
from django.utils import timezone

from payments.sandbox import tasks
from payments.sandbox.models import SandboxNotification

pytestmark = pytest.mark.django_db


def owed(**fields):
    return SandboxNotification.objects.create(
        channel="alipay", url="http://merchant.test/notify/", body=b"x=1", **fields
    )


def test_a_try_that_finds_the_database_away_is_retried_with_back_off():
    away = OperationalError("server closed the connection unexpectedly")
    with mock.patch.object(tasks, "deliver", side_effect=away), pytest.raises(Retry):
        tasks.deliver_notification.apply(args=(7,))  # scheduled again, not failed for good
    task = tasks.deliver_notification
    assert task.retry_backoff and task.retry_backoff_max == 60 and task.max_retries >= 30


def test_a_try_that_fails_otherwise_is_not_retried_by_celery():
    bug = KeyError("bug")
    with mock.patch.object(tasks, "deliver", side_effect=bug), pytest.raises(KeyError):
        tasks.deliver_notification.apply(args=(7,))


def test_the_sweep_sends_again_a_notice_never_tried_once_its_task_is_overdue():
    now = timezone.now()
    lost = owed(created_at=now - timedelta(minutes=5))
    owed(created_at=now - timedelta(seconds=10))  # its task may still be on its way
    assert tasks.due_notification_ids(now) == [lost.pk]


def test_the_sweep_sends_again_a_retry_whose_time_passed_long_ago():
    now = timezone.now()
    overdue = owed(attempts=2, next_try_at=now - timedelta(minutes=3))
    owed(attempts=2, next_try_at=now + timedelta(seconds=30))  # scheduled, not yet due
    owed(attempts=1, delivered=True, created_at=now - timedelta(hours=1))
    assert tasks.due_notification_ids(now) == [overdue.pk]


def test_a_notice_whose_schedule_is_spent_is_not_sent_for_ever():
    note = owed(attempts=7, next_try_at=timezone.now() - timedelta(minutes=30))
    failing = mock.Mock(status_code=500, content=b"fail")
    with mock.patch.object(tasks.http, "client") as client:
        client.return_value.post.return_value = failing
        assert tasks.deliver(note.pk) is False
    note.refresh_from_db()
    assert note.next_try_at is None and not note.delivered
    assert note.pk not in tasks.due_notification_ids(timezone.now() + timedelta(days=1))


def test_the_sweep_queues_one_try_per_due_notice():
    lost = owed(created_at=timezone.now() - timedelta(minutes=5))
    with mock.patch.object(tasks.deliver_notification, "delay") as delay:
        assert tasks.redeliver_due_notifications() == 1
    delay.assert_called_once_with(lost.pk)
