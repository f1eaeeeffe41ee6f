"""How the journal reads to a finance person: entry kinds and account codes by name.

Kinds and account codes stay machine keys in the database (they are idempotency keys and
grouping keys); only their display is translated here, in one place.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

KIND_LABELS = {
    "payment_captured": _("payment captured"),
    "wallet_topup": _("wallet top-up"),
    "refund": _("refund"),
    "refund_sent": _("refund sent to channel"),
    "refund_failed": _("refund failed, reversed"),
    "sale": _("sale (codes delivered)"),
    "dispute_refund": _("refund after dispute"),
    "order_refund": _("order refunded"),
    "seller_funds_mature": _("seller funds matured"),
    "payout_request": _("payout requested"),
    "payout_paid": _("payout paid"),
    "payout_release": _("payout rejected, funds released"),
    "write_off": _("write-off"),
    "chargeback": _("chargeback: disputed amount withdrawn"),
    "chargeback_fee": _("chargeback fee"),
    "chargeback_won": _("chargeback won, amount reinstated"),
    "chargeback_lost": _("chargeback lost"),
    "chargeback_hold": _("seller funds held for a chargeback"),
    "chargeback_release": _("chargeback won, seller funds released"),
    "chargeback_debit": _("chargeback lost, charged to the seller"),
}

_FIXED_ACCOUNTS = {
    "payments:clearing": _("Clearing (received, not yet handed over)"),
    "payments:refunds-in-flight": _("Refunds in flight"),
    "platform:revenue": _("Platform revenue"),
    "platform:write-offs": _("Write-offs"),
    "platform:fx-differences": _("Exchange differences"),
    "payments:chargebacks": _("Chargebacks (disputed, withdrawn by the channel)"),
    "platform:chargeback-losses": _("Chargeback losses"),
}

_SUFFIXES = {
    "receivable": _("receivable"),
    "fees": _("fees"),
    "wallet": _("wallet balance"),
    "pending": _("pending (guarantee window)"),
    "available": _("available"),
    "paid-out": _("paid out"),
    "payouts-requested": _("payouts requested"),
    "held": _("held for a chargeback"),
}

_OWNERS = {"channel": _("Channel"), "buyer": _("Buyer"), "seller": _("Seller")}


def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


def kind_choices() -> list[tuple[str, str]]:
    return [(kind, str(label)) for kind, label in KIND_LABELS.items()]


def account_label(code: str, owner_name: str = "") -> str:
    """``seller:12:pending`` → ``卖家 alice · 待结算（保障期内）``."""
    if code in _FIXED_ACCOUNTS:
        return str(_FIXED_ACCOUNTS[code])
    parts = code.split(":")
    if len(parts) == 3 and parts[0] in _OWNERS:
        who = owner_name or (f"#{parts[1]}" if parts[1].isdigit() else parts[1])
        what = _SUFFIXES.get(parts[2], parts[2])
        return f"{_OWNERS[parts[0]]} {who} · {what}"
    return code
