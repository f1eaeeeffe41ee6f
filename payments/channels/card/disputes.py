"""Card disputes (chargebacks) as Stripe sends them: ``charge.dispute.*`` events whose object
is the Dispute (CHANNELS.md §4.5). A dispute names the PaymentIntent it disputes, not our
``out_trade_no``: the platform finds the attempt by its ``channel_trade_no``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payments.channels.base import DisputeFacts, DisputeOutcome, Notice, NotificationRejected
from payments.channels.card.wire import epoch_time, from_units

DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)

#: Stripe's dispute statuses → the dispute's outcome for us. ``warning_*`` are inquiries
#: (early fraud warnings, retrieval requests): no money has moved yet.
_OUTCOMES: dict[str, DisputeOutcome] = {
    "warning_needs_response": "open",
    "warning_under_review": "open",
    "needs_response": "open",
    "under_review": "open",
    # refunded instead of fought: the money went back through the refund, not the dispute
    "charge_refunded": "closed",
    "won": "won",
    "lost": "lost",
    "prevented": "won",
    "warning_closed": "closed",
}


def dispute_notice(dispute: Mapping[str, Any], event: Mapping[str, Any]) -> Notice:
    """A ``charge.dispute.*`` event → a dispute notice (NotificationRejected if it names no
    PaymentIntent or has a status Stripe does not document)."""
    if dispute.get("object") != "dispute":
        raise NotificationRejected("charge.dispute event whose object is not a dispute")
    intent = dispute.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    if not intent:
        raise NotificationRejected(f"dispute {dispute.get('id')} names no payment_intent")
    status = str(dispute.get("status", ""))
    if status not in _OUTCOMES:
        raise NotificationRejected(f"dispute {dispute.get('id')} has unknown status {status!r}")
    currency = str(dispute["currency"]).upper()
    due = (dispute.get("evidence_details") or {}).get("due_by")
    # Stripe withdraws the disputed amount (and its fee) with the dispute's first balance
    # transaction; a reinstatement on a win comes as a second one, its fee negative if the
    # fee is returned. The fee kept is what the transactions sum to.
    transactions = [tx for tx in dispute.get("balance_transactions") or [] if isinstance(tx, dict)]
    fee_units = sum(int(tx.get("fee") or 0) for tx in transactions)
    return Notice(
        kind="dispute",
        out_trade_no="",
        outcome="pending",
        amount=from_units(dispute["amount"], currency),
        currency=currency,
        channel_trade_no=str(intent),
        occurred_at=epoch_time(event.get("created")),
        raw=dict(event),
        dispute=DisputeFacts(
            dispute_id=str(dispute["id"]),
            status=status,
            outcome=_OUTCOMES[status],
            reason=str(dispute.get("reason") or ""),
            funds_withdrawn=not status.startswith("warning_"),
            evidence_due_by=epoch_time(due) if due else None,
            fee=from_units(max(fee_units, 0), currency) if transactions else None,
        ),
    )
