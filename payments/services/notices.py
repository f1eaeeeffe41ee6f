"""Notifications in, applied exactly once: the notify view's request is stored raw, verified
by its backend, checked against the attempt and applied under the locks of the payment and
all its attempts. Queries, instant payments and settlement files arrive here too, as a
``Notice`` the platform built itself."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from config.prepared import PreparedRead
from payments import health
from payments.accounts import notification_account
from payments.channels.base import Notice, NotificationRejected, NotifyReply
from payments.errors import buyer_message, error_spec
from payments.models import Attempt, ChannelAccount, Notification, Payment, Refund
from payments.payer_refs import payer_ref
from payments.services import transitions
from payments.services.closing import close_quietly
from payments.services.common import ApplyResult
from payments.services.notes import note_result, reject
from payments.services.refunds import refund_double_charge, refund_notice_apply
from payments.states import ATTEMPT_OPEN, AttemptStatus, PaymentStatus, RefundStatus

log = logging.getLogger(__name__)


def notification_receive(
    *,
    account_code: str,
    headers: Mapping[str, str],
    body: bytes,
    remote_addr: str | None,
    method: str = "POST",
) -> NotifyReply:
    """Verify, store, apply once and answer as the channel requires. A verified notice is
    stored raw and whole before it is applied; one that fails verification is stored cut
    short and counted against its address (payments.intake, docs/security.md)."""
    from payments import intake

    account, backend = notification_account(account_code)
    if account is None:
        intake.refusal_count(
            account_code="", reason="unknown_account", size=len(body), remote_addr=remote_addr
        )
        return NotifyReply(status=404, body=b"unknown channel")
    unverified = {
        "account": account,
        "account_code": account_code,
        "method": method,
        "headers": headers,
        "body": body,
        "remote_addr": remote_addr,
    }
    try:
        notice = backend.parse_notification(headers=headers, body=body)
    except NotificationRejected as exc:
        note = intake.unverified_keep(
            **unverified, outcome=Notification.Outcome.REJECTED, detail=str(exc)
        )
        log.warning("notification %s on %s rejected: %s", note.pk, account.code, exc)
        return backend.notification_reply(accepted=False, message=str(exc))
    except Exception as exc:
        note = intake.unverified_keep(
            **unverified, outcome=Notification.Outcome.ERROR, detail=f"{type(exc).__name__}: {exc}"
        )
        log.exception("notification %s on %s could not be parsed", note.pk, account.code)
        return backend.notification_reply(accepted=False, message="error")
    note = Notification.objects.create(
        account=account,
        channel_code=account_code[:40],
        method=method,
        headers=dict(headers),
        body=body,
        body_size=len(body),
        remote_addr=remote_addr or None,
    )
    result, detail = notice_apply(account=account, notice=notice, notification=note)
    return backend.notification_reply(accepted=result != "rejected", message=detail)


# Every notice takes these two locks: compiled once per connection.
_TRADES_PAYMENT_LOCKED = PreparedRead(
    lambda out_trade_no, account_id: Payment.objects.select_for_update(of=("self",)).filter(
        attempts__out_trade_no=out_trade_no, attempts__account_id=account_id
    )[:1],
    out_trade_no=str,
    account_id=int,
)
_PAYMENTS_ATTEMPTS_LOCKED = PreparedRead(
    lambda payment_id: (
        Attempt.objects.select_for_update().defer("routing", "action").filter(payment_id=payment_id)
    ),
    payment_id=int,
)


def notice_apply(
    *, account: ChannelAccount, notice: Notice, notification: Notification | None = None
) -> tuple[ApplyResult, str]:
    """Apply a verified notice exactly once. Repeats, out-of-order and concurrent copies are
    acknowledged and change nothing; a notice that does not match our records is refused and
    flagged."""
    if notice.kind == "dispute":
        from payments.services.chargebacks import dispute_notice_apply

        return dispute_notice_apply(account, notice, notification)
    if notice.kind == "refund":
        contradicted = _refund_contradicted(account, notice, notification)
        if contradicted is not None:
            return contradicted
        return refund_notice_apply(account, notice, notification)
    with transaction.atomic():
        # The trade's payment, found and locked in one statement, then all its attempts,
        # locked (payment before attempts: the order every writer takes them in). Their
        # routing decisions and actions are large documents nothing here reads.
        payment = _TRADES_PAYMENT_LOCKED.first(
            out_trade_no=notice.out_trade_no, account_id=account.pk
        )
        if payment is None:
            return reject(
                notification,
                f"unknown out_trade_no {notice.out_trade_no!r} for account {account.code}",
            )
        attempts = _PAYMENTS_ATTEMPTS_LOCKED.all(payment_id=payment.pk)
        attempt = next(a for a in attempts if a.out_trade_no == notice.out_trade_no)
        others = [a for a in attempts if a is not attempt]
        attempt.payment, attempt.account = payment, account
        mismatch = _mismatch(account, attempt, notice)
        if mismatch:
            return reject(notification, mismatch, attempt=attempt)

        client_unsaved = _payer_ref_keep(payment, account.backend, notice)
        first_notice = notification is not None and attempt.notified_at is None
        if first_notice:
            attempt.notified_at = timezone.now()
        health_outcome = ""
        if notice.outcome == "succeeded":
            if attempt.status == AttemptStatus.SUCCEEDED:
                result: tuple[ApplyResult, str] = ("duplicate", "already succeeded")
            else:
                also = ["client"] if client_unsaved else []
                if _attempt_succeeded(payment, attempt, others, notice, also=also):
                    client_unsaved = False  # written with the payment's success
                health_outcome, result = "succeeded", ("applied", "succeeded")
        elif notice.outcome in {"failed", "closed"}:
            if attempt.status in ATTEMPT_OPEN:
                transitions.apply(
                    attempt,
                    "fail" if notice.outcome == "failed" else "close",
                    error_code=notice.error_code or attempt.error_code,
                    also=["notified_at"],
                )
                health_outcome = _after_attempt_closed(payment, attempt, others, notice.error_code)
                result = ("applied", notice.outcome)
            else:
                result = ("duplicate", f"attempt already {attempt.status}")
        else:
            result = ("duplicate", "still pending")
        if first_notice and result[0] == "duplicate":
            attempt.save(update_fields=["notified_at"])
        if client_unsaved:
            Payment.objects.filter(pk=payment.pk).update(client=payment.client)
        if notification is not None:
            # The notice carries its outcome to the channel's health (health.health_fold):
            # counted exactly once, with the attempt it belongs to.
            notification.health_outcome = health_outcome
            note_result(notification, result, attempt=attempt)
            if health_outcome:
                transaction.on_commit(health.fold_soon)
        elif health_outcome:
            # Learnt by asking the channel (a query, an instant payment, a settlement file):
            # no notification row to carry it, and no notification delay to report.
            health.health_record(attempt.account, attempt.method, attempt.amount, health_outcome)
    return result


def _payer_ref_keep(payment: Payment, backend: str, notice: Notice) -> bool:
    """The buyer's account at the channel, as its answer names it, kept on the payment's
    client (``account_ref``) for risk: the first one named stays. Set on the payment held
    here; True when that is still to be saved (with the payment's success, or on its own)."""
    ref = payer_ref(backend, notice.raw)
    client = payment.client or {}
    if ref and not client.get("account_ref"):
        payment.client = {**client, "account_ref": ref}
        return True
    return False


#: refunds Cardex has not sent to the channel: still awaiting Finance, or declined by it
REFUND_NEVER_SENT = (RefundStatus.REQUESTED, RefundStatus.DECLINED)


def _refund_contradicted(
    account: ChannelAccount, notice: Notice, notification: Notification | None
) -> tuple[ApplyResult, str] | None:
    """A channel's word on a refund that contradicts what Cardex holds is not a repeat to
    acknowledge: it is refused and flagged for staff, and no money or refund state moves.

    - A refund Cardex never sent (awaiting approval or declined) cannot have reached the
      channel: a refund is only sent once it is pending (refunds.refund_decide commits that
      before sending), so a genuine notice never finds one of these.
    - A success for a refund held as failed means its money may have left after all (the
      channel's first answer was wrong, or a retry on its side went through): Finance must
      check with the channel before anyone refunds that buyer again, so it is flagged, not
      swallowed as a duplicate.

    None when the notice agrees with the refund's state (or the refund is unknown:
    refund_notice_apply refuses those)."""
    refund = (
        Refund.objects.filter(refund_no=notice.refund_no, attempt__account=account)
        .only("pk", "status", "refund_no")
        .first()
    )
    if refund is None:
        return None
    if refund.status in REFUND_NEVER_SENT:
        return reject(
            notification,
            f"a {notice.outcome} notice for refund {notice.refund_no!r}, which was never sent "
            f"to the channel (it is {refund.status})",
            refund=refund,
        )
    if refund.status == RefundStatus.FAILED and notice.outcome == "succeeded":
        return reject(
            notification,
            f"a succeeded notice for refund {notice.refund_no!r}, which Cardex holds as failed: "
            f"its {notice.amount} may have left after all; Finance must check with the channel",
            refund=refund,
        )
    return None


def payment_confirm_settled(
    *,
    attempt: Attempt,
    amount: Decimal,
    currency: str,
    channel_trade_no: str = "",
    settled_at: dt.datetime | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> tuple[ApplyResult, str]:
    """The channel's settlement file says it took this attempt's money though no notice
    told us: record the success exactly as its notice would have (capture, signal, the
    shop's delivery). ``evidence`` says where the record came from (file, line)."""
    notice = Notice(
        kind="payment",
        out_trade_no=attempt.out_trade_no,
        outcome="succeeded",
        amount=amount,
        currency=currency,
        channel_trade_no=channel_trade_no,
        occurred_at=settled_at,
        raw=dict(evidence or {}),
    )
    return notice_apply(account=attempt.account, notice=notice)


def _mismatch(account: ChannelAccount, attempt: Attempt, notice: Notice) -> str:
    """Why a notice does not belong to this attempt ('' when it does). A success for another
    amount is flagged on the attempt for staff."""
    if notice.merchant_id and account.merchant_id and notice.merchant_id != account.merchant_id:
        return f"merchant {notice.merchant_id!r} is not this account's ({account.merchant_id!r})"
    # A foreign-currency attempt is matched against what the channel was asked to charge.
    expected, expected_currency = attempt.channel_amount, attempt.channel_currency
    currency = (notice.currency or expected_currency).upper()
    if notice.outcome == "succeeded" and (
        Decimal(notice.amount) != expected or currency != expected_currency
    ):
        attempt.flagged = (
            f"notice amount {notice.amount} {notice.currency} ≠ {expected} {expected_currency}"
        )[:255]
        attempt.save(update_fields=["flagged", "updated_at"])
        return (
            f"amount {notice.amount} {notice.currency} does not match the attempt's"
            f" {expected} {expected_currency}"
        )
    return ""


def _attempt_succeeded(
    payment: Payment, attempt: Attempt, others: list[Attempt], notice: Notice, *, also=()
) -> bool:
    """Runs under the locks of the payment and all its attempts (``others``: the rest).
    True when the payment succeeded with it (saving ``also`` with it), False when this was a
    second success of a paid payment (refunded)."""
    transitions.apply(
        attempt,
        "succeed",
        succeeded_at=notice.occurred_at or timezone.now(),
        channel_trade_no=notice.channel_trade_no or attempt.channel_trade_no,
        also=["notified_at"],
    )
    if payment.is_paid and any(other.status == AttemptStatus.SUCCEEDED for other in others):
        refund_double_charge(payment, attempt)
        return False
    transitions.apply(
        payment,
        "succeed",
        succeeded_at=attempt.succeeded_at,
        failure_code="",
        failure_reason="",
        failure_guidance="",
        also=also,
    )
    for other in others:
        if other.status in ATTEMPT_OPEN:
            transaction.on_commit(lambda pk=other.pk: close_quietly(pk))
    return True


def _after_attempt_closed(
    payment: Payment, attempt: Attempt, others: list[Attempt], error_code: str
) -> str:
    """An attempt failed at the channel (buyer declined, timed out): the payment fails once
    nothing else is open, with the channel's reason for the buyer. Returns the outcome for
    the channel's health: a buyer's decline is not the channel's fault."""
    spec = error_spec(attempt.account.backend, error_code or "")
    outcome = "failed" if spec.counts_against_channel and error_code else "declined"
    if payment.status != PaymentStatus.PENDING or any(o.status in ATTEMPT_OPEN for o in others):
        return outcome
    message = buyer_message(spec, error_code or "DECLINED")
    transitions.apply(
        payment,
        "fail",
        failure_code=error_code or "DECLINED",
        failure_reason=message.reason,
        failure_guidance=message.guidance,
    )
    return outcome
