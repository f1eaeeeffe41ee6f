"""A local PayPal REST API that speaks CHANNELS.md §4.1–4.3 from PayPal's side.

Endpoints (mounted under ``/sandbox/paypal/``):

* ``v1/oauth2/token`` — client-credentials tokens (HTTP Basic ``client_id:client_secret``);
  tokens are HMAC-signed by the sandbox, name the merchant and live ``expires_in`` = 32400 s.
* ``v2/checkout/orders`` (create, idempotent by ``PayPal-Request-Id``; a second order with the
  same ``invoice_id`` is ``DUPLICATE_INVOICE_ID``), ``v2/checkout/orders/<id>`` (GET) and
  ``…/capture``; ``v2/payments/captures/<id>/refund`` (partial, idempotent by
  ``PayPal-Request-Id``).
* ``v1/notifications/webhooks/<webhook_id>`` — GET, and PATCH ``/url`` to point the merchant's
  webhook at another notify URL (default ``<SITE_URL>/payments/notify/paypal/``).
* ``v1/notifications/certs/<name>`` — the webhook signing certificate (PEM), the target of
  ``PAYPAL-CERT-URL``; it is issued by a sandbox CA whose certificate ``provision`` hands out as
  ``webhook_ca_pem``.
* ``ppreports/outgoing/STL-yyyymmdd.01.009.CSV`` — the day's settlement report. Live PayPal
  puts STL files on SFTP (reports.paypal.com, same directory); the sandbox serves them over
  HTTP with the bearer token.

Sandbox choices (documented in docs/channels/paypal.md): the approve link is the shared cashier;
"approve" makes the order APPROVED and sends ``CHECKOUT.ORDER.APPROVED``; a decline other than
"timeout" also approves (the payer chose a funding source) but the capture is then refused with
the decline's issue code (422), as PayPal does when the funding source fails; "timeout" leaves
the order unapproved and reports it VOIDED (expired). A capture sends
``PAYMENT.CAPTURE.COMPLETED``, a refund ``PAYMENT.CAPTURE.REFUNDED``. Fee: a fixed 0.6 % of
each capture, rounded half-up to the cent; refunds return the fee pro rata (cumulatively, so a
full refund returns exactly the original fee). Webhooks are retried 25 times over 3 days, each
try a new transmission (new id, time and signature). The STL day is the settings.TIME_ZONE day.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from payments.sandbox import core, keys
from payments.sandbox.core import DeclineReason, SandboxProvider
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxNotification,
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
    "Transaction ID", "Invoice ID", "PayPal Reference ID", "PayPal Reference ID Type", "Transaction Event Code",
    "Transaction Initiation Date", "Transaction Completion Date", "Transaction Debit or Credit",
    "Gross Transaction Amount", "Gross Transaction Currency", "Fee Debit or Credit", "Fee Amount", "Fee Currency",
    "Custom Field", "Consumer ID", "Payment Tracking ID", "Store ID", "Bank Reference ID",
    "Credit Transactional Fee", "Credit Promotional Fee", "Credit Term",
)


# ---------------------------------------------------------------------------------------------
# Small helpers


def _paypal_id(length: int = 17) -> str:
    """PayPal-shaped ids: upper-case letters and digits (orders, captures, refunds)."""
    alphabet = "ABCDEFGHJKLMNPRSTUVWXY0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _iso(moment: dt.datetime | None = None) -> str:
    return (moment or timezone.now()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _value(amount: Decimal, currency: str) -> str:
    return str(int(amount)) if currency in ZERO_DECIMAL_CURRENCIES else str(amount.quantize(CENT))


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"currency_code": currency, "value": _value(amount, currency)}


def _fee(amount: Decimal) -> Decimal:
    return (amount * FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)


def _error(status: int, name: str, message: str, *, issue: str = "", description: str = "") -> JsonResponse:
    """PayPal's error shape: name/message/debug_id plus details[].issue (§4.1)."""
    body: dict[str, Any] = {"name": name, "message": message, "debug_id": secrets.token_hex(7)}
    if issue:
        body["details"] = [{"issue": issue, "description": description or message}]
        body["links"] = [{"href": f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue}", "rel": "information_link", "method": "GET"}]
    return JsonResponse(body, status=status)


def _unprocessable(issue: str, description: str) -> JsonResponse:
    return _error(422, "UNPROCESSABLE_ENTITY", "The requested action could not be performed, semantically incorrect, or failed business validation.", issue=issue, description=description)


def _not_found(what: str) -> JsonResponse:
    return _error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.", issue="INVALID_RESOURCE_ID", description=f"Specified resource ID does not exist: {what}")


def _invalid(issue: str, description: str) -> JsonResponse:
    return _error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.", issue=issue, description=description)


def _api_base() -> str:
    return f"{core.own_url()}/sandbox/{CHANNEL}"


def _webhook_url(merchant: SandboxMerchant) -> str:
    return merchant.config.get("webhook_url") or f"{settings.SITE_URL}/payments/notify/{CHANNEL}/"


# ---------------------------------------------------------------------------------------------
# Certificates: a sandbox CA and the "*.paypal.com" webhook signer it issues


def _load_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _certificate(subject: x509.Name, issuer: x509.Name, public_key, signer, *, ca: bool, dns: str = "") -> str:
    now = timezone.now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def ca_material() -> tuple[rsa.RSAPrivateKey, x509.Certificate, str]:
    """The sandbox's root CA (key, certificate, PEM), created once per key directory."""
    key = _load_key(keys.provider_file("paypal-webhook-ca.key.pem", keys.generate_rsa_private_pem))
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Cardex Payment Sandbox"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Cardex Sandbox PayPal Root CA"),
    ])
    pem = keys.provider_file("paypal-webhook-ca.cert.pem", lambda: _certificate(name, name, key.public_key(), key, ca=True))
    return key, x509.load_pem_x509_certificate(pem.encode()), pem


