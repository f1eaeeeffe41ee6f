"""Card acquirer, Stripe protocol (CHANNELS.md §4.4–4.5): webhook signatures cross-checked with
the ``stripe`` SDK, the backend against the in-process sandbox, and webhooks the sandbox
produced — intact and tampered."""

import datetime as dt
import io
import json
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from django.utils import timezone

from payments.accounts import backend_for
from payments.channels.base import (
    ChannelDeclined,
    ChannelUnavailable,
    CreateRequest,
    NotificationRejected,
    RefundRequest,
)
from payments.channels.card import CardBackend
from payments.channels.card.wire import compute_signature, signature_header, verify_signature
from payments.channels.registry import backend_class
from payments.sandbox import card as sandbox
from payments.sandbox.card import protocol as sandbox_protocol
from payments.sandbox.card import state as sandbox_state
from payments.sandbox.models import SandboxFault, SandboxNotification, SandboxTrade
from tests.payments.factories import sandbox_account

MERCHANT = "acct_1CardexTEST0001"
BODY = (
    b'{"id":"evt_test_webhook","object":"event",'
    b'"data":{"object":{"id":"rdr_123","object":"terminal.reader"}}}'
)
SECRET = "whsec_test_secret"


def stripe_test_header(
    *, payload: str, secret: str, timestamp: int | None = None, scheme: str = "v1"
) -> str:
    """The header stripe-python's own tests build (tests/test_webhook.py ``generate_header``)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature("%d.%s" % (timestamp, payload), secret)  # noqa: UP031 - as the SDK writes it
    return "t=%d,%s=%s" % (timestamp, scheme, signature)  # noqa: UP031


@pytest.fixture
def account(db):
    return sandbox_account("card", merchant_id=MERCHANT, currency="USD")


@pytest.fixture
def backend(account) -> CardBackend:
    return backend_for(account)


def _request(
    out_trade_no="CX20261123CD0001", amount="88.00", method="card", instalments=None, currency="USD"
) -> CreateRequest:
    return CreateRequest(
        out_trade_no=out_trade_no,
        amount=Decimal(amount),
        currency=currency,
        subject="Apple Gift Card 100",
        method=method,
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        return_url="http://testserver/orders/7/",
        instalments=instalments,
    )


def _page(url: str) -> tuple[str, dict]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def _pay(
    client,
    result,
    *,
    number="4242 4242 4242 4242",
    decision="approve",
    reason="insufficient_funds",
    exp="12/34",
    cvc="123",
):
    path, query = _page(result.action.url)
    query.pop("return_url", None)  # stay on the acquirer's page so tests can read it
    data = {
        **query,
        "decision": decision,
        "reason": reason,
        "number": number,
        "exp": exp,
        "cvc": cvc,
    }
    return client.post(path, data)


def _latest() -> SandboxNotification:
    return SandboxNotification.objects.filter(channel="card").latest("pk")


# --- signatures (§4.5) ---------------------------------------------------------------------------


def test_stripe_sdk_accepts_headers_we_produce():
    header = signature_header(SECRET, BODY)
    assert stripe.WebhookSignature.verify_header(BODY, header, SECRET, tolerance=300)
    sandbox_header = sandbox_protocol.sign(SECRET, BODY)
    assert stripe.WebhookSignature.verify_header(BODY, sandbox_header, SECRET, tolerance=300)


def test_we_accept_headers_made_the_sdk_way():
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET)
    assert verify_signature(BODY, header, [SECRET])
    header = stripe_test_header(payload=BODY.decode(), secret=SECRET)
    assert verify_signature(BODY, header, [SECRET])
    assert compute_signature(
        SECRET, 1700000000, BODY
    ) == stripe.WebhookSignature._compute_signature(f"1700000000.{BODY.decode()}", SECRET)


def test_any_matching_v1_is_enough():
    header = (
        stripe_test_header(payload=BODY.decode(), secret=SECRET) + ",v1=bad_signature,v0=whatever"
    )
    assert verify_signature(BODY, header, [SECRET])
    rotated = signature_header("whsec_old", BODY)
    assert verify_signature(BODY, rotated, ["whsec_new", "whsec_old"])


def test_only_the_v1_scheme_counts():
    header = stripe_test_header(payload=BODY.decode(), secret=SECRET, scheme="v0")
    with pytest.raises(NotificationRejected, match="no v1 signature"):
        verify_signature(BODY, header, [SECRET])


def test_wrong_secret_or_body_is_rejected():
    with pytest.raises(NotificationRejected, match="bad Stripe-Signature"):
        verify_signature(BODY, signature_header("whsec_other", BODY), [SECRET])
    with pytest.raises(NotificationRejected, match="bad Stripe-Signature"):
        verify_signature(BODY + b" ", signature_header(SECRET, BODY), [SECRET])


def test_timestamps_outside_300_seconds_are_rejected():
    now = time.time()
    old = stripe_test_header(payload=BODY.decode(), secret=SECRET, timestamp=int(now) - 301)
    with pytest.raises(NotificationRejected, match="stale"):
        verify_signature(BODY, old, [SECRET], now=now)
    assert verify_signature(
        BODY,
        stripe_test_header(payload=BODY.decode(), secret=SECRET, timestamp=int(now) - 299),
        [SECRET],
        now=now,
    )
    with pytest.raises(NotificationRejected, match="future"):
        verify_signature(BODY, signature_header(SECRET, BODY, int(now) + 400), [SECRET], now=now)


def test_malformed_header_is_rejected():
    with pytest.raises(NotificationRejected, match="malformed"):
        verify_signature(BODY, "i'm not even a real signature header", [SECRET])


# --- create / pay ---------------------------------------------------------------------------------


def test_registered_with_both_card_methods():
    assert backend_class("card") is CardBackend
    assert CardBackend.methods == ("card", "card_instalments")


def test_create_returns_widget_params_without_the_secret_key(account, backend):
    result = backend.create(_request())
    intent = SandboxTrade.objects.get(channel="card", out_trade_no="CX20261123CD0001")
    assert result.action.type == "widget"
    assert result.channel_trade_no == intent.trade_no and intent.trade_no.startswith("pi_")
    widget = dict(result.action.widget)
    assert widget["publishable_key"] == account.credentials["publishable_key"]
    assert widget["client_secret"].startswith(f"{intent.trade_no}_secret_")
    assert widget["payment_intent"] == intent.trade_no
    assert account.credentials["secret_key"] not in json.dumps(result.action.as_dict())
    path, query = _page(result.action.url)
    assert path == f"/sandbox/card/elements/{intent.trade_no}/"
    assert (
        query["client_secret"] == widget["client_secret"]
        and query["return_url"] == "http://testserver/orders/7/"
    )
    assert (intent.amount, intent.currency) == (Decimal("88.00"), "USD")
    assert intent.extra["metadata"] == {"out_trade_no": "CX20261123CD0001", "merchant_id": MERCHANT}


def test_create_is_idempotent_by_out_trade_no(backend):
    first = backend.create(_request())
    again = backend.create(_request())
    assert again.channel_trade_no == first.channel_trade_no
    assert SandboxTrade.objects.filter(channel="card").count() == 1


def test_zero_decimal_currency_is_sent_in_whole_units(backend):
    backend.create(_request(currency="JPY", amount="1500.00"))
    trade = SandboxTrade.objects.get(channel="card")
    assert sandbox_state.intent_json(trade)["amount"] == 1500
    with pytest.raises(ChannelDeclined):
        backend.create(_request("CX20261123CD0002", currency="JPY", amount="1500.50"))


def test_instalments_enable_the_option_and_carry_the_plan(client, backend):
    result = backend.create(_request(method="card_instalments", instalments=6, amount="600.00"))
    trade = SandboxTrade.objects.get(channel="card")
    assert trade.extra["installments_enabled"] is True
    assert result.action.widget["installments"] == {
        "enabled": True,
        "plan": {"count": 6, "interval": "month", "type": "fixed_count"},
    }
    assert _page(result.action.url)[1]["installments"] == "6"
    assert _pay(client, result).status_code == 200
    trade.refresh_from_db()
    assert trade.status == SandboxTrade.Status.PAID
    assert trade.extra["installments_plan"] == {
        "count": 6,
        "interval": "month",
        "type": "fixed_count",
    }


def test_card_instalments_need_a_plan(backend):
    with pytest.raises(ChannelDeclined) as err:
        backend.create(_request(method="card_instalments"))
    assert err.value.code == "parameter_missing"


def test_hosted_page_has_the_sandbox_controls(client, backend):
    result = backend.create(_request())
    path, query = _page(result.action.url)
    html = client.get(path, query).content.decode()
    for field in (
        'name="number"',
        'name="exp"',
        'name="cvc"',
        'data-testid="sandbox-approve"',
        'data-testid="sandbox-decline"',
    ):
        assert field in html
    assert client.get(path, {"client_secret": "pi_wrong_secret_x"}).status_code == 404


def test_approved_card_sends_a_signed_succeeded_event(client, account, backend):
    result = backend.create(_request())
    _pay(client, result)
    note = _latest()
    assert note.url == "http://testserver/payments/notify/card/"
    assert stripe.WebhookSignature.verify_header(
        bytes(note.body),
        note.headers["Stripe-Signature"],
        account.credentials["webhook_secret"],
        tolerance=300,
    )
    notice = backend.parse_notification(headers=note.headers, body=bytes(note.body))
    assert (notice.kind, notice.outcome, notice.out_trade_no, notice.channel_trade_no) == (
        "payment",
        "succeeded",
        "CX20261123CD0001",
        result.channel_trade_no,
    )
    assert (notice.amount, notice.currency, notice.merchant_id) == (
        Decimal("88.00"),
        "USD",
        MERCHANT,
    )


def test_return_url_gets_stripes_redirect_parameters(client, backend):
    result = backend.create(_request())
    path, query = _page(result.action.url)
    response = client.post(
        path,
        {
            **query,
            "decision": "approve",
            "number": "4242424242424242",
            "exp": "12/34",
            "cvc": "123",
        },
    )
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == "/orders/7/"
    assert parse_qs(target.query)["redirect_status"] == ["succeeded"]


@pytest.mark.parametrize(
    ("number", "decision", "reason", "code"),
    [
        ("4000 0000 0000 9995", "approve", "", "insufficient_funds"),
        ("4000 0000 0000 0002", "approve", "", "generic_decline"),
        ("4000 0000 0000 0069", "approve", "", "expired_card"),
        ("4000 0000 0000 0127", "approve", "", "incorrect_cvc"),
        ("4242 4242 4242 4241", "approve", "", "incorrect_number"),
        ("4242 4242 4242 4242", "decline", "phone_mismatch", "incorrect_cvc"),
        ("4242 4242 4242 4242", "decline", "risk", "fraudulent"),
        ("4242 4242 4242 4242", "decline", "do_not_honor", "do_not_honor"),
    ],
)
def test_declines_arrive_as_failed_notices_with_the_decline_code(
    client, backend, number, decision, reason, code
):
    result = backend.create(_request())
    _pay(client, result, number=number, decision=decision, reason=reason)
    note = _latest()
    assert json.loads(bytes(note.body))["type"] == "payment_intent.payment_failed"
    notice = backend.parse_notification(headers=note.headers, body=bytes(note.body))
    assert (notice.outcome, notice.error_code) == ("failed", code)
    assert code in CardBackend.error_codes
    answer = backend.query(
        out_trade_no="CX20261123CD0001", channel_trade_no=result.channel_trade_no
    )
    assert (answer.outcome, answer.error_code) == ("failed", code)


def test_buyer_problems_do_not_count_against_the_channel():
    for code in (
        "insufficient_funds",
        "incorrect_cvc",
        "expired_card",
        "do_not_honor",
        "fraudulent",
    ):
        assert CardBackend.error_codes[code].counts_against_channel is False
    assert CardBackend.error_codes["authentication_required"].action == "step_up"
    assert CardBackend.error_codes["processing_error"].action == "failover"


def test_large_amounts_step_up_to_3d_secure(client, backend):
    result = backend.create(_request(amount="1500.00"))
    response = _pay(client, result)
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == f"/sandbox/card/3ds/{result.channel_trade_no}/"
    pending = backend.query(
        out_trade_no="CX20261123CD0001", channel_trade_no=result.channel_trade_no
    )
    assert (pending.outcome, pending.raw["status"]) == ("pending", "requires_action")
    assert pending.raw["next_action"]["type"] == "redirect_to_url"
    challenge = client.get(response["Location"])
    assert (
        b'data-testid="sandbox-approve"' in challenge.content
        and b'data-testid="sandbox-decline"' in challenge.content
    )
    _path, query = _page(response["Location"])
    client.post(urlsplit(response["Location"]).path, {**query, "decision": "approve"})
    done = backend.query(out_trade_no="CX20261123CD0001", channel_trade_no=result.channel_trade_no)
    assert done.outcome == "succeeded" and done.paid_at is not None


def test_failed_3d_secure_is_an_authentication_failure(client, backend):
    result = backend.create(_request())
    response = _pay(client, result, number="4000 0000 0000 3220")
    _path, query = _page(response["Location"])
    client.post(urlsplit(response["Location"]).path, {**query, "decision": "decline"})
    notice = backend.parse_notification(headers=_latest().headers, body=bytes(_latest().body))
    assert (notice.outcome, notice.error_code) == (
        "failed",
        "payment_intent_authentication_failure",
    )


def test_each_delivery_try_is_signed_afresh(client, backend):
    result = backend.create(_request())
    _pay(client, result)
    note = _latest()
    stale = dict(
        note.headers,
        **{
            "Stripe-Signature": sandbox_protocol.sign(
                backend.account.credentials["webhook_secret"],
                bytes(note.body),
                int(time.time()) - 3600,
            )
        },
    )
    note.headers = stale
    with pytest.raises(NotificationRejected, match="stale"):
        backend.parse_notification(headers=stale, body=bytes(note.body))
    fresh = sandbox.CardSandbox().delivery_headers(note)
    assert backend.parse_notification(headers=fresh, body=bytes(note.body)).outcome == "succeeded"


def test_reply_is_a_json_200():
    reply = CardBackend(account=None).notification_reply(accepted=True)
    assert (reply.status, reply.content_type) == (200, "application/json")
    assert CardBackend(account=None).notification_reply(accepted=False).status == 400


# --- tampered notifications ----------------------------------------------------------------------


def _succeeded_note(client, backend) -> SandboxNotification:
    result = backend.create(_request())
    _pay(client, result)
    return _latest()


def test_bad_signature_is_rejected(client, backend):
    note = _succeeded_note(client, backend)
    header = note.headers["Stripe-Signature"]
    tampered = header[:-1] + ("0" if header[-1] != "0" else "1")
    with pytest.raises(NotificationRejected, match="bad Stripe-Signature"):
        backend.parse_notification(headers={"Stripe-Signature": tampered}, body=bytes(note.body))


def test_swapped_amount_is_rejected(client, backend):
    note = _succeeded_note(client, backend)
    body = bytes(note.body).replace(b'"amount":8800', b'"amount":880')
    assert body != bytes(note.body)
    with pytest.raises(NotificationRejected, match="bad Stripe-Signature"):
        backend.parse_notification(headers=note.headers, body=body)


def test_stale_timestamp_is_rejected(client, account, backend):
    note = _succeeded_note(client, backend)
    header = signature_header(
        account.credentials["webhook_secret"], bytes(note.body), int(time.time()) - 301
    )
    with pytest.raises(NotificationRejected, match="stale"):
        backend.parse_notification(headers={"Stripe-Signature": header}, body=bytes(note.body))


def test_event_of_another_endpoint_is_rejected(client, backend):
    other = backend_for(
        sandbox_account("card", code="card-2", merchant_id="acct_other", currency="USD")
    )
    result = other.create(_request("CX20261123CD0009"))
    _pay(client, result)
    note = _latest()
    with pytest.raises(NotificationRejected, match="bad Stripe-Signature"):
        backend.parse_notification(headers=note.headers, body=bytes(note.body))


def _resign(account, event: dict) -> tuple[dict, bytes]:
    body = json.dumps(event).encode()
    return {"Stripe-Signature": signature_header(account.credentials["webhook_secret"], body)}, body


def test_event_naming_another_account_is_rejected(client, account, backend):
    event = json.loads(bytes(_succeeded_note(client, backend).body))
    event["account"] = "acct_someone_else"
    headers, body = _resign(account, event)
    with pytest.raises(NotificationRejected, match="account acct_someone_else"):
        backend.parse_notification(headers=headers, body=body)
    event.pop("account")
    event["data"]["object"]["metadata"]["merchant_id"] = "acct_someone_else"
    headers, body = _resign(account, event)
    with pytest.raises(NotificationRejected, match="merchant acct_someone_else"):
        backend.parse_notification(headers=headers, body=body)


def test_live_event_on_a_test_account_is_rejected(client, account, backend):
    event = json.loads(bytes(_succeeded_note(client, backend).body))
    event["livemode"] = True
    headers, body = _resign(account, event)
    with pytest.raises(NotificationRejected, match="live-mode event"):
        backend.parse_notification(headers=headers, body=body)


def test_malformed_body_is_rejected(account, backend):
    body = b"this is not valid JSON"
    with pytest.raises(NotificationRejected, match="not JSON"):
        backend.parse_notification(
            headers={
                "Stripe-Signature": signature_header(account.credentials["webhook_secret"], body)
            },
            body=body,
        )


def test_unknown_event_is_rejected(account, backend):
    headers, body = _resign(
        account,
        {
            "id": "evt_1",
            "object": "event",
            "livemode": False,
            "type": "customer.created",
            "data": {"object": {"id": "cus_1"}},
        },
    )
    with pytest.raises(NotificationRejected, match="unknown card webhook event type"):
        backend.parse_notification(headers=headers, body=body)


def test_missing_signature_header_is_rejected(backend):
    with pytest.raises(NotificationRejected, match="no Stripe-Signature"):
        backend.parse_notification(headers={"Content-Type": "application/json"}, body=b"{}")


# --- query / close / refund ----------------------------------------------------------------------


def test_query_before_payment_is_pending(backend):
    result = backend.create(_request())
    answer = backend.query(
        out_trade_no="CX20261123CD0001", channel_trade_no=result.channel_trade_no
    )
    assert (answer.outcome, answer.amount, answer.currency) == ("pending", Decimal("88.00"), "USD")


def test_query_without_the_intent_id_searches_by_metadata(client, backend):
    result = backend.create(_request())
    _pay(client, result)
    answer = backend.query(out_trade_no="CX20261123CD0001")
    assert (answer.outcome, answer.channel_trade_no) == ("succeeded", result.channel_trade_no)
    assert backend.query(out_trade_no="CX-NEVER-CREATED").outcome == "unknown"


def test_close_cancels_and_is_repeatable(client, backend):
    result = backend.create(_request())
    backend.close(out_trade_no="CX20261123CD0001", channel_trade_no=result.channel_trade_no)
    backend.close(out_trade_no="CX20261123CD0001", channel_trade_no=result.channel_trade_no)
    answer = backend.query(
        out_trade_no="CX20261123CD0001", channel_trade_no=result.channel_trade_no
    )
    assert (answer.outcome, answer.error_code) == ("closed", "abandoned")
    path, query = _page(result.action.url)
    assert b'data-testid="sandbox-approve"' not in client.get(path, query).content


def test_walked_away_buyer_stays_pending_until_closed(client, backend):
    result = backend.create(_request())
    _pay(client, result, decision="decline", reason="timeout")
    assert not SandboxNotification.objects.filter(channel="card").exists()
    assert (
        backend.query(
            out_trade_no="CX20261123CD0001", channel_trade_no=result.channel_trade_no
        ).outcome
        == "pending"
    )
    backend.close(out_trade_no="CX20261123CD0001", channel_trade_no=result.channel_trade_no)
    assert (
        backend.query(
            out_trade_no="CX20261123CD0001", channel_trade_no=result.channel_trade_no
        ).outcome
        == "closed"
    )


def test_closing_a_paid_intent_is_declined(client, backend):
    result = backend.create(_request())
    _pay(client, result)
    with pytest.raises(ChannelDeclined) as err:
        backend.close(out_trade_no="CX20261123CD0001", channel_trade_no=result.channel_trade_no)
    assert err.value.code == "payment_intent_unexpected_state"


def _refund(result, refund_no, amount) -> RefundRequest:
    return RefundRequest(
        refund_no=refund_no,
        out_trade_no="CX20261123CD0001",
        channel_trade_no=result.channel_trade_no,
        amount=Decimal(amount),
        total_amount=Decimal("88.00"),
        currency="USD",
        reason="code already used",
    )


def test_partial_and_full_refunds_are_idempotent(client, backend):
    result = backend.create(_request())
    _pay(client, result)
    first = backend.refund(_refund(result, "RF20261123000001", "30.00"))
    assert first.outcome == "succeeded" and first.channel_refund_no.startswith("re_")
    assert (
        backend.refund(_refund(result, "RF20261123000001", "30.00")).channel_refund_no
        == first.channel_refund_no
    )
    with pytest.raises(ChannelDeclined) as err:
        backend.refund(_refund(result, "RF20261123000001", "31.00"))
    assert err.value.code == "idempotency_error"
    with pytest.raises(ChannelDeclined) as err:
        backend.refund(_refund(result, "RF20261123000002", "60.00"))
    assert err.value.code == "amount_too_large"
    rest = backend.refund(_refund(result, "RF20261123000002", "58.00"))
    assert rest.outcome == "succeeded"
    with pytest.raises(ChannelDeclined) as err:
        backend.refund(_refund(result, "RF20261123000003", "1.00"))
    assert err.value.code == "charge_already_refunded"
    assert (
        backend.query_refund(_refund(result, "RF20261123000002", "58.00")).channel_refund_no
        == rest.channel_refund_no
    )
    assert backend.query_refund(_refund(result, "RF20261123000099", "1.00")).outcome == "failed"


def test_refund_of_an_unpaid_intent_is_declined(backend):
    result = backend.create(_request())
    with pytest.raises(ChannelDeclined) as err:
        backend.refund(_refund(result, "RF20261123000001", "10.00"))
    assert err.value.code == "payment_intent_unexpected_state"


def test_charge_refunded_event_becomes_a_refund_notice(client, backend):
    result = backend.create(_request())
    _pay(client, result)
    backend.refund(_refund(result, "RF20261123000001", "30.00"))
    backend.refund(_refund(result, "RF20261123000002", "8.00"))
    first_event, second_event = [
        n
        for n in SandboxNotification.objects.filter(channel="card").order_by("pk")
        if json.loads(bytes(n.body))["type"] == "charge.refunded"
    ]
    first = backend.parse_notification(headers=first_event.headers, body=bytes(first_event.body))
    second = backend.parse_notification(headers=second_event.headers, body=bytes(second_event.body))
    assert (first.kind, first.refund_no, first.amount, first.outcome) == (
        "refund",
        "RF20261123000001",
        Decimal("30.00"),
        "succeeded",
    )
    assert (second.refund_no, second.amount, second.out_trade_no) == (
        "RF20261123000002",
        Decimal("8.00"),
        "CX20261123CD0001",
    )


def test_refund_updated_event_is_understood(client, account, backend):
    result = backend.create(_request())
    _pay(client, result)
    refund = backend.refund(_refund(result, "RF20261123000001", "30.00"))
    event = {
        "id": "evt_1",
        "object": "event",
        "livemode": False,
        "created": int(time.time()),
        "type": "refund.updated",
        "data": {"object": dict(refund.raw)},
    }
    headers, body = _resign(account, event)
    notice = backend.parse_notification(headers=headers, body=body)
    assert (notice.kind, notice.refund_no, notice.channel_refund_no, notice.channel_trade_no) == (
        "refund",
        "RF20261123000001",
        refund.channel_refund_no,
        result.channel_trade_no,
    )


def test_charge_refunded_without_the_refund_list_asks_the_api(client, account, backend):
    result = backend.create(_request())
    _pay(client, result)
    backend.refund(_refund(result, "RF20261123000001", "30.00"))
    event = json.loads(bytes(_latest().body))
    event["data"]["object"].pop("refunds")
    headers, body = _resign(account, event)
    assert backend.parse_notification(headers=headers, body=body).refund_no == "RF20261123000001"


# --- faults and settlement -----------------------------------------------------------------------


def test_channel_down_is_unavailable(backend):
    SandboxFault.objects.create(channel="card", down=True)
    with pytest.raises(ChannelUnavailable):
        backend.create(_request())


def test_bad_secret_key_is_unavailable(account):
    account.credentials = dict(account.credentials, secret_key="sk_test_wrong")
    with pytest.raises(ChannelUnavailable) as err:
        backend_for(account).create(_request())
    assert err.value.code == "authentication_error"


def test_settlement_report_run_downloads_and_parses(client, backend):
    for number, amount in (("CX20261123CD0001", "88.00"), ("CX20261123CD0002", "12.34")):
        result = backend.create(_request(number, amount))
        _pay(client, result)
    first = SandboxTrade.objects.get(out_trade_no="CX20261123CD0001")
    backend.refund(
        RefundRequest(
            refund_no="RF20261123000001",
            out_trade_no="CX20261123CD0001",
            channel_trade_no=first.trade_no,
            amount=Decimal("20.00"),
            total_amount=Decimal("88.00"),
            currency="USD",
        )
    )
    day = timezone.localdate()
    data = backend.download_settlement(day)
    assert data.splitlines()[0].decode().startswith("balance_transaction_id,created_utc,created")
    report = CardBackend.open_settlement(io.BytesIO(data), merchant_id=MERCHANT)
    lines = list(report.lines())
    totals = report.totals
    assert (totals.merchant_id, totals.day) == (MERCHANT, day)
    assert (totals.payments, totals.refunds) == (2, 1)
    assert (totals.gross, totals.refunded) == (Decimal("100.34"), Decimal("20.00"))
    assert totals.fees == Decimal("0.60")  # 0.53 + 0.07; no fee returned on refunds
    refund = next(line for line in lines if line.kind == "refund")
    assert (refund.refund_no, refund.out_trade_no, refund.channel_trade_no) == (
        "RF20261123000001",
        "CX20261123CD0001",
        first.trade_no,
    )


def test_report_of_a_quiet_day_is_header_only(backend):
    data = backend.download_settlement(dt.date(2020, 1, 1))
    report = CardBackend.open_settlement(io.BytesIO(data))
    assert list(report.lines()) == [] and report.totals.lines == 0


def test_pending_report_run_is_polled(backend, monkeypatch):
    calls = {"n": 0}
    real = backend._api
    slept = []

    def pending_once(method, path, **kwargs):
        answer = real(method, path, **kwargs)
        if path == "/v1/reporting/report_runs" and calls["n"] == 0:
            calls["n"] += 1
            return {**answer, "status": "pending"}
        return answer

    monkeypatch.setattr(backend, "_api", pending_once)
    monkeypatch.setattr(backend, "sleep", slept.append)
    assert backend.download_settlement(dt.date(2020, 1, 1)).startswith(b"balance_transaction_id")
    assert slept == [CardBackend.report_poll_interval]
