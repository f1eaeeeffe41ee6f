"""Buyers and sellers as they really use Cardex, in real Chromium, in Chinese and in English,
on a 1280 px desktop and a 375 px phone: a seller's bulk paste typed on a Chinese keyboard, a
decline learnt outside the buyer's request shown in the buyer's language, a partial refund on
the order and in the wallet, a Chinese search, and a dispute with a screenshot attached."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.browser.pages import IN_CHINA, PASSWORD, buy, log_in, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.django_db(transaction=True),
]

# (language, width): each journey once in Chinese on a phone and once in English on a desktop.
SCREENS = [("zh-hans", 375), ("en", 1280)]
CJK = re.compile(r"[\u4e00-\u9fff]")


def merchant_error_png() -> bytes:
    """A small screenshot of the merchant's error page, as a phone saves it."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), (220, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def person(browser, base: str, language: str, width: int):
    """A page for someone reading ``language`` on a ``width`` px screen, in mainland China."""
    phone = width < 600
    context = browser.new_context(
        viewport={"width": width, "height": 740 if phone else 900},
        is_mobile=phone,
        has_touch=phone,
        locale="zh-CN" if language == "zh-hans" else "en-US",
        extra_http_headers=IN_CHINA,
    )
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    return context.new_page()


def fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, (
        "the page scrolls sideways"
    )


# --- a seller's bulk paste ----------------------------------------------------------------------


@pytest.fixture
def seller_brand(site):
    from marketplace.models import Brand
    from tests.accounts.factories import UserFactory

    UserFactory(username="paster", password=PASSWORD)
    return Brand.objects.create(
        slug="jd-ecard",
        name="京东E卡",
        name_en="JD E-Card",
        category="ecommerce",
        code_min_length=16,
        code_max_length=16,
        code_charset="A-Z0-9",
        pin_required=True,
        pin_min_length=6,
        pin_max_length=6,
    )


# What a Chinese keyboard types between a code and its PIN: ，：；and the ideographic space.
FULL_WIDTH_PASTE = (
    "JDEC0000AAAA0001，123401\n"
    "JDEC0000AAAA0002：123402\n"
    "JDEC0000AAAA0003；123403\n"
    "JDEC0000AAAA0004\u3000123404\n"
    "\u3000JDEC0000AAAA0005 ， 123405\u3000\n"
)


def fill_listing(page, base: str, brand, codes: str) -> None:
    page.goto(f"{base}/sell/new/")
    page.select_option("#id_brand", str(brand.pk))
    page.fill("#id_face_value", "100.00")
    page.fill("#id_price", "95.00")
    page.fill("#id_codes", codes)


@pytest.mark.parametrize(("language", "width"), SCREENS)
def test_a_bulk_paste_with_full_width_separators_lists_every_code(
    browser, site, seller_brand, language, width
):
    from marketplace.models import CardCode, Listing

    page = person(browser, site.url, language, width)
    log_in(page, site.url, "paster")
    fill_listing(page, site.url, seller_brand, FULL_WIDTH_PASTE)
    with page.expect_navigation():
        page.locator("form:has(#id_codes) [type=submit]").click()

    listing = Listing.objects.get(brand=seller_brand)
    assert page.url.endswith(f"/sell/listings/{listing.pk}/")
    codes = CardCode.objects.filter(listing=listing)
    assert codes.count() == 5
    masked = page.locator("table code").all_inner_texts()
    assert len(masked) == 5 and all(m.startswith("****") for m in masked), masked
    assert "JDEC0000AAAA0001" not in page.content()  # the seller sees them masked only
    fits(page)
    shot(page, f"bulk-paste-{language}-{width}")


