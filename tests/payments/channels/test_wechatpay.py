"""WeChat Pay APIv3 (CHANNELS.md §2): Authorization signing and platform verification
cross-checked with wechatpayv3, AES-256-GCM against the published vectors and samples, the
backend against the in-process sandbox, and notifications — intact and tampered."""

import base64
import datetime as dt
import json
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from django.utils import timezone
from wechatpayv3 import utils as sdk

from payments.accounts import backend_for, config_for
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
from payments.channels.wechatpay import WechatPayBackend
from payments.channels.wechatpay.wire import (
    authorization,
    canonical_url,
    decrypt_resource,
    request_message,
    sign_message,
)
from payments.sandbox import keys
from payments.sandbox import wechatpay as sandbox
from payments.sandbox.models import (
    SandboxFault,
    SandboxMerchant,
    SandboxNotification,
    SandboxRefund,
    SandboxTrade,
)
from payments.sandbox.wechatpay import protocol as sandbox_protocol
from tests.payments.factories import sandbox_account

DATA = Path(__file__).resolve().parents[2] / "data" / "wechatpay"
MCHID = "1900000109"


def _request(
    out_trade_no="CX20261123000001", amount="88.00", device="desktop", ip="", **kw
) -> CreateRequest:
    return CreateRequest(
        out_trade_no=out_trade_no,
        amount=Decimal(amount),
        currency="CNY",
        subject="京东E卡 100元",
        method="wechatpay",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        client=ClientInfo(device=device, ip=ip),
        **kw,
    )


@pytest.fixture
def account(db):
    return sandbox_account("wechatpay")


@pytest.fixture
def backend(account) -> WechatPayBackend:
    return backend_for(account)


def _pay(client, backend, out_trade_no="CX20261123000001", amount="88.00") -> SandboxTrade:
    backend.create(_request(out_trade_no, amount))
    trade = SandboxTrade.objects.get(channel="wechatpay", out_trade_no=out_trade_no)
    client.post(f"/sandbox/wechatpay/cashier/{trade.trade_no}/", {"decision": "approve"})
    trade.refresh_from_db()
    assert trade.status == SandboxTrade.Status.PAID
    return trade


def _latest(event_type: str) -> SandboxNotification:
    notes = [
        n
        for n in SandboxNotification.objects.filter(channel="wechatpay").order_by("pk")
        if json.loads(bytes(n.body))["event_type"] == event_type
    ]
    return notes[-1]


def _signed(body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        **sandbox_protocol.sign_headers(body, timestamp=timestamp),
    }


def _envelope(
    resource: dict, apiv3_key: str, event_type="TRANSACTION.SUCCESS", original_type="transaction"
) -> bytes:
    sealed = sandbox_protocol.encrypt_resource(
        json.dumps(resource, ensure_ascii=False).encode(), apiv3_key, original_type
    )
    return json.dumps(
        {
            "id": "e1",
            "create_time": "2026-11-23T10:00:00+08:00",
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "支付成功",
            "resource": {"original_type": original_type, **sealed},
        },
        ensure_ascii=False,
    ).encode()


# ---------------------------------------------------------------------------------------------
# Signing, verification, encryption


def test_backend_is_registered_for_the_wechatpay_method():
    assert backend_class("wechatpay") is WechatPayBackend
    assert WechatPayBackend.methods == ("wechatpay",)


def test_request_message_ends_every_line_with_a_newline_even_for_an_empty_body():
    assert request_message(
        "GET", "/v3/bill/tradebill?bill_date=2026-11-22", "1700000000", "N1", ""
    ) == ("GET\n/v3/bill/tradebill?bill_date=2026-11-22\n1700000000\nN1\n\n")
    assert canonical_url(
        "https://api.mch.weixin.qq.com/v3/pay/transactions/out-trade-no/A1?mchid=1900000109"
    ) == ("/v3/pay/transactions/out-trade-no/A1?mchid=1900000109")


