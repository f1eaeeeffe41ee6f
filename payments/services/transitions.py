"""Named transitions of payments, attempts and refunds, applied in one place.

A flow never sets a status itself: it locks the row (Payment first, then its Attempts or
Refund — the order every writer takes them in), then ``apply``-s a named transition. That
checks the move against the tables of :mod:`payments.states`, sets the fields that come
with it, saves, posts the transition's journal entry and sends its signal — all in the
caller's transaction, so the shop's reaction commits or rolls back with the change. An
illegal move raises :class:`~payments.states.IllegalTransition` before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.dispatch import Signal

from payments import signals, states
from payments.models import Attempt, Payment, Refund
from payments.services import postings
from payments.states import AttemptStatus as A
from payments.states import IllegalTransition
from payments.states import PaymentStatus as P
from payments.states import RefundStatus as R

Row = Payment | Attempt | Refund


@dataclass(frozen=True)
class Transition:
    """A named move to ``target``: legal from whatever the state table allows; ``post``
    writes its journal entry, ``signal`` announces it."""

    target: str
    post: Callable[[Any], object] | None = None
    signal: Signal | None = None


PAYMENT: dict[str, Transition] = {
    "release": Transition(P.CREATED),  # a challenge passed, or an analyst released it
    "challenge": Transition(P.CHALLENGE, signal=signals.payment_status_changed),
    "hold": Transition(P.REVIEW, signal=signals.payment_status_changed),
    "block": Transition(P.BLOCKED, signal=signals.payment_status_changed),
    "open": Transition(P.PENDING),
    "succeed": Transition(P.SUCCEEDED, signal=signals.payment_succeeded),
    "fail": Transition(P.FAILED, signal=signals.payment_failed),
    "expire": Transition(P.EXPIRED, signal=signals.payment_failed),
    "cancel": Transition(P.CANCELLED),
    "refund_part": Transition(P.PARTIALLY_REFUNDED),
    "refund_whole": Transition(P.REFUNDED),
}

ATTEMPT: dict[str, Transition] = {
    "open": Transition(A.PENDING),
    "lose_track": Transition(A.UNKNOWN),  # the create timed out: it may have opened a trade
    "succeed": Transition(A.SUCCEEDED, post=postings.capture_post),
    "fail": Transition(A.FAILED),
    "expire": Transition(A.EXPIRED),
    "close": Transition(A.CANCELLED),
}

REFUND: dict[str, Transition] = {
    "approve": Transition(R.PENDING, post=postings.refund_sent_post),
    "decline": Transition(R.DECLINED, signal=signals.refund_declined),
    "succeed": Transition(R.SUCCEEDED, post=postings.refund_post, signal=signals.refund_succeeded),
    "fail": Transition(R.FAILED, post=postings.refund_failed_post, signal=signals.refund_failed),
}

_TABLES: dict[type, tuple[str, dict[str, Transition], dict[str, set[str]]]] = {
    Payment: ("payment", PAYMENT, states.PAYMENT_TRANSITIONS),
    Attempt: ("attempt", ATTEMPT, states.ATTEMPT_TRANSITIONS),
    Refund: ("refund", REFUND, states.REFUND_TRANSITIONS),
}


def spec(row: Row, name: str) -> Transition:
    kind, table, _ = _TABLES[type(row)]
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"{kind} has no transition named {name!r}") from None


def allows(row: Row, name: str) -> bool:
    """Whether the named transition is legal from the row's current state."""
    try:
        _check(row, spec(row, name))
    except IllegalTransition:
        return False
    return True


def apply(row: Row, name: str, *, also: Iterable[str] = (), **fields: Any) -> Row:
    """Apply the named transition to a row the caller holds locked in its transaction.

    ``fields`` are set with the status and saved with it; ``also`` names fields the caller
    set on the row beforehand that must be saved too. Strings are cut to the column's
    length (reasons and messages come from channels)."""
    if not connection.in_atomic_block:
        raise RuntimeError("a transition is applied under its row lock, inside a transaction")
    transition = spec(row, name)
    _check(row, transition)
    row.status = transition.target
    for field_name, value in fields.items():
        setattr(row, field_name, _fit(row, field_name, value))
    update = {"status", *fields, *also}
    if any(f.name == "updated_at" for f in row._meta.concrete_fields):
        update.add("updated_at")
    row.save(update_fields=sorted(update))
    if transition.post is not None:
        transition.post(row)
    if transition.signal is not None:
        kind = _TABLES[type(row)][0]
        transition.signal.send(sender=type(row), **{kind: row})
    return row


def announce(payment: Payment) -> None:
    """Tell the shop about a change that took more than one transition (a payment released
    from review and opened at a channel is waiting for the buyer again)."""
    signals.payment_status_changed.send(sender=Payment, payment=payment)


def attempt_apply(attempt: Attempt, name: str | None = None, **fields: Any) -> Attempt:
    """Lock one attempt on its own and apply ``name`` to it (skipped when it is in the
    target state already), or only record ``fields`` — for the steps of opening a payment,
    where no notice can hold the payment's lock yet."""
    with transaction.atomic():
        locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
        if name is not None and locked.status != spec(locked, name).target:
            return apply(locked, name, **fields)
        for field_name, value in fields.items():
            setattr(locked, field_name, _fit(locked, field_name, value))
        locked.save()
        return locked


def _check(row: Row, transition: Transition) -> None:
    kind, _, table = _TABLES[type(row)]
    states.check(kind, table, row.status, transition.target)


def _fit(row: Row, field_name: str, value: Any) -> Any:
    if isinstance(value, str):
        max_length = getattr(row._meta.get_field(field_name), "max_length", None)
        if max_length:
            return value[:max_length]
    return value
