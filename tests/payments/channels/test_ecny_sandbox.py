"""The e-CNY backend against the simulated acquiring bank: QR create, cashier, SM2-signed
notifications, query, close, refunds, the reconciliation file and fault switches."""

import datetime as dt
import io
import json
import secrets
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from payments.accounts import backend_for, config_for
from payments.channels.base import (
    ChannelDeclined,
    ChannelError,
    ChannelUnavailable,
    CreateRequest,
    NotificationRejected,
    RefundRequest,
)
from payments.channels.ecny import wire as proto
from payments.channels.registry import get_backend
from payments.sandbox.ecny import bank
from payments.sandbox.models import SandboxFault, SandboxNotification, SandboxRefund, SandboxTrade
from tests.payments.factories import sandbox_account

pytestmark = pytest.mark.django_db

MER_ID = "ECNYTEST001"


@pytest.fixture
def account():
    return sandbox_account("ecny")


@pytest.fixture
def backend(account):
    return backend_for(account)


def order_no() -> str:
    return timezone.now().strftime("%Y%m%d") + secrets.token_hex(8).upper()


def create(backend, amount="88.00", minutes=15):
    request = CreateRequest(
        out_trade_no=order_no(),
        amount=Decimal(amount),
        currency="CNY",
        subject="礼品卡",
        method="ecny",
        expires_at=timezone.now() + dt.timedelta(minutes=minutes),
    )
    return request, backend.create(request)


def pay(client, backend, amount="88.00", *, approve=True, reason=""):
    request, result = create(backend, amount)
    cashier = urlsplit(client.get(urlsplit(result.action.qr).path)["Location"]).path
    client.post(
        cashier, {"decision": "approve" if approve else "decline", "reason": reason, "return": "0"}
    )
    trade = SandboxTrade.objects.get(channel="ecny", out_trade_no=request.out_trade_no)
    return request, result, trade


def last_note() -> SandboxNotification:
    return SandboxNotification.objects.filter(channel="ecny").latest("pk")


# ---------------------------------------------------------------------------------------------
# Create → QR → cashier → notification


def test_create_returns_a_wallet_qr_and_the_cashier_page(client, backend):
    request, result = create(backend, "12.34")
    trade = SandboxTrade.objects.get(channel="ecny", out_trade_no=request.out_trade_no)
    assert result.action.type == "qr"
    assert result.action.url == f"http://testserver/sandbox/ecny/cashier/{trade.trade_no}/"
    assert result.action.qr == f"http://testserver/sandbox/ecny/qr/{trade.trade_no}/"
    assert result.channel_trade_no == trade.trade_no
    assert (
        trade.amount == Decimal("12.34")
        and trade.notify_url == "http://testserver/payments/notify/ecny/"
    )
    scanned = client.get(urlsplit(result.action.qr).path)
    assert (
        scanned.status_code == 302
        and urlsplit(scanned["Location"]).path == urlsplit(result.action.url).path
    )
    page = client.get(urlsplit(result.action.url).path)
    assert (
        b'data-testid="sandbox-approve"' in page.content
        and b'data-testid="sandbox-decline"' in page.content
    )


def test_create_is_idempotent_for_the_same_order_and_refuses_a_changed_one(backend):
    request, first = create(backend, "10.00")
    again = backend.create(request)
    assert again.channel_trade_no == first.channel_trade_no
    changed = CreateRequest(**{**request.__dict__, "amount": Decimal("11.00")})
    with pytest.raises(ChannelDeclined) as info:
        backend.create(changed)
    assert info.value.code == "ORDER_EXISTS"


def test_approve_enqueues_a_signed_notification_that_parses(client, backend):
    request, _, trade = pay(client, backend, "66.60")
    note = last_note()
    assert note.url == "http://testserver/payments/notify/ecny/"
    notice = backend.parse_notification(headers=note.headers, body=bytes(note.body))
    assert (notice.kind, notice.outcome, notice.amount, notice.currency) == (
        "payment",
        "succeeded",
        Decimal("66.60"),
        "CNY",
    )
    assert (notice.out_trade_no, notice.channel_trade_no, notice.merchant_id) == (
        request.out_trade_no,
        trade.trade_no,
        MER_ID,
    )
    assert notice.occurred_at is not None
    assert bank.ECNYSandbox().notification_accepted(
        200, backend.notification_reply(accepted=True).body
    )
    assert not bank.ECNYSandbox().notification_accepted(
        400, backend.notification_reply(accepted=False, message="x").body
    )


