"""PayPal's buttons and Alipay's app in real Chromium: a buyer pays with the PayPal button
(the sandbox's stand-in SDK and approval window) and sees the code without leaving the page;
a buyer who closes PayPal keeps an order they can still pay, told why; a buyer inside
Alipay's app gets Alipay first and pays in the same page."""

import re

import pytest

from payments.models import Attempt
from tests.browser.pages import DESKTOP, IN_CHINA, buy, decide, log_in, methods_shown, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.django_db(transaction=True),
]

ALIPAY_APP = {
    "viewport": {"width": 375, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-US",
    "extra_http_headers": IN_CHINA,
    "user_agent": (
        "Mozilla/5.0 (Linux; U; Android 14; zh-CN; Pixel 8 Build/UQ1A) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/120.0 Mobile Safari/537.36 "
        "AlipayDefined(nt:WIFI,ws:412|915|2.625) AliApp(AP/10.5.86.6000) "
        "AlipayClient/10.5.86.6000 Language/zh-Hans"
    ),
}


def csp_violations(page) -> list[str]:
    """Console errors of scripts, frames or requests the page's policy refused."""
    seen: list[str] = []
    page.on(
        "console",
        lambda m: (
            seen.append(m.text)
            if m.type == "error" and "Content Security Policy" in m.text
            else None
        ),
    )
    return seen


def open_paypal_buttons(page, shop) -> None:
    if "paypal" not in shop["payable"]:
        pytest.skip("no PayPal sandbox in this tree")
    method = page.get_by_test_id("method-paypal")
    if not method.is_visible():
        page.get_by_test_id("more-methods").click()
    method.click()
    page.get_by_test_id("pay").click()
    page.get_by_test_id("paypal-button").wait_for()


def test_a_paypal_payment_completes_through_the_buttons_without_leaving_the_page(
    browser, shop, site
):
    page = browser.new_context(**DESKTOP).new_page()
    violations = csp_violations(page)
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    open_paypal_buttons(page, shop)
    page.evaluate("window.__stillHere = true")
    shot(page, "paypal-buttons")

    page.get_by_test_id("paypal-button").click()
    page.get_by_test_id("sandbox-approve").wait_for()  # the order is shown once it is read
    # the demo PayPal account charges USD: the window asks for the converted price
    charged = Attempt.objects.filter(method="paypal").latest("pk")
    assert charged.charge_currency == "USD" and charged.charge_amount
    window = page.get_by_test_id("sandbox-paypal-order").inner_text()
    assert f"{charged.charge_amount} USD" in window
    shot(page, "paypal-window")
    page.get_by_test_id("sandbox-approve").click()

    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)
    assert page.evaluate("window.__stillHere === true"), "the page reloaded"
    assert re.fullmatch(r"BROWSERCODE\d{4}", page.get_by_test_id("card-code").first.inner_text())
    assert page.get_by_test_id("order-status").get_attribute("data-state") == "delivered"
    assert violations == []
    shot(page, "paypal-delivered")


def test_closing_paypal_leaves_the_order_payable_and_says_nothing_was_charged(browser, shop, site):
    page = browser.new_context(**DESKTOP).new_page()
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    open_paypal_buttons(page, shop)

    page.get_by_test_id("paypal-button").click()
    page.get_by_test_id("sandbox-cancel").click()

    result = page.get_by_test_id("paypal-result")
    result.wait_for()
    assert "nothing was charged" in result.inner_text()
    assert page.get_by_test_id("card-code").count() == 0
    assert page.get_by_test_id("order-status").get_attribute("data-state") == "pending"
    shot(page, "paypal-cancelled")
    # the buyer changes their mind and pays with the same button
    page.get_by_test_id("paypal-button").click()
    page.get_by_test_id("sandbox-approve").click()
    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)


def test_inside_alipays_app_alipay_is_first_and_pays_in_the_same_page(browser, shop, site):
    if "alipay" not in shop["payable"]:
        pytest.skip("no Alipay sandbox in this tree")
    page = browser.new_context(**ALIPAY_APP).new_page()
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    shown = methods_shown(page)
    assert shown[0] == "alipay" and "wechatpay" not in shown, shown
    shot(page, "alipay-app-checkout")

    page.get_by_test_id("method-alipay").tap()
    page.get_by_test_id("pay").tap()
    page.get_by_test_id("sandbox-approve").wait_for()  # Alipay's cashier, in this same page
    assert page.get_by_test_id("qr-payload").count() == 0
    decide(page, approve=True)

    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)
    assert page.url.startswith(f"{site.url}/orders/")
    shot(page, "alipay-app-delivered")
