"""The simulators' pages a buyer sees read in the buyer's language: trade and card states by
their labels (not ``waiting``/``requires_payment_method``), instalments as 分 N 期 (not
"6 期 × 每月"); and the checkout's panel says 用微信支付付款, not 使用微信支付支付."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from payments import services
from payments.channels.base import ClientInfo
from payments.payables import PayableFacts
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db


def start(method: str, amount: str = "600.00", **extra):
    return services.payment_start(
        buyer=UserFactory(),
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal(amount),
        currency="CNY",
        method=method,
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.7", device="desktop"),
        return_url="http://testserver/orders/RF1/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
        **extra,
    )


def page_in(client, language: str, action: dict) -> str:
    client.cookies["django_language"] = language
    _url, response = Payer(client).open(action)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("language", "shown", "not_shown"),
    [
        ("zh-hans", "等待付款人付款", "waiting for the payer"),
        ("en", "waiting for the payer", "等待"),
    ],
)
def test_the_cashier_shows_the_trade_state_in_the_buyers_language(
    client, language, shown, not_shown
):
    sandbox_account("alipay")
    payment = start("alipay", "88.00")
    html = page_in(client, language, payment.attempts.get().action)
    status = html.split('data-testid="sandbox-status">', 1)[1].split("<", 1)[0]
    assert status == shown and not_shown not in status


def test_the_card_page_shows_the_plan_and_state_in_chinese(client):
    sandbox_account("card")
    payment = start("card_instalments", instalments=6)
    html = page_in(client, "zh-hans", payment.attempts.get().action)
    assert "分 6 期，按月还款" in html
    assert "× 每月" not in html and "monthly" not in html
    status = html.split('data-testid="sandbox-status">', 1)[1].split("<", 1)[0]
    assert status == "等待输入银行卡" and "requires_payment_method" not in html


def test_the_wechat_pay_panel_heading_has_no_doubled_word(client):
    from django.template.loader import render_to_string
    from django.utils import translation

    with translation.override("zh-hans"):
        html = render_to_string(
            "marketplace/checkout/panel.html",
            {
                "panel": {"type": "redirect", "url": "https://pay.example/"},
                "method_label": "微信支付",
            },
        )
    assert "用微信支付付款" in html and "支付支付" not in html
