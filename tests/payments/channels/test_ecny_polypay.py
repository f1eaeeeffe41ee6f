"""The acquiring bank's aggregated ("polypay") API beyond e-CNY: one protocol, one sandbox
cashier, and a pay type (``payMethod``) per order for Alipay, WeChat Pay and UnionPay QR
(docs/channels/ecny.md). A bank account serving those methods is a second provider next to
the direct channels, with its own notify URL and the bank's own fault switches."""

import datetime as dt
import io
import json
import secrets
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from payments import services
from payments.accounts import backend_for
from payments.channels.base import (
    ChannelDeclined,
    ChannelUnavailable,
    ClientInfo,
    CreateRequest,
    RefundRequest,
)
from payments.channels.ecny import wire as proto
from payments.channels.registry import backend_class
from payments.models import Notification
from payments.sandbox.ecny import bank
from payments.sandbox.models import (
    SandboxFault,
    SandboxMerchant,
    SandboxNotification,
    SandboxTrade,
)
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account

pytestmark = pytest.mark.django_db

POLY_ID = "POLYTEST0000001"
WALLETS = [
    ("alipay", "ALIPAY", "alipay"),
    ("wechatpay", "WECHAT", "wechat"),
    ("unionpay", "UNIONPAY", "unionpay"),
]


@pytest.fixture
def poly():
    return sandbox_account(
        "ecny",
        code="bank-polypay",
        merchant_id=POLY_ID,
        methods=["alipay", "wechatpay", "unionpay"],
        name="Bank aggregated QR",
    )


@pytest.fixture
def backend(poly):
    return backend_for(poly)


def order_no() -> str:
    return timezone.now().strftime("%Y%m%d") + secrets.token_hex(8).upper()


def create(backend, method, amount="88.00", out_trade_no=None):
    request = CreateRequest(
        out_trade_no=out_trade_no or order_no(),
        amount=Decimal(amount),
        currency="CNY",
        subject="礼品卡",
        method=method,
        expires_at=timezone.now() + dt.timedelta(minutes=15),
    )
    return request, backend.create(request)


def trade_of(request) -> SandboxTrade:
    return SandboxTrade.objects.get(channel="ecny", out_trade_no=request.out_trade_no)


def approve(client, result, decision="approve", reason=""):
    cashier = urlsplit(result.action.url).path
    client.post(cashier, {"decision": decision, "reason": reason, "return": "0"})


def last_note() -> SandboxNotification:
    return SandboxNotification.objects.filter(channel="ecny").latest("pk")


def test_the_backend_serves_the_wallets_of_the_aggregated_api():
    assert set(backend_class("ecny").methods) == {"ecny", "alipay", "wechatpay", "unionpay"}
    assert proto.PAY_METHODS == {
        "ecny": "ECNY",
        "alipay": "ALIPAY",
        "wechatpay": "WECHAT",
        "unionpay": "UNIONPAY",
    }


@pytest.mark.parametrize(("method", "pay_method", "wallet"), WALLETS)
def test_each_wallet_gets_its_own_qr_payload_and_the_shared_cashier(
    client, backend, method, pay_method, wallet
):
    request, result = create(backend, method, "12.34")
    trade = trade_of(request)
    assert trade.extra["payMethod"] == pay_method and trade.merchant_id == POLY_ID
    assert result.action.type == "qr"
    assert result.action.qr == f"http://testserver/sandbox/ecny/qr/{wallet}/{trade.trade_no}/"
    assert result.action.url == f"http://testserver/sandbox/ecny/cashier/{trade.trade_no}/"
    scanned = client.get(urlsplit(result.action.qr).path)
    assert scanned.status_code == 302
    assert urlsplit(scanned["Location"]).path == urlsplit(result.action.url).path
    page = client.get(urlsplit(result.action.url).path)
    assert b'data-testid="sandbox-approve"' in page.content
    # the QR is only good in its own wallet
    other = next(w for _, _, w in WALLETS if w != wallet)
    assert client.get(f"/sandbox/ecny/qr/{other}/{trade.trade_no}/").status_code == 404
    assert client.get(f"/sandbox/ecny/qr/{trade.trade_no}/").status_code == 404


def test_an_ecny_qr_does_not_open_in_another_wallet(client):
    backend = backend_for(sandbox_account("ecny"))
    request, result = create(backend, "ecny")
    trade = trade_of(request)
    assert result.action.qr.endswith(f"/sandbox/ecny/qr/{trade.trade_no}/")
    assert client.get(f"/sandbox/ecny/qr/alipay/{trade.trade_no}/").status_code == 404


@pytest.mark.parametrize(("method", "pay_method", "wallet"), WALLETS)
def test_approval_is_notified_to_the_accounts_own_notify_url(
    client, backend, method, pay_method, wallet
):
    request, result = create(backend, method, "66.60")
    assert trade_of(request).notify_url == "http://testserver/payments/notify/bank-polypay/"
    approve(client, result)
    note = last_note()
    assert note.url == "http://testserver/payments/notify/bank-polypay/"
    notice = backend.parse_notification(headers=note.headers, body=bytes(note.body))
    assert (notice.kind, notice.outcome, notice.amount, notice.out_trade_no) == (
        "payment",
        "succeeded",
        Decimal("66.60"),
        request.out_trade_no,
    )
    assert notice.merchant_id == POLY_ID and notice.raw["bizContent"]["payMethod"] == pay_method
    answer = backend.query(out_trade_no=request.out_trade_no)
    assert answer.outcome == "succeeded" and answer.raw["bizContent"]


