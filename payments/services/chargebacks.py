"""Provider disputes in, applied once (DESIGN.md §4, docs/payments.md "Chargebacks").

A card chargeback or a PayPal case arrives as a verified dispute notice. Each notice carries
the dispute's whole current state, so applying one brings the ``ProviderDispute`` up to date
and posts whatever journal entry that state implies and was not posted yet — under keys of
their own, so the same notice ×N, or its events out of order, move the money once:

==================  ============================================  ============================
the dispute         lines                                         key
==================  ============================================  ============================
funds withdrawn     Dr CHARGEBACKS / Cr channel receivable        ``chargeback:<id>``
a fee charged       Dr channel fees / Cr channel receivable       ``chargeback-fee:<id>``
the fee returned    Dr channel receivable / Cr channel fees       ``chargeback-fee-back:<id>``
won (or closed)     Dr channel receivable / Cr CHARGEBACKS        ``chargeback-won:<id>``
lost                Dr CHARGEBACK_LOSSES / Cr CHARGEBACKS (and    ``chargeback-lost:<id>``
                    any part not charged back to the receivable)
==================  ============================================  ============================

The shop hears ``chargeback_opened`` / ``chargeback_closed`` (it holds the seller's money,
then releases or charges it); risk gets a signal on the buyer, the device, the address and
the payment account when a dispute opens and again when it is lost."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from payments import ledger, signals
from payments.channels.base import Notice
from payments.models import Attempt, ChannelAccount, Notification, Payment, ProviderDispute
from payments.services.common import ApplyResult
from payments.services.notes import note_result, reject
from payments.services.postings import funds_account
from payments.services.risk import device_key
from payments.states import AttemptStatus
from risk import services as risk_services

log = logging.getLogger(__name__)
Outcome = ProviderDispute.Outcome


def dispute_notice_apply(
    account: ChannelAccount, notice: Notice, notification: Notification | None
) -> tuple[ApplyResult, str]:
    """Record a dispute notice; refuse (and flag) one naming no captured attempt of ours or
    disputing more than it captured."""
    facts = notice.dispute
    if facts is None:
        return reject(notification, "a dispute notice without its dispute")
    with transaction.atomic():
        found = Attempt.objects.filter(account=account)
        found = (
            found.filter(out_trade_no=notice.out_trade_no)
            if notice.out_trade_no
            else found.filter(channel_trade_no=notice.channel_trade_no)
            if notice.channel_trade_no
            else found.none()
        )
        attempt = found.only("pk", "payment_id").first()
        if attempt is None:
            return reject(
                notification,
                f"dispute {facts.dispute_id}: no attempt of account {account.code} is"
                f" {notice.out_trade_no or notice.channel_trade_no!r}",
            )
        payment = Payment.objects.select_for_update(of=("self",)).get(pk=attempt.payment_id)
        attempt = Attempt.objects.select_for_update().get(pk=attempt.pk)
        attempt.payment, attempt.account = payment, account
        problem = _mismatch(account, attempt, notice)
        if problem:
            return reject(notification, f"dispute {facts.dispute_id}: {problem}", attempt=attempt)
        dispute = (
            ProviderDispute.objects.select_for_update()
            .filter(account=account, provider_id=facts.dispute_id)
            .first()
        )
        created = dispute is None
        if created:
            dispute = ProviderDispute.objects.create(
                account=account,
                payment=payment,
                attempt=attempt,
                provider_id=facts.dispute_id[:64],
                amount=notice.amount,
                currency=notice.currency or attempt.channel_currency,
                reason=facts.reason[:64],
                status=facts.status[:64],
                evidence_due_by=facts.evidence_due_by,
                opened_at=notice.occurred_at or timezone.now(),
            )
        elif dispute.payment_id != payment.pk:
            return reject(
                notification,
                f"dispute {facts.dispute_id} was recorded on another payment",
                attempt=attempt,
            )
        dispute.payment, dispute.attempt, dispute.account = payment, attempt, account
        result = _bring_up_to_date(dispute, notice, created=created)
        if notification is not None:
            note_result(notification, result, attempt=attempt)
    return result


def _mismatch(account: ChannelAccount, attempt: Attempt, notice: Notice) -> str:
    if notice.merchant_id and account.merchant_id and notice.merchant_id != account.merchant_id:
        return f"merchant {notice.merchant_id!r} is not this account's ({account.merchant_id!r})"
    if attempt.status != AttemptStatus.SUCCEEDED:
        return f"attempt {attempt.out_trade_no} was never captured (it is {attempt.status})"
    charged, currency = attempt.channel_amount, attempt.channel_currency
    if notice.currency and notice.currency != currency:
        return f"currency {notice.currency} is not the attempt's {currency}"
    if notice.amount <= 0 or notice.amount > charged:
        return f"disputed amount {notice.amount} is not within the captured {charged}"
    return ""


def _bring_up_to_date(
    dispute: ProviderDispute, notice: Notice, *, created: bool
) -> tuple[ApplyResult, str]:
    """Runs under the payment's and the dispute's locks. A closed dispute is final: a late
    or repeated notice about it changes nothing."""
    facts = notice.dispute
    assert facts is not None
    if not created and not dispute.is_open:
        return "duplicate", f"dispute {dispute.provider_id} already {dispute.outcome}"
    changed: list[str] = []
    for name, value in (
        ("status", facts.status[:64]),
        ("reason", facts.reason[:64] or dispute.reason),
        ("evidence_due_by", facts.evidence_due_by or dispute.evidence_due_by),
    ):
        if getattr(dispute, name) != value:
            setattr(dispute, name, value)
            changed.append(name)
    # A lost dispute took the money whatever the last word on withdrawal was.
    withdrawn = facts.funds_withdrawn or facts.outcome == "lost"
    if withdrawn and not dispute.funds_withdrawn:
        dispute.funds_withdrawn = True
        changed.append("funds_withdrawn")
        _post_withdrawn(dispute)
    if facts.fee is not None and facts.fee != dispute.fee:
        if dispute.fee == 0:
            dispute.fee = facts.fee
            _post_fee(dispute)
        elif facts.fee < dispute.fee:  # the channel gave (part of) its fee back on a win
            _post_fee_returned(dispute, dispute.fee - facts.fee)
            dispute.fee = facts.fee
        changed.append("fee")
    closing = facts.outcome != "open"
    if closing:
        dispute.outcome = facts.outcome
        dispute.closed_at = notice.occurred_at or timezone.now()
        changed += ["outcome", "closed_at"]
        if facts.outcome == "lost":
            lost = min(facts.lost_amount or dispute.amount, dispute.amount)
            dispute.lost_amount = lost
            changed.append("lost_amount")
            _post_lost(dispute, lost)
        elif dispute.funds_withdrawn:
            _post_won(dispute, dispute.amount)
    if not created and not changed:
        return "duplicate", f"dispute {dispute.provider_id} unchanged"
    dispute.save()
    payment = dispute.payment
    if created:
        _risk_signal(dispute, lost=False)
        signals.chargeback_opened.send(sender=ProviderDispute, dispute=dispute, payment=payment)
    if closing:
        if dispute.outcome == Outcome.LOST:
            _risk_signal(dispute, lost=True)
        signals.chargeback_closed.send(sender=ProviderDispute, dispute=dispute, payment=payment)
    log.info(
        "dispute %s on %s: %s (%s)",
        dispute.provider_id,
        dispute.account.code,
        dispute.outcome,
        dispute.status,
    )
    what = "opened" if created and not closing else dispute.outcome
    return "applied", f"dispute {dispute.provider_id} {what}"


def _memo(dispute: ProviderDispute, what: str) -> str:
    return f"{dispute.account.code} dispute {dispute.provider_id} {what} ({dispute.reason})"


def _post(dispute: ProviderDispute, *, key: str, kind: str, lines, what: str) -> None:
    ledger.post(
        key=f"{key}:{dispute.pk}",
        kind=kind,
        lines=lines,
        memo=_memo(dispute, what),
        reference=dispute.payment.reference,
        currency=dispute.payment.currency,  # the journal keeps CNY (ProviderDispute.ledger_cny)
    )


def _post_withdrawn(dispute: ProviderDispute) -> None:
    source, amount = funds_account(dispute.attempt), dispute.ledger_cny(dispute.amount)
    lines = [(ledger.CHARGEBACKS, amount), (source, -amount)]
    _post(dispute, key="chargeback", kind="chargeback", lines=lines, what="withdrawn")


def _post_fee(dispute: ProviderDispute) -> None:
    source, fee = funds_account(dispute.attempt), dispute.ledger_cny(dispute.fee)
    lines = [(ledger.channel_fees(dispute.account.code), fee), (source, -fee)]
    _post(dispute, key="chargeback-fee", kind="chargeback_fee", lines=lines, what="fee")


def _post_fee_returned(dispute: ProviderDispute, amount) -> None:
    source, amount = funds_account(dispute.attempt), dispute.ledger_cny(amount)
    lines = [(source, amount), (ledger.channel_fees(dispute.account.code), -amount)]
    _post(dispute, key="chargeback-fee-back", kind="chargeback_fee", lines=lines, what="fee back")


def _post_won(dispute: ProviderDispute, amount) -> None:
    source, amount = funds_account(dispute.attempt), dispute.ledger_cny(amount)
    lines = [(source, amount), (ledger.CHARGEBACKS, -amount)]
    _post(dispute, key="chargeback-won", kind="chargeback_won", lines=lines, what="won")


def _post_lost(dispute: ProviderDispute, lost) -> None:
    """What the buyer got back is a loss; any part of the withdrawn amount not charged back
    returns to the receivable."""
    withdrawn, lost = dispute.ledger_cny(dispute.amount), dispute.ledger_cny(lost)
    back = withdrawn - lost
    lines = [(ledger.CHARGEBACK_LOSSES, lost), (ledger.CHARGEBACKS, -withdrawn)]
    if back > 0:
        lines.append((funds_account(dispute.attempt), back))
    _post(dispute, key="chargeback-lost", kind="chargeback_lost", lines=lines, what="lost")


def _risk_signal(dispute: ProviderDispute, *, lost: bool) -> None:
    payment = dispute.payment
    client = payment.client or {}
    risk_services.chargeback_record(
        user_ref=str(payment.buyer_id),
        device=device_key(client),
        ip=client.get("ip", ""),
        account_ref=client.get("account_ref", ""),
        source=f"{dispute.account.backend}:{dispute.provider_id}",
        lost=lost,
    )
