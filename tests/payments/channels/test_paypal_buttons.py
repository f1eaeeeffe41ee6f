"""PayPal's JS SDK buttons, the channel's side: the SDK URL and widget the order page renders,
the capture of an approved order after checking it is the attempt's (order id, amount), and
the sandbox's stand-in SDK and approval window."""

import datetime as dt
import json
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from payments.accounts import backend_for
from payments.channels.base import ChannelDeclined, CreateRequest
from payments.channels.paypal import buttons
from payments.channels.paypal.backend import clear_caches
from payments.sandbox.models import SandboxTrade
from tests.payments.factories import sandbox_account


@pytest.fixture(autouse=True)
def _fresh_caches():
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def account(db):
    return sandbox_account("paypal", currency="USD")


@pytest.fixture
def backend(account):
    return backend_for(account)


def _request(out_trade_no="CX20261204PB0001", amount="25.00", currency="USD") -> CreateRequest:
    return CreateRequest(
        out_trade_no=out_trade_no,
        amount=Decimal(amount),
        currency=currency,
        subject="Steam Wallet 200 HKD",
        method="paypal",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        return_url="http://testserver/orders/1/",
    )


def _approve(client, account, order_id, decision="approve", reason=""):
    return client.post(
        f"/sandbox/paypal/sdk/orders/{order_id}/approve",
        json.dumps(
            {
                "client_id": account.credentials["client_id"],
                "decision": decision,
                "reason": reason,
            }
        ),
        content_type="application/json",
    )


def _capture(backend, order_id, out_trade_no="CX20261204PB0001", amount="25.00", currency="USD"):
    return backend.approval_capture(
        channel_trade_no=order_id,
        out_trade_no=out_trade_no,
        amount=Decimal(amount),
        currency=currency,
    )


# --- the SDK URL ------------------------------------------------------------------------------


def test_a_live_account_loads_paypals_own_sdk_with_client_id_currency_and_capture_intent():
    url = buttons.sdk_url("https://api-m.paypal.com", client_id="AbC-1", currency="USD")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://www.paypal.com/sdk/js"
    query = parse_qs(parts.query)
    assert query["client-id"] == ["AbC-1"] and query["currency"] == ["USD"]
    assert query["intent"] == ["capture"] and query["disable-funding"] == ["venmo"]
    assert list(query)[:3] == ["client-id", "currency", "intent"]


def test_paypals_sandbox_api_uses_the_same_sdk_host():
    url = buttons.sdk_url("https://api-m.sandbox.paypal.com", client_id="sb", currency="EUR")
    assert url.startswith("https://www.paypal.com/sdk/js?client-id=sb&currency=EUR")


def test_the_simulator_serves_its_stand_in_under_its_own_base_url(account, backend):
    result = backend.create(_request())
    sdk = urlsplit(result.action.widget["sdk_url"])
    assert sdk.path == "/sandbox/paypal/sdk/js"
    assert parse_qs(sdk.query)["client-id"] == [account.credentials["client_id"]]
    assert parse_qs(sdk.query)["currency"] == ["USD"]
    assert "client_secret" not in json.dumps(result.action.as_dict())


# --- capture after the buttons' approval --------------------------------------------------------


def test_an_approved_order_is_captured_and_is_a_success(client, account, backend):
    order_id = backend.create(_request()).channel_trade_no
    assert _approve(client, account, order_id).status_code == 200

    notice = _capture(backend, order_id)

    assert (notice.outcome, notice.amount, notice.currency) == (
        "succeeded",
        Decimal("25.00"),
        "USD",
    )
    assert notice.out_trade_no == "CX20261204PB0001" and notice.channel_trade_no == order_id
    assert SandboxTrade.objects.get(trade_no=order_id).extra.get("capture_id")


def test_capturing_again_reads_the_capture_back(client, account, backend):
    order_id = backend.create(_request()).channel_trade_no
    _approve(client, account, order_id)
    first = _capture(backend, order_id)
    again = _capture(backend, order_id)
    assert again.outcome == "succeeded" and again.amount == first.amount


def test_another_attempts_order_is_refused_before_anything_is_captured(client, account, backend):
    other = backend.create(_request("CX20261204PB0002")).channel_trade_no
    _approve(client, account, other)
    with pytest.raises(ChannelDeclined) as refused:
        _capture(backend, other, out_trade_no="CX20261204PB0001")
    assert refused.value.code == "ORDER_MISMATCH"
    assert not SandboxTrade.objects.get(trade_no=other).extra.get("capture_id")


@pytest.mark.parametrize(("amount", "currency"), [("24.99", "USD"), ("25.00", "EUR")])
def test_an_order_for_another_amount_is_refused_before_anything_is_captured(
    client, account, backend, amount, currency
):
    order_id = backend.create(_request()).channel_trade_no
    _approve(client, account, order_id)
    with pytest.raises(ChannelDeclined) as refused:
        _capture(backend, order_id, amount=amount, currency=currency)
    assert refused.value.code == "AMOUNT_MISMATCH"
    assert not SandboxTrade.objects.get(trade_no=order_id).extra.get("capture_id")


def test_an_order_the_payer_has_not_approved_is_not_captured(backend):
    order_id = backend.create(_request()).channel_trade_no
    with pytest.raises(ChannelDeclined) as refused:
        _capture(backend, order_id)
    assert refused.value.code == "ORDER_NOT_APPROVED"


def test_a_declined_funding_source_is_a_failed_notice_with_paypals_issue(client, account, backend):
    order_id = backend.create(_request()).channel_trade_no
    _approve(client, account, order_id, decision="decline", reason="insufficient_funds")
    notice = _capture(backend, order_id)
    assert (notice.outcome, notice.error_code) == ("failed", "INSTRUMENT_DECLINED")


# --- the sandbox's stand-in SDK ----------------------------------------------------------------


def test_the_stand_in_sdk_is_served_for_a_known_client_id(client, account):
    response = client.get(
        "/sandbox/paypal/sdk/js",
        {"client-id": account.credentials["client_id"], "currency": "USD", "intent": "capture"},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert b"window.paypal = { Buttons" in response.content


@pytest.mark.parametrize(
    "query", [{"client-id": "unknown"}, {"intent": "authorize"}], ids=["client", "intent"]
)
def test_the_stand_in_sdk_refuses_what_paypal_refuses(client, account, query):
    params = {"client-id": account.credentials["client_id"], "intent": "capture", **query}
    response = client.get("/sandbox/paypal/sdk/js", params)
    assert response.status_code == 400 and b"throw new Error" in response.content


def test_the_approval_window_shows_only_its_own_apps_orders(client, account, backend):
    order_id = backend.create(_request()).channel_trade_no
    own = client.get(
        f"/sandbox/paypal/sdk/orders/{order_id}", {"client-id": account.credentials["client_id"]}
    )
    assert own.json()["amount"] == "25.00" and own.json()["status"] == "CREATED"
    stranger = client.get(f"/sandbox/paypal/sdk/orders/{order_id}", {"client-id": "other"})
    assert stranger.status_code == 401


def test_an_order_can_be_approved_once(client, account, backend):
    order_id = backend.create(_request()).channel_trade_no
    assert _approve(client, account, order_id).json()["orderID"] == order_id
    assert _approve(client, account, order_id).status_code == 422
