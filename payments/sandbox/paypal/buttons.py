"""A stand-in for PayPal's JS SDK (``/sdk/js``) and the approval window its buttons open,
backed by this simulator's orders, so the order page's code is the same in sandbox mode.

``sdk/js?client-id=…&currency=…&intent=capture`` answers the script (``sdk.js`` beside this
module) for a REST app the simulator issued, as PayPal answers 400 for an unknown client id
or an intent other than capture. The script's buttons call ``createOrder`` as the real SDK
does, show the order in a window over the page (amount and merchant read from
``sdk/orders/<id>``, for the app that created it only) and post the tester's choice to
``sdk/orders/<id>/approve``: approve makes the order APPROVED (and sends
``CHECKOUT.ORDER.APPROVED`` like the cashier), a decline approves it with a failing funding
source (the capture is refused with the decline's issue code), cancel calls ``onCancel``.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from payments.sandbox import core
from payments.sandbox.models import SandboxMerchant, SandboxTrade
from payments.sandbox.paypal.resources import (
    CHANNEL,
    amount_value,
    error_response,
    not_found,
    order_status,
    unprocessable,
)

SDK_SCRIPT = Path(__file__).with_name("sdk.js")
DECLINES = ("insufficient_funds", "risk")


def _merchant_of(client_id: str) -> SandboxMerchant | None:
    if not client_id:
        return None
    return SandboxMerchant.objects.filter(channel=CHANNEL, config__client_id=client_id).first()


def _script_error(message: str) -> HttpResponse:
    """PayPal answers a bad SDK URL with HTTP 400 and a script that throws."""
    body = f"throw new Error({json.dumps('SDK Validation error: ' + message)});"
    return HttpResponse(body, status=400, content_type="application/javascript")


@never_cache
@require_GET
def sdk_script(request: HttpRequest) -> HttpResponse:
    if core.fault_response(CHANNEL) is not None:
        return HttpResponse(status=503)
    if _merchant_of(request.GET.get("client-id", "")) is None:
        return _script_error("Client ID not recognized for either production or sandbox")
    if request.GET.get("intent", "capture").lower() != "capture":
        return _script_error("The sandbox supports intent=capture only")
    return HttpResponse(SDK_SCRIPT.read_bytes(), content_type="application/javascript")


def _trade(merchant: SandboxMerchant, order_id: str) -> SandboxTrade | None:
    return SandboxTrade.objects.filter(
        channel=CHANNEL, merchant_id=merchant.merchant_id, trade_no=order_id
    ).first()


def _client_error() -> JsonResponse:
    return error_response(401, "AUTHENTICATION_FAILURE", "Client ID not recognized.")


@never_cache
@require_GET
def sdk_order(request: HttpRequest, order_id: str) -> HttpResponse:
    """What PayPal's window shows the payer: the order of the buttons' own app."""
    merchant = _merchant_of(request.GET.get("client-id", ""))
    if merchant is None:
        return _client_error()
    trade = _trade(merchant, order_id)
    if trade is None:
        return not_found(order_id)
    return JsonResponse(
        {
            "id": trade.trade_no,
            "status": order_status(trade),
            "amount": amount_value(trade.amount, trade.currency),
            "currency": trade.currency,
            "description": trade.subject,
            "merchant": trade.merchant_id,
        }
    )


@csrf_exempt
@require_POST
def sdk_approve(request: HttpRequest, order_id: str) -> HttpResponse:
    """The payer's choice in the window: ``{"client_id", "decision": "approve"|"decline",
    "reason"}``. Only an order still waiting for its payer can be approved."""
    if fault := core.fault_response(CHANNEL):
        return fault
    try:
        data = json.loads(request.body or b"{}")
        if not isinstance(data, dict):
            raise TypeError
    except (ValueError, TypeError):
        return error_response(400, "INVALID_REQUEST", "The request JSON is not well formed.")
    merchant = _merchant_of(str(data.get("client_id", "")))
    if merchant is None:
        return _client_error()
    trade = _trade(merchant, order_id)
    if trade is None:
        return not_found(order_id)
    if trade.status != SandboxTrade.Status.WAITING:
        return unprocessable("ORDER_NOT_APPROVABLE", "The order can no longer be approved.")
    if data.get("decision") == "approve":
        core.provider(CHANNEL).settle(trade, approve=True)
    elif data.get("decision") == "decline" and data.get("reason") in DECLINES:
        core.provider(CHANNEL).settle(trade, approve=False, decline_key=str(data["reason"]))
    else:
        return error_response(400, "INVALID_REQUEST", "decision must be approve or decline.")
    trade.refresh_from_db()
    return JsonResponse(
        {"orderID": trade.trade_no, "payerID": trade.extra.get("payer_id", ""), "status": "ok"}
    )


urlpatterns = [
    path("sdk/js", sdk_script, name="sdk-js"),
    path("sdk/orders/<str:order_id>", sdk_order, name="sdk-order"),
    path("sdk/orders/<str:order_id>/approve", sdk_approve, name="sdk-approve"),
]
