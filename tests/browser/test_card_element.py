"""Cards in the page, in real Chromium: the card panel mounts the acquirer's Payment Element
(the sandbox's stand-in of Stripe.js, the same page code as with Stripe), 3-D Secure runs in a
modal over the checkout page, and the code shows without the page ever leaving; a decline in
the element shows its reason; a card payment the risk engine challenges goes through 3-D
Secure instead of our e-mailed code."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from tests.browser.pages import DESKTOP, PHONE, buy, log_in, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def card_shop(shop):
    """The shop with only the card acquirer switched on, so the card leads the methods."""
    from payments.models import ChannelAccount

    if "card" not in shop["payable"]:
        pytest.skip("no card channel in this tree's sandbox")
    ChannelAccount.objects.exclude(code="card").update(enabled=False)
    return shop


def _open_card_panel(page, site) -> None:
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    page.get_by_test_id("method-card").click()
    page.get_by_test_id("pay").click()
    page.get_by_test_id("sandbox-card-number").wait_for(timeout=15_000)
    page.evaluate("window.__stillHere = true")


def _enter_card(page, number: str, expiry: str = "12 / 34", cvc: str = "123") -> None:
    page.get_by_test_id("sandbox-card-number").fill(number)
    page.get_by_test_id("sandbox-card-expiry").fill(expiry)
    page.get_by_test_id("sandbox-card-cvc").fill(cvc)
    page.get_by_test_id("card-pay").click()


def _codes_show_in_place(page) -> None:
    page.get_by_test_id("card-code").first.wait_for(timeout=20_000)
    assert page.evaluate("window.__stillHere === true"), "the page reloaded or left"
    assert re.fullmatch(r"BROWSERCODE\d{4}", page.get_by_test_id("card-code").first.inner_text())
    assert page.get_by_test_id("order-status").get_attribute("data-state") == "delivered"


def test_a_card_payment_with_3ds_completes_in_the_page_and_the_code_shows(browser, card_shop, site):
    page = browser.new_context(**DESKTOP).new_page()
    _open_card_panel(page, site)
    assert page.get_by_test_id("payment-link").is_visible()  # the hosted page, as fallback
    shot(page, "card-element")

    _enter_card(page, "4000 0000 0000 3220")  # a card whose issuer always asks
    modal = page.get_by_test_id("sandbox-3ds-modal")
    modal.wait_for(timeout=15_000)
    shot(page, "card-element-3ds")
    assert page.url.endswith("/") and "/orders/" in page.url  # still on the order page
    page.get_by_test_id("sandbox-3ds-complete").click()

    _codes_show_in_place(page)
    shot(page, "card-element-delivered")


def test_a_decline_in_the_card_element_shows_its_reason_and_the_order_stays_payable(
    browser, card_shop, site
):
    from marketplace.models import Order

    page = browser.new_context(**DESKTOP).new_page()
    _open_card_panel(page, site)

    # the element's own check: nothing is sent, the buyer corrects the number
    _enter_card(page, "4242 4242")
    result = page.get_by_test_id("card-element-result")
    result.wait_for()
    assert "card number is incomplete" in result.inner_text()
    assert page.get_by_test_id("card-pay").is_enabled()

    _enter_card(page, "4000 0000 0000 9995")  # insufficient funds
    page.wait_for_function(
        "() => document.body.innerText.includes('The card has insufficient funds')",
        timeout=15_000,
    )
    error = page.get_by_test_id("payment-error")
    error.wait_for(timeout=15_000)
    assert "The card has insufficient funds" in error.inner_text()
    assert page.get_by_test_id("card-code").count() == 0
    assert page.get_by_test_id("pay").is_visible()  # pay again, or another way
    assert page.evaluate("window.__stillHere === true")
    order = Order.objects.get(buyer=card_shop["buyer"])
    assert order.status == Order.Status.AWAITING_PAYMENT and order.is_payable
    shot(page, "card-element-declined")


def test_a_card_payment_the_engine_challenges_goes_through_3ds(browser, card_shop, site):
    from payments.models import Payment
    from risk import services as risk_services

    buyer = card_shop["buyer"]
    buyer.date_joined = timezone.now() - dt.timedelta(days=400)
    buyer.save(update_fields=["date_joined"])
    # a channel declined this buyer for risk lately: the engine challenges the next payment
    risk_services.channel_risk_decline_record(user_ref=str(buyer.pk), source="card:fraudulent")

    page = browser.new_context(**DESKTOP).new_page()
    _open_card_panel(page, site)
    assert page.get_by_test_id("three-d-secure-note").is_visible()
    assert page.get_by_test_id("challenge-code").count() == 0  # no code of ours
    payment = Payment.objects.get(buyer=buyer)
    assert payment.risk["decision"] == "challenge"

    _enter_card(page, "4242 4242 4242 4242")  # no 3-D Secure of its own
    page.get_by_test_id("sandbox-3ds-modal").wait_for(timeout=15_000)
    page.get_by_test_id("sandbox-3ds-complete").click()

    _codes_show_in_place(page)
    payment.refresh_from_db()
    assert payment.status == "succeeded"


def test_a_cancelled_3ds_on_a_phone_leaves_the_order_payable_and_is_a_risk_signal(
    browser, card_shop, site
):
    from marketplace.models import Order
    from risk.models import Signal

    page = browser.new_context(**PHONE).new_page()
    _open_card_panel(page, site)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375, "sideways scroll"

    _enter_card(page, "4000 0000 0000 3220")
    page.get_by_test_id("sandbox-3ds-modal").wait_for(timeout=15_000)
    page.get_by_test_id("sandbox-3ds-cancel").click()

    error = page.get_by_test_id("payment-error")
    error.wait_for(timeout=15_000)
    assert "3-D Secure authentication failed" in error.inner_text()
    assert page.get_by_test_id("pay").is_visible()
    assert page.evaluate("window.__stillHere === true")
    order = Order.objects.get(buyer=card_shop["buyer"])
    assert order.status == Order.Status.AWAITING_PAYMENT and order.is_payable
    assert Signal.objects.filter(source="card:payment_intent_authentication_failure").exists()
    shot(page, "card-element-3ds-cancelled-phone")
