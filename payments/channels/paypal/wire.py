"""PayPal's REST resources as the backend reads them: amounts per currency, times,
links, the order/capture/refund statuses and PayPal's error bodies (CHANNELS.md §4.1)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from payments.channels.base import (
    CENT,
    ChannelDeclined,
    ChannelError,
    ChannelUnavailable,
    Outcome,
    RefundOutcome,
    to_minor,
)

#: PayPal amounts in these currencies carry no decimals ("JPY 100", not "100.00").
ZERO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})


def format_amount(amount: Decimal, currency: str) -> str:
    """Decimal → PayPal's amount ``value`` string for ``currency``."""
    if currency.upper() in ZERO_DECIMAL_CURRENCIES:
        if amount != amount.to_integral_value():
            raise ChannelDeclined(
                f"{currency} amounts take no decimals at PayPal: {amount}", code="DECIMAL_PRECISION"
            )
        return str(int(amount))
    try:
        to_minor(amount)
    except ValueError as exc:
        raise ChannelDeclined(str(exc), code="DECIMAL_PRECISION") from None
    return str(amount.quantize(CENT))


def parse_amount(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def link(resource: Mapping[str, Any], rel: str) -> str:
    for link in resource.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == rel:
            return str(link.get("href", ""))
    return ""


def first_unit(order: Mapping[str, Any]) -> dict:
    units = order.get("purchase_units") or []
    return units[0] if units and isinstance(units[0], dict) else {}


def first_capture(order: Mapping[str, Any]) -> dict:
    captures = (first_unit(order).get("payments") or {}).get("captures") or []
    return captures[0] if captures and isinstance(captures[0], dict) else {}


_CAPTURE_OUTCOMES: dict[str, Outcome] = {
    "COMPLETED": "succeeded",
    "PARTIALLY_REFUNDED": "succeeded",
    "REFUNDED": "succeeded",
    "PENDING": "pending",
    "DECLINED": "failed",
    "FAILED": "failed",
}
_ORDER_OUTCOMES: dict[str, Outcome] = {
    "CREATED": "pending",
    "SAVED": "pending",
    "PAYER_ACTION_REQUIRED": "pending",
    "APPROVED": "pending",
    "VOIDED": "closed",
}
REFUND_OUTCOMES: dict[str, RefundOutcome] = {
    "COMPLETED": "succeeded",
    "PENDING": "pending",
    "FAILED": "failed",
    "CANCELLED": "failed",
}


def order_outcome(order: Mapping[str, Any]) -> Outcome:
    """An order's state for the platform: a COMPLETED order can still hold a DECLINED capture,
    so the capture's status decides (§4.1)."""
    capture = first_capture(order)
    if capture:
        return _CAPTURE_OUTCOMES.get(str(capture.get("status", "")), "unknown")
    return _ORDER_OUTCOMES.get(str(order.get("status", "")), "unknown")


def error_from(response) -> ChannelError:
    """PayPal's error body → our exception; ``details[0].issue`` is the specific code."""
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    details = data.get("details") or []
    first = details[0] if details and isinstance(details[0], dict) else {}
    code = (
        first.get("issue")
        or data.get("name")
        or data.get("error")
        or f"HTTP_{response.status_code}"
    )
    message = first.get("description") or data.get("message") or data.get("error_description") or ""
    text = f"PayPal answered HTTP {response.status_code} {code}: {message}".strip()
    if response.status_code in (401, 403, 429):
        return ChannelUnavailable(text, code=str(code), raw=data)
    return ChannelDeclined(text, code=str(code), raw=data)