@pytest.mark.parametrize(("language", "width"), SCREENS)
def test_listing_only_the_valid_lines_skips_the_refused_one_and_says_so(
    browser, site, seller_brand, language, width
):
    from marketplace.models import CardCode, Listing

    paste = FULL_WIDTH_PASTE + "TOOSHORT，123406\n"
    page = person(browser, site.url, language, width)
    log_in(page, site.url, "paster")

    # All or nothing (the default): the refused line is named, nothing is saved.
    fill_listing(page, site.url, seller_brand, paste)
    page.locator("form:has(#id_codes) [type=submit]").click()
    errors = page.locator("#form-errors")
    errors.wait_for()
    assert re.search(r"\b6\b", errors.inner_text()), errors.inner_text()  # line 6
    assert not Listing.objects.exists() and not CardCode.objects.exists()
    fits(page)

    # The option beside it: the valid lines go on sale, the refused one is reported.
    page.check("#id_valid_only")
    with page.expect_navigation():
        page.locator("form:has(#id_codes) [type=submit]").click()
    listing = Listing.objects.get(brand=seller_brand)
    assert CardCode.objects.filter(listing=listing).count() == 5
    warning = page.locator(".messages .msg.warning")
    assert warning.count() == 1 and re.search(r"\b6\b", warning.inner_text())
    fits(page)
    shot(page, f"bulk-paste-valid-only-{language}-{width}")


# --- a decline learnt outside the buyer's request ----------------------------------------------


@pytest.mark.parametrize(("language", "width"), SCREENS)
def test_a_decline_learnt_by_notification_reads_in_the_buyers_language_within_seconds(
    browser, shop, site, language, width
):
    from django.utils import translation

    from payments.models import Payment
    from payments.presenters import failure_for_viewer
    from payments.sandbox import core
    from payments.sandbox.models import SandboxTrade

    page = person(browser, site.url, language, width)
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    page.get_by_test_id("method-alipay").click()
    page.get_by_test_id("pay").click()
    page.get_by_test_id("payment-link").wait_for()

    # The payer declines at the provider; the site learns it from the provider's notification,
    # a request of its own in the site's default language — not from the buyer's page.
    trade = SandboxTrade.objects.get(status="waiting")
    with translation.override("zh-hans"):
        core.provider(trade.channel).settle(trade, approve=False, decline_key="insufficient_funds")

    error = page.get_by_test_id("payment-error")
    error.wait_for(timeout=10_000)  # the page asks by itself: nobody presses "check now"
    payment = Payment.objects.get(status="failed")
    with translation.override(language):
        reason, _guidance = failure_for_viewer(payment)
    with translation.override("zh-hans" if language == "en" else "en"):
        other, _guidance = failure_for_viewer(payment)
    shown = error.inner_text()
    assert reason in shown and other not in shown, shown
    assert bool(CJK.search(shown)) == (language == "zh-hans"), shown
    assert page.get_by_test_id("pay").is_visible()
    fits(page)
    shot(page, f"decline-{language}-{width}")


# --- a partial refund ---------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "width"), SCREENS)
def test_a_partial_refund_shows_on_the_order_and_in_the_wallet_statement(
    browser, shop, site, language, width
):
    from django.utils import timezone

    from marketplace.models import Order
    from payments import ledger, services
    from payments.models import Payment

    buyer = shop["buyer"]
    ledger.post(
        key=f"test-topup:{buyer.pk}",
        kind="wallet_topup",
        lines=[(ledger.CLEARING, Decimal("200")), (ledger.buyer_wallet(buyer.id), Decimal("-200"))],
    )
    page = person(browser, site.url, language, width)
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    balance = page.get_by_test_id("method-balance")
    if not balance.is_visible():
        page.get_by_test_id("more-methods").click()
    balance.click()
    page.get_by_test_id("pay").click()
    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)

    order = Order.objects.get(buyer=buyer)
    payment = Payment.objects.get(reference=order.payment_reference, status="succeeded")
    # Finance's own goodwill refund under the self-approval limit goes out at once.
    from tests.accounts.factories import UserFactory

    clerk = UserFactory(is_staff=True, groups=["Finance"])
    refund = services.refund_request(
        payment=payment, amount=Decimal("30.00"), reason="goodwill", requested_by=clerk
    )
    refund.refresh_from_db()
    today = timezone.localtime().strftime("%Y-%m-%d")

    page.goto(f"{site.url}/orders/{order.number}/")
    refunds = page.get_by_test_id("refunds")
    refunds.wait_for()
    text = refunds.inner_text()
    assert "¥30.00" in text and today in text, text
    where = "Cardex 余额" if language == "zh-hans" else "Cardex balance"
    assert where in text, text
    assert page.get_by_test_id("card-code").count() >= 1  # the codes are still the buyer's
    fits(page)
    shot(page, f"refund-order-{language}-{width}")

    page.goto(f"{site.url}/wallet/")
    row = page.locator("table tr", has=page.locator(f"a[href='/orders/{order.number}/']")).filter(
        has_text="¥30.00"
    )
    assert row.count() == 1, page.locator("table").inner_text()
    assert today in row.inner_text()
    assert ("退款" if language == "zh-hans" else "Refund") in row.inner_text()
    assert "refund_sent" not in page.content()
    # ¥200 topped up, ¥95 paid, ¥30 back at once
    assert page.get_by_test_id("wallet-balance").inner_text().strip() == "¥135.00"
    fits(page)
    shot(page, f"refund-wallet-{language}-{width}")