def signer_material() -> tuple[rsa.RSAPrivateKey, str, str]:
    """The webhook signing key, its certificate PEM and its name in the cert URL."""
    ca_key, ca_cert, _ = ca_material()
    fingerprint = ca_cert.fingerprint(hashes.SHA256()).hex()
    key = _load_key(keys.provider_file(f"paypal-webhook-signer-{fingerprint[:12]}.key.pem", keys.generate_rsa_private_pem))
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PayPal, Inc. (Cardex sandbox)"),
        x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts.sandbox.paypal.com"),
    ])
    pem = keys.provider_file(
        f"paypal-webhook-signer-{fingerprint[:12]}.cert.pem",
        lambda: _certificate(subject, ca_cert.subject, key.public_key(), ca_key, ca=False, dns="messageverificationcerts.sandbox.paypal.com"),
    )
    return key, pem, f"CERT-360caa42-fca2a594-{fingerprint[:8]}"


def cert_url() -> str:
    _key, _pem, name = signer_material()
    return core.own_url() + reverse(f"sandbox:{CHANNEL}:cert", args=[name])


def signature_headers(webhook_id: str, body: bytes) -> dict[str, str]:
    """A fresh transmission: id, time and SHA256withRSA signature over
    ``transmission_id|transmission_time|webhook_id|crc32(body)`` (§4.2)."""
    key, _pem, _name = signer_material()
    transmission_id = str(uuid.uuid4())
    transmission_time = _iso()
    message = f"{transmission_id}|{transmission_time}|{webhook_id}|{binascii.crc32(body) & 0xFFFFFFFF}"
    signature = base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    return {
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": transmission_time,
        "PAYPAL-TRANSMISSION-SIG": signature,
        "PAYPAL-CERT-URL": cert_url(),
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }


# ---------------------------------------------------------------------------------------------
# OAuth tokens


def _token_secret() -> bytes:
    return keys.provider_file("paypal-token.secret", lambda: secrets.token_hex(32)).encode()


def issue_token(merchant_id: str, *, ttl: int = TOKEN_TTL) -> str:
    payload = base64.urlsafe_b64encode(f"{merchant_id}|{int(time.time()) + ttl}".encode()).decode().rstrip("=")
    mac = hmac.new(_token_secret(), payload.encode(), hashlib.sha256).hexdigest()[:40]
    return f"A21AA{payload}.{mac}"


def _token_merchant(token: str) -> SandboxMerchant | None:
    if not token.startswith("A21AA") or "." not in token:
        return None
    payload, mac = token[5:].rsplit(".", 1)
    expected = hmac.new(_token_secret(), payload.encode(), hashlib.sha256).hexdigest()[:40]
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        merchant_id, expires = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().rsplit("|", 1)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if int(expires) < time.time():
        return None
    return SandboxMerchant.objects.filter(channel=CHANNEL, merchant_id=merchant_id).first()


