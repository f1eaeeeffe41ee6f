"""PayPal Orders v2 + webhooks (CHANNELS.md §4.1–4.2): the backend against the in-process
sandbox, and webhooks the sandbox produced — intact and tampered.

paypalrestsdk (the SDK with the offline CRC32 check) is deprecated and not installed; its
``_get_expected_sig`` / ``_verify_signature`` are mirrored line for line below as the oracle.
"""

import base64
import binascii
import datetime as dt
import json
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.utils import timezone

from payments.accounts import backend_for
from payments.channels import http
from payments.channels.base import (
    ChannelDeclined,
    ChannelUnavailable,
    CreateRequest,
    NotificationRejected,
    RefundRequest,
)
from payments.channels.paypal.backend import PayPalBackend, clear_caches
from payments.channels.paypal.webhooks import expected_signature_string
from payments.channels.registry import backend_class
from payments.sandbox.models import SandboxFault, SandboxNotification, SandboxTrade
from payments.sandbox.paypal import certificates as sandbox_certs
from payments.sandbox.paypal.auth import issue_token
from payments.sandbox.paypal.gateway import PayPalSandbox
from tests.payments.factories import sandbox_account

MERCHANT = "PAYPALTEST001"


@pytest.fixture(autouse=True)
def _fresh_caches():
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def account(db):
    return sandbox_account("paypal", currency="USD")


@pytest.fixture
def backend(account) -> PayPalBackend:
    return backend_for(account)


def _request(
    out_trade_no="CX20261123PP0001", amount="25.00", currency="USD", **kw
) -> CreateRequest:
    return CreateRequest(
        out_trade_no=out_trade_no,
        amount=Decimal(amount),
        currency=currency,
        subject="Steam Wallet 200 HKD",
        method="paypal",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        return_url="http://testserver/orders/1/",
        **kw,
    )


def _cashier(client, url_or_order: str, decision="approve", reason="insufficient_funds"):
    path = (
        urlsplit(url_or_order).path
        if url_or_order.startswith("http")
        else f"/sandbox/paypal/cashier/{url_or_order}/"
    )
    response = client.post(path, {"decision": decision, "reason": reason, "return": "0"})
    assert response.status_code == 200
    return response


def _paid(client, backend, out_trade_no="CX20261123PP0001", amount="25.00"):
    result = backend.create(_request(out_trade_no, amount))
    _cashier(client, result.action.url)
    note = SandboxNotification.objects.filter(channel="paypal").latest("pk")
    return result, note


def _events(event_type: str) -> list[SandboxNotification]:
    return [
        n
        for n in SandboxNotification.objects.filter(channel="paypal").order_by("pk")
        if json.loads(bytes(n.body))["event_type"] == event_type
    ]


