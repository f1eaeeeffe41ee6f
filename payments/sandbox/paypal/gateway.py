"""The simulated PayPal REST API: OAuth tokens, the provider hooks (webhooks, retries,
declines) and the endpoints a merchant calls (orders, capture, refund, webhook, certs,
STL download)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from payments.sandbox import core
from payments.sandbox.core import DeclineReason, SandboxProvider
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxNotification,
    SandboxRefund,
    SandboxTrade,
)
from payments.sandbox.paypal import disputes
from payments.sandbox.paypal.auth import authenticate, issue_token
from payments.sandbox.paypal.buttons import urlpatterns as buttons_urlpatterns
from payments.sandbox.paypal.certificates import ca_material, signature_headers, signer_material
from payments.sandbox.paypal.resources import (
    CENT,
    CHANNEL,
    STL_NAME,
    TIMEOUT_CODE,
    TOKEN_TTL,
    ZERO_DECIMAL_CURRENCIES,
    amount_value,
    capture_json,
    error_response,
    invalid_request,
    iso_time,
    not_found,
    order_json,
    order_status,
    paypal_id,
    refund_fees,
    refund_json,
    successful_refunds,
    unprocessable,
    webhook_url,
)
from payments.sandbox.paypal.settlement import settlement_report
from payments.sandbox.paypal.webhooks import event_body, notify_merchant, resource_merchant

# ---------------------------------------------------------------------------------------------
# The provider


class PayPalSandbox(SandboxProvider):
    channel = CHANNEL
    #: PayPal retries 25 times over 3 days (it publishes the count and span, not the intervals).
    retry_schedule = (
        60,
        120,
        300,
        600,
        900,
        1800,
        3600,
        3600,
        7200,
        7200,
        10800,
        10800,
        10800,
        14400,
        14400,
        14400,
        14400,
        14400,
        14400,
        14400,
        14400,
        21600,
        21600,
        43020,
    )
    declines = (
        DeclineReason(
            "insufficient_funds",
            "Funding source declined (insufficient funds)",
            "INSTRUMENT_DECLINED",
        ),
        DeclineReason(
            "phone_mismatch",
            "Payer must verify (card / phone does not match)",
            "PAYER_ACTION_REQUIRED",
        ),
        DeclineReason("risk", "Refused by PayPal risk", "TRANSACTION_REFUSED"),
        DeclineReason("timeout", "Payer walked away (order expires unapproved)", TIMEOUT_CODE),
    )

    def provision(self, *, merchant_id: str, app_id: str = "") -> dict:
        """Register a PayPal REST app for ``merchant_id`` with one webhook; idempotent."""
        with transaction.atomic():
            merchant, _created = SandboxMerchant.objects.select_for_update().get_or_create(
                channel=CHANNEL, merchant_id=merchant_id, defaults={"config": {}}
            )
            config = dict(merchant.config)
            if not config.get("client_id"):
                config.update(
                    client_id="A" + secrets.token_urlsafe(60)[:79],
                    client_secret="E" + secrets.token_urlsafe(60)[:79],
                    webhook_id=paypal_id(17),
                    app_id=app_id or f"APP-{paypal_id(17)}",
                )
                merchant.config = config
                merchant.save(update_fields=["config"])
        _key, _ca, ca_pem = ca_material()
        return {
            "client_id": config["client_id"],
            "client_secret": config["client_secret"],
            "webhook_id": config["webhook_id"],
            "webhook_ca_pem": ca_pem,
        }

    def payment_notification(self, trade: SandboxTrade) -> tuple[Mapping[str, str], bytes] | None:
        """CHECKOUT.ORDER.APPROVED, for approvals and for declines (which fail at capture)."""
        merchant = self.merchant(trade.merchant_id)
        if merchant is None or order_status(trade) != "APPROVED":
            return None
        body = event_body(
            "CHECKOUT.ORDER.APPROVED",
            "checkout-order",
            "An order has been approved by buyer",
            order_json(trade),
        )
        headers = {"Content-Type": "application/json", "User-Agent": "PayPal/AUHD-214.0-58843288"}
        headers.update(signature_headers(merchant.config["webhook_id"], body))
        return headers, body

    def notification_accepted(self, status_code: int, body: bytes) -> bool:
        """PayPal counts any 2xx as delivered."""
        return 200 <= status_code < 300

    dispute_notices = disputes

    def dispute_notify(self, merchant: SandboxMerchant, trade: SandboxTrade, body: bytes) -> None:
        notify_merchant(merchant, trade, body)

    def delivery_headers(self, note: SandboxNotification) -> Mapping[str, str]:
        """Each try is a new transmission, signed afresh."""
        body = bytes(note.body)
        try:
            merchant = self.merchant(resource_merchant(json.loads(body)["resource"]))
        except (ValueError, KeyError, TypeError):
            merchant = None
        if merchant is None:
            return note.headers
        return {**note.headers, **signature_headers(merchant.config["webhook_id"], body)}


# ---------------------------------------------------------------------------------------------
# Views


def _json_body(request: HttpRequest) -> dict | JsonResponse:
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return invalid_request("MALFORMED_REQUEST_JSON", "The request JSON is not well formed.")
    if not isinstance(data, dict):
        return invalid_request("MALFORMED_REQUEST_JSON", "The request JSON is not an object.")
    return data


def _parse_money(money: Any) -> tuple[Decimal, str] | JsonResponse:
    if (
        not isinstance(money, dict)
        or not isinstance(money.get("currency_code"), str)
        or "value" not in money
    ):
        return invalid_request(
            "MISSING_REQUIRED_PARAMETER", "amount.currency_code and amount.value are required."
        )
    currency = money["currency_code"].upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        return invalid_request(
            "INVALID_CURRENCY_CODE", "Currency code is invalid or is not currently supported."
        )
    try:
        value = Decimal(str(money["value"]))
    except InvalidOperation:
        return invalid_request("INVALID_PARAMETER_VALUE", "amount.value is not a number.")
    places = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal(1).scaleb(-places)):
        return invalid_request(
            "DECIMAL_PRECISION",
            f"{currency} amounts take at most {places} decimals and must be positive.",
        )
    return value.quantize(CENT), currency


@csrf_exempt
def oauth_token(request: HttpRequest) -> HttpResponse:
    if fault := core.fault_response(CHANNEL):
        return fault
    if request.method != "POST":
        return JsonResponse(
            {"error": "invalid_request", "error_description": "POST required"}, status=405
        )
    header = request.headers.get("Authorization", "")
    try:
        client_id, client_secret = (
            base64.b64decode(header.removeprefix("Basic ").strip()).decode().split(":", 1)
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return JsonResponse(
            {"error": "invalid_client", "error_description": "Client Authentication failed"},
            status=401,
        )
    merchant = SandboxMerchant.objects.filter(channel=CHANNEL, config__client_id=client_id).first()
    if merchant is None or not hmac.compare_digest(
        str(merchant.config.get("client_secret", "")), client_secret
    ):
        return JsonResponse(
            {"error": "invalid_client", "error_description": "Client Authentication failed"},
            status=401,
        )
    if request.POST.get("grant_type") != "client_credentials":
        return JsonResponse(
            {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"},
            status=400,
        )
    return JsonResponse(
        {
            "scope": "https://uri.paypal.com/services/payments/payment "
            "https://uri.paypal.com/services/payments/refund "
            "https://uri.paypal.com/services/reporting/search/read",
            "access_token": issue_token(merchant.merchant_id),
            "token_type": "Bearer",
            "app_id": merchant.config.get("app_id", ""),
            "expires_in": TOKEN_TTL,
            "nonce": f"{iso_time()}{secrets.token_urlsafe(16)}",
        }
    )


@csrf_exempt
def orders(request: HttpRequest) -> HttpResponse:
    """POST /v2/checkout/orders."""
    if fault := core.fault_response(CHANNEL):
        return fault
    if request.method != "POST":
        return error_response(
            405, "METHOD_NOT_SUPPORTED", "The server does not implement the requested HTTP method."
        )
    merchant = authenticate(request)
    if isinstance(merchant, JsonResponse):
        return merchant
    body = _json_body(request)
    if isinstance(body, JsonResponse):
        return body
    if body.get("intent") != "CAPTURE":
        return invalid_request(
            "INVALID_PARAMETER_VALUE", "The sandbox supports intent CAPTURE only."
        )
    units = body.get("purchase_units")
    if not isinstance(units, list) or len(units) != 1 or not isinstance(units[0], dict):
        return invalid_request(
            "INVALID_ARRAY_MAX_ITEMS", "The sandbox supports exactly one purchase unit."
        )
    unit = units[0]
    parsed = _parse_money(unit.get("amount"))
    if isinstance(parsed, JsonResponse):
        return parsed
    amount, currency = parsed
    out_trade_no = str(
        unit.get("invoice_id") or unit.get("custom_id") or unit.get("reference_id") or ""
    )
    if not out_trade_no:
        return invalid_request(
            "MISSING_REQUIRED_PARAMETER",
            "The sandbox needs purchase_units[0].invoice_id or custom_id.",
        )
    request_id = request.headers.get("PayPal-Request-Id", "")
    existing = SandboxTrade.objects.filter(
        channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no
    ).first()
    if existing is not None:
        if request_id and existing.extra.get("create_request_id") == request_id:
            return JsonResponse(order_json(existing), status=200)
        return unprocessable("DUPLICATE_INVOICE_ID", "Duplicate Invoice ID detected.")
    experience = ((body.get("payment_source") or {}).get("paypal") or {}).get("experience_context")
    context = experience or body.get("application_context") or {}
    order_id, payer_id = paypal_id(17), paypal_id(13)
    return_url = str(context.get("return_url") or "")
    if return_url:
        return_url += ("&" if "?" in return_url else "?") + f"token={order_id}&PayerID={payer_id}"
    trade = SandboxTrade(
        channel=CHANNEL,
        merchant_id=merchant.merchant_id,
        out_trade_no=out_trade_no,
        trade_no=order_id,
        amount=amount,
        currency=currency,
        subject=str(unit.get("description") or "")[:255],
        notify_url=webhook_url(merchant),
        return_url=return_url[:500],
        extra={
            "create_request_id": request_id,
            "custom_id": str(unit.get("custom_id") or out_trade_no),
            "invoice_id": str(unit.get("invoice_id") or out_trade_no),
            "reference_id": str(unit.get("reference_id") or out_trade_no),
            "payer_id": payer_id,
            # PayPal links the buyer as "payer-action" when the order names a payment source
            "buyer_link": "payer-action" if experience else "approve",
        },
    )
    try:
        with transaction.atomic():
            trade.save()
    except IntegrityError:
        return unprocessable("DUPLICATE_INVOICE_ID", "Duplicate Invoice ID detected.")
    return JsonResponse(order_json(trade), status=201)


@csrf_exempt
def order_detail(request: HttpRequest, order_id: str) -> HttpResponse:
    """GET /v2/checkout/orders/<id>."""
    if fault := core.fault_response(CHANNEL):
        return fault
    merchant = authenticate(request)
    if isinstance(merchant, JsonResponse):
        return merchant
    trade = SandboxTrade.objects.filter(
        channel=CHANNEL, merchant_id=merchant.merchant_id, trade_no=order_id
    ).first()
    if trade is None:
        return not_found(order_id)
    return JsonResponse(order_json(trade))


@csrf_exempt
def order_capture(request: HttpRequest, order_id: str) -> HttpResponse:
    """POST /v2/checkout/orders/<id>/capture — idempotent by PayPal-Request-Id."""
    if fault := core.fault_response(CHANNEL):
        return fault
    if request.method != "POST":
        return error_response(
            405, "METHOD_NOT_SUPPORTED", "The server does not implement the requested HTTP method."
        )
    merchant = authenticate(request)
    if isinstance(merchant, JsonResponse):
        return merchant
    request_id = request.headers.get("PayPal-Request-Id", "")
    with transaction.atomic():
        trade = (
            SandboxTrade.objects.select_for_update()
            .filter(channel=CHANNEL, merchant_id=merchant.merchant_id, trade_no=order_id)
            .first()
        )
        if trade is None:
            return not_found(order_id)
        if trade.extra.get("capture_id"):
            if request_id and trade.extra.get("capture_request_id") == request_id:
                return JsonResponse(order_json(trade), status=201)
            return unprocessable(
                "ORDER_ALREADY_CAPTURED",
                "Order already captured. "
                "If 'intent=CAPTURE' only one capture per order is allowed.",
            )
        status = order_status(trade)
        if status == "CREATED":
            return unprocessable(
                "ORDER_NOT_APPROVED", "Payer has not yet approved the Order for payment."
            )
        if status == "VOIDED":
            return unprocessable(
                "ORDER_NOT_APPROVED", "The order was not approved and has expired."
            )
        if trade.status == SandboxTrade.Status.DECLINED:
            return unprocessable(
                trade.decline_code,
                "The instrument presented was either declined by the processor or bank, "
                "or it can't be used for this payment.",
            )
        trade.extra = {
            **trade.extra,
            "capture_id": paypal_id(17),
            "captured_at": iso_time(),
            "capture_request_id": request_id,
        }
        trade.save(update_fields=["extra"])
        notify_merchant(
            merchant,
            trade,
            event_body(
                "PAYMENT.CAPTURE.COMPLETED",
                "capture",
                "Payment completed for "
                f"{amount_value(trade.amount, trade.currency)} {trade.currency}",
                capture_json(trade),
            ),
        )
    return JsonResponse(order_json(trade), status=201)


@csrf_exempt
def capture_refund(request: HttpRequest, capture_id: str) -> HttpResponse:
    """POST /v2/payments/captures/<id>/refund — partial, idempotent by PayPal-Request-Id."""
    if fault := core.fault_response(CHANNEL):
        return fault
    if request.method != "POST":
        return error_response(
            405, "METHOD_NOT_SUPPORTED", "The server does not implement the requested HTTP method."
        )
    merchant = authenticate(request)
    if isinstance(merchant, JsonResponse):
        return merchant
    body = _json_body(request)
    if isinstance(body, JsonResponse):
        return body
    request_id = request.headers.get("PayPal-Request-Id", "")
    with transaction.atomic():
        trade = (
            SandboxTrade.objects.select_for_update()
            .filter(channel=CHANNEL, merchant_id=merchant.merchant_id, extra__capture_id=capture_id)
            .first()
        )
        if trade is None:
            return not_found(capture_id)
        if request_id:
            existing = trade.refunds.filter(out_refund_no=request_id).first()
            if existing is not None:
                return JsonResponse(
                    refund_json(trade, existing, refund_fees(trade).get(existing.pk, Decimal("0"))),
                    status=201,
                )
        remaining = trade.amount - sum((r.amount for r in successful_refunds(trade)), Decimal("0"))
        if remaining <= 0:
            return unprocessable(
                "CAPTURE_FULLY_REFUNDED", "The capture has already been fully refunded."
            )
        if "amount" in body:
            parsed = _parse_money(body["amount"])
            if isinstance(parsed, JsonResponse):
                return parsed
            amount, currency = parsed
            if currency != trade.currency:
                return unprocessable(
                    "REFUND_CAPTURE_CURRENCY_MISMATCH",
                    "Refund must be in the same currency as the capture.",
                )
        else:
            amount = remaining
        if amount > remaining:
            return unprocessable(
                "REFUND_AMOUNT_EXCEEDED",
                "The refund amount must be less than or equal to the capture amount "
                "that has not yet been refunded.",
            )
        refund = SandboxRefund.objects.create(
            trade=trade,
            out_refund_no=(request_id or str(body.get("invoice_id") or "") or paypal_id(17))[:64],
            refund_id=paypal_id(17),
            amount=amount,
            status=SandboxRefund.Status.SUCCESS,
        )
        meta = {
            key: str(body[key])[:255]
            for key in ("invoice_id", "custom_id", "note_to_payer")
            if body.get(key)
        }
        trade.extra = {
            **trade.extra,
            "refunds": {**(trade.extra.get("refunds") or {}), refund.refund_id: meta},
        }
        trade.save(update_fields=["extra"])
        resource = refund_json(trade, refund, refund_fees(trade)[refund.pk])
        notify_merchant(
            merchant,
            trade,
            event_body(
                "PAYMENT.CAPTURE.REFUNDED",
                "refund",
                f"A {amount_value(amount, trade.currency)} {trade.currency} "
                "capture payment was refunded",
                resource,
            ),
        )
    return JsonResponse(resource, status=201)


@csrf_exempt
def webhook_detail(request: HttpRequest, webhook_id: str) -> HttpResponse:
    """GET / PATCH /v1/notifications/webhooks/<id>: where the merchant's events go."""
    if fault := core.fault_response(CHANNEL):
        return fault
    merchant = authenticate(request)
    if isinstance(merchant, JsonResponse):
        return merchant
    if merchant.config.get("webhook_id") != webhook_id:
        return error_response(
            404,
            "INVALID_RESOURCE_ID",
            "Resource id is invalid.",
            issue="INVALID_RESOURCE_ID",
            description=webhook_id,
        )
    if request.method == "PATCH":
        try:
            operations = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return invalid_request("MALFORMED_REQUEST_JSON", "The request JSON is not well formed.")
        for operation in operations if isinstance(operations, list) else []:
            if (
                isinstance(operation, dict)
                and operation.get("op") == "replace"
                and operation.get("path") == "/url"
            ):
                merchant.config = {
                    **merchant.config,
                    "webhook_url": str(operation.get("value", "")),
                }
                merchant.save(update_fields=["config"])
    elif request.method != "GET":
        return error_response(
            405, "METHOD_NOT_SUPPORTED", "The server does not implement the requested HTTP method."
        )
    return JsonResponse(
        {
            "id": webhook_id,
            "url": webhook_url(merchant),
            "event_types": [
                {"name": name}
                for name in (
                    "CHECKOUT.ORDER.APPROVED",
                    "PAYMENT.CAPTURE.COMPLETED",
                    "PAYMENT.CAPTURE.DENIED",
                    "PAYMENT.CAPTURE.REFUNDED",
                )
            ],
        }
    )


