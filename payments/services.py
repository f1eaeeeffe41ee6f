"""The payment platform's services: start a payment (risk → routing → channel, with
failover), apply notices exactly once, chase lost callbacks, refund, and post every money
movement to the journal.

Channel calls never run inside a database transaction: a slow provider must not hold row
locks. State changes are short transactions that lock Payment first, then Attempt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from payments import health, ledger, signals
from payments.accounts import backend_for, notification_account
from payments.channels.base import (
    ChannelDeclined,
    ChannelError,
    ChannelTimeout,
    ClientInfo,
    CreateRequest,
    Notice,
    QueryResult,
    RefundRequest,
)
from payments.channels.registry import backend_class
from payments.errors import NO_CHANNEL, buyer_message, error_spec
from payments.models import Attempt, ChannelAccount, Method, Notification, Payment, Refund
from payments.states import ATTEMPT_OPEN, AttemptStatus, PaymentStatus, RefundStatus

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
ApplyResult = Literal["applied", "duplicate", "rejected"]


class PaymentError(Exception):
    """A request the platform refuses (bad amount, unknown method, nothing to refund…)."""


# ------------------------------------------------------------------------------------------------
# Starting a payment


def payment_start(
    *,
    buyer,
    reference: str,
    amount: Decimal,
    currency: str,
    method: str,
    subject: str,
    client: ClientInfo,
    return_url: str,
    expires_at: dt.datetime,
    instalments: int | None = None,
    risk_facts: Mapping[str, Any] | None = None,
) -> Payment:
    """Create a payment, score it, and open it at the best channel (failing over as needed).

    The answer is the Payment in one of: pending (an action for the buyer), succeeded (settled
    at once, e.g. balance), failed (reason + guidance), challenge, review or blocked.
    """
    if method not in Method.values:
        raise PaymentError(_("Unknown payment method %(method)s.") % {"method": method})
    amount = Decimal(amount)
    if amount <= 0 or amount != amount.quantize(CENT):
        raise PaymentError(_("The amount must be positive, with at most two decimals."))
    if method == Method.CARD_INSTALMENTS and not instalments:
        instalments = 3
    payment = Payment.objects.create(
        reference=reference,
        buyer=buyer,
        method=method,
        amount=amount,
        currency=currency,
        subject=subject[:128],
        client={
            "ip": client.ip, "user_agent": client.user_agent[:255], "device": client.device,
            "language": client.language, "region": client.region, "return_url": return_url,
        },
        instalments=instalments,
        expires_at=expires_at,
    )
    _supersede_open_payments(reference=reference, buyer=buyer, keep=payment)
    decision = _risk_assess(payment, risk_facts or {})
    if decision != "allow":
        return Payment.objects.get(pk=payment.pk)
    return _open_at_channel(payment)


def _supersede_open_payments(*, reference: str, buyer, keep: Payment) -> None:
    """The buyer switched methods: close what the earlier payment of the same thing left open
    at its channel so it cannot be paid any more. Where a channel cannot close, the earlier
    payment stays pending; if it is paid anyway the shop refunds the second success."""
    earlier = Payment.objects.filter(reference=reference, buyer=buyer, status=PaymentStatus.PENDING).exclude(pk=keep.pk)
    for payment in earlier:
        for attempt_id in payment.attempts.filter(status__in=ATTEMPT_OPEN).values_list("pk", flat=True):
            _close_quietly(attempt_id)
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if locked.status == PaymentStatus.PENDING and not locked.attempts.filter(status__in=ATTEMPT_OPEN).exists():
                locked.transition(PaymentStatus.CANCELLED)
                locked.failure_code = "SUPERSEDED"
                locked.save()


def payment_challenge_answer(*, payment: Payment, code: str) -> Payment:
    """The buyer typed the one-time code; a right answer lets the payment proceed."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status != PaymentStatus.CHALLENGE:
            raise PaymentError(_("This payment is not waiting for a code."))
        challenge = dict(payment.risk.get("challenge") or {})
        tries = int(challenge.get("tries", 0)) + 1
        challenge["tries"] = tries
        good = secrets.compare_digest(challenge.get("digest", ""), _digest(payment, code.strip()))
        if not good:
            if tries >= 5:
                payment.transition(PaymentStatus.BLOCKED)
                payment.failure_code, payment.failure_reason = "CHALLENGE_FAILED", _("Too many wrong codes.")
            payment.risk = {**payment.risk, "challenge": challenge}
            payment.save()
            if payment.status == PaymentStatus.BLOCKED:
                return payment
            raise PaymentError(_("That code is not right. Check the latest e-mail and try again."))
        challenge["passed_at"] = timezone.now().isoformat()
        payment.risk = {**payment.risk, "challenge": challenge}
        payment.transition(PaymentStatus.CREATED)
        payment.save()
    return _open_at_channel(payment)