def test_authorization_is_identical_to_wechatpayv3(monkeypatch):
    private_pem = keys.generate_rsa_private_pem()
    body = json.dumps({"mchid": MCHID, "description": "礼品卡"}, ensure_ascii=False)
    monkeypatch.setattr(sdk.time, "time", lambda: 1700000000)
    theirs = sdk.build_authorization(
        "/v3/pay/transactions/native",
        "POST",
        MCHID,
        "SERIAL1",
        sdk.load_private_key(private_pem),
        data=body,
        nonce_str="NONCE1",
    )
    ours = authorization(
        mchid=MCHID,
        serial_no="SERIAL1",
        private_key=private_pem,
        method="POST",
        url="https://api.mch.weixin.qq.com/v3/pay/transactions/native",
        body=body,
        timestamp="1700000000",
        nonce="NONCE1",
    )
    attrs = lambda header: dict(part.split("=", 1) for part in header.split(" ", 1)[1].split(","))  # noqa: E731
    assert ours.split(" ", 1)[0] == theirs.split(" ", 1)[0] == "WECHATPAY2-SHA256-RSA2048"
    assert attrs(ours) == attrs(theirs)


@pytest.mark.django_db
def test_sandbox_answers_verify_with_wechatpayv3(client, backend, account):
    backend.create(_request())
    url = "http://testserver/sandbox/wechatpay/v3/pay/transactions/out-trade-no/CX20261123000001?mchid=1900000109"
    header = authorization(
        mchid=MCHID,
        serial_no=account.credentials["serial_no"],
        private_key=account.credentials["private_key"],
        method="GET",
        url=url,
        body="",
    )
    response = client.get(urlsplit(url).path + "?" + urlsplit(url).query, HTTP_AUTHORIZATION=header)
    assert response.status_code == 200
    public_key = sdk.load_public_key(account.credentials["platform_public_key"])
    assert sdk.rsa_verify(
        response["Wechatpay-Timestamp"],
        response["Wechatpay-Nonce"],
        response.content.decode(),
        response["Wechatpay-Signature"],
        public_key,
    )
    assert response["Wechatpay-Serial"] == account.credentials["platform_public_key_id"]


@pytest.mark.django_db
def test_sandbox_notification_verifies_and_decrypts_with_wechatpayv3(client, backend, account):
    _pay(client, backend)
    note = _latest("TRANSACTION.SUCCESS")
    body = bytes(note.body).decode()
    public_key = sdk.load_public_key(account.credentials["platform_public_key"])
    assert sdk.rsa_verify(
        note.headers["Wechatpay-Timestamp"],
        note.headers["Wechatpay-Nonce"],
        body,
        note.headers["Wechatpay-Signature"],
        public_key,
    )
    resource = json.loads(body)["resource"]
    plain = sdk.aes_decrypt(
        resource["nonce"],
        resource["ciphertext"],
        resource["associated_data"],
        account.credentials["apiv3_key"],
    )
    assert json.loads(plain)["out_trade_no"] == "CX20261123000001"


def test_aead_test_vector_of_wechatpay_java_decrypts():
    vector = json.loads((DATA / "aead_aes_256_gcm_test_vector__wechatpay-java.json").read_text())
    plain = decrypt_resource(
        ciphertext=vector["ciphertext_b64"],
        nonce=vector["nonce"],
        associated_data=vector["associated_data"],
        apiv3_key=vector["apiv3_key"],
    )
    assert plain.decode() == vector["plaintext"]


@pytest.mark.parametrize(
    ("body", "plaintext"),
    [
        (
            "DERIVED_v3_notification_TRANSACTION.SUCCESS_body.json",
            "DERIVED_v3_notification_TRANSACTION.SUCCESS_plaintext.json",
        ),
        (
            "v3_notification_REFUND.SUCCESS_body__gunsluo_wechatpay-go_notify_test.json",
            "v3_notification_REFUND.SUCCESS_plaintext.json",
        ),
    ],
)
def test_the_real_notification_samples_decrypt_with_the_published_apiv3_key(body, plaintext):
    key = json.loads((DATA / "v3_notification_apiv3_key__gunsluo_wechatpay-go.json").read_text())[
        "apiv3_key"
    ]
    resource = json.loads((DATA / body).read_text())["resource"]
    ours = decrypt_resource(
        ciphertext=resource["ciphertext"],
        nonce=resource["nonce"],
        associated_data=resource["associated_data"],
        apiv3_key=key,
    )
    theirs = sdk.aes_decrypt(
        resource["nonce"], resource["ciphertext"], resource["associated_data"], key
    )
    assert json.loads(ours) == json.loads(theirs) == json.loads((DATA / plaintext).read_text())


