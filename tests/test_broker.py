"""When a real broker is configured (CI: Redis), Celery's messages really travel through it."""

import uuid

import pytest
from django.conf import settings
from kombu import Connection


@pytest.mark.skipif(
    settings.CELERY_BROKER_URL.startswith("filesystem://"),
    reason="embedded broker; set CELERY_BROKER_URL",
)
def test_a_message_round_trips_through_the_configured_broker():
    queue_name = f"cardex-test-{uuid.uuid4().hex}"
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=5) as conn:
        conn.ensure_connection(max_retries=3)
        queue = conn.SimpleQueue(queue_name)
        queue.put({"ping": queue_name})
        message = queue.get(block=True, timeout=5)
        assert message.payload == {"ping": queue_name}
        message.ack()
        queue.clear()
        queue.close()


def test_celery_app_reads_its_settings_from_django():
    from config.celery import app

    assert app.conf.task_acks_late is True and app.conf.task_reject_on_worker_lost is True
    assert app.conf.task_serializer == "json" and app.conf.task_time_limit
    assert "release-expired-reservations" in app.conf.beat_schedule