def payment_review_decide(*, payment: Payment, approve: bool, reviewer: str) -> Payment:
    """A risk analyst releases or blocks a payment held for review. Released, it is opened at
    a channel as if risk had allowed it; either way the shop hears of it, and the assessment
    records who decided what."""
    from risk.models import Assessment, Decision

    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status != PaymentStatus.REVIEW:
            raise PaymentError(_("This payment is not held for review."))
        payment.risk = {**payment.risk, "reviewed_by": reviewer, "review": "approved" if approve else "blocked"}
        if payment.risk.get("assessment_id"):
            Assessment.objects.filter(pk=payment.risk["assessment_id"]).update(
                reviewed_by=reviewer[:150], review_outcome=Decision.ALLOW if approve else Decision.BLOCK,
            )
        if not approve:
            payment.transition(PaymentStatus.BLOCKED)
            payment.failure_code, payment.failure_reason = "REVIEW_BLOCKED", _("Blocked after review.")
            payment.failure_guidance = _("Contact support if you think this is a mistake.")
            payment.save()
            signals.payment_status_changed.send(sender=Payment, payment=payment)
            return payment
        payment.transition(PaymentStatus.CREATED)
        payment.save()
    payment = _open_at_channel(payment)
    if payment.status == PaymentStatus.PENDING:  # success and failure have their own signals
        signals.payment_status_changed.send(sender=Payment, payment=payment)
    return payment


def _digest(payment: Payment, code: str) -> str:
    return hashlib.sha256(f"{payment.public_id}:{code}:{settings.SECRET_KEY}".encode()).hexdigest()


def _risk_assess(payment: Payment, facts: Mapping[str, Any]) -> str:
    """Score before any channel is asked (DESIGN.md §6). Returns allow/challenge/review/block."""
    from risk.engine import TransactionFacts, assess

    history = Payment.objects.filter(buyer=payment.buyer).exclude(pk=payment.pk)
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    ip, device = payment.client.get("ip", ""), payment.client.get("user_agent", "")
    paid = history.filter(status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED])
    avg = paid.aggregate(s=Sum("amount"))["s"]
    paid_count = paid.count()
    result = assess(
        TransactionFacts(
            subject=f"payment:{payment.public_id}",
            user_ref=str(payment.buyer_id),
            amount=payment.amount,
            method=payment.method,
            ip=ip,
            device=device,
            email=payment.buyer.email,
            account_age_days=int(facts.get("account_age_days", (timezone.now() - payment.buyer.date_joined).days)),
            good_orders=int(facts.get("good_orders", paid_count)),
            disputes=int(facts.get("disputes", 0)),
            average_amount=(avg / paid_count).quantize(CENT) if paid_count and avg else None,
            user_payments_last_hour=history.filter(created_at__gte=hour_ago).count(),
            ip_payments_last_hour=Payment.objects.filter(created_at__gte=hour_ago, client__ip=ip).exclude(pk=payment.pk).count() if ip else 0,
            new_device=bool(device) and paid_count > 0 and not paid.filter(client__user_agent=device).exists(),
            new_ip=bool(ip) and paid_count > 0 and not paid.filter(client__ip=ip).exists(),
            brand_high_risk=bool(facts.get("brand_high_risk", False)),
            seller_linked=bool(facts.get("seller_linked", False)),
            seller_ref=str(facts.get("seller_id", "")),
        )
    )
    risk = {"score": result.score, "decision": result.decision, "reasons": list(result.reasons), "assessment_id": result.assessment_id}
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if result.decision == "block":
            payment.transition(PaymentStatus.BLOCKED)
            payment.failure_code = "RISK_BLOCKED"
            payment.failure_reason = _("This payment cannot be accepted.")
            payment.failure_guidance = _("Contact support if you think this is a mistake.")
        elif result.decision == "review":
            payment.transition(PaymentStatus.REVIEW)
        elif result.decision == "challenge":
            code = f"{secrets.randbelow(10**6):06d}"
            risk["challenge"] = {"digest": _digest(payment, code), "tries": 0, "sent_at": timezone.now().isoformat()}
            payment.transition(PaymentStatus.CHALLENGE)
            _send_challenge_code(payment, code)
        payment.risk = risk
        payment.save()
        if result.decision != "allow":
            signals.payment_status_changed.send(sender=Payment, payment=payment)
    return result.decision


