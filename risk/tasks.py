"""Thin Celery wrappers around risk services."""

from celery import shared_task

from risk import alerts


@shared_task(ignore_result=True, acks_late=True)
def evaluate_monitors() -> dict:
    """Judge every enabled monitor; suggested beat interval: every 5 minutes."""
    summary = alerts.monitors_evaluate()
    return {
        "opened": len(summary.opened),
        "resolved": len(summary.resolved),
        "still_open": len(summary.still_open),
    }
