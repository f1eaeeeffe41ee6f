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
    from payments.models import Attempt, ChannelAccount
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
    entry, payments = None, []
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
        payments.append(payment)
        Attempt.objects.create(
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
    # Support asks for a refund of the largest order: it waits in Finance's queue.
    from payments import services

    support = UserFactory(username="support-chen", is_staff=True, groups=["Support"])
    services.refund_request(
        payment=payments[0], amount=Decimal("1234.56"), reason="一张卡密无效", requested_by=support
    )
    return entry


def test_finance_reads_the_books_in_chinese(browser, live_server):
    from payments.models import Refund
    from tests.accounts.factories import UserFactory
    from tests.payments.fakes import FakeBackend

    FakeBackend.reset()

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

    # The dashboard's "pending refunds" figure leads to Finance's queue.
    page.goto(f"{live_server.url}/admin/")
    page.locator("a[href*='/admin/payments/refund/?status__exact=requested']").first.click()
    page.wait_for_url("**/admin/payments/refund/**")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    row = rows.first.inner_text()
    # What a clerk reads: the order number, ¥ with two decimals, who asked, why, the state
    # by its label — no raw codes.
    assert "CX20261200" in row and "order:" not in row
    assert "¥1,234.56" in row and "support-chen" in row and "一张卡密无效" in row
    assert "等待财务审批" in row and "requested" not in row
    fits = "() => { const r = document.querySelector('#changelist .results');"
    fits += " return r.scrollWidth <= r.clientWidth; }"
    assert page.evaluate(fits), "the queue's columns must fit at 1280 px"
    page.locator("input[name=_selected_action]").first.check()
    page.select_option("select[name=action]", "approve_requested")
    shot(page, "backoffice-refund-approval")

    with page.expect_navigation():
        page.locator("button[name=index]").click()
    assert "已批准并发出 1 笔退款" in page.content()
    refund = Refund.objects.get()
    assert refund.approved_by.username == "finance-wang"
    assert FakeBackend.refunds == {refund.refund_no: Decimal("1234.56")}
    context.close()