# --- a Chinese search ---------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "width"), SCREENS)
def test_searching_jingdong_in_chinese_finds_the_demo_brand(browser, site, language, width):
    from django.core.management import call_command

    from marketplace.management.commands.seed_demo import Command

    seed = Command()
    with pytest.MonkeyPatch.context() as patch:  # brands, sellers and listings; no channels
        patch.setattr(Command, "_channels", lambda self: 0)
        call_command(seed)
    page = person(browser, site.url, language, width)
    page.goto(f"{site.url}/")
    page.fill("input[name=q]", "京东")
    with page.expect_navigation():
        page.press("input[name=q]", "Enter")
    listings = page.get_by_test_id("listing")
    assert listings.count() >= 1
    names = " ".join(listings.all_inner_texts())
    assert ("京东E卡" if language == "zh-hans" else "JD E-Card") in names, names
    assert "Carrefour" not in names and "家乐福" not in names
    fits(page)
    shot(page, f"search-jd-{language}-{width}")


# --- a dispute with a screenshot ----------------------------------------------------------------


@pytest.fixture
def delivered(site):
    """A buyer's delivered order of two codes from a seller, and a third person."""
    from marketplace.code_formats import CodeInput
    from marketplace.models import Brand
    from marketplace.services import listing_create, order_create
    from tests.accounts.factories import UserFactory
    from tests.marketplace.conftest import announce_success
    from tests.marketplace.factories import succeeded_payment

    brand = Brand.objects.create(
        slug="jd-ecard",
        name="京东E卡",
        name_en="JD E-Card",
        category="ecommerce",
        guarantee_hours=168,
    )
    seller = UserFactory(username="seller", password=PASSWORD)
    listing = listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal("100.00"),
        price=Decimal("95.00"),
        codes=[CodeInput(code=f"DISPUTECODE{i:04d}", pin="") for i in (1041, 2052)],
    )
    buyer = UserFactory(username="buyer", password=PASSWORD)
    order = order_create(buyer=buyer, listing=listing, quantity=2)
    announce_success(succeeded_payment(order))
    order.refresh_from_db()
    assert order.status == "delivered"
    UserFactory(username="stranger", password=PASSWORD)
    return order


