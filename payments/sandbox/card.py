"""A local Stripe-style card acquirer that speaks CHANNELS.md §4.4–4.6 from the acquirer's side.

API endpoints (mounted under ``/sandbox/card/``; form-encoded, ``Authorization: Bearer sk_…``):

* ``v1/payment_intents`` (create, ``Idempotency-Key``), ``…/search`` (``metadata['k']:'v'``),
  ``…/<id>`` (GET, ``expand[]=latest_charge``), ``…/<id>/cancel``.
* ``v1/refunds`` (create — partial, ``Idempotency-Key`` — and list by ``payment_intent`` or
  ``charge``), ``v1/refunds/<id>``.
* ``v1/reporting/report_runs`` (create; runs finish at once), ``…/<id>``, and
  ``v1/files/<id>/contents`` — the report CSV.
* ``v1/webhook_endpoints/<id>`` — GET, and POST ``url=`` to send events to another notify URL
  (default ``<SITE_URL>/payments/notify/card/``).

Buyer pages (the acquirer's hosted card page, the action URL of the "widget" action):

* ``elements/<intent id>/?client_secret=…`` — card number / expiry / CVC and the
  ``sandbox-approve`` / ``sandbox-decline`` controls. Stripe's test cards pick outcomes:
  4242 4242 4242 4242 pays, 4000 0000 0000 9995 insufficient_funds, …0002 generic_decline,
  …0069 expired_card, …0127 incorrect_cvc, …0119 processing_error, 4100 0000 0000 0019
  fraudulent, 4000 0000 0000 3220 always asks for 3-D Secure.
* ``3ds/<intent id>/`` — the 3-D Secure challenge. Amounts of 1000.00 or more (in the
  currency's major unit) always step up: the intent goes to ``requires_action`` with
  ``next_action.redirect_to_url`` pointing here.

Sandbox choices (documented in docs/channels/card.md): fee 0.6 % of each charge (half-up to the
currency's smallest unit), not returned on refunds (as Stripe); charges are available T+2;
webhooks (``payment_intent.succeeded`` / ``payment_intent.payment_failed`` /
``charge.refunded``) are retried with exponential back-off over 3 days and every try is signed
afresh (a new ``t=``); a payer who walks away ("timeout") leaves the intent in
``requires_payment_method`` until the merchant cancels it.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import re
import secrets
import time
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from payments.sandbox import core
from payments.sandbox.core import DeclineReason, SandboxProvider
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxNotification,
    SandboxRefund,
    SandboxTrade,
)

CHANNEL = "card"
FEE_RATE = Decimal("0.006")  # the sandbox acquirer's fee: 0.6 % of each charge
THREE_DS_THRESHOLD = Decimal("1000.00")
AVAILABLE_AFTER = dt.timedelta(days=2)
API_VERSION = "2024-06-20"
ABANDONED = "abandoned"
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
REPORT_TYPES = frozenset({f"balance_change_from_activity.itemized.{n}" for n in (1, 2, 3)})
REPORT_COLUMNS = {
    "balance_transaction_id", "created_utc", "created", "available_on_utc", "available_on", "currency", "gross", "fee",
    "net", "reporting_category", "source_id", "description", "customer_facing_amount", "customer_facing_currency",
    "payment_intent_id", "charge_id", "payment_method_type", "card_brand", "card_funding", "card_country",
    "charge_created_utc",
}
DEFAULT_REPORT_COLUMNS = (
    "balance_transaction_id", "created_utc", "created", "available_on_utc", "currency", "gross", "fee", "net",
    "reporting_category", "source_id", "description",
)

#: Stripe's test card numbers → the decline key they trigger (None: pays).
TEST_CARDS: dict[str, str | None] = {
    "4242424242424242": None,
    "5555555555554444": None,
    "4000000000003220": None,
    "4000002760003184": None,
    "4000000000009995": "insufficient_funds",
    "4000000000000002": "generic_decline",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
    "4100000000000019": "risk",
}
ALWAYS_3DS = frozenset({"4000000000003220", "4000002760003184"})

#: decline code → (error code, message) as in ``last_payment_error``
CARD_ERRORS: dict[str, tuple[str, str]] = {
    "insufficient_funds": ("card_declined", "Your card has insufficient funds."),
    "generic_decline": ("card_declined", "Your card was declined."),
    "do_not_honor": ("card_declined", "Your card was declined."),
    "fraudulent": ("card_declined", "Your card was declined."),
    "authentication_required": ("card_declined", "Your card was declined. This transaction requires authentication."),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect."),
    "incorrect_number": ("incorrect_number", "Your card number is incorrect."),
    "expired_card": ("expired_card", "Your card has expired."),
    "processing_error": ("processing_error", "An error occurred while processing your card. Try again in a little bit."),
    "payment_intent_authentication_failure": (
        "payment_intent_authentication_failure",
        "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
    ),
}


# ---------------------------------------------------------------------------------------------
# Helpers


def _rand(length: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _stable_id(prefix: str, seed: str) -> str:
    return prefix + hashlib.sha256(seed.encode()).hexdigest()[:24]


def _exponent(currency: str) -> int:
    currency = currency.upper()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def _units(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(_exponent(currency)).to_integral_value())


def _major(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-_exponent(currency))


def _fee_units(amount_units: int) -> int:
    return int((Decimal(amount_units) * FEE_RATE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _error(status: int, type_: str, message: str, *, code: str = "", decline_code: str = "", param: str = "", **extra) -> JsonResponse:
    """Stripe's error body: ``{"error": {type, code, decline_code, message, param, doc_url}}``."""
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if decline_code:
        error["decline_code"] = decline_code
    if param:
        error["param"] = param
    error.update(extra)
    return JsonResponse({"error": error}, status=status)


