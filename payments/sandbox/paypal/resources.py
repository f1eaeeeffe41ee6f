"""Orders, captures, refunds and webhook events as PayPal renders them, PayPal's error
bodies, and the sandbox's constants (fee, currencies, STL names)."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone

from payments.sandbox import core
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxRefund,
    SandboxTrade,
)

CHANNEL = "paypal"
CENT = Decimal("0.01")
FEE_RATE = Decimal("0.006")  # the sandbox's fixed PayPal fee: 0.6 %
TOKEN_TTL = 32400
ZERO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})
STL_NAME = re.compile(r"^STL-(\d{8})\.(\d{2})\.(\d{3})\.CSV$")
STL_DATE = "%Y/%m/%d %H:%M:%S %z"
TIMEOUT_CODE = "ORDER_NOT_APPROVED"
PAYMENT_TCODE = "T0006"  # PayPal Checkout APIs payment
REFUND_TCODE = "T1107"  # payment refund initiated by the merchant
STL_COLUMNS = (
    "Transaction ID",
    "Invoice ID",
    "PayPal Reference ID",
    "PayPal Reference ID Type",
    "Transaction Event Code",
    "Transaction Initiation Date",
    "Transaction Completion Date",
    "Transaction Debit or Credit",
    "Gross Transaction Amount",
    "Gross Transaction Currency",
    "Fee Debit or Credit",
    "Fee Amount",
    "Fee Currency",
    "Custom Field",
    "Consumer ID",
    "Payment Tracking ID",
    "Store ID",
    "Bank Reference ID",
    "Credit Transactional Fee",
    "Credit Promotional Fee",
    "Credit Term",
)


# ---------------------------------------------------------------------------------------------
# Small helpers


def paypal_id(length: int = 17) -> str:
    """PayPal-shaped ids: upper-case letters and digits (orders, captures, refunds)."""
    alphabet = "ABCDEFGHJKLMNPRSTUVWXY0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def iso_time(moment: dt.datetime | None = None) -> str:
    return (moment or timezone.now()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def amount_value(amount: Decimal, currency: str) -> str:
    return str(int(amount)) if currency in ZERO_DECIMAL_CURRENCIES else str(amount.quantize(CENT))


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"currency_code": currency, "value": amount_value(amount, currency)}


def fee_of(amount: Decimal) -> Decimal:
    return (amount * FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)


def error_response(
    status: int, name: str, message: str, *, issue: str = "", description: str = ""
) -> JsonResponse:
    """PayPal's error shape: name/message/debug_id plus details[].issue (§4.1)."""
    body: dict[str, Any] = {"name": name, "message": message, "debug_id": secrets.token_hex(7)}
    if issue:
        body["details"] = [{"issue": issue, "description": description or message}]
        body["links"] = [
            {
                "href": f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue}",
                "rel": "information_link",
                "method": "GET",
            }
        ]
    return JsonResponse(body, status=status)


def unprocessable(issue: str, description: str) -> JsonResponse:
    return error_response(
        422,
        "UNPROCESSABLE_ENTITY",
        "The requested action could not be performed, semantically incorrect, "
        "or failed business validation.",
        issue=issue,
        description=description,
    )


def not_found(what: str) -> JsonResponse:
    return error_response(
        404,
        "RESOURCE_NOT_FOUND",
        "The specified resource does not exist.",
        issue="INVALID_RESOURCE_ID",
        description=f"Specified resource ID does not exist: {what}",
    )


def invalid_request(issue: str, description: str) -> JsonResponse:
    return error_response(
        400,
        "INVALID_REQUEST",
        "Request is not well-formed, syntactically incorrect, or violates schema.",
        issue=issue,
        description=description,
    )


def _api_base() -> str:
    return f"{core.own_url()}/sandbox/{CHANNEL}"


def webhook_url(merchant: SandboxMerchant) -> str:
    return merchant.config.get("webhook_url") or f"{settings.SITE_URL}/payments/notify/{CHANNEL}/"


def order_status(trade: SandboxTrade) -> str:
    if trade.status == SandboxTrade.Status.WAITING:
        return "CREATED"
    if trade.status == SandboxTrade.Status.PAID:
        return "COMPLETED" if trade.extra.get("capture_id") else "APPROVED"
    if trade.status == SandboxTrade.Status.DECLINED and trade.decline_code != TIMEOUT_CODE:
        return "APPROVED"  # the payer approved; the funding source fails at capture
    return "VOIDED"


def _payee(trade: SandboxTrade) -> dict[str, str]:
    return {
        "email_address": f"sb-{trade.merchant_id.lower()}@business.example.com",
        "merchant_id": trade.merchant_id,
    }


def successful_refunds(trade: SandboxTrade) -> list[SandboxRefund]:
    return [
        r
        for r in trade.refunds.order_by("created_at", "pk")
        if r.status == SandboxRefund.Status.SUCCESS
    ]


def refund_fees(trade: SandboxTrade) -> dict[int, Decimal]:
    """Fee returned per refund: pro rata and cumulative, so the refunds of a fully refunded
    capture return exactly its fee."""
    returned: dict[int, Decimal] = {}
    refunded = Decimal("0")
    for refund in successful_refunds(trade):
        before = fee_of(refunded)
        refunded += refund.amount
        returned[refund.pk] = fee_of(refunded) - before
    return returned