@pytest.mark.parametrize(("language", "width"), SCREENS)
def test_a_dispute_with_a_screenshot_reaches_the_seller_and_nobody_else(
    browser, site, delivered, language, width, tmp_path
):
    from marketplace.models import Dispute

    order = delivered
    bad = order.codes.order_by("id").last()
    assert bad.masked.startswith("****") and bad.masked.endswith("2052")
    screenshot = tmp_path / "merchant-error.png"
    screenshot.write_bytes(merchant_error_png())

    # The buyer: from the delivered order's page to the dispute form, by the link shown there.
    page = person(browser, site.url, language, width)
    log_in(page, site.url, "buyer")
    page.goto(f"{site.url}/orders/{order.number}/")
    with page.expect_navigation():
        page.get_by_test_id("report-code").click()
    assert page.url.endswith(f"/orders/{order.number}/dispute/")
    # The codes are offered by their masked form, not "code 1" alone.
    labels = page.locator("#id_code option").all_inner_texts()
    assert any(bad.masked in label for label in labels), labels
    assert "DISPUTECODE" not in page.content()
    label = next(label for label in labels if bad.masked in label)
    page.select_option("#id_code", label=label)
    page.select_option("#id_reason", "invalid")
    page.fill("#id_note", "商户提示卡号无效 / the merchant says the code is invalid")
    page.set_input_files("#id_evidence", str(screenshot))
    fits(page)
    shot(page, f"dispute-form-{language}-{width}")
    with page.expect_navigation():
        page.locator("form:has(#id_evidence) [type=submit]").click()
    assert page.url.endswith(f"/orders/{order.number}/")
    opened_note = page.locator(".messages .msg.success")
    assert opened_note.count() == 1
    assert bool(CJK.search(opened_note.inner_text())) == (language == "zh-hans")

    dispute = Dispute.objects.get(order=order)
    assert dispute.code_id == bad.pk
    evidence = dispute.evidence.get()
    assert evidence.content_type == "image/png"
    evidence_path = f"/disputes/{dispute.pk}/evidence/{evidence.pk}/"

    # The buyer's own dispute page lists it with the masked code and the screenshot.
    page.goto(f"{site.url}/orders/{order.number}/dispute/")
    assert bad.masked in page.locator("section.card").first.inner_text()
    page.context.close()

    # The seller: the dispute names the masked code, not the internal id, and the image opens.
    seller = person(browser, site.url, language, width)
    log_in(seller, site.url, "seller")
    seller.goto(f"{site.url}/sell/")
    article = seller.locator("article.dispute")
    assert article.count() == 1
    text = article.inner_text()
    assert bad.masked in text and f"#{bad.pk}" not in text, text
    assert "DISPUTECODE" not in seller.content()
    link = article.locator(f"a[href='{evidence_path}']")
    assert link.count() == 1
    with seller.context.expect_page() as opened:
        link.click()
    image = opened.value
    image.wait_for_load_state()
    assert image.evaluate(
        "() => document.images.length === 1 && document.images[0].naturalWidth === 120"
    ), "the screenshot does not show as an image"
    fits(seller)
    shot(seller, f"dispute-seller-{language}-{width}")
    seller.context.close()

    # Anyone else: as if it did not exist.
    stranger = person(browser, site.url, language, width)
    log_in(stranger, site.url, "stranger")
    response = stranger.goto(site.url + evidence_path)
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    stranger.context.close()


# --- a WeChat Pay decline, which WeChat Pay never notifies ------------------------------------


@pytest.mark.parametrize(("language", "width"), SCREENS)
def test_a_wechat_pay_decline_shows_within_seconds_though_no_notice_comes(
    browser, shop, site, language, width
):
    """WeChat Pay notifies successes only: the open page asks the channel by itself, so the
    buyer reads the reason (in their language) and the next best method within seconds, not
    after pressing "check now"."""
    from django.utils import translation

    from payments.models import Notification, Payment
    from payments.presenters import failure_for_viewer

    page = person(browser, site.url, language, width)
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    method = page.get_by_test_id("method-wechatpay")
    if not method.is_visible():
        page.get_by_test_id("more-methods").click()
    method.click()
    page.get_by_test_id("pay").click()
    link = page.get_by_test_id("payment-link")
    link.wait_for()

    cashier = browser.new_context(locale="zh-CN" if language == "zh-hans" else "en-US")
    cashier.add_cookies([{"name": "django_language", "value": language, "url": site.url}])
    payer = cashier.new_page()
    payer.goto(link.get_attribute("href"))
    heading = payer.get_by_test_id("sandbox-method").inner_text()
    assert ("微信支付" if language == "zh-hans" else "WeChat Pay") in heading, heading
    with payer.expect_navigation():
        payer.get_by_test_id("sandbox-decline").click()
    cashier.close()

    error = page.get_by_test_id("payment-error")
    error.wait_for(timeout=20_000)  # nobody presses "check now"
    assert not Notification.objects.exists()  # learnt by asking, not told
    payment = Payment.objects.get(status="failed")
    with translation.override(language):
        reason, _guidance = failure_for_viewer(payment)
    shown = error.inner_text()
    assert reason in shown, shown
    assert bool(CJK.search(shown)) == (language == "zh-hans"), shown
    assert page.get_by_test_id("pay-next").is_visible()
    fits(page)
    shot(page, f"wechat-decline-{language}-{width}")