def _missing(kind: str, ident: str, param: str = "id") -> JsonResponse:
    return _error(404, "invalid_request_error", f"No such {kind}: '{ident}'", code="resource_missing", param=param)


def _nested(pairs) -> dict[str, Any]:
    """Stripe's bracketed form keys (``a[b][c]=v``, ``a[]=v``, ``a[0]=v``) → nested data."""
    root: dict[str, Any] = {}
    for key, values in pairs:
        match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
        if not match:
            continue
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        if parts[-1] == "":
            parts, value = parts[:-1], list(values)
        else:
            value = values[-1]
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        items = {key: _listify(value) for key, value in node.items()}
        if items and all(key.isdigit() for key in items):
            return [items[key] for key in sorted(items, key=int)]
        return items
    return node


def _form(request: HttpRequest) -> dict[str, Any]:
    return _nested(request.POST.lists())


def _query(request: HttpRequest) -> dict[str, Any]:
    return _nested(request.GET.lists())


def _authenticate(request: HttpRequest) -> SandboxMerchant | JsonResponse:
    header = request.headers.get("Authorization", "")
    key = ""
    if header.startswith("Bearer "):
        key = header[7:].strip()
    elif header.startswith("Basic "):
        try:
            key = base64.b64decode(header[6:].strip()).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            key = ""
    if not key:
        return _error(401, "invalid_request_error", "You did not provide an API key.")
    merchant = SandboxMerchant.objects.filter(channel=CHANNEL, config__secret_key=key).first()
    if merchant is None:
        return _error(401, "invalid_request_error", f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}")
    return merchant


def _webhook_url(merchant: SandboxMerchant) -> str:
    return merchant.config.get("webhook_url") or f"{settings.SITE_URL}/payments/notify/{CHANNEL}/"


# ---------------------------------------------------------------------------------------------
# Objects as the acquirer renders them


def _status(trade: SandboxTrade) -> str:
    if trade.status == SandboxTrade.Status.WAITING:
        return "requires_action" if trade.extra.get("requires_action") else "requires_payment_method"
    if trade.status == SandboxTrade.Status.PAID:
        return "succeeded"
    if trade.status == SandboxTrade.Status.CLOSED:
        return "canceled"
    return "requires_payment_method"  # a declined attempt (or a payer who walked away)


def _last_payment_error(trade: SandboxTrade) -> dict[str, Any] | None:
    if trade.status != SandboxTrade.Status.DECLINED or trade.decline_code == ABANDONED:
        return None
    code, message = CARD_ERRORS.get(trade.decline_code, ("card_declined", "Your card was declined."))
    error: dict[str, Any] = {"type": "card_error", "code": code, "message": message, "charge": trade.extra.get("charge_id")}
    if code == "card_declined":
        error["decline_code"] = trade.decline_code
    return error


def _installments(trade: SandboxTrade) -> dict[str, Any] | None:
    if not trade.extra.get("installments_enabled"):
        return None
    return {
        "enabled": True,
        "plan": trade.extra.get("installments_plan"),
        "available_plans": [{"count": n, "interval": "month", "type": "fixed_count"} for n in (3, 6, 9, 12, 18, 24)],
    }


def _refund_json(trade: SandboxTrade, refund: SandboxRefund) -> dict[str, Any]:
    return {
        "id": refund.refund_id,
        "object": "refund",
        "amount": _units(refund.amount, trade.currency),
        "balance_transaction": _stable_id("txn_", refund.refund_id),
        "charge": trade.extra.get("charge_id"),
        "created": int(refund.created_at.timestamp()),
        "currency": trade.currency.lower(),
        "metadata": (trade.extra.get("refund_meta") or {}).get(refund.refund_id, {}),
        "payment_intent": trade.trade_no,
        "reason": None,
        "receipt_number": None,
        "status": {"success": "succeeded", "processing": "pending"}.get(refund.status, "failed"),
    }


def _refunds(trade: SandboxTrade) -> list[SandboxRefund]:
    return list(trade.refunds.order_by("-created_at", "-pk"))


def charge_json(trade: SandboxTrade) -> dict[str, Any] | None:
    charge_id = trade.extra.get("charge_id")
    if not charge_id:
        return None
    units = _units(trade.amount, trade.currency)
    paid = trade.status == SandboxTrade.Status.PAID
    refunds = _refunds(trade)
    refunded = sum(_units(r.amount, trade.currency) for r in refunds if r.status == SandboxRefund.Status.SUCCESS)
    return {
        "id": charge_id,
        "object": "charge",
        "amount": units,
        "amount_captured": units if paid else 0,
        "amount_refunded": refunded,
        "balance_transaction": _stable_id("txn_", charge_id) if paid else None,
        "captured": paid,
        "created": int((trade.paid_at or trade.created_at).timestamp()),
        "currency": trade.currency.lower(),
        "description": trade.subject or None,
        "metadata": trade.extra.get("metadata", {}),
        "outcome": {"network_status": "approved_by_network" if paid else "declined_by_network", "type": "authorized" if paid else "issuer_declined"},
        "paid": paid,
        "payment_intent": trade.trade_no,
        "payment_method": trade.extra.get("payment_method"),
        "payment_method_details": {
            "type": "card",
            "card": {"brand": "visa", "last4": trade.extra.get("last4", "4242"), "installments": {"plan": trade.extra.get("installments_plan")} if _installments(trade) else None},
        },
        "refunded": paid and refunded >= units,
        "refunds": {"object": "list", "data": [_refund_json(trade, r) for r in refunds], "has_more": False, "total_count": len(refunds), "url": f"/v1/charges/{charge_id}/refunds"},
        "status": "succeeded" if paid else "failed",
    }