def _send_challenge_code(payment: Payment, code: str) -> None:
    from django.core.mail import send_mail

    email = payment.buyer.email
    if not email:
        return
    transaction.on_commit(
        lambda: send_mail(
            _("Your Cardex verification code"),
            _("Your one-time code is %(code)s. It confirms a payment of %(amount)s %(currency)s.")
            % {"code": code, "amount": payment.amount, "currency": payment.currency},
            None,
            [email],
            fail_silently=True,
        )
    )


def _open_at_channel(payment: Payment) -> Payment:
    """Walk the routing order: create at the best account; on a create error, an unreachable
    channel or a soft decline move to the next; stop on a hard decline or an unknown outcome
    that cannot be resolved (DESIGN.md §3 failover)."""

    tried = list(payment.attempts.values_list("account__code", flat=True))
    last_error: tuple[str, str] | None = None  # (backend, code) of the last failure
    for _step in range(settings.PAYMENTS_MAX_ATTEMPTS):
        decision = health.route(payment.method, payment.amount, payment.currency, exclude_codes=tuple(tried))
        if not decision.winner:
            break
        account = ChannelAccount.objects.get(code=decision.winner)
        tried.append(account.code)
        attempt = Attempt.objects.create(
            payment=payment, account=account, method=payment.method, amount=payment.amount,
            currency=payment.currency, fee=account.fee_for(payment.amount), routing=decision.as_dict(),
            instalments=payment.instalments,
        )
        if _create_at_channel(payment, attempt) != "next":
            return Payment.objects.get(pk=payment.pk)
        attempt.refresh_from_db()
        last_error = (account.backend, attempt.error_code)
    return _payment_fail(payment, last_error)


def _create_request(payment: Payment, attempt: Attempt) -> CreateRequest:
    client = payment.client or {}
    return CreateRequest(
        out_trade_no=attempt.out_trade_no,
        amount=attempt.amount,
        currency=attempt.currency,
        subject=payment.subject or payment.reference,
        method=attempt.method,
        expires_at=payment.expires_at or timezone.now() + dt.timedelta(minutes=15),
        return_url=client.get("return_url", ""),
        client=ClientInfo(
            ip=client.get("ip", ""), user_agent=client.get("user_agent", ""),
            device=client.get("device", "unknown"), language=client.get("language", ""),
            region=client.get("region", ""),
        ),
        instalments=attempt.instalments,
        buyer_ref=str(payment.buyer_id),
    )


def _create_at_channel(payment: Payment, attempt: Attempt) -> Literal["opened", "next", "stop"]:

    account = attempt.account
    backend = backend_for(account)
    try:
        result = backend.create(_create_request(payment, attempt))
    except ChannelTimeout as exc:
        health.health_record(account, attempt.method, attempt.amount, "timeout")
        return _resolve_unknown(payment, attempt, exc)
    except ChannelDeclined as exc:
        spec = error_spec(account.backend, exc.code)
        health.health_record(account, attempt.method, attempt.amount, "failed" if spec.counts_against_channel else "declined")
        _attempt_set(attempt, AttemptStatus.FAILED, error_code=exc.code, error_message=str(exc))
        if spec.action == "failover":
            return "next"
        if spec.action == "step_up":
            return _step_up(payment, attempt)
        _payment_fail(payment, (account.backend, exc.code))
        return "stop"
    except ChannelError as exc:
        health.health_record(account, attempt.method, attempt.amount, "error")
        _attempt_set(attempt, AttemptStatus.FAILED, error_code=exc.code or "UNAVAILABLE", error_message=str(exc))
        return "next"
    except Exception as exc:  # a backend bug must not lose the attempt: record it, fail over
        log.exception("channel %s crashed creating %s", account.code, attempt.out_trade_no)
        health.health_record(account, attempt.method, attempt.amount, "error")
        _attempt_set(attempt, AttemptStatus.FAILED, error_code="INTERNAL", error_message=type(exc).__name__)
        return "next"

    with transaction.atomic():
        locked_payment = Payment.objects.select_for_update().get(pk=payment.pk)
        locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
        locked.action = result.action.as_dict()
        locked.channel_trade_no = result.channel_trade_no or locked.channel_trade_no
        if locked.status == AttemptStatus.CREATED:
            locked.transition(AttemptStatus.PENDING)
        locked.next_query_at = timezone.now() + dt.timedelta(seconds=60)
        locked.save()
        if locked_payment.status in {PaymentStatus.CREATED}:
            locked_payment.transition(PaymentStatus.PENDING)
            locked_payment.save()
    if result.outcome == "succeeded":
        notice = Notice(kind="payment", out_trade_no=attempt.out_trade_no, outcome="succeeded",
                        amount=attempt.amount, currency=attempt.currency, channel_trade_no=result.channel_trade_no)
        notice_apply(account=account, notice=notice)
    return "opened"


