"""Many small buyers paying one seller's new listings (laundering): young accounts each
paying a little for the same seller's listings created in the last days. One is harmless;
the fifth distinct one within three days steps up, counted in the query that already links
the buyer to the seller (tests/risk/test_decision_cost.py)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from risk import engine
from risk.models import Assessment

pytestmark = pytest.mark.django_db


def _facts(user_ref: str, seller_ref: str = "700", **fields) -> engine.TransactionFacts:
    values = {
        "subject": f"payment:{user_ref}-{seller_ref}",
        "user_ref": user_ref,
        "amount": Decimal("50.00"),
        "account_age_days": 1,
        "seller_ref": seller_ref,
        "listing_age_days": 0,
        "device": f"d-{user_ref}",
        "ip": f"198.51.{user_ref[-2:]}.7",
    }
    values.update(fields)
    return engine.TransactionFacts(**values)


def test_the_fifth_young_small_buyer_of_a_sellers_new_listing_is_challenged():
    for n in range(engine.FAN_IN_BUYERS - 1):
        result = engine.assess(_facts(f"81{n}"))
        assert "seller_fan_in" not in result.reasons
        assert result.features["seller_fan_in_buyers"] == n + 1
    fifth = engine.assess(_facts("819"))
    assert fifth.features["seller_fan_in_buyers"] == engine.FAN_IN_BUYERS
    assert "seller_fan_in" in fifth.reasons and fifth.decision == "challenge"
    stored = Assessment.objects.get(pk=fifth.assessment_id)
    assert stored.seller_ref == "700" and stored.fan_in is True


def test_one_buyer_paying_again_and_again_counts_once():
    for _ in range(engine.FAN_IN_BUYERS + 2):
        result = engine.assess(_facts("811"))
    assert result.features["seller_fan_in_buyers"] == 1
    assert "seller_fan_in" not in result.reasons


def test_established_buyers_large_amounts_old_listings_and_other_sellers_do_not_count():
    for n in range(engine.FAN_IN_BUYERS):
        engine.assess(_facts(f"82{n}", account_age_days=400))  # established buyers
        engine.assess(_facts(f"83{n}", amount=Decimal("900.00")))  # not small
        engine.assess(_facts(f"84{n}", listing_age_days=30))  # an old listing
        engine.assess(_facts(f"85{n}", seller_ref="701"))  # another seller
    result = engine.assess(_facts("869"))
    assert result.features["seller_fan_in_buyers"] == 1  # only itself
    assert "seller_fan_in" not in result.reasons
    # the other seller's young small buyers do count for that seller
    other = engine.assess(_facts("870", seller_ref="701"))
    assert other.features["seller_fan_in_buyers"] == engine.FAN_IN_BUYERS + 1
    assert "seller_fan_in" in other.reasons


def test_buyers_older_than_the_window_no_longer_count():
    for n in range(engine.FAN_IN_BUYERS - 1):
        engine.assess(_facts(f"87{n}"))
    Assessment.objects.update(
        created_at=timezone.now() - dt.timedelta(days=engine.FAN_IN_WINDOW_DAYS, minutes=1)
    )
    result = engine.assess(_facts("879"))
    assert result.features["seller_fan_in_buyers"] == 1 and "seller_fan_in" not in result.reasons


def test_a_payment_that_is_not_a_candidate_has_no_fan_in_count():
    for n in range(engine.FAN_IN_BUYERS):
        engine.assess(_facts(f"88{n}"))
    result = engine.assess(_facts("889", account_age_days=400))
    assert result.features["fan_in_candidate"] is False
    assert result.features["seller_fan_in_buyers"] == 0
