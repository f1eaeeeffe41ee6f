"""The simulated acquirer's disputes: a cardholder's bank disputes a settled charge, the
acquirer withdraws the amount and its dispute fee, then rules — each step a signed
``charge.dispute.*`` webhook shaped as Stripe's Dispute object."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

from django.db import transaction

from payments.sandbox.card.protocol import event_body, random_token, stable_id, units_of
from payments.sandbox.core import DisputeRefused
from payments.sandbox.models import SandboxTrade

DISPUTE_FEE = Decimal("15.00")  # Stripe's dispute fee in the account's currency
EVIDENCE_DAYS = 7


def dispute_json(trade: SandboxTrade) -> dict[str, Any]:
    dispute = trade.extra["dispute"]
    return {
        "id": dispute["id"],
        "object": "dispute",
        "amount": dispute["amount"],
        "balance_transactions": dispute["balance_transactions"],
        "charge": trade.extra.get("charge_id"),
        "created": dispute["created"],
        "currency": trade.currency.lower(),
        "evidence_details": {
            "due_by": dispute["due_by"],
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": trade.trade_no,
        "reason": dispute["reason"],
        "status": dispute["status"],
    }


def _balance_transaction(trade: SandboxTrade, amount: int, fee: int, category: str) -> dict:
    return {
        "id": f"txn_{random_token(24)}",
        "object": "balance_transaction",
        "amount": amount,
        "currency": trade.currency.lower(),
        "fee": fee,
        "net": amount - fee,
        "reporting_category": category,
        "type": "adjustment",
    }


def dispute_open(trade: SandboxTrade, *, reason: str = "fraudulent") -> bytes:
    """Open a chargeback on a paid trade: the amount and the fee are withdrawn. Returns the
    ``charge.dispute.created`` event body to send."""
    with transaction.atomic():
        trade = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
        if trade.status != SandboxTrade.Status.PAID:
            raise DisputeRefused("only a paid charge can be disputed")
        if trade.extra.get("dispute"):
            raise DisputeRefused("this charge is disputed already")
        units = units_of(trade.amount, trade.currency)
        now = int(time.time())
        trade.extra = {
            **trade.extra,
            "dispute": {
                "id": stable_id("dp_", f"{trade.trade_no}:dispute"),
                "amount": units,
                "reason": reason,
                "status": "needs_response",
                "created": now,
                "due_by": now + int(dt.timedelta(days=EVIDENCE_DAYS).total_seconds()),
                "balance_transactions": [
                    _balance_transaction(
                        trade, -units, units_of(DISPUTE_FEE, trade.currency), "dispute"
                    )
                ],
            },
        }
        trade.save(update_fields=["extra"])
    return event_body("charge.dispute.created", dispute_json(trade))


def dispute_close(trade: SandboxTrade, *, won: bool) -> bytes:
    """The bank rules: won reinstates the amount (the fee is kept), lost keeps both.
    Returns the ``charge.dispute.closed`` event body."""
    with transaction.atomic():
        trade = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
        dispute = dict(trade.extra.get("dispute") or {})
        if not dispute:
            raise DisputeRefused("this charge has no dispute")
        if dispute["status"] in {"won", "lost"}:
            raise DisputeRefused(f"the dispute is {dispute['status']} already")
        dispute["status"] = "won" if won else "lost"
        if won:
            dispute["balance_transactions"] = [
                *dispute["balance_transactions"],
                _balance_transaction(trade, dispute["amount"], 0, "dispute_reversal"),
            ]
        trade.extra = {**trade.extra, "dispute": dispute}
        trade.save(update_fields=["extra"])
    return event_body("charge.dispute.closed", dispute_json(trade))