def _resolve_unknown(payment: Payment, attempt: Attempt, exc: ChannelError) -> Literal["opened", "next", "stop"]:
    """A create that timed out may still have opened a trade: ask, and close it, before any
    other channel is tried — so the buyer can never pay twice."""
    _attempt_set(attempt, AttemptStatus.UNKNOWN, error_code=exc.code or "TIMEOUT", error_message=str(exc))
    backend = backend_for(attempt.account)
    try:
        result = backend.query(out_trade_no=attempt.out_trade_no)
    except ChannelError:
        result = QueryResult(outcome="unknown")
    if result.outcome == "succeeded":
        _apply_query(attempt, result)
        return "opened"
    if result.outcome in {"failed", "closed"}:
        _attempt_set(attempt, AttemptStatus.FAILED)
        return "next"
    if not _close_at_channel(attempt, backend):
        # Still unknown and not closable: leave it for the query task and do not open a
        # second trade the buyer could pay as well.
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if locked.status == PaymentStatus.CREATED:
                locked.transition(PaymentStatus.PENDING)
                locked.failure_code = "TIMEOUT"
                locked.save()
        return "stop"
    _attempt_set(attempt, AttemptStatus.CANCELLED)
    return "next"


def _step_up(payment: Payment, attempt: Attempt) -> Literal["stop"]:
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        locked.risk = {**locked.risk, "challenge": {"digest": _digest(locked, code), "tries": 0, "by": "channel"}}
        locked.transition(PaymentStatus.CHALLENGE)
        locked.save()
        _send_challenge_code(locked, code)
        signals.payment_status_changed.send(sender=Payment, payment=locked)
    return "stop"


def _attempt_set(attempt: Attempt, status: str | None = None, **fields) -> None:
    with transaction.atomic():
        locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
        if status and status != locked.status:
            locked.transition(status)
        for name, value in fields.items():
            setattr(locked, name, value[:255] if isinstance(value, str) else value)
        locked.save()


def _payment_fail(payment: Payment, error: tuple[str, str] | None) -> Payment:
    backend, code = error if error else ("", "NO_CHANNEL")
    spec = error_spec(backend, code) if error else NO_CHANNEL
    message = buyer_message(spec, code)
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status in {PaymentStatus.CREATED, PaymentStatus.PENDING, PaymentStatus.CHALLENGE}:
            if locked.attempts.filter(status__in=ATTEMPT_OPEN).exists():
                return locked  # something is still open at a channel: let it settle
            locked.transition(PaymentStatus.FAILED)
            locked.failure_code = code
            locked.failure_reason = message.reason[:255]
            locked.failure_guidance = message.guidance[:255]
            locked.save()
            signals.payment_failed.send(sender=Payment, payment=locked)
        return locked


# ------------------------------------------------------------------------------------------------
# Notifications


def notification_receive(*, account_code: str, headers: Mapping[str, str], body: bytes, remote_addr: str | None, method: str = "POST"):
    """Verify, store, apply once and answer as the channel requires. A verified notice is
    stored raw and whole before it is applied; one that fails verification is stored cut
    short and counted against its address (payments.intake, docs/security.md)."""
    from payments import intake
    from payments.channels.base import NotificationRejected, NotifyReply

    account, backend = notification_account(account_code)
    if account is None:
        intake.refusal_count(
            account_code="", reason="unknown_account", size=len(body), remote_addr=remote_addr
        )
        return NotifyReply(status=404, body=b"unknown channel")
    unverified = {
        "account": account, "account_code": account_code, "method": method, "headers": headers,
        "body": body, "remote_addr": remote_addr,
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
        account=account, channel_code=account_code[:40], method=method, headers=dict(headers),
        body=body, body_size=len(body), remote_addr=remote_addr or None,
    )
    result, detail = notice_apply(account=account, notice=notice, notification=note)
    return backend.notification_reply(accepted=result != "rejected", message=detail)


def _note_outcome(note: Notification, outcome: str, detail: str, *, flagged: bool = False, attempt=None, refund=None) -> None:
    note.outcome, note.detail, note.flagged = outcome, detail[:2000], flagged
    note.attempt, note.refund = attempt or note.attempt, refund or note.refund
    note.save(update_fields=["outcome", "detail", "flagged", "attempt", "refund", "health_outcome"])


