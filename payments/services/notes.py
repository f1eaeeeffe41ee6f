"""What became of a stored notification: applied, a duplicate, refused (and flagged)."""

from __future__ import annotations

import logging

from payments.models import Notification
from payments.services.common import ApplyResult

log = logging.getLogger(__name__)


def note_outcome(
    note: Notification,
    outcome: str,
    detail: str,
    *,
    flagged: bool = False,
    attempt=None,
    refund=None,
) -> None:
    note.outcome, note.detail, note.flagged = outcome, detail[:2000], flagged
    note.attempt, note.refund = attempt or note.attempt, refund or note.refund
    note.save(update_fields=["outcome", "detail", "flagged", "attempt", "refund", "health_outcome"])


def note_result(note: Notification, result: tuple[ApplyResult, str], **kwargs) -> None:
    """Record an applied or duplicate notice on its notification."""
    applied = result[0] == "applied"
    outcome = Notification.Outcome.APPLIED if applied else Notification.Outcome.DUPLICATE
    note_outcome(note, outcome, result[1], **kwargs)


def reject(notification: Notification | None, detail: str, **kwargs) -> tuple[ApplyResult, str]:
    """Refuse a notice that does not match our records, and flag it for staff."""
    log.warning("notice refused: %s", detail)
    if notification is not None:
        note_outcome(notification, Notification.Outcome.REJECTED, detail, flagged=True, **kwargs)
    return "rejected", detail
