"""Delivery of the simulators' notifications to the merchant, one try per task run."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.dispatch import receiver
from django.utils import timezone

from payments.channels import http
from payments.sandbox import core
from payments.sandbox.models import SandboxNotification
from payments.sandbox.notifications import notification_queued, retry_scale


def deliver(note_id: int) -> bool:
    """One delivery try; reschedules itself per the provider's schedule until accepted."""
    note = SandboxNotification.objects.get(pk=note_id)
    if note.delivered:
        return True
    impl = core.provider(note.channel)
    note.attempts += 1
    try:
        headers = dict(impl.delivery_headers(note))
        if impl.notify_method == "GET":
            joiner = "&" if "?" in note.url else "?"
            url = f"{note.url}{joiner}{bytes(note.body).decode()}"
            response = http.client(note.url).get(url, headers=headers)
        else:
            response = http.client(note.url).post(
                note.url, content=bytes(note.body), headers=headers
            )
        accepted = impl.notification_accepted(response.status_code, response.content)
        note.last_status = f"HTTP {response.status_code}"
    except Exception as exc:  # the merchant being unreachable is exactly what retries are for
        accepted = False
        note.last_status = f"{type(exc).__name__}"
    note.delivered = accepted
    schedule = impl.retry_schedule
    retry = not accepted and note.attempts <= len(schedule)
    if retry:
        delay = schedule[note.attempts - 1] * retry_scale()
        note.next_try_at = timezone.now() + timedelta(seconds=delay)
    note.save()
    if retry:
        deliver_notification.apply_async((note.pk,), countdown=delay)
    return accepted


@shared_task(ignore_result=True)
def deliver_notification(note_id: int) -> None:
    deliver(note_id)


@receiver(notification_queued, dispatch_uid="sandbox-deliver-queued-notification")
def _deliver_when_queued(sender, note_id: int, **kwargs) -> None:
    deliver_notification.delay(note_id)
