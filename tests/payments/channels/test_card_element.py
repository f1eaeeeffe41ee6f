"""The in-page card element (issue 17): the widget params the card panel mounts the Payment
Element with, the simulator's publishable-key calls that its stand-in of Stripe.js makes, read
back through the ``stripe`` package's own objects, and the merchant's 3-D Secure request
(``request_three_d_secure=challenge``) honoured by the simulator."""

import datetime as dt
from decimal import Decimal

import pytest
import stripe
from django.utils import timezone

from payments.accounts import backend_for
from payments.channels.base import AccountConfig, ChannelDeclined, CreateRequest
from payments.channels.card import CardBackend
from payments.channels.card.backend import STRIPE_JS
from payments.sandbox.models import SandboxNotification, SandboxTrade
from tests.payments.factories import sandbox_account

pytestmark = pytest.mark.django_db

MERCHANT = "acct_1CardexELEM0001"
API = "/sandbox/card/v1"


@pytest.fixture
def account(db):
    return sandbox_account("card", merchant_id=MERCHANT, currency="USD")


@pytest.fixture
def backend(account) -> CardBackend:
    return backend_for(account)


def _create(backend, *, amount="88.00", three_d_secure="", instalments=None, no="CX2026EL0001"):
    return backend.create(
        CreateRequest(
            out_trade_no=no,
            amount=Decimal(amount),
            currency="USD",
            subject="Apple Gift Card 100",
            method="card_instalments" if instalments else "card",
            expires_at=timezone.now() + dt.timedelta(minutes=15),
            return_url="http://testserver/orders/7/",
            instalments=instalments,
            three_d_secure=three_d_secure,
        )
    )


def _confirm(client, widget, *, number="4242424242424242", exp=("12", "2034"), cvc="123", **more):
    data = {
        "key": widget["publishable_key"],
        "client_secret": widget["client_secret"],
        "return_url": widget.get("return_url", ""),
        "payment_method_data[type]": "card",
        "payment_method_data[card][number]": number,
        "payment_method_data[card][exp_month]": exp[0],
        "payment_method_data[card][exp_year]": exp[1],
        "payment_method_data[card][cvc]": cvc,
        **more,
    }
    return client.post(f"{API}/payment_intents/{widget['payment_intent']}/confirm", data)


def _challenge(client, widget, outcome):
    return client.post(
        f"{API}/3ds2/challenge_complete",
        {
            "key": widget["publishable_key"],
            "client_secret": widget["client_secret"],
            "payment_intent": widget["payment_intent"],
            "outcome": outcome,
        },
    )


def _intent(response, widget) -> stripe.PaymentIntent:
    """The answer as stripe-python reads an API object."""
    return stripe.PaymentIntent.construct_from(response.json(), widget["publishable_key"])


# --- the widget the card panel mounts --------------------------------------------------------


def test_the_widget_carries_what_the_payment_element_needs_and_no_secret(backend, account):
    result = _create(backend)
    widget = result.action.widget
    assert result.action.type == "widget"
    assert widget["element"] == "payment"
    assert widget["publishable_key"].startswith("pk_test_")
    assert widget["client_secret"].startswith(f"{result.channel_trade_no}_secret_")
    assert widget["payment_intent"] == result.channel_trade_no
    assert widget["return_url"] == "http://testserver/orders/7/"
    # the stand-in of Stripe.js is served by the account's own API host
    assert widget["js"] == account.base_url.rstrip("/") + "/v3/"
    assert "three_d_secure" not in widget
    assert not any(str(value).startswith("sk_") for value in widget.values())
    # the hosted card page stays as the fallback without JavaScript
    assert "/sandbox/card/elements/" in result.action.url


def test_an_account_on_stripes_api_loads_stripe_js():
    config = AccountConfig(
        code="card-live",
        backend="card",
        merchant_id="acct_live",
        app_id="",
        base_url="https://api.stripe.com",
        credentials={},
    )
    assert CardBackend(config).element_script_url() == STRIPE_JS == "https://js.stripe.com/v3/"