def capture_json(trade: SandboxTrade) -> dict[str, Any]:
    capture_id = trade.extra["capture_id"]
    refunded = sum((r.amount for r in successful_refunds(trade)), Decimal("0"))
    status = (
        "REFUNDED"
        if refunded >= trade.amount
        else "PARTIALLY_REFUNDED"
        if refunded
        else "COMPLETED"
    )
    fee = fee_of(trade.amount)
    base = _api_base()
    return {
        "id": capture_id,
        "status": status,
        "amount": _money(trade.amount, trade.currency),
        "final_capture": True,
        "seller_protection": {
            "status": "ELIGIBLE",
            "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
        },
        "seller_receivable_breakdown": {
            "gross_amount": _money(trade.amount, trade.currency),
            "paypal_fee": _money(fee, trade.currency),
            "net_amount": _money(trade.amount - fee, trade.currency),
        },
        "custom_id": trade.extra.get("custom_id", trade.out_trade_no),
        "invoice_id": trade.extra.get("invoice_id", trade.out_trade_no),
        "payee": _payee(trade),
        "supplementary_data": {"related_ids": {"order_id": trade.trade_no}},
        "create_time": trade.extra["captured_at"],
        "update_time": trade.extra["captured_at"],
        "links": [
            {"href": f"{base}/v2/payments/captures/{capture_id}", "rel": "self", "method": "GET"},
            {
                "href": f"{base}/v2/payments/captures/{capture_id}/refund",
                "rel": "refund",
                "method": "POST",
            },
            {"href": f"{base}/v2/checkout/orders/{trade.trade_no}", "rel": "up", "method": "GET"},
        ],
    }


def refund_json(
    trade: SandboxTrade, refund: SandboxRefund, returned_fee: Decimal
) -> dict[str, Any]:
    meta = (trade.extra.get("refunds") or {}).get(refund.refund_id, {})
    base = _api_base()
    body: dict[str, Any] = {
        "id": refund.refund_id,
        "amount": _money(refund.amount, trade.currency),
        "status": {"success": "COMPLETED", "processing": "PENDING"}.get(refund.status, "FAILED"),
        "seller_payable_breakdown": {
            "gross_amount": _money(refund.amount, trade.currency),
            "paypal_fee": _money(returned_fee, trade.currency),
            "net_amount": _money(refund.amount - returned_fee, trade.currency),
        },
        "payer": _payee(trade),
        "create_time": iso_time(refund.created_at),
        "update_time": iso_time(refund.created_at),
        "links": [
            {
                "href": f"{base}/v2/payments/refunds/{refund.refund_id}",
                "rel": "self",
                "method": "GET",
            },
            {
                "href": f"{base}/v2/payments/captures/{trade.extra.get('capture_id', '')}",
                "rel": "up",
                "method": "GET",
            },
        ],
    }
    for key in ("invoice_id", "custom_id", "note_to_payer"):
        if meta.get(key):
            body[key] = meta[key]
    return body


def order_json(trade: SandboxTrade) -> dict[str, Any]:
    status = order_status(trade)
    unit: dict[str, Any] = {
        "reference_id": trade.extra.get("reference_id", trade.out_trade_no),
        "amount": _money(trade.amount, trade.currency),
        "payee": _payee(trade),
        "custom_id": trade.extra.get("custom_id", trade.out_trade_no),
        "invoice_id": trade.extra.get("invoice_id", trade.out_trade_no),
    }
    if trade.subject:
        unit["description"] = trade.subject
    if trade.extra.get("capture_id"):
        fees = refund_fees(trade)
        unit["payments"] = {"captures": [capture_json(trade)]}
        refunds = [
            refund_json(trade, r, fees.get(r.pk, Decimal("0"))) for r in successful_refunds(trade)
        ]
        if refunds:
            unit["payments"]["refunds"] = refunds
    base = _api_base()
    order: dict[str, Any] = {
        "id": trade.trade_no,
        "intent": "CAPTURE",
        "status": status,
        "purchase_units": [unit],
        "create_time": iso_time(trade.created_at),
        "links": [
            {"href": f"{base}/v2/checkout/orders/{trade.trade_no}", "rel": "self", "method": "GET"}
        ],
    }
    if status == "CREATED":
        order["links"].append(
            {
                "href": core.provider(CHANNEL).cashier_url(trade),
                "rel": trade.extra.get("buyer_link", "approve"),
                "method": "GET",
            }
        )
    if status == "APPROVED":
        order["links"].append(
            {
                "href": f"{base}/v2/checkout/orders/{trade.trade_no}/capture",
                "rel": "capture",
                "method": "POST",
            }
        )
    if status in ("APPROVED", "COMPLETED"):
        payer_id = trade.extra.get("payer_id", "")
        order["payer"] = {
            "name": {"given_name": "Sandbox", "surname": "Buyer"},
            "email_address": "buyer@personal.example.com",
            "payer_id": payer_id,
        }
        order["payment_source"] = {
            "paypal": {
                "email_address": "buyer@personal.example.com",
                "account_id": payer_id,
                "account_status": "VERIFIED",
            }
        }
    if trade.paid_at:
        order["update_time"] = iso_time(trade.paid_at)
    return order