def intent_json(trade: SandboxTrade, *, expand_charge: bool = False) -> dict[str, Any]:
    status = _status(trade)
    units = _units(trade.amount, trade.currency)
    next_action = None
    if status == "requires_action":
        next_action = {"type": "redirect_to_url", "redirect_to_url": {"url": f"{core.own_url()}/sandbox/{CHANNEL}/3ds/{trade.trade_no}/?client_secret={trade.extra['client_secret']}", "return_url": trade.return_url or None}}
    charge: Any = trade.extra.get("charge_id")
    if expand_charge and charge:
        charge = charge_json(trade)
    canceled = trade.status == SandboxTrade.Status.CLOSED
    return {
        "id": trade.trade_no,
        "object": "payment_intent",
        "amount": units,
        "amount_capturable": 0,
        "amount_received": units if status == "succeeded" else 0,
        "canceled_at": int(trade.extra["canceled_at"]) if canceled and trade.extra.get("canceled_at") else None,
        "cancellation_reason": trade.extra.get("cancellation_reason", ABANDONED) if canceled else None,
        "capture_method": "automatic",
        "client_secret": trade.extra["client_secret"],
        "confirmation_method": "automatic",
        "created": int(trade.created_at.timestamp()),
        "currency": trade.currency.lower(),
        "description": trade.subject or None,
        "last_payment_error": _last_payment_error(trade),
        "latest_charge": charge,
        "livemode": False,
        "metadata": trade.extra.get("metadata", {}),
        "next_action": next_action,
        "payment_method": trade.extra.get("payment_method"),
        "payment_method_options": {"card": {"installments": _installments(trade), "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "status": status,
    }


def _event(event_type: str, obj: Mapping[str, Any]) -> bytes:
    event = {
        "id": f"evt_{_rand(24)}",
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    return json.dumps(event, separators=(",", ":")).encode()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """``Stripe-Signature: t=…,v1=hex(HMAC-SHA256(secret, "{t}.{body}"))`` (§4.5)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _headers(merchant: SandboxMerchant, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": sign(merchant.config["webhook_secret"], body),
    }


def _notify(merchant: SandboxMerchant, trade: SandboxTrade, body: bytes) -> None:
    if trade.notify_url:
        core.enqueue_notification(CHANNEL, trade.notify_url, _headers(merchant, body), body)


# ---------------------------------------------------------------------------------------------
# The provider


class CardSandbox(SandboxProvider):
    channel = CHANNEL
    #: Stripe: "attempts to deliver … for up to three days with an exponential back off".
    retry_schedule = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 57600, 57600, 43200)
    declines = (
        DeclineReason("insufficient_funds", "Insufficient funds", "insufficient_funds"),
        DeclineReason("phone_mismatch", "Card details do not match the issuer's record (CVC)", "incorrect_cvc"),
        DeclineReason("risk", "Blocked as fraudulent", "fraudulent"),
        DeclineReason("timeout", "Payer walked away", ABANDONED),
        DeclineReason("do_not_honor", "Issuer declined (do not honor)", "do_not_honor"),
        DeclineReason("generic_decline", "Generic decline", "generic_decline"),
        DeclineReason("incorrect_cvc", "Incorrect CVC", "incorrect_cvc"),
        DeclineReason("incorrect_number", "Incorrect card number", "incorrect_number"),
        DeclineReason("expired_card", "Expired card", "expired_card"),
        DeclineReason("processing_error", "Processing error", "processing_error"),
        DeclineReason("authentication_required", "Issuer requires authentication", "authentication_required"),
        DeclineReason("authentication_failed", "3-D Secure failed", "payment_intent_authentication_failure"),
    )

    def provision(self, *, merchant_id: str, app_id: str = "") -> dict:
        """An acquirer account with API keys and one webhook endpoint; idempotent."""
        with transaction.atomic():
            merchant, _created = SandboxMerchant.objects.select_for_update().get_or_create(
                channel=CHANNEL, merchant_id=merchant_id, defaults={"config": {}}
            )
            config = dict(merchant.config)
            if not config.get("secret_key"):
                suffix = _rand(24)
                config.update(
                    secret_key=f"sk_test_51{suffix}{_rand(72)}",
                    publishable_key=f"pk_test_51{suffix}{_rand(72)}",
                    webhook_secret=f"whsec_{_rand(32)}",
                    webhook_endpoint=f"we_{_rand(24)}",
                )
                merchant.config = config
                merchant.save(update_fields=["config"])
        return {
            "secret_key": config["secret_key"],
            "publishable_key": config["publishable_key"],
            "webhook_secret": config["webhook_secret"],
            "hosted_page_url": f"{core.own_url()}/sandbox/{CHANNEL}/elements/{{id}}/?client_secret={{client_secret}}",
        }

    def payment_notification(self, trade: SandboxTrade) -> tuple[Mapping[str, str], bytes] | None:
        merchant = self.merchant(trade.merchant_id)
        if merchant is None:
            return None
        if trade.status == SandboxTrade.Status.PAID:
            body = _event("payment_intent.succeeded", intent_json(trade))
        elif trade.status == SandboxTrade.Status.DECLINED and trade.decline_code != ABANDONED:
            body = _event("payment_intent.payment_failed", intent_json(trade))
        else:
            return None
        return _headers(merchant, body), body

    def notification_accepted(self, status_code: int, body: bytes) -> bool:
        return 200 <= status_code < 300

    def delivery_headers(self, note: SandboxNotification) -> Mapping[str, str]:
        """Every try carries a new timestamp and signature (Stripe re-signs retries)."""
        body = bytes(note.body)
        try:
            obj = json.loads(body)["data"]["object"]
            intent_id = obj["id"] if obj.get("object") == "payment_intent" else obj.get("payment_intent")
        except (ValueError, KeyError, TypeError, AttributeError):
            return note.headers
        trade = SandboxTrade.objects.filter(channel=CHANNEL, trade_no=intent_id).first()
        merchant = self.merchant(trade.merchant_id) if trade else None
        if merchant is None:
            return note.headers
        return {**note.headers, "Stripe-Signature": sign(merchant.config["webhook_secret"], body)}


# ---------------------------------------------------------------------------------------------
# API views


def _api(view):
    """Fault switches first, then the secret key, as on every acquirer API call."""

    @csrf_exempt
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if fault := core.fault_response(CHANNEL):
            return fault
        merchant = _authenticate(request)
        if isinstance(merchant, JsonResponse):
            return merchant
        return view(request, merchant, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _request_hash(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _idempotency_conflict(key: str) -> JsonResponse:
    return _error(400, "idempotency_error", f"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request.")


@_api
def payment_intents(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """POST /v1/payment_intents."""
    if request.method != "POST":
        return _error(405, "invalid_request_error", "Use POST to create a PaymentIntent.")
    data = _form(request)
    key = request.headers.get("Idempotency-Key", "")
    try:
        units = int(data.get("amount", ""))
    except (TypeError, ValueError):
        return _error(400, "invalid_request_error", "Invalid integer: amount", code="parameter_invalid_integer", param="amount")
    currency = str(data.get("currency", "")).upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        return _error(400, "invalid_request_error", "Missing required param: currency.", code="parameter_missing", param="currency")
    if units < 1:
        return _error(400, "invalid_request_error", "Amount must be at least 1", code="amount_too_small", param="amount")
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    out_trade_no = str(metadata.get("out_trade_no") or key or f"pi-{_rand(12)}")[:64]
    installments = (((data.get("payment_method_options") or {}).get("card") or {}).get("installments") or {}) if isinstance(data.get("payment_method_options"), dict) else {}
    digest = _request_hash(data)
    existing = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no).first()
    if existing is not None:
        if key and existing.extra.get("idempotency_key") == key:
            if existing.extra.get("request_hash") != digest:
                return _idempotency_conflict(key)
            response = JsonResponse(existing.extra["first_response"], status=200)
            response["Idempotent-Replayed"] = "true"
            return response
        return _error(400, "invalid_request_error", f"The sandbox already holds a PaymentIntent for metadata[out_trade_no]={out_trade_no}.", code="idempotency_key_in_use")
    intent_id = f"pi_{_rand(24)}"
    trade = SandboxTrade(
        channel=CHANNEL,
        merchant_id=merchant.merchant_id,
        out_trade_no=out_trade_no,
        trade_no=intent_id,
        amount=_major(units, currency).quantize(Decimal("0.01")),
        currency=currency,
        subject=str(data.get("description") or "")[:255],
        notify_url=_webhook_url(merchant),
        extra={
            "client_secret": f"{intent_id}_secret_{_rand(25)}",
            "metadata": {str(k): str(v) for k, v in metadata.items()},
            "installments_enabled": str(installments.get("enabled", "")).lower() == "true",
            "idempotency_key": key,
            "request_hash": digest,
        },
    )
    try:
        with transaction.atomic():
            trade.save()
            trade.extra["first_response"] = intent_json(trade)
            trade.save(update_fields=["extra"])
    except IntegrityError:
        return _error(400, "invalid_request_error", "A concurrent request created this PaymentIntent.", code="idempotency_key_in_use")
    return JsonResponse(trade.extra["first_response"], status=200)


@_api
def payment_intent_search(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """GET /v1/payment_intents/search?query=metadata['key']:'value'."""
    query = request.GET.get("query", "")
    match = re.fullmatch(r"\s*metadata\['([A-Za-z0-9_]+)'\]\s*:\s*'([^']*)'\s*", query)
    if not match:
        return _error(400, "invalid_request_error", "The sandbox supports search queries of the form metadata['key']:'value'.", code="parameter_invalid_string", param="query")
    trades = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant.merchant_id, **{f"extra__metadata__{match.group(1)}": match.group(2)})
    return JsonResponse({"object": "search_result", "data": [intent_json(t) for t in trades.order_by("-created_at")[:10]], "has_more": False, "next_page": None, "url": "/v1/payment_intents/search"})


def _trade(merchant: SandboxMerchant, intent_id: str, *, lock: bool = False) -> SandboxTrade | None:
    queryset = SandboxTrade.objects.select_for_update() if lock else SandboxTrade.objects
    return queryset.filter(channel=CHANNEL, merchant_id=merchant.merchant_id, trade_no=intent_id).first()


@_api
def payment_intent_detail(request: HttpRequest, merchant: SandboxMerchant, intent_id: str) -> HttpResponse:
    """GET /v1/payment_intents/<id>."""
    trade = _trade(merchant, intent_id)
    if trade is None:
        return _missing("payment_intent", intent_id, "intent")
    expand = _query(request).get("expand") or []
    return JsonResponse(intent_json(trade, expand_charge="latest_charge" in expand))


@_api
def payment_intent_cancel(request: HttpRequest, merchant: SandboxMerchant, intent_id: str) -> HttpResponse:
    """POST /v1/payment_intents/<id>/cancel — only before the intent succeeded."""
    if request.method != "POST":
        return _error(405, "invalid_request_error", "Use POST to cancel a PaymentIntent.")
    reason = _form(request).get("cancellation_reason") or None
    if reason not in (None, "duplicate", "fraudulent", "requested_by_customer", "abandoned"):
        return _error(400, "invalid_request_error", "Invalid cancellation_reason", code="parameter_invalid_string", param="cancellation_reason")
    with transaction.atomic():
        trade = _trade(merchant, intent_id, lock=True)
        if trade is None:
            return _missing("payment_intent", intent_id, "intent")
        if trade.status in (SandboxTrade.Status.PAID, SandboxTrade.Status.CLOSED):
            status = _status(trade)
            return _error(
                400, "invalid_request_error",
                f"You cannot cancel this PaymentIntent because it has a status of {status}.",
                code="payment_intent_unexpected_state", payment_intent=intent_json(trade),
            )
        trade.status = SandboxTrade.Status.CLOSED
        trade.extra = {**trade.extra, "cancellation_reason": reason or ABANDONED, "canceled_at": int(time.time()), "requires_action": False}
        trade.save(update_fields=["status", "extra"])
    return JsonResponse(intent_json(trade))


@_api
def refunds(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """POST /v1/refunds (partial, Idempotency-Key) and GET /v1/refunds?payment_intent=…"""
    if request.method == "GET":
        params = _query(request)
        trades = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant.merchant_id)
        if params.get("payment_intent"):
            trades = trades.filter(trade_no=params["payment_intent"])
        if params.get("charge"):
            trades = trades.filter(extra__charge_id=params["charge"])
        try:
            limit = max(1, min(int(params.get("limit", 10)), 100))
        except (TypeError, ValueError):
            limit = 10
        found = sorted(
            ((refund, trade) for trade in trades[:100] for refund in _refunds(trade)),
            key=lambda pair: (pair[0].created_at, pair[0].pk),
            reverse=True,
        )
        return JsonResponse({"object": "list", "data": [_refund_json(t, r) for r, t in found[:limit]], "has_more": len(found) > limit, "url": "/v1/refunds"})
    if request.method != "POST":
        return _error(405, "invalid_request_error", "Use POST to create a refund.")
    data = _form(request)
    key = request.headers.get("Idempotency-Key", "")
    intent_id = str(data.get("payment_intent") or "")
    with transaction.atomic():
        trade = _trade(merchant, intent_id, lock=True) if intent_id else None
        if trade is None and data.get("charge"):
            trade = SandboxTrade.objects.select_for_update().filter(channel=CHANNEL, merchant_id=merchant.merchant_id, extra__charge_id=data["charge"]).first()
        if trade is None:
            return _missing("payment_intent", intent_id or str(data.get("charge", "")), "payment_intent")
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        digest = _request_hash(data)
        out_refund_no = (key or str(metadata.get("refund_no") or "") or f"re-{_rand(12)}")[:64]
        existing = trade.refunds.filter(out_refund_no=out_refund_no).first()
        if existing is not None:
            if (trade.extra.get("refund_hashes") or {}).get(existing.refund_id) != digest:
                return _idempotency_conflict(out_refund_no)
            response = JsonResponse(_refund_json(trade, existing))
            response["Idempotent-Replayed"] = "true"
            return response
        if trade.status != SandboxTrade.Status.PAID:
            return _error(400, "invalid_request_error", f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.", code="payment_intent_unexpected_state", param="payment_intent")
        total = _units(trade.amount, trade.currency)
        refunded = sum(_units(r.amount, trade.currency) for r in _refunds(trade) if r.status == SandboxRefund.Status.SUCCESS)
        if refunded >= total:
            return _error(400, "invalid_request_error", f"Charge {trade.extra.get('charge_id')} has already been refunded.", code="charge_already_refunded")
        try:
            units = int(data["amount"]) if "amount" in data else total - refunded
        except (TypeError, ValueError):
            return _error(400, "invalid_request_error", "Invalid integer: amount", code="parameter_invalid_integer", param="amount")
        if units < 1:
            return _error(400, "invalid_request_error", "Refund amount must be positive.", code="amount_too_small", param="amount")
        if units > total - refunded:
            return _error(400, "invalid_request_error", f"Refund amount ({units}) is greater than unrefunded amount on charge ({total - refunded})", code="amount_too_large", param="amount")
        refund = SandboxRefund.objects.create(trade=trade, out_refund_no=out_refund_no, refund_id=f"re_{_rand(24)}", amount=_major(units, trade.currency).quantize(Decimal("0.01")))
        trade.extra = {
            **trade.extra,
            "refund_meta": {**(trade.extra.get("refund_meta") or {}), refund.refund_id: {str(k): str(v) for k, v in metadata.items()}},
            "refund_hashes": {**(trade.extra.get("refund_hashes") or {}), refund.refund_id: digest},
        }
        trade.save(update_fields=["extra"])
        _notify(merchant, trade, _event("charge.refunded", charge_json(trade) or {}))
    return JsonResponse(_refund_json(trade, refund))


@_api
def refund_detail(request: HttpRequest, merchant: SandboxMerchant, refund_id: str) -> HttpResponse:
    refund = SandboxRefund.objects.filter(refund_id=refund_id, trade__channel=CHANNEL, trade__merchant_id=merchant.merchant_id).select_related("trade").first()
    if refund is None:
        return _missing("refund", refund_id)
    return JsonResponse(_refund_json(refund.trade, refund))


@_api
def webhook_endpoint(request: HttpRequest, merchant: SandboxMerchant, endpoint_id: str) -> HttpResponse:
    """GET/POST /v1/webhook_endpoints/<id>: point the merchant's events at another URL."""
    if merchant.config.get("webhook_endpoint") != endpoint_id:
        return _missing("webhook_endpoint", endpoint_id)
    if request.method == "POST" and request.POST.get("url"):
        merchant.config = {**merchant.config, "webhook_url": request.POST["url"]}
        merchant.save(update_fields=["config"])
    return JsonResponse({"id": endpoint_id, "object": "webhook_endpoint", "api_version": API_VERSION, "enabled_events": ["payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"], "livemode": False, "status": "enabled", "url": _webhook_url(merchant)})


# ---------------------------------------------------------------------------------------------
# Reporting API


def _run_json(run_id: str, run: Mapping[str, Any]) -> dict[str, Any]:
    file_id = run["file_id"]
    return {
        "id": run_id,
        "object": "reporting.report_run",
        "created": run["created"],
        "error": None,
        "livemode": False,
        "parameters": run["parameters"],
        "report_type": run["report_type"],
        "result": {
            "id": file_id,
            "object": "file",
            "created": run["created"],
            "expires_at": run["created"] + 7 * 86400,
            "filename": f"{file_id}.csv",
            "purpose": "finance_report_run",
            "size": run["size"],
            "title": f"{run['report_type']} {run_id}",
            "type": "csv",
            "url": f"{core.own_url()}/sandbox/{CHANNEL}/v1/files/{file_id}/contents",
        },
        "status": "succeeded",
        "succeeded_at": run["created"],
    }


@_api
def report_runs(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """POST /v1/reporting/report_runs — the run finishes at once in the sandbox."""
    if request.method != "POST":
        return _error(405, "invalid_request_error", "Use POST to create a report run.")
    data = _form(request)
    report_type = data.get("report_type")
    if report_type not in REPORT_TYPES:
        return _error(400, "invalid_request_error", f"Unknown report type: {report_type}", code="parameter_invalid_string", param="report_type")
    parameters = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    try:
        start, end = int(parameters["interval_start"]), int(parameters["interval_end"])
    except (KeyError, TypeError, ValueError):
        return _error(400, "invalid_request_error", "parameters[interval_start] and parameters[interval_end] are required integers.", code="parameter_missing", param="parameters")
    if end <= start:
        return _error(400, "invalid_request_error", "interval_end must be after interval_start.", code="parameter_invalid_integer", param="parameters[interval_end]")
    zone = str(parameters.get("timezone") or "Etc/UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return _error(400, "invalid_request_error", f"Invalid timezone: {zone}", code="parameter_invalid_string", param="parameters[timezone]")
    columns = parameters.get("columns") or list(DEFAULT_REPORT_COLUMNS)
    if not isinstance(columns, list):
        columns = [columns]
    unknown = [c for c in columns if c not in REPORT_COLUMNS and not re.fullmatch(r"(payment|refund)_metadata\[[A-Za-z0-9_]+\]", c)]
    if unknown:
        return _error(400, "invalid_request_error", f"Invalid columns: {', '.join(unknown)}", code="parameter_invalid_string", param="parameters[columns]")
    params = {"interval_start": start, "interval_end": end, "timezone": zone, "columns": columns}
    run_id, file_id = f"frr_{_rand(24)}", f"file_{_rand(24)}"
    run = {"report_type": report_type, "parameters": params, "created": int(time.time()), "file_id": file_id}
    run["size"] = len(report_csv(merchant.merchant_id, params))
    with transaction.atomic():
        merchant = SandboxMerchant.objects.select_for_update().get(pk=merchant.pk)
        runs = dict(merchant.config.get("report_runs") or {})
        runs[run_id] = run
        if len(runs) > 100:
            for old in sorted(runs, key=lambda r: runs[r]["created"])[: len(runs) - 100]:
                runs.pop(old)
        merchant.config = {**merchant.config, "report_runs": runs}
        merchant.save(update_fields=["config"])
    return JsonResponse(_run_json(run_id, run))


@_api
def report_run_detail(request: HttpRequest, merchant: SandboxMerchant, run_id: str) -> HttpResponse:
    run = (merchant.config.get("report_runs") or {}).get(run_id)
    if run is None:
        return _missing("reporting.report_run", run_id)
    return JsonResponse(_run_json(run_id, run))


@_api
def file_contents(request: HttpRequest, merchant: SandboxMerchant, file_id: str) -> HttpResponse:
    """GET /v1/files/<id>/contents — the report CSV (files.stripe.com on the live service)."""
    run = next((r for r in (merchant.config.get("report_runs") or {}).values() if r["file_id"] == file_id), None)
    if run is None:
        return _missing("file", file_id)
    response = HttpResponse(report_csv(merchant.merchant_id, run["parameters"]), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{file_id}.csv"'
    return response


def _report_money(units: int, currency: str) -> str:
    return f"{_major(units, currency):.{_exponent(currency)}f}"


def report_csv(merchant_id: str, params: Mapping[str, Any]) -> bytes:
    """The itemized balance-change report for ``[interval_start, interval_end)``: one row per
    charge (gross, 0.6 % fee, net) and per refund (negative gross, no fee returned); amounts in
    major units; ``created`` in ``parameters[timezone]``."""
    zone = ZoneInfo(str(params.get("timezone") or "Etc/UTC"))
    start = dt.datetime.fromtimestamp(int(params["interval_start"]), tz=dt.UTC)
    end = dt.datetime.fromtimestamp(int(params["interval_end"]), tz=dt.UTC)
    columns = list(params["columns"])
    rows: list[tuple[dt.datetime, dict[str, str]]] = []

    def base(trade: SandboxTrade, when: dt.datetime) -> dict[str, str]:
        return {
            "created_utc": when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "created": when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            "available_on_utc": (when + AVAILABLE_AFTER).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "available_on": (when + AVAILABLE_AFTER).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            "currency": trade.currency.lower(),
            "customer_facing_currency": trade.currency.lower(),
            "payment_intent_id": trade.trade_no,
            "charge_id": trade.extra.get("charge_id", ""),
            "charge_created_utc": (trade.paid_at or trade.created_at).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "payment_method_type": "card",
            "card_brand": "visa",
            "card_funding": "credit",
            "card_country": "US",
            **{f"payment_metadata[{k}]": v for k, v in (trade.extra.get("metadata") or {}).items()},
        }

    paid = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant_id, status=SandboxTrade.Status.PAID, paid_at__gte=start, paid_at__lt=end)
    for trade in paid:
        units = _units(trade.amount, trade.currency)
        fee = _fee_units(units)
        row = base(trade, trade.paid_at)
        row.update(
            balance_transaction_id=_stable_id("txn_", trade.extra.get("charge_id", trade.trade_no)),
            gross=_report_money(units, trade.currency),
            fee=_report_money(fee, trade.currency),
            net=_report_money(units - fee, trade.currency),
            customer_facing_amount=_report_money(units, trade.currency),
            reporting_category="charge",
            source_id=trade.extra.get("charge_id", ""),
            description=trade.subject,
        )
        rows.append((trade.paid_at, row))
    refunded = SandboxRefund.objects.filter(
        trade__channel=CHANNEL, trade__merchant_id=merchant_id, status=SandboxRefund.Status.SUCCESS, created_at__gte=start, created_at__lt=end
    ).select_related("trade")
    for refund in refunded:
        trade = refund.trade
        units = _units(refund.amount, trade.currency)
        row = base(trade, refund.created_at)
        row.update(
            balance_transaction_id=_stable_id("txn_", refund.refund_id),
            gross=_report_money(-units, trade.currency),
            fee=_report_money(0, trade.currency),
            net=_report_money(-units, trade.currency),
            customer_facing_amount=_report_money(units, trade.currency),
            reporting_category="refund",
            source_id=refund.refund_id,
            description=f"REFUND FOR CHARGE ({trade.subject})" if trade.subject else "REFUND FOR CHARGE",
            **{f"refund_metadata[{k}]": v for k, v in ((trade.extra.get("refund_meta") or {}).get(refund.refund_id) or {}).items()},
        )
        rows.append((refund.created_at, row))
    rows.sort(key=lambda item: item[0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for _when, row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------------------------
# The buyer's pages: hosted card form and 3-D Secure challenge

def _render(request: HttpRequest, trade: SandboxTrade, *, step: str, client_secret: str, return_url: str, plan: str, error: str = "", status: int = 200) -> HttpResponse:
    provider = core.provider(CHANNEL)
    context = {
        "title": "3-D Secure" if step == "3ds" else _("Pay by card"),
        "trade": trade,
        "status": _status(trade),
        "open": trade.status == SandboxTrade.Status.WAITING,
        "step": step,
        "client_secret": client_secret,
        "return_url": return_url,
        "plan": plan,
        "error": error,
        "declines": [d for d in provider.declines if d.key != "authentication_failed"],
        "threshold": f"{THREE_DS_THRESHOLD} {trade.currency}",
    }
    return HttpResponse(render_to_string("sandbox/card.html", context, request), status=status)


def _luhn(number: str) -> bool:
    digits = [int(d) for d in number][::-1]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def _card_problem(number: str, exp: str, cvc: str) -> str | None:
    """The decline key a card form earns before the issuer is asked, or None."""
    if not re.fullmatch(r"\d{12,19}", number) or not _luhn(number):
        return "incorrect_number"
    match = re.fullmatch(r"(\d{1,2})\s*/\s*(\d{2}|\d{4})", exp)
    if not match or not 1 <= int(match.group(1)) <= 12:
        return "expired_card"
    year = int(match.group(2)) + (2000 if len(match.group(2)) == 2 else 0)
    today = timezone.localdate()
    if (year, int(match.group(1))) < (today.year, today.month):
        return "expired_card"
    if not re.fullmatch(r"\d{3,4}", cvc):
        return "incorrect_cvc"
    return TEST_CARDS.get(number)


def _finish(request: HttpRequest, trade: SandboxTrade, *, approve: bool, decline_key: str, return_url: str, client_secret: str, plan: str, step: str) -> HttpResponse:
    provider = core.provider(CHANNEL)
    with transaction.atomic():
        locked = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
        if not locked.extra.get("charge_id"):
            locked.extra = {**locked.extra, "charge_id": f"ch_{_rand(24)}", "payment_method": f"pm_{_rand(24)}"}
        locked.extra = {**locked.extra, "requires_action": False}
        locked.save(update_fields=["extra"])
    provider.settle(locked, approve=approve, decline_key=decline_key)
    trade.refresh_from_db()
    if return_url and trade.status != SandboxTrade.Status.WAITING:
        outcome = "succeeded" if trade.status == SandboxTrade.Status.PAID else "failed"
        query = urlencode({"payment_intent": trade.trade_no, "payment_intent_client_secret": client_secret, "redirect_status": outcome})
        return redirect(return_url + ("&" if "?" in return_url else "?") + query)
    return _render(request, trade, step=step, client_secret=client_secret, return_url=return_url, plan=plan)


def _page_trade(intent_id: str, client_secret: str) -> SandboxTrade | None:
    trade = SandboxTrade.objects.filter(channel=CHANNEL, trade_no=intent_id).first()
    if trade is None or not hmac.compare_digest(str(trade.extra.get("client_secret", "")), client_secret):
        return None
    return trade


@csrf_exempt  # the acquirer's page: the merchant's CSRF token does not apply here
def elements(request: HttpRequest, intent_id: str) -> HttpResponse:
    """The hosted card page: card fields, then approve (with 3-D Secure when needed) or decline."""
    source = request.POST if request.method == "POST" else request.GET
    client_secret, return_url = source.get("client_secret", ""), source.get("return_url", "")
    plan = source.get("installments", "")
    trade = _page_trade(intent_id, client_secret)
    if trade is None:
        return HttpResponse("Unknown payment or wrong client_secret.", status=404, content_type="text/plain")
    if request.method != "POST" or trade.status != SandboxTrade.Status.WAITING:
        return _render(request, trade, step="card", client_secret=client_secret, return_url=return_url, plan=plan)
    if plan and not (plan.isdigit() and trade.extra.get("installments_enabled")):
        return _render(request, trade, step="card", client_secret=client_secret, return_url=return_url, plan="", error=_("Instalments are not enabled for this payment."), status=400)
    if plan:
        trade.extra = {**trade.extra, "installments_plan": {"count": int(plan), "interval": "month", "type": "fixed_count"}}
        trade.save(update_fields=["extra"])
    if request.POST.get("decision") != "approve":
        return _finish(request, trade, approve=False, decline_key=request.POST.get("reason", ""), return_url=return_url, client_secret=client_secret, plan=plan, step="card")
    number = re.sub(r"[\s-]", "", request.POST.get("number", ""))
    problem = _card_problem(number, request.POST.get("exp", ""), request.POST.get("cvc", ""))
    trade.extra = {**trade.extra, "last4": number[-4:]}
    trade.save(update_fields=["extra"])
    if problem:
        return _finish(request, trade, approve=False, decline_key=problem, return_url=return_url, client_secret=client_secret, plan=plan, step="card")
    if trade.amount >= THREE_DS_THRESHOLD or number in ALWAYS_3DS:
        trade.extra = {**trade.extra, "requires_action": True}
        if return_url:
            trade.return_url = return_url[:500]
        trade.save(update_fields=["extra", "return_url"])
        query = urlencode({"client_secret": client_secret, "return_url": return_url, "installments": plan})
        return redirect(f"/sandbox/{CHANNEL}/3ds/{trade.trade_no}/?{query}")
    return _finish(request, trade, approve=True, decline_key="", return_url=return_url, client_secret=client_secret, plan=plan, step="card")


@csrf_exempt
def three_d_secure(request: HttpRequest, intent_id: str) -> HttpResponse:
    """The issuer's 3-D Secure challenge for an intent in ``requires_action``."""
    source = request.POST if request.method == "POST" else request.GET
    client_secret, return_url, plan = source.get("client_secret", ""), source.get("return_url", ""), source.get("installments", "")
    trade = _page_trade(intent_id, client_secret)
    if trade is None:
        return HttpResponse("Unknown payment or wrong client_secret.", status=404, content_type="text/plain")
    if request.method != "POST" or trade.status != SandboxTrade.Status.WAITING or not trade.extra.get("requires_action"):
        return _render(request, trade, step="3ds", client_secret=client_secret, return_url=return_url, plan=plan)
    approve = request.POST.get("decision") == "approve"
    return _finish(request, trade, approve=approve, decline_key="" if approve else "authentication_failed", return_url=return_url, client_secret=client_secret, plan=plan, step="3ds")


urlpatterns = [
    path("v1/payment_intents", payment_intents, name="payment-intents"),
    path("v1/payment_intents/search", payment_intent_search, name="payment-intent-search"),
    path("v1/payment_intents/<str:intent_id>", payment_intent_detail, name="payment-intent"),
    path("v1/payment_intents/<str:intent_id>/cancel", payment_intent_cancel, name="payment-intent-cancel"),
    path("v1/refunds", refunds, name="refunds"),
    path("v1/refunds/<str:refund_id>", refund_detail, name="refund"),
    path("v1/reporting/report_runs", report_runs, name="report-runs"),
    path("v1/reporting/report_runs/<str:run_id>", report_run_detail, name="report-run"),
    path("v1/files/<str:file_id>/contents", file_contents, name="file-contents"),
    path("v1/webhook_endpoints/<str:endpoint_id>", webhook_endpoint, name="webhook-endpoint"),
    path("elements/<str:intent_id>/", elements, name="elements"),
    path("3ds/<str:intent_id>/", three_d_secure, name="3ds"),
]