def test_the_stand_in_script_is_served_with_the_same_client_api(client):
    response = client.get("/sandbox/card/v3/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    script = response.content.decode()
    for surface in ("window.Stripe", "elements(", "create(", "mount(", "confirmPayment(",
                    "retrievePaymentIntent(", "if_required", "use_stripe_sdk"):  # fmt: skip
        assert surface in script, surface


# --- the element's calls, read through the stripe package --------------------------------------


def test_a_browser_reads_the_intent_with_the_publishable_key_but_not_its_metadata(client, backend):
    widget = _create(backend).action.widget
    response = client.get(
        f"{API}/payment_intents/{widget['payment_intent']}",
        {"key": widget["publishable_key"], "client_secret": widget["client_secret"]},
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    intent = _intent(response, widget)
    assert isinstance(intent, stripe.PaymentIntent)
    assert (intent.id, intent.status, intent.amount, intent.currency) == (
        widget["payment_intent"],
        "requires_payment_method",
        8800,
        "usd",
    )
    assert intent.client_secret == widget["client_secret"]
    assert "metadata" not in intent and "latest_charge" not in intent


def test_a_wrong_client_secret_or_key_reads_nothing(client, backend):
    widget = _create(backend).action.widget
    url = f"{API}/payment_intents/{widget['payment_intent']}"
    wrong_secret = client.get(url, {"key": widget["publishable_key"], "client_secret": "nope"})
    assert wrong_secret.status_code == 404
    assert wrong_secret.json()["error"]["code"] == "resource_missing"
    wrong_key = _confirm(client, {**widget, "publishable_key": "pk_test_someone_else"})
    assert wrong_key.status_code == 401
    assert SandboxTrade.objects.get(trade_no=widget["payment_intent"]).status == "waiting"


def test_a_confirmed_card_pays_and_the_webhook_and_query_agree(client, backend):
    result = _create(backend)
    widget = result.action.widget
    response = _confirm(client, widget)
    assert response.status_code == 200
    intent = _intent(response, widget)
    assert intent.status == "succeeded"
    assert intent.next_action is None and intent.last_payment_error is None
    note = SandboxNotification.objects.filter(channel="card").latest("pk")
    assert b"payment_intent.succeeded" in bytes(note.body)
    queried = backend.query(out_trade_no="CX2026EL0001", channel_trade_no=result.channel_trade_no)
    assert (queried.outcome, queried.amount) == ("succeeded", Decimal("88.00"))


def test_a_decline_answers_stripes_card_error_and_charges_nothing(client, backend):
    result = _create(backend)
    widget = result.action.widget
    response = _confirm(client, widget, number="4000000000009995")
    assert response.status_code == 402
    body = response.json()
    error = stripe.StripeObject.construct_from(body["error"], widget["publishable_key"])
    assert (error.type, error.code, error.decline_code) == (
        "card_error",
        "card_declined",
        "insufficient_funds",
    )
    assert error.message
    assert error.payment_intent.status == "requires_payment_method"
    assert error.payment_intent.last_payment_error.decline_code == "insufficient_funds"
    # as Stripe's SDK raises it on the server side
    raised = stripe.error.CardError(
        error.message, param=None, code=error.code, json_body=body, http_status=402
    )
    assert raised.error.decline_code == "insufficient_funds"
    queried = backend.query(out_trade_no="CX2026EL0001", channel_trade_no=result.channel_trade_no)
    assert (queried.outcome, queried.error_code) == ("failed", "insufficient_funds")
    assert SandboxTrade.objects.get(trade_no=result.channel_trade_no).paid_at is None


def test_a_confirmed_intent_cannot_be_confirmed_again(client, backend):
    widget = _create(backend).action.widget
    assert _confirm(client, widget).status_code == 200
    again = _confirm(client, widget)
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "payment_intent_unexpected_state"


def test_the_instalment_plan_chosen_in_the_page_rides_with_the_confirmation(client, backend):
    result = _create(backend, instalments=6, no="CX2026EL0006")
    widget = result.action.widget
    plan = "payment_method_options[card][installments][plan]"
    response = _confirm(
        client,
        widget,
        **{f"{plan}[count]": "6", f"{plan}[interval]": "month", f"{plan}[type]": "fixed_count"},
    )
    assert _intent(response, widget).status == "succeeded"
    queried = backend.query(out_trade_no="CX2026EL0006", channel_trade_no=result.channel_trade_no)
    charge = queried.raw["latest_charge"]
    assert charge["payment_method_details"]["card"]["installments"]["plan"]["count"] == 6


def test_a_plan_is_refused_where_instalments_are_not_enabled(client, backend):
    widget = _create(backend).action.widget
    response = _confirm(
        client, widget, **{"payment_method_options[card][installments][plan][count]": "3"}
    )
    assert response.status_code == 400
    assert SandboxTrade.objects.get(trade_no=widget["payment_intent"]).status == "waiting"


# --- 3-D Secure ------------------------------------------------------------------------------


def test_the_risk_step_up_is_sent_as_request_three_d_secure_challenge(backend):
    result = _create(backend, three_d_secure="challenge")
    assert result.action.widget["three_d_secure"] == "challenge"
    intent = stripe.PaymentIntent.construct_from(
        backend.query(out_trade_no="CX2026EL0001", channel_trade_no=result.channel_trade_no).raw,
        "sk_test",
    )
    assert intent.payment_method_options.card.request_three_d_secure == "challenge"
    plain = _create(backend, no="CX2026EL0002")
    plain_intent = backend.query(
        out_trade_no="CX2026EL0002", channel_trade_no=plain.channel_trade_no
    )
    assert plain_intent.raw["payment_method_options"]["card"]["request_three_d_secure"] == (
        "automatic"
    )


def test_an_unknown_three_d_secure_request_is_refused_before_the_acquirer(backend):
    with pytest.raises(ChannelDeclined):
        _create(backend, three_d_secure="sometimes")
    assert not SandboxTrade.objects.exists()


def test_a_requested_challenge_asks_for_3ds_even_for_a_card_that_would_not(client, backend):
    widget = _create(backend, three_d_secure="challenge").action.widget
    response = _confirm(client, widget)  # 4242…: no 3-D Secure of its own, 88 USD: below 1000
    intent = _intent(response, widget)
    assert intent.status == "requires_action"
    assert intent.next_action.type == "use_stripe_sdk"
    assert intent.next_action.use_stripe_sdk.type == "three_d_secure_redirect"
    assert SandboxTrade.objects.get(trade_no=widget["payment_intent"]).paid_at is None
    # the same card without the request pays at once
    plain = _create(backend, no="CX2026EL0002").action.widget
    assert _intent(_confirm(client, plain), plain).status == "succeeded"


def test_3ds_authenticated_pays_and_the_charge_says_so(client, backend):
    result = _create(backend, three_d_secure="challenge")
    widget = result.action.widget
    _confirm(client, widget)
    response = _challenge(client, widget, "authenticated")
    assert _intent(response, widget).status == "succeeded"
    queried = backend.query(out_trade_no="CX2026EL0001", channel_trade_no=result.channel_trade_no)
    assert queried.outcome == "succeeded"
    secure = queried.raw["latest_charge"]["payment_method_details"]["card"]["three_d_secure"]
    assert secure["result"] == "authenticated"


@pytest.mark.parametrize("outcome", ["failed", "canceled"])
def test_3ds_failed_or_cancelled_declines_with_authentication_failure(client, backend, outcome):
    result = _create(backend, three_d_secure="challenge")
    widget = result.action.widget
    _confirm(client, widget)
    response = _challenge(client, widget, outcome)
    intent = _intent(response, widget)
    assert intent.status == "requires_payment_method"
    error = intent.last_payment_error
    assert (error.type, error.code) == (
        "invalid_request_error",
        "payment_intent_authentication_failure",
    )
    note = SandboxNotification.objects.filter(channel="card").latest("pk")
    assert b"payment_intent.payment_failed" in bytes(note.body)
    queried = backend.query(out_trade_no="CX2026EL0001", channel_trade_no=result.channel_trade_no)
    assert (queried.outcome, queried.error_code) == (
        "failed",
        "payment_intent_authentication_failure",
    )


def test_a_challenge_answer_needs_an_intent_waiting_for_it(client, backend):
    widget = _create(backend).action.widget
    assert _challenge(client, widget, "authenticated").status_code == 400
    _confirm(client, widget, number="4000000000003220")  # a card that always asks
    assert _challenge(client, widget, "maybe").status_code == 400
    assert _intent(_challenge(client, widget, "authenticated"), widget).status == "succeeded"