def notice_apply(*, account: ChannelAccount, notice: Notice, notification: Notification | None = None) -> tuple[ApplyResult, str]:
    """Apply a verified notice exactly once. Repeats, out-of-order and concurrent copies are
    acknowledged and change nothing; a notice that does not match our records is refused and
    flagged."""
    if notice.kind == "refund":
        return _refund_notice_apply(account, notice, notification)
    with transaction.atomic():
        # The trade's payment, found and locked in one statement, then all its attempts,
        # locked (payment before attempts: the order every writer takes them in). Their
        # routing decisions and actions are large documents nothing here reads.
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .filter(attempts__out_trade_no=notice.out_trade_no, attempts__account=account).first()
        )
        if payment is None:
            return _reject(notification, f"unknown out_trade_no {notice.out_trade_no!r} for account {account.code}")
        attempts = list(Attempt.objects.select_for_update().defer("routing", "action").filter(payment_id=payment.pk))
        attempt = next(a for a in attempts if a.out_trade_no == notice.out_trade_no)
        others = [a for a in attempts if a is not attempt]
        attempt.payment, attempt.account = payment, account
        if notice.merchant_id and account.merchant_id and notice.merchant_id != account.merchant_id:
            return _reject(notification, f"merchant {notice.merchant_id!r} is not this account's ({account.merchant_id!r})", attempt=attempt)
        if notice.outcome == "succeeded" and (Decimal(notice.amount) != attempt.amount or (notice.currency or attempt.currency) != attempt.currency):
            attempt.flagged = f"notice amount {notice.amount} {notice.currency} ≠ {attempt.amount} {attempt.currency}"[:255]
            attempt.save(update_fields=["flagged", "updated_at"])
            return _reject(notification, f"amount {notice.amount} {notice.currency} does not match the attempt's {attempt.amount} {attempt.currency}", attempt=attempt)

        first_notice = notification is not None and attempt.notified_at is None
        if first_notice:
            attempt.notified_at = timezone.now()
        health_outcome = ""
        if notice.outcome == "succeeded":
            if attempt.status == AttemptStatus.SUCCEEDED:
                result: tuple[ApplyResult, str] = ("duplicate", "already succeeded")
            else:
                _attempt_succeeded(payment, attempt, others, notice)
                health_outcome, result = "succeeded", ("applied", "succeeded")
        elif notice.outcome in {"failed", "closed"}:
            if attempt.status in ATTEMPT_OPEN:
                attempt.transition(AttemptStatus.FAILED if notice.outcome == "failed" else AttemptStatus.CANCELLED)
                attempt.error_code = notice.error_code or attempt.error_code
                attempt.save()
                health_outcome = _after_attempt_closed(payment, attempt, others, notice.error_code)
                result = ("applied", notice.outcome)
            else:
                result = ("duplicate", f"attempt already {attempt.status}")
        else:
            result = ("duplicate", "still pending")
        if first_notice and result[0] == "duplicate":
            attempt.save(update_fields=["notified_at"])
        if notification is not None:
            # The notice carries its outcome to the channel's health (health.health_fold):
            # counted exactly once, with the attempt it belongs to.
            notification.health_outcome = health_outcome
            _note_outcome(notification, Notification.Outcome.APPLIED if result[0] == "applied" else Notification.Outcome.DUPLICATE, result[1], attempt=attempt)
            if health_outcome:
                transaction.on_commit(health.fold_soon)
        elif health_outcome:
            # Learnt by asking the channel (a query, an instant payment, a settlement file):
            # no notification row to carry it, and no notification delay to report.
            health.health_record(attempt.account, attempt.method, attempt.amount, health_outcome)
    return result


def _reject(notification: Notification | None, detail: str, **kwargs) -> tuple[ApplyResult, str]:
    log.warning("notice refused: %s", detail)
    if notification is not None:
        _note_outcome(notification, Notification.Outcome.REJECTED, detail, flagged=True, **kwargs)
    return "rejected", detail


