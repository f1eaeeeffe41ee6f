"""Lost callbacks (掉单): ask the channel about open attempts, with back-off, and expire what
its payment's deadline has passed."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from payments.accounts import backend_for
from payments.channels.base import ChannelError, Notice, QueryResult
from payments.models import Attempt, Payment
from payments.services import transitions
from payments.services.closing import close_at_channel
from payments.services.notices import notice_apply
from payments.states import ATTEMPT_OPEN, PaymentStatus

MAX_BACKOFF_SECONDS = 1800


def attempt_query(*, attempt_id: int) -> str:
    """Ask the channel about one open attempt (掉单 recovery); back off while it stays open,
    close it at the channel once its payment has expired."""
    attempt = Attempt.objects.select_related("account", "payment").get(pk=attempt_id)
    if attempt.status not in ATTEMPT_OPEN:
        return attempt.status
    backend = backend_for(attempt.account)
    try:
        result = backend.query(
            out_trade_no=attempt.out_trade_no, channel_trade_no=attempt.channel_trade_no
        )
    except ChannelError as exc:
        result = QueryResult(outcome="unknown", error_code=exc.code)
    if result.outcome == "succeeded":
        query_result_apply(attempt, result)
        return "succeeded"
    if result.outcome in {"failed", "closed"}:
        notice = Notice(
            kind="payment",
            out_trade_no=attempt.out_trade_no,
            outcome=result.outcome,
            amount=attempt.channel_amount,
            currency=attempt.channel_currency,
            error_code=result.error_code,
            raw=result.raw,
        )
        notice_apply(account=attempt.account, notice=notice)
        return result.outcome
    expires_at = attempt.payment.expires_at
    # Past expiry: close the trade, or — for channels that cannot close — let the lapse the
    # trade was created with (the same expiry) count as its close. A success that still
    # arrives later is applied as late money and the shop refunds or delivers it.
    expired = bool(expires_at and expires_at < timezone.now())
    if expired and (close_at_channel(attempt, backend) or not type(backend).supports_close):
        _expire(attempt)
        return "expired"
    with transaction.atomic():
        locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
        locked.query_count += 1
        backoff = min(15 * 2 ** min(locked.query_count, 7), MAX_BACKOFF_SECONDS)
        locked.next_query_at = timezone.now() + dt.timedelta(seconds=backoff)
        locked.save(update_fields=["query_count", "next_query_at", "updated_at"])
    return "pending"


def _expire(attempt: Attempt) -> None:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=attempt.payment_id)
        locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
        if locked.status not in ATTEMPT_OPEN:
            return
        transitions.apply(locked, "expire")
        still_open = payment.attempts.filter(status__in=ATTEMPT_OPEN).exists()
        if payment.status == PaymentStatus.PENDING and not still_open:
            transitions.apply(payment, "expire")


def query_result_apply(attempt: Attempt, result: QueryResult) -> None:
    """The channel says the attempt was paid: apply it as a notice would be."""
    notice = Notice(
        kind="payment",
        out_trade_no=attempt.out_trade_no,
        outcome="succeeded",
        amount=result.amount if result.amount is not None else attempt.channel_amount,
        currency=result.currency or attempt.channel_currency,
        channel_trade_no=result.channel_trade_no,
        occurred_at=result.paid_at,
        raw=result.raw,
    )
    notice_apply(account=attempt.account, notice=notice)


def attempts_due_for_query(*, limit: int = 200) -> list[int]:
    now = timezone.now()
    return list(
        Attempt.objects.filter(status__in=ATTEMPT_OPEN, next_query_at__lte=now)
        .order_by("next_query_at")
        .values_list("pk", flat=True)[:limit]
    )
