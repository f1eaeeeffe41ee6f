"""Money after the settlement file: a channel's settlement arriving in the bank."""

from __future__ import annotations

from decimal import Decimal

from payments import ledger


def settlement_funds_receive(
    *,
    key: str,
    account_code: str,
    bank_code: str,
    amount: Decimal,
    currency: str = "CNY",
    memo: str = "",
):
    """A channel's settlement reached our bank: the money moves from what the channel owes us
    (its receivable) to the bank account. Idempotent on ``key``."""
    return ledger.post(
        key=key,
        kind="settlement_arrival",
        memo=memo,
        currency=currency,
        lines=[
            (ledger.bank_cash(bank_code), amount),
            (ledger.channel_receivable(account_code), -amount),
        ],
    )
