"""The epay v2 variant (sign_type=RSA): SHA256withRSA signing proven against a signature
openssl computed, the account's choice of protocol, creation, query and refund through the
simulator's ``api/pay/*``, forged or tampered v2 notices refused without effect, and a whole
payment notified v2-style."""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.utils import timezone

from payments import ledger, services
from payments.accounts import backend_for
from payments.channels.aggregator import wire
from payments.channels.base import (
    ChannelDeclined,
    ChannelUnavailable,
    ClientInfo,
    CreateRequest,
    RefundRequest,
)
from payments.models import Attempt, JournalEntry, Notification, Payment
from payments.payables import PayableFacts
from payments.sandbox import keys
from payments.sandbox.aggregator.gateway import AggregatorSandbox
from payments.sandbox.aggregator.protocol import merchant_verify
from payments.sandbox.models import SandboxMerchant, SandboxNotification, SandboxTrade
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parents[2] / "data" / "aggregator"
PRIVATE_PEM = (DATA / "TEST_ONLY_merchant_private_key.pem").read_text()
PUBLIC_PEM = (DATA / "TEST_ONLY_merchant_public_key.pem").read_text()

# ---------------------------------------------------------------------------------------------
# Signing: a fixed vector, signed once by openssl (tests/data/aggregator/README.txt)

V2_VECTOR = {
    "pid": "1001",
    "type": "qqpay",
    "out_trade_no": "20261203ABCDEF01",
    "notify_url": "http://testserver/payments/notify/aggregator/",
    "return_url": "",
    "name": "礼品卡",
    "money": "88.00",
    "timestamp": "1764806400",
    "sign_type": "RSA",
}
V2_CONTENT = (
    "money=88.00&name=礼品卡&notify_url=http://testserver/payments/notify/aggregator/"
    "&out_trade_no=20261203ABCDEF01&pid=1001&timestamp=1764806400&type=qqpay"
)
#: openssl dgst -sha256 -sign TEST_ONLY_merchant_private_key.pem <V2_CONTENT> | base64 -w0
OPENSSL_SIGNATURE = (
    "Dqd1BrzBdGHhpSi1D26/XvuLzDsZVmeN/Pz/zx6+O63t3ymoZgIE8ZPeFRb3OM5sNj1tdsoqQLd+iFFSUPi+1O1q"
    "jrnCzthG8UZfOsoAvm7PBeCTuvCMf9pqRK/Wnxj9vJNdRuhPlYTpZGoVdtQ//BZ3ajAROznautVIbrkLU1G8dziP"
    "w3CFt7x6jgzbvbJbijYAroIZXzo14gycC2XRfOgyFUXcBJPpa99KSCHbK3Qv7SfvXgNpwh5xriWSiyW94qmMmryB"
    "7eVnFEihfHwt0LNrmDPzF96A3YXQAD/G1PJmxsjGyZYfGvD0M+XE53IPVEzqPS0SxF5j4YXVJJ8mgA=="
)


def test_the_v2_sign_is_sha256_with_rsa_over_the_sorted_non_empty_params_as_openssl_signs_it():
    assert wire.sign_content(V2_VECTOR) == V2_CONTENT  # empty return_url, sign_type left out
    assert wire.rsa_sign(V2_VECTOR, PRIVATE_PEM) == OPENSSL_SIGNATURE
    # the bare base64 body of the key, as consoles show it, signs the same
    bare = "".join(line for line in PRIVATE_PEM.splitlines() if "-----" not in line)
    assert wire.rsa_sign({**V2_VECTOR, "sign": "old"}, bare) == OPENSSL_SIGNATURE


