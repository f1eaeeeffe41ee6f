"""The platform's own journal entries (DESIGN.md §4): a capture, and a refund sent, confirmed
or refused. The shop's entries live in ``marketplace/postings.py``, the wallet's top-up in
``payments/wallet.py``."""

from __future__ import annotations

from payments import ledger
from payments.channels.registry import backend_class
from payments.models import Attempt, JournalEntry, Payment, Refund


def funds_account(attempt: Attempt) -> str:
    """Where an attempt's money sits: the channel's receivable, or the buyer's wallet for a
    channel that settles from it (balance)."""
    if backend_class(attempt.account.backend).settles_from_wallet:
        return ledger.buyer_wallet(attempt.payment.buyer_id)
    return ledger.channel_receivable(attempt.account.code)


def capture_post(attempt: Attempt) -> JournalEntry:
    """One entry per captured attempt: the money in, and the channel's fee out of it."""
    payment = attempt.payment
    source = funds_account(attempt)
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
        lines=[(ledger.CLEARING, refund.amount), (ledger.REFUNDS_IN_FLIGHT, -refund.amount)],
        memo=refund.reason,
        currency=refund.currency,
    )


def refund_post(refund: Refund) -> JournalEntry:
    """The channel paid the refund out: what was in flight leaves where the money sat."""
    return ledger.post(
        key=f"refund:{refund.refund_no}",
        kind="refund",
        reference=refund.payment.reference,
        lines=[
            (ledger.REFUNDS_IN_FLIGHT, refund.amount),
            (funds_account(refund.attempt), -refund.amount),
        ],
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
