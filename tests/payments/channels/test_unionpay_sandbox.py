"""The UnionPay backend against the in-process sandbox: the front form, the cashier, backUrl
notifications, status query, refunds, file transfer and fault switches (CHANNELS.md §3)."""

import datetime as dt
import io
import secrets
from dataclasses import replace
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from payments.accounts import backend_for
from payments.channels import http
from payments.channels.base import (
    ChannelError,
    ChannelUnavailable,
    ClientInfo,
    CreateRequest,
    NotificationRejected,
    RefundRequest,
)
from payments.channels.unionpay import wire as acp
from payments.channels.unionpay.backend import UnionPayBackend
from payments.sandbox.models import SandboxFault, SandboxNotification, SandboxRefund, SandboxTrade
from payments.sandbox.unionpay import certificates
from payments.sandbox.unionpay.gateway import UnionPaySandbox
from tests.payments.factories import sandbox_account

pytestmark = pytest.mark.django_db

MER_ID = "802310048993424"


@pytest.fixture
def backend():
    return backend_for(sandbox_account("unionpay"))


def order_no() -> str:
    return timezone.now().strftime("%Y%m%d") + secrets.token_hex(8).upper()


def create(backend, amount="88.00", device="desktop"):
    request = CreateRequest(
        out_trade_no=order_no(),
        amount=Decimal(amount),
        currency="CNY",
        subject="Gift card",
        method="unionpay",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        client=ClientInfo(device=device),
    )
    return request, backend.create(request)


def open_cashier(client, result):
    response = client.post(urlsplit(result.action.url).path, data=dict(result.action.fields))
    assert response.status_code == 302, response.content
    cashier = urlsplit(response["Location"]).path
    assert "/sandbox/unionpay/cashier/" in cashier
    return cashier


def pay(client, backend, amount="88.00", *, approve=True, reason=""):
    request, result = create(backend, amount)
    cashier = open_cashier(client, result)
    page = client.get(cashier)
    assert (
        b'data-testid="sandbox-approve"' in page.content
        and b'data-testid="sandbox-decline"' in page.content
    )
    client.post(
        cashier, {"decision": "approve" if approve else "decline", "reason": reason, "return": "0"}
    )
    trade = SandboxTrade.objects.get(channel="unionpay", out_trade_no=request.out_trade_no)
    return request, result, trade


def last_note() -> SandboxNotification:
    return SandboxNotification.objects.filter(channel="unionpay").latest("pk")


def note_fields(note) -> dict[str, str]:
    return dict(parse_qsl(bytes(note.body).decode("utf-8"), keep_blank_values=True))


# ---------------------------------------------------------------------------------------------
# Create → cashier → notification


def test_create_returns_a_signed_front_consumption_form(backend):
    request, result = create(backend, "12.34", device="phone")
    action = result.action
    assert action.type == "form"
    assert action.url == "http://testserver/sandbox/unionpay/gateway/api/frontTransReq.do"
    fields = action.fields
    assert (fields["txnType"], fields["txnSubType"], fields["bizType"], fields["channelType"]) == (
        "01",
        "01",
        "000201",
        "08",
    )
    assert (fields["merId"], fields["orderId"], fields["txnAmt"], fields["currencyCode"]) == (
        MER_ID,
        request.out_trade_no,
        "1234",
        "156",
    )
    assert fields["backUrl"] == "http://testserver/payments/notify/unionpay/"
    assert result.channel_trade_no == fields["txnTime"]
    cert_pem = UnionPaySandbox().merchant(MER_ID).config["cert_pem"]
    from cryptography import x509

    assert acp.verify(fields, x509.load_pem_x509_certificate(cert_pem.encode()).public_key())


def test_front_page_refuses_a_tampered_form(client, backend):
    _, result = create(backend)
    fields = {**result.action.fields, "txnAmt": "1"}
    response = client.post(urlsplit(result.action.url).path, data=fields)
    assert response.status_code == 400
    assert "验证签名失败".encode() in response.content
    assert not SandboxTrade.objects.filter(channel="unionpay").exists()


def test_approve_enqueues_a_signed_notification_that_parses(client, backend):
    request, _, trade = pay(client, backend, "88.00")
    note = last_note()
    assert note.url == "http://testserver/payments/notify/unionpay/"
    notice = backend.parse_notification(headers=note.headers, body=bytes(note.body))
    assert (notice.kind, notice.outcome, notice.amount, notice.currency) == (
        "payment",
        "succeeded",
        Decimal("88.00"),
        "CNY",
    )
    assert notice.out_trade_no == request.out_trade_no
    assert notice.merchant_id == MER_ID
    assert notice.channel_trade_no == trade.extra["queryId"] and len(notice.channel_trade_no) == 21
    assert notice.occurred_at is not None


