"""The simulated PayPal's disputes: a buyer (or their card issuer) disputes a captured order;
PayPal holds the amount, then resolves the case — each step a signed ``CUSTOMER.DISPUTE.*``
webhook carrying the Dispute resource of the disputes API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from payments.sandbox.core import DisputeRefused
from payments.sandbox.models import SandboxTrade
from payments.sandbox.paypal.resources import amount_value, iso_time, paypal_id
from payments.sandbox.paypal.webhooks import event_body

RESPONSE_DAYS = 10


def dispute_json(trade: SandboxTrade) -> dict[str, Any]:
    dispute = trade.extra["dispute"]
    money = {
        "currency_code": trade.currency,
        "value": amount_value(trade.amount, trade.currency),
    }
    resource: dict[str, Any] = {
        "dispute_id": dispute["id"],
        "create_time": dispute["create_time"],
        "update_time": dispute.get("update_time") or dispute["create_time"],
        "disputed_transactions": [
            {
                "seller_transaction_id": trade.extra.get("capture_id"),
                "create_time": iso_time(trade.paid_at),
                "transaction_status": "COMPLETED",
                "gross_amount": money,
                "invoice_number": trade.out_trade_no,
                "custom": trade.out_trade_no,
                "seller": {"merchant_id": trade.merchant_id},
            }
        ],
        "reason": dispute["reason"],
        "status": dispute["status"],
        "dispute_amount": money,
        "dispute_life_cycle_stage": "CHARGEBACK",
        "dispute_channel": "EXTERNAL",
        "seller_response_due_date": dispute["due"],
        "links": [],
    }
    if dispute.get("outcome_code"):
        resource["dispute_outcome"] = {"outcome_code": dispute["outcome_code"]}
        if dispute["outcome_code"] == "RESOLVED_BUYER_FAVOUR":
            resource["dispute_outcome"]["amount_refunded"] = money
    return resource


def dispute_open(trade: SandboxTrade, *, reason: str = "UNAUTHORISED") -> bytes:
    """Open a case on a captured trade. Returns the ``CUSTOMER.DISPUTE.CREATED`` body."""
    with transaction.atomic():
        trade = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
        if trade.status != SandboxTrade.Status.PAID or not trade.extra.get("capture_id"):
            raise DisputeRefused("only a captured order can be disputed")
        if trade.extra.get("dispute"):
            raise DisputeRefused("this capture is disputed already")
        trade.extra = {
            **trade.extra,
            "dispute": {
                "id": f"PP-D-{paypal_id(8)}",
                "reason": reason,
                "status": "WAITING_FOR_SELLER_RESPONSE",
                "create_time": iso_time(),
                "due": iso_time(timezone.now() + dt.timedelta(days=RESPONSE_DAYS)),
            },
        }
        trade.save(update_fields=["extra"])
    return event_body(
        "CUSTOMER.DISPUTE.CREATED", "dispute", "A new dispute opened", dispute_json(trade)
    )


def dispute_close(trade: SandboxTrade, *, won: bool) -> bytes:
    """Resolve the case for the seller (``won``) or the buyer. Returns the
    ``CUSTOMER.DISPUTE.RESOLVED`` body."""
    with transaction.atomic():
        trade = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
        dispute = dict(trade.extra.get("dispute") or {})
        if not dispute:
            raise DisputeRefused("this capture has no dispute")
        if dispute["status"] == "RESOLVED":
            raise DisputeRefused("the dispute is resolved already")
        dispute.update(
            status="RESOLVED",
            outcome_code="RESOLVED_SELLER_FAVOUR" if won else "RESOLVED_BUYER_FAVOUR",
            update_time=iso_time(),
        )
        trade.extra = {**trade.extra, "dispute": dispute}
        trade.save(update_fields=["extra"])
    return event_body(
        "CUSTOMER.DISPUTE.RESOLVED", "dispute", "A dispute was resolved", dispute_json(trade)
    )
