"""Opening a payment at a channel: walk the routing order, create the trade, fail over
(DESIGN.md §3). Channel calls never run inside a database transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Literal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.prepared import PreparedRead, attach_prefetched
from payments import fx, health
from payments.accounts import backend_for
from payments.channels.base import (
    ChannelDeclined,
    ChannelError,
    ChannelTimeout,
    ClientInfo,
    CreateRequest,
    Notice,
    QueryResult,
)
from payments.client import device_from_meta
from payments.errors import NO_CHANNEL, buyer_message, error_spec
from payments.models import Attempt, ChannelAccount, Payment
from payments.services import transitions
from payments.services.closing import close_at_channel
from payments.services.notices import notice_apply
from payments.services.queries import query_result_apply
from payments.services.risk import challenge_step_up, three_d_secure_requested
from payments.states import ATTEMPT_OPEN, AttemptStatus, PaymentStatus

log = logging.getLogger(__name__)

Step = Literal["opened", "next", "stop"]


def open_at_channel(payment: Payment, *, tried: tuple[str, ...] | None = None) -> Payment:
    """Walk the routing order: create at the best account; on a create error, an unreachable
    channel or a soft decline move to the next; stop on a hard decline or an unknown outcome
    that cannot be resolved (DESIGN.md §3 failover). ``tried``: the accounts already tried,
    when the caller knows (a payment just created has tried none)."""
    if tried is None:
        tried = payment.attempts.values_list("account__code", flat=True)
    tried = list(tried)
    last_error: tuple[str, str] | None = None  # (backend, code) of the last failure
    user_agent = str((payment.client or {}).get("user_agent", ""))
    in_app = device_from_meta({"HTTP_USER_AGENT": user_agent}).in_app
    # read once: routing ranks them and the winner is one of them, at every failover step
    enabled = {a.code: a for a in _ENABLED_ACCOUNTS.all()}
    for _step in range(settings.PAYMENTS_MAX_ATTEMPTS):
        decision = health.route(
            payment.method,
            payment.amount,
            payment.currency,
            exclude_codes=tuple(tried),
            charge_currency=payment.charge_currency,
            in_app=in_app,
            enabled=enabled.values(),
        )
        if not decision.winner:
            break
        account = enabled[decision.winner]
        tried.append(account.code)
        fee, charge_fee = account.fee_for(payment.amount), None
        if payment.foreign:
            # The channel takes its fee in the charged currency; the journal books it in CNY.
            charge_fee = account.fee_in(
                payment.charge_amount, payment.charge_currency, payment.fx_rate
            )
            fee = fx.to_cny(charge_fee, payment.fx_rate)
        attempt = Attempt.objects.create(
            payment=payment,
            account=account,
            method=payment.method,
            amount=payment.amount,
            currency=payment.currency,
            fee=fee,
            charge_fee=charge_fee,
            routing=decision.as_dict(),
            instalments=payment.instalments,
            charge_currency=payment.charge_currency,
            charge_amount=payment.charge_amount,
            fx_rate=payment.fx_rate,
            fx_rate_at=payment.fx_rate_at,
            fx_source=payment.fx_source,
        )
        if _create_at_channel(payment, attempt) != "next":
            return _as_opened(payment)
        attempt.refresh_from_db()
        last_error = (account.backend, attempt.error_code)
    return payment_fail(payment, last_error)


def _as_opened(payment: Payment) -> Payment:
    """The payment as it stands after its channel answered (a notice may have raced the
    answer), with its attempts and their accounts, which the buyer's answer shows."""
    fresh = _PAYMENT.get(pk=payment.pk)
    attach_prefetched(fresh, "attempts", _ATTEMPTS_WITH_ACCOUNT.all(payment_id=fresh.pk), "payment")
    return fresh


# Every payment start reads and locks these: compiled once per connection.
_PAYMENT = PreparedRead(lambda pk: Payment.objects.filter(pk=pk), pk=int)
_PAYMENT_LOCKED = PreparedRead(lambda pk: Payment.objects.select_for_update().filter(pk=pk), pk=int)
_ATTEMPT_LOCKED = PreparedRead(lambda pk: Attempt.objects.select_for_update().filter(pk=pk), pk=int)
_ATTEMPTS_WITH_ACCOUNT = PreparedRead(
    lambda payment_id: Attempt.objects.filter(payment_id=payment_id).select_related("account"),
    payment_id=int,
)
_ENABLED_ACCOUNTS = PreparedRead(
    lambda: ChannelAccount.objects.filter(enabled=True).order_by("code")
)


def _create_request(payment: Payment, attempt: Attempt) -> CreateRequest:
    client = payment.client or {}
    return CreateRequest(
        out_trade_no=attempt.out_trade_no,
        amount=attempt.channel_amount,
        currency=attempt.channel_currency,
        subject=payment.subject or payment.reference,
        method=attempt.method,
        expires_at=payment.expires_at or timezone.now() + dt.timedelta(minutes=15),
        return_url=client.get("return_url", ""),
        client=ClientInfo(
            ip=client.get("ip", ""),
            user_agent=client.get("user_agent", ""),
            device=client.get("device", "unknown"),
            language=client.get("language", ""),
            region=client.get("region", ""),
        ),
        instalments=attempt.instalments,
        buyer_ref=str(payment.buyer_id),
    )


