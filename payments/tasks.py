"""Thin Celery wrappers: they take ids and call services."""

from celery import shared_task

from payments import services


@shared_task(ignore_result=True, acks_late=True)
def query_pending_attempts() -> int:
    due = services.attempts_due_for_query()
    for attempt_id in due:
        query_attempt.delay(attempt_id)
    return len(due)


@shared_task(ignore_result=True, acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def query_attempt(attempt_id: int) -> str:
    return services.attempt_query(attempt_id=attempt_id)


@shared_task(ignore_result=True, acks_late=True)
def resend_pending_refunds() -> int:
    from payments.models import Refund

    ids = list(Refund.objects.filter(status="pending").values_list("pk", flat=True)[:200])
    for refund_id in ids:
        services.refund_send(refund_id=refund_id, query=True)
    return len(ids)


@shared_task(ignore_result=True, acks_late=True)
def fold_health() -> int:
    from payments import health

    return health.health_fold()