def _authenticate(request: HttpRequest) -> SandboxMerchant | JsonResponse:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return JsonResponse({"error": "invalid_token", "error_description": "No access token in the Authorization header"}, status=401)
    merchant = _token_merchant(header[7:].strip())
    if merchant is None:
        return JsonResponse({"error": "invalid_token", "error_description": "Token signature verification failed or token expired"}, status=401)
    return merchant


# ---------------------------------------------------------------------------------------------
# Resources as PayPal renders them


def _order_status(trade: SandboxTrade) -> str:
    if trade.status == SandboxTrade.Status.WAITING:
        return "CREATED"
    if trade.status == SandboxTrade.Status.PAID:
        return "COMPLETED" if trade.extra.get("capture_id") else "APPROVED"
    if trade.status == SandboxTrade.Status.DECLINED and trade.decline_code != TIMEOUT_CODE:
        return "APPROVED"  # the payer approved; the funding source fails at capture
    return "VOIDED"


def _payee(trade: SandboxTrade) -> dict[str, str]:
    return {"email_address": f"sb-{trade.merchant_id.lower()}@business.example.com", "merchant_id": trade.merchant_id}


def _successful_refunds(trade: SandboxTrade) -> list[SandboxRefund]:
    return [r for r in trade.refunds.order_by("created_at", "pk") if r.status == SandboxRefund.Status.SUCCESS]


def _refund_fees(trade: SandboxTrade) -> dict[int, Decimal]:
    """Fee returned per refund: pro rata and cumulative, so the refunds of a fully refunded
    capture return exactly its fee."""
    returned: dict[int, Decimal] = {}
    refunded = Decimal("0")
    for refund in _successful_refunds(trade):
        before = _fee(refunded)
        refunded += refund.amount
        returned[refund.pk] = _fee(refunded) - before
    return returned


def _capture_json(trade: SandboxTrade) -> dict[str, Any]:
    capture_id = trade.extra["capture_id"]
    refunded = sum((r.amount for r in _successful_refunds(trade)), Decimal("0"))
    status = "REFUNDED" if refunded >= trade.amount else "PARTIALLY_REFUNDED" if refunded else "COMPLETED"
    fee = _fee(trade.amount)
    base = _api_base()
    return {
        "id": capture_id,
        "status": status,
        "amount": _money(trade.amount, trade.currency),
        "final_capture": True,
        "seller_protection": {"status": "ELIGIBLE", "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"]},
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
            {"href": f"{base}/v2/payments/captures/{capture_id}/refund", "rel": "refund", "method": "POST"},
            {"href": f"{base}/v2/checkout/orders/{trade.trade_no}", "rel": "up", "method": "GET"},
        ],
    }


def _refund_json(trade: SandboxTrade, refund: SandboxRefund, returned_fee: Decimal) -> dict[str, Any]:
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
        "create_time": _iso(refund.created_at),
        "update_time": _iso(refund.created_at),
        "links": [
            {"href": f"{base}/v2/payments/refunds/{refund.refund_id}", "rel": "self", "method": "GET"},
            {"href": f"{base}/v2/payments/captures/{trade.extra.get('capture_id', '')}", "rel": "up", "method": "GET"},
        ],
    }
    for key in ("invoice_id", "custom_id", "note_to_payer"):
        if meta.get(key):
            body[key] = meta[key]
    return body