def _create_at_channel(payment: Payment, attempt: Attempt) -> Step:
    account = attempt.account
    backend = backend_for(account)

    def record(outcome: str) -> None:
        health.health_record(account, attempt.method, attempt.amount, outcome)

    request = _create_request(payment, attempt)
    if three_d_secure_requested(payment):
        if not backend.supports_three_d_secure:
            # routed to a channel that cannot run 3-D Secure: our own code steps it up
            transitions.attempt_apply(
                attempt,
                "fail",
                error_code="THREE_D_SECURE_UNSUPPORTED",
                error_message=f"{account.backend} cannot be asked for 3-D Secure",
            )
            challenge_step_up(payment)
            return "stop"
        request = dataclasses.replace(request, three_d_secure="challenge")
    try:
        result = backend.create(request)
    except ChannelTimeout as exc:
        record("timeout")
        return _resolve_unknown(payment, attempt, exc)
    except ChannelDeclined as exc:
        spec = error_spec(account.backend, exc.code)
        record("failed" if spec.counts_against_channel else "declined")
        transitions.attempt_apply(attempt, "fail", error_code=exc.code, error_message=str(exc))
        if spec.action == "failover":
            return "next"
        if spec.action == "step_up":
            challenge_step_up(payment)
            return "stop"
        payment_fail(payment, (account.backend, exc.code))
        return "stop"
    except ChannelError as exc:
        record("error")
        transitions.attempt_apply(
            attempt, "fail", error_code=exc.code or "UNAVAILABLE", error_message=str(exc)
        )
        return "next"
    except Exception as exc:  # a backend bug must not lose the attempt: record it, fail over
        log.exception("channel %s crashed creating %s", account.code, attempt.out_trade_no)
        record("error")
        transitions.attempt_apply(
            attempt, "fail", error_code="INTERNAL", error_message=type(exc).__name__
        )
        return "next"

    with transaction.atomic():
        locked_payment = _PAYMENT_LOCKED.get(pk=payment.pk)
        locked = _ATTEMPT_LOCKED.get(pk=attempt.pk)
        opened = {
            "action": result.action.as_dict(),
            "channel_trade_no": result.channel_trade_no or locked.channel_trade_no,
            "next_query_at": timezone.now() + dt.timedelta(seconds=60),
        }
        if locked.status == AttemptStatus.CREATED:
            transitions.apply(locked, "open", **opened)
        else:  # a notice raced the create's answer: keep its state, record the action
            for name, value in opened.items():
                setattr(locked, name, value)
            locked.save()
        if locked_payment.status == PaymentStatus.CREATED:
            transitions.apply(locked_payment, "open")
    if result.outcome == "succeeded":
        notice = Notice(
            kind="payment",
            out_trade_no=attempt.out_trade_no,
            outcome="succeeded",
            amount=attempt.channel_amount,
            currency=attempt.channel_currency,
            channel_trade_no=result.channel_trade_no,
        )
        notice_apply(account=account, notice=notice)
    return "opened"


def _resolve_unknown(payment: Payment, attempt: Attempt, exc: ChannelError) -> Step:
    """A create that timed out may still have opened a trade: ask, and close it, before any
    other channel is tried — so the buyer can never pay twice."""
    transitions.attempt_apply(
        attempt, "lose_track", error_code=exc.code or "TIMEOUT", error_message=str(exc)
    )
    backend = backend_for(attempt.account)
    try:
        result = backend.query(out_trade_no=attempt.out_trade_no)
    except ChannelError:
        result = QueryResult(outcome="unknown")
    if result.outcome == "succeeded":
        query_result_apply(attempt, result)
        return "opened"
    if result.outcome in {"failed", "closed"}:
        transitions.attempt_apply(attempt, "fail")
        return "next"
    if not close_at_channel(attempt, backend):
        # Still unknown and not closable: leave it for the query task and do not open a
        # second trade the buyer could pay as well.
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if locked.status == PaymentStatus.CREATED:
                transitions.apply(locked, "open", failure_code="TIMEOUT")
        return "stop"
    transitions.attempt_apply(attempt, "close")
    return "next"


def payment_fail(payment: Payment, error: tuple[str, str] | None) -> Payment:
    """No channel could take the payment: it fails with the last channel's reason for the
    buyer — unless something is still open at a channel, which then settles it."""
    backend, code = error if error else ("", "NO_CHANNEL")
    spec = error_spec(backend, code) if error else NO_CHANNEL
    message = buyer_message(spec, code)
    failing = {PaymentStatus.CREATED, PaymentStatus.PENDING, PaymentStatus.CHALLENGE}
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        still_open = locked.attempts.filter(status__in=ATTEMPT_OPEN).exists()
        if locked.status in failing and not still_open:
            transitions.apply(
                locked,
                "fail",
                failure_code=code,
                failure_reason=message.reason,
                failure_guidance=message.guidance,
            )
        return locked
