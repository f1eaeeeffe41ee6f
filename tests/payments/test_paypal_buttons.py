"""The platform's side of PayPal's buttons: the order id createOrder gets, the capture
onApprove asks for (only this payment's own order and amount, once), and a cancel or an
error that leaves the payment open and charges nothing — against the PayPal simulator."""

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone
from django.utils.translation import override

from payments import ledger, services
from payments.channels.base import ClientInfo
from payments.channels.paypal.backend import clear_caches
from payments.models import Attempt, Payment
from payments.payables import PayableFacts
from payments.sandbox.models import SandboxTrade
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_caches():
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def account():
    return sandbox_account("paypal")


def start(buyer=None, amount="88.00") -> Payment:
    payment = services.payment_start(
        buyer=buyer or UserFactory(),
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal(amount),
        currency="CNY",
        method="paypal",
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.7", device="desktop", user_agent="buttons/desktop"),
        return_url="http://testserver/orders/BUTTONS1/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
    )
    assert payment.status == "pending", (payment.failure_code, payment.failure_reason)
    return payment


def approve(client, account, order_id, decision="approve", reason=""):
    response = client.post(
        f"/sandbox/paypal/sdk/orders/{order_id}/approve",
        json.dumps(
            {"client_id": account.credentials["client_id"], "decision": decision, "reason": reason}
        ),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content


def captured(order_id) -> bool:
    return bool(
        SandboxTrade.objects.get(channel="paypal", trade_no=order_id).extra.get("capture_id")
    )


def test_create_order_answers_the_id_of_the_order_opened_for_the_payment(account):
    payment = start()
    attempt = payment.attempts.get()
    assert services.paypal_buttons_order(payment=payment) == attempt.channel_trade_no
    assert attempt.action["widget"]["order_id"] == attempt.channel_trade_no


def test_create_order_is_refused_for_a_payment_that_is_not_waiting_for_paypal(account):
    payment = start()
    Payment.objects.filter(pk=payment.pk).update(status="cancelled")
    payment.refresh_from_db()
    with pytest.raises(services.PaymentError):
        services.paypal_buttons_order(payment=payment)


def test_an_approval_is_captured_and_the_payment_succeeds_with_a_balanced_journal(client, account):
    payment = start()
    order_id = services.paypal_buttons_order(payment=payment)
    approve(client, account, order_id)

    payment = services.paypal_buttons_capture(payment=payment, order_id=order_id)

    assert payment.status == "succeeded"
    assert payment.attempts.get().status == "succeeded" and captured(order_id)
    assert ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0


def test_a_replayed_approval_changes_nothing(client, account):
    payment = start()
    order_id = services.paypal_buttons_order(payment=payment)
    approve(client, account, order_id)
    services.paypal_buttons_capture(payment=payment, order_id=order_id)
    entries = ledger.journal_total(), Attempt.objects.get(payment=payment).succeeded_at

    again = services.paypal_buttons_capture(payment=payment, order_id=order_id)

    assert again.status == "succeeded"
    assert (ledger.journal_total(), Attempt.objects.get(payment=payment).succeeded_at) == entries


def test_an_approval_of_another_payments_order_is_refused_and_charges_nothing(client, account):
    mine, theirs = start(), start()
    their_order = services.paypal_buttons_order(payment=theirs)
    approve(client, account, their_order)

    with pytest.raises(services.ButtonsRefused) as refused:
        services.paypal_buttons_capture(payment=mine, order_id=their_order)

    assert refused.value.code == "ORDER_MISMATCH" and refused.value.reason
    assert not captured(their_order)
    mine.refresh_from_db()
    assert mine.status == "pending" and mine.attempts.get().status == "pending"


def test_an_order_for_another_amount_is_refused_and_charges_nothing(client, account):
    payment = start(amount="88.00")
    order_id = services.paypal_buttons_order(payment=payment)
    approve(client, account, order_id)
    # the PayPal order says 88.00 but the attempt now asks for 8.80: they do not match
    Attempt.objects.filter(payment=payment).update(amount=Decimal("8.80"))

    with pytest.raises(services.ButtonsRefused) as refused:
        services.paypal_buttons_capture(payment=payment, order_id=order_id)

    assert refused.value.code == "AMOUNT_MISMATCH"
    assert not captured(order_id)
    attempt = Attempt.objects.get(payment=payment)
    assert attempt.status == "pending" and "AMOUNT_MISMATCH" in attempt.flagged


def test_a_capture_before_approval_is_refused_and_the_payment_stays_open(account):
    payment = start()
    order_id = services.paypal_buttons_order(payment=payment)
    with pytest.raises(services.ButtonsRefused) as refused:
        services.paypal_buttons_capture(payment=payment, order_id=order_id)
    assert refused.value.code == "ORDER_NOT_APPROVED"
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_a_declined_funding_source_fails_the_payment_with_paypals_reason(client, account):
    payment = start()
    order_id = services.paypal_buttons_order(payment=payment)
    approve(client, account, order_id, decision="decline", reason="insufficient_funds")

    payment = services.paypal_buttons_capture(payment=payment, order_id=order_id)

    assert payment.status == "failed" and payment.failure_code == "INSTRUMENT_DECLINED"
    assert ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0


@pytest.mark.parametrize(
    ("why", "code", "language", "words"),
    [
        ("cancel", "PAYER_CANCELLED", "zh-hans", "没有扣款"),
        ("cancel", "PAYER_CANCELLED", "en", "nothing was charged"),
        ("error", "BUTTONS_ERROR", "en", "nothing was charged"),
    ],
)
def test_a_cancel_or_error_leaves_the_payment_open_with_the_reason_in_the_buyers_language(
    account, why, code, language, words
):
    payment = start()
    order_id = services.paypal_buttons_order(payment=payment)

    with override(language):
        message = services.paypal_buttons_abandon(payment=payment, order_id=order_id, why=why)

    assert message.code == code and words in message.reason and message.guidance
    payment.refresh_from_db()
    attempt = payment.attempts.get()
    assert payment.status == "pending" and attempt.status == "pending"
    assert attempt.error_code == code and not captured(order_id)
    # the same order can still be approved from the buttons afterwards
    assert services.paypal_buttons_order(payment=payment) == order_id


def test_a_cancel_naming_another_order_is_refused(account):
    payment = start()
    with pytest.raises(services.ButtonsRefused):
        services.paypal_buttons_abandon(payment=payment, order_id="NOTMINE0001", why="cancel")
