"""Alipay RSA2 protocol (CHANNELS.md §1): signing cross-checked with python-alipay-sdk, the
backend against the in-process sandbox, and notifications the sandbox produced — intact and
tampered."""

import datetime as dt
import json
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from alipay import AliPay
from django.utils import timezone

from payments.accounts import backend_for, config_for
from payments.channels.alipay import AlipayBackend
from payments.channels.alipay.wire import (
    notification_content,
    response_content,
    rsa2_sign,
    rsa2_verify,
    sign_content,
)
from payments.channels.base import (
    AccountConfig,
    ChannelDeclined,
    ChannelUnavailable,
    ClientInfo,
    CreateRequest,
    NotificationRejected,
    RefundRequest,
)
from payments.channels.registry import backend_class
from payments.sandbox import alipay as sandbox
from payments.sandbox import keys
from payments.sandbox.alipay import protocol as sandbox_protocol
from payments.sandbox.models import SandboxFault, SandboxNotification, SandboxRefund, SandboxTrade
from tests.payments.factories import sandbox_account

PID = "2088101122136241"


def _request(
    out_trade_no="CX20261123000001", amount="88.00", device="desktop", **kw
) -> CreateRequest:
    return CreateRequest(
        out_trade_no=out_trade_no,
        amount=Decimal(amount),
        currency="CNY",
        subject="京东E卡 100元",
        method="alipay",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        client=ClientInfo(device=device),
        **kw,
    )


def _sdk(private_pem: str, public_pem: str) -> AliPay:
    return AliPay(
        appid="2021000000000001",
        app_notify_url=None,
        app_private_key_string=private_pem,
        alipay_public_key_string=public_pem,
    )


@pytest.fixture
def account(db):
    return sandbox_account("alipay")


@pytest.fixture
def backend(account) -> AlipayBackend:
    return backend_for(account)


def _pay(client, backend, out_trade_no="CX20261123000001", amount="88.00") -> SandboxTrade:
    backend.create(_request(out_trade_no, amount))
    trade = SandboxTrade.objects.get(channel="alipay", out_trade_no=out_trade_no)
    response = client.post(f"/sandbox/alipay/cashier/{trade.trade_no}/", {"decision": "approve"})
    assert response.status_code == 200
    trade.refresh_from_db()
    assert trade.status == SandboxTrade.Status.PAID
    return trade


def _notification(trade: SandboxTrade) -> SandboxNotification:
    return SandboxNotification.objects.filter(channel="alipay").latest("pk")


def _resign(params: dict) -> bytes:
    """Sign altered notification params with the sandbox's Alipay key (a "genuine" message)."""
    params = {k: v for k, v in params.items() if k != "sign"}
    params["sign"] = sandbox_protocol.sign(
        sandbox_protocol.string_to_sign(params, exclude=("sign", "sign_type"))
    )
    return urlencode(params).encode()


# ---------------------------------------------------------------------------------------------
# Signing


def test_backend_is_registered_for_the_alipay_method():
    assert backend_class("alipay") is AlipayBackend
    assert AlipayBackend.methods == ("alipay",)


def test_request_string_to_sign_keeps_sign_type_drops_sign_and_empties_and_does_not_encode():
    params = {
        "sign": "xxx",
        "sign_type": "RSA2",
        "app_id": "2021",
        "notify_url": "",
        "method": "alipay.trade.query",
        "biz_content": {"out_trade_no": "A&B=1", "total_amount": "8.80"},
        "timestamp": "2026-11-23 10:00:00",
    }
    assert sign_content(params) == (
        'app_id=2021&biz_content={"out_trade_no":"A&B=1","total_amount":"8.80"}'
        "&method=alipay.trade.query&sign_type=RSA2&timestamp=2026-11-23 10:00:00"
    )


def test_notification_string_to_sign_excludes_sign_and_sign_type_and_keeps_empty_values():
    params = {
        "sign": "x",
        "sign_type": "RSA2",
        "trade_status": "TRADE_SUCCESS",
        "app_id": "1",
        "body": "",
    }
    assert notification_content(params) == "app_id=1&body=&trade_status=TRADE_SUCCESS"


