"""The Stripe-style wire format (CHANNELS.md §4.4, §4.5): API version, amounts in each
currency's smallest unit, the ``Stripe-Signature`` webhook HMAC, the error answer, and the
PaymentIntent and refund states."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from payments import money
from payments.channels.base import (
    ChannelDeclined,
    ChannelError,
    ChannelUnavailable,
    NotificationRejected,
    Outcome,
    RefundOutcome,
    header_map,
)

API_VERSION = "2024-06-20"
WEBHOOK_TOLERANCE = 300  # seconds; stripe-python Webhook.DEFAULT_TOLERANCE

#: Zero- and three-decimal currencies (Stripe's lists); every other currency has two.
ZERO_DECIMAL, THREE_DECIMAL = money.ZERO_DECIMAL, money.THREE_DECIMAL
exponent = money.exponent


def to_units(amount: Decimal, currency: str) -> int:
    """Major units → the API's integer smallest unit; refuses amounts finer than the currency."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ChannelDeclined(
            f"{amount} {currency} has more decimals than the currency allows", code="amount_invalid"
        )
    return int(scaled)


def minor_unit(currency: str) -> Decimal:
    """The quantum ``currency``'s amounts are kept in: its smallest unit (a thousandth for
    KWD, BHD, …), and never coarser than a cent, so yen still read as ``1500.00``."""
    return Decimal(1).scaleb(-max(exponent(currency), 2))


def from_units(value: int | str, currency: str) -> Decimal:
    """The API's integer smallest unit → major units, exactly, whatever the exponent."""
    return Decimal(int(value)).scaleb(-exponent(currency)).quantize(minor_unit(currency))


# ---------------------------------------------------------------------------------------------
# Webhook signatures (CHANNELS.md §4.5)


def compute_signature(secret: str, timestamp: int, payload: bytes) -> str:
    """hex(HMAC-SHA256(secret, "{t}.{payload}"))."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def signature_header(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={compute_signature(secret, timestamp, payload)}"


def verify_signature(
    payload: bytes,
    header: str,
    secrets: Sequence[str],
    *,
    tolerance: int = WEBHOOK_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a ``Stripe-Signature`` header; return its timestamp or raise NotificationRejected.

    Accepts when ANY ``v1`` matches ANY of ``secrets`` (endpoint-secret rotation signs with both),
    compared in constant time; other schemes (``v0``) are ignored.
    """
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                timestamp = None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise NotificationRejected("malformed Stripe-Signature header: no timestamp t=")
    if not signatures:
        raise NotificationRejected("Stripe-Signature header has no v1 signature")
    expected = [
        compute_signature(secret, timestamp, payload).encode() for secret in secrets if secret
    ]
    if not any(
        hmac.compare_digest(candidate, signature.encode())
        for candidate in expected
        for signature in signatures
    ):
        raise NotificationRejected(
            "bad Stripe-Signature: no v1 signature matches this body and endpoint secret"
        )
    now = time.time() if now is None else now
    if timestamp < now - tolerance:
        raise NotificationRejected(
            f"stale Stripe-Signature timestamp: t={timestamp} is more than {tolerance} s old"
        )
    if timestamp > now + tolerance:
        raise NotificationRejected(f"Stripe-Signature timestamp t={timestamp} lies in the future")
    return timestamp


# ---------------------------------------------------------------------------------------------
# Helpers


ci_headers = header_map


def error_from(response) -> ChannelError:
    """Stripe's ``{"error": {type, code, decline_code, message}}`` → our exception."""
    try:
        data = response.json()
    except ValueError:
        data = {}
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    code = (
        error.get("decline_code")
        or error.get("code")
        or error.get("type")
        or f"HTTP_{response.status_code}"
    )
    if response.status_code == 401:
        code = "authentication_error"
    elif response.status_code == 429:
        code = "rate_limit"
    text = (
        f"acquirer answered HTTP {response.status_code} {code}: {error.get('message', '')}".strip()
    )
    if response.status_code in (401, 403, 429):
        return ChannelUnavailable(text, code=str(code), raw=data)
    return ChannelDeclined(text, code=str(code), raw=data)


def epoch_time(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def intent_outcome(intent: Mapping[str, Any]) -> tuple[Outcome, str]:
    """PaymentIntent status → (outcome, error code). A declined attempt sends the intent back to
    ``requires_payment_method`` with ``last_payment_error`` (§4.4)."""
    status = intent.get("status")
    error = intent.get("last_payment_error") or {}
    code = (
        str(error.get("decline_code") or error.get("code") or "") if isinstance(error, dict) else ""
    )
    if status == "succeeded":
        return "succeeded", ""
    if status == "canceled":
        return "closed", str(intent.get("cancellation_reason") or "")
    if status == "requires_payment_method" and code:
        return "failed", code
    if status in (
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
    ):
        return "pending", ""
    return "unknown", ""


REFUND_OUTCOMES: dict[str, RefundOutcome] = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "failed",
}

PAYMENT_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.created",
    }
)
REFUND_EVENTS = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)
