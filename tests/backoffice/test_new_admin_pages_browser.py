"""The admin pages this release adds, as the clerks who use them read them, in Chinese on a
375 px phone and at 1280 px: Finance's exchange rates and provider disputes, Support's
provider disputes, and the staff's two-step sign-in enrolment. Screenshots in test-artifacts/."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.browser.pages import PASSWORD, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHINESE = {"locale": "zh-CN", "extra_http_headers": {"Accept-Language": "zh-Hans,zh;q=0.9"}}
SIZES = {
    "phone": {"viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}
FITS = "() => document.scrollingElement.scrollWidth <= window.innerWidth + 1"


def a_dispute():
    """A card payment charged in USD and disputed for fraud."""
    from payments.models import Attempt, ChannelAccount, FxRate, ProviderDispute
    from tests.payments.factories import PaymentFactory

    FxRate.objects.create(currency="USD", rate=Decimal("7.1375"), as_of=timezone.now())
    account = ChannelAccount.objects.create(
        code="card-main",
        name="银行卡收单",
        backend="fake",
        methods=["card"],
        base_url="https://fake.example/",
    )
    payment = PaymentFactory(status="succeeded", amount=Decimal("1234.56"), reference="order:CX1")
    attempt = Attempt.objects.create(
        payment=payment,
        account=account,
        method="card",
        amount=Decimal("1234.56"),
        charge_currency="USD",
        charge_amount=Decimal("172.97"),
        fx_rate=Decimal("7.1375"),
        status="succeeded",
    )
    return ProviderDispute.objects.create(
        account=account,
        payment=payment,
        attempt=attempt,
        provider_id="dp_1Q2w3E4r",
        amount=Decimal("172.97"),
        currency="USD",
        reason="fraudulent",
        status="needs_response",
        evidence_due_by=timezone.now() + dt.timedelta(days=7),
        opened_at=timezone.now(),
    )


def log_in(browser, live_server, username, size):
    context = browser.new_context(**CHINESE, **SIZES[size])
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/?next=/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form [type=submit]").first.click()
    page.wait_for_url("**/admin/**")
    return context, page


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_finance_and_support_read_rates_and_provider_disputes_in_chinese(
    browser, live_server, size
):
    from tests.accounts.factories import UserFactory

    a_dispute()
    UserFactory(username="finance-wang", is_staff=True, groups=["Finance"], password=PASSWORD)
    UserFactory(username="support-chen", is_staff=True, groups=["Support"], password=PASSWORD)

    context, page = log_in(browser, live_server, "finance-wang", size)
    page.goto(f"{live_server.url}/admin/payments/fxrate/")
    text = page.locator("#content").inner_text()
    assert "汇率" in text and "USD" in text and "7.1375" in text
    assert page.evaluate(FITS), "the rates list must fit the screen"
    shot(page, f"admin-fx-rates-{size}")
    page.goto(f"{live_server.url}/admin/payments/fxrate/add/")
    assert "每单位折合人民币" in page.locator("#content").inner_text()  # the rate's label
    assert page.evaluate(FITS), "the rate form must fit the screen"
    shot(page, f"admin-fx-rate-add-{size}")
    page.goto(f"{live_server.url}/admin/payments/providerdispute/")
    row = page.locator("#result_list tbody tr").first.inner_text()
    # the disputed amount with its currency, the reason and who it is against; no raw codes
    assert "dp_1Q2w3E4r" in row and "US$172.97" in row and "盗刷" in row and "CX1" in row
    headers = page.locator("#result_list thead").inner_text()
    assert "争议金额" in headers and "原因" in headers
    assert "渠道争议" in page.locator("#content").inner_text()
    shot(page, f"admin-provider-disputes-finance-{size}")
    context.close()

    context, page = log_in(browser, live_server, "support-chen", size)
    page.goto(f"{live_server.url}/admin/payments/providerdispute/")
    assert "dp_1Q2w3E4r" in page.locator("#result_list").inner_text()
    shot(page, f"admin-provider-disputes-support-{size}")
    context.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_staff_enrol_their_two_step_sign_in_in_chinese(browser, live_server, size):
    from tests.accounts.factories import UserFactory

    UserFactory(username="admin-zhao", is_staff=True, is_superuser=True, password=PASSWORD)
    context, page = log_in(browser, live_server, "admin-zhao", size)
    page.goto(f"{live_server.url}/admin/otp/enroll/")
    content = page.locator("body").inner_text()
    assert "两步登录" in content and page.locator("svg").count() >= 1  # the QR code
    assert "Cardex 后台" in content and "Django" not in content  # the back office's own header
    assert page.locator("input[name=token], input[name=otp_token], input[type=text]").count()
    assert page.evaluate(FITS), "the enrolment page must fit the screen"
    shot(page, f"admin-otp-enroll-{size}")
    context.close()
