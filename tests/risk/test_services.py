"""Risk records what other apps decide about its assessments through its own service."""

import pytest

from risk.models import Assessment, Decision
from risk.services import assessment_review_record

pytestmark = pytest.mark.django_db


def held(**fields) -> Assessment:
    return Assessment.objects.create(
        subject="payment:x", user_ref="1", score=70, decision=Decision.REVIEW, **fields
    )


@pytest.mark.parametrize(("approve", "outcome"), [(True, "allow"), (False, "block")])
def test_a_review_decision_records_who_decided_what(approve, outcome):
    assessment = held()
    recorded = assessment_review_record(
        assessment_id=assessment.pk, reviewer="ana", approve=approve
    )
    assert recorded == 1
    assessment.refresh_from_db()
    assert (assessment.reviewed_by, assessment.review_outcome) == ("ana", outcome)
    assert assessment.decision == Decision.REVIEW  # what the engine decided stays as it was


def test_a_decision_on_an_unknown_assessment_changes_nothing():
    assessment = held()
    unknown = assessment.pk + 1
    assert assessment_review_record(assessment_id=unknown, reviewer="ana", approve=True) == 0
    assessment.refresh_from_db()
    assert (assessment.reviewed_by, assessment.review_outcome) == ("", "")


def test_a_long_reviewer_name_is_cut_to_the_column():
    assessment = held()
    assessment_review_record(assessment_id=assessment.pk, reviewer="r" * 300, approve=True)
    assessment.refresh_from_db()
    assert len(assessment.reviewed_by) == 150
