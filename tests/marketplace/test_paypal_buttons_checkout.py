"""PayPal's buttons on the order page, with the Django test client against the simulator:
the panel the page renders, the page's Content-Security-Policy, the no-JavaScript fallback,
and the API createOrder / onApprove / onCancel call — the buyer's own order only, CSRF-checked,
another order's approval refused, a cancel leaving the order payable."""

import json
import re
from urllib.parse import urlsplit

import pytest
from django.test import Client

from marketplace.models import Brand, Order
from payments.channels.paypal.backend import clear_caches
from payments.models import ChannelAccount
from payments.sandbox.models import SandboxTrade
from tests.accounts.factories import UserFactory
from tests.marketplace.test_checkout import HTMX, make_order, url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_caches():
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def brand():
    return Brand.objects.create(
        name="Test Card", slug="test-card", category="shopping", guarantee_hours=72
    )


@pytest.fixture
def buyer():
    return UserFactory(username="buyer")


@pytest.fixture
def buyer_client(client, buyer):
    client.force_login(buyer)
    return client


@pytest.fixture
def order(brand, buyer):
    from payments.sandbox.provisioning import demo_channels_ensure

    demo_channels_ensure()
    ChannelAccount.objects.filter(code__in=["bank-polypay", "aggregator"]).update(enabled=False)
    return make_order(brand, buyer)


def api(order, what):
    return f"/api/v1/orders/{order.number}/paypal/{what}/"


def pay_with_buttons(client, order) -> str:
    """Press pay with PayPal on the page (htmx): the panel with the buttons."""
    return client.post(url(order, "order_pay"), {"method": "paypal"}, **HMTX_EN).content.decode()


HMTX_EN = {**HTMX, "HTTP_ACCEPT_LANGUAGE": "en"}


def approve_in_window(client, order_id):
    client_id = ChannelAccount.objects.get(code="paypal").credentials["client_id"]
    response = client.post(
        f"/sandbox/paypal/sdk/orders/{order_id}/approve",
        json.dumps({"client_id": client_id, "decision": "approve"}),
        content_type="application/json",
    )
    assert response.status_code == 200


def test_the_panel_renders_the_buttons_with_our_api_and_paypals_page_as_fallback(
    buyer_client, order
):
    html = pay_with_buttons(buyer_client, order)
    box = re.search(r"<div class=\"paypal-buttons\" data-paypal-buttons(.*?)>", html, re.S)
    assert box, html
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', box.group(1)))
    sdk = urlsplit(attrs["sdk-url"].replace("&amp;", "&"))
    assert sdk.path == "/sandbox/paypal/sdk/js" and "intent=capture" in sdk.query
    assert attrs["create-url"] == api(order, "order")
    assert attrs["capture-url"] == api(order, "capture")
    assert attrs["cancel-url"] == api(order, "cancel")
    trade = SandboxTrade.objects.get(channel="paypal")
    assert attrs["order-id"] == trade.trade_no
    assert f'/sandbox/paypal/cashier/{trade.trade_no}/" data-testid="payment-link"' in html


def test_the_order_page_allows_paypals_sdk_with_a_nonce_and_keeps_its_popup(buyer_client, order):
    response = buyer_client.get(url(order))
    policy = response["Content-Security-Policy"]
    script_src = next(p for p in policy.split("; ") if p.startswith("script-src "))
    assert "'self'" in script_src and "https://*.paypal.com" in script_src
    assert "'unsafe-inline'" not in script_src
    nonce = re.search(r"'nonce-([^']+)'", script_src).group(1)
    assert f'nonce="{nonce}" data-csp-nonce="{nonce}"' in response.content.decode()
    frame_src = next(p for p in policy.split("; ") if p.startswith("frame-src "))
    assert "https://*.paypal.com" in frame_src and "'self'" in frame_src
    assert response["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"


def test_other_pages_keep_the_strict_policy(client, order):
    response = client.get("/")
    assert "paypal" not in response["Content-Security-Policy"]
    assert "nonce-" not in response["Content-Security-Policy"]
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_without_javascript_the_buyer_is_sent_to_paypals_page(buyer_client, order):
    response = buyer_client.post(url(order, "order_pay"), {"method": "paypal"})
    trade = SandboxTrade.objects.get(channel="paypal")
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == f"/sandbox/paypal/cashier/{trade.trade_no}/"


def test_create_approve_capture_delivers_the_code(
    buyer_client, order, django_capture_on_commit_callbacks
):
    pay_with_buttons(buyer_client, order)
    order_id = buyer_client.post(api(order, "order")).json()["id"]
    approve_in_window(buyer_client, order_id)

    with django_capture_on_commit_callbacks(execute=True):
        answer = buyer_client.post(
            api(order, "capture"), {"order_id": order_id}, content_type="application/json"
        )

    assert answer.status_code == 200, answer.content
    assert answer.json()["payment"]["status"] == "succeeded"
    assert Order.objects.get(pk=order.pk).status == Order.Status.DELIVERED
    again = buyer_client.post(
        api(order, "capture"), {"order_id": order_id}, content_type="application/json"
    )
    assert again.status_code == 200 and again.json()["payment"]["status"] == "succeeded"


def test_an_approval_of_another_order_is_refused_and_nothing_is_charged(buyer_client, order):
    pay_with_buttons(buyer_client, order)
    answer = buyer_client.post(
        api(order, "capture"),
        {"order_id": "5O190127TN364715T"},
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert answer.status_code == 409
    assert answer.json()["code"] == "ORDER_MISMATCH"
    assert "nothing was charged" in answer.json()["detail"]
    order.refresh_from_db()
    assert order.status == Order.Status.AWAITING_PAYMENT and order.is_payable


def test_a_cancel_leaves_the_order_payable_with_the_reason_in_the_buyers_language(
    buyer_client, order
):
    pay_with_buttons(buyer_client, order)
    order_id = buyer_client.post(api(order, "order")).json()["id"]
    answer = buyer_client.post(
        api(order, "cancel"),
        {"order_id": order_id, "reason": "cancel"},
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert answer.status_code == 200
    assert answer.json()["code"] == "PAYER_CANCELLED" and "没有扣款" in answer.json()["detail"]
    order.refresh_from_db()
    assert order.status == Order.Status.AWAITING_PAYMENT and order.is_payable
    # the same PayPal order can be approved from the buttons afterwards
    assert buyer_client.post(api(order, "order")).json()["id"] == order_id


@pytest.mark.parametrize("what", ["order", "capture", "cancel"])
def test_someone_elses_order_does_not_exist_for_them(client, buyer_client, order, what):
    pay_with_buttons(buyer_client, order)
    order_id = SandboxTrade.objects.get(channel="paypal").trade_no
    client.force_login(UserFactory(username="mallory"))
    answer = client.post(
        api(order, what),
        {"order_id": order_id, "reason": "cancel"},
        content_type="application/json",
    )
    assert answer.status_code == 404
    assert not SandboxTrade.objects.get(trade_no=order_id).extra.get("capture_id")


def test_a_browser_session_without_the_csrf_token_is_refused(buyer, order):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(buyer)
    answer = strict.post(api(order, "order"))
    assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]


def test_anonymous_callers_are_refused(client, order):
    assert client.post(api(order, "order")).status_code in (401, 403)