def test_wallet_decline_is_notified_with_its_code(client, backend):
    request, _, _ = pay(client, backend, approve=False, reason="insufficient_funds")
    notice = backend.parse_notification(headers={}, body=bytes(last_note().body))
    assert (notice.outcome, notice.error_code, notice.out_trade_no) == (
        "failed",
        "BALANCE_NOT_ENOUGH",
        request.out_trade_no,
    )
    assert backend.error_codes["BALANCE_NOT_ENOUGH"].counts_against_channel is False


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("phone_mismatch", "WALLET_INFO_MISMATCH"),
        ("risk", "RISK_REJECT"),
        ("timeout", "PAY_TIMEOUT"),
    ],
)
def test_cashier_declines_use_the_bank_codes(client, backend, key, code):
    request, _, trade = pay(client, backend, approve=False, reason=key)
    assert trade.decline_code == code and code in backend.error_codes
    answer = backend.query(out_trade_no=request.out_trade_no, channel_trade_no=trade.trade_no)
    assert (answer.outcome, answer.error_code) == ("failed", code)


# ---------------------------------------------------------------------------------------------
# Notifications that must be refused


def bank_note(merchant_id=MER_ID, kind="PAY", biz=None, sent=None) -> bytes:
    biz = biz or {
        "orderId": "20261125AAAA000011112222",
        "bankOrderId": "1",
        "txnAmt": "100",
        "tradeState": "SUCCESS",
    }
    return bank.notification(merchant_id, kind, biz, sent=sent)[1]


def test_swapped_amount_is_rejected(client, backend):
    pay(client, backend, "50.00")
    data = json.loads(bytes(last_note().body))
    biz = json.loads(data["bizContent"])
    data["bizContent"] = proto.compact_json({**biz, "txnAmt": "1"})
    with pytest.raises(NotificationRejected, match="bad signature"):
        backend.parse_notification(headers={}, body=json.dumps(data).encode())


def test_notification_signed_by_another_key_is_rejected(backend):
    private, public = proto.sm2_keypair()
    envelope = json.loads(bank_note())
    forged = proto.sign_envelope(envelope, private, public)
    with pytest.raises(NotificationRejected, match="bad signature"):
        backend.parse_notification(headers={}, body=json.dumps(forged).encode())


def test_notification_for_another_merchant_is_rejected(backend):
    with pytest.raises(NotificationRejected, match="merchant ECNYOTHER99"):
        backend.parse_notification(headers={}, body=bank_note(merchant_id="ECNYOTHER99"))


def test_stale_notification_is_rejected(backend):
    old = proto.beijing_now() - dt.timedelta(hours=25)
    with pytest.raises(NotificationRejected, match="stale timestamp"):
        backend.parse_notification(headers={}, body=bank_note(sent=old))


def test_notification_from_the_future_is_rejected(backend):
    with pytest.raises(NotificationRejected, match="stale timestamp"):
        backend.parse_notification(
            headers={}, body=bank_note(sent=proto.beijing_now() + dt.timedelta(minutes=30))
        )


def test_a_retry_hours_later_is_still_accepted(backend):
    notice = backend.parse_notification(
        headers={}, body=bank_note(sent=proto.beijing_now() - dt.timedelta(hours=12))
    )
    assert notice.outcome == "succeeded"


def test_unknown_event_is_rejected(backend):
    with pytest.raises(NotificationRejected, match="unknown event"):
        backend.parse_notification(headers={}, body=bank_note(kind="SETTLE"))
    with pytest.raises(NotificationRejected, match="unknown event"):
        backend.parse_notification(
            headers={}, body=bank_note(biz={"orderId": "X", "txnAmt": "1", "tradeState": "NOTPAY"})
        )