def _sample_backend(db) -> WechatPayBackend:
    """An account of the sample's merchant, verifying with the sandbox platform key."""
    credentials = sandbox.WechatPaySandbox().provision(
        merchant_id="1601959334", app_id="wx81be3101902f7cb2"
    )
    credentials["apiv3_key"] = json.loads(
        (DATA / "v3_notification_apiv3_key__gunsluo_wechatpay-go.json").read_text()
    )["apiv3_key"]
    return WechatPayBackend(
        AccountConfig(
            code="wx-sample",
            backend="wechatpay",
            base_url="http://testserver/sandbox/wechatpay/",
            merchant_id="1601959334",
            app_id="wx81be3101902f7cb2",
            credentials=credentials,
        )
    )


def test_the_real_transaction_sample_parses_into_a_payment_notice(db):
    backend = _sample_backend(db)
    body = (DATA / "DERIVED_v3_notification_TRANSACTION.SUCCESS_body.json").read_bytes()
    notice = backend.parse_notification(headers=_signed(body), body=body)
    assert notice.kind == "payment" and notice.outcome == "succeeded"
    assert (
        notice.out_trade_no == "S20210128170702357723"
        and notice.channel_trade_no == "4200000925202101284997714292"
    )
    assert (
        notice.amount == Decimal("0.01")
        and notice.currency == "CNY"
        and notice.merchant_id == "1601959334"
    )
    assert notice.occurred_at == dt.datetime(
        2021, 1, 28, 17, 7, 11, tzinfo=dt.timezone(dt.timedelta(hours=8))
    )


def test_the_real_refund_sample_parses_into_a_refund_notice(db):
    backend = _sample_backend(db)
    body = (
        DATA / "v3_notification_REFUND.SUCCESS_body__gunsluo_wechatpay-go_notify_test.json"
    ).read_bytes()
    notice = backend.parse_notification(headers=_signed(body), body=body)
    assert (
        notice.kind == "refund"
        and notice.outcome == "succeeded"
        and notice.amount == Decimal("0.01")
    )
    assert (
        notice.refund_no == "S20210201151309277501"
        and notice.channel_refund_no == "50300807092021020105990201735"
    )


def test_the_real_sample_with_the_wrong_apiv3_key_is_rejected(db):
    backend = _sample_backend(db)
    config = backend.account
    wrong = WechatPayBackend(
        AccountConfig(
            **{**config.__dict__, "credentials": {**config.credentials, "apiv3_key": "X" * 32}}
        )
    )
    body = (DATA / "DERIVED_v3_notification_TRANSACTION.SUCCESS_body.json").read_bytes()
    with pytest.raises(NotificationRejected, match="decrypt"):
        wrong.parse_notification(headers=_signed(body), body=body)


# ---------------------------------------------------------------------------------------------
# Creating


@pytest.mark.django_db
def test_desktop_gets_a_native_code_url_that_leads_to_the_cashier(client, backend):
    result = backend.create(_request())
    assert result.action.type == "qr" and result.action.qr == result.action.url
    trade = SandboxTrade.objects.get()
    assert trade.amount == Decimal("88.00") and trade.extra["trade_type"] == "NATIVE"
    assert trade.notify_url == "http://testserver/payments/notify/wechatpay/"
    page = client.get(urlsplit(result.action.url).path)
    assert (
        b'data-testid="sandbox-approve"' in page.content
        and b'data-testid="sandbox-decline"' in page.content
    )


@pytest.mark.django_db
def test_a_phone_with_a_known_ip_gets_an_h5_redirect(backend):
    result = backend.create(
        _request(device="phone", ip="203.0.113.7", return_url="http://testserver/orders/1/")
    )
    assert result.action.type == "redirect"
    assert parse_qs(urlsplit(result.action.url).query)["redirect_url"] == [
        "http://testserver/orders/1/"
    ]
    assert SandboxTrade.objects.get().extra["trade_type"] == "MWEB"


