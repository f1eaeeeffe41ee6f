"""A buyer pays an order with QQ Wallet (QQ钱包), which only an epay aggregator account
serves, through the aggregator simulator's cashier, and receives the codes."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from payments.models import Method, Notification
from payments.sandbox.aggregator.gateway import AggregatorSandbox
from tests.accounts.factories import PASSWORD
from tests.marketplace.conftest import journal_is_balanced
from tests.payments.factories import sandbox_account
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db


def api_as(user) -> APIClient:
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json"
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_qq_wallet_is_a_checkout_method_labelled_for_buyers():
    assert Method.QQPAY == "qqpay" and str(Method.QQPAY.label) in ("QQ Wallet", "QQ钱包")


@pytest.mark.parametrize("sign_type", ["MD5", "RSA"])
def test_a_buyer_pays_with_qq_wallet_through_the_aggregator_and_receives_the_code(
    client, listing, buyer, django_capture_on_commit_callbacks, mailoutbox, sign_type
):
    """MD5 (epay v1) or, where the aggregator account chose it, RSA (v2)."""
    account = sandbox_account("aggregator", fee_percent=Decimal("1.000"))
    if sign_type == "RSA":
        account.credentials = AggregatorSandbox().provision(merchant_id="1001", sign_type="RSA")
        account.save()
    api = api_as(buyer)
    order = api.post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": 1}, format="json"
    ).json()
    answer = api.post(f"/api/v1/orders/{order['number']}/pay/", {"method": "qqpay"}, format="json")
    assert answer.status_code == 200, answer.content
    payment = answer.json()["payment"]
    assert payment["status"] == "pending"

    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(payment["action"], "approve")

    delivered = api.get(f"/api/v1/orders/{order['number']}/").json()
    assert delivered["status"] == "delivered" and len(delivered["codes"]) == 1
    assert len(mailoutbox) == 1
    note = Notification.objects.get(outcome="applied")
    assert note.channel_code == "aggregator" and note.method == "GET"
    assert f"sign_type={sign_type}".encode() in bytes(note.body)
    assert journal_is_balanced()


def test_without_an_aggregator_account_qq_wallet_is_not_offered(listing, buyer):
    api = api_as(buyer)
    order = api.post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": 1}, format="json"
    ).json()
    answer = api.post(f"/api/v1/orders/{order['number']}/pay/", {"method": "qqpay"}, format="json")
    assert answer.status_code == 400
    assert "qqpay" not in answer.json()["allowed"]
    assert not Notification.objects.exists()