def certificate(request: HttpRequest, name: str) -> HttpResponse:
    """The webhook signer's certificate, as PAYPAL-CERT-URL serves it (public, no auth)."""
    if fault := core.fault_response(CHANNEL):
        return fault
    _key, pem, expected = signer_material()
    if name != expected:
        return not_found(name)
    return HttpResponse(pem, content_type="application/x-pem-file")


@csrf_exempt
def settlement_file(request: HttpRequest, name: str) -> HttpResponse:
    """GET /ppreports/outgoing/STL-yyyymmdd.01.009.CSV (SFTP on live PayPal)."""
    if fault := core.fault_response(CHANNEL):
        return fault
    merchant = authenticate(request)
    if isinstance(merchant, JsonResponse):
        return merchant
    match = STL_NAME.match(name)
    if not match or match.group(2) != "01" or match.group(3) != "009":
        return HttpResponse(status=404)
    try:
        day = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return HttpResponse(status=404)
    response = HttpResponse(
        settlement_report(merchant.merchant_id, day), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


urlpatterns = [
    path("v1/oauth2/token", oauth_token, name="oauth-token"),
    path("v2/checkout/orders", orders, name="orders"),
    path("v2/checkout/orders/<str:order_id>", order_detail, name="order"),
    path("v2/checkout/orders/<str:order_id>/capture", order_capture, name="capture"),
    path("v2/payments/captures/<str:capture_id>/refund", capture_refund, name="refund"),
    path("v1/notifications/webhooks/<str:webhook_id>", webhook_detail, name="webhook"),
    path("v1/notifications/certs/<str:name>", certificate, name="cert"),
    path("ppreports/outgoing/<str:name>", settlement_file, name="stl"),
    *buttons_urlpatterns,
]