@pytest.mark.django_db
def test_a_phone_without_an_ip_falls_back_to_native(backend):
    assert backend.create(_request(device="phone")).action.type == "qr"


@pytest.mark.django_db
def test_the_same_order_number_with_other_details_is_refused(backend):
    backend.create(_request(amount="88.00"))
    assert backend.create(_request(amount="88.00")).action.type == "qr"  # a repeat is harmless
    with pytest.raises(ChannelDeclined) as caught:
        backend.create(_request(amount="99.00"))
    assert caught.value.code == "OUT_TRADE_NO_USED"


@pytest.mark.django_db
def test_a_wrong_merchant_key_is_refused_with_sign_error(account):
    config = config_for(account)
    wrong = AccountConfig(
        **{
            **config.__dict__,
            "credentials": {**config.credentials, "private_key": keys.generate_rsa_private_pem()},
        }
    )
    with pytest.raises(ChannelDeclined) as caught:
        WechatPayBackend(wrong).create(_request())
    assert caught.value.code == "SIGN_ERROR"


@pytest.mark.django_db
def test_a_stale_request_timestamp_is_refused(client, account):
    url = (
        "http://testserver/sandbox/wechatpay/v3/pay/transactions/out-trade-no/CX1?mchid=1900000109"
    )
    header = authorization(
        mchid=MCHID,
        serial_no=account.credentials["serial_no"],
        private_key=account.credentials["private_key"],
        method="GET",
        url=url,
        body="",
        timestamp=str(int(time.time()) - 301),
    )
    response = client.get(
        "/sandbox/wechatpay/v3/pay/transactions/out-trade-no/CX1?mchid=1900000109",
        HTTP_AUTHORIZATION=header,
    )
    assert response.status_code == 401 and response.json()["code"] == "SIGN_ERROR"


@pytest.mark.django_db
def test_a_request_signed_for_another_url_is_refused(client, account):
    url = (
        "http://testserver/sandbox/wechatpay/v3/pay/transactions/out-trade-no/CX1?mchid=1900000109"
    )
    header = authorization(
        mchid=MCHID,
        serial_no=account.credentials["serial_no"],
        private_key=account.credentials["private_key"],
        method="GET",
        url=url,
        body="",
    )
    response = client.get(
        "/sandbox/wechatpay/v3/pay/transactions/out-trade-no/CX2?mchid=1900000109",
        HTTP_AUTHORIZATION=header,
    )
    assert response.status_code == 401


@pytest.mark.django_db
def test_an_answer_signed_by_another_platform_key_is_not_trusted(account):
    config = config_for(account)
    other = keys.public_pem_of(keys.generate_rsa_private_pem())
    wrong = AccountConfig(
        **{**config.__dict__, "credentials": {**config.credentials, "platform_public_key": other}}
    )
    with pytest.raises(ChannelUnavailable) as caught:
        WechatPayBackend(wrong).create(_request())
    assert caught.value.code == "RESPONSE_SIGNATURE_INVALID"


@pytest.mark.django_db
def test_fault_switch_down_makes_the_channel_unavailable(backend):
    SandboxFault.objects.create(channel="wechatpay", down=True)
    with pytest.raises(ChannelUnavailable):
        backend.create(_request())
    with pytest.raises(ChannelUnavailable):
        backend.query(out_trade_no="CX20261123000001")


# ---------------------------------------------------------------------------------------------
# Cashier → notification → parse_notification


@pytest.mark.django_db
def test_approval_enqueues_a_signed_encrypted_transaction_success(client, backend):
    trade = _pay(client, backend)
    note = _latest("TRANSACTION.SUCCESS")
    assert note.url == "http://testserver/payments/notify/wechatpay/"
    notice = backend.parse_notification(headers=note.headers, body=bytes(note.body))
    assert notice.kind == "payment" and notice.outcome == "succeeded"
    assert notice.amount == Decimal("88.00") and notice.currency == "CNY"
    assert notice.channel_trade_no == trade.trade_no and notice.merchant_id == MCHID


