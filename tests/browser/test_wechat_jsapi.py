"""A buyer inside WeChat's in-app browser, in real Chromium with WeChat's user agent, in
Chinese and in English on a 375 px phone: WeChat Pay first and Alipay hidden, the silent
``snsapi_base`` OAuth (simulated) once per buyer and app id, ``getBrandWCPayRequest`` with
its RSA ``paySign`` through the simulator's stand-in bridge, and the code on the page
without leaving it. A cancelled or failed bridge call, a missing or a wrong openid leave the
order payable, say why in the buyer's language and charge nothing. With the simulators on an
origin of their own (`make serve`), the Content-Security-Policy lets exactly that origin's
stand-in bridge in."""

from __future__ import annotations

import re

import pytest

from tests.browser.pages import IN_CHINA, buy, log_in, methods_shown, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.django_db(transaction=True),
]

WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
)
LANGUAGES = ["zh-hans", "en"]
CJK = re.compile(r"[\u4e00-\u9fff]")
AUTHORIZE = "/sandbox/wechatpay/connect/oauth2/authorize"

# Wraps the bridge so the test sees what the page asked of it, then lets the stand-in answer.
SPY = """() => {
  const bridge = window.WeixinJSBridge;
  if (!bridge || bridge.__spied) return;
  const invoke = bridge.invoke.bind(bridge);
  window.__bridgeCalls = [];
  bridge.invoke = (name, params, callback) => {
    window.__bridgeCalls.push({ name, params });
    return invoke(name, params, callback);
  };
  bridge.__spied = true;
}"""


@pytest.fixture
def wechat_shop(shop):
    """The demo shop and its direct WeChat Pay account. The bank's aggregated QR serves
    WeChat Pay too and stays enabled: inside WeChat routing must leave it out, as a QR
    cannot be paid in WeChat's own browser."""
    from payments.models import ChannelAccount

    account = ChannelAccount.objects.get(code="wechatpay")
    assert account.enabled and account.app_id
    return {**shop, "account": account}