def test_a_wallet_decline_carries_the_banks_code(client, backend):
    request, result = create(backend, "wechatpay")
    approve(client, result, "decline", "insufficient_funds")
    notice = backend.parse_notification(headers={}, body=bytes(last_note().body))
    assert (notice.outcome, notice.error_code) == ("failed", "BALANCE_NOT_ENOUGH")
    spec = backend.error_codes["BALANCE_NOT_ENOUGH"]
    # the bank's codes serve every wallet it aggregates: the texts name none of them
    assert "e-CNY" not in spec.reason_en and "数字人民币" not in spec.reason_zh


def test_the_same_order_id_for_another_wallet_is_refused(backend):
    request, first = create(backend, "alipay")
    assert backend.create(request).channel_trade_no == first.channel_trade_no
    with pytest.raises(ChannelDeclined) as info:
        backend.create(CreateRequest(**{**request.__dict__, "method": "wechatpay"}))
    assert info.value.code == "ORDER_EXISTS"


def test_a_wallet_the_merchant_has_not_opened_is_refused_and_fails_over(backend):
    merchant = SandboxMerchant.objects.get(channel="ecny", merchant_id=POLY_ID)
    merchant.config = {**merchant.config, "pay_methods": ["ALIPAY"]}
    merchant.save()
    create(backend, "alipay")
    with pytest.raises(ChannelDeclined) as info:
        create(backend, "wechatpay")
    assert info.value.code == "PAY_METHOD_NOT_OPEN"
    spec = backend.error_codes["PAY_METHOD_NOT_OPEN"]
    assert spec.action == "failover" and spec.counts_against_channel


def test_provisioning_again_keeps_the_opened_wallets(poly):
    merchant = SandboxMerchant.objects.get(channel="ecny", merchant_id=POLY_ID)
    merchant.config = {**merchant.config, "pay_methods": ["ALIPAY"]}
    merchant.save()
    bank.ECNYSandbox().provision(merchant_id=POLY_ID)
    merchant.refresh_from_db()
    assert merchant.config["pay_methods"] == ["ALIPAY"] and merchant.config["public_key"]


def test_a_method_outside_the_api_is_refused_before_calling_the_bank(backend):
    with pytest.raises(ChannelDeclined) as info:
        create(backend, "paypal")
    assert info.value.code == "UNSUPPORTED_METHOD"
    assert not SandboxTrade.objects.exists()
    assert backend.error_codes["UNSUPPORTED_METHOD"].action == "failover"


@pytest.mark.parametrize("pay_method", [None, "", "CARD"])
def test_the_bank_requires_a_known_pay_type(client, backend, pay_method):
    biz = {
        "orderId": order_no(),
        "txnAmt": "100",
        "currencyCode": "CNY",
        "notifyUrl": "http://testserver/payments/notify/bank-polypay/",
    }
    if pay_method is not None:
        biz["payMethod"] = pay_method
    answer = client.post(
        "/sandbox/ecny/polypay/v1.0/mchorders/qrcodeapply",
        data=json.dumps(backend.envelope(biz)),
        content_type="application/json",
    ).json()
    assert (answer["returnCode"], answer["errCode"]) == ("FAIL", "PARAM_ERROR")
    assert "payMethod" in answer["errMsg"]


def test_refunds_of_a_wallet_order_notify_the_account(client, backend):
    request, result = create(backend, "alipay", "50.00")
    approve(client, result)
    trade = trade_of(request)
    refund = RefundRequest(
        refund_no="RF" + secrets.token_hex(6).upper(),
        out_trade_no=request.out_trade_no,
        channel_trade_no=trade.trade_no,
        amount=Decimal("20.00"),
        total_amount=Decimal("50.00"),
        currency="CNY",
    )
    assert backend.refund(refund).outcome == "succeeded"
    note = last_note()
    assert note.url == "http://testserver/payments/notify/bank-polypay/"
    notice = backend.parse_notification(headers={}, body=bytes(note.body))
    assert (notice.kind, notice.amount, notice.refund_no) == (
        "refund",
        Decimal("20.00"),
        refund.refund_no,
    )


def test_the_file_charges_each_pay_type_its_rate(client, backend):
    ecny_backend = backend_for(sandbox_account("ecny", code="ecny-same", merchant_id=POLY_ID))
    _, r1 = create(ecny_backend, "ecny", "100.00")
    approve(client, r1)
    req2, r2 = create(backend, "alipay", "100.00")
    approve(client, r2)
    data = backend.download_settlement(proto.beijing_now().date())
    parsed = backend.open_settlement(io.BytesIO(data))
    fees = {line.out_trade_no: line.fee for line in parsed.lines()}
    assert fees[req2.out_trade_no] == Decimal("0.80")
    assert sorted(fees.values()) == [Decimal("0.60"), Decimal("0.80")]
    assert parsed.totals.fees == Decimal("1.40")


def test_the_banks_fault_switches_are_its_own(backend):
    SandboxFault.objects.create(channel="alipay", down=True)
    create(backend, "alipay")  # Alipay's own gateway being down does not touch the bank
    SandboxFault.objects.create(channel="ecny", down=True)
    with pytest.raises(ChannelUnavailable):
        create(backend, "alipay")


def test_a_platform_payment_through_the_bank_account_is_applied_from_its_notify_url(
    client, poly, django_capture_on_commit_callbacks
):
    payment = services.payment_start(
        buyer=UserFactory(),
        reference="test:poly-1",
        amount=Decimal("30.00"),
        currency="CNY",
        method="wechatpay",
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.9", device="desktop"),
        return_url="http://testserver/orders/P1/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
    )
    attempt = payment.attempts.get()
    assert attempt.account.code == "bank-polypay" and attempt.status == "pending"
    assert attempt.fee == Decimal("0.18")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(urlsplit(attempt.action["url"]).path, {"decision": "approve", "return": "0"})
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    note = Notification.objects.get()
    assert (note.channel_code, note.account, note.outcome) == ("bank-polypay", poly, "applied")
