"""What a person does on Cardex pages, as steps the journeys share."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
PASSWORD = "correct-horse-battery"
# A buyer in mainland China reading English: the site's trusted proxy says where they are
# (settings.REGION_HEADER), the browser which language they read. (English also keeps the
# screenshots legible on machines without CJK fonts.)
IN_CHINA = {"X-Country-Code": "CN"}
DESKTOP = {
    "viewport": {"width": 1280, "height": 900},
    "locale": "en-US",
    "extra_http_headers": IN_CHINA,
}
PHONE = {
    "viewport": {"width": 375, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-US",
    "extra_http_headers": IN_CHINA,
    "user_agent": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Mobile Safari/537.36"
    ),
}


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.locator("form:has(input[name=password]) [type=submit]").first.click()


def buy(page, base_url: str) -> None:
    """From the catalogue: open the first listing, buy one, land on the order page."""
    page.goto(f"{base_url}/")
    page.get_by_test_id("listing").first.get_by_role("link").first.click()
    with page.expect_navigation():
        page.get_by_test_id("buy").click()
    page.get_by_test_id("order-status").wait_for()


def methods_shown(page) -> list[str]:
    """Method codes visible before "more methods", in the order shown."""
    return [
        testid.removeprefix("method-")
        for testid in page.locator("[data-testid^='method-']:visible").evaluate_all(
            "els => els.map(e => e.dataset.testid)"
        )
    ]


def pay_in_cashier(browser, link, *, approve: bool) -> None:
    """Open the payment page in a second tab (as on another device) and approve or decline
    there; the checkout tab stays as it is."""
    url = link.get_attribute("href")
    cashier = browser.new_context(locale="en-US").new_page()
    cashier.goto(url)
    decide(cashier, approve=approve)
    cashier.context.close()


def decide(cashier, *, approve: bool) -> None:
    """Approve or decline on a sandbox cashier page (it then sends the buyer back)."""
    with cashier.expect_navigation():
        cashier.get_by_test_id("sandbox-approve" if approve else "sandbox-decline").click()


def complete_payment(browser, page, *, approve: bool) -> None:
    """After pressing pay: use the panel's payment page in a second tab, or — when the
    channel sent this tab to its own page (redirect, form post) — decide there and come back."""
    panel_link = page.get_by_test_id("payment-link")
    cashier = page.get_by_test_id("sandbox-approve")
    panel_link.or_(cashier).first.wait_for()
    if cashier.count():
        decide(page, approve=approve)
        page.get_by_test_id("order-status").wait_for()
    else:
        pay_in_cashier(browser, panel_link, approve=approve)