def test_the_openssl_signature_verifies_in_the_backend_the_simulator_and_cryptography():
    signed = {**V2_VECTOR, "sign": OPENSSL_SIGNATURE}
    assert wire.rsa_verify(signed, PUBLIC_PEM)
    assert merchant_verify(signed, PUBLIC_PEM)  # the simulator's own implementation
    serialization.load_pem_public_key(PUBLIC_PEM.encode()).verify(
        base64.b64decode(OPENSSL_SIGNATURE),
        V2_CONTENT.encode("utf-8"),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


@pytest.mark.parametrize(
    "change",
    [{"money": "0.01"}, {"pid": "1002"}, {"timestamp": "1764806401"}, {"extra": "x"}],
)
def test_a_tampered_v2_parameter_set_does_not_verify(change):
    signed = {**V2_VECTOR, "sign": OPENSSL_SIGNATURE, **change}
    assert not wire.rsa_verify(signed, PUBLIC_PEM)
    assert not merchant_verify(signed, PUBLIC_PEM)


def test_a_v2_signature_that_is_not_base64_or_absent_does_not_verify():
    assert not wire.rsa_verify({**V2_VECTOR, "sign": "not base64!"}, PUBLIC_PEM)
    assert not wire.rsa_verify(V2_VECTOR, PUBLIC_PEM)


def test_a_v2_timestamp_is_fresh_within_five_minutes_only():
    now = dt.datetime(2025, 12, 4, 0, 0, tzinfo=dt.UTC)
    assert wire.unix_timestamp(now) == "1764806400"
    assert wire.timestamp_fresh("1764806400", now)
    assert wire.timestamp_fresh("1764806700", now)
    assert not wire.timestamp_fresh("1764806701", now)
    assert not wire.timestamp_fresh("", now) and not wire.timestamp_fresh("soon", now)


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture
def agg():
    """The aggregator account, switched to v2 as its staff would: sign_type RSA with the
    merchant's private key and the platform's public key."""
    account = sandbox_account("aggregator", fee_percent=Decimal("1.000"))
    account.credentials = AggregatorSandbox().provision(merchant_id="1001", sign_type="RSA")
    account.save()
    return account


def start(method: str = "qqpay", amount: str = "88.00", device: str = "desktop"):
    return services.payment_start(
        buyer=UserFactory(),
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal(amount),
        currency="CNY",
        method=method,
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.7", device=device),
        return_url="http://testserver/orders/QQ1/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
    )


def request(out_trade_no: str, device: str = "desktop") -> CreateRequest:
    return CreateRequest(
        out_trade_no=out_trade_no,
        amount=Decimal("12.30"),
        currency="CNY",
        subject="礼品卡",
        method="qqpay",
        expires_at=timezone.now() + dt.timedelta(minutes=5),
        client=ClientInfo(device=device),
    )


def state():
    return (
        list(Payment.objects.values_list("pk", "status")),
        list(Attempt.objects.values_list("pk", "status")),
        JournalEntry.objects.count(),
    )


def platform_signed(params: dict[str, str], private_pem: str | None = None) -> dict[str, str]:
    """A v2 notice signed by hand (cryptography directly) with the platform's key, or with
    ``private_pem`` to forge one."""
    pem = private_pem or keys.provider_private_pem("aggregator")
    content = "&".join(f"{k}={params[k]}" for k in sorted(params) if params[k])
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    signature = key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {**params, "sign": base64.b64encode(signature).decode(), "sign_type": "RSA"}


def v2_notice(trade: SandboxTrade, **changes) -> dict[str, str]:
    params = {
        "pid": trade.merchant_id,
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "type": trade.extra["type"],
        "name": trade.subject,
        "money": f"{trade.amount:.2f}",
        "trade_status": "TRADE_SUCCESS",
        "timestamp": str(int(time.time())),
    }
    params.update(changes)
    return params


def get_notice(client, params: dict[str, str]):
    return client.get(f"/payments/notify/aggregator/?{urlencode(params)}")


# ---------------------------------------------------------------------------------------------
# The account's choice


def test_md5_stays_the_default_and_rsa_is_the_accounts_choice(agg):
    md5 = sandbox_account("aggregator", code="agg-md5")
    assert backend_for(md5).sign_type == "MD5" and not backend_for(md5).v2
    assert backend_for(agg).sign_type == "RSA" and backend_for(agg).v2
    assert {"merchant_private_key", "platform_public_key"} <= set(agg.credentials)


def test_an_unknown_sign_type_is_a_misconfiguration_and_opens_nothing(agg):
    agg.credentials = {**agg.credentials, "sign_type": "SM2"}
    agg.save()
    with pytest.raises(ChannelDeclined) as caught:
        backend_for(agg).create(request("20261203V2BAD001"))
    assert caught.value.code == "MISCONFIGURED"
    assert not SandboxTrade.objects.exists()


def test_an_rsa_account_without_its_private_key_is_a_misconfiguration(agg):
    agg.credentials = {k: v for k, v in agg.credentials.items() if k != "merchant_private_key"}
    agg.save()
    with pytest.raises(ChannelDeclined) as caught:
        backend_for(agg).create(request("20261203V2BAD002"))
    assert caught.value.code == "MISCONFIGURED" and "merchant_private_key" in str(caught.value)


def test_a_private_key_that_is_not_one_is_a_misconfiguration_not_a_crash(agg):
    agg.credentials = {**agg.credentials, "merchant_private_key": "not a key"}
    agg.save()
    with pytest.raises(ChannelDeclined) as caught:
        backend_for(agg).create(request("20261203V2BAD003"))
    assert caught.value.code == "MISCONFIGURED" and "not an RSA private key" in str(caught.value)
    assert not SandboxTrade.objects.exists()


# ---------------------------------------------------------------------------------------------
# Creation, query and refund through api/pay/*


def test_desktop_creation_goes_through_api_pay_create_and_phone_through_api_pay_submit(client, agg):
    backend = backend_for(agg)
    result = backend.create(request("20261203V2000001"))
    assert result.action.type == "qr" and "/sandbox/aggregator/cashier/" in result.action.qr
    trade = SandboxTrade.objects.get(out_trade_no="20261203V2000001")
    assert trade.extra == {"type": "qqpay", "sign_type": "RSA"}
    assert result.channel_trade_no == trade.trade_no

    phone = backend.create(request("20261203V2000002", device="phone"))
    url = urlsplit(phone.action.url)
    assert url.path.endswith("/sandbox/aggregator/api/pay/submit")
    params = dict(parse_qsl(url.query))
    assert params["sign_type"] == "RSA" and params["timestamp"]
    merchant = SandboxMerchant.objects.get(channel="aggregator", merchant_id="1001")
    assert merchant_verify(params, merchant.config["merchant_public_key"])
    response = client.get(f"{url.path}?{url.query}")
    assert response.status_code == 302 and "/cashier/" in response["Location"]


def test_the_simulator_refuses_a_v2_request_signed_with_another_key_or_stale(client, agg):
    order = {
        "pid": "1001",
        "type": "qqpay",
        "out_trade_no": "20261203V2FORGE1",
        "notify_url": "http://testserver/payments/notify/aggregator/",
        "name": "x",
        "money": "1.00",
        "timestamp": str(int(time.time())),
    }
    forged = platform_signed(order, PRIVATE_PEM)  # not the merchant's registered key
    answer = client.post("/sandbox/aggregator/api/pay/create", forged).json()
    assert answer["code"] != 0 and answer["msg"] == "签名校验失败"
    stale = {**order, "timestamp": str(int(time.time()) - 3600)}
    private = agg.credentials["merchant_private_key"]
    answer = client.post("/sandbox/aggregator/api/pay/create", platform_signed(stale, private))
    assert answer.json()["msg"] == "时间戳无效"
    assert not SandboxTrade.objects.exists()


def test_query_and_refund_answers_are_signed_and_verified(client, agg):
    backend = backend_for(agg)
    assert backend.query(out_trade_no="NEVER01").error_code == "NOT_FOUND"
    backend.create(request("20261203V2000003"))
    trade = SandboxTrade.objects.get(out_trade_no="20261203V2000003")
    assert backend.query(out_trade_no=trade.out_trade_no).outcome == "pending"
    AggregatorSandbox().settle(trade, approve=True)
    paid = backend.query(out_trade_no=trade.out_trade_no)
    assert (paid.outcome, paid.amount, paid.channel_trade_no) == (
        "succeeded",
        Decimal("12.30"),
        trade.trade_no,
    )
    assert paid.raw["sign_type"] == "RSA" and paid.paid_at is not None

    refund = RefundRequest(
        refund_no="RFV2001",
        out_trade_no=trade.out_trade_no,
        channel_trade_no=trade.trade_no,
        amount=Decimal("2.30"),
        total_amount=trade.amount,
        currency="CNY",
        reason="卡密无效",
    )
    first = backend.refund(refund)
    assert first.outcome == "succeeded" and first.channel_refund_no
    assert backend.refund(refund).channel_refund_no == first.channel_refund_no  # idempotent
    second = backend.refund(RefundRequest(**{**refund.__dict__, "refund_no": "RFV2002"}))
    assert second.outcome == "succeeded" and trade.refunds.count() == 2
    beyond = backend.refund(
        RefundRequest(**{**refund.__dict__, "refund_no": "RFV2003", "amount": Decimal("7.71")})
    )
    assert beyond.outcome == "failed" and trade.refunds.count() == 2  # 4.60 + 7.71 > 12.30


def test_an_answer_that_does_not_verify_with_the_platform_key_is_not_believed(agg):
    """A man in the middle (or a misconfigured key) answers for the aggregator."""
    agg.credentials = {**agg.credentials, "platform_public_key": PUBLIC_PEM}
    agg.save()
    backend = backend_for(agg)
    with pytest.raises(ChannelUnavailable) as caught:
        backend.create(request("20261203V2000004"))
    assert caught.value.code == "BAD_RESPONSE" and "platform public key" in str(caught.value)
    with pytest.raises(ChannelUnavailable):
        backend.query(out_trade_no="20261203V2000004")


# ---------------------------------------------------------------------------------------------
# A whole payment, and forged v2 notices


def test_a_qq_wallet_payment_through_the_v2_simulator_is_notified_rsa_signed_and_applied(
    client, agg, django_capture_on_commit_callbacks
):
    payment = start()
    assert payment.status == "pending", (payment.failure_code, payment.failure_reason)
    attempt = payment.attempts.get()
    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(attempt.action, "approve")
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    note = Notification.objects.get(outcome="applied")
    body = dict(parse_qsl(bytes(note.body).decode()))
    assert note.method == "GET" and body["sign_type"] == "RSA" and body["timestamp"]
    assert ledger.journal_total() == 0
    assert ledger.balance(ledger.channel_receivable("aggregator")) == Decimal("87.12")


@pytest.fixture
def paid_unnotified(agg):
    """A trade the buyer paid whose own notice was lost: what a forger would race."""
    payment = start()
    attempt = payment.attempts.get()
    trade = SandboxTrade.objects.get(out_trade_no=attempt.out_trade_no)
    SandboxTrade.objects.filter(pk=trade.pk).update(status="paid", paid_at=timezone.now())
    trade.refresh_from_db()
    return payment, trade


def test_a_genuine_v2_notice_is_applied(client, paid_unnotified):
    payment, trade = paid_unnotified
    assert get_notice(client, platform_signed(v2_notice(trade))).content == b"success"
    payment.refresh_from_db()
    assert payment.status == "succeeded"


@pytest.mark.parametrize(
    ("forge", "why"),
    [
        (lambda t: platform_signed(v2_notice(t), PRIVATE_PEM), "platform public key"),
        (lambda t: {**platform_signed(v2_notice(t)), "money": "0.01"}, "platform public key"),
        (lambda t: {**platform_signed(v2_notice(t)), "sign": "AAAA"}, "platform public key"),
        (lambda t: platform_signed(v2_notice(t, money="0.01")), "contradicts"),
        (lambda t: platform_signed(v2_notice(t, pid="1002")), "pid"),
        (lambda t: platform_signed(v2_notice(t, timestamp="")), "timestamp"),
        (lambda t: {**platform_signed(v2_notice(t)), "sign_type": "MD5"}, "signs with RSA"),
    ],
    ids=["other-key", "tampered", "garbage-sign", "wrong-amount", "other-pid", "no-ts", "md5"],
)
def test_a_forged_or_tampered_v2_notice_is_refused_and_changes_nothing(
    client, paid_unnotified, forge, why
):
    _, trade = paid_unnotified
    before = state()
    assert get_notice(client, forge(trade)).content == b"fail"
    assert state() == before
    note = Notification.objects.get()
    assert note.outcome == "rejected" and why in note.detail


def test_an_md5_signed_notice_to_an_rsa_account_is_refused_even_with_the_right_key(
    client, agg, paid_unnotified
):
    """No downgrade: the account chose RSA, so the (weaker, pasted-around) MD5 key that the
    export still uses cannot sign a notice it believes."""
    import hashlib

    _, trade = paid_unnotified
    params = v2_notice(trade)
    content = "&".join(f"{k}={params[k]}" for k in sorted(params) if params[k])
    key = agg.credentials["key"]
    params["sign"] = hashlib.md5((content + key).encode()).hexdigest()  # noqa: S324
    params["sign_type"] = "MD5"
    before = state()
    assert get_notice(client, params).content == b"fail" and state() == before


def test_a_replayed_v2_notice_changes_nothing(client, agg, django_capture_on_commit_callbacks):
    payment = start()
    trade = SandboxTrade.objects.get(out_trade_no=payment.attempts.get().out_trade_no)
    with django_capture_on_commit_callbacks(execute=True):
        AggregatorSandbox().settle(trade, approve=True)
    genuine = bytes(SandboxNotification.objects.get().body).decode()
    before = state()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.get(f"/payments/notify/aggregator/?{genuine}").content == b"success"
    assert state() == before
    assert Notification.objects.filter(outcome="applied").count() == 1


def test_a_v2_account_fetches_the_export_with_its_md5_key_and_without_one_is_misconfigured(
    agg,
):
    day = timezone.now().date()
    assert backend_for(agg).download_settlement(day).startswith(b"# epay export,pid=1001")
    agg.credentials = {k: v for k, v in agg.credentials.items() if k != "key"}
    agg.save()
    with pytest.raises(ChannelDeclined) as caught:
        backend_for(agg).download_settlement(day)
    assert caught.value.code == "MISCONFIGURED" and "key" in str(caught.value)
