"""Refunds: full or partial, never above what was paid; sent through the paying attempt's
channel, idempotent there by refund number; settled by the channel's answer, its
notification or the refund chase task."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from payments import fx
from payments.accounts import backend_for
from payments.channels.base import ChannelError, Notice, RefundRequest
from payments.models import Attempt, ChannelAccount, Notification, Payment, Refund
from payments.money import format_money
from payments.services import four_eyes, postings, transitions
from payments.services.common import CENT, ApplyResult, PaymentError
from payments.services.notes import note_result, reject
from payments.states import AttemptStatus, RefundStatus

log = logging.getLogger(__name__)


def refund_request(
    *,
    payment: Payment,
    amount: Decimal,
    reason: str,
    requested_by,
    origin: str = Refund.Origin.STAFF,
) -> Refund:
    """Record a refund of (part of) a paid payment, asked for by ``requested_by`` (a user, or
    ``four_eyes.SYSTEM`` when nobody asked). It is sent to the attempt's channel at once only
    when the four-eyes rule allows (:mod:`payments.services.four_eyes`); otherwise it waits,
    "awaiting approval", for ``refund_decide``.

    Refused when it would take the refunded total above the paid amount (pending and
    requested refunds count, so two clicks cannot refund twice)."""
    four_eyes.check_requester(requested_by)
    amount = Decimal(amount).quantize(CENT)
    if amount <= 0:
        raise PaymentError(_("The refund amount must be positive."))
    reason = (reason or "").strip()
    if not reason:
        raise PaymentError(_("Say why the money goes back."))
    system = requested_by is four_eyes.SYSTEM
    at_once = four_eyes.goes_at_once(requested_by, amount)
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if not locked.is_paid:
            raise PaymentError(
                _("Only paid payments can be refunded; this one is %(status)s.")
                % {"status": locked.get_status_display()}
            )
        sums = (
            locked.refunds.filter(origin__in=[Refund.Origin.SHOP, Refund.Origin.STAFF])
            .exclude(status__in=[RefundStatus.FAILED, RefundStatus.DECLINED])
            .aggregate(s=Sum("amount"), f=Sum("charge_amount"))
        )
        committed = sums["s"] or Decimal("0")
        if committed + amount > locked.amount:
            raise PaymentError(
                _("A refund of %(amount)s exceeds what is left to refund (%(left)s).")
                % {
                    "amount": format_money(amount, locked.currency),
                    "left": format_money(locked.amount - committed, locked.currency),
                }
            )
        attempt = (
            locked.attempts.filter(status=AttemptStatus.SUCCEEDED).order_by("succeeded_at").first()
        )
        self_approved = at_once and not system
        charge = _foreign_share(attempt, amount, committed, sums["f"] or Decimal("0"))
        refund = Refund.objects.create(
            payment=locked,
            attempt=attempt,
            amount=amount,
            currency=locked.currency,
            origin=origin,
            reason=reason[:255],
            requested_by=None if system else requested_by,
            requested_by_system=system,
            approved_by=requested_by if self_approved else None,
            decided_at=timezone.now() if self_approved else None,
            decision_note=_("within the self-approval limit") if self_approved else "",
            status=RefundStatus.PENDING if at_once else RefundStatus.REQUESTED,
            **charge,
        )
        four_eyes.record(refund, actor=requested_by, event="refund_request", detail=reason)
        if self_approved:
            four_eyes.record(
                refund, actor=requested_by, event="refund_approve", detail=refund.decision_note
            )
        if at_once:
            _send_after_commit(refund, locked)
    return refund


def _foreign_share(
    attempt: Attempt | None, amount: Decimal, committed: Decimal, already: Decimal
) -> dict:
    """What a refund returns in the currency the buyer was charged in: the same amount for
    the whole price, the proportional share (exact in minor units) for a part."""
    if attempt is None or not attempt.foreign:
        return {}
    share = fx.refund_share(
        cny_amount=amount,
        cny_total=attempt.amount,
        charged=attempt.charge_amount,
        already=already,
        committed=committed,
        currency=attempt.charge_currency,
    )
    if share <= 0:
        raise PaymentError(
            _("A refund of %(amount)s is less than the smallest %(currency)s amount.")
            % {"amount": format_money(amount), "currency": attempt.charge_currency}
        )
    return {"charge_amount": share, "charge_currency": attempt.charge_currency}


def refund_double_charge(payment: Payment, attempt: Attempt) -> Refund:
    """Two attempts of one payment both took money: give the later one back (never charge
    twice). Runs under the payment's and the attempt's locks."""
    attempt.flagged = "second success on one payment: refunded automatically"
    attempt.save(update_fields=["flagged"])
    refund = Refund.objects.create(
        payment=payment,
        attempt=attempt,
        amount=attempt.amount,
        currency=attempt.currency,
        charge_amount=attempt.charge_amount if attempt.foreign else None,
        charge_currency=attempt.charge_currency if attempt.foreign else "",
        origin=Refund.Origin.DOUBLE_CHARGE,
        reason="duplicate success on another channel",
        requested_by_system=True,
    )
    _send_after_commit(refund, payment)
    return refund


def _send_after_commit(refund: Refund, payment: Payment) -> None:
    """A refund created pending: post it as sent, and send it once that is committed."""
    postings.refund_sent_post(refund, payment)
    transaction.on_commit(lambda: refund_send(refund_id=refund.pk))


def refund_decide(*, refund: Refund, approve: bool, by, reason: str = "") -> Refund:
    """Someone allowed to approve (never the person who asked) approves a waiting refund —
    it is sent to the channel at once — or declines it, saying why: nothing reaches the
    channel and the amount is free to refund again. The decision is final: a second one is
    refused and never overwrites the first."""
    reason = (reason or "").strip()
    four_eyes.check_decider(refund, by, approve=approve, reason=reason)
    with transaction.atomic():
        # The payment before its refund: the order every writer takes the locks in.
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        if locked.status != RefundStatus.REQUESTED:
            raise PaymentError(
                _("This refund is not awaiting approval; it is %(status)s. A decision is final.")
                % {"status": locked.get_status_display()}
            )
        four_eyes.check_decider(locked, by, approve=approve, reason=reason)
        locked.payment = payment
        decided = {"decided_at": timezone.now(), "decision_note": reason[:255]}
        if approve:
            transitions.apply(locked, "approve", approved_by=by, **decided)
            transaction.on_commit(lambda: refund_send(refund_id=locked.pk))
        else:
            transitions.apply(locked, "decline", declined_by=by, **decided)
        four_eyes.record(
            locked,
            actor=by,
            event="refund_approve" if approve else "refund_decline",
            detail=reason,
        )
    return locked


def _refund_request_for(refund: Refund) -> RefundRequest:
    return RefundRequest(
        refund_no=refund.refund_no,
        out_trade_no=refund.attempt.out_trade_no,
        channel_trade_no=refund.attempt.channel_trade_no,
        amount=refund.channel_amount,
        total_amount=refund.attempt.channel_amount,
        currency=refund.channel_currency,
        reason=refund.reason,
        channel_refund_no=refund.channel_refund_no,
    )


def refund_send(*, refund_id: int, query: bool = False) -> str:
    """Send (or re-ask about) a refund; idempotent at the channel by refund number."""
    refund = Refund.objects.select_related("attempt__account", "payment").get(pk=refund_id)
    if refund.status != RefundStatus.PENDING:
        return refund.status
    backend = backend_for(refund.attempt.account)
    try:
        request = _refund_request_for(refund)
        result = backend.query_refund(request) if query else backend.refund(request)
    except ChannelError as exc:
        log.warning("refund %s not accepted yet: %s", refund.refund_no, exc)
        Refund.objects.filter(pk=refund.pk).update(error=str(exc)[:255])
        return "pending"
    if result.outcome == "pending":
        Refund.objects.filter(pk=refund.pk).update(
            channel_refund_no=result.channel_refund_no or refund.channel_refund_no
        )
        return "pending"
    refund_settle(
        refund.pk,
        result.outcome,
        channel_refund_no=result.channel_refund_no,
        error=result.error_code,
    )
    return result.outcome


def refund_notice_apply(
    account: ChannelAccount, notice: Notice, notification: Notification | None
) -> tuple[ApplyResult, str]:
    """The channel's word on a refund: settle it once; repeats change nothing."""
    refund = Refund.objects.filter(refund_no=notice.refund_no, attempt__account=account).first()
    if refund is None:
        return reject(notification, f"unknown refund {notice.refund_no!r}")
    if notice.outcome == "succeeded" and Decimal(notice.amount) != refund.channel_amount:
        return reject(
            notification,
            f"refund amount {notice.amount} does not match {refund.channel_amount}"
            f" {refund.channel_currency}",
            refund=refund,
        )
    if notice.outcome not in {"succeeded", "failed"}:
        result: tuple[ApplyResult, str] = ("duplicate", "refund still processing")
    else:
        changed = refund_settle(
            refund.pk,
            notice.outcome,
            channel_refund_no=notice.channel_refund_no,
            error=notice.error_code,
        )
        if changed:
            result = ("applied", notice.outcome)
        else:
            result = ("duplicate", f"refund already {refund.status}")
    if notification is not None:
        note_result(notification, result, refund=refund)
    return result


