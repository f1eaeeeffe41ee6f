from celery import shared_task

from payments.sandbox import core


@shared_task(ignore_result=True)
def deliver_notification(note_id: int) -> None:
    core.deliver(note_id)
