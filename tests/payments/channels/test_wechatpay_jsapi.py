"""WeChat Pay JSAPI, for buyers inside WeChat's browser: the bridge's paySign against
wechatpayv3's algorithm and the simulator's own verification, the jsapi order's body, the
snsapi_base OAuth URLs and code exchange, and the stand-in bridge's outcomes."""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from django.test import Client
from django.utils import timezone
from wechatpayv3.core import Core
from wechatpayv3.utils import rsa_sign

from payments.accounts import backend_for
from payments.channels.base import AccountConfig, ChannelDeclined, ClientInfo, CreateRequest
from payments.channels.wechatpay import jsapi
from payments.sandbox.models import SandboxNotification, SandboxTrade
from payments.sandbox.wechatpay import jsapi as sandbox_jsapi
from tests.payments.factories import sandbox_account

WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)
APP_ID = "wxd678efh567hg6787"


class Payers:
    """The payer port as the platform implements it, in memory."""

    def __init__(self, known=None):
        self.known = dict(known or {})
        self.forgotten = []

    def openid(self, *, buyer_ref, app_id):
        return self.known.get((buyer_ref, app_id), "")

    def forget(self, *, buyer_ref, app_id):
        self.forgotten.append((buyer_ref, app_id))
        self.known.pop((buyer_ref, app_id), None)


@pytest.fixture
def payers(monkeypatch):
    port = Payers()
    monkeypatch.setattr(jsapi, "_port", port)
    return port


@pytest.fixture
def account(db):
    return sandbox_account("wechatpay")


@pytest.fixture
def backend(account):
    return backend_for(account)


def _request(out_trade_no="CXJS20261204000001", amount="95.00", ua=WECHAT_UA, buyer="7"):
    return CreateRequest(
        out_trade_no=out_trade_no,
        amount=Decimal(amount),
        currency="CNY",
        subject="京东E卡 100元",
        method="wechatpay",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        client=ClientInfo(user_agent=ua, device="phone", ip="203.0.113.9"),
        buyer_ref=buyer,
    )


def _sandbox_openid(client: Client, backend, app_id=APP_ID) -> str:
    """Go through the sandbox's authorize page and exchange the code, as the platform does."""
    return backend.oauth_openid(_sandbox_code(client, backend))


def _sandbox_code(client: Client, backend) -> str:
    back_to = "http://testserver/back/?ref=order:1"
    url = backend.oauth_authorize_url(redirect_uri=back_to, state="s1")
    parts = urlsplit(url)
    response = client.get(parts.path, parse_qs(parts.query))
    assert response.status_code == 302
    back = parse_qs(urlsplit(response["Location"]).query)
    assert back["state"] == ["s1"] and back["ref"] == ["order:1"]
    return back["code"][0]


# --- paySign --------------------------------------------------------------------------------------


def _private_key(account):
    return account.credentials["private_key"]