def order_json(trade: SandboxTrade) -> dict[str, Any]:
    status = _order_status(trade)
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
        fees = _refund_fees(trade)
        unit["payments"] = {"captures": [_capture_json(trade)]}
        refunds = [_refund_json(trade, r, fees.get(r.pk, Decimal("0"))) for r in _successful_refunds(trade)]
        if refunds:
            unit["payments"]["refunds"] = refunds
    base = _api_base()
    order: dict[str, Any] = {
        "id": trade.trade_no,
        "intent": "CAPTURE",
        "status": status,
        "purchase_units": [unit],
        "create_time": _iso(trade.created_at),
        "links": [{"href": f"{base}/v2/checkout/orders/{trade.trade_no}", "rel": "self", "method": "GET"}],
    }
    if status == "CREATED":
        order["links"].append({"href": core.provider(CHANNEL).cashier_url(trade), "rel": "approve", "method": "GET"})
    if status == "APPROVED":
        order["links"].append({"href": f"{base}/v2/checkout/orders/{trade.trade_no}/capture", "rel": "capture", "method": "POST"})
    if status in ("APPROVED", "COMPLETED"):
        payer_id = trade.extra.get("payer_id", "")
        order["payer"] = {"name": {"given_name": "Sandbox", "surname": "Buyer"}, "email_address": "buyer@personal.example.com", "payer_id": payer_id}
        order["payment_source"] = {"paypal": {"email_address": "buyer@personal.example.com", "account_id": payer_id, "account_status": "VERIFIED"}}
    if trade.paid_at:
        order["update_time"] = _iso(trade.paid_at)
    return order


def _event(event_type: str, resource_type: str, summary: str, resource: Mapping[str, Any]) -> bytes:
    event = {
        "id": f"WH-{_paypal_id(17)}-{_paypal_id(17)}",
        "event_version": "1.0",
        "create_time": _iso(),
        "resource_type": resource_type,
        "resource_version": "2.0",
        "event_type": event_type,
        "summary": summary,
        "resource": resource,
        "links": [],
    }
    return json.dumps(event, separators=(",", ":")).encode()


def _notify(merchant: SandboxMerchant, trade: SandboxTrade, body: bytes) -> None:
    if not trade.notify_url:
        return
    headers = {"Content-Type": "application/json", "User-Agent": "PayPal/AUHD-214.0-58843288"}
    headers.update(signature_headers(merchant.config["webhook_id"], body))
    core.enqueue_notification(CHANNEL, trade.notify_url, headers, body)


def _resource_merchant(resource: Mapping[str, Any]) -> str:
    for unit in resource.get("purchase_units") or []:
        if isinstance(unit, dict) and (unit.get("payee") or {}).get("merchant_id"):
            return unit["payee"]["merchant_id"]
    return (resource.get("payee") or {}).get("merchant_id") or (resource.get("payer") or {}).get("merchant_id") or ""


# ---------------------------------------------------------------------------------------------
# The provider


class PayPalSandbox(SandboxProvider):
    channel = CHANNEL
    #: PayPal retries 25 times over 3 days (it publishes the count and span, not the intervals).
    retry_schedule = (
        60, 120, 300, 600, 900, 1800, 3600, 3600, 7200, 7200, 10800, 10800,
        10800, 14400, 14400, 14400, 14400, 14400, 14400, 14400, 14400, 21600, 21600, 43020,
    )
    declines = (
        DeclineReason("insufficient_funds", "Funding source declined (insufficient funds)", "INSTRUMENT_DECLINED"),
        DeclineReason("phone_mismatch", "Payer must verify (card / phone does not match)", "PAYER_ACTION_REQUIRED"),
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
                    webhook_id=_paypal_id(17),
                    app_id=app_id or f"APP-{_paypal_id(17)}",
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
        if merchant is None or _order_status(trade) != "APPROVED":
            return None
        body = _event("CHECKOUT.ORDER.APPROVED", "checkout-order", "An order has been approved by buyer", order_json(trade))
        headers = {"Content-Type": "application/json", "User-Agent": "PayPal/AUHD-214.0-58843288"}
        headers.update(signature_headers(merchant.config["webhook_id"], body))
        return headers, body

    def notification_accepted(self, status_code: int, body: bytes) -> bool:
        """PayPal counts any 2xx as delivered."""
        return 200 <= status_code < 300

    def delivery_headers(self, note: SandboxNotification) -> Mapping[str, str]:
        """Each try is a new transmission, signed afresh."""
        body = bytes(note.body)
        try:
            merchant = self.merchant(_resource_merchant(json.loads(body)["resource"]))
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
        return _invalid("MALFORMED_REQUEST_JSON", "The request JSON is not well formed.")
    if not isinstance(data, dict):
        return _invalid("MALFORMED_REQUEST_JSON", "The request JSON is not an object.")
    return data


def _parse_money(money: Any) -> tuple[Decimal, str] | JsonResponse:
    if not isinstance(money, dict) or not isinstance(money.get("currency_code"), str) or "value" not in money:
        return _invalid("MISSING_REQUIRED_PARAMETER", "amount.currency_code and amount.value are required.")
    currency = money["currency_code"].upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        return _invalid("INVALID_CURRENCY_CODE", "Currency code is invalid or is not currently supported.")
    try:
        value = Decimal(str(money["value"]))
    except InvalidOperation:
        return _invalid("INVALID_PARAMETER_VALUE", "amount.value is not a number.")
    places = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal(1).scaleb(-places)):
        return _invalid("DECIMAL_PRECISION", f"{currency} amounts take at most {places} decimals and must be positive.")
    return value.quantize(CENT), currency