def in_wechat(browser, base: str, language: str, authorizations: list[str], headers=IN_CHINA):
    """A page in WeChat's in-app browser on a phone; ``authorizations`` collects every visit
    to WeChat's OAuth authorize page. ``headers``: what the site's proxy adds (Playwright
    sends them on every request, cross-origin fetches included)."""
    context = browser.new_context(
        viewport={"width": 375, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        user_agent=WECHAT_UA,
        locale="zh-CN" if language == "zh-hans" else "en-US",
        extra_http_headers=headers,
    )
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    page = context.new_page()
    page.on(
        "request",
        lambda request: authorizations.append(request.url) if AUTHORIZE in request.url else None,
    )
    return page


def checkout_ready(page) -> None:
    """The order page after any OAuth round trip, with the bridge in place and spied on."""
    page.get_by_test_id("method-wechatpay").wait_for()
    assert page.get_by_test_id("wechat-oauth").count() == 0
    page.wait_for_function("() => Boolean(window.WeixinJSBridge)")
    page.evaluate(SPY)


def pay_with_wechat(page) -> None:
    page.get_by_test_id("method-wechatpay").click()
    page.get_by_test_id("pay").click()
    page.get_by_test_id("sandbox-wxpay-sheet").wait_for(timeout=10_000)


def account_enabled(code: str) -> bool:
    from payments.models import ChannelAccount

    return ChannelAccount.objects.filter(code=code, enabled=True).exists()


def nothing_charged(order) -> None:
    from payments import ledger
    from payments.models import Payment
    from payments.sandbox.models import SandboxTrade

    order.refresh_from_db()
    assert order.is_payable and order.status == "awaiting_payment"
    assert not Payment.objects.filter(reference=order.payment_reference, status="succeeded")
    assert not SandboxTrade.objects.filter(status=SandboxTrade.Status.PAID).exists()
    assert ledger.journal_total() == 0


@pytest.mark.parametrize("language", LANGUAGES)
def test_inside_wechat_the_buyer_pays_by_jsapi_and_sees_the_code_without_leaving(
    browser, wechat_shop, site, language
):
    from cryptography.hazmat.primitives import serialization
    from wechatpayv3.utils import rsa_sign

    from marketplace.models import Order
    from payments.accounts import backend_for
    from payments.models import Payment, WechatPayer

    account, buyer = wechat_shop["account"], wechat_shop["buyer"]
    authorizations: list[str] = []
    page = in_wechat(browser, site.url, language, authorizations)
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    checkout_ready(page)

    # The silent OAuth ran once, by itself, and the openid is kept for this buyer and app id.
    assert len(authorizations) == 1 and "scope=snsapi_base" in authorizations[0]
    payer = WechatPayer.objects.get(buyer=buyer)
    assert payer.app_id == account.app_id and payer.openid.startswith("oSBX")
    shown = methods_shown(page)
    assert shown[0] == "wechatpay" and "alipay" not in shown, shown
    shot(page, f"wechat-checkout-{language}")
    page.evaluate("window.__stillHere = true")

    pay_with_wechat(page)
    calls = page.evaluate("window.__bridgeCalls")
    assert [c["name"] for c in calls] == ["getBrandWCPayRequest"]
    params = calls[0]["params"]
    assert params["appId"] == account.app_id and params["signType"] == "RSA"
    assert re.fullmatch(r"prepay_id=wx\w+", params["package"]), params
    # paySign: SHA256withRSA over appId\ntimeStamp\nnonceStr\npackage\n with the merchant
    # key, byte for byte what wechatpayv3 computes (PKCS#1 v1.5 signatures are deterministic).
    key = serialization.load_pem_private_key(
        backend_for(account).account.credentials["private_key"].encode(), password=None
    )
    message = "".join(f"{params[k]}\n" for k in ("appId", "timeStamp", "nonceStr", "package"))
    assert params["paySign"] == rsa_sign(key, message)
    shot(page, f"wechat-bridge-sheet-{language}")

    page.get_by_test_id("sandbox-wxpay-confirm").click()
    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)
    assert page.evaluate("window.__stillHere === true"), "the page reloaded"
    assert re.fullmatch(r"BROWSERCODE\d{4}", page.get_by_test_id("card-code").first.inner_text())
    order = Order.objects.get(buyer=buyer)
    assert order.status == "delivered"
    attempt = Payment.objects.get(reference=order.payment_reference).attempts.get()
    assert attempt.account == account and attempt.status == "succeeded"
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    shot(page, f"wechat-delivered-{language}")

    # The next purchase goes straight to the bridge: WeChat is not asked again.
    buy(page, site.url)
    checkout_ready(page)
    assert len(authorizations) == 1, authorizations
    pay_with_wechat(page)
    page.get_by_test_id("sandbox-wxpay-confirm").click()
    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)
    assert Order.objects.filter(buyer=buyer, status="delivered").count() == 2


