"""The acquirer's API endpoints the backend calls (``/v1/payment_intents``, ``/v1/refunds``,
``/v1/webhook_endpoints``), each behind the fault switches and the secret key, with
``Idempotency-Key`` honoured; and the URLs of the whole simulator."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from payments.sandbox.card import element
from payments.sandbox.card.pages import elements, three_d_secure
from payments.sandbox.card.protocol import (
    ABANDONED,
    API_VERSION,
    CHANNEL,
    api_view,
    error_response,
    event_body,
    form_data,
    major_of,
    missing,
    query_data,
    random_token,
    units_of,
    webhook_url,
)
from payments.sandbox.card.report import file_contents, report_run_detail, report_runs
from payments.sandbox.card.state import (
    REQUEST_THREE_D_SECURE,
    charge_json,
    intent_json,
    intent_status,
    notify_merchant,
    refund_json,
    trade_refunds,
)
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxRefund,
    SandboxTrade,
)

# ---------------------------------------------------------------------------------------------
# API views


def _request_hash(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _idempotency_conflict(key: str) -> JsonResponse:
    return error_response(
        400,
        "idempotency_error",
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
    )


@api_view
def payment_intents(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """POST /v1/payment_intents."""
    if request.method != "POST":
        return error_response(405, "invalid_request_error", "Use POST to create a PaymentIntent.")
    data = form_data(request)
    key = request.headers.get("Idempotency-Key", "")
    try:
        units = int(data.get("amount", ""))
    except (TypeError, ValueError):
        return error_response(
            400,
            "invalid_request_error",
            "Invalid integer: amount",
            code="parameter_invalid_integer",
            param="amount",
        )
    currency = str(data.get("currency", "")).upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        return error_response(
            400,
            "invalid_request_error",
            "Missing required param: currency.",
            code="parameter_missing",
            param="currency",
        )
    if units < 1:
        return error_response(
            400,
            "invalid_request_error",
            "Amount must be at least 1",
            code="amount_too_small",
            param="amount",
        )
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    out_trade_no = str(metadata.get("out_trade_no") or key or f"pi-{random_token(12)}")[:64]
    installments = (
        (((data.get("payment_method_options") or {}).get("card") or {}).get("installments") or {})
        if isinstance(data.get("payment_method_options"), dict)
        else {}
    )
    three_d_secure = (
        str(
            ((data.get("payment_method_options") or {}).get("card") or {}).get(
                "request_three_d_secure"
            )
            or "automatic"
        )
        if isinstance(data.get("payment_method_options"), dict)
        else "automatic"
    )
    if three_d_secure not in REQUEST_THREE_D_SECURE:
        return error_response(
            400,
            "invalid_request_error",
            "Invalid payment_method_options[card][request_three_d_secure]: must be one of "
            "any, automatic or challenge",
            code="parameter_invalid_string",
            param="payment_method_options[card][request_three_d_secure]",
        )
    digest = _request_hash(data)
    existing = SandboxTrade.objects.filter(
        channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no
    ).first()
    if existing is not None:
        if key and existing.extra.get("idempotency_key") == key:
            if existing.extra.get("request_hash") != digest:
                return _idempotency_conflict(key)
            response = JsonResponse(existing.extra["first_response"], status=200)
            response["Idempotent-Replayed"] = "true"
            return response
        return error_response(
            400,
            "invalid_request_error",
            f"The sandbox already holds a PaymentIntent for metadata[out_trade_no]={out_trade_no}.",
            code="idempotency_key_in_use",
        )
    intent_id = f"pi_{random_token(24)}"
    trade = SandboxTrade(
        channel=CHANNEL,
        merchant_id=merchant.merchant_id,
        out_trade_no=out_trade_no,
        trade_no=intent_id,
        amount=major_of(units, currency).quantize(Decimal("0.01")),
        currency=currency,
        subject=str(data.get("description") or "")[:255],
        notify_url=webhook_url(merchant),
        extra={
            "client_secret": f"{intent_id}_secret_{random_token(25)}",
            "metadata": {str(k): str(v) for k, v in metadata.items()},
            "installments_enabled": str(installments.get("enabled", "")).lower() == "true",
            "request_three_d_secure": three_d_secure,
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
        return error_response(
            400,
            "invalid_request_error",
            "A concurrent request created this PaymentIntent.",
            code="idempotency_key_in_use",
        )
    return JsonResponse(trade.extra["first_response"], status=200)


@api_view
def payment_intent_search(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """GET /v1/payment_intents/search?query=metadata['key']:'value'."""
    query = request.GET.get("query", "")
    match = re.fullmatch(r"\s*metadata\['([A-Za-z0-9_]+)'\]\s*:\s*'([^']*)'\s*", query)
    if not match:
        return error_response(
            400,
            "invalid_request_error",
            "The sandbox supports search queries of the form metadata['key']:'value'.",
            code="parameter_invalid_string",
            param="query",
        )
    trades = SandboxTrade.objects.filter(
        channel=CHANNEL,
        merchant_id=merchant.merchant_id,
        **{f"extra__metadata__{match.group(1)}": match.group(2)},
    )
    return JsonResponse(
        {
            "object": "search_result",
            "data": [intent_json(t) for t in trades.order_by("-created_at")[:10]],
            "has_more": False,
            "next_page": None,
            "url": "/v1/payment_intents/search",
        }
    )


def _trade(merchant: SandboxMerchant, intent_id: str, *, lock: bool = False) -> SandboxTrade | None:
    queryset = SandboxTrade.objects.select_for_update() if lock else SandboxTrade.objects
    return queryset.filter(
        channel=CHANNEL, merchant_id=merchant.merchant_id, trade_no=intent_id
    ).first()


@api_view
def payment_intent_detail(
    request: HttpRequest, merchant: SandboxMerchant, intent_id: str
) -> HttpResponse:
    """GET /v1/payment_intents/<id> with the secret key (a browser's call with the
    publishable key and the client secret is answered by :mod:`element`)."""
    trade = _trade(merchant, intent_id)
    if trade is None:
        return missing("payment_intent", intent_id, "intent")
    expand = query_data(request).get("expand") or []
    return JsonResponse(intent_json(trade, expand_charge="latest_charge" in expand))


@api_view
def payment_intent_cancel(
    request: HttpRequest, merchant: SandboxMerchant, intent_id: str
) -> HttpResponse:
    """POST /v1/payment_intents/<id>/cancel — only before the intent succeeded."""
    if request.method != "POST":
        return error_response(405, "invalid_request_error", "Use POST to cancel a PaymentIntent.")
    reason = form_data(request).get("cancellation_reason") or None
    if reason not in (None, "duplicate", "fraudulent", "requested_by_customer", "abandoned"):
        return error_response(
            400,
            "invalid_request_error",
            "Invalid cancellation_reason",
            code="parameter_invalid_string",
            param="cancellation_reason",
        )
    with transaction.atomic():
        trade = _trade(merchant, intent_id, lock=True)
        if trade is None:
            return missing("payment_intent", intent_id, "intent")
        if trade.status in (SandboxTrade.Status.PAID, SandboxTrade.Status.CLOSED):
            status = intent_status(trade)
            return error_response(
                400,
                "invalid_request_error",
                f"You cannot cancel this PaymentIntent because it has a status of {status}.",
                code="payment_intent_unexpected_state",
                payment_intent=intent_json(trade),
            )
        trade.status = SandboxTrade.Status.CLOSED
        trade.extra = {
            **trade.extra,
            "cancellation_reason": reason or ABANDONED,
            "canceled_at": int(time.time()),
            "requires_action": False,
        }
        trade.save(update_fields=["status", "extra"])
    return JsonResponse(intent_json(trade))


@api_view
def refunds(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """POST /v1/refunds (partial, Idempotency-Key) and GET /v1/refunds?payment_intent=…"""
    if request.method == "GET":
        params = query_data(request)
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
            ((refund, trade) for trade in trades[:100] for refund in trade_refunds(trade)),
            key=lambda pair: (pair[0].created_at, pair[0].pk),
            reverse=True,
        )
        return JsonResponse(
            {
                "object": "list",
                "data": [refund_json(t, r) for r, t in found[:limit]],
                "has_more": len(found) > limit,
                "url": "/v1/refunds",
            }
        )
    if request.method != "POST":
        return error_response(405, "invalid_request_error", "Use POST to create a refund.")
    data = form_data(request)
    key = request.headers.get("Idempotency-Key", "")
    intent_id = str(data.get("payment_intent") or "")
    with transaction.atomic():
        trade = _trade(merchant, intent_id, lock=True) if intent_id else None
        if trade is None and data.get("charge"):
            trade = (
                SandboxTrade.objects.select_for_update()
                .filter(
                    channel=CHANNEL,
                    merchant_id=merchant.merchant_id,
                    extra__charge_id=data["charge"],
                )
                .first()
            )
        if trade is None:
            return missing(
                "payment_intent", intent_id or str(data.get("charge", "")), "payment_intent"
            )
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        digest = _request_hash(data)
        out_refund_no = (key or str(metadata.get("refund_no") or "") or f"re-{random_token(12)}")[
            :64
        ]
        existing = trade.refunds.filter(out_refund_no=out_refund_no).first()
        if existing is not None:
            if (trade.extra.get("refund_hashes") or {}).get(existing.refund_id) != digest:
                return _idempotency_conflict(out_refund_no)
            response = JsonResponse(refund_json(trade, existing))
            response["Idempotent-Replayed"] = "true"
            return response
        if trade.status != SandboxTrade.Status.PAID:
            return error_response(
                400,
                "invalid_request_error",
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                code="payment_intent_unexpected_state",
                param="payment_intent",
            )
        total = units_of(trade.amount, trade.currency)
        refunded = sum(
            units_of(r.amount, trade.currency)
            for r in trade_refunds(trade)
            if r.status == SandboxRefund.Status.SUCCESS
        )
        if refunded >= total:
            return error_response(
                400,
                "invalid_request_error",
                f"Charge {trade.extra.get('charge_id')} has already been refunded.",
                code="charge_already_refunded",
            )
        try:
            units = int(data["amount"]) if "amount" in data else total - refunded
        except (TypeError, ValueError):
            return error_response(
                400,
                "invalid_request_error",
                "Invalid integer: amount",
                code="parameter_invalid_integer",
                param="amount",
            )
        if units < 1:
            return error_response(
                400,
                "invalid_request_error",
                "Refund amount must be positive.",
                code="amount_too_small",
                param="amount",
            )
        if units > total - refunded:
            return error_response(
                400,
                "invalid_request_error",
                f"Refund amount ({units}) is greater than unrefunded amount on charge "
                f"({total - refunded})",
                code="amount_too_large",
                param="amount",
            )
        refund = SandboxRefund.objects.create(
            trade=trade,
            out_refund_no=out_refund_no,
            refund_id=f"re_{random_token(24)}",
            amount=major_of(units, trade.currency).quantize(Decimal("0.01")),
        )
        trade.extra = {
            **trade.extra,
            "refund_meta": {
                **(trade.extra.get("refund_meta") or {}),
                refund.refund_id: {str(k): str(v) for k, v in metadata.items()},
            },
            "refund_hashes": {**(trade.extra.get("refund_hashes") or {}), refund.refund_id: digest},
        }
        trade.save(update_fields=["extra"])
        notify_merchant(merchant, trade, event_body("charge.refunded", charge_json(trade) or {}))
    return JsonResponse(refund_json(trade, refund))


@api_view
def refund_detail(request: HttpRequest, merchant: SandboxMerchant, refund_id: str) -> HttpResponse:
    refund = (
        SandboxRefund.objects.filter(
            refund_id=refund_id, trade__channel=CHANNEL, trade__merchant_id=merchant.merchant_id
        )
        .select_related("trade")
        .first()
    )
    if refund is None:
        return missing("refund", refund_id)
    return JsonResponse(refund_json(refund.trade, refund))


@api_view
def webhook_endpoint(
    request: HttpRequest, merchant: SandboxMerchant, endpoint_id: str
) -> HttpResponse:
    """GET/POST /v1/webhook_endpoints/<id>: point the merchant's events at another URL."""
    if merchant.config.get("webhook_endpoint") != endpoint_id:
        return missing("webhook_endpoint", endpoint_id)
    if request.method == "POST" and request.POST.get("url"):
        merchant.config = {**merchant.config, "webhook_url": request.POST["url"]}
        merchant.save(update_fields=["config"])
    return JsonResponse(
        {
            "id": endpoint_id,
            "object": "webhook_endpoint",
            "api_version": API_VERSION,
            "enabled_events": [
                "payment_intent.succeeded",
                "payment_intent.payment_failed",
                "charge.refunded",
            ],
            "livemode": False,
            "status": "enabled",
            "url": webhook_url(merchant),
        }
    )


