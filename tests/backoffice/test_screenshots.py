"""Finance's day in the back office, in Chinese at 1280 px, with screenshots in
test-artifacts/: the dashboard, a journal entry, the trial balance and the refund approval."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from tests.browser.pages import PASSWORD, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHINESE_DESKTOP = {
    "viewport": {"width": 1280, "height": 900},
    "locale": "zh-CN",
    "extra_http_headers": {"Accept-Language": "zh-Hans,zh;q=0.9"},
}


def books():
    """A day of business: paid orders with their journal entries, a refund waiting."""
    from marketplace import postings
    from marketplace.models import Order
    from payments import ledger
    from payments.models import Attempt, ChannelAccount, Refund
    from tests.accounts.factories import UserFactory
    from tests.marketplace.factories import ListingFactory
    from tests.payments.factories import PaymentFactory

    seller = UserFactory(username="seller-li")
    account = ChannelAccount.objects.create(
        code="alipay-main",
        name="支付宝主账户",
        backend="fake",
        methods=["alipay"],
        base_url="https://fake.example/",
    )
    entry = None
    for n, amount in enumerate(["1234.56", "92.00", "460.00"]):
        number = f"CX2026120{n}"
        now = timezone.now() - timezone.timedelta(days=n * 3)
        Order.objects.create(
            number=number,
            buyer=UserFactory(),
            listing=ListingFactory(seller=seller),
            quantity=1,
            unit_price=Decimal(amount),
            unit_commission=Decimal("5.00"),
            amount=Decimal(amount),
            status=Order.Status.DELIVERED,
            expires_at=now,
            paid_at=now,
        )
        payment = PaymentFactory(
            status="succeeded", amount=Decimal(amount), reference=f"order:{number}"
        )
        attempt = Attempt.objects.create(
            payment=payment,
            account=account,
            method="alipay",
            amount=Decimal(amount),
            status="succeeded",
        )
        ledger.post(
            key=f"capture:{number}",
            kind="payment_captured",
            reference=f"order:{number}",
            lines=[
                (ledger.channel_receivable("alipay-main"), Decimal(amount)),
                (ledger.CLEARING, -Decimal(amount)),
            ],
        )
        entry = ledger.post(
            key=f"sale:{number}",
            kind="sale",
            reference=f"order:{number}",
            lines=[
                (ledger.CLEARING, Decimal(amount)),
                (postings.seller_pending(seller.pk), -(Decimal(amount) - 5)),
                (ledger.PLATFORM_REVENUE, Decimal("-5.00")),
            ],
        )
    support = UserFactory(username="support-chen", is_staff=True, groups=["Support"])
    Refund.objects.create(
        payment=payment,
        attempt=attempt,
        amount=Decimal("30.00"),
        status="requested",
        reason="一张卡密无效",
        requested_by=support,
    )
    return entry


def test_finance_reads_the_books_in_chinese(browser, live_server):
    from tests.accounts.factories import UserFactory

    entry = books()
    UserFactory(username="finance-wang", is_staff=True, groups=["Finance"], password=PASSWORD)
    context = browser.new_context(**CHINESE_DESKTOP)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/?next=/admin/")
    page.fill("input[name=username]", "finance-wang")
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form [type=submit]").first.click()
    page.wait_for_url("**/admin/")
    page.wait_for_selector("#chart-gmv[data-drawn=true]")
    assert "¥1,234.56" in page.content() and page.locator(".uplot").count() == 3
    shot(page, "backoffice-dashboard")

    page.goto(f"{live_server.url}/admin/payments/journalentry/{entry.pk}/change/")
    assert "借方合计" in page.content()
    shot(page, "backoffice-journal-entry")

    page.goto(f"{live_server.url}/admin/payments/journalentry/trial-balance/")
    assert (
        page.get_by_test_id("total-debit").inner_text()
        == page.get_by_test_id("total-credit").inner_text()
    )
    shot(page, "backoffice-trial-balance")

    page.goto(f"{live_server.url}/admin/payments/refund/?status__exact=requested")
    page.locator("input[name=_selected_action]").first.check()
    page.select_option("select[name=action]", "approve_requested")
    assert "一张卡密无效" in page.content() and "support-chen" in page.content()
    shot(page, "backoffice-refund-approval")
    context.close()