@pytest.mark.parametrize(
    "body", [b"\xff", b"[]", b'{"merId": 1}', b'{"merId": "ECNYTEST001"}', b"not json"]
)
def test_malformed_body_is_rejected(backend, body):
    with pytest.raises(NotificationRejected, match="malformed"):
        backend.parse_notification(headers={}, body=body)


# ---------------------------------------------------------------------------------------------
# Query and close


def test_query_follows_the_order(client, backend):
    request, result = create(backend)
    assert (
        backend.query(
            out_trade_no=request.out_trade_no, channel_trade_no=result.channel_trade_no
        ).outcome
        == "pending"
    )
    request2, result2, trade = pay(client, backend, "19.90")
    answer = backend.query(out_trade_no=request2.out_trade_no)
    assert (answer.outcome, answer.amount, answer.channel_trade_no) == (
        "succeeded",
        Decimal("19.90"),
        trade.trade_no,
    )
    assert answer.paid_at is not None


def test_unknown_order_queries_as_failed(backend):
    answer = backend.query(out_trade_no="20261125NEVERSENT0000001")
    assert (answer.outcome, answer.error_code) == ("failed", "ORDER_NOT_EXIST")


def test_close_then_query_is_closed_and_closing_twice_is_fine(backend):
    request, result = create(backend)
    backend.close(out_trade_no=request.out_trade_no, channel_trade_no=result.channel_trade_no)
    assert backend.query(out_trade_no=request.out_trade_no).outcome == "closed"
    backend.close(out_trade_no=request.out_trade_no)
    backend.close(out_trade_no="20261125NEVERSENT0000001")


def test_closing_a_paid_order_is_declined(client, backend):
    request, _, _ = pay(client, backend)
    with pytest.raises(ChannelDeclined) as info:
        backend.close(out_trade_no=request.out_trade_no)
    assert info.value.code == "ORDER_PAID"


def test_expired_order_is_closed_at_the_bank(backend):
    request, _ = create(backend, minutes=-1)
    assert backend.query(out_trade_no=request.out_trade_no).outcome == "closed"


# ---------------------------------------------------------------------------------------------
# Refunds


def refund_request(request, trade, amount, refund_no=None):
    return RefundRequest(
        refund_no=refund_no
        or "RF" + timezone.now().strftime("%Y%m%d") + secrets.token_hex(7).upper(),
        out_trade_no=request.out_trade_no,
        channel_trade_no=trade.trade_no,
        amount=Decimal(amount),
        total_amount=trade.amount,
        currency="CNY",
    )


def test_partial_and_full_refund_with_notification(client, backend):
    request, _, trade = pay(client, backend, "100.00")
    part = refund_request(request, trade, "30.00")
    result = backend.refund(part)
    assert result.outcome == "succeeded" and result.channel_refund_no
    notice = backend.parse_notification(headers={}, body=bytes(last_note().body))
    assert (notice.kind, notice.outcome, notice.amount, notice.refund_no) == (
        "refund",
        "succeeded",
        Decimal("30.00"),
        part.refund_no,
    )
    assert (
        notice.out_trade_no == request.out_trade_no
        and notice.channel_refund_no == result.channel_refund_no
    )
    assert backend.refund(refund_request(request, trade, "70.00")).outcome == "succeeded"
    assert (
        backend.refund(refund_request(request, trade, "0.01")).error_code == "REFUND_AMOUNT_EXCEED"
    )


def test_repeating_a_refund_number_refunds_once(client, backend):
    request, _, trade = pay(client, backend, "40.00")
    req = refund_request(request, trade, "10.00")
    first = backend.refund(req)
    again = backend.refund(req)
    assert again.outcome == "succeeded" and again.channel_refund_no == first.channel_refund_no
    assert backend.query_refund(req).channel_refund_no == first.channel_refund_no
    assert SandboxRefund.objects.filter(trade=trade).count() == 1
    conflict = backend.refund(refund_request(request, trade, "11.00", refund_no=req.refund_no))
    assert (conflict.outcome, conflict.error_code) == ("failed", "REFUND_CONFLICT")


