"""What the simulated acquirer shares across its endpoints: identifiers, amounts in each
currency's smallest unit, Stripe's error body and bracketed form keys, the secret-key check,
and webhook events signed with the sandbox's own HMAC code (not the backend's)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from payments.sandbox import core
from payments.sandbox.models import (
    SandboxMerchant,
)

CHANNEL = "card"
FEE_RATE = Decimal("0.006")  # the sandbox acquirer's fee: 0.6 % of each charge
API_VERSION = "2024-06-20"
ABANDONED = "abandoned"
ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

# ---------------------------------------------------------------------------------------------
# Helpers


def random_token(length: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def stable_id(prefix: str, seed: str) -> str:
    return prefix + hashlib.sha256(seed.encode()).hexdigest()[:24]


def exponent(currency: str) -> int:
    currency = currency.upper()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def units_of(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(exponent(currency)).to_integral_value())


def major_of(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-exponent(currency))


def fee_units(amount_units: int) -> int:
    return int((Decimal(amount_units) * FEE_RATE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def error_response(
    status: int,
    type_: str,
    message: str,
    *,
    code: str = "",
    decline_code: str = "",
    param: str = "",
    **extra,
) -> JsonResponse:
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


def missing(kind: str, ident: str, param: str = "id") -> JsonResponse:
    return error_response(
        404,
        "invalid_request_error",
        f"No such {kind}: '{ident}'",
        code="resource_missing",
        param=param,
    )


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


def form_data(request: HttpRequest) -> dict[str, Any]:
    return _nested(request.POST.lists())


def query_data(request: HttpRequest) -> dict[str, Any]:
    return _nested(request.GET.lists())


def authenticate(request: HttpRequest) -> SandboxMerchant | JsonResponse:
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
        return error_response(401, "invalid_request_error", "You did not provide an API key.")
    merchant = SandboxMerchant.objects.filter(channel=CHANNEL, config__secret_key=key).first()
    if merchant is None:
        return error_response(
            401, "invalid_request_error", f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}"
        )
    return merchant


def webhook_url(merchant: SandboxMerchant) -> str:
    return merchant.config.get("webhook_url") or f"{settings.SITE_URL}/payments/notify/{CHANNEL}/"


def event_body(event_type: str, obj: Mapping[str, Any]) -> bytes:
    event = {
        "id": f"evt_{random_token(24)}",
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


def webhook_headers(merchant: SandboxMerchant, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": sign(merchant.config["webhook_secret"], body),
    }


def api_view(view):
    """Fault switches first, then the secret key, as on every acquirer API call."""

    @csrf_exempt
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if fault := core.fault_response(CHANNEL):
            return fault
        merchant = authenticate(request)
        if isinstance(merchant, JsonResponse):
            return merchant
        return view(request, merchant, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped
