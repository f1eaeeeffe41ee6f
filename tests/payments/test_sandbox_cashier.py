"""The sandbox cashier names the method the buyer chose and the account serving it: an Alipay
payment served by the bank aggregator (the e-CNY bank's protocol) or the epay aggregator
reads "支付宝 · 经由 <account>", never "ecny" or e-CNY wallet wording — in the page title, its
heading and its decline choices, in Chinese (the site's default) and in English."""

import datetime as dt
import re
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from payments import services
from payments.channels.base import ClientInfo
from payments.models import Attempt
from payments.payables import PayableFacts
from payments.sandbox.models import SandboxTrade
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account

pytestmark = pytest.mark.django_db

BANK_NAME = "Bank aggregated QR (Alipay/WeChat)"
EPAY_NAME = "epay aggregator (QQ Wallet/Alipay)"


def pay(method: str = "alipay", device: str = "desktop") -> Attempt:
    payment = services.payment_start(
        buyer=UserFactory(),
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal("97.00"),
        currency="CNY",
        method=method,
        subject="京东E卡 100元",
        client=ClientInfo(ip="203.0.113.7", device=device),
        return_url="http://testserver/orders/CASHIER1/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
    )
    return payment.attempts.get()


def cashier_path(attempt: Attempt) -> str:
    trade = SandboxTrade.objects.get(out_trade_no=attempt.out_trade_no)
    return f"/sandbox/{trade.channel}/cashier/{trade.trade_no}/"


def page(client, path: str, language: str | None = None) -> str:
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    response = client.get(path, **headers)
    assert response.status_code == 200
    return response.content.decode()


def title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()


def visible_text(html: str) -> str:
    """What the page says (not its URLs, scripts or attributes)."""
    body = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


@pytest.fixture
def bank():
    return sandbox_account(
        "ecny",
        code="bank-polypay",
        merchant_id="POLYCASHIER001",
        methods=["alipay", "wechatpay"],
        name=BANK_NAME,
    )


def test_an_alipay_payment_served_by_the_bank_reads_alipay_via_the_bank_in_chinese(client, bank):
    attempt = pay()
    assert attempt.account == bank and cashier_path(attempt).startswith("/sandbox/ecny/")
    html = page(client, cashier_path(attempt))
    text = visible_text(html)
    assert f"支付宝 · 经由 {BANK_NAME}" in title(html)
    assert f"支付宝 · 经由 {BANK_NAME}" in text
    assert "支付宝余额不足" in text
    assert "支付宝风控拒绝" in text
    for wording in ("ecny", "e-CNY", "数字人民币", "钱包余额"):
        assert wording.lower() not in text.lower(), wording


def test_an_english_buyer_reads_alipay_via_the_bank(client, bank):
    html = page(client, cashier_path(pay()), "en")
    text = visible_text(html)
    assert f"Alipay · via {BANK_NAME}" in title(html)
    assert "sandbox cashier" in title(html)
    assert "Alipay balance too low" in text
    assert "Declined by Alipay risk control" in text
    for wording in ("ecny", "e-CNY", "wallet balance", "wallet phone"):
        assert wording.lower() not in text.lower(), wording


def test_a_wechat_pay_payment_at_the_same_bank_reads_wechat_pay(client, bank):
    text = visible_text(page(client, cashier_path(pay("wechatpay"))))
    assert f"微信支付 · 经由 {BANK_NAME}" in text
    assert "微信支付余额不足" in text


def test_an_alipay_payment_served_by_the_epay_aggregator_names_it(client):
    sandbox_account("aggregator", name=EPAY_NAME, methods=["qqpay", "alipay"])
    attempt = pay()
    html = page(client, cashier_path(attempt))
    assert f"支付宝 · 经由 {EPAY_NAME}" in title(html)
    assert "支付宝余额不足" in visible_text(html)
    assert "Alipay · via" in title(page(client, cashier_path(attempt), "en"))


def test_the_direct_alipay_account_is_named_too(client):
    sandbox_account("alipay", name="Alipay (direct)")
    assert "支付宝 · 经由 Alipay (direct)" in visible_text(page(client, cashier_path(pay())))


def test_a_trade_opened_without_an_attempt_is_labelled_from_its_pay_type(client, bank):
    attempt = pay()
    Attempt.objects.filter(pk=attempt.pk).update(out_trade_no="ELSEWHERE0001")
    text = visible_text(page(client, cashier_path(Attempt(out_trade_no=attempt.out_trade_no))))
    assert f"支付宝 · 经由 {BANK_NAME}" in text


def test_declining_with_a_relabelled_reason_still_sends_the_providers_code(client, bank):
    attempt = pay()
    path = cashier_path(attempt)
    response = client.post(path, {"decision": "decline", "reason": "insufficient_funds"})
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/orders/CASHIER1/"
    trade = SandboxTrade.objects.get(out_trade_no=attempt.out_trade_no)
    assert (trade.status, trade.decline_code) == ("declined", "BALANCE_NOT_ENOUGH")


@pytest.fixture
def simulators_process(settings):
    """As the simulators' own process under `make serve` runs: their URLs and middleware."""
    settings.ROOT_URLCONF = "config.sandbox_urls"
    settings.MIDDLEWARE = settings.SANDBOX_PROCESS_MIDDLEWARE


def test_the_simulators_own_process_serves_the_cashier_as_a_provider_page(
    client, bank, simulators_process
):
    attempt = pay()
    html = page(client, cashier_path(attempt))
    assert f"支付宝 · 经由 {BANK_NAME}" in title(html) and 'data-testid="sandbox-approve"' in html
    assert "/accounts/login/" not in html  # the provider's page links nothing of the shop's
    response = client.post(cashier_path(attempt), {"decision": "approve", "return": "0"})
    assert response.status_code == 200 and "sandbox-approve" not in response.content.decode()
    trade = SandboxTrade.objects.get(out_trade_no=attempt.out_trade_no)
    assert trade.status == "paid" and trade.paid_at is not None
    assert client.get("/healthz").status_code == 200
    assert client.get("/accounts/login/").status_code == 404  # nothing of the shop here