def test_decline_sends_no_notification_and_query_reports_the_code(client, backend):
    request, result, trade = pay(client, backend, approve=False, reason="insufficient_funds")
    assert trade.status == "declined" and trade.decline_code == "64"
    assert not SandboxNotification.objects.filter(channel="unionpay").exists()
    answer = backend.query(
        out_trade_no=request.out_trade_no, channel_trade_no=result.channel_trade_no
    )
    assert (answer.outcome, answer.error_code) == ("failed", "64")
    assert backend.error_codes["64"].counts_against_channel is False


@pytest.mark.parametrize(
    ("key", "code"), [("phone_mismatch", "66"), ("risk", "38"), ("timeout", "69")]
)
def test_cashier_declines_use_unionpay_codes(client, backend, key, code):
    _, _, trade = pay(client, backend, approve=False, reason=key)
    assert trade.decline_code == code
    assert code in backend.error_codes


# ---------------------------------------------------------------------------------------------
# Notifications that must be refused


def resign(fields: dict[str, str]) -> bytes:
    clean = {k: v for k, v in fields.items() if k not in {"signature", "signPubKeyCert", "certId"}}
    return urlencode(certificates.provider_sign(clean)).encode()


@pytest.fixture
def paid_note(client, backend):
    pay(client, backend, "50.00")
    return note_fields(last_note())


def test_notice_carrying_an_empty_value_is_accepted(backend, paid_note):
    body = urlencode({**paid_note, "reqReserved": ""}).encode()
    notice = backend.parse_notification(headers={}, body=body)
    assert (notice.kind, notice.outcome, notice.amount) == (
        "payment",
        "succeeded",
        Decimal("50.00"),
    )


def test_swapped_amount_is_rejected(backend, paid_note):
    body = urlencode({**paid_note, "txnAmt": "1"}).encode()
    with pytest.raises(NotificationRejected, match="bad signature"):
        backend.parse_notification(headers={}, body=body)


def test_foreign_signature_is_rejected(backend, paid_note):
    body = urlencode(
        {**paid_note, "signature": certificates.provider_sign({"x": "1"})["signature"]}
    ).encode()
    with pytest.raises(NotificationRejected, match="bad signature"):
        backend.parse_notification(headers={}, body=body)


def test_signature_by_an_untrusted_certificate_is_rejected(backend, paid_note):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = certificates.issue_certificate(
        subject=certificates.SIGN_CN,
        public_key=key.public_key(),
        issuer="Evil Root",
        issuer_key=key,
        ca=False,
    )
    clean = {k: v for k, v in paid_note.items() if k not in {"signature", "certId"}}
    forged = acp.sign({**clean, "signPubKeyCert": cert}, key, "1")
    with pytest.raises(NotificationRejected, match="does not chain"):
        backend.parse_notification(headers={}, body=urlencode(forged).encode())


def test_notification_for_another_merchant_is_rejected(backend, paid_note):
    body = resign({**paid_note, "merId": "777290058110048"})
    with pytest.raises(NotificationRejected, match="merchant 777290058110048"):
        backend.parse_notification(headers={}, body=body)


def test_foreign_currency_is_rejected(backend, paid_note):
    body = resign({**paid_note, "currencyCode": "840"})
    with pytest.raises(NotificationRejected, match="currencyCode 840"):
        backend.parse_notification(headers={}, body=body)


def test_unknown_event_is_rejected(backend, paid_note):
    body = resign({**paid_note, "txnType": "31"})
    with pytest.raises(NotificationRejected, match="unknown event"):
        backend.parse_notification(headers={}, body=body)


@pytest.mark.parametrize("body", [b"\xff\xfe\x00", b"just text", b"merId=1&orderId=2"])
def test_malformed_body_is_rejected(backend, body):
    with pytest.raises(NotificationRejected, match="malformed"):
        backend.parse_notification(headers={}, body=body)


def test_notification_reply_is_http_200_ok():
    backend_cls = UnionPayBackend
    reply = backend_cls.notification_reply(backend_cls.__new__(backend_cls), accepted=True)
    assert (reply.status, reply.body) == (200, b"ok")
    refused = backend_cls.notification_reply(backend_cls.__new__(backend_cls), accepted=False)
    assert refused.status != 200
    assert UnionPaySandbox().notification_accepted(200, b"ok")
    assert not UnionPaySandbox().notification_accepted(500, b"")


# ---------------------------------------------------------------------------------------------
# Query


def test_query_is_pending_until_the_buyer_pays(client, backend):
    request, result = create(backend)
    assert (
        backend.query(
            out_trade_no=request.out_trade_no, channel_trade_no=result.channel_trade_no
        ).outcome
        == "pending"
    )
    open_cashier(client, result)
    assert (
        backend.query(
            out_trade_no=request.out_trade_no, channel_trade_no=result.channel_trade_no
        ).outcome
        == "pending"
    )


