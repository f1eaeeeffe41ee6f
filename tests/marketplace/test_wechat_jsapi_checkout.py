"""A buyer inside WeChat's browser pays an order by WeChat Pay JSAPI with the Django test
client: the silent OAuth through the sandbox, the JSAPI panel, the stand-in bridge's
confirmation, and the codes through the usual notification; a refused OAuth answer changes
nothing and says why."""

import json
import re
from urllib.parse import urlsplit

import pytest

from marketplace.models import Brand, Order
from payments.models import ChannelAccount, WechatPayer
from tests.accounts.factories import UserFactory
from tests.marketplace.test_checkout import HTMX, make_order, url

pytestmark = pytest.mark.django_db

WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)


@pytest.fixture
def brand():
    return Brand.objects.create(
        name="Test Card", slug="test-card", category="shopping", guarantee_hours=72
    )


@pytest.fixture
def buyer():
    return UserFactory(username="buyer")


@pytest.fixture
def buyer_client(client, buyer):
    client.force_login(buyer)
    return client


@pytest.fixture
def wechat_order(brand, buyer):
    from payments.sandbox.provisioning import demo_channels_ensure

    demo_channels_ensure()
    ChannelAccount.objects.filter(code__in=["bank-polypay", "aggregator"]).update(enabled=False)
    return make_order(brand, buyer)


def _follow(client, location):
    parts = urlsplit(location)
    return client.get(
        parts.path + (f"?{parts.query}" if parts.query else ""), HTTP_USER_AGENT=WECHAT_UA
    )


def _oauth(client, order):
    html = client.get(url(order), HTTP_USER_AGENT=WECHAT_UA).content.decode()
    start = re.search(r'href="([^"]+)" data-testid="wechat-oauth" data-wechat-oauth="auto"', html)
    assert start, "no automatic OAuth step inside WeChat"
    to_wechat = _follow(client, start.group(1).replace("&amp;", "&"))
    assert "connect/oauth2/authorize" in to_wechat["Location"]
    back = _follow(client, to_wechat["Location"])
    assert "/payments/wechat/oauth/callback/" in back["Location"]
    return _follow(client, back["Location"])


def test_inside_wechat_the_buyer_pays_by_jsapi_and_gets_the_code(
    buyer_client, buyer, wechat_order, django_capture_on_commit_callbacks
):
    order = wechat_order
    landed = _oauth(buyer_client, order)
    assert landed["Location"] == url(order)
    assert WechatPayer.objects.filter(buyer=buyer).count() == 1
    html = buyer_client.get(url(order), HTTP_USER_AGENT=WECHAT_UA).content.decode()
    assert 'data-testid="wechat-oauth"' not in html
    methods = re.findall(r'data-testid="method-([a-z_]+)"', html)
    assert methods[0] == "wechatpay" and "alipay" not in methods

    html = buyer_client.post(
        url(order, "order_pay"), {"method": "wechatpay"}, HTTP_USER_AGENT=WECHAT_UA, **HTMX
    ).content.decode()
    assert 'data-wechat-jsapi="wechat-jsapi-request"' in html
    request = json.loads(
        re.search(
            r'<script id="wechat-jsapi-request" type="application/json">(.*?)</script>', html
        ).group(1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer = buyer_client.post(
            "/sandbox/wechatpay/jsapi/pay",
            {"request": request, "confirm": True},
            content_type="application/json",
        ).json()
    assert answer["err_msg"] == "get_brand_wcpay_request:ok"
    assert Order.objects.get(pk=order.pk).status == Order.Status.DELIVERED


def test_a_failed_bridge_payment_leaves_the_order_payable(buyer_client, wechat_order):
    order = wechat_order
    _oauth(buyer_client, order)
    html = buyer_client.post(
        url(order, "order_pay"), {"method": "wechatpay"}, HTTP_USER_AGENT=WECHAT_UA, **HTMX
    ).content.decode()
    request = json.loads(
        re.search(
            r'<script id="wechat-jsapi-request" type="application/json">(.*?)</script>', html
        ).group(1)
    )
    answer = buyer_client.post(
        "/sandbox/wechatpay/jsapi/pay",
        {"request": request, "confirm": False},
        content_type="application/json",
    ).json()
    assert answer["err_msg"] == "get_brand_wcpay_request:fail"
    order.refresh_from_db()
    assert order.status == Order.Status.AWAITING_PAYMENT and order.is_payable


def test_a_forged_oauth_answer_stores_nothing_and_says_why(buyer_client, buyer, wechat_order):
    response = buyer_client.get(
        "/payments/wechat/oauth/callback/",
        {"ref": wechat_order.payment_reference, "code": "abc", "state": "0" * 32},
        HTTP_USER_AGENT=WECHAT_UA,
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 302
    assert not WechatPayer.objects.exists()
    page = buyer_client.get(url(wechat_order), HTTP_USER_AGENT=WECHAT_UA).content.decode()
    assert "WeChat could not confirm who you are" in page or "微信身份确认失败" in page
