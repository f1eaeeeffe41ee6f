"""Repeated sign-ups, one-time codes, orders and payment starts run into a rate: 429 with a
Chinese message and a Retry-After, and nothing changes."""

import pytest
from django.test import Client

from accounts.models import User
from marketplace.models import Order
from payments.models import Payment, PaymentStatus
from tests.payments.factories import PaymentFactory
from tests.security.conftest import api_as

pytestmark = pytest.mark.django_db


def _refused(response):
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "请" in response.content.decode()


def test_sign_ups_from_one_address_are_rated(tight_rates):
    tight_rates("signup-ip")
    client = Client()
    for n in range(3):
        client.post(
            "/accounts/signup/",
            {"username": f"bot{n}", "password1": "A-long-pass-123", "password2": "A-long-pass-123"},
        )
        client.logout()
    before = User.objects.count()
    response = client.post(
        "/accounts/signup/",
        {"username": "bot9", "password1": "A-long-pass-123", "password2": "A-long-pass-123"},
    )
    _refused(response)
    assert User.objects.count() == before


def test_password_reset_mails_from_one_address_are_rated(buyer, tight_rates, mailoutbox):
    tight_rates("password-reset-ip")
    client = Client()
    for _ in range(3):
        client.post("/accounts/password_reset/", {"email": buyer.email})
    _refused(client.post("/accounts/password_reset/", {"email": buyer.email}))
    assert len(mailoutbox) == 3


def test_orders_through_the_api_are_rated_per_user(buyer, listing, tight_rates):
    tight_rates("order-user")
    api = api_as(buyer)
    for _ in range(3):
        response = api.post("/api/v1/orders/", {"listing": listing.pk, "quantity": 1})
        assert response.status_code == 201
    response = api.post("/api/v1/orders/", {"listing": listing.pk, "quantity": 1})
    _refused(response)
    assert Order.objects.filter(buyer=buyer).count() == 3
    assert api.get("/api/v1/orders/").status_code == 200, "reading is not rated"


def test_orders_are_rated_per_address_across_accounts(buyer, stranger, listing, tight_rates):
    tight_rates("order-ip")
    for _ in range(3):
        api_as(buyer).post("/api/v1/orders/", {"listing": listing.pk, "quantity": 1})
    response = api_as(stranger).post("/api/v1/orders/", {"listing": listing.pk, "quantity": 1})
    _refused(response)
    assert not Order.objects.filter(buyer=stranger).exists()


def test_orders_on_the_site_are_rated_with_the_same_counter(buyer, listing, tight_rates):
    tight_rates("order-user")
    api = api_as(buyer)
    for _ in range(2):
        api.post("/api/v1/orders/", {"listing": listing.pk, "quantity": 1})
    page = Client()
    page.force_login(buyer)
    assert page.post(f"/listings/{listing.pk}/", {"quantity": 1}).status_code == 302
    response = page.post(f"/listings/{listing.pk}/", {"quantity": 1})
    _refused(response)
    assert 'data-testid="rate-limited"' in response.content.decode()
    assert Order.objects.filter(buyer=buyer).count() == 3


def test_payment_starts_are_rated_on_the_api_and_the_page(buyer, order, tight_rates):
    tight_rates("pay-user")
    api = api_as(buyer)
    for _ in range(3):
        response = api.post(f"/api/v1/orders/{order.number}/pay/", {"method": "nope"})
        assert response.status_code == 400
    _refused(api.post(f"/api/v1/orders/{order.number}/pay/", {"method": "alipay"}))
    page = Client()
    page.force_login(buyer)
    _refused(page.post(f"/orders/{order.number}/pay/", {"method": "alipay"}))
    assert not Payment.objects.filter(buyer=buyer).exists()


def test_one_time_code_answers_are_rated(buyer, tight_rates):
    tight_rates("challenge-user")
    payment = PaymentFactory(buyer=buyer, status=PaymentStatus.CHALLENGE, risk={"challenge": {}})
    api = api_as(buyer)
    for _ in range(3):
        api.post(f"/api/v1/payments/{payment.public_id}/challenge/", {"code": "000000"})
    tries = Payment.objects.get(pk=payment.pk).risk["challenge"].get("tries")
    _refused(api.post(f"/api/v1/payments/{payment.public_id}/challenge/", {"code": "123456"}))
    assert Payment.objects.get(pk=payment.pk).risk["challenge"].get("tries") == tries
