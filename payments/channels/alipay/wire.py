"""Alipay's wire format (CHANNELS.md §1): the RSA2 string-to-sign of requests and
notifications, the raw ``*_response`` text a synchronous answer is verified over, yuan
strings and Beijing times, and the trade_status values."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from payments.channels.base import (
    CENT,
    Outcome,
)
from payments.channels.signing import sha256_rsa_sign, sha256_rsa_verify

#: Alipay's clocks, bills and notification times are Beijing time.
BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SIGN_TYPE = "RSA2"

#: trade_status → contract outcome (§1.5). TRADE_CLOSED of a trade that was paid (it carries a
#: payment time) means "fully refunded", which is still a succeeded payment — see _outcome().
TRADE_STATUS: Mapping[str, Outcome] = {
    "WAIT_BUYER_PAY": "pending",
    "TRADE_SUCCESS": "succeeded",
    "TRADE_FINISHED": "succeeded",
    "TRADE_CLOSED": "closed",
}

SUCCESS_CODE = "10000"
#: error code of a payment notice/query for a trade Alipay closed unpaid (no sub_code exists)
CLOSED_CODE = "TRADE_CLOSED"
UNKNOWN_CODE = "20000"  # service unavailable: the outcome is unknown, query again (§1.3)


# ---------------------------------------------------------------------------------------------
# RSA2 primitives


def sign_content(params: Mapping[str, Any], *, exclude: tuple[str, ...] = ("sign",)) -> str:
    """The string-to-sign of a request: non-empty params minus ``exclude`` (requests exclude
    only ``sign``), sorted by key, ``k=v`` joined with ``&``, values not URL-encoded; dict/list
    values as compact JSON (§1.2 steps 1-3). Notifications are verified over
    :func:`notification_content`."""
    parts = []
    for key in sorted(params):
        if key in exclude:
            continue
        value = params[key]
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if value is None or value == "":
            continue
        parts.append(f"{key}={value}")
    return "&".join(parts)


def notification_content(params: Mapping[str, str]) -> str:
    """The string a notification is verified over: every parameter but ``sign`` and
    ``sign_type``, sorted by key, ``k=v`` joined with ``&``, not URL-encoded, and empty values
    kept as ``k=`` — as python-alipay-sdk's ``verify`` and the official Java SDK's
    ``getSignCheckContentV1`` build it (§1.4)."""
    return "&".join(f"{key}={params[key]}" for key in sorted(params) if key not in NOT_SIGNED)


#: what a notification's signature does not cover (§1.4)
NOT_SIGNED = ("sign", "sign_type")


# RSA2 = SHA256withRSA over the UTF-8 bytes, base64 without newlines (§1.2 step 4).
rsa2_sign = sha256_rsa_sign
rsa2_verify = sha256_rsa_verify


def response_content(raw_text: str, response_key: str) -> str | None:
    """The exact raw text of the ``response_key`` object inside a synchronous answer — the
    bytes Alipay signed (§1.3). Found with a JSON-aware scan, so braces inside strings are safe."""
    marker = f'"{response_key}"'
    pos = raw_text.find(marker)
    if pos < 0:
        return None
    colon = raw_text.find(":", pos + len(marker))
    if colon < 0:
        return None
    start = colon + 1
    while start < len(raw_text) and raw_text[start] in " \t\r\n":
        start += 1
    try:
        _, end = json.JSONDecoder().raw_decode(raw_text, start)
    except ValueError:
        return None
    return raw_text[start:end]


# ---------------------------------------------------------------------------------------------
# Small conversions


def yuan(amount: Decimal) -> str:
    """Alipay amounts are yuan strings with two decimals; sub-cent amounts are refused."""
    quantized = amount.quantize(CENT)
    if quantized != amount:
        raise ValueError(f"amount {amount} has more than two decimal places")
    return format(quantized, "f")


def beijing_time(moment: dt.datetime) -> str:
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing(text: str) -> dt.datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` Beijing time; ``gmt_refund`` also carries milliseconds."""
    for pattern in (TIME_FORMAT, TIME_FORMAT + ".%f"):
        try:
            return dt.datetime.strptime(text.strip(), pattern).replace(tzinfo=BEIJING)
        except (ValueError, AttributeError):
            continue
    return None


def parse_amount(text: str, *, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ValueError(f"{what} {text!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{what} {text!r} is not an amount")
    return value
