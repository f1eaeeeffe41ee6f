"""A buyer's checkout in real Chromium: from the catalogue to the code on screen, paying in
the sandbox over real HTTP, with the page updating itself."""

import re

import pytest

from tests.browser.pages import (
    DESKTOP,
    PHONE,
    buy,
    complete_payment,
    log_in,
    methods_shown,
    pay_in_cashier,
    shot,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.django_db(transaction=True),
]

# Methods whose payment page opens from a panel on the checkout page (QR, hosted card page),
# so the checkout page itself never navigates.
IN_PLACE = ("alipay", "wechatpay", "ecny", "card", "card_instalments")


def pick(shop, shown: list[str], *, among=None, not_first: bool = False) -> str:
    """A method on screen that this tree's sandbox can complete."""
    for method in shown[1:] if not_first else shown:
        if method in shop["payable"] and method != "balance" and (among is None or method in among):
            return method
    pytest.skip(f"no sandbox channel to pay with among the methods shown {shown}")


def choose_and_pay(page, method: str) -> None:
    page.get_by_test_id(f"method-{method}").click()
    page.get_by_test_id("pay").click()


def test_a_buyer_pays_in_the_sandbox_and_sees_the_code_appear_without_a_reload(browser, shop, site):
    page = browser.new_context(**DESKTOP).new_page()
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    shown = methods_shown(page)
    assert 2 <= len(shown) <= 5, shown
    assert page.get_by_test_id("more-methods").is_visible()
    shot(page, "checkout-desktop")
    choose_and_pay(page, pick(shop, shown, among=IN_PLACE))
    link = page.get_by_test_id("payment-link")
    link.wait_for()
    shot(page, "checkout-desktop-pending")
    page.evaluate("window.__stillHere = true")

    pay_in_cashier(page.context.browser, link, approve=True)

    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)
    assert page.evaluate("window.__stillHere === true"), "the page reloaded"
    assert re.fullmatch(r"BROWSERCODE\d{4}", page.get_by_test_id("card-code").first.inner_text())
    assert page.get_by_test_id("order-status").get_attribute("data-state") == "delivered"
    shot(page, "delivery-desktop")


def test_a_decline_shows_its_reason_and_the_next_best_method(browser, shop, site):
    page = browser.new_context(**DESKTOP).new_page()
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    method = pick(shop, methods_shown(page), among=IN_PLACE)
    choose_and_pay(page, method)
    link = page.get_by_test_id("payment-link")
    link.wait_for()

    pay_in_cashier(browser, link, approve=False)

    error = page.get_by_test_id("payment-error")
    error.wait_for(timeout=15_000)
    assert error.inner_text().strip()
    assert page.get_by_test_id("card-code").count() == 0
    assert page.get_by_test_id("pay-next").is_visible()
    assert page.get_by_test_id("pay").is_visible()
    shot(page, "checkout-declined")


def test_checkout_works_on_a_phone_sized_screen(browser, shop, site):
    page = browser.new_context(**PHONE).new_page()
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    shown = methods_shown(page)
    assert 2 <= len(shown) <= 5, shown
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375, (
        "the page scrolls sideways"
    )
    assert page.get_by_test_id("pay").bounding_box()["width"] >= 300
    shot(page, "checkout-phone")
    method = pick(shop, shown)
    page.get_by_test_id(f"method-{method}").tap()
    page.get_by_test_id("pay").tap()

    complete_payment(browser, page, approve=True)

    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    shot(page, "delivery-phone")


def test_a_method_that_was_not_first_is_first_at_the_next_checkout(browser, shop, site):
    page = browser.new_context(**DESKTOP).new_page()
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    before = methods_shown(page)
    chosen = pick(shop, before, not_first=True)
    choose_and_pay(page, chosen)
    complete_payment(browser, page, approve=True)
    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)

    buy(page, site.url)
    after = methods_shown(page)
    assert after[0] == chosen != before[0], (before, after)
    assert page.locator(f"[data-testid=method-{chosen}] input").is_checked()