def _sign(
    body: bytes,
    webhook_id: str,
    *,
    when: dt.datetime | None = None,
    transmission_id="8d2b6f30-0000-4000-8000-000000000001",
) -> dict:
    """Headers signed with the sandbox's PayPal signer, for hand-built transmissions."""
    key, _pem, _name = sandbox_certs.signer_material()
    sent = (when or timezone.now()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = expected_signature_string(transmission_id, sent, webhook_id, body)
    return {
        "Content-Type": "application/json",
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": sent,
        "PAYPAL-TRANSMISSION-SIG": base64.b64encode(
            key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
        ).decode(),
        "PAYPAL-CERT-URL": sandbox_certs.cert_url(),
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }


# --- the PayPal SDK's offline check, mirrored ----------------------------------------------------


def sdk_get_expected_sig(transmission_id, timestamp, webhook_id, event_body):
    data = str(binascii.crc32(event_body.encode("utf-8")) & 0xFFFFFFFF)
    return transmission_id + "|" + timestamp + "|" + webhook_id + "|" + data


def test_registered_under_its_channel_code():
    assert backend_class("paypal") is PayPalBackend
    assert PayPalBackend.methods == ("paypal",)


def test_expected_string_matches_the_sdk():
    body = '{"id":"WH-1","event_type":"CHECKOUT.ORDER.APPROVED","summary":"订单"}'
    assert expected_signature_string(
        "tid", "2026-11-23T10:00:00Z", "WHID", body.encode()
    ) == sdk_get_expected_sig("tid", "2026-11-23T10:00:00Z", "WHID", body)
    # CRC32 is the unsigned decimal even when the signed value would be negative
    assert binascii.crc32(b"a") & 0xFFFFFFFF == int(
        expected_signature_string("t", "s", "w", b"a").rsplit("|", 1)[1]
    )


def test_sandbox_webhook_verifies_the_way_the_sdk_checks_it(client, account, backend):
    _result, note = _paid(client, backend)
    headers = note.headers
    cert_path = urlsplit(headers["PAYPAL-CERT-URL"]).path
    cert = x509.load_pem_x509_certificate(client.get(cert_path).content)
    assert (
        cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0]
        .value.lower()
        .endswith(".paypal.com")
    )
    expected = sdk_get_expected_sig(
        headers["PAYPAL-TRANSMISSION-ID"],
        headers["PAYPAL-TRANSMISSION-TIME"],
        account.credentials["webhook_id"],
        bytes(note.body).decode(),
    )
    cert.public_key().verify(
        base64.b64decode(headers["PAYPAL-TRANSMISSION-SIG"]),
        expected.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    ca = x509.load_pem_x509_certificate(account.credentials["webhook_ca_pem"].encode())
    cert.verify_directly_issued_by(ca)


# --- create / approve / capture -------------------------------------------------------------------


def test_create_opens_an_order_for_the_buttons_with_the_approve_link_as_fallback(backend):
    result = backend.create(_request())
    assert result.action.type == "widget"
    assert result.action.widget["sdk"] == "paypal"
    assert result.action.widget["order_id"] == result.channel_trade_no
    assert result.action.widget["fallback"] == "redirect"
    trade = SandboxTrade.objects.get(channel="paypal", out_trade_no="CX20261123PP0001")
    assert result.channel_trade_no == trade.trade_no
    assert urlsplit(result.action.url).path == f"/sandbox/paypal/cashier/{trade.trade_no}/"
    assert (trade.amount, trade.currency, trade.merchant_id) == (Decimal("25.00"), "USD", MERCHANT)
    assert trade.return_url.startswith(
        f"http://testserver/orders/1/?token={trade.trade_no}&PayerID="
    )


def test_create_is_idempotent_by_request_id(backend):
    first = backend.create(_request())
    again = backend.create(_request())
    assert again.channel_trade_no == first.channel_trade_no
    assert SandboxTrade.objects.filter(channel="paypal").count() == 1


def test_create_uses_the_requested_currency(backend):
    result = backend.create(_request(currency="JPY", amount="1500.00"))
    assert SandboxTrade.objects.get(trade_no=result.channel_trade_no).currency == "JPY"
    with pytest.raises(ChannelDeclined) as err:
        backend.create(_request("CX20261123PP0002", currency="JPY", amount="1500.50"))
    assert err.value.code == "DECIMAL_PRECISION"


def test_create_sends_the_payment_source_experience_context(backend, monkeypatch):
    """``application_context`` is deprecated in Orders v2; the return URL and the buttons'
    behaviour go in ``payment_source.paypal.experience_context``."""
    bodies = []
    real_send = http.send

    def spying(base_url, method, url, **kwargs):
        if url == "/v2/checkout/orders":
            bodies.append(kwargs["json"])
        return real_send(base_url, method, url, **kwargs)

    monkeypatch.setattr(http, "send", spying)
    result = backend.create(_request())
    (body,) = bodies
    assert "application_context" not in body
    assert body["payment_source"]["paypal"]["experience_context"] == {
        "return_url": "http://testserver/orders/1/",
        "cancel_url": "http://testserver/orders/1/",
        "user_action": "PAY_NOW",
        "shipping_preference": "NO_SHIPPING",
    }
    trade = SandboxTrade.objects.get(trade_no=result.channel_trade_no)
    assert urlsplit(result.action.url).path == f"/sandbox/paypal/cashier/{trade.trade_no}/"


@pytest.mark.parametrize(
    ("context", "rel"),
    [
        (
            {"payment_source": {"paypal": {"experience_context": {"return_url": "http://x/"}}}},
            "payer-action",
        ),
        ({"application_context": {"return_url": "http://x/"}}, "approve"),
    ],
)
def test_sandbox_names_the_buyers_link_as_paypal_does(client, account, context, rel):
    """PayPal names the buyer's link ``payer-action`` for an order created with a payment
    source and ``approve`` for one with the deprecated application context."""
    body = {
        "intent": "CAPTURE",
        "purchase_units": [
            {"invoice_id": "CX20261123PP0009", "amount": {"currency_code": "USD", "value": "5.00"}}
        ],
        **context,
    }
    response = client.post(
        "/sandbox/paypal/v2/checkout/orders",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {issue_token(MERCHANT)}",
    )
    assert response.status_code == 201
    assert {link["rel"] for link in response.json()["links"]} == {"self", rel}


def test_token_is_cached_between_calls(backend, monkeypatch):
    calls = []
    real_send = http.send

    def counting(base_url, method, url, **kwargs):
        calls.append(url)
        return real_send(base_url, method, url, **kwargs)

    monkeypatch.setattr(http, "send", counting)
    backend.create(_request("CX20261123PP0001"))
    backend.create(_request("CX20261123PP0002"))
    assert calls.count("/v1/oauth2/token") == 1


def test_bad_client_secret_is_unavailable(account):
    creds = dict(account.credentials, client_secret="wrong")
    account.credentials = creds
    with pytest.raises(ChannelUnavailable) as err:
        backend_for(account).create(_request())
    assert err.value.code == "invalid_client"


def test_approve_sends_a_signed_order_approved_webhook(client, account, backend):
    result, note = _paid(client, backend)
    event = json.loads(bytes(note.body))
    assert event["event_type"] == "CHECKOUT.ORDER.APPROVED"
    assert event["resource"]["id"] == result.channel_trade_no
    assert note.url == "http://testserver/payments/notify/paypal/"
    assert {
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-TRANSMISSION-TIME",
        "PAYPAL-TRANSMISSION-SIG",
        "PAYPAL-CERT-URL",
        "PAYPAL-AUTH-ALGO",
    } <= set(note.headers)


def test_order_approved_notice_captures_and_succeeds(client, backend):
    result, note = _paid(client, backend)
    notice = backend.parse_notification(headers=note.headers, body=bytes(note.body))
    assert (notice.kind, notice.outcome, notice.out_trade_no) == (
        "payment",
        "succeeded",
        "CX20261123PP0001",
    )
    assert (notice.amount, notice.currency, notice.channel_trade_no, notice.merchant_id) == (
        Decimal("25.00"),
        "USD",
        result.channel_trade_no,
        MERCHANT,
    )
    trade = SandboxTrade.objects.get(trade_no=result.channel_trade_no)
    assert trade.extra["capture_id"]
    # a redelivery captures nothing twice and still reports success
    again = backend.parse_notification(headers=note.headers, body=bytes(note.body))
    assert again.outcome == "succeeded"


def test_capture_completed_webhook_is_a_success_too(client, backend):
    _result, note = _paid(client, backend)
    backend.parse_notification(headers=note.headers, body=bytes(note.body))
    [completed] = _events("PAYMENT.CAPTURE.COMPLETED")
    notice = backend.parse_notification(headers=completed.headers, body=bytes(completed.body))
    assert (notice.outcome, notice.out_trade_no, notice.amount) == (
        "succeeded",
        "CX20261123PP0001",
        Decimal("25.00"),
    )


def test_declined_funding_source_yields_a_failed_notice(client, backend):
    result = backend.create(_request())
    _cashier(client, result.action.url, decision="decline", reason="insufficient_funds")
    note = SandboxNotification.objects.filter(channel="paypal").latest("pk")
    notice = backend.parse_notification(headers=note.headers, body=bytes(note.body))
    assert (notice.outcome, notice.error_code) == ("failed", "INSTRUMENT_DECLINED")
    assert PayPalBackend.error_codes["INSTRUMENT_DECLINED"].counts_against_channel is False


def test_each_delivery_try_is_signed_afresh(client, backend):
    _result, note = _paid(client, backend)
    fresh = PayPalSandbox().delivery_headers(note)
    assert fresh["PAYPAL-TRANSMISSION-ID"] != note.headers["PAYPAL-TRANSMISSION-ID"]
    assert backend.parse_notification(headers=fresh, body=bytes(note.body)).outcome == "succeeded"


def test_reply_is_an_empty_200():
    reply = PayPalBackend(account=None).notification_reply(accepted=True)
    assert (reply.status, reply.body) == (200, b"")
    assert PayPalBackend(account=None).notification_reply(accepted=False).status == 400


# --- tampered notifications ----------------------------------------------------------------------


def test_bad_signature_is_rejected(client, backend):
    _result, note = _paid(client, backend)
    headers = dict(note.headers)
    sig = base64.b64decode(headers["PAYPAL-TRANSMISSION-SIG"])
    headers["PAYPAL-TRANSMISSION-SIG"] = base64.b64encode(bytes([sig[0] ^ 1]) + sig[1:]).decode()
    with pytest.raises(NotificationRejected, match="bad PayPal webhook signature"):
        backend.parse_notification(headers=headers, body=bytes(note.body))


def test_swapped_amount_is_rejected(client, backend):
    _result, note = _paid(client, backend)
    body = bytes(note.body).replace(b'"value":"25.00"', b'"value":"2.50"')
    assert body != bytes(note.body)
    with pytest.raises(NotificationRejected, match="bad PayPal webhook signature"):
        backend.parse_notification(headers=note.headers, body=body)


def test_stale_transmission_is_rejected(client, account, backend):
    _result, note = _paid(client, backend)
    body = bytes(note.body)
    headers = _sign(
        body, account.credentials["webhook_id"], when=timezone.now() - dt.timedelta(minutes=16)
    )
    with pytest.raises(NotificationRejected, match="stale PayPal transmission"):
        backend.parse_notification(headers=headers, body=body)
    fresh = _sign(
        body, account.credentials["webhook_id"], when=timezone.now() - dt.timedelta(minutes=14)
    )
    assert backend.parse_notification(headers=fresh, body=body).outcome == "succeeded"


def test_transmission_from_the_future_is_rejected(client, account, backend):
    _result, note = _paid(client, backend)
    body = bytes(note.body)
    headers = _sign(
        body, account.credentials["webhook_id"], when=timezone.now() + dt.timedelta(minutes=10)
    )
    with pytest.raises(NotificationRejected, match="future"):
        backend.parse_notification(headers=headers, body=body)


def test_webhook_of_another_merchants_app_is_rejected(client, backend):
    other = backend_for(
        sandbox_account("paypal", code="paypal-2", merchant_id="PAYPALOTHER01", currency="USD")
    )
    result = other.create(_request("CX20261123PP0009"))
    _cashier(client, result.action.url)
    note = SandboxNotification.objects.filter(channel="paypal").latest("pk")
    with pytest.raises(NotificationRejected, match="bad PayPal webhook signature"):
        backend.parse_notification(headers=note.headers, body=bytes(note.body))


def test_event_naming_another_payee_is_rejected(client, account, backend):
    _result, note = _paid(client, backend)
    event = json.loads(bytes(note.body))
    event["resource"]["purchase_units"][0]["payee"]["merchant_id"] = "PAYPALOTHER01"
    body = json.dumps(event).encode()
    with pytest.raises(NotificationRejected, match="merchant PAYPALOTHER01"):
        backend.parse_notification(
            headers=_sign(body, account.credentials["webhook_id"]), body=body
        )


def test_malformed_body_is_rejected(account, backend):
    body = b"<xml>not json</xml>"
    with pytest.raises(NotificationRejected, match="not JSON"):
        backend.parse_notification(
            headers=_sign(body, account.credentials["webhook_id"]), body=body
        )


def test_unknown_event_is_rejected(account, backend):
    body = json.dumps(
        {"id": "WH-1", "event_type": "BILLING.SUBSCRIPTION.CREATED", "resource": {"id": "I-1"}}
    ).encode()
    with pytest.raises(NotificationRejected, match="unknown PayPal event type"):
        backend.parse_notification(
            headers=_sign(body, account.credentials["webhook_id"]), body=body
        )


def test_missing_headers_are_rejected(backend):
    with pytest.raises(NotificationRejected, match="missing header"):
        backend.parse_notification(headers={"Content-Type": "application/json"}, body=b"{}")


def test_cert_url_outside_paypal_and_the_account_is_refused(client, backend):
    _result, note = _paid(client, backend)
    for url in (
        "https://evil.example.com/cert.pem",
        "http://api.paypal.com/v1/notifications/certs/X",
        "https://user@api.paypal.com.evil.com/x",
    ):
        headers = dict(note.headers, **{"PAYPAL-CERT-URL": url})
        with pytest.raises(NotificationRejected, match="PAYPAL-CERT-URL"):
            backend.parse_notification(headers=headers, body=bytes(note.body))


def test_certificate_must_chain_to_the_configured_ca(client, account):
    from payments.sandbox import keys

    _result, note = _paid(client, backend_for(account))
    other_key = sandbox_certs.load_key(keys.generate_rsa_private_pem())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Some Other CA")])
    account.credentials = dict(
        account.credentials,
        webhook_ca_pem=sandbox_certs.issue_certificate(
            name, name, other_key.public_key(), other_key, ca=True
        ),
    )
    with pytest.raises(NotificationRejected, match="does not chain"):
        backend_for(account).parse_notification(headers=note.headers, body=bytes(note.body))


def test_unsupported_algorithm_is_rejected(client, backend):
    _result, note = _paid(client, backend)
    headers = dict(note.headers, **{"PAYPAL-AUTH-ALGO": "SHA1withRSA"})
    with pytest.raises(NotificationRejected, match="PAYPAL-AUTH-ALGO"):
        backend.parse_notification(headers=headers, body=bytes(note.body))


def test_header_names_are_case_insensitive(client, backend):
    _result, note = _paid(client, backend)
    headers = {name.title(): value for name, value in note.headers.items()}
    assert backend.parse_notification(headers=headers, body=bytes(note.body)).outcome == "succeeded"


# --- query / close / refund ----------------------------------------------------------------------


def test_query_reports_pending_before_approval(backend):
    result = backend.create(_request())
    answer = backend.query(
        out_trade_no="CX20261123PP0001", channel_trade_no=result.channel_trade_no
    )
    assert (answer.outcome, answer.amount, answer.currency) == ("pending", Decimal("25.00"), "USD")


def test_query_captures_an_approved_order_whose_webhook_was_lost(client, backend):
    SandboxFault.objects.create(channel="paypal", lose_notifications=True)
    result = backend.create(_request())
    _cashier(client, result.action.url)
    SandboxFault.objects.filter(channel="paypal").delete()
    answer = backend.query(
        out_trade_no="CX20261123PP0001", channel_trade_no=result.channel_trade_no
    )
    assert (answer.outcome, answer.amount) == ("succeeded", Decimal("25.00"))
    assert answer.paid_at is not None
    assert SandboxTrade.objects.get(trade_no=result.channel_trade_no).extra["capture_id"]


def test_query_reports_a_walked_away_order_as_closed(client, backend):
    result = backend.create(_request())
    _cashier(client, result.action.url, decision="decline", reason="timeout")
    assert not SandboxNotification.objects.filter(channel="paypal").exists()
    answer = backend.query(
        out_trade_no="CX20261123PP0001", channel_trade_no=result.channel_trade_no
    )
    assert answer.outcome == "closed"


def test_query_without_order_id_is_unknown(backend):
    assert backend.query(out_trade_no="CX20261123PP0001").outcome == "unknown"


def test_query_of_an_unknown_order_is_closed(backend):
    assert (
        backend.query(out_trade_no="CX1", channel_trade_no="NOSUCHORDER00000").outcome == "closed"
    )


def test_close_is_a_no_op(backend):
    result = backend.create(_request())
    assert PayPalBackend.supports_close is False
    backend.close(out_trade_no="CX20261123PP0001", channel_trade_no=result.channel_trade_no)
    assert (
        SandboxTrade.objects.get(trade_no=result.channel_trade_no).status
        == SandboxTrade.Status.WAITING
    )


def _refund(result, refund_no, amount, total="25.00") -> RefundRequest:
    return RefundRequest(
        refund_no=refund_no,
        out_trade_no="CX20261123PP0001",
        channel_trade_no=result.channel_trade_no,
        amount=Decimal(amount),
        total_amount=Decimal(total),
        currency="USD",
        reason="card did not work",
    )


def _captured(client, backend):
    result, note = _paid(client, backend)
    backend.parse_notification(headers=note.headers, body=bytes(note.body))
    return result


def test_partial_then_full_refund_and_idempotent_repeat(client, backend):
    result = _captured(client, backend)
    first = backend.refund(_refund(result, "RF20261123000001", "10.00"))
    assert first.outcome == "succeeded" and first.channel_refund_no
    repeat = backend.refund(_refund(result, "RF20261123000001", "10.00"))
    assert repeat.channel_refund_no == first.channel_refund_no
    rest = backend.refund(_refund(result, "RF20261123000002", "15.00"))
    assert rest.outcome == "succeeded" and rest.channel_refund_no != first.channel_refund_no
    trade = SandboxTrade.objects.get(trade_no=result.channel_trade_no)
    assert trade.refunded == Decimal("25.00")
    with pytest.raises(ChannelDeclined) as err:
        backend.refund(_refund(result, "RF20261123000003", "1.00"))
    assert err.value.code == "CAPTURE_FULLY_REFUNDED"
    order = backend.query(out_trade_no="CX20261123PP0001", channel_trade_no=result.channel_trade_no)
    assert order.outcome == "succeeded"


def test_refund_beyond_the_capture_is_declined(client, backend):
    result = _captured(client, backend)
    with pytest.raises(ChannelDeclined) as err:
        backend.refund(_refund(result, "RF20261123000001", "30.00"))
    assert err.value.code == "REFUND_AMOUNT_EXCEEDED"


def test_refund_notification_and_query(client, backend):
    result = _captured(client, backend)
    backend.refund(_refund(result, "RF20261123000001", "10.00"))
    [note] = _events("PAYMENT.CAPTURE.REFUNDED")
    notice = backend.parse_notification(headers=note.headers, body=bytes(note.body))
    assert (notice.kind, notice.outcome, notice.refund_no, notice.out_trade_no, notice.amount) == (
        "refund",
        "succeeded",
        "RF20261123000001",
        "CX20261123PP0001",
        Decimal("10.00"),
    )
    found = backend.query_refund(_refund(result, "RF20261123000001", "10.00"))
    assert (found.outcome, found.channel_refund_no) == ("succeeded", notice.channel_refund_no)
    assert backend.query_refund(_refund(result, "RF20261123000099", "1.00")).outcome == "failed"


def test_refund_before_capture_is_declined(backend):
    result = backend.create(_request())
    with pytest.raises(ChannelDeclined):
        backend.refund(_refund(result, "RF20261123000001", "10.00"))


# --- faults and settlement -----------------------------------------------------------------------


def test_channel_down_is_unavailable(backend):
    SandboxFault.objects.create(channel="paypal", down=True)
    with pytest.raises(ChannelUnavailable):
        backend.create(_request())


def test_settlement_download_parses_to_its_own_totals(client, backend):
    result = _captured(client, backend)
    _captured_two = backend.create(_request("CX20261123PP0002", "12.34"))
    _cashier(client, _captured_two.action.url)
    note = SandboxNotification.objects.filter(channel="paypal").latest("pk")
    backend.parse_notification(headers=note.headers, body=bytes(note.body))
    backend.refund(_refund(result, "RF20261123000001", "10.00"))
    day = timezone.localdate()
    data = backend.download_settlement(day)
    assert data.startswith(b'\xef\xbb\xbf"RH"')
    report = PayPalBackend.open_settlement(__import__("io").BytesIO(data), merchant_id=MERCHANT)
    lines = list(report.lines())
    totals = report.totals
    assert (totals.merchant_id, totals.day) == (MERCHANT, day)
    assert (totals.payments, totals.refunds) == (2, 1)
    assert (totals.gross, totals.refunded) == (Decimal("37.34"), Decimal("10.00"))
    # 0.6 %: 0.15 + 0.07 charged, 0.06 returned pro rata on the 10.00 refund
    assert totals.fees == Decimal("0.16")
    payment = next(
        line for line in lines if line.out_trade_no == "CX20261123PP0001" and line.kind == "payment"
    )
    assert payment.channel_trade_no == result.channel_trade_no
    refund = next(line for line in lines if line.kind == "refund")
    assert (refund.refund_no, refund.amount, refund.fee) == (
        "RF20261123000001",
        Decimal("10.00"),
        Decimal("-0.06"),
    )


def test_settlement_of_a_quiet_day_is_an_empty_valid_report(backend):
    data = backend.download_settlement(dt.date(2020, 1, 1))
    report = PayPalBackend.open_settlement(__import__("io").BytesIO(data))
    assert list(report.lines()) == []
    assert report.totals.day == dt.date(2020, 1, 1) and report.totals.lines == 0
