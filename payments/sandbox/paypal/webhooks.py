"""Webhook events as PayPal sends them: the event envelope, whose merchant a resource
belongs to, and queueing a signed transmission for delivery."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from payments.sandbox import core
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxTrade,
)
from payments.sandbox.paypal.certificates import signature_headers
from payments.sandbox.paypal.resources import CHANNEL, iso_time, paypal_id


def event_body(
    event_type: str, resource_type: str, summary: str, resource: Mapping[str, Any]
) -> bytes:
    event = {
        "id": f"WH-{paypal_id(17)}-{paypal_id(17)}",
        "event_version": "1.0",
        "create_time": iso_time(),
        "resource_type": resource_type,
        "resource_version": "2.0",
        "event_type": event_type,
        "summary": summary,
        "resource": resource,
        "links": [],
    }
    return json.dumps(event, separators=(",", ":")).encode()


def notify_merchant(merchant: SandboxMerchant, trade: SandboxTrade, body: bytes) -> None:
    if not trade.notify_url:
        return
    headers = {"Content-Type": "application/json", "User-Agent": "PayPal/AUHD-214.0-58843288"}
    headers.update(signature_headers(merchant.config["webhook_id"], body))
    core.enqueue_notification(CHANNEL, trade.notify_url, headers, body)


def resource_merchant(resource: Mapping[str, Any]) -> str:
    for transaction in resource.get("disputed_transactions") or []:
        if isinstance(transaction, dict) and (transaction.get("seller") or {}).get("merchant_id"):
            return transaction["seller"]["merchant_id"]
    for unit in resource.get("purchase_units") or []:
        if isinstance(unit, dict) and (unit.get("payee") or {}).get("merchant_id"):
            return unit["payee"]["merchant_id"]
    return (
        (resource.get("payee") or {}).get("merchant_id")
        or (resource.get("payer") or {}).get("merchant_id")
        or ""
    )