CANCELLED = {
    "zh-hans": "你取消了微信支付，没有扣款",
    "en": "You cancelled WeChat Pay; nothing was charged.",
}
FAILED = {
    "zh-hans": "微信支付未能完成付款",
    "en": "WeChat Pay could not complete the payment; nothing was charged.",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_cancelled_or_failed_bridge_call_leaves_the_order_payable_and_says_why(
    browser, wechat_shop, site, language
):
    from marketplace.models import Order

    authorizations: list[str] = []
    page = in_wechat(browser, site.url, language, authorizations)
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    checkout_ready(page)
    order = Order.objects.get(buyer=wechat_shop["buyer"])

    pay_with_wechat(page)
    page.get_by_test_id("sandbox-wxpay-cancel").click()
    result = page.get_by_test_id("bridge-result")
    result.wait_for()
    assert CANCELLED[language] in result.inner_text(), result.inner_text()
    nothing_charged(order)

    # Again, and this time WeChat Pay fails (the sheet's simulated failure).
    page.get_by_test_id("payment-link").click()
    page.get_by_test_id("sandbox-wxpay-fail").click()
    page.wait_for_function(
        "(text) => document.querySelector(\"[data-testid='bridge-result']\").textContent"
        ".includes(text)",
        arg=FAILED[language],
    )
    assert bool(CJK.search(result.inner_text())) == (language == "zh-hans")
    assert page.get_by_test_id("card-code").count() == 0
    nothing_charged(order)
    shot(page, f"wechat-bridge-failed-{language}")

    # The order is still the buyer's to pay: the third time goes through.
    page.get_by_test_id("payment-link").click()
    page.get_by_test_id("sandbox-wxpay-confirm").click()
    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)
    assert len(authorizations) == 1


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_wrong_openid_is_refused_forgotten_and_asked_again(browser, wechat_shop, site, language):
    from marketplace.models import Order
    from payments.models import Attempt, WechatPayer

    account, buyer = wechat_shop["account"], wechat_shop["buyer"]
    assert account_enabled("bank-polypay")
    # An openid that is not this app id's (another official account's, or stale).
    WechatPayer.objects.create(
        buyer=buyer, app_id=account.app_id, openid="oSBX000000000000AAAAAAAAAAAAAAAA"
    )
    authorizations: list[str] = []
    page = in_wechat(browser, site.url, language, authorizations)
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    checkout_ready(page)
    assert authorizations == []  # the stored openid is taken at its word
    order = Order.objects.get(buyer=buyer)

    page.get_by_test_id("method-wechatpay").click()
    page.get_by_test_id("pay").click()
    error = page.get_by_test_id("payment-error")
    error.wait_for(timeout=10_000)
    expected = (
        "微信付款人身份与本商户的公众号不匹配"
        if language == "zh-hans"
        else "WeChat's payer identity does not belong to this shop's WeChat account"
    )
    assert expected in error.inner_text(), error.inner_text()
    assert page.get_by_test_id("sandbox-wxpay-sheet").count() == 0
    assert not WechatPayer.objects.filter(buyer=buyer).exists()  # forgotten
    # No failover to the bank's QR, which cannot be paid inside WeChat.
    tried = Attempt.objects.filter(payment__reference=order.payment_reference)
    assert set(tried.values_list("account__code", flat=True)) == {"wechatpay"}
    nothing_charged(order)
    shot(page, f"wechat-wrong-openid-{language}")

    # Reopening the page asks WeChat again, and the payment goes through.
    page.goto(f"{site.url}/orders/{order.number}/")
    checkout_ready(page)
    assert len(authorizations) == 1
    assert WechatPayer.objects.get(buyer=buyer).openid != "oSBX000000000000AAAAAAAAAAAAAAAA"
    pay_with_wechat(page)
    page.get_by_test_id("sandbox-wxpay-confirm").click()
    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)


