"""Thin Celery wrappers around reconciliation.services."""

import datetime as dt

from celery import shared_task

from reconciliation import services


@shared_task(ignore_result=True, acks_late=True)
def pull_settlements(codes: list[str] | None = None, day: str | None = None) -> list[dict]:
    """Beat: download, store and reconcile yesterday's (or ``day``'s, ISO) settlement files."""
    return services.settlement_pull(codes=codes, day=dt.date.fromisoformat(day) if day else None)


@shared_task(ignore_result=True, acks_late=True)
def retry_settlements() -> list[dict]:
    """Beat, every few minutes: try again the days whose file was not yet published."""
    return services.settlement_retry_due()


@shared_task(ignore_result=True, acks_late=True)
def check_funds_arrived() -> int:
    """Beat, daily: alert for settlements whose money has not reached the bank by its date."""
    from reconciliation import treasury

    return len(treasury.treasury_check())