def test_request_signature_is_identical_to_python_alipay_sdk(backend, account):
    credentials = account.credentials
    params = backend.signed_params("alipay.trade.query", {"out_trade_no": "CX1"})
    sdk = _sdk(credentials["app_private_key"], credentials["alipay_public_key"])
    unsigned = {k: v for k, v in params.items() if k != "sign"}
    sdk_signed = dict(parse_qsl(sdk.sign_data(dict(unsigned))))
    assert sdk_signed["sign"] == params["sign"]


def test_signature_of_sdk_verifies_with_ours(db):
    private_pem = keys.generate_rsa_private_pem()
    public_pem = keys.public_pem_of(private_pem)
    sdk = _sdk(private_pem, public_pem)
    message = 'a=1&b=中文&c={"x":1}'
    assert rsa2_verify(message, sdk._sign(message), public_pem)
    assert sdk._verify(message, rsa2_sign(message, private_pem))
    assert not rsa2_verify(message + "&d=2", sdk._sign(message), public_pem)


def test_bare_base64_keys_as_pasted_from_alipays_key_tool_work():
    private_pem = keys.generate_rsa_private_pem()
    public_pem = keys.public_pem_of(private_pem)
    bare_private = "".join(line for line in private_pem.splitlines() if "-----" not in line)
    bare_public = "".join(line for line in public_pem.splitlines() if "-----" not in line)
    assert rsa2_verify("abc", rsa2_sign("abc", bare_private), bare_public)


def test_response_content_is_the_raw_object_even_with_braces_inside_strings():
    raw = (
        '{"alipay_trade_query_response":{"code":"10000","subject":"}{ odd \\" }",'
        '"n":{"a":1}},"sign":"S"}'
    )
    assert (
        response_content(raw, "alipay_trade_query_response")
        == '{"code":"10000","subject":"}{ odd \\" }","n":{"a":1}}'
    )
    assert response_content(raw, "missing_response") is None


@pytest.mark.django_db
def test_sandbox_answers_verify_with_python_alipay_sdk(client, backend, account):
    backend.create(_request())
    params = backend.signed_params("alipay.trade.query", {"out_trade_no": "CX20261123000001"})
    raw = client.post("/sandbox/alipay/gateway.do", params).content.decode()
    sdk = _sdk(account.credentials["app_private_key"], account.credentials["alipay_public_key"])
    answer = sdk._verify_and_return_sync_response(raw, "alipay_trade_query_response")
    assert answer["trade_status"] == "WAIT_BUYER_PAY"
    assert response_content(raw, "alipay_trade_query_response") == sdk._get_string_to_be_signed(
        raw, "alipay_trade_query_response"
    )


@pytest.mark.django_db
def test_sandbox_notification_verifies_with_python_alipay_sdk(client, backend, account):
    _pay(client, backend)
    note = _notification(None)
    data = dict(parse_qsl(bytes(note.body).decode()))
    signature = data.pop("sign")
    sdk = _sdk(account.credentials["app_private_key"], account.credentials["alipay_public_key"])
    assert sdk.verify(data, signature)


# ---------------------------------------------------------------------------------------------
# Creating: the three cashiers


