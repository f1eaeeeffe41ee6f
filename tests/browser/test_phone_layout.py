"""Every page fits a 375 px phone without scrolling sideways, in Chinese and in English."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.browser.pages import PASSWORD, log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PHONE = {"width": 375, "height": 740}


@pytest.fixture
def people(site):
    """A seller with a listing, a buyer with a delivered order under dispute and a pending
    one, a risk analyst; the demo channels on the live server's sandbox."""
    from django.contrib.auth.models import Group

    from marketplace.code_formats import CodeInput
    from marketplace.models import Brand, PayoutDestination
    from marketplace.services import dispute_open, listing_create, order_create
    from payments.sandbox.models import SandboxTrade
    from payments.sandbox.provisioning import demo_channels_ensure
    from tests.accounts.factories import UserFactory
    from tests.marketplace.conftest import announce_success
    from tests.marketplace.factories import succeeded_payment

    demo_channels_ensure()  # the pending order offers its methods; the wallet tops up
    brand = Brand.objects.create(
        slug="carrefour",
        name="家乐福购物卡",
        name_en="Carrefour Shopping Card",
        category="shopping",
        code_min_length=10,
        code_max_length=32,
        guarantee_hours=168,
    )
    seller = UserFactory(username="seller", password=PASSWORD)
    PayoutDestination.objects.create(
        seller=seller, kind="alipay", holder_name="Seller", account="s@example.com"
    )
    listing = listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal("1000.00"),
        price=Decimal("880.00"),
        codes=[CodeInput(code=f"PHONECODE{i:06d}", pin="") for i in range(4)],
    )
    buyer = UserFactory(username="buyer-with-a-rather-long-name", password=PASSWORD)
    order = order_create(buyer=buyer, listing=listing, quantity=2)
    announce_success(succeeded_payment(order))
    order.refresh_from_db()
    dispute_open(
        order=order,
        buyer=buyer,
        code_id=order.codes.order_by("id").first().pk,
        reason="invalid",
        note="商户提示卡号无效，截图已附上。" * 3,
    )
    pending = order_create(buyer=buyer, listing=listing, quantity=1)
    # A payment page a phone buyer is sent to (the simulated provider's cashier).
    trade = SandboxTrade.objects.create(
        channel="alipay",
        merchant_id="2088101122136241",
        out_trade_no=f"{pending.number}-PHONE-LAYOUT-CHECK",
        amount=Decimal("880.00"),
        subject="家乐福购物卡 1000.00 × 1 — a subject long enough to wrap on a phone",
        notify_url="http://127.0.0.1:9/notify/",
    )
    analyst = UserFactory(username="risk", password=PASSWORD, is_staff=True)
    analyst.groups.add(Group.objects.get(name="Risk"))
    return {
        "seller": seller,
        "buyer": buyer,
        "order": order,
        "pending": pending,
        "listing": listing,
        "analyst": analyst,
        "cashier": f"/sandbox/alipay/cashier/{trade.trade_no}/",
    }


def _overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def _measure(page, path: str, language: str, failures: list[str]) -> None:
    extra = _overflow(page)
    if extra > 0:
        name = path.strip("/").replace("/", "_") or "catalogue"
        shot(page, f"phone-overflow-{language}-{name}")
        failures.append(f"{language} {path}: {extra}px wider than the screen")


def _check(page, base: str, paths: list[str], language: str, failures: list[str]) -> None:
    for path in paths:
        response = page.goto(base + path)
        expected = 404 if path.startswith("/listings/999999/") else 200
        if response.status != expected:
            failures.append(f"{language} {path}: answered {response.status}, not {expected}")
        _measure(page, path, language, failures)


def _top_up(page, base: str, language: str, failures: list[str]) -> None:
    """The wallet's top-up: its payment page (a QR and the way to the provider's page)."""
    page.goto(base + "/wallet/")
    page.fill("#id_amount", "200.00")
    page.select_option("#id_method", "alipay")
    with page.expect_navigation():
        page.locator("form:has(#id_amount) [type=submit]").click()
    if "/wallet/topups/" not in page.url:
        failures.append(f"{language} top-up: landed on {page.url}, not its payment page")
        return
    _measure(page, page.url.removeprefix(base), language, failures)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_page_fits_a_375px_phone(browser, site, people, language):
    base = site.url
    order, pending, listing = people["order"], people["pending"], people["listing"]
    context = browser.new_context(
        viewport=PHONE, locale="zh-CN" if language == "zh-hans" else "en-US"
    )
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    page = context.new_page()
    failures: list[str] = []
    _check(
        page,
        base,
        [
            "/",
            "/?q=家乐福",
            f"/listings/{listing.pk}/",
            "/accounts/login/",
            "/accounts/signup/",
            "/accounts/password_reset/",
            "/listings/999999/",  # the site's own 404 page
            people["cashier"],
        ],
        language,
        failures,
    )
    log_in(page, base, people["buyer"].username)
    _check(
        page,
        base,
        [
            "/orders/",
            f"/orders/{order.number}/",
            f"/orders/{pending.number}/",
            f"/orders/{order.number}/dispute/",
            "/wallet/",
            "/accounts/settings/",
            "/risk/sessions/",
        ],
        language,
        failures,
    )
    _top_up(page, base, language, failures)
    context.clear_cookies()
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    log_in(page, base, people["seller"].username)
    _check(
        page, base, ["/sell/", "/sell/new/", f"/sell/listings/{listing.pk}/"], language, failures
    )
    context.clear_cookies()
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    log_in(page, base, people["analyst"].username)
    _check(page, base, ["/risk/monitoring/"], language, failures)
    context.close()
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_on_a_phone_the_catalogue_shows_cards_on_the_first_screen(browser, site, people, language):
    """The filter form folds its extra filters away on a phone: the search box and the first
    card are both on the first screen, and the folded filters open on demand."""
    context = browser.new_context(
        viewport=PHONE, locale="zh-CN" if language == "zh-hans" else "en-US"
    )
    context.add_cookies([{"name": "django_language", "value": language, "url": site.url}])
    page = context.new_page()
    page.goto(site.url + "/")
    card = page.get_by_test_id("listing").first
    box = card.bounding_box()
    assert box is not None and box["y"] < PHONE["height"], box
    assert page.locator("input[name=q]").is_visible()
    assert page.locator("details.more-filters").get_attribute("open") is None
    page.locator("details.more-filters summary").click()
    assert page.locator("details.more-filters .filter-grid").is_visible()
    shot(page, f"phone-catalogue-{language}")
    context.close()
