"""The state machines of payments, attempts and refunds, applied through named transitions:
every move the tables allow applies (status saved, journal entry and signal where the
transition has them); every other move raises and changes nothing."""

from decimal import Decimal

import pytest
from django.db import transaction

from payments import signals
from payments.models import Attempt, ChannelAccount, JournalEntry, Payment, Refund
from payments.services import transitions
from payments.states import (
    ATTEMPT_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    REFUND_TRANSITIONS,
    AttemptStatus,
    IllegalTransition,
    PaymentStatus,
    RefundStatus,
)
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db

KINDS = {
    "payment": (transitions.PAYMENT, PAYMENT_TRANSITIONS, PaymentStatus),
    "attempt": (transitions.ATTEMPT, ATTEMPT_TRANSITIONS, AttemptStatus),
    "refund": (transitions.REFUND, REFUND_TRANSITIONS, RefundStatus),
}


def _moves(legal: bool):
    for kind, (named, table, statuses) in KINDS.items():
        for name, spec in named.items():
            for current in statuses.values:
                if (spec.target in table[current]) is legal:
                    yield pytest.param(kind, name, current, id=f"{kind}:{current}-{name}")


def _row(kind: str, status: str):
    account = ChannelAccount.objects.create(
        code="acct",
        name="acct",
        backend="alipay",
        methods=["alipay"],
        base_url="https://channel.example/",
        merchant_id="M1",
        fee_percent=Decimal("0.60"),
    )
    paid = kind == "refund"
    payment = PaymentFactory(
        status=PaymentStatus.SUCCEEDED if paid else status, amount=Decimal("100.00")
    )
    attempt = Attempt.objects.create(
        payment=payment,
        account=account,
        method="alipay",
        amount=payment.amount,
        fee=Decimal("0.60"),
        status=AttemptStatus.SUCCEEDED if paid else status,
    )
    if kind == "payment":
        return payment
    if kind == "attempt":
        return attempt
    return Refund.objects.create(
        payment=payment, attempt=attempt, amount=Decimal("40.00"), status=status, reason="test"
    )


def _locked(row):
    return type(row).objects.select_for_update().get(pk=row.pk)


@pytest.fixture
def announced():
    seen = []

    def record(sender, signal, **kwargs):
        seen.append(signal)

    every = [
        signals.payment_succeeded,
        signals.payment_failed,
        signals.payment_status_changed,
        signals.refund_succeeded,
        signals.refund_failed,
        signals.refund_declined,
    ]
    for signal in every:
        signal.connect(record, weak=False, dispatch_uid=f"transitions-test-{id(signal)}")
    yield seen
    for signal in every:
        signal.disconnect(dispatch_uid=f"transitions-test-{id(signal)}")


@pytest.mark.parametrize(("kind", "name", "current"), list(_moves(legal=True)))
def test_every_move_the_table_allows_applies_with_its_posting_and_signal(
    kind, name, current, announced
):
    row = _row(kind, current)
    spec = KINDS[kind][0][name]
    with transaction.atomic():
        transitions.apply(_locked(row), name)
    row.refresh_from_db()
    assert row.status == spec.target
    assert announced == ([spec.signal] if spec.signal else [])
    assert JournalEntry.objects.exists() is (spec.post is not None)


@pytest.mark.parametrize(("kind", "name", "current"), list(_moves(legal=False)))
def test_every_move_the_table_forbids_raises_and_changes_nothing(kind, name, current, announced):
    row = _row(kind, current)
    before = type(row).objects.values().get(pk=row.pk)
    with transaction.atomic(), pytest.raises(IllegalTransition):
        transitions.apply(_locked(row), name)
    assert type(row).objects.values().get(pk=row.pk) == before
    assert announced == []
    assert not JournalEntry.objects.exists()


def test_every_state_a_table_leads_to_has_a_named_transition():
    for named, table, statuses in KINDS.values():
        targets = {spec.target for spec in named.values()}
        reached = set().union(*table.values())
        assert reached <= targets
        assert set(table) == set(statuses.values)


def test_allows_answers_from_the_table_without_changing_the_row():
    payment = PaymentFactory(status=PaymentStatus.PENDING)
    assert transitions.allows(payment, "succeed") and not transitions.allows(payment, "release")
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING


def test_an_unknown_transition_name_is_refused():
    payment = PaymentFactory(status=PaymentStatus.PENDING)
    with transaction.atomic(), pytest.raises(ValueError, match="no transition named"):
        transitions.apply(_locked(payment), "teleport")


def test_fields_travel_with_the_status_and_are_cut_to_their_column():
    payment = PaymentFactory(status=PaymentStatus.PENDING)
    with transaction.atomic():
        transitions.apply(
            _locked(payment), "fail", failure_code="DECLINED", failure_reason="x" * 400
        )
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "DECLINED")
    assert len(payment.failure_reason) == 255