def test_query_refund_sends_a_refund_the_bank_never_saw(client, backend):
    request, _, trade = pay(client, backend, "40.00")
    result = backend.query_refund(refund_request(request, trade, "5.00"))
    assert result.outcome == "succeeded"
    assert SandboxRefund.objects.filter(trade=trade).count() == 1


def test_refund_of_an_unpaid_order_fails(backend):
    request, result = create(backend)
    trade = SandboxTrade.objects.get(channel="ecny", out_trade_no=request.out_trade_no)
    assert backend.refund(refund_request(request, trade, "1.00")).error_code == "ORDER_NOT_PAID"


# ---------------------------------------------------------------------------------------------
# Envelope checks at the bank, faults, settlement


def test_bank_refuses_a_request_signed_with_the_wrong_key(account):
    private, public = proto.sm2_keypair()
    config = config_for(account)
    wrong = get_backend(
        type(config)(
            **{
                **config.__dict__,
                "credentials": {
                    **config.credentials,
                    "merchant_private_key": private,
                    "merchant_public_key": public,
                },
            }
        )
    )
    with pytest.raises(ChannelError) as info:
        wrong.query(out_trade_no="20261125ABCDEF0000000001")
    assert info.value.code == "SIGN_ERROR"


def test_backend_refuses_an_answer_not_signed_by_its_bank(account):
    _, stranger = proto.sm2_keypair()
    config = config_for(account)
    gullible = get_backend(
        type(config)(
            **{
                **config.__dict__,
                "credentials": {**config.credentials, "bank_public_key": stranger},
            }
        )
    )
    with pytest.raises(ChannelError) as info:
        gullible.query(out_trade_no="20261125ABCDEF0000000001")
    assert info.value.code == "BAD_SIGNATURE"


def test_bank_refuses_a_stale_request(client, backend):
    envelope = backend.envelope({"orderId": "X"})
    envelope["reqTime"] = proto.stamp(proto.beijing_now() - dt.timedelta(minutes=10))
    private = backend.credentials
    signed = proto.sign_envelope(envelope, private.private_key, private.public_key)
    answer = client.post(
        "/sandbox/ecny/polypay/v1.0/mchorders/orderquery",
        data=json.dumps(signed),
        content_type="application/json",
    ).json()
    assert (answer["returnCode"], answer["errCode"]) == ("FAIL", "TIMESTAMP_EXPIRED")
    assert proto.verify_envelope(answer, bank.bank_keys()[1])


def test_fault_switch_down_makes_the_channel_unavailable(backend):
    SandboxFault.objects.create(channel="ecny", down=True)
    with pytest.raises(ChannelUnavailable):
        create(backend)
    with pytest.raises(ChannelUnavailable):
        backend.query(out_trade_no="20261125ABCDEF0000000001")


def test_settlement_download_parses_and_agrees_with_the_sandbox(client, backend):
    req1, _, trade1 = pay(client, backend, "100.00")
    pay(client, backend, "2.50")
    pay(client, backend, "9.99", approve=False, reason="risk")
    backend.refund(refund_request(req1, trade1, "40.00"))
    today = proto.beijing_now().date()
    data = backend.download_settlement(today)
    assert data.startswith(b"H|ECNY-RECON|1.0|ECNYTEST001|")
    parsed = backend.open_settlement(io.BytesIO(data))
    lines = list(parsed.lines())
    totals = parsed.totals
    assert (totals.merchant_id, totals.day, totals.lines, totals.payments, totals.refunds) == (
        MER_ID,
        today,
        3,
        2,
        1,
    )
    assert (totals.gross, totals.refunded, totals.fees) == (
        Decimal("102.50"),
        Decimal("40.00"),
        Decimal("0.38"),
    )
    refund = next(line for line in lines if line.kind == "refund")
    assert (refund.out_trade_no, refund.amount, refund.fee) == (
        req1.out_trade_no,
        Decimal("40.00"),
        Decimal("-0.24"),
    )


def test_settlement_for_a_future_day_does_not_exist(backend):
    with pytest.raises(ChannelDeclined) as info:
        backend.download_settlement(proto.beijing_now().date() + dt.timedelta(days=2))
    assert info.value.code == "BILL_NOT_EXIST"
