"""The first-party device id: a signed, long-lived, HttpOnly, SameSite=Lax cookie, so "new
device" means a browser risk never saw — not a new user-agent string."""

import uuid
from decimal import Decimal

import pytest
from django.test import RequestFactory

from config import device as device_id
from payments.client import client_from_request
from payments.models import Payment
from payments.payables import PayableFacts
from payments.services.risk import _facts, device_key
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131"


def test_a_first_visit_gets_a_signed_long_lived_httponly_lax_cookie(client):
    response = client.get("/")
    cookie = response.cookies[device_id.COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) >= 365 * 24 * 3600
    request = RequestFactory().get("/")
    request.COOKIES[device_id.COOKIE] = cookie.value
    value = device_id.device_id_from(request)
    assert value.startswith("d-") and len(value) > 16
    assert cookie.value.startswith(value + ":")  # the id, then its signature
    assert "Sec-CH-UA-Platform" in response["Accept-CH"]


def test_a_known_device_keeps_its_id_and_is_not_sent_the_cookie_again(client):
    first = client.get("/").cookies[device_id.COOKIE].value
    again = client.get("/")
    assert device_id.COOKIE not in again.cookies
    assert client.cookies[device_id.COOKIE].value == first


def test_a_forged_or_tampered_cookie_is_a_new_device(client):
    client.cookies[device_id.COOKIE] = "d-forged-by-hand"
    response = client.get("/")
    assert response.cookies[device_id.COOKIE].value != "d-forged-by-hand"


def test_an_api_client_with_a_token_gets_no_cookie():
    request = RequestFactory().get("/api/v1/orders/", HTTP_AUTHORIZATION="Token x")
    middleware = device_id.DeviceIdMiddleware(lambda r: __import__("django").http.HttpResponse())
    response = middleware(request)
    assert request.device_id == "" and device_id.COOKIE not in response.cookies


def test_the_platform_client_carries_the_device_id_and_hints():
    request = RequestFactory().get(
        "/",
        HTTP_USER_AGENT=UA,
        HTTP_SEC_CH_UA='"Chromium";v="131", "Not_A Brand";v="24"',
        HTTP_SEC_CH_UA_PLATFORM='"Linux"',
    )
    device_id.DeviceIdMiddleware(lambda r: __import__("django").http.HttpResponse())(request)
    assert client_from_request(request).device_id == request.device_id
    assert device_id.device_label(request.device_hints, UA) == "Linux · Chromium 131"
    assert device_id.device_label({}, UA) == UA


def _paid(buyer, client):
    return Payment.objects.create(
        reference=f"order:{uuid.uuid4().hex[:8]}",
        buyer=buyer,
        method="alipay",
        amount=Decimal("50.00"),
        status="succeeded",
        client=client,
    )


def test_new_device_means_a_new_device_id_not_a_new_user_agent():
    buyer = UserFactory()
    _paid(buyer, {"ip": "203.0.113.9", "device_id": "d-laptop", "user_agent": UA})
    updated_browser = Payment.objects.create(
        reference="order:a",
        buyer=buyer,
        method="alipay",
        amount=Decimal("50.00"),
        client={"ip": "203.0.113.9", "device_id": "d-laptop", "user_agent": UA + ".1"},
    )
    assert not _facts(updated_browser, PayableFacts()).new_device
    other_browser_same_agent = Payment.objects.create(
        reference="order:b",
        buyer=buyer,
        method="alipay",
        amount=Decimal("50.00"),
        client={"ip": "203.0.113.9", "device_id": "d-stolen", "user_agent": UA},
    )
    facts = _facts(other_browser_same_agent, PayableFacts())
    assert facts.new_device and facts.device == "d-stolen"


def test_without_a_device_id_the_user_agent_stands_in():
    buyer = UserFactory()
    _paid(buyer, {"ip": "203.0.113.9", "user_agent": UA})
    same = Payment.objects.create(
        reference="order:c",
        buyer=buyer,
        method="alipay",
        amount=Decimal("50.00"),
        client={"ip": "203.0.113.9", "user_agent": UA},
    )
    assert not _facts(same, PayableFacts()).new_device
    assert device_key({"user_agent": UA}).startswith("ua-")
    assert device_key({}) == ""