@csrf_exempt
def oauth_token(request: HttpRequest) -> HttpResponse:
    if fault := core.fault_response(CHANNEL):
        return fault
    if request.method != "POST":
        return JsonResponse({"error": "invalid_request", "error_description": "POST required"}, status=405)
    header = request.headers.get("Authorization", "")
    try:
        client_id, client_secret = base64.b64decode(header.removeprefix("Basic ").strip()).decode().split(":", 1)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return JsonResponse({"error": "invalid_client", "error_description": "Client Authentication failed"}, status=401)
    merchant = SandboxMerchant.objects.filter(channel=CHANNEL, config__client_id=client_id).first()
    if merchant is None or not hmac.compare_digest(str(merchant.config.get("client_secret", "")), client_secret):
        return JsonResponse({"error": "invalid_client", "error_description": "Client Authentication failed"}, status=401)
    if request.POST.get("grant_type") != "client_credentials":
        return JsonResponse({"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}, status=400)
    return JsonResponse({
        "scope": "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/refund https://uri.paypal.com/services/reporting/search/read",
        "access_token": issue_token(merchant.merchant_id),
        "token_type": "Bearer",
        "app_id": merchant.config.get("app_id", ""),
        "expires_in": TOKEN_TTL,
        "nonce": f"{_iso()}{secrets.token_urlsafe(16)}",
    })


@csrf_exempt
def orders(request: HttpRequest) -> HttpResponse:
    """POST /v2/checkout/orders."""
    if fault := core.fault_response(CHANNEL):
        return fault
    if request.method != "POST":
        return _error(405, "METHOD_NOT_SUPPORTED", "The server does not implement the requested HTTP method.")
    merchant = _authenticate(request)
    if isinstance(merchant, JsonResponse):
        return merchant
    body = _json_body(request)
    if isinstance(body, JsonResponse):
        return body
    if body.get("intent") != "CAPTURE":
        return _invalid("INVALID_PARAMETER_VALUE", "The sandbox supports intent CAPTURE only.")
    units = body.get("purchase_units")
    if not isinstance(units, list) or len(units) != 1 or not isinstance(units[0], dict):
        return _invalid("INVALID_ARRAY_MAX_ITEMS", "The sandbox supports exactly one purchase unit.")
    unit = units[0]
    parsed = _parse_money(unit.get("amount"))
    if isinstance(parsed, JsonResponse):
        return parsed
    amount, currency = parsed
    out_trade_no = str(unit.get("invoice_id") or unit.get("custom_id") or unit.get("reference_id") or "")
    if not out_trade_no:
        return _invalid("MISSING_REQUIRED_PARAMETER", "The sandbox needs purchase_units[0].invoice_id or custom_id.")
    request_id = request.headers.get("PayPal-Request-Id", "")
    existing = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no).first()
    if existing is not None:
        if request_id and existing.extra.get("create_request_id") == request_id:
            return JsonResponse(order_json(existing), status=200)
        return _unprocessable("DUPLICATE_INVOICE_ID", "Duplicate Invoice ID detected.")
    context = body.get("application_context") or ((body.get("payment_source") or {}).get("paypal") or {}).get("experience_context") or {}
    order_id, payer_id = _paypal_id(17), _paypal_id(13)
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
        notify_url=_webhook_url(merchant),
        return_url=return_url[:500],
        extra={
            "create_request_id": request_id,
            "custom_id": str(unit.get("custom_id") or out_trade_no),
            "invoice_id": str(unit.get("invoice_id") or out_trade_no),
            "reference_id": str(unit.get("reference_id") or out_trade_no),
            "payer_id": payer_id,
        },
    )
    try:
        with transaction.atomic():
            trade.save()
    except IntegrityError:
        return _unprocessable("DUPLICATE_INVOICE_ID", "Duplicate Invoice ID detected.")
    return JsonResponse(order_json(trade), status=201)


