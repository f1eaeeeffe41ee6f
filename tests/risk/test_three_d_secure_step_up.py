"""Risk's step-up on a card payment is the issuer's 3-D Secure (issue 18): when the engine
challenges a card payment, the intent asks for ``request_three_d_secure=challenge`` instead
of our e-mailed code, and the payment passes once 3-D Secure succeeds; other channels keep
our own code; a failed 3-D Secure is a channel risk signal."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from payments import services
from payments.channels.base import ClientInfo
from payments.models import Payment
from payments.payables import PayableFacts
from payments.sandbox.models import SandboxTrade
from payments.services.risk import (
    THREE_D_SECURE,
    three_d_secure_available,
    three_d_secure_requested,
)
from risk.models import Signal
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db


class _Client(ClientInfo):
    def __init__(self, *, device_id: str, **fields):
        super().__init__(**fields)
        object.__setattr__(self, "device_id", device_id)


def _start(buyer, method: str) -> Payment:
    return services.payment_start(
        buyer=buyer,
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal("88.00"),
        currency="CNY",
        method=method,
        subject="Gift card",
        client=_Client(ip="203.0.113.9", device="desktop", user_agent="t", device_id="d-3ds"),
        return_url="http://testserver/orders/X/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),  # trusted
    )


def _trade(payment: Payment) -> SandboxTrade:
    return SandboxTrade.objects.get(
        channel="card", out_trade_no=payment.attempts.get().out_trade_no
    )


def _widget(payment: Payment) -> dict:
    return payment.attempts.get().action["widget"]


def _confirm_in_page(client, widget, number="4242424242424242"):
    return client.post(
        f"/sandbox/card/v1/payment_intents/{widget['payment_intent']}/confirm",
        {
            "key": widget["publishable_key"],
            "client_secret": widget["client_secret"],
            "payment_method_data[card][number]": number,
            "payment_method_data[card][exp_month]": "12",
            "payment_method_data[card][exp_year]": "2034",
            "payment_method_data[card][cvc]": "123",
        },
    ).json()


def _answer_3ds(client, widget, outcome):
    return client.post(
        "/sandbox/card/v1/3ds2/challenge_complete",
        {
            "key": widget["publishable_key"],
            "client_secret": widget["client_secret"],
            "payment_intent": widget["payment_intent"],
            "outcome": outcome,
        },
    ).json()


def _mark_risky(client, capture, buyer) -> None:
    """A card declined as fraudulent: the buyer's next payments are challenged."""
    card = _start(buyer, "card")
    with capture(execute=True):
        Payer(client).decide(card.attempts.get().action, "decline", reason="risk")
    assert Signal.objects.filter(source="card:fraudulent").exists()


def test_only_methods_served_by_the_card_channel_step_up_at_the_channel():
    assert not three_d_secure_available("card")  # no account serves it yet
    card = sandbox_account("card")
    sandbox_account("alipay")
    assert three_d_secure_available("card") and three_d_secure_available("card_instalments")
    assert not three_d_secure_available("alipay")
    assert not three_d_secure_available("balance")
    card.enabled = False
    card.save(update_fields=["enabled"])
    assert not three_d_secure_available("card")


def test_a_method_another_channel_may_also_take_keeps_our_code():
    """Routing could pick an account that cannot run 3-D Secure: no promise of it."""
    sandbox_account("card")
    sandbox_account("alipay", code="alipay-cards", methods=["alipay", "card"])
    assert not three_d_secure_available("card")


def test_an_allowed_card_payment_does_not_ask_for_3ds(mailoutbox):
    sandbox_account("card")
    payment = _start(UserFactory(), "card")
    assert payment.status == "pending" and payment.risk["decision"] == "allow"
    assert not three_d_secure_requested(payment)
    assert _trade(payment).extra["request_three_d_secure"] == "automatic"
    assert "three_d_secure" not in _widget(payment)
    assert not mailoutbox


def test_a_challenged_card_payment_goes_through_3ds_instead_of_our_code(
    client, django_capture_on_commit_callbacks, mailoutbox
):
    sandbox_account("card")
    buyer = UserFactory()
    _mark_risky(client, django_capture_on_commit_callbacks, buyer)
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        payment = _start(buyer, "card")
    assert payment.risk["decision"] == "challenge"
    assert payment.risk["challenge"]["by"] == THREE_D_SECURE
    assert "digest" not in payment.risk["challenge"]  # no code of ours
    assert payment.status == "pending"  # opened at the card channel at once
    assert not mailoutbox
    assert _trade(payment).extra["request_three_d_secure"] == "challenge"
    widget = _widget(payment)
    assert widget["three_d_secure"] == "challenge"

    # 4242… pays without 3-D Secure on its own; challenged, the issuer asks for it
    intent = _confirm_in_page(client, widget)
    assert intent["status"] == "requires_action"
    payment.refresh_from_db()
    assert payment.status == "pending"
    with django_capture_on_commit_callbacks(execute=True):
        assert _answer_3ds(client, widget, "authenticated")["status"] == "succeeded"
    payment.refresh_from_db()
    assert payment.status == "succeeded"


def test_a_challenged_payment_through_another_channel_keeps_our_code(
    client, django_capture_on_commit_callbacks, mailoutbox
):
    sandbox_account("card")
    sandbox_account("alipay")
    buyer = UserFactory()
    _mark_risky(client, django_capture_on_commit_callbacks, buyer)
    with django_capture_on_commit_callbacks(execute=True):
        alipay = _start(buyer, "alipay")
    assert alipay.status == "challenge"
    assert alipay.risk["challenge"].get("by") != THREE_D_SECURE
    assert not alipay.attempts.exists()
    assert mailoutbox[-1].to == [buyer.email]


def test_a_failed_3ds_fails_the_payment_charges_nothing_and_is_a_risk_signal(
    client, django_capture_on_commit_callbacks
):
    sandbox_account("card")
    buyer = UserFactory()
    payment = _start(buyer, "card")
    widget = _widget(payment)
    assert _confirm_in_page(client, widget, number="4000000000003220")["status"] == (
        "requires_action"
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer = _answer_3ds(client, widget, "failed")
    assert answer["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (
        "failed",
        "payment_intent_authentication_failure",
    )
    assert payment.failure_reason  # the buyer's words for it
    assert not payment.is_paid and _trade(payment).paid_at is None
    marked = set(Signal.objects.values_list("field", "source"))
    assert ("user", "card:payment_intent_authentication_failure") in marked
    assert ("device", "card:payment_intent_authentication_failure") in marked
