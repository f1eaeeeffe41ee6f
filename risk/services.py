"""Risk's state-changing services: what other apps ask risk to record."""

from __future__ import annotations

from risk.models import Assessment, Decision


def assessment_review_record(*, assessment_id: int, reviewer: str, approve: bool) -> int:
    """Record an analyst's decision on an assessment held for review (who, and what: allow or
    block). Returns how many assessments were updated (0 for an unknown id)."""
    return Assessment.objects.filter(pk=assessment_id).update(
        reviewed_by=reviewer[:150], review_outcome=Decision.ALLOW if approve else Decision.BLOCK
    )