def _attempt_succeeded(payment: Payment, attempt: Attempt, others: list[Attempt], notice: Notice) -> None:
    """Runs under the locks of the payment and all its attempts (``others``: the rest)."""
    attempt.transition(AttemptStatus.SUCCEEDED)
    attempt.succeeded_at = notice.occurred_at or timezone.now()
    attempt.channel_trade_no = notice.channel_trade_no or attempt.channel_trade_no
    attempt.save(update_fields=["status", "succeeded_at", "channel_trade_no", "notified_at", "updated_at"])
    _post_capture(payment, attempt)

    if payment.is_paid and any(other.status == AttemptStatus.SUCCEEDED for other in others):
        # Two attempts of one payment both took money: give the later one back (never charge twice).
        attempt.flagged = "second success on one payment: refunded automatically"
        attempt.save(update_fields=["flagged"])
        refund = Refund.objects.create(
            payment=payment, attempt=attempt, amount=attempt.amount, currency=attempt.currency,
            origin=Refund.Origin.DOUBLE_CHARGE, reason="duplicate success on another channel",
        )
        _post_refund_sent(refund, payment)
        transaction.on_commit(lambda: refund_send(refund_id=refund.pk))
        return
    payment.transition(PaymentStatus.SUCCEEDED)
    payment.succeeded_at = attempt.succeeded_at
    payment.failure_code = payment.failure_reason = payment.failure_guidance = ""
    payment.save(update_fields=["status", "succeeded_at", "failure_code", "failure_reason", "failure_guidance", "updated_at"])
    for other in others:
        if other.status in ATTEMPT_OPEN:
            transaction.on_commit(lambda pk=other.pk: _close_quietly(pk))
    if payment.reference.startswith("topup:"):
        ledger.post(
            key=f"topup:{payment.public_id}", kind="wallet_topup", reference=payment.reference,
            lines=[(ledger.CLEARING, payment.amount), (ledger.buyer_wallet(payment.buyer_id), -payment.amount)],
            memo="wallet top-up",
        )
    signals.payment_succeeded.send(sender=Payment, payment=payment)


def _post_capture(payment: Payment, attempt: Attempt) -> None:
    """One entry per captured attempt: the money in, and the channel's fee out of it."""
    source = _funds_account(attempt)
    lines = [(source, attempt.amount), (ledger.CLEARING, -attempt.amount)]
    if attempt.fee > 0 and not backend_class(attempt.account.backend).settles_from_wallet:
        lines += [(ledger.channel_fees(attempt.account.code), attempt.fee), (source, -attempt.fee)]
    ledger.post(
        key=f"capture:{attempt.out_trade_no}", kind="payment_captured", reference=payment.reference,
        lines=lines, memo=f"{attempt.account.code} {attempt.out_trade_no}", currency=attempt.currency,
    )


def _funds_account(attempt: Attempt) -> str:
    if backend_class(attempt.account.backend).settles_from_wallet:
        return ledger.buyer_wallet(attempt.payment.buyer_id)
    return ledger.channel_receivable(attempt.account.code)


def _after_attempt_closed(payment: Payment, attempt: Attempt, others: list[Attempt], error_code: str) -> str:
    """An attempt failed at the channel (buyer declined, timed out): the payment fails once
    nothing else is open, with the channel's reason for the buyer. Returns the outcome for
    the channel's health: a buyer's decline is not the channel's fault."""
    spec = error_spec(attempt.account.backend, error_code or "")
    outcome = "failed" if spec.counts_against_channel and error_code else "declined"
    if payment.status != PaymentStatus.PENDING or any(other.status in ATTEMPT_OPEN for other in others):
        return outcome
    message = buyer_message(spec, error_code or "DECLINED")
    payment.transition(PaymentStatus.FAILED)
    payment.failure_code = error_code or "DECLINED"
    payment.failure_reason = message.reason[:255]
    payment.failure_guidance = message.guidance[:255]
    payment.save()
    signals.payment_failed.send(sender=Payment, payment=payment)
    return outcome


def _close_at_channel(attempt: Attempt, backend=None) -> bool:
    """Close an unpaid trade at its channel; True only when the channel really closed it. A
    channel that cannot close (UnionPay, PayPal: the trade lapses on its own) never counts as
    closed, so nothing treats its trade as unpayable before it has lapsed."""
    backend = backend or backend_for(attempt.account)
    if not type(backend).supports_close:
        return False
    try:
        backend.close(out_trade_no=attempt.out_trade_no, channel_trade_no=attempt.channel_trade_no)
    except ChannelError as exc:
        log.info("could not close %s: %s (the query task will settle it)", attempt.out_trade_no, exc)
        return False
    return True


def _close_quietly(attempt_id: int) -> None:
    attempt = Attempt.objects.select_related("account").get(pk=attempt_id)
    if attempt.status in ATTEMPT_OPEN and _close_at_channel(attempt):
        _attempt_set(attempt, AttemptStatus.CANCELLED)


# ------------------------------------------------------------------------------------------------
# Lost callbacks