def test_query_after_payment_succeeds_with_the_query_id(client, backend):
    request, result, trade = pay(client, backend, "19.90")
    answer = backend.query(
        out_trade_no=request.out_trade_no, channel_trade_no=result.channel_trade_no
    )
    assert (answer.outcome, answer.amount, answer.currency) == (
        "succeeded",
        Decimal("19.90"),
        "CNY",
    )
    assert answer.channel_trade_no == trade.extra["queryId"]
    assert answer.paid_at is not None


def test_query_with_the_wrong_txn_time_finds_nothing(client, backend):
    request, _, _ = pay(client, backend)
    assert (
        backend.query(out_trade_no=request.out_trade_no, channel_trade_no="20000101000000").outcome
        == "pending"
    )


def test_query_needs_the_txn_time_reference(backend):
    with pytest.raises(ChannelError) as info:
        backend.query(out_trade_no="20261125ABCDEF01", channel_trade_no="201509061122031906248")
    assert info.value.code == "NO_TXNTIME"


def test_close_is_a_documented_no_op(backend):
    assert backend.supports_close is False
    backend.close(out_trade_no="20261125ABCDEF01", channel_trade_no="20261125101500")


# ---------------------------------------------------------------------------------------------
# Refunds


def refund_request(request, trade, amount, refund_no=None):
    return RefundRequest(
        refund_no=refund_no
        or "RF" + timezone.now().strftime("%Y%m%d") + secrets.token_hex(7).upper(),
        out_trade_no=request.out_trade_no,
        channel_trade_no=trade.extra["queryId"],
        amount=Decimal(amount),
        total_amount=trade.amount,
        currency="CNY",
    )


def test_partial_then_full_refund_with_notifications(client, backend):
    request, _, trade = pay(client, backend, "100.00")
    first = backend.refund(refund_request(request, trade, "30.00"))
    assert first.outcome == "pending"
    notice = backend.parse_notification(headers={}, body=bytes(last_note().body))
    assert (notice.kind, notice.outcome, notice.amount) == ("refund", "succeeded", Decimal("30.00"))
    assert notice.out_trade_no == request.out_trade_no
    assert len(notice.channel_refund_no) == 21  # UnionPay's queryId of the refund
    rest = backend.refund(refund_request(request, trade, "70.00"))
    assert rest.outcome == "pending"
    assert sum(r.amount for r in SandboxRefund.objects.filter(trade=trade)) == Decimal("100.00")


def test_repeating_a_refund_number_refunds_once(client, backend):
    request, _, trade = pay(client, backend, "40.00")
    req = refund_request(request, trade, "10.00")
    assert backend.refund(req).outcome == "pending"
    again = backend.refund(req)
    assert (again.outcome, again.error_code) == ("pending", "12")
    assert SandboxRefund.objects.filter(trade=trade).count() == 1
    assert backend.query_refund(req).outcome == "pending"
    assert SandboxRefund.objects.filter(trade=trade).count() == 1


def test_refund_reference_is_its_txn_time_until_unionpay_reports_a_query_id(client, backend):
    """A refund's status query needs orderId + txnTime, so the txnTime we sent is the refund's
    reference until the notice (or the query) brings UnionPay's queryId."""
    request, _, trade = pay(client, backend, "40.00")
    result = backend.refund(refund_request(request, trade, "10.00"))
    refund = SandboxRefund.objects.get(trade=trade)
    sent = SandboxTrade.objects.get(pk=trade.pk).extra["refunds"][refund.out_refund_no]
    assert result.outcome == "pending"
    assert result.channel_refund_no == sent["txnTime"]


def test_refund_whose_notice_was_lost_is_confirmed_by_a_status_query(client, backend):
    request, _, trade = pay(client, backend, "40.00")
    req = refund_request(request, trade, "10.00")
    sent = backend.refund(req)
    SandboxNotification.objects.filter(channel="unionpay").delete()  # the notice is lost
    queried = backend.query_refund(replace(req, channel_refund_no=sent.channel_refund_no))
    info = SandboxTrade.objects.get(pk=trade.pk).extra["refunds"][req.refund_no]
    assert (queried.outcome, queried.channel_refund_no) == ("succeeded", info["queryId"])
    assert SandboxRefund.objects.filter(trade=trade).count() == 1


def test_refund_query_asks_by_the_refund_order_id_and_its_txn_time(client, backend, monkeypatch):
    request, _, trade = pay(client, backend, "40.00")
    req = refund_request(request, trade, "10.00")
    sent = backend.refund(req)
    posted = []
    real_send = http.send

    def spying(base_url, method, path, **kwargs):
        posted.append((path, kwargs.get("data", {})))
        return real_send(base_url, method, path, **kwargs)

    monkeypatch.setattr(http, "send", spying)
    backend.query_refund(replace(req, channel_refund_no=sent.channel_refund_no))
    ((path, fields),) = posted
    assert path == "gateway/api/queryTrans.do"
    assert (fields["txnType"], fields["orderId"], fields["txnTime"]) == (
        "00",
        req.refund_no,
        sent.channel_refund_no,
    )


