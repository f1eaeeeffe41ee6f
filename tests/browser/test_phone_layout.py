"""Every page fits a 375 px phone without scrolling sideways, in Chinese and in English."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.browser.pages import PASSWORD, log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PHONE = {"width": 375, "height": 740}


@pytest.fixture
def people(site):
    """A seller with a listing, a buyer with a delivered order under dispute, a risk analyst."""
    from django.contrib.auth.models import Group

    from marketplace.code_formats import CodeInput
    from marketplace.models import Brand, PayoutDestination
    from marketplace.services import dispute_open, listing_create, order_create
    from tests.accounts.factories import UserFactory
    from tests.marketplace.conftest import announce_success
    from tests.marketplace.factories import succeeded_payment

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
    analyst = UserFactory(username="risk", password=PASSWORD, is_staff=True)
    analyst.groups.add(Group.objects.get(name="Risk"))
    return {
        "seller": seller,
        "buyer": buyer,
        "order": order,
        "pending": pending,
        "listing": listing,
        "analyst": analyst,
    }


def _overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def _check(page, base: str, paths: list[str], language: str, failures: list[str]) -> None:
    for path in paths:
        page.goto(base + path)
        extra = _overflow(page)
        if extra > 0:
            name = path.strip("/").replace("/", "_") or "catalogue"
            shot(page, f"phone-overflow-{language}-{name}")
            failures.append(f"{language} {path}: {extra}px wider than the screen")


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
        ["/", f"/listings/{listing.pk}/", "/accounts/login/", "/accounts/signup/"],
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
        ],
        language,
        failures,
    )
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
