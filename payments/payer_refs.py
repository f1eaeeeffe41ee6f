"""The buyer's account at the channel, read from what the channel returned: Alipay's
``buyer_id`` (its query: ``buyer_user_id``), WeChat Pay's ``payer.openid``, the card's
fingerprint (else its PaymentMethod id), PayPal's ``payer_id``. Stored on the payment's
client as ``account_ref`` (``<backend>:<id>``), it is the payment-account key risk's
signals are kept on: a decline or a chargeback on one card or wallet account follows it to
any buyer who pays with it (DESIGN.md §6, docs/risk.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _card(raw: Mapping[str, Any]) -> str:
    intent = _dig(raw, "data", "object") if "data" in raw else raw
    if not isinstance(intent, Mapping):
        return ""
    for path in (
        ("latest_charge", "payment_method_details", "card", "fingerprint"),
        ("last_payment_error", "payment_method", "card", "fingerprint"),
    ):
        found = _dig(intent, *path)
        if found:
            return str(found)
    method = intent.get("payment_method")
    if isinstance(method, Mapping):
        return str(_dig(method, "card", "fingerprint") or method.get("id") or "")
    return str(method or "")


def _paypal(raw: Mapping[str, Any]) -> str:
    for path in (
        ("capture", "payer", "payer_id"),
        ("event", "resource", "payer", "payer_id"),
        ("resource", "payer", "payer_id"),
        ("payer", "payer_id"),
    ):
        found = _dig(raw, *path)
        if found:
            return str(found)
    return ""


_READERS = {
    "alipay": lambda raw: str(raw.get("buyer_id") or raw.get("buyer_user_id") or ""),
    "wechatpay": lambda raw: str(_dig(raw, "payer", "openid") or ""),
    "card": _card,
    "paypal": _paypal,
}


def payer_ref(backend: str, raw: Mapping[str, Any] | None) -> str:
    """``<backend>:<the buyer's id at the channel>``, or '' when the answer names none."""
    reader = _READERS.get(backend)
    if reader is None or not isinstance(raw, Mapping):
        return ""
    try:
        found = reader(raw).strip()
    except (AttributeError, TypeError):
        return ""
    return f"{backend}:{found}"[:120] if found else ""
