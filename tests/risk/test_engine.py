"""The risk engine decides from plain facts; trusted buyers pass, signals add up."""

from decimal import Decimal

import pytest

from risk.engine import TransactionFacts, assess
from risk.models import Assessment, ListEntry, Rule

pytestmark = pytest.mark.django_db


def facts(**kw):
    base = {
        "subject": "payment:x",
        "user_ref": "7",
        "amount": Decimal("100.00"),
        "account_age_days": 90,
        "good_orders": 5,
    }
    return TransactionFacts(**{**base, **kw})


def test_trusted_buyer_is_allowed_and_the_assessment_is_stored():
    result = assess(facts())
    assert result.decision == "allow"
    stored = Assessment.objects.get(pk=result.assessment_id)
    assert stored.decision == "allow" and stored.score == result.score


def test_new_account_on_a_new_device_with_a_large_first_purchase_is_challenged_or_worse():
    result = assess(
        facts(account_age_days=0, good_orders=0, amount=Decimal("3000"), new_device=True)
    )
    assert result.decision in {"challenge", "review", "block"}
    assert {"new_account", "large_first_purchase"} <= set(result.reasons)


def test_velocity_and_a_buyer_seller_link_send_the_payment_to_review_or_block():
    result = assess(facts(good_orders=0, user_payments_last_hour=12, seller_linked=True))
    assert result.decision in {"review", "block"}
    assert "buyer_seller_link" in result.reasons and "user_velocity" in result.reasons


def test_a_rule_that_only_forces_a_decision_is_still_named_as_the_reason():
    Rule.objects.create(
        name="hold big orders",
        reason_code="big_amount",
        feature="amount",
        operator="gte",
        value="500",
        score=0,
        action="review",
    )
    result = assess(facts(amount=Decimal("800")))
    assert result.decision == "review" and "big_amount" in result.reasons


def test_block_list_hit_blocks_whatever_the_score():
    ListEntry.objects.create(kind="block", field="ip", value="203.0.113.9")
    assert assess(facts(ip="203.0.113.9")).decision == "block"


def test_staff_rule_adds_score_and_may_force_a_decision():
    Rule.objects.create(
        name="big game cards",
        reason_code="big_amount",
        feature="amount",
        operator="gte",
        value="500",
        score=5,
        action="review",
    )
    result = assess(facts(amount=Decimal("800")))
    assert result.decision == "review" and "big_amount" in result.reasons
    assert assess(facts(amount=Decimal("100"))).decision == "allow"
