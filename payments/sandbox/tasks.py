"""Delivery of the simulators' notifications to the merchant, one try per task run.

A real provider keeps a notice until the merchant takes it, whatever happens on its own side;
so does the simulator. A try that cannot even read or write its row (the database away) is
retried by Celery with back-off, and a sweep every minute sends again what is due and has no
task left (a lost task, a worker killed before it acknowledged)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db import DatabaseError
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
    else:  # delivered, or the provider's schedule is spent: nothing more is due
        note.next_try_at = None
    note.save()
    if retry:
        deliver_notification.apply_async((note.pk,), countdown=delay)
    return accepted


@shared_task(
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=40,  # about half an hour of the database being away
)
def deliver_notification(note_id: int) -> None:
    deliver(note_id)


# A notice whose next try is this much overdue has lost its task.
SWEEP_GRACE = timedelta(seconds=60)


def due_notification_ids(now=None) -> list[int]:
    """Notices still owed whose try is overdue by more than the grace: never tried and older
    than the grace, or past their scheduled next try by as much."""
    cutoff = (now or timezone.now()) - SWEEP_GRACE
    owed = SandboxNotification.objects.filter(delivered=False)
    never_tried = owed.filter(attempts=0, created_at__lte=cutoff)
    overdue = owed.filter(next_try_at__lte=cutoff)
    return sorted(
        set(never_tried.values_list("pk", flat=True)) | set(overdue.values_list("pk", flat=True))
    )[:500]


@shared_task(ignore_result=True)
def redeliver_due_notifications() -> int:
    """Queue a try for each overdue notice (the merchant dedupes a notice sent twice, as it
    must for a real provider)."""
    ids = due_notification_ids()
    for note_id in ids:
        deliver_notification.delay(note_id)
    return len(ids)


@receiver(notification_queued, dispatch_uid="sandbox-deliver-queued-notification")
def _deliver_when_queued(sender, note_id: int, **kwargs) -> None:
    deliver_notification.delay(note_id)