def test_refund_query_of_a_refund_unionpay_does_not_know_stays_pending(client, backend):
    request, _, trade = pay(client, backend, "40.00")
    req = refund_request(request, trade, "10.00")
    queried = backend.query_refund(replace(req, channel_refund_no="20260101120000"))
    assert (queried.outcome, queried.error_code) == ("pending", "34")


def test_refund_query_without_its_txn_time_makes_no_call(client, backend, monkeypatch):
    request, _, trade = pay(client, backend, "40.00")
    monkeypatch.setattr(http, "send", lambda *a, **k: pytest.fail("no call expected"))
    queried = backend.query_refund(refund_request(request, trade, "10.00"))
    assert (queried.outcome, queried.error_code) == ("pending", "NO_TXNTIME")


def test_refund_above_what_is_left_fails(client, backend):
    request, _, trade = pay(client, backend, "40.00")
    backend.refund(refund_request(request, trade, "30.00"))
    result = backend.refund(refund_request(request, trade, "20.00"))
    assert (result.outcome, result.error_code) == ("failed", "33")


def test_refund_of_an_unknown_payment_fails(client, backend):
    request, _, trade = pay(client, backend, "40.00")
    bogus = RefundRequest(
        refund_no="RF20261125AAAA0000BBBB11",
        out_trade_no=request.out_trade_no,
        channel_trade_no="2" * 21,
        amount=Decimal("1.00"),
        total_amount=Decimal("40.00"),
        currency="CNY",
    )
    result = backend.refund(bogus)
    assert (result.outcome, result.error_code) == ("failed", "35")


# ---------------------------------------------------------------------------------------------
# Faults and settlement


def test_fault_switch_down_makes_the_channel_unavailable(backend, settings):
    SandboxFault.objects.create(channel="unionpay", down=True)
    with pytest.raises(ChannelUnavailable):
        backend.query(out_trade_no="20261125ABCDEF01", channel_trade_no="20261125101500")
    with pytest.raises(ChannelUnavailable):
        backend.download_settlement(timezone.localdate())


def test_front_page_is_down_too(client, backend):
    _, result = create(backend)
    SandboxFault.objects.create(channel="unionpay", down=True)
    assert (
        client.post(urlsplit(result.action.url).path, data=dict(result.action.fields)).status_code
        == 503
    )


def test_settlement_download_parses_and_agrees_with_the_sandbox(client, backend):
    req1, _, trade1 = pay(client, backend, "100.00")
    req2, _, trade2 = pay(client, backend, "2.50")
    pay(client, backend, "9.99", approve=False, reason="risk")
    backend.refund(refund_request(req1, trade1, "40.00"))
    today = dt.datetime.now(acp.BEIJING).date()
    data = backend.download_settlement(today)
    assert data.startswith(b"PK\x03\x04")
    parsed = backend.open_settlement(io.BytesIO(data))
    lines = list(parsed.lines())
    totals = parsed.totals
    assert (totals.merchant_id, totals.day, totals.lines) == (MER_ID, today, 3)
    assert (totals.gross, totals.refunded) == (Decimal("102.50"), Decimal("40.00"))
    assert totals.fees == Decimal("0.60") + Decimal("0.02") - Decimal("0.24")
    by_kind = {(line.kind, line.out_trade_no): line for line in lines}
    payment = by_kind[("payment", req1.out_trade_no)]
    assert (payment.amount, payment.fee, payment.channel_trade_no) == (
        Decimal("100.00"),
        Decimal("0.60"),
        trade1.extra["queryId"],
    )
    refund = by_kind[("refund", req1.out_trade_no)]
    assert (refund.amount, refund.fee) == (Decimal("40.00"), Decimal("-0.24"))
    assert refund.refund_no == SandboxRefund.objects.get(trade=trade1).out_refund_no
    assert by_kind[("payment", req2.out_trade_no)].fee == Decimal("0.02")  # 1.5 fen rounds half up


def test_settlement_of_a_quiet_day_is_an_empty_but_balanced_file(backend):
    day = dt.datetime.now(acp.BEIJING).date() - dt.timedelta(days=3)
    parsed = backend.open_settlement(io.BytesIO(backend.download_settlement(day)))
    assert list(parsed.lines()) == []
    assert (parsed.totals.day, parsed.totals.lines, parsed.totals.gross) == (
        day,
        0,
        Decimal("0.00"),
    )