urlpatterns = [
    path("v1/payment_intents", payment_intents, name="payment-intents"),
    path("v1/payment_intents/search", payment_intent_search, name="payment-intent-search"),
    path(
        "v1/payment_intents/<str:intent_id>",
        element.with_publishable_key(payment_intent_detail, element.intent_retrieve),
        name="payment-intent",
    ),
    path(
        "v1/payment_intents/<str:intent_id>/confirm", element.intent_confirm, name="intent-confirm"
    ),
    path("v1/3ds2/challenge_complete", element.challenge_complete, name="3ds2-complete"),
    path("v3/", element.script, name="stripe-js"),
    path(
        "v1/payment_intents/<str:intent_id>/cancel",
        payment_intent_cancel,
        name="payment-intent-cancel",
    ),
    path("v1/refunds", refunds, name="refunds"),
    path("v1/refunds/<str:refund_id>", refund_detail, name="refund"),
    path("v1/reporting/report_runs", report_runs, name="report-runs"),
    path("v1/reporting/report_runs/<str:run_id>", report_run_detail, name="report-run"),
    path("v1/files/<str:file_id>/contents", file_contents, name="file-contents"),
    path("v1/webhook_endpoints/<str:endpoint_id>", webhook_endpoint, name="webhook-endpoint"),
    path("elements/<str:intent_id>/", elements, name="elements"),
    path("3ds/<str:intent_id>/", three_d_secure, name="3ds"),
]
