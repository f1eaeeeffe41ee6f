"""Issue acceptance through the public API and the sandbox cashier: a seller lists a code, a
buyer pays for it with each of the six channels and receives exactly that code; a decline
leaves the order payable with the reason shown."""

import pytest
from rest_framework.test import APIClient

from payments.sandbox.provisioning import demo_channels_ensure
from tests.accounts.factories import UserFactory
from tests.marketplace.factories import BrandFactory
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db

METHODS = ["alipay", "wechatpay", "unionpay", "ecny", "paypal", "card"]


@pytest.fixture
def shop():
    demo_channels_ensure()
    from payments.models import ChannelAccount

    # one provider per method here, so the test pays where it means to
    ChannelAccount.objects.filter(code__in=["bank-polypay", "aggregator"]).update(enabled=False)
    brand = BrandFactory(
        slug="test-card",
        name="Test Card",
        code_min_length=10,
        code_max_length=32,
        code_charset="A-Za-z0-9",
    )
    seller, buyer = APIClient(), APIClient()
    seller.force_authenticate(UserFactory(username="api-seller"))
    buyer.force_authenticate(UserFactory(username="api-buyer", email="buyer@example.com"))
    return brand, seller, buyer


def list_one_code(brand, seller, code, pin="1234"):
    response = seller.post(
        "/api/v1/listings/",
        {
            "brand": brand.pk,
            "face_value": "100.00",
            "price": "92.00",
            "codes": [{"code": code, "pin": pin}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["stock"] == 1
    return response.json()["id"]


def order_and_pay(buyer, listing_id, method):
    order = buyer.post("/api/v1/orders/", {"listing": listing_id, "quantity": 1}, format="json")
    assert order.status_code == 201, order.content
    number = order.json()["number"]
    pay = buyer.post(f"/api/v1/orders/{number}/pay/", {"method": method}, format="json")
    assert pay.status_code == 200, pay.content
    payment = pay.json()["payment"]
    assert payment["status"] == "pending", payment
    assert payment["channel"] == method and payment["action"]["url"]
    return number, payment


@pytest.mark.parametrize("method", METHODS)
def test_buyer_pays_with_each_channel_and_receives_exactly_the_listed_code(
    shop, method, client, django_capture_on_commit_callbacks
):
    brand, seller, buyer = shop
    code = f"ACCEPT{method.upper()}0001"[:32]
    listing_id = list_one_code(brand, seller, code)
    number, payment = order_and_pay(buyer, listing_id, method)
    assert (
        "codes" not in buyer.get(f"/api/v1/orders/{number}/").json()
        or not buyer.get(f"/api/v1/orders/{number}/").json()["codes"]
    )

    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(payment["action"], "approve")

    order = buyer.get(f"/api/v1/orders/{number}/").json()
    assert order["status"] == "delivered"
    assert order["codes"] == [{"code": code, "pin": "1234"}]
    from payments import ledger

    assert ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0


@pytest.mark.parametrize("method", ["alipay", "paypal", "card"])
def test_a_declined_payment_leaves_the_order_payable_with_the_reason(
    shop, method, client, django_capture_on_commit_callbacks
):
    brand, seller, buyer = shop
    listing_id = list_one_code(brand, seller, f"DECLINE{method.upper()}01")
    number, payment = order_and_pay(buyer, listing_id, method)
    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(payment["action"], "decline", reason="insufficient_funds")

    detail = buyer.get(f"/api/v1/payments/{payment['id']}/").json()["payment"]
    assert detail["status"] == "failed" and detail["reason"] and detail["guidance"]
    assert buyer.get(f"/api/v1/orders/{number}/").json()["status"] == "awaiting_payment"
    # the same order can be paid again, with another method
    again = buyer.post(f"/api/v1/orders/{number}/pay/", {"method": "ecny"}, format="json").json()[
        "payment"
    ]
    assert again["status"] == "pending"