def attempt_query(*, attempt_id: int) -> str:
    """Ask the channel about one open attempt (掉单 recovery); back off while it stays open,
    close it at the channel once its payment has expired."""
    attempt = Attempt.objects.select_related("account", "payment").get(pk=attempt_id)
    if attempt.status not in ATTEMPT_OPEN:
        return attempt.status
    backend = backend_for(attempt.account)
    try:
        result = backend.query(out_trade_no=attempt.out_trade_no, channel_trade_no=attempt.channel_trade_no)
    except ChannelError as exc:
        result = QueryResult(outcome="unknown", error_code=exc.code)
    if result.outcome == "succeeded":
        _apply_query(attempt, result)
        return "succeeded"
    if result.outcome in {"failed", "closed"}:
        notice = Notice(kind="payment", out_trade_no=attempt.out_trade_no, outcome=result.outcome,
                        amount=attempt.amount, currency=attempt.currency, error_code=result.error_code)
        notice_apply(account=attempt.account, notice=notice)
        return result.outcome
    expires_at = attempt.payment.expires_at
    # Past expiry: close the trade, or — for channels that cannot close — let the lapse the
    # trade was created with (the same expiry) count as its close. A success that still
    # arrives later is applied as late money and the shop refunds or delivers it.
    expired = bool(expires_at and expires_at < timezone.now())
    if expired and (_close_at_channel(attempt, backend) or not type(backend).supports_close):
        with transaction.atomic():
            payment = Payment.objects.select_for_update().get(pk=attempt.payment_id)
            locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
            if locked.status in ATTEMPT_OPEN:
                locked.transition(AttemptStatus.EXPIRED)
                locked.save()
                if payment.status == PaymentStatus.PENDING and not payment.attempts.filter(status__in=ATTEMPT_OPEN).exists():
                    payment.transition(PaymentStatus.EXPIRED)
                    payment.save()
                    signals.payment_failed.send(sender=Payment, payment=payment)
        return "expired"
    with transaction.atomic():
        locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
        locked.query_count += 1
        backoff = min(15 * 2 ** min(locked.query_count, 7), 1800)
        locked.next_query_at = timezone.now() + dt.timedelta(seconds=backoff)
        locked.save(update_fields=["query_count", "next_query_at", "updated_at"])
    return "pending"


def _apply_query(attempt: Attempt, result: QueryResult) -> None:
    notice = Notice(
        kind="payment", out_trade_no=attempt.out_trade_no, outcome="succeeded",
        amount=result.amount if result.amount is not None else attempt.amount,
        currency=result.currency or attempt.currency, channel_trade_no=result.channel_trade_no,
        occurred_at=result.paid_at,
    )
    notice_apply(account=attempt.account, notice=notice)


def attempts_due_for_query(*, limit: int = 200) -> list[int]:
    now = timezone.now()
    return list(
        Attempt.objects.filter(status__in=ATTEMPT_OPEN, next_query_at__lte=now)
        .order_by("next_query_at").values_list("pk", flat=True)[:limit]
    )


# ------------------------------------------------------------------------------------------------
# Refunds


def refund_request(
    *, payment: Payment, amount: Decimal, reason: str, origin: str = Refund.Origin.STAFF, requested_by=None,
    needs_approval: bool = False,
) -> Refund:
    """Record a refund of (part of) a paid payment and send it to the attempt's channel — or,
    with ``needs_approval`` (Support opened it), keep it for Finance to approve or decline.

    Refused when it would take the refunded total above the paid amount (pending and
    requested refunds count, so two clicks cannot refund twice)."""
    amount = Decimal(amount).quantize(CENT)
    if amount <= 0:
        raise PaymentError(_("The refund amount must be positive."))
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if not locked.is_paid:
            raise PaymentError(_("Only paid payments can be refunded; this one is %(status)s.") % {"status": locked.get_status_display()})
        committed = (
            locked.refunds.filter(origin__in=[Refund.Origin.SHOP, Refund.Origin.STAFF])
            .exclude(status__in=[RefundStatus.FAILED, RefundStatus.DECLINED]).aggregate(s=Sum("amount"))["s"]
            or Decimal("0")
        )
        if committed + amount > locked.amount:
            raise PaymentError(
                _("A refund of %(amount)s exceeds what is left to refund (%(left)s).") % {"amount": amount, "left": locked.amount - committed}
            )
        attempt = locked.attempts.filter(status=AttemptStatus.SUCCEEDED).order_by("succeeded_at").first()
        refund = Refund.objects.create(
            payment=locked, attempt=attempt, amount=amount, currency=locked.currency,
            origin=origin, reason=reason[:255], requested_by=requested_by,
            status=RefundStatus.REQUESTED if needs_approval else RefundStatus.PENDING,
        )
        if not needs_approval:
            _post_refund_sent(refund, locked)
            transaction.on_commit(lambda: refund_send(refund_id=refund.pk))
    return refund


