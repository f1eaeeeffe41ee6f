"""PayPal disputes as its webhooks send them: ``CUSTOMER.DISPUTE.CREATED`` / ``UPDATED`` /
``RESOLVED`` with the Dispute resource (disputes API v1). The disputed transaction carries
the capture and the ``custom`` / ``invoice_number`` our order set (= ``out_trade_no``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payments.channels.base import DisputeFacts, DisputeOutcome, Notice, NotificationRejected
from payments.channels.paypal.wire import parse_amount, parse_time

DISPUTE_EVENTS = frozenset(
    {"CUSTOMER.DISPUTE.CREATED", "CUSTOMER.DISPUTE.UPDATED", "CUSTOMER.DISPUTE.RESOLVED"}
)

#: ``dispute_outcome.outcome_code`` of a resolved dispute → its outcome for the merchant.
_RESOLVED: dict[str, DisputeOutcome] = {
    "RESOLVED_BUYER_FAVOUR": "lost",
    "ACCEPTED": "lost",  # the merchant accepted the claim
    "RESOLVED_SELLER_FAVOUR": "won",
    "DENIED": "won",
    "RESOLVED_WITH_PAYOUT": "won",  # PayPal paid the buyer itself; the merchant keeps it
    "CANCELED_BY_BUYER": "closed",
    "NONE": "closed",
}
_OPEN_STATUSES = frozenset(
    {
        "OPEN",
        "WAITING_FOR_BUYER_RESPONSE",
        "WAITING_FOR_SELLER_RESPONSE",
        "UNDER_REVIEW",
        "REQUIRED_ACTION",
        "REQUIRED_OTHER_PARTY_ACTION",
        "OTHER",
    }
)


def dispute_notice(
    dispute: Mapping[str, Any], event: Mapping[str, Any], *, merchant_id: str
) -> Notice:
    """A ``CUSTOMER.DISPUTE.*`` resource → a dispute notice; refused when it is another
    merchant's, names no order of ours or has a status PayPal does not document."""
    dispute_id = dispute.get("dispute_id")
    if not dispute_id:
        raise NotificationRejected("PayPal dispute resource has no dispute_id")
    transactions = [t for t in dispute.get("disputed_transactions") or [] if isinstance(t, dict)]
    if not transactions:
        raise NotificationRejected(f"PayPal dispute {dispute_id} lists no disputed transaction")
    transaction = transactions[0]
    seller = str((transaction.get("seller") or {}).get("merchant_id") or "")
    if merchant_id and seller and seller != merchant_id:
        raise NotificationRejected(
            f"PayPal dispute {dispute_id} is for merchant {seller}, not this account's"
            f" {merchant_id}"
        )
    out_trade_no = transaction.get("custom") or transaction.get("invoice_number")
    if not out_trade_no:
        raise NotificationRejected(
            f"PayPal dispute {dispute_id}: the disputed transaction has no custom/invoice_number"
        )
    status = str(dispute.get("status", ""))
    if status == "RESOLVED":
        code = str((dispute.get("dispute_outcome") or {}).get("outcome_code") or "NONE")
        if code not in _RESOLVED:
            raise NotificationRejected(f"PayPal dispute {dispute_id}: unknown outcome {code!r}")
        outcome = _RESOLVED[code]
    elif status in _OPEN_STATUSES:
        outcome, code = "open", ""
    else:
        raise NotificationRejected(f"PayPal dispute {dispute_id} has unknown status {status!r}")
    amount = dispute.get("dispute_amount") or transaction.get("gross_amount")
    if not isinstance(amount, dict):
        raise NotificationRejected(f"PayPal dispute {dispute_id} has no dispute_amount")
    refunded = (dispute.get("dispute_outcome") or {}).get("amount_refunded")
    return Notice(
        kind="dispute",
        out_trade_no=str(out_trade_no),
        outcome="pending",
        amount=parse_amount(amount["value"]),
        currency=str(amount["currency_code"]),
        merchant_id=seller,
        channel_trade_no=str(transaction.get("seller_transaction_id") or ""),
        occurred_at=parse_time(dispute.get("update_time") or dispute.get("create_time")),
        raw=dict(event),
        dispute=DisputeFacts(
            dispute_id=str(dispute_id),
            status=f"{status}:{code}" if code else status,
            outcome=outcome,
            reason=str(dispute.get("reason") or ""),
            # PayPal holds the disputed amount from the moment a case opens
            funds_withdrawn=True,
            evidence_due_by=parse_time(dispute.get("seller_response_due_date")),
            lost_amount=parse_amount(refunded["value"]) if isinstance(refunded, dict) else None,
        ),
    )
