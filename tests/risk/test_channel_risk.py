"""A channel's risk decline feeds risk: a card payment declined as fraudulent makes the
buyer's next attempt, through another channel, step up (issue 18's acceptance)."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from payments import services
from payments.channels.base import ClientInfo
from payments.models import Payment
from payments.payables import PayableFacts
from payments.services.risk import CHANNEL_RISK_DECLINES, channel_risk_decline_record
from risk.models import Signal
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db


def _start(buyer, method: str, device_id: str = "d-buyer-laptop") -> Payment:
    return services.payment_start(
        buyer=buyer,
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal("88.00"),
        currency="CNY",
        method=method,
        subject="Gift card",
        client=_Client(ip="203.0.113.7", device="desktop", user_agent="t", device_id=device_id),
        return_url="http://testserver/orders/X/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        # an established, trusted buyer: only the channel's decline should make a difference
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
    )


class _Client(ClientInfo):
    """The platform's client as the web gives it: with the first-party device id."""

    def __init__(self, *, device_id: str, **fields):
        super().__init__(**fields)
        object.__setattr__(self, "device_id", device_id)


def _decline(client, capture, payment: Payment, reason: str) -> Payment:
    """The payer declines on the channel's page; its notification arrives on commit."""
    with capture(execute=True):
        Payer(client).decide(payment.attempts.get().action, "decline", reason=reason)
    payment.refresh_from_db()
    return payment


def test_a_card_declined_for_risk_makes_the_next_alipay_attempt_a_challenge(
    client, django_capture_on_commit_callbacks, mailoutbox
):
    sandbox_account("card")
    sandbox_account("alipay")
    buyer = UserFactory()
    assert _start(buyer, "alipay").status == "pending"  # a trusted buyer pays without friction

    card = _start(buyer, "card")
    card = _decline(client, django_capture_on_commit_callbacks, card, "risk")
    assert (card.status, card.failure_code) == ("failed", "fraudulent")
    marked = set(Signal.objects.values_list("field", "source"))
    assert marked == {("user", "card:fraudulent"), ("device", "card:fraudulent"),
                      ("ip", "card:fraudulent"), ("account", "card:fraudulent")}  # fmt: skip
    # the payment account is the card's fingerprint, as the channel's decline names it
    fingerprint = Signal.objects.get(field="account").value
    assert fingerprint.startswith("card:") and len(fingerprint) == len("card:") + 16
    assert card.client["account_ref"] == fingerprint

    with django_capture_on_commit_callbacks(execute=True):
        alipay = _start(buyer, "alipay")
    assert alipay.status == "challenge"
    assert "channel_risk_decline" in alipay.risk["reasons"]
    assert not alipay.attempts.exists()  # no channel is asked before the code is typed
    assert mailoutbox[-1].to == [buyer.email]  # the one-time code


def test_the_decline_follows_the_device_to_another_account(
    client, django_capture_on_commit_callbacks
):
    sandbox_account("card")
    sandbox_account("alipay")
    card = _start(UserFactory(), "card", device_id="d-shared")
    _decline(client, django_capture_on_commit_callbacks, card, "risk")
    other = _start(UserFactory(), "alipay", device_id="d-shared")
    assert other.status == "challenge"


def test_a_buyers_own_decline_is_not_a_risk_signal(client, django_capture_on_commit_callbacks):
    sandbox_account("card")
    sandbox_account("alipay")
    buyer = UserFactory()
    card = _start(buyer, "card")
    card = _decline(client, django_capture_on_commit_callbacks, card, "insufficient_funds")
    assert card.failure_code == "insufficient_funds"
    assert not Signal.objects.exists()
    assert _start(buyer, "alipay").status == "pending"


def test_the_declines_risk_hears_are_the_channels_risk_codes():
    from payments.channels.registry import backend_class

    for backend, code in CHANNEL_RISK_DECLINES:
        spec = backend_class(backend).error_codes[code]
        assert spec.action == "final" and not spec.counts_against_channel, (backend, code)


def test_a_failed_payment_without_a_failed_attempt_records_nothing():
    payment = Payment.objects.create(
        reference="order:n", buyer=UserFactory(), method="card", amount=Decimal("1.00"),
        failure_code="fraudulent",
    )  # fmt: skip
    channel_risk_decline_record(sender=Payment, payment=payment)
    assert not Signal.objects.exists()


def test_the_payers_account_named_by_a_success_is_saved_with_the_payments_success(
    client, django_capture_on_commit_callbacks
):
    sandbox_account("alipay")
    payment = _start(UserFactory(), "alipay")
    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(payment.attempts.get().action, "approve")
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.client["account_ref"].startswith("alipay:")
    assert payment.client["ip"] == "203.0.113.7"  # the rest of the client kept