def test_pay_sign_is_wechatpayv3s_rsa_signature_over_the_four_lines(account):
    params = jsapi.bridge_parameters(
        app_id=APP_ID,
        prepay_id="wx201410272009395522657a690389285100",
        private_key=_private_key(account),
        timestamp="1414561699",
        nonce="5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
    )
    key = serialization.load_pem_private_key(_private_key(account).encode(), password=None)
    # wechatpayv3's WeChatPay.sign(data) for JSAPI: '\n'.join(data) + '\n', SHA256withRSA
    expected = Core.sign(
        SimpleNamespace(_private_key=key),
        [APP_ID, "1414561699", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", params["package"]],
    )
    assert params == {
        "appId": APP_ID,
        "timeStamp": "1414561699",
        "nonceStr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
        "package": "prepay_id=wx201410272009395522657a690389285100",
        "signType": "RSA",
        "paySign": expected,
    }
    message = f"{APP_ID}\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\n{params['package']}\n"
    assert expected == rsa_sign(key, message)


def test_the_simulator_verifies_pay_sign_independently_and_refuses_any_change(account):
    params = jsapi.bridge_parameters(
        app_id=APP_ID, prepay_id="wx2026", private_key=_private_key(account)
    )
    public = sandbox_jsapi.SandboxMerchant.objects.get(channel="wechatpay").config["public_key"]
    assert sandbox_jsapi.pay_sign_valid(public, params)
    for name, value in [("package", "prepay_id=wx2027"), ("timeStamp", "1"), ("appId", "wx0")]:
        assert not sandbox_jsapi.pay_sign_valid(public, {**params, name: value})
    assert not sandbox_jsapi.pay_sign_valid(public, {**params, "paySign": "bm90IGEgc2lnbg=="})


# --- the jsapi order ------------------------------------------------------------------------------


def test_inside_wechat_the_order_is_jsapi_with_the_payers_openid_and_signed_bridge_params(
    client, account, backend, payers, monkeypatch
):
    payers.known[("7", APP_ID)] = _sandbox_openid(client, backend)
    sent = []
    real_call = backend.call

    def spy(method, path, **kwargs):
        sent.append((method, path, kwargs.get("body")))
        return real_call(method, path, **kwargs)

    monkeypatch.setattr(backend, "call", spy)

    result = backend.create(_request())

    method, path, body = sent[0]
    assert (method, path) == ("POST", "/v3/pay/transactions/jsapi")
    assert body["payer"] == {"openid": payers.known[("7", APP_ID)]}
    assert body["appid"] == APP_ID and body["mchid"] == account.merchant_id
    assert body["amount"] == {"total": 9500, "currency": "CNY"}
    assert "scene_info" not in body  # H5's field: WeChat refuses H5 inside itself
    assert result.action.type == "widget"
    assert result.action.widget["bridge"] == "WeixinJSBridge"
    params = result.action.widget["request"]
    trade = SandboxTrade.objects.get(channel="wechatpay", out_trade_no="CXJS20261204000001")
    assert trade.extra["trade_type"] == "JSAPI"
    assert params["package"] == f"prepay_id={trade.extra['prepay_id']}"
    assert sandbox_jsapi.pay_sign_valid(
        sandbox_jsapi.SandboxMerchant.objects.get(channel="wechatpay").config["public_key"], params
    )


def test_outside_wechat_a_phone_still_gets_h5(backend, payers):
    result = backend.create(_request(ua="Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36"))
    assert result.action.type == "redirect"


def test_without_an_openid_nothing_is_created_at_wechat(backend, payers):
    with pytest.raises(ChannelDeclined) as caught:
        backend.create(_request())
    assert caught.value.code == "OPENID_MISSING"
    assert not SandboxTrade.objects.exists()


def test_an_openid_of_another_app_is_refused_and_forgotten(backend, payers):
    payers.known[("7", APP_ID)] = "oSBX0123456789abAAAAAAAAAAAAAAAA"
    with pytest.raises(ChannelDeclined) as caught:
        backend.create(_request())
    assert caught.value.code == "OPENID_MISMATCH"
    assert payers.forgotten == [("7", APP_ID)]
    assert not SandboxTrade.objects.exists()


def test_the_error_table_tells_the_buyer_in_both_languages(backend):
    for code in ("OPENID_MISSING", "OPENID_MISMATCH", "OAUTH_CODE"):
        spec = backend.error_codes[code]
        assert spec.reason_zh and spec.reason_en and not spec.counts_against_channel


# --- OAuth ----------------------------------------------------------------------------------------


def test_a_live_account_sends_the_buyer_to_wechats_own_authorize_page():
    live = AccountConfig(
        code="wx-live",
        backend="wechatpay",
        base_url="https://api.mch.weixin.qq.com/",
        app_id=APP_ID,
    )
    back_to = "https://cardex.example/cb/?ref=order:9"
    url = jsapi.authorize_url(live, redirect_uri=back_to, state="ab12")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == jsapi.LIVE_AUTHORIZE_URL
    assert parts.fragment == "wechat_redirect"
    assert parse_qs(parts.query) == {
        "appid": [APP_ID],
        "redirect_uri": ["https://cardex.example/cb/?ref=order:9"],
        "response_type": ["code"],
        "scope": ["snsapi_base"],
        "state": ["ab12"],
    }
    assert jsapi.oauth_urls(live)[1] == "https://api.weixin.qq.com/sns/oauth2/access_token"


def test_a_code_is_exchanged_once_for_the_openid_the_simulator_issued(client, backend):
    code = _sandbox_code(client, backend)
    openid = backend.oauth_openid(code)
    assert sandbox_jsapi.openid_valid(APP_ID, openid)
    assert not sandbox_jsapi.openid_valid("wx0000000000000000", openid)
    with pytest.raises(ChannelDeclined) as caught:
        backend.oauth_openid(code)
    assert caught.value.code == "OAUTH_40029"


def test_the_same_wechat_user_gets_the_same_openid_next_time(client, backend):
    assert _sandbox_openid(client, backend) == _sandbox_openid(client, backend)


def test_a_wrong_app_secret_is_refused_by_wechat(client, account):
    creds = dict(account.credentials, app_secret="not-the-secret")
    account.credentials = creds
    account.save()
    backend = backend_for(account)
    with pytest.raises(ChannelDeclined) as caught:
        backend.oauth_openid(_sandbox_code(client, backend))
    assert caught.value.code == "OAUTH_40125"


@pytest.mark.parametrize("code", ["", "a b", "x" * 200, "码"])
def test_a_malformed_code_is_refused_without_asking_wechat(backend, code):
    with pytest.raises(ChannelDeclined) as caught:
        backend.oauth_openid(code)
    assert caught.value.code == "OAUTH_CODE"


# --- the stand-in bridge --------------------------------------------------------------------------


@pytest.fixture
def jsapi_trade(client, backend, payers):
    payers.known[("7", APP_ID)] = _sandbox_openid(client, backend)
    params = backend.create(_request()).action.widget["request"]
    return params, SandboxTrade.objects.get(channel="wechatpay")


def _bridge(client, params, *, confirm=True):
    return client.post(
        "/sandbox/wechatpay/jsapi/pay",
        {"request": params, "confirm": confirm},
        content_type="application/json",
    ).json()


def test_confirming_in_the_bridge_settles_the_order_and_notifies(
    client, jsapi_trade, django_capture_on_commit_callbacks
):
    params, trade = jsapi_trade
    with django_capture_on_commit_callbacks():
        assert _bridge(client, params)["err_msg"] == "get_brand_wcpay_request:ok"
    trade.refresh_from_db()
    assert trade.status == SandboxTrade.Status.PAID
    assert SandboxNotification.objects.filter(channel="wechatpay").count() == 1


def test_a_failure_in_the_bridge_leaves_the_order_unpaid(client, jsapi_trade):
    params, trade = jsapi_trade
    assert _bridge(client, params, confirm=False)["err_msg"] == "get_brand_wcpay_request:fail"
    trade.refresh_from_db()
    assert trade.status == SandboxTrade.Status.WAITING


def test_the_bridge_refuses_a_forged_pay_sign_and_charges_nothing(client, jsapi_trade):
    params, trade = jsapi_trade
    forged = {**params, "package": "prepay_id=" + trade.extra["prepay_id"], "nonceStr": "other"}
    answer = _bridge(client, forged)
    assert answer["err_msg"] == "get_brand_wcpay_request:fail" and answer["err_desc"]
    trade.refresh_from_db()
    assert trade.status == SandboxTrade.Status.WAITING


def test_the_bridge_script_is_served_for_the_sandbox(client):
    response = client.get("/sandbox/wechatpay/jsapi/bridge.js")
    assert response.status_code == 200
    assert b"getBrandWCPayRequest" in response.content
    assert response["Content-Type"].startswith("text/javascript")


@pytest.mark.django_db
def test_the_stand_in_bridges_answers_are_readable_by_the_shops_origin_only(client, settings):
    """With the simulators on their own origin (`make serve`) the shop's page posts to them
    cross-origin: only SITE_URL's origin is allowed to read the answer, preflight included."""
    settings.SITE_URL = "http://127.0.0.1:8000"
    preflight = client.options(
        "/sandbox/wechatpay/jsapi/pay",
        HTTP_ORIGIN="http://127.0.0.1:8000",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK="true",
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
    assert preflight["Access-Control-Allow-Methods"] == "POST"
    assert preflight["Access-Control-Allow-Private-Network"] == "true"
    answer = client.post(
        "/sandbox/wechatpay/jsapi/pay", "not json", content_type="text/plain;charset=UTF-8"
    )
    assert answer.json()["err_msg"] == "get_brand_wcpay_request:fail"  # and nothing paid
    assert answer["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
    assert client.get("/sandbox/wechatpay/jsapi/pay").status_code == 405
