"""A buyer's and a seller's whole journey through the real payment platform, with the
in-process fake channel of the platform's tests standing in for a provider."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from marketplace.models import Dispute, Order
from marketplace.selectors import seller_balances
from marketplace.services import dispute_open, dispute_refund, payout_request, seller_funds_mature
from payments import ledger
from payments import services as payment_services
from payments.models import Attempt, ChannelAccount, Payment
from tests.accounts.factories import PASSWORD, UserFactory
from tests.marketplace.conftest import journal_is_balanced
from tests.marketplace.factories import PayoutDestinationFactory
from tests.payments.fakes import FakeBackend, notification

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fake_channel():
    FakeBackend.reset()
    ChannelAccount.objects.create(
        code="fa",
        name="fa",
        backend="fake",
        methods=["alipay"],
        fee_percent=Decimal("0.60"),
        base_url="https://fake.example/",
        merchant_id="M1",
    )
    yield
    FakeBackend.reset()


def api_as(user) -> APIClient:
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json"
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def notify_success(client, payment_id: str, amount: str):
    attempt = Attempt.objects.get(payment__public_id=payment_id)
    body, headers = notification(attempt.out_trade_no, amount, merchant_id="M1")
    return client.post("/payments/notify/fa/", body, content_type="application/json", **headers)


def test_buy_pay_receive_dispute_mature_and_pay_out(
    client, listing, buyer, seller, django_capture_on_commit_callbacks, mailoutbox
):
    api = api_as(buyer)
    order = api.post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": 2}, format="json"
    ).json()
    answer = api.post(f"/api/v1/orders/{order['number']}/pay/", {"method": "alipay"}, format="json")
    assert answer.status_code == 200, answer.content
    payment = answer.json()["payment"]
    assert payment["status"] == "pending" and payment["action"]["type"] == "redirect"

    with django_capture_on_commit_callbacks(execute=True):
        assert notify_success(client, payment["id"], order["amount"]).status_code == 200
    delivered = api.get(f"/api/v1/orders/{order['number']}/").json()
    assert delivered["status"] == "delivered" and len(delivered["codes"]) == 2
    assert len(mailoutbox) == 1
    assert ledger.balance(ledger.CLEARING) == 0
    assert journal_is_balanced()

    the_order = Order.objects.get(number=order["number"])
    dispute = dispute_open(
        order=the_order, buyer=buyer, code_id=the_order.codes.first().pk, reason="used", note="used"
    )
    with django_capture_on_commit_callbacks(execute=True):
        dispute_refund(dispute=dispute, staff=UserFactory(is_staff=True, groups=["Support"]))
    # Support's decision asks for the refund; no money leaves before Finance approves it.
    decided = Dispute.objects.get()
    assert decided.status == "refunded" and decided.refund.status == "requested"
    assert Payment.objects.get(public_id=payment["id"]).refunded_amount == 0
    finance = UserFactory(is_staff=True, groups=["Finance"])
    with django_capture_on_commit_callbacks(execute=True):
        payment_services.refund_decide(refund=decided.refund, approve=True, by=finance)
    assert Payment.objects.get(public_id=payment["id"]).refunded_amount == Decimal("92.00")
    assert ledger.balance(ledger.CLEARING) == 0
    assert journal_is_balanced()

    assert seller_funds_mature(now=timezone.now() + dt.timedelta(days=4)) == 1
    balances = seller_balances(seller_id=seller.pk)
    assert (balances.pending, balances.available) == (Decimal("0.00"), Decimal("87.40"))
    payout_request(
        seller=seller, destination=PayoutDestinationFactory(seller=seller), amount="87.40"
    )
    assert seller_balances(seller_id=seller.pk).available == 0
    assert journal_is_balanced()


def test_a_payment_that_succeeds_after_the_order_expired_and_sold_out_is_refunded(
    client, listing, buyer, django_capture_on_commit_callbacks
):
    api = api_as(buyer)
    order = api.post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": 5}, format="json"
    ).json()
    payment = api.post(
        f"/api/v1/orders/{order['number']}/pay/", {"method": "alipay"}, format="json"
    ).json()["payment"]
    Order.objects.filter(number=order["number"]).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    from marketplace.services import order_reservations_release

    order_reservations_release()
    api_as(UserFactory()).post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": 1}, format="json"
    )
    with django_capture_on_commit_callbacks(execute=True):
        notify_success(client, payment["id"], order["amount"])
    late = Order.objects.get(number=order["number"])
    assert late.status == "refunded" and "refunded" in late.note
    assert Payment.objects.get(public_id=payment["id"]).status == "refunded"
    assert ledger.balance(ledger.CLEARING) == 0
    assert journal_is_balanced()