@csrf_exempt
def order_detail(request: HttpRequest, order_id: str) -> HttpResponse:
    """GET /v2/checkout/orders/<id>."""
    if fault := core.fault_response(CHANNEL):
        return fault
    merchant = _authenticate(request)
    if isinstance(merchant, JsonResponse):
        return merchant
    trade = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant.merchant_id, trade_no=order_id).first()
    if trade is None:
        return _not_found(order_id)
    return JsonResponse(order_json(trade))


@csrf_exempt
def order_capture(request: HttpRequest, order_id: str) -> HttpResponse:
    """POST /v2/checkout/orders/<id>/capture — idempotent by PayPal-Request-Id."""
    if fault := core.fault_response(CHANNEL):
        return fault
    if request.method != "POST":
        return _error(405, "METHOD_NOT_SUPPORTED", "The server does not implement the requested HTTP method.")
    merchant = _authenticate(request)
    if isinstance(merchant, JsonResponse):
        return merchant
    request_id = request.headers.get("PayPal-Request-Id", "")
    with transaction.atomic():
        trade = SandboxTrade.objects.select_for_update().filter(channel=CHANNEL, merchant_id=merchant.merchant_id, trade_no=order_id).first()
        if trade is None:
            return _not_found(order_id)
        if trade.extra.get("capture_id"):
            if request_id and trade.extra.get("capture_request_id") == request_id:
                return JsonResponse(order_json(trade), status=201)
            return _unprocessable("ORDER_ALREADY_CAPTURED", "Order already captured. If 'intent=CAPTURE' only one capture per order is allowed.")
        status = _order_status(trade)
        if status == "CREATED":
            return _unprocessable("ORDER_NOT_APPROVED", "Payer has not yet approved the Order for payment.")
        if status == "VOIDED":
            return _unprocessable("ORDER_NOT_APPROVED", "The order was not approved and has expired.")
        if trade.status == SandboxTrade.Status.DECLINED:
            return _unprocessable(trade.decline_code, "The instrument presented was either declined by the processor or bank, or it can't be used for this payment.")
        trade.extra = {**trade.extra, "capture_id": _paypal_id(17), "captured_at": _iso(), "capture_request_id": request_id}
        trade.save(update_fields=["extra"])
        _notify(merchant, trade, _event("PAYMENT.CAPTURE.COMPLETED", "capture", f"Payment completed for {_value(trade.amount, trade.currency)} {trade.currency}", _capture_json(trade)))
    return JsonResponse(order_json(trade), status=201)


@csrf_exempt
def capture_refund(request: HttpRequest, capture_id: str) -> HttpResponse:
    """POST /v2/payments/captures/<id>/refund — partial, idempotent by PayPal-Request-Id."""
    if fault := core.fault_response(CHANNEL):
        return fault
    if request.method != "POST":
        return _error(405, "METHOD_NOT_SUPPORTED", "The server does not implement the requested HTTP method.")
    merchant = _authenticate(request)
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
            return _not_found(capture_id)
        if request_id:
            existing = trade.refunds.filter(out_refund_no=request_id).first()
            if existing is not None:
                return JsonResponse(_refund_json(trade, existing, _refund_fees(trade).get(existing.pk, Decimal("0"))), status=201)
        remaining = trade.amount - sum((r.amount for r in _successful_refunds(trade)), Decimal("0"))
        if remaining <= 0:
            return _unprocessable("CAPTURE_FULLY_REFUNDED", "The capture has already been fully refunded.")
        if "amount" in body:
            parsed = _parse_money(body["amount"])
            if isinstance(parsed, JsonResponse):
                return parsed
            amount, currency = parsed
            if currency != trade.currency:
                return _unprocessable("REFUND_CAPTURE_CURRENCY_MISMATCH", "Refund must be in the same currency as the capture.")
        else:
            amount = remaining
        if amount > remaining:
            return _unprocessable("REFUND_AMOUNT_EXCEEDED", "The refund amount must be less than or equal to the capture amount that has not yet been refunded.")
        refund = SandboxRefund.objects.create(
            trade=trade,
            out_refund_no=(request_id or str(body.get("invoice_id") or "") or _paypal_id(17))[:64],
            refund_id=_paypal_id(17),
            amount=amount,
            status=SandboxRefund.Status.SUCCESS,
        )
        meta = {key: str(body[key])[:255] for key in ("invoice_id", "custom_id", "note_to_payer") if body.get(key)}
        trade.extra = {**trade.extra, "refunds": {**(trade.extra.get("refunds") or {}), refund.refund_id: meta}}
        trade.save(update_fields=["extra"])
        resource = _refund_json(trade, refund, _refund_fees(trade)[refund.pk])
        _notify(merchant, trade, _event("PAYMENT.CAPTURE.REFUNDED", "refund", f"A {_value(amount, trade.currency)} {trade.currency} capture payment was refunded", resource))
    return JsonResponse(resource, status=201)


