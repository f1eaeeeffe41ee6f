"""Decaying signals on keys: a channel's risk decline weighs 1 and halves every week; one
decline seen on the buyer, the device and the address counts once; the engine scores it so
even a trusted buyer's next payment is challenged."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from risk import engine, history, services
from risk.models import Signal

pytestmark = pytest.mark.django_db

KEYS = [("user", "7"), ("device", "d-1"), ("ip", "203.0.113.9")]


def _facts(**kw):
    base = {
        "subject": "payment:x",
        "user_ref": "7",
        "amount": Decimal("100.00"),
        "account_age_days": 400,
        "good_orders": 12,
        "device": "d-1",
        "ip": "203.0.113.9",
    }
    return engine.TransactionFacts(**{**base, **kw})


def _age(days: float) -> None:
    Signal.objects.update(created_at=timezone.now() - dt.timedelta(days=days))


def test_a_decline_on_several_keys_counts_once_and_halves_every_week():
    services.channel_risk_decline_record(
        user_ref="7", device="d-1", ip="203.0.113.9", source="card:fraudulent"
    )
    assert Signal.objects.count() == 3  # buyer, device, address (no payment account known)
    assert history.signal_weights(KEYS) == {"channel_risk_decline": 1.0}
    _age(7)
    assert history.signal_weights(KEYS)["channel_risk_decline"] == pytest.approx(0.5, abs=0.01)
    _age(history.SIGNAL_HORIZON_DAYS + 1)
    assert history.signal_weights(KEYS) == {}


def test_a_decline_follows_the_device_to_another_account():
    services.channel_risk_decline_record(user_ref="7", device="d-1", source="alipay:RISK")
    weights = history.signal_weights([("user", "8"), ("device", "d-1")])
    assert weights == {"channel_risk_decline": 1.0}


def test_a_trusted_buyer_declined_for_risk_is_challenged_next_time_and_less_after_weeks():
    assert engine.assess(_facts()).decision == "allow"
    services.channel_risk_decline_record(user_ref="7", device="d-1", source="card:stolen_card")
    result = engine.assess(_facts(method="alipay"))
    assert result.decision == "challenge"
    assert "channel_risk_decline" in result.reasons
    assert result.features["channel_risk_weight"] == 1.0
    _age(21)  # an eighth of the weight: no longer a reason
    assert engine.assess(_facts()).decision == "allow"


def test_a_decline_needs_its_buyer_and_source_and_stores_nothing_otherwise():
    with pytest.raises(ValueError):
        services.channel_risk_decline_record(user_ref="", source="card:fraudulent")
    with pytest.raises(ValueError):
        services.channel_risk_decline_record(user_ref="7", source="")
    assert not Signal.objects.exists()


def test_cleared_signals_stop_counting():
    history.signal_record([("user", "7")], reason=engine.SUSPICIOUS_LOGIN, source="login:1")
    assert services.login_suspicion_clear(user_ref="7") == 1
    assert history.signal_weights([("user", "7")]) == {}


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("203.0.113.9", "203.0.113.0/24"),
        ("2001:db8:1:2::5", "2001:db8:1::/48"),
        ("not an address", ""),
        ("", ""),
    ],
)
def test_ip_range(ip, network):
    assert history.ip_range(ip) == network
