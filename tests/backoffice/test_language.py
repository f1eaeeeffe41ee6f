"""One language and one money format where staff look; error pages in the site's layout."""

from decimal import Decimal

import pytest

from payments.models import Attempt, ChannelAccount
from tests.backoffice.conftest import staff_client
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def paid_payment():
    account = ChannelAccount.objects.create(
        code="ali-1",
        name="支付宝一号",
        backend="fake",
        methods=["alipay", "wechatpay"],
        base_url="https://fake.example/",
    )
    payment = PaymentFactory(
        status="succeeded",
        amount=Decimal("1234.56"),
        reference="order:Z1",
        risk={"score": 95, "decision": "review", "reasons": ["new_seller"]},
    )
    Attempt.objects.create(
        payment=payment,
        account=account,
        method="alipay",
        amount=payment.amount,
        status="succeeded",
        routing={
            "approach": "exploit",
            "winner": "ali-1",
            "order": ["ali-1"],
            "currency": "CNY",
            "candidates": [
                {
                    "code": "ali-1",
                    "estimate": 0.95,
                    "fee": "7.41",
                    "weight": "1.00",
                    "score": "1100.00",
                    "breaker": "closed",
                    "note": "",
                    "excluded": "",
                }
            ],
        },
    )
    return payment


def test_payment_pages_read_in_yuan_with_labels_and_tables_not_json(client):
    payment = paid_payment()
    staff_client(client, "Finance")
    listing = client.get("/admin/payments/payment/").content.decode()
    assert "¥1,234.56" in listing and "1234.56 CNY" not in listing
    page = client.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()
    assert "order:Z1 ¥1,234.56 成功" in page
    assert "风险分" in page and "new_seller" in page and '{"score"' not in page
    assert "预估成功率" in page and "95.0%" in page and "¥7.41" in page
    assert "&quot;candidates&quot;" not in page and '"candidates"' not in page
    accounts = client.get("/admin/payments/channelaccount/").content.decode()
    assert "支付宝、微信支付" in accounts and "[&quot;alipay&quot;" not in accounts


def test_refund_form_labels_are_chinese(client):
    payment = paid_payment()
    staff_client(client, "Finance")
    page = client.get(f"/admin/payments/payment/{payment.pk}/refund/").content.decode()
    assert "Amount:" not in page and "Reason:" not in page and "金额" in page


@pytest.mark.parametrize(
    ("url", "status", "text"),
    [
        ("/admin/payments/journalentry/", 403, "您无权打开此页面"),
        ("/no-such-page/", 404, "页面不存在"),
    ],
)
def test_error_pages_are_in_chinese_in_the_site_layout(client, settings, url, status, text):
    settings.DEBUG = False
    staff_client(client, "Support")
    response = client.get(url)
    page = response.content.decode()
    assert response.status_code == status and text in page
    assert "site-header" in page and "Forbidden" not in page


def test_the_500_page_renders_in_the_site_layout():
    from django.template.loader import render_to_string

    page = render_to_string("500.html")
    assert "我们这边出了点问题" in page and "site-header" in page