def back_without_a_code(route) -> None:
    """WeChat's authorize page sending the buyer back with the state but no code (the
    browser does not route redirects, so the step before it is answered in its place)."""
    from urllib.parse import parse_qs, urlencode, urlsplit

    to_wechat = route.fetch(max_redirects=0).headers["location"]
    query = parse_qs(urlsplit(to_wechat).query)
    back = query["redirect_uri"][0]
    glue = "&" if "?" in back else "?"
    route.fulfill(
        status=302,
        headers={"Location": f"{back}{glue}{urlencode({'state': query['state'][0]})}"},
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_missing_openid_says_why_and_charges_nothing(browser, wechat_shop, site, language):
    """WeChat sends the buyer back without a code: no openid is stored, the page says so,
    and paying by WeChat Pay then says why it cannot open there."""
    from marketplace.models import Order
    from payments.models import WechatPayer

    buyer = wechat_shop["buyer"]
    authorizations: list[str] = []
    page = in_wechat(browser, site.url, language, authorizations)
    page.route(re.compile(r"/payments/wechat/oauth/\?"), back_without_a_code)
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    refused = page.locator(".messages .msg.error")
    refused.wait_for()
    expected = "微信身份确认失败" if language == "zh-hans" else "WeChat could not confirm who you"
    assert expected in refused.inner_text(), refused.inner_text()
    page.wait_for_timeout(1000)
    assert page.get_by_test_id("wechat-oauth").count() == 1  # by hand now: no redirect loop
    assert not WechatPayer.objects.filter(buyer=buyer).exists()
    order = Order.objects.get(buyer=buyer)

    page.get_by_test_id("method-wechatpay").click()
    page.get_by_test_id("pay").click()
    error = page.get_by_test_id("payment-error")
    error.wait_for(timeout=10_000)
    missing = (
        "微信没有告诉我们付款人是谁"
        if language == "zh-hans"
        else "WeChat did not tell us who is paying"
    )
    assert missing in error.inner_text(), error.inner_text()
    nothing_charged(order)
    shot(page, f"wechat-missing-openid-{language}")


@pytest.fixture
def simulators_apart(site, settings):
    """The simulators on an origin of their own, as `make serve` runs them (PORT+1): here
    the live server under its other loopback name, a different origin to the browser."""
    from urllib.parse import urlsplit

    import config.urls  # noqa: F401 - mounted with /sandbox/ before SANDBOX_URL is set

    parts = urlsplit(site.url)
    other = "127.0.0.1" if parts.hostname == "localhost" else "localhost"
    settings.PAYMENTS_SANDBOX = True
    settings.SANDBOX_URL = f"{parts.scheme}://{other}:{parts.port}"
    return settings.SANDBOX_URL


def directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}


def test_with_the_simulators_on_their_own_origin_the_policy_lets_exactly_their_bridge_in(
    browser, simulators_apart, wechat_shop, site, settings
):
    from marketplace.models import Order

    authorizations: list[str] = []
    # No proxy header here: a real browser's post from the stand-in needs no CORS preflight,
    # and one Playwright adds to every request would make it need one.
    page = in_wechat(browser, site.url, "en", authorizations, headers={})
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    log_in(page, site.url, "buyer")
    buy(page, site.url)
    checkout_ready(page)  # the stand-in loaded from the other origin
    response = page.reload()
    policy = response.headers["content-security-policy"]
    # Exactly the simulators' origin joins what the site's policy allows anyway, and only in
    # the two directives the stand-in needs (beside what every order page adds for PayPal's
    # buttons: its hosts and a script nonce, set aside here).
    configured = directives(settings.CONTENT_SECURITY_POLICY)
    paypal = {v for values in settings.PAYPAL_SDK_CSP.values() for v in values}
    served = {
        name: [v for v in values if v not in paypal and not v.startswith("'nonce-")]
        for name, values in directives(policy).items()
    }
    for name in ("script-src", "connect-src"):
        assert served[name] == [*configured.get(name, ["'self'"]), simulators_apart], served
    assert {k: v for k, v in served.items() if k not in {"script-src", "connect-src"}} == {
        k: v for k, v in configured.items() if k not in {"script-src", "connect-src"}
    }
    bridge = page.locator("script[src*='jsapi/bridge.js']")
    assert bridge.get_attribute("src").startswith(simulators_apart + "/sandbox/")

    checkout_ready(page)
    assert authorizations and authorizations[0].startswith(simulators_apart)
    pay_with_wechat(page)
    page.get_by_test_id("sandbox-wxpay-confirm").click()  # posts to the simulators' origin
    page.get_by_test_id("card-code").first.wait_for(timeout=15_000)
    assert Order.objects.get(buyer=wechat_shop["buyer"]).status == "delivered"
    assert blocked == [], blocked
