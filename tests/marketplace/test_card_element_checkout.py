"""The card panel of the order page with the Django test client: it mounts the acquirer's
Payment Element (publishable key, client secret, the stand-in Stripe.js of the sandbox) with
the card codes in the buyer's language; paying in the page delivers the code; a failed
3-D Secure leaves the order payable and says why."""

import json
import re
from html import unescape

import pytest

from marketplace.models import Brand, Order
from payments.models import ChannelAccount
from tests.accounts.factories import UserFactory
from tests.marketplace.test_checkout import HTMX, make_order, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer():
    return UserFactory(username="buyer")


@pytest.fixture
def buyer_client(client, buyer):
    client.force_login(buyer)
    return client


@pytest.fixture
def order(buyer):
    from payments.sandbox.provisioning import demo_channels_ensure

    demo_channels_ensure()
    ChannelAccount.objects.exclude(code="card").update(enabled=False)
    brand = Brand.objects.create(name="Test Card", slug="test-card", category="shopping")
    return make_order(brand, buyer)


def _panel(client, order, language="en") -> tuple[str, dict[str, str], dict]:
    client.post(url(order, "order_pay"), {"method": "card"}, **HTMX)
    html = client.get(url(order), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    box = re.search(r"<div class=\"card-element\" data-card-element(.*?)>", html, re.S)
    assert box, "no card element in the panel"
    attrs = {k: unescape(v) for k, v in re.findall(r'data-([a-z-]+)="([^"]*)"', box.group(1))}
    table = re.search(
        r'<script id="card-element-messages" type="application/json">(.*?)</script>', html
    )
    return html, attrs, json.loads(table.group(1))


def _confirm(client, attrs, number):
    intent_id = attrs["client-secret"].split("_secret_")[0]
    return client.post(
        f"/sandbox/card/v1/payment_intents/{intent_id}/confirm",
        {
            "key": attrs["publishable-key"],
            "client_secret": attrs["client-secret"],
            "payment_method_data[card][number]": number,
            "payment_method_data[card][exp_month]": "12",
            "payment_method_data[card][exp_year]": "2034",
            "payment_method_data[card][cvc]": "123",
        },
    ).json()


def _answer_3ds(client, attrs, outcome):
    return client.post(
        "/sandbox/card/v1/3ds2/challenge_complete",
        {
            "key": attrs["publishable-key"],
            "client_secret": attrs["client-secret"],
            "payment_intent": attrs["client-secret"].split("_secret_")[0],
            "outcome": outcome,
        },
    ).json()


def test_the_card_panel_mounts_the_element_and_keeps_the_hosted_page_as_fallback(
    buyer_client, order
):
    html, attrs, table = _panel(buyer_client, order)
    assert attrs["js"].endswith("/sandbox/card/v3/")
    assert attrs["publishable-key"].startswith("pk_test_")
    assert "_secret_" in attrs["client-secret"]
    assert attrs["return-url"].endswith(url(order))
    assert attrs["locale"] == "en"
    assert 'data-testid="payment-link"' in html and "/sandbox/card/elements/" in html
    assert "sk_test_" not in html
    assert table["insufficient_funds"]["reason"] == "The card has insufficient funds"
    assert table["payment_intent_authentication_failure"]["reason"] == (
        "3-D Secure authentication failed"
    )
    assert "js/card-element.js" in html


def test_the_element_speaks_the_buyers_language(buyer_client, order):
    _html, attrs, table = _panel(buyer_client, order, language="zh-hans")
    assert attrs["locale"] == "zh"
    assert table["insufficient_funds"]["reason"] == "卡内余额或额度不足"


def test_paying_in_the_page_with_3ds_delivers_the_code(
    buyer_client, order, django_capture_on_commit_callbacks
):
    _html, attrs, _table = _panel(buyer_client, order)
    assert _confirm(buyer_client, attrs, "4000000000003220")["status"] == "requires_action"
    with django_capture_on_commit_callbacks(execute=True):
        assert _answer_3ds(buyer_client, attrs, "authenticated")["status"] == "succeeded"
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    page = buyer_client.get(url(order), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "TESTCODE000001" in page


def test_a_failed_3ds_leaves_the_order_payable_and_says_why(
    buyer_client, order, django_capture_on_commit_callbacks
):
    _html, attrs, _table = _panel(buyer_client, order)
    _confirm(buyer_client, attrs, "4000000000003220")
    with django_capture_on_commit_callbacks(execute=True):
        _answer_3ds(buyer_client, attrs, "failed")
    order.refresh_from_db()
    assert order.status == Order.Status.AWAITING_PAYMENT and order.is_payable
    page = buyer_client.get(url(order), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="payment-error"' in page
    assert "3-D Secure authentication failed" in page
    assert 'data-testid="pay"' in page  # another try, or another method


def test_the_instalment_plan_chosen_in_the_page_goes_to_the_element(buyer_client, order):
    buyer_client.post(
        url(order, "order_pay"), {"method": "card_instalments", "instalments": "6"}, **HTMX
    )
    html = buyer_client.get(url(order), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-instalments="6"' in html
    assert "In 6 monthly instalments." in html