@pytest.mark.django_db
def test_django_meta_style_headers_are_understood(client, backend):
    _pay(client, backend)
    note = _latest("TRANSACTION.SUCCESS")
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in note.headers.items()}
    assert backend.parse_notification(headers=meta, body=bytes(note.body)).outcome == "succeeded"


@pytest.mark.django_db
def test_a_decline_sends_nothing_and_the_order_reads_payerror(client, backend):
    backend.create(_request())
    trade = SandboxTrade.objects.get()
    client.post(
        f"/sandbox/wechatpay/cashier/{trade.trade_no}/",
        {"decision": "decline", "reason": "insufficient_funds"},
    )
    assert not SandboxNotification.objects.exists()
    result = backend.query(out_trade_no=trade.out_trade_no)
    assert result.outcome == "failed" and result.error_code == "PAYERROR"
    assert "余额不足" in result.raw["trade_state_desc"]


@pytest.mark.django_db
def test_a_timeout_leaves_the_order_userpaying(client, backend):
    backend.create(_request())
    trade = SandboxTrade.objects.get()
    client.post(
        f"/sandbox/wechatpay/cashier/{trade.trade_no}/",
        {"decision": "decline", "reason": "timeout"},
    )
    assert backend.query(out_trade_no=trade.out_trade_no).outcome == "pending"


@pytest.mark.django_db
def test_a_stale_notification_is_rejected(client, backend):
    _pay(client, backend)
    body = bytes(_latest("TRANSACTION.SUCCESS").body)
    with pytest.raises(NotificationRejected, match="stale timestamp"):
        backend.parse_notification(
            headers=_signed(body, timestamp=int(time.time()) - 300), body=body
        )
    with pytest.raises(NotificationRejected, match="stale timestamp"):
        backend.parse_notification(
            headers=_signed(body, timestamp=int(time.time()) + 330), body=body
        )
    assert (
        backend.parse_notification(
            headers=_signed(body, timestamp=int(time.time()) - 290), body=body
        ).outcome
        == "succeeded"
    )


@pytest.mark.django_db
def test_retries_are_signed_afresh_so_late_deliveries_stay_valid(client, backend):
    _pay(client, backend)
    note = _latest("TRANSACTION.SUCCESS")
    note.headers = _signed(bytes(note.body), timestamp=int(time.time()) - 3600)
    with pytest.raises(NotificationRejected, match="stale"):
        backend.parse_notification(headers=note.headers, body=bytes(note.body))
    fresh = sandbox.WechatPaySandbox().delivery_headers(note)
    assert backend.parse_notification(headers=fresh, body=bytes(note.body)).outcome == "succeeded"


