"""A buyer inside Alipay's app pays an order with the Django test client: Alipay first and
WeChat Pay not offered, the payment opens Alipay's wap cashier in the same page (no QR), and
the code arrives through the usual notification."""

import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from marketplace.models import Brand, Order
from payments.models import ChannelAccount
from tests.accounts.factories import UserFactory
from tests.marketplace.test_checkout import HTMX, make_order, url
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db

ALIPAY_UA = (
    "Mozilla/5.0 (Linux; U; Android 14; zh-CN; Pixel 8 Build/UQ1A) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Version/4.0 Chrome/120.0 Mobile Safari/537.36 UCBS/2.11.1.28 "
    "AlipayDefined(nt:WIFI,ws:412|915|2.625) AliApp(AP/10.5.86.6000) AlipayClient/10.5.86.6000 "
    "Language/zh-Hans"
)


@pytest.fixture
def order():
    from payments.sandbox.provisioning import demo_channels_ensure

    demo_channels_ensure()
    ChannelAccount.objects.filter(code__in=["bank-polypay", "aggregator"]).update(enabled=False)
    brand = Brand.objects.create(
        name="Test Card", slug="test-card", category="shopping", guarantee_hours=72
    )
    return make_order(brand, UserFactory(username="buyer"))


def test_inside_alipays_app_alipay_is_first_and_pays_in_the_same_page(
    client, order, django_capture_on_commit_callbacks
):
    client.force_login(order.buyer)
    html = client.get(url(order), HTTP_USER_AGENT=ALIPAY_UA).content.decode()
    methods = re.findall(r'data-testid="method-([a-z_]+)"', html)
    assert methods[0] == "alipay" and "wechatpay" not in methods

    response = client.post(
        url(order, "order_pay"), {"method": "alipay"}, HTTP_USER_AGENT=ALIPAY_UA, **HTMX
    )
    to_alipay = response["HX-Redirect"]  # this page goes on to Alipay's cashier, no new tab
    params = dict(parse_qsl(urlsplit(to_alipay).query))
    assert params["method"] == "alipay.trade.wap.pay"
    assert urlsplit(params["return_url"]).path == url(order)

    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide({"type": "redirect", "url": to_alipay}, "approve")
    assert Order.objects.get(pk=order.pk).status == Order.Status.DELIVERED