@csrf_exempt
def webhook_detail(request: HttpRequest, webhook_id: str) -> HttpResponse:
    """GET / PATCH /v1/notifications/webhooks/<id>: where the merchant's events go."""
    if fault := core.fault_response(CHANNEL):
        return fault
    merchant = _authenticate(request)
    if isinstance(merchant, JsonResponse):
        return merchant
    if merchant.config.get("webhook_id") != webhook_id:
        return _error(404, "INVALID_RESOURCE_ID", "Resource id is invalid.", issue="INVALID_RESOURCE_ID", description=webhook_id)
    if request.method == "PATCH":
        try:
            operations = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return _invalid("MALFORMED_REQUEST_JSON", "The request JSON is not well formed.")
        for operation in operations if isinstance(operations, list) else []:
            if isinstance(operation, dict) and operation.get("op") == "replace" and operation.get("path") == "/url":
                merchant.config = {**merchant.config, "webhook_url": str(operation.get("value", ""))}
                merchant.save(update_fields=["config"])
    elif request.method != "GET":
        return _error(405, "METHOD_NOT_SUPPORTED", "The server does not implement the requested HTTP method.")
    return JsonResponse({
        "id": webhook_id,
        "url": _webhook_url(merchant),
        "event_types": [{"name": name} for name in ("CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.REFUNDED")],
    })


def certificate(request: HttpRequest, name: str) -> HttpResponse:
    """The webhook signer's certificate, as PAYPAL-CERT-URL serves it (public, no auth)."""
    if fault := core.fault_response(CHANNEL):
        return fault
    _key, pem, expected = signer_material()
    if name != expected:
        return _not_found(name)
    return HttpResponse(pem, content_type="application/x-pem-file")


