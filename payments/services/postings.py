"""The platform's own journal entries (DESIGN.md §4): a capture, and a refund sent, confirmed
or refused. The shop's entries live in ``marketplace/postings.py``, the wallet's top-up in
``payments/wallet.py``."""

from __future__ import annotations

from payments import fx, ledger
from payments.channels.registry import backend_class
from payments.models import Attempt, JournalEntry, Payment, Refund


def funds_account(attempt: Attempt) -> str:
    """Where an attempt's money sits: the channel's receivable, or the buyer's wallet for a
    channel that settles from it (balance)."""
    if backend_class(attempt.account.backend).settles_from_wallet:
        return ledger.buyer_wallet(attempt.payment.buyer_id)
    return ledger.channel_receivable(attempt.account.code)


def _foreign(amount, attempt: Attempt) -> ledger.Foreign:
    return ledger.Foreign(amount=amount, currency=attempt.charge_currency, rate=attempt.fx_rate)


def capture_post(attempt: Attempt) -> JournalEntry:
    """One entry per captured attempt: the money in, and the channel's fee out of it.

    An attempt charged in a foreign currency books what the channel holds — the foreign
    amount at the attempt's rate, in CNY — against the order's CNY price in clearing; the
    rounding between the two goes to the exchange-differences account, so the entry
    balances in CNY."""
    payment = attempt.payment
    source = funds_account(attempt)
    if attempt.foreign:
        held = fx.to_cny(attempt.charge_amount, attempt.fx_rate)
        lines = [
            (source, held, _foreign(attempt.charge_amount, attempt)),
            (ledger.CLEARING, -attempt.amount),
            (ledger.FX_DIFFERENCES, attempt.amount - held),
        ]
    else:
        lines = [(source, attempt.amount), (ledger.CLEARING, -attempt.amount)]
    if attempt.fee > 0 and not backend_class(attempt.account.backend).settles_from_wallet:
        lines += [(ledger.channel_fees(attempt.account.code), attempt.fee), (source, -attempt.fee)]
    return ledger.post(
        key=f"capture:{attempt.out_trade_no}",
        kind="payment_captured",
        reference=payment.reference,
        lines=lines,
        memo=f"{attempt.account.code} {attempt.out_trade_no}",
        currency=attempt.currency,
    )


def refund_sent_post(refund: Refund, payment: Payment | None = None) -> JournalEntry:
    """A refund on its way: the money leaves clearing for what the platform owes buyers until
    the channel confirms (or refuses) it."""
    payment = payment or refund.payment
    return ledger.post(
        key=f"refund-sent:{refund.refund_no}",
        kind="refund_sent",
        reference=payment.reference,
        lines=[
            (ledger.CLEARING, refund.amount),
            (ledger.REFUNDS_IN_FLIGHT, -refund.amount, _refund_foreign(refund)),
        ],
        memo=refund.reason,
        currency=refund.currency,
    )


def _refund_foreign(refund: Refund) -> ledger.Foreign | None:
    if not refund.charge_currency or refund.charge_amount is None:
        return None
    return _foreign(refund.charge_amount, refund.attempt)


def refund_post(refund: Refund) -> JournalEntry:
    """The channel paid the refund out: what was in flight leaves where the money sat. A
    foreign-currency refund leaves it at the capture's rate (what the channel held for that
    foreign amount); its rounding against the CNY refunded goes to exchange differences."""
    foreign = _refund_foreign(refund)
    if foreign is not None:
        held = fx.to_cny(foreign.amount, foreign.rate)
        lines = [
            (ledger.REFUNDS_IN_FLIGHT, refund.amount),
            (funds_account(refund.attempt), -held, foreign),
            (ledger.FX_DIFFERENCES, held - refund.amount),
        ]
    else:
        lines = [
            (ledger.REFUNDS_IN_FLIGHT, refund.amount),
            (funds_account(refund.attempt), -refund.amount),
        ]
    return ledger.post(
        key=f"refund:{refund.refund_no}",
        kind="refund",
        reference=refund.payment.reference,
        lines=lines,
        memo=refund.reason,
        currency=refund.currency,
    )


def refund_failed_post(refund: Refund) -> JournalEntry:
    """Not paid out after all: the money is back in clearing for staff to settle."""
    return ledger.post(
        key=f"refund-failed:{refund.refund_no}",
        kind="refund_failed",
        reference=refund.payment.reference,
        lines=[(ledger.REFUNDS_IN_FLIGHT, refund.amount), (ledger.CLEARING, -refund.amount)],
        memo=refund.error,
        currency=refund.currency,
    )
