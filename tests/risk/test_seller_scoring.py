"""Sellers are scored too: a new seller dumping many high-value codes is held; a proven
seller's volume is business as usual (DESIGN.md §6)."""

from decimal import Decimal

import pytest

from risk.engine import SellerFacts, assess_seller
from risk.models import Assessment, ListEntry, Rule

pytestmark = pytest.mark.django_db


def upload(**kw):
    base = {
        "subject": "listing-upload:42",
        "seller_ref": "9",
        "upload_codes": 5,
        "upload_face_value": Decimal("500"),
        "account_age_days": 120,
        "good_sales": 40,
        "codes_last_24h": 5,
        "face_value_last_24h": Decimal("500"),
    }
    return SellerFacts(**{**base, **kw})


def test_a_proven_seller_uploading_a_few_codes_is_allowed_and_the_assessment_is_stored():
    result = assess_seller(upload())
    assert result.decision == "allow" and "trusted_seller" not in result.reasons
    stored = Assessment.objects.get(pk=result.assessment_id)
    assert (stored.subject, stored.user_ref, stored.decision) == ("listing-upload:42", "9", "allow")
    assert (
        stored.features["upload_face_value"] == "500" and stored.features["seller_trusted"] is True
    )


def test_a_new_seller_dumping_many_high_value_codes_is_held_for_review_or_blocked():
    result = assess_seller(
        upload(
            account_age_days=0,
            good_sales=0,
            upload_codes=300,
            upload_face_value=Decimal("30000"),
            codes_last_24h=300,
            face_value_last_24h=Decimal("30000"),
        )
    )
    assert result.decision in {"review", "block"}
    assert {"new_seller", "large_first_upload", "high_value_dump", "code_velocity"} <= set(
        result.reasons
    )


def test_the_same_volume_from_a_proven_seller_passes():
    result = assess_seller(
        upload(
            upload_codes=300,
            upload_face_value=Decimal("30000"),
            codes_last_24h=300,
            face_value_last_24h=Decimal("30000"),
        )
    )
    assert result.decision == "allow"


def test_high_risk_brands_and_a_history_of_bad_codes_add_up():
    result = assess_seller(
        upload(
            good_sales=8,
            disputes=4,
            disputes_refunded=3,
            high_risk_share=Decimal("0.8"),
            account_age_days=3,
        )
    )
    assert {
        "high_risk_brands",
        "seller_dispute_history",
        "seller_bad_codes",
        "young_seller",
    } <= set(result.reasons)
    assert result.decision in {"review", "block"}


def test_a_block_listed_seller_is_blocked():
    ListEntry.objects.create(kind="block", field="user", value="9")
    assert assess_seller(upload()).decision == "block"


def test_staff_rules_on_seller_features_apply_to_uploads_only():
    Rule.objects.create(
        name="big uploads",
        reason_code="big_upload",
        feature="upload_face_value",
        operator="gte",
        value="5000",
        score=5,
        action="review",
    )
    result = assess_seller(
        upload(upload_face_value=Decimal("6000"), face_value_last_24h=Decimal("6000"))
    )
    assert result.decision == "review" and "big_upload" in result.reasons
    from risk.engine import TransactionFacts, assess

    payment = assess(
        TransactionFacts(
            subject="payment:x",
            user_ref="7",
            amount=Decimal("9000"),
            account_age_days=90,
            good_orders=5,
        )
    )
    assert payment.decision != "review"


def test_buyer_rules_do_not_fire_on_uploads():
    Rule.objects.create(
        name="old accounts",
        reason_code="odd",
        feature="account_age_days",
        operator="gte",
        value="0",
        score=80,
    )
    assert assess_seller(upload()).decision == "allow"


def test_scoring_without_storing():
    result = assess_seller(upload(), store=False)
    assert result.assessment_id is None and not Assessment.objects.exists()