@csrf_exempt
def settlement_file(request: HttpRequest, name: str) -> HttpResponse:
    """GET /ppreports/outgoing/STL-yyyymmdd.01.009.CSV (SFTP on live PayPal)."""
    if fault := core.fault_response(CHANNEL):
        return fault
    merchant = _authenticate(request)
    if isinstance(merchant, JsonResponse):
        return merchant
    match = STL_NAME.match(name)
    if not match or match.group(2) != "01" or match.group(3) != "009":
        return HttpResponse(status=404)
    try:
        day = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return HttpResponse(status=404)
    response = HttpResponse(settlement_report(merchant.merchant_id, day), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# ---------------------------------------------------------------------------------------------
# The STL settlement report


def _q(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _stl_time(moment: dt.datetime) -> str:
    return moment.astimezone(timezone.get_default_timezone()).strftime(STL_DATE)


def _minor(amount: Decimal) -> str:
    return str(int((amount * 100).to_integral_value()))


def settlement_report(merchant_id: str, day: dt.date) -> bytes:
    """The STL file of ``day`` (settings.TIME_ZONE): one section, payments (T0006, gross CR,
    fee DR) and refunds (T1107, gross DR, returned fee CR), per-currency SF/RF totals and the
    SC/RC/FF counts. UTF-8 with BOM, LF line ends."""
    tz = timezone.get_default_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    end = start + dt.timedelta(days=1)
    rows: list[tuple[dt.datetime, list[str], str, int, str, int, str]] = []
    trades = SandboxTrade.objects.filter(
        channel=CHANNEL, merchant_id=merchant_id, status=SandboxTrade.Status.PAID, paid_at__gte=start - dt.timedelta(days=30), paid_at__lt=end
    )
    for trade in trades:
        captured = dt.datetime.fromisoformat(trade.extra["captured_at"].replace("Z", "+00:00")) if trade.extra.get("captured_at") else None
        if captured is None or not start <= captured < end:
            continue
        fee = _fee(trade.amount)
        custom = trade.extra.get("custom_id", trade.out_trade_no)
        stamp = _stl_time(captured)
        fields = [
            _q(trade.extra["capture_id"]), _q(trade.extra.get("invoice_id", trade.out_trade_no)), _q(trade.trade_no), _q("ODR"),
            _q(PAYMENT_TCODE), stamp, stamp, _q("CR"), _minor(trade.amount), _q(trade.currency), _q("DR"), _minor(fee),
            _q(trade.currency), _q(custom), _q(trade.extra.get("payer_id", "")), _q(""), _q(""), _q(""), "", "", "",
        ]
        rows.append((captured, fields, trade.currency, int(_minor(trade.amount)), "CR", int(_minor(fee)), "DR"))
    refunds = SandboxRefund.objects.filter(
        trade__channel=CHANNEL, trade__merchant_id=merchant_id, status=SandboxRefund.Status.SUCCESS, created_at__gte=start, created_at__lt=end
    ).select_related("trade")
    for refund in refunds:
        trade = refund.trade
        returned = _refund_fees(trade).get(refund.pk, Decimal("0"))
        meta = (trade.extra.get("refunds") or {}).get(refund.refund_id, {})
        stamp = _stl_time(refund.created_at)
        fields = [
            _q(refund.refund_id), _q(meta.get("invoice_id", refund.out_refund_no)), _q(trade.extra.get("capture_id", "")), _q("TXN"),
            _q(REFUND_TCODE), stamp, stamp, _q("DR"), _minor(refund.amount), _q(trade.currency), _q("CR" if returned else ""),
            _minor(returned) if returned else "", _q(trade.currency), _q(meta.get("custom_id", trade.out_trade_no)),
            _q(trade.extra.get("payer_id", "")), _q(""), _q(""), _q(""), "", "", "",
        ]
        rows.append((refund.created_at, fields, trade.currency, int(_minor(refund.amount)), "DR", int(_minor(returned)), "CR"))
    rows.sort(key=lambda row: row[0])

    totals: dict[str, list[int]] = {}
    for _when, _fields, currency, gross, direction, fee, fee_direction in rows:
        sums = totals.setdefault(currency, [0, 0, 0, 0])
        sums[0 if direction == "CR" else 1] += gross
        sums[2 if fee_direction == "CR" else 3] += fee
    generated = timezone.now()
    lines = [
        f'"RH",{_stl_time(generated)},"A",{_q(merchant_id)},009,',
        '"FH",01',
        f'"SH",{start.strftime(STL_DATE)},{(end - dt.timedelta(seconds=1)).strftime(STL_DATE)},"",{_q(merchant_id)},""',
        '"CH",' + ",".join(_q(name) for name in STL_COLUMNS),
    ]
    lines += ['"SB",' + ",".join(fields) for _when, fields, *_rest in rows]
    footer = [f"{_q(currency)},{s[0]},{s[1]},{s[2]},{s[3]}" for currency, s in sorted(totals.items())]
    lines += [f'"SF",{row}' for row in footer]
    lines.append(f'"SC",{len(rows)}')
    lines += [f'"RF",{row}' for row in footer]
    lines.append(f'"RC",{len(rows)}')
    lines.append(f'"FF",{len(rows)}')
    return b"\xef\xbb\xbf" + ("\n".join(lines) + "\n").encode("utf-8")


urlpatterns = [
    path("v1/oauth2/token", oauth_token, name="oauth-token"),
    path("v2/checkout/orders", orders, name="orders"),
    path("v2/checkout/orders/<str:order_id>", order_detail, name="order"),
    path("v2/checkout/orders/<str:order_id>/capture", order_capture, name="capture"),
    path("v2/payments/captures/<str:capture_id>/refund", capture_refund, name="refund"),
    path("v1/notifications/webhooks/<str:webhook_id>", webhook_detail, name="webhook"),
    path("v1/notifications/certs/<str:name>", certificate, name="cert"),
    path("ppreports/outgoing/<str:name>", settlement_file, name="stl"),
]