@pytest.mark.django_db
def test_a_bad_signature_is_rejected(client, backend):
    _pay(client, backend)
    note = _latest("TRANSACTION.SUCCESS")
    headers = {**note.headers, "Wechatpay-Signature": base64.b64encode(b"\x00" * 256).decode()}
    with pytest.raises(NotificationRejected, match="bad signature"):
        backend.parse_notification(headers=headers, body=bytes(note.body))
    probe = {**note.headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/abc"}
    with pytest.raises(NotificationRejected, match="SIGNTEST"):
        backend.parse_notification(headers=probe, body=bytes(note.body))


@pytest.mark.django_db
def test_a_swapped_amount_is_rejected(client, backend, account):
    _pay(client, backend)
    note = _latest("TRANSACTION.SUCCESS")
    resource = json.loads(bytes(note.body))["resource"]
    data = json.loads(
        decrypt_resource(
            ciphertext=resource["ciphertext"],
            nonce=resource["nonce"],
            associated_data=resource["associated_data"],
            apiv3_key=account.credentials["apiv3_key"],
        )
    )
    data["amount"]["total"] = 1
    forged = _envelope(data, account.credentials["apiv3_key"])
    with pytest.raises(NotificationRejected, match="bad signature"):
        backend.parse_notification(headers=note.headers, body=forged)


@pytest.mark.django_db
def test_an_unknown_platform_serial_is_rejected(client, backend):
    _pay(client, backend)
    note = _latest("TRANSACTION.SUCCESS")
    with pytest.raises(NotificationRejected, match="serial"):
        backend.parse_notification(
            headers={**note.headers, "Wechatpay-Serial": "PUB_KEY_ID_0000"}, body=bytes(note.body)
        )


@pytest.mark.django_db
def test_another_merchants_notification_is_rejected(backend, account):
    resource = {
        "appid": account.app_id,
        "mchid": "1230000109",
        "out_trade_no": "CX1",
        "transaction_id": "4200000000",
        "trade_state": "SUCCESS",
        "amount": {"total": 8800, "currency": "CNY"},
    }
    body = _envelope(resource, account.credentials["apiv3_key"])
    with pytest.raises(NotificationRejected, match="another merchant"):
        backend.parse_notification(headers=_signed(body), body=body)


@pytest.mark.django_db
def test_malformed_and_unknown_notifications_are_rejected(backend, account):
    garbage = b"{not json"
    with pytest.raises(NotificationRejected, match="malformed"):
        backend.parse_notification(headers=_signed(garbage), body=garbage)
    unknown = _envelope(
        {"mchid": MCHID}, account.credentials["apiv3_key"], event_type="PROFITSHARING.SUCCESS"
    )
    with pytest.raises(NotificationRejected, match="unknown event"):
        backend.parse_notification(headers=_signed(unknown), body=unknown)
    incomplete = _envelope(
        {"mchid": MCHID, "out_trade_no": "CX1"}, account.credentials["apiv3_key"]
    )
    with pytest.raises(NotificationRejected, match="malformed TRANSACTION.SUCCESS"):
        backend.parse_notification(headers=_signed(incomplete), body=incomplete)
    with pytest.raises(NotificationRejected, match="missing"):
        backend.parse_notification(headers={}, body=incomplete)


def test_reply_is_204_or_a_fail_body():
    backend = WechatPayBackend(
        AccountConfig(code="wechatpay", backend="wechatpay", base_url="http://x/")
    )
    ok = backend.notification_reply(accepted=True)
    assert ok.status == 204 and ok.body == b""
    refused = backend.notification_reply(accepted=False, message="bad signature")
    assert refused.status == 400 and json.loads(refused.body) == {
        "code": "FAIL",
        "message": "bad signature",
    }


def test_sandbox_retries_on_wechats_schedule_until_200_or_204():
    provider = sandbox.WechatPaySandbox()
    assert provider.retry_schedule == (
        15,
        15,
        30,
        180,
        600,
        1200,
        1800,
        1800,
        1800,
        3600,
        10800,
        10800,
        10800,
        21600,
        21600,
    )
    assert sum(provider.retry_schedule) == 24 * 3600 + 4 * 60
    assert provider.notification_accepted(204, b"") and provider.notification_accepted(
        200, b"anything"
    )
    assert not provider.notification_accepted(
        400, b'{"code":"FAIL"}'
    ) and not provider.notification_accepted(500, b"")
    assert {d.key for d in provider.declines} == {
        "insufficient_funds",
        "phone_mismatch",
        "risk",
        "timeout",
    }


@pytest.mark.django_db
def test_provisioning_registers_only_the_merchants_public_key(db):
    credentials = sandbox.WechatPaySandbox().provision(
        merchant_id=MCHID, app_id="wxd678efh567hg6787"
    )
    config = SandboxMerchant.objects.get(channel="wechatpay", merchant_id=MCHID).config
    assert "PRIVATE" not in json.dumps(config)
    assert config["public_key"] == keys.public_pem_of(credentials["private_key"])
    assert len(credentials["apiv3_key"]) == 32 and credentials["platform_public_key_id"].startswith(
        "PUB_KEY_ID_"
    )
    assert (
        sandbox.WechatPaySandbox().provision(merchant_id=MCHID, app_id="wxd678efh567hg6787")
        == credentials
    )


# ---------------------------------------------------------------------------------------------
# Query, close, refund


@pytest.mark.django_db
def test_query_follows_the_order(client, backend):
    assert backend.query(out_trade_no="NEVER01").error_code == "ORDER_NOT_EXIST"
    backend.create(_request())
    waiting = backend.query(out_trade_no="CX20261123000001")
    assert waiting.outcome == "pending" and waiting.amount == Decimal("88.00")
    trade = _pay(client, backend, out_trade_no="CX00000002")
    paid = backend.query(out_trade_no="CX00000002")
    assert (
        paid.outcome == "succeeded"
        and paid.channel_trade_no == trade.trade_no
        and paid.paid_at is not None
    )
    assert backend.query(out_trade_no="", channel_trade_no=trade.trade_no).outcome == "succeeded"


@pytest.mark.django_db
def test_close_closes_an_unpaid_order_and_refuses_a_paid_one(client, backend):
    backend.create(_request())
    backend.close(out_trade_no="CX20261123000001")
    assert backend.query(out_trade_no="CX20261123000001").outcome == "closed"
    backend.close(out_trade_no="NEVER01")
    _pay(client, backend, out_trade_no="CX00000002")
    with pytest.raises(ChannelDeclined) as caught:
        backend.close(out_trade_no="CX00000002")
    assert caught.value.code == "ORDERPAID"


def _refund(trade, refund_no, amount) -> RefundRequest:
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
def test_partial_then_full_refund_is_idempotent_and_notified(client, backend):
    trade = _pay(client, backend)
    first = backend.refund(_refund(trade, "RF1", "8.00"))
    assert first.outcome == "pending" and first.channel_refund_no  # WeChat answers PROCESSING
    repeat = backend.refund(_refund(trade, "RF1", "8.00"))
    assert repeat.outcome == "succeeded" and repeat.channel_refund_no == first.channel_refund_no
    assert SandboxRefund.objects.filter(trade=trade).count() == 1
    assert backend.query_refund(_refund(trade, "RF1", "8.00")).outcome == "succeeded"
    notice = backend.parse_notification(
        headers=_latest("REFUND.SUCCESS").headers, body=bytes(_latest("REFUND.SUCCESS").body)
    )
    assert (
        notice.kind == "refund" and notice.refund_no == "RF1" and notice.amount == Decimal("8.00")
    )
    assert backend.refund(_refund(trade, "RF2", "80.00")).outcome == "pending"
    assert trade.refunded == Decimal("88.00")
    after = backend.query(out_trade_no=trade.out_trade_no)
    assert after.raw["trade_state"] == "REFUND" and after.outcome == "succeeded"


@pytest.mark.django_db
def test_refund_beyond_what_is_left_fails(client, backend):
    trade = _pay(client, backend)
    result = backend.refund(_refund(trade, "RF1", "88.01"))
    assert result.outcome == "failed" and result.error_code == "INVALID_REQUEST"
    assert (
        backend.query_refund(_refund(trade, "RF-NONE", "1.00")).error_code == "RESOURCE_NOT_EXISTS"
    )


@pytest.mark.django_db
def test_a_reused_refund_number_with_another_amount_fails(client, backend):
    trade = _pay(client, backend)
    backend.refund(_refund(trade, "RF1", "8.00"))
    assert backend.refund(_refund(trade, "RF1", "9.00")).error_code == "INVALID_REQUEST"


def test_every_decline_code_has_a_bilingual_reason():
    for decline in sandbox.WechatPaySandbox.declines:
        spec = WechatPayBackend.error_codes[decline.code]
        assert spec.reason_zh and spec.reason_en and spec.guidance_zh and spec.guidance_en
        assert spec.counts_against_channel is False
    assert WechatPayBackend.error_codes["SIGN_ERROR"].counts_against_channel is True


def test_private_keys_in_bare_base64_work():
    private_pem = keys.generate_rsa_private_pem()
    bare = "".join(line for line in private_pem.splitlines() if "-----" not in line)
    public = serialization.load_pem_private_key(private_pem.encode(), None).public_key()
    signature = base64.b64decode(sign_message("x\n", bare))
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    public.verify(signature, b"x\n", padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.django_db
def test_order_and_refund_numbers_with_wechats_special_characters_sign_correctly(client, backend):
    trade = _pay(client, backend, out_trade_no="CX-1|2*3_4")
    assert backend.query(out_trade_no="CX-1|2*3_4").outcome == "succeeded"
    backend.refund(_refund(trade, "RF|1*@x", "1.00"))
    assert backend.query_refund(_refund(trade, "RF|1*@x", "1.00")).outcome == "succeeded"