def refund_settle(
    refund_id: int, outcome: str, *, channel_refund_no: str = "", error: str = ""
) -> bool:
    """Record the channel's final answer on a pending refund; False when it was settled
    already. A refund that went back to the buyer counts against the payment (a duplicate
    capture's refund gives back the extra money, not the payment's)."""
    payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
    with transaction.atomic():
        # The payment before its refund: the order every writer takes the locks in.
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        refund = (
            Refund.objects.select_for_update(of=("self",))
            .select_related("attempt__account")
            .get(pk=refund_id)
        )
        if refund.status != RefundStatus.PENDING:
            return False
        refund.payment = payment
        channel_refund_no = channel_refund_no or refund.channel_refund_no
        if outcome != "succeeded":
            transitions.apply(
                refund,
                "fail",
                channel_refund_no=channel_refund_no,
                error=error or "refused by the channel",
            )
            return True
        if refund.origin != Refund.Origin.DOUBLE_CHARGE:
            refunded = payment.refunded_amount + refund.amount
            whole = refunded >= payment.amount
            transitions.apply(
                payment, "refund_whole" if whole else "refund_part", refunded_amount=refunded
            )
        transitions.apply(
            refund, "succeed", channel_refund_no=channel_refund_no, settled_at=timezone.now()
        )
        return True
