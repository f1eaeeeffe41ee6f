"""Money after the settlement file: a channel's settlement arriving in the bank."""

from __future__ import annotations

from decimal import Decimal

from payments import fx, ledger


def settlement_funds_receive(
    *,
    key: str,
    account_code: str,
    bank_code: str,
    amount: Decimal,
    currency: str = "CNY",
    memo: str = "",
    booked_cny: Decimal | None = None,
):
    """A channel's settlement reached our bank: the money moves from what the channel owes us
    (its receivable) to the bank account. Idempotent on ``key``.

    ``booked_cny``: for money charged in a foreign currency, what the receivable holds for it
    in CNY (its lines at the rates they were captured at). An arrival in that foreign currency
    moves that CNY value into the bank, the line carrying the foreign amount; an arrival the
    bank converted into CNY moves what arrived, and the difference from what was booked is
    an exchange difference — so the journal stays in CNY either way."""
    bank, receivable = ledger.bank_cash(bank_code), ledger.channel_receivable(account_code)
    if booked_cny is None:
        lines = [(bank, amount), (receivable, -amount)]
        entry_currency = currency
    elif currency != fx.HOME:
        rate = (booked_cny / amount).quantize(Decimal("0.00000001"))
        foreign = ledger.Foreign(amount=amount, currency=currency, rate=rate)
        lines = [(bank, booked_cny, foreign), (receivable, -booked_cny)]
        entry_currency = fx.HOME
    else:
        lines = [
            (bank, amount),
            (receivable, -booked_cny),
            (ledger.FX_DIFFERENCES, booked_cny - amount),
        ]
        entry_currency = fx.HOME
    return ledger.post(
        key=key, kind="settlement_arrival", memo=memo, currency=entry_currency, lines=lines
    )