def _post_refund_sent(refund: Refund, payment: Payment) -> None:
    """A refund on its way: the money leaves clearing for what the platform owes buyers until
    the channel confirms (or refuses) it."""
    ledger.post(
        key=f"refund-sent:{refund.refund_no}", kind="refund_sent", reference=payment.reference,
        lines=[(ledger.CLEARING, refund.amount), (ledger.REFUNDS_IN_FLIGHT, -refund.amount)],
        memo=refund.reason, currency=refund.currency,
    )


def refund_decide(*, refund: Refund, approve: bool, by) -> Refund:
    """Finance approves a refund Support opened (it is sent to the channel at once) or declines
    it (nothing reaches the channel, and the amount is free to refund again)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)  # the order every writer locks in
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        if locked.status != RefundStatus.REQUESTED:
            raise PaymentError(_("This refund is not awaiting approval; it is %(status)s.") % {"status": locked.get_status_display()})
        locked.transition(RefundStatus.PENDING if approve else RefundStatus.DECLINED)
        locked.approved_by = by
        locked.save(update_fields=["status", "approved_by"])
        if approve:
            _post_refund_sent(locked, payment)
            transaction.on_commit(lambda: refund_send(refund_id=locked.pk))
    return locked


def _refund_request_for(refund: Refund) -> RefundRequest:
    return RefundRequest(
        refund_no=refund.refund_no, out_trade_no=refund.attempt.out_trade_no,
        channel_trade_no=refund.attempt.channel_trade_no, amount=refund.amount,
        total_amount=refund.attempt.amount, currency=refund.currency, reason=refund.reason,
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
        Refund.objects.filter(pk=refund.pk).update(channel_refund_no=result.channel_refund_no or refund.channel_refund_no)
        return "pending"
    _refund_settle(refund.pk, result.outcome, channel_refund_no=result.channel_refund_no, error=result.error_code)
    return result.outcome


def _refund_notice_apply(account: ChannelAccount, notice: Notice, notification: Notification | None) -> tuple[ApplyResult, str]:
    refund = Refund.objects.filter(refund_no=notice.refund_no, attempt__account=account).first()
    if refund is None:
        return _reject(notification, f"unknown refund {notice.refund_no!r}")
    if notice.outcome == "succeeded" and Decimal(notice.amount) != refund.amount:
        return _reject(notification, f"refund amount {notice.amount} does not match {refund.amount}", refund=refund)
    if notice.outcome not in {"succeeded", "failed"}:
        result: tuple[ApplyResult, str] = ("duplicate", "refund still processing")
    else:
        changed = _refund_settle(refund.pk, notice.outcome, channel_refund_no=notice.channel_refund_no, error=notice.error_code)
        result = ("applied", notice.outcome) if changed else ("duplicate", f"refund already {refund.status}")
    if notification is not None:
        _note_outcome(notification, Notification.Outcome.APPLIED if result[0] == "applied" else Notification.Outcome.DUPLICATE, result[1], refund=refund)
    return result


def _refund_settle(refund_id: int, outcome: str, *, channel_refund_no: str = "", error: str = "") -> bool:
    payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
    with transaction.atomic():
        # The payment before its refund: the order every writer takes the locks in.
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        refund = Refund.objects.select_for_update(of=("self",)).select_related("attempt__account").get(pk=refund_id)
        if refund.status != RefundStatus.PENDING:
            return False
        refund.channel_refund_no = channel_refund_no or refund.channel_refund_no
        if outcome == "succeeded":
            refund.transition(RefundStatus.SUCCEEDED)
            refund.settled_at = timezone.now()
            refund.save()
            ledger.post(
                key=f"refund:{refund.refund_no}", kind="refund", reference=payment.reference,
                lines=[(ledger.REFUNDS_IN_FLIGHT, refund.amount), (_funds_account(refund.attempt), -refund.amount)],
                memo=refund.reason, currency=refund.currency,
            )
            if refund.origin != Refund.Origin.DOUBLE_CHARGE:
                payment.refunded_amount += refund.amount
                payment.transition(PaymentStatus.REFUNDED if payment.refunded_amount >= payment.amount else PaymentStatus.PARTIALLY_REFUNDED)
                payment.save()
            signals.refund_succeeded.send(sender=Refund, refund=refund)
        else:
            refund.transition(RefundStatus.FAILED)
            refund.error = (error or "refused by the channel")[:255]
            refund.save()
            # Not paid out after all: the money is back in clearing for staff to settle.
            ledger.post(
                key=f"refund-failed:{refund.refund_no}", kind="refund_failed", reference=payment.reference,
                lines=[(ledger.REFUNDS_IN_FLIGHT, refund.amount), (ledger.CLEARING, -refund.amount)],
                memo=refund.error, currency=refund.currency,
            )
            signals.refund_failed.send(sender=Refund, refund=refund)
        return True
