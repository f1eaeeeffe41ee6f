"""Thin Celery wrappers: they take ids and call services."""

from celery import shared_task
from django.dispatch import receiver

from payments import health, services
from payments.models import Refund


@shared_task(ignore_result=True, acks_late=True)
def query_pending_attempts() -> int:
    due = services.attempts_due_for_query()
    for attempt_id in due:
        query_attempt.delay(attempt_id)
    return len(due)


@shared_task(
    ignore_result=True,
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
)
def query_attempt(attempt_id: int) -> str:
    return services.attempt_query(attempt_id=attempt_id)


@shared_task(ignore_result=True, acks_late=True)
def resend_pending_refunds() -> int:
    ids = list(Refund.objects.filter(status="pending").values_list("pk", flat=True)[:200])
    for refund_id in ids:
        services.refund_send(refund_id=refund_id, query=True)
    return len(ids)


@shared_task(ignore_result=True, acks_late=True)
def fold_health() -> int:
    return health.health_fold()


@receiver(health.fold_due, dispatch_uid="payments.tasks.fold_due")
def queue_fold(sender, countdown: float, **kwargs) -> None:
    """Queue the worker's fold (connected in ``PaymentsConfig.ready``); a broker error
    propagates to ``health.fold_soon``, which leaves the outcomes for the beat's fold."""
    fold_health.apply_async(countdown=countdown)
