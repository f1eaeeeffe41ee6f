"""The acquirer's side of the in-page card element: a stand-in of Stripe.js (``v3/``) and the
publishable-key calls it makes, as Stripe.js makes them to api.stripe.com.

* ``GET v1/payment_intents/<id>?key=pk_…&client_secret=…`` — the intent as a browser may
  see it (no metadata, no charge).
* ``POST v1/payment_intents/<id>/confirm`` — ``key``, ``client_secret``,
  ``payment_method_data[card][number|exp_month|exp_year|cvc]``, ``return_url`` and
  optionally ``payment_method_options[card][installments][plan][count]``. Stripe's test
  cards pick the outcome as on the hosted page; a decline answers HTTP 402 with Stripe's
  ``{"error": {type, code, decline_code, message, payment_intent}}``; when the issuer wants
  3-D Secure (the merchant's ``request_three_d_secure``, the amount, card …3220) the intent
  answers ``requires_action`` with ``next_action.type = "use_stripe_sdk"``.
* ``POST v1/3ds2/challenge_complete`` — the challenge modal's answer (``authenticated``,
  ``failed`` or ``canceled``; as at Stripe a cancelled challenge fails the authentication).

Every answer allows any origin (``Access-Control-Allow-Origin: *``, as Stripe's API), and
the bodies are form-encoded, so the browser sends no pre-flight.
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from payments.sandbox import core
from payments.sandbox.card.pages import card_problem, needs_three_d_secure
from payments.sandbox.card.protocol import (
    CHANNEL,
    error_response,
    form_data,
    missing,
    random_token,
)
from payments.sandbox.card.state import intent_json
from payments.sandbox.models import SandboxMerchant, SandboxTrade

SCRIPT = Path(__file__).with_name("stripe.js")
#: what a browser holding only the publishable key may not read of an intent
PRIVATE_FIELDS = ("metadata", "latest_charge", "amount_capturable", "amount_received")
CHALLENGE_OUTCOMES = frozenset({"authenticated", "failed", "canceled"})


def _cors(response: HttpResponse) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "no-store"
    return response


def client_intent_json(trade: SandboxTrade) -> dict[str, Any]:
    """The intent as Stripe answers a publishable key: without what only the merchant reads."""
    data = intent_json(trade)
    for name in PRIVATE_FIELDS:
        data.pop(name, None)
    return data


def _publishable_trade(
    key: str, intent_id: str, client_secret: str, *, lock: bool = False
) -> SandboxTrade | JsonResponse:
    """The intent the browser names, if the publishable key is the merchant's and the client
    secret is the intent's; else Stripe's 401 / 404 answers."""
    if not key.startswith("pk_"):
        return error_response(
            401, "invalid_request_error", "You did not provide a publishable API key."
        )
    merchant = SandboxMerchant.objects.filter(channel=CHANNEL, config__publishable_key=key).first()
    if merchant is None:
        return error_response(
            401, "invalid_request_error", f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}"
        )
    queryset = SandboxTrade.objects.select_for_update() if lock else SandboxTrade.objects
    trade = queryset.filter(
        channel=CHANNEL, merchant_id=merchant.merchant_id, trade_no=intent_id
    ).first()
    if trade is None or not hmac.compare_digest(
        str(trade.extra.get("client_secret", "")), client_secret
    ):
        return missing("payment_intent", intent_id, "intent")
    return trade


def with_publishable_key(secret_view, publishable_view):
    """One URL for both callers, as at Stripe: the merchant's server (secret key in the
    Authorization header) and the browser (``key=pk_…`` with the client secret)."""

    @csrf_exempt
    def view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.headers.get("Authorization") and request.GET.get("key"):
            return publishable_view(request, *args, **kwargs)
        return secret_view(request, *args, **kwargs)

    view.__name__ = secret_view.__name__
    view.__doc__ = secret_view.__doc__
    return view


@require_GET
def intent_retrieve(request: HttpRequest, intent_id: str) -> HttpResponse:
    """``stripe.retrievePaymentIntent(clientSecret)``."""
    if fault := core.fault_response(CHANNEL):
        return _cors(fault)
    trade = _publishable_trade(
        request.GET.get("key", ""), intent_id, request.GET.get("client_secret", "")
    )
    if isinstance(trade, HttpResponse):
        return _cors(trade)
    return _cors(JsonResponse(client_intent_json(trade)))


def _plan(data: dict[str, Any]) -> dict[str, Any] | None | str:
    """The instalment plan sent with the confirmation, None without one, or an error text."""
    options = data.get("payment_method_options")
    card = options.get("card") if isinstance(options, dict) else None
    installments = card.get("installments") if isinstance(card, dict) else None
    plan = installments.get("plan") if isinstance(installments, dict) else None
    if plan is None:
        return None
    count = str(plan.get("count", "")) if isinstance(plan, dict) else ""
    if not count.isdigit() or not 2 <= int(count) <= 36:
        return "Invalid payment_method_options[card][installments][plan][count]"
    return {"count": int(count), "interval": "month", "type": "fixed_count"}


def _unexpected_state(trade: SandboxTrade) -> JsonResponse:
    status = client_intent_json(trade)["status"]
    return error_response(
        400,
        "invalid_request_error",
        f"This PaymentIntent's status is {status}; it cannot be confirmed.",
        code="payment_intent_unexpected_state",
        payment_intent=client_intent_json(trade),
    )


def _settle(trade: SandboxTrade, *, approve: bool, decline_key: str = "") -> SandboxTrade:
    """Charge (or decline) the intent as the issuer answered; the webhook follows."""
    with transaction.atomic():
        locked = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
        extra = {**locked.extra, "requires_action": False}
        extra.setdefault("charge_id", f"ch_{random_token(24)}")
        extra.setdefault("payment_method", f"pm_{random_token(24)}")
        locked.extra = extra
        locked.save(update_fields=["extra"])
    core.provider(CHANNEL).settle(locked, approve=approve, decline_key=decline_key)
    locked.refresh_from_db()
    return locked


def _declined(trade: SandboxTrade) -> JsonResponse:
    """Stripe's answer to a declined confirmation: HTTP 402 with the card error and the
    intent (back in ``requires_payment_method``)."""
    intent = client_intent_json(trade)
    error = dict(intent.get("last_payment_error") or {})
    error.pop("charge", None)
    error.setdefault("type", "card_error")
    error.setdefault("message", "Your card was declined.")
    return error_response(
        402,
        str(error.pop("type")),
        str(error.pop("message")),
        code=str(error.pop("code", "card_declined")),
        decline_code=str(error.pop("decline_code", "")),
        payment_intent=intent,
    )


@csrf_exempt
def intent_confirm(request: HttpRequest, intent_id: str) -> HttpResponse:
    """``stripe.confirmPayment``: the card the element collected, charged or declined by the
    issuer, or handed to 3-D Secure."""
    if request.method != "POST":
        return _cors(
            error_response(405, "invalid_request_error", "Use POST to confirm a PaymentIntent.")
        )
    if fault := core.fault_response(CHANNEL):
        return _cors(fault)
    data = form_data(request)
    trade = _publishable_trade(
        str(data.get("key", "")), intent_id, str(data.get("client_secret", ""))
    )
    if isinstance(trade, HttpResponse):
        return _cors(trade)
    if trade.status != SandboxTrade.Status.WAITING or trade.extra.get("requires_action"):
        return _cors(_unexpected_state(trade))
    plan = _plan(data)
    if isinstance(plan, str) or (plan and not trade.extra.get("installments_enabled")):
        return _cors(
            error_response(
                400,
                "invalid_request_error",
                plan
                if isinstance(plan, str)
                else "Installments are not enabled for this PaymentIntent.",
                code="parameter_invalid_integer" if isinstance(plan, str) else "parameter_unknown",
                param="payment_method_options[card][installments][plan]",
            )
        )
    method = data.get("payment_method_data")
    card = method.get("card") if isinstance(method, dict) else None
    if not isinstance(card, dict):
        return _cors(
            error_response(
                400,
                "invalid_request_error",
                "Missing required param: payment_method_data[card].",
                code="parameter_missing",
                param="payment_method_data[card]",
            )
        )
    number = re.sub(r"[\s-]", "", str(card.get("number", "")))
    expiry = f"{card.get('exp_month', '')}/{card.get('exp_year', '')}"
    return_url = str(data.get("return_url") or "")[:500]
    with transaction.atomic():
        locked = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
        locked.extra = {**locked.extra, "last4": number[-4:], "three_ds_flow": "sdk"}
        if plan:
            locked.extra["installments_plan"] = plan
        if return_url:
            locked.return_url = return_url
        locked.save(update_fields=["extra", "return_url"])
    problem = card_problem(number, expiry, str(card.get("cvc", "")))
    if problem:
        return _cors(_declined(_settle(locked, approve=False, decline_key=problem)))
    if needs_three_d_secure(locked, number):
        with transaction.atomic():
            locked = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
            locked.extra = {**locked.extra, "requires_action": True}
            locked.save(update_fields=["extra"])
        return _cors(JsonResponse(client_intent_json(locked)))
    return _cors(JsonResponse(client_intent_json(_settle(locked, approve=True))))


@csrf_exempt
def challenge_complete(request: HttpRequest) -> HttpResponse:
    """The 3-D Secure modal's answer: authenticated charges the card; failed or cancelled
    sends the intent back to ``requires_payment_method`` with
    ``payment_intent_authentication_failure`` (nothing charged)."""
    if request.method != "POST":
        return _cors(error_response(405, "invalid_request_error", "Use POST."))
    if fault := core.fault_response(CHANNEL):
        return _cors(fault)
    data = form_data(request)
    outcome = str(data.get("outcome", ""))
    if outcome not in CHALLENGE_OUTCOMES:
        return _cors(
            error_response(
                400,
                "invalid_request_error",
                "outcome must be authenticated, failed or canceled",
                code="parameter_invalid_string",
                param="outcome",
            )
        )
    trade = _publishable_trade(
        str(data.get("key", "")),
        str(data.get("payment_intent", "")),
        str(data.get("client_secret", "")),
    )
    if isinstance(trade, HttpResponse):
        return _cors(trade)
    if trade.status != SandboxTrade.Status.WAITING or not trade.extra.get("requires_action"):
        return _cors(_unexpected_state(trade))
    with transaction.atomic():
        locked = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
        locked.extra = {**locked.extra, "three_d_secure_result": outcome}
        locked.save(update_fields=["extra"])
    approve = outcome == "authenticated"
    decline = "" if approve else "authentication_failed"
    settled = _settle(locked, approve=approve, decline_key=decline)
    return _cors(JsonResponse(client_intent_json(settled)))


@require_GET
def script(request: HttpRequest) -> HttpResponse:
    """The stand-in of ``https://js.stripe.com/v3/``."""
    response = HttpResponse(SCRIPT.read_bytes(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