@pytest.mark.django_db
def test_desktop_gets_a_precreate_qr_that_leads_to_the_cashier(client, backend):
    result = backend.create(_request(device="desktop"))
    assert result.action.type == "qr"
    assert result.action.qr == result.action.url
    trade = SandboxTrade.objects.get(out_trade_no="CX20261123000001")
    assert trade.amount == Decimal("88.00")
    assert trade.notify_url == "http://testserver/payments/notify/alipay/"
    page = client.get(urlsplit(result.action.url).path)
    assert page.status_code == 200
    assert (
        b'data-testid="sandbox-approve"' in page.content
        and b'data-testid="sandbox-decline"' in page.content
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("device", "method", "product"),
    [
        ("phone", "alipay.trade.wap.pay", "QUICK_WAP_WAY"),
        ("unknown", "alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
    ],
)
def test_phone_and_unknown_devices_get_a_signed_gateway_redirect(
    client, backend, device, method, product
):
    result = backend.create(_request(device=device, return_url="http://testserver/orders/1/"))
    assert result.action.type == "redirect"
    url = urlsplit(result.action.url)
    assert url.path == "/sandbox/alipay/gateway.do"
    params = dict(parse_qsl(url.query))
    assert (
        params["method"] == method and json.loads(params["biz_content"])["product_code"] == product
    )
    assert params["return_url"] == "http://testserver/orders/1/"
    assert not SandboxTrade.objects.exists()  # Alipay opens the trade when the buyer arrives
    response = client.get(url.path + "?" + url.query)
    trade = SandboxTrade.objects.get(out_trade_no="CX20261123000001")
    assert (
        response.status_code == 302
        and response["Location"] == f"/sandbox/alipay/cashier/{trade.trade_no}/"
    )
    approved = client.post(response["Location"], {"decision": "approve"})
    assert approved.status_code == 302 and approved["Location"] == "http://testserver/orders/1/"


@pytest.mark.django_db
def test_a_tampered_gateway_link_is_refused_on_alipays_error_page(client, backend):
    result = backend.create(_request(device="unknown"))
    tampered = result.action.url.replace("88.00", "0.01")
    page = client.get(tampered)
    assert "isv.invalid-signature" in page.content.decode()
    assert not SandboxTrade.objects.exists()


@pytest.mark.django_db
def test_reopening_the_same_out_trade_no_with_another_amount_is_refused(backend):
    backend.create(_request(amount="88.00"))
    with pytest.raises(ChannelDeclined) as caught:
        backend.create(_request(amount="99.00"))
    assert caught.value.code == "ACQ.CONTEXT_INCONSISTENT"


@pytest.mark.django_db
def test_non_cny_is_declined_before_calling_alipay(backend):
    request = CreateRequest(
        out_trade_no="X1",
        amount=Decimal("1.00"),
        currency="USD",
        subject="x",
        method="alipay",
        expires_at=timezone.now(),
    )
    with pytest.raises(ChannelDeclined) as caught:
        backend.create(request)
    assert caught.value.code == "CURRENCY_NOT_SUPPORTED"


@pytest.mark.django_db
def test_a_wrong_application_key_is_refused_by_the_gateway(account):
    config = config_for(account)
    wrong = AccountConfig(
        **{
            **config.__dict__,
            "credentials": {
                **config.credentials,
                "app_private_key": keys.generate_rsa_private_pem(),
            },
        }
    )
    with pytest.raises(ChannelDeclined) as caught:
        AlipayBackend(wrong).create(_request())
    assert caught.value.code == "isv.invalid-signature"


@pytest.mark.django_db
def test_an_answer_that_does_not_verify_with_alipays_key_is_not_trusted(account):
    config = config_for(account)
    other_public = keys.public_pem_of(keys.generate_rsa_private_pem())
    wrong = AccountConfig(
        **{
            **config.__dict__,
            "credentials": {**config.credentials, "alipay_public_key": other_public},
        }
    )
    with pytest.raises(ChannelUnavailable) as caught:
        AlipayBackend(wrong).create(_request())
    assert caught.value.code == "RESPONSE_SIGNATURE_INVALID"


@pytest.mark.django_db
def test_fault_switch_down_makes_the_channel_unavailable(backend):
    SandboxFault.objects.create(channel="alipay", down=True)
    with pytest.raises(ChannelUnavailable):
        backend.create(_request())
    with pytest.raises(ChannelUnavailable):
        backend.query(out_trade_no="CX20261123000001")


# ---------------------------------------------------------------------------------------------
# Cashier → notification → parse_notification


@pytest.mark.django_db
def test_approval_enqueues_a_signed_trade_success_notification(client, backend):
    trade = _pay(client, backend)
    note = _notification(trade)
    assert note.url == "http://testserver/payments/notify/alipay/"
    assert note.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    notice = backend.parse_notification(headers=note.headers, body=bytes(note.body))
    assert notice.kind == "payment" and notice.outcome == "succeeded"
    assert notice.amount == Decimal("88.00") and notice.currency == "CNY"
    assert notice.out_trade_no == "CX20261123000001" and notice.channel_trade_no == trade.trade_no
    assert notice.merchant_id == PID
    assert notice.occurred_at is not None


@pytest.mark.django_db
def test_declining_closes_the_trade_and_notifies_trade_closed(client, backend):
    backend.create(_request())
    trade = SandboxTrade.objects.get()
    client.post(
        f"/sandbox/alipay/cashier/{trade.trade_no}/",
        {"decision": "decline", "reason": "insufficient_funds"},
    )
    trade.refresh_from_db()
    assert trade.decline_code == "ACQ.BUYER_BALANCE_NOT_ENOUGH"
    notice = backend.parse_notification(headers={}, body=bytes(_notification(trade).body))
    assert notice.outcome == "closed"
    assert backend.query(out_trade_no=trade.out_trade_no).outcome == "closed"


@pytest.mark.django_db
def test_a_timeout_sends_nothing_and_the_trade_keeps_waiting(client, backend):
    backend.create(_request())
    trade = SandboxTrade.objects.get()
    client.post(
        f"/sandbox/alipay/cashier/{trade.trade_no}/", {"decision": "decline", "reason": "timeout"}
    )
    assert not SandboxNotification.objects.exists()
    assert backend.query(out_trade_no=trade.out_trade_no).outcome == "pending"


@pytest.mark.django_db
def test_approving_notifies_whatever_decline_reason_the_form_also_carries(client, backend):
    backend.create(_request())
    trade = SandboxTrade.objects.get()
    client.post(
        f"/sandbox/alipay/cashier/{trade.trade_no}/", {"decision": "approve", "reason": "timeout"}
    )
    trade.refresh_from_db()
    assert trade.status == "paid" and SandboxNotification.objects.count() == 1


@pytest.mark.django_db
def test_notification_with_a_bad_signature_is_rejected(client, backend):
    _pay(client, backend)
    params = dict(parse_qsl(bytes(_notification(None).body).decode()))
    params["sign"] = params["sign"][:-8] + "AAAAAAA="
    with pytest.raises(NotificationRejected, match="bad signature"):
        backend.parse_notification(headers={}, body=urlencode(params).encode())


@pytest.mark.django_db
def test_notification_with_a_swapped_amount_is_rejected(client, backend):
    _pay(client, backend)
    params = dict(parse_qsl(bytes(_notification(None).body).decode()))
    params["total_amount"] = "0.01"
    with pytest.raises(NotificationRejected, match="bad signature"):
        backend.parse_notification(headers={}, body=urlencode(params).encode())


@pytest.mark.django_db
def test_notification_for_another_merchant_is_rejected(client, backend):
    _pay(client, backend)
    params = dict(parse_qsl(bytes(_notification(None).body).decode()))
    params["seller_id"] = "2088000000000001"
    with pytest.raises(NotificationRejected, match="another merchant"):
        backend.parse_notification(headers={}, body=_resign(params))


@pytest.mark.django_db
def test_notification_for_another_app_is_rejected(client, backend):
    _pay(client, backend)
    params = dict(parse_qsl(bytes(_notification(None).body).decode()))
    params["app_id"] = "2021999999999999"
    with pytest.raises(NotificationRejected, match="app_id"):
        backend.parse_notification(headers={}, body=_resign(params))


@pytest.mark.django_db
def test_notification_with_an_unknown_status_or_type_is_rejected(client, backend):
    _pay(client, backend)
    params = dict(parse_qsl(bytes(_notification(None).body).decode()))
    with pytest.raises(NotificationRejected, match="unknown trade_status"):
        backend.parse_notification(
            headers={}, body=_resign({**params, "trade_status": "TRADE_PENDING"})
        )
    with pytest.raises(NotificationRejected, match="unknown notify_type"):
        backend.parse_notification(
            headers={}, body=_resign({**params, "notify_type": "batch_trans_notify"})
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body", [b"", b"\xff\xfe\x00", b"not a form", b"trade_status=TRADE_SUCCESS&out_trade_no=1"]
)
def test_malformed_notifications_are_rejected(backend, body):
    with pytest.raises(NotificationRejected, match="malformed"):
        backend.parse_notification(headers={}, body=body)


@pytest.mark.django_db
def test_an_rsa1_notification_is_rejected(client, backend):
    _pay(client, backend)
    params = dict(parse_qsl(bytes(_notification(None).body).decode()))
    params["sign_type"] = "RSA"
    with pytest.raises(NotificationRejected, match="sign_type"):
        backend.parse_notification(headers={}, body=urlencode(params).encode())


def test_a_refund_flavoured_trade_status_sync_becomes_a_refund_notice(client, backend, account):
    trade = _pay(client, backend)
    backend.refund(_refund(trade, "RF1", "8.00"))
    params = {
        "notify_time": "2026-11-23 10:00:00",
        "notify_type": "trade_status_sync",
        "notify_id": "n1",
        "app_id": account.app_id,
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "seller_id": PID,
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "88.00",
        "refund_fee": "8.00",
        "gmt_refund": "2026-11-23 09:59:58.123",
        "out_biz_no": "RF1",
        "gmt_payment": "2026-11-23 09:00:00",
    }
    notice = backend.parse_notification(headers={}, body=_resign(params))
    assert (
        notice.kind == "refund" and notice.refund_no == "RF1" and notice.amount == Decimal("8.00")
    )
    assert notice.occurred_at == dt.datetime(
        2026, 11, 23, 9, 59, 58, 123000, tzinfo=dt.timezone(dt.timedelta(hours=8))
    )


def test_reply_is_the_literal_success_or_fail():
    backend = AlipayBackend(AccountConfig(code="alipay", backend="alipay", base_url="http://x/"))
    assert backend.notification_reply(accepted=True).body == b"success"
    assert backend.notification_reply(accepted=False).body == b"fail"


def test_sandbox_retries_on_alipays_schedule_until_success():
    provider = sandbox.AlipaySandbox()
    assert provider.retry_schedule == (120, 600, 600, 3600, 7200, 21600, 54000)
    assert provider.notification_accepted(200, b"success")
    assert not provider.notification_accepted(200, b"fail")
    assert not provider.notification_accepted(200, b'{"status":"success"}')
    assert not provider.notification_accepted(500, b"success")
    assert {d.key for d in provider.declines} == {
        "insufficient_funds",
        "phone_mismatch",
        "risk",
        "timeout",
    }


# ---------------------------------------------------------------------------------------------
# Query, close, refund


@pytest.mark.django_db
def test_query_follows_the_trade(client, backend):
    assert backend.query(out_trade_no="NEVER").error_code == "ACQ.TRADE_NOT_EXIST"
    backend.create(_request())
    waiting = backend.query(out_trade_no="CX20261123000001")
    assert waiting.outcome == "pending" and waiting.amount == Decimal("88.00")
    trade = _pay(client, backend, out_trade_no="CX2")
    paid = backend.query(out_trade_no="CX2")
    assert (
        paid.outcome == "succeeded"
        and paid.channel_trade_no == trade.trade_no
        and paid.paid_at is not None
    )
    assert backend.query(out_trade_no="", channel_trade_no=trade.trade_no).outcome == "succeeded"


@pytest.mark.django_db
def test_close_closes_an_unpaid_trade_and_refuses_a_paid_one(client, backend):
    backend.create(_request())
    backend.close(out_trade_no="CX20261123000001")
    assert backend.query(out_trade_no="CX20261123000001").outcome == "closed"
    backend.close(out_trade_no="NEVER-OPENED")  # nothing to close is fine
    _pay(client, backend, out_trade_no="CX2")
    with pytest.raises(ChannelDeclined) as caught:
        backend.close(out_trade_no="CX2")
    assert caught.value.code == "ACQ.TRADE_STATUS_ERROR"


def _refund(trade: SandboxTrade, refund_no: str, amount: str) -> RefundRequest:
    return RefundRequest(
        refund_no=refund_no,
        out_trade_no=trade.out_trade_no,
        channel_trade_no=trade.trade_no,
        amount=Decimal(amount),
        total_amount=trade.amount,
        currency="CNY",
        reason="卡密无效",
    )


@pytest.mark.django_db
def test_partial_then_full_refund_is_idempotent_by_refund_no(client, backend):
    trade = _pay(client, backend)
    assert backend.refund(_refund(trade, "RF1", "8.00")).outcome == "succeeded"
    assert (
        backend.refund(_refund(trade, "RF1", "8.00")).outcome == "succeeded"
    )  # repeat: fund_change N, confirmed by query
    assert SandboxRefund.objects.filter(trade=trade).count() == 1
    assert backend.refund(_refund(trade, "RF2", "80.00")).outcome == "succeeded"
    assert trade.refunded == Decimal("88.00")
    assert backend.query_refund(_refund(trade, "RF2", "80.00")).outcome == "succeeded"
    # paid, then fully refunded: TRADE_CLOSED with a payment date is still a succeeded payment
    after = backend.query(out_trade_no=trade.out_trade_no)
    assert after.raw["trade_status"] == "TRADE_CLOSED" and after.outcome == "succeeded"


@pytest.mark.django_db
def test_refund_beyond_what_is_left_fails_with_alipays_code(client, backend):
    trade = _pay(client, backend)
    result = backend.refund(_refund(trade, "RF1", "88.01"))
    assert result.outcome == "failed" and result.error_code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert backend.query_refund(_refund(trade, "RF-NONE", "1.00")).error_code == "REFUND_NOT_FOUND"


@pytest.mark.django_db
def test_refund_of_an_unpaid_trade_fails(backend):
    backend.create(_request())
    trade = SandboxTrade.objects.get()
    assert backend.refund(_refund(trade, "RF1", "1.00")).error_code == "ACQ.TRADE_STATUS_ERROR"


def test_every_decline_code_and_refusal_has_a_bilingual_reason():
    for key in (
        "ACQ.BUYER_BALANCE_NOT_ENOUGH",
        "ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT",
        "ACQ.PAYMENT_REQUEST_HAS_RISK",
        "ACQ.TRADE_HAS_CLOSE",
    ):
        spec = AlipayBackend.error_codes[key]
        assert spec.reason_zh and spec.reason_en and spec.guidance_zh and spec.guidance_en
        assert spec.counts_against_channel is False
    for decline in sandbox.AlipaySandbox.declines:
        assert decline.code in AlipayBackend.error_codes
    assert AlipayBackend.error_codes["isv.invalid-signature"].counts_against_channel is True


# ---------------------------------------------------------------------------------------------
# Refund notices carry the trade's running refund total; empty values are signed


def _refund_notice_params(account, trade: SandboxTrade, refund_no: str, refund_fee: str) -> dict:
    return {
        "notify_time": "2026-11-23 10:00:00",
        "notify_type": "trade_status_sync",
        "notify_id": "n2",
        "app_id": account.app_id,
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "seller_id": PID,
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "88.00",
        "refund_fee": refund_fee,
        "gmt_refund": "2026-11-23 09:59:58.123",
        "out_biz_no": refund_no,
        "gmt_payment": "2026-11-23 09:00:00",
    }


def _sdk_signed(params: dict) -> bytes:
    """Sign notification params as Alipay does and python-alipay-sdk verifies: every parameter
    but sign and sign_type, empty values kept as ``k=``."""
    params = {k: v for k, v in params.items() if k != "sign"}
    content = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign_type")
    return urlencode({**params, "sign": sandbox_protocol.sign(content)}).encode()


@pytest.mark.django_db
def test_a_second_partial_refund_notice_with_the_running_total_is_this_refunds_amount(
    client, backend, account
):
    trade = _pay(client, backend)
    assert backend.refund(_refund(trade, "RF1", "30.00")).outcome == "succeeded"
    assert backend.refund(_refund(trade, "RF2", "20.00")).outcome == "succeeded"
    params = _refund_notice_params(account, trade, "RF2", "50.00")
    notice = backend.parse_notification(headers={}, body=_resign(params))
    assert (notice.kind, notice.refund_no, notice.outcome, notice.amount) == (
        "refund",
        "RF2",
        "succeeded",
        Decimal("20.00"),
    )


@pytest.mark.django_db
def test_a_refund_notice_whose_running_total_is_below_the_refund_is_rejected(
    client, backend, account
):
    trade = _pay(client, backend)
    backend.refund(_refund(trade, "RF1", "30.00"))
    params = _refund_notice_params(account, trade, "RF1", "29.99")
    with pytest.raises(NotificationRejected, match="refund_fee"):
        backend.parse_notification(headers={}, body=_resign(params))


@pytest.mark.django_db
def test_a_refund_notice_for_a_refund_alipay_does_not_know_is_rejected(client, backend, account):
    trade = _pay(client, backend)
    params = _refund_notice_params(account, trade, "RF-NEVER", "8.00")
    with pytest.raises(NotificationRejected, match="RF-NEVER"):
        backend.parse_notification(headers={}, body=_resign(params))


@pytest.mark.django_db
def test_a_notice_carrying_an_empty_value_verifies_as_the_sdk_signs_it(client, backend, account):
    _pay(client, backend)
    params = dict(parse_qsl(bytes(_notification(None).body).decode()))
    params["body"] = ""  # Alipay sends optional fields empty and signs them as "body="
    body = _sdk_signed(params)
    data = dict(parse_qsl(body.decode(), keep_blank_values=True))
    signature = data.pop("sign")
    sdk = _sdk(account.credentials["app_private_key"], account.credentials["alipay_public_key"])
    assert sdk.verify(dict(data), signature)
    notice = backend.parse_notification(headers={}, body=body)
    assert notice.kind == "payment" and notice.outcome == "succeeded"


@pytest.mark.django_db
def test_a_notice_signed_without_its_empty_value_is_rejected(client, backend):
    _pay(client, backend)
    params = dict(parse_qsl(bytes(_notification(None).body).decode()))
    params["body"] = ""
    with pytest.raises(NotificationRejected, match="bad signature"):
        backend.parse_notification(headers={}, body=_resign(params))


ALIPAY_APP_UA = (
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 ChannelId(1) NebulaSDK/1.8.100112 Nebula "
    "AlipayDefined(nt:WIFI,ws:1024|1366|2.0) AliApp(AP/10.5.86) AlipayClient/10.5.86.6000 "
    "Language/zh-Hans Region/CN"
)


@pytest.mark.django_db
@pytest.mark.parametrize("device", ["phone", "desktop", "unknown"])
def test_inside_alipays_app_it_is_always_wap_pay_in_the_same_page_never_a_qr(
    client, backend, device
):
    """A tablet in Alipay's app counts as a desktop for ordering, yet a QR there is useless:
    the app's own cashier (wap.pay) opens in the same page and comes back to the order."""
    result = backend.create(
        CreateRequest(
            out_trade_no="CX20261204APP001",
            amount=Decimal("88.00"),
            currency="CNY",
            subject="京东E卡 100元",
            method="alipay",
            expires_at=timezone.now() + dt.timedelta(minutes=15),
            client=ClientInfo(device=device, user_agent=ALIPAY_APP_UA),
            return_url="http://testserver/orders/1/",
        )
    )
    assert result.action.type == "redirect" and not result.action.qr
    params = dict(parse_qsl(urlsplit(result.action.url).query))
    biz = json.loads(params["biz_content"])
    assert params["method"] == "alipay.trade.wap.pay" and biz["product_code"] == "QUICK_WAP_WAY"
    assert biz["quit_url"] == params["return_url"] == "http://testserver/orders/1/"
