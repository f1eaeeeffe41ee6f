"""Notifications the simulated providers send to the merchant: queued here, delivered by
``tasks`` with the provider's retry schedule.

Queuing announces ``notification_queued`` after commit instead of calling the task, so the
provider registry (``core``) and the delivery task (``tasks``) do not import each other."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal

from config.prepared import PreparedRead
from payments.sandbox.models import SandboxFault, SandboxNotification

#: sent with ``note_id`` once the notification row is committed; ``tasks`` delivers it
notification_queued = Signal()


# asked before every notification is queued: compiled once per connection
_LOSING = PreparedRead(
    lambda channel: SandboxFault.objects.filter(channel=channel, lose_notifications=True),
    channel=str,
)


def notifications_lost(channel: str) -> bool:
    return _LOSING.exists(channel=channel)


def retry_scale() -> float:
    """Real schedules run over hours; the sandbox compresses them (1.0 = real time)."""
    return float(getattr(settings, "SANDBOX_NOTIFY_TIME_SCALE", 0.02))


def enqueue_notification(
    channel: str, url: str, headers: Mapping[str, str], body: bytes
) -> SandboxNotification | None:
    if notifications_lost(channel):
        return None
    note = SandboxNotification.objects.create(
        channel=channel, url=url, headers=dict(headers), body=body
    )
    transaction.on_commit(
        lambda: notification_queued.send(sender=SandboxNotification, note_id=note.pk)
    )
    return note
