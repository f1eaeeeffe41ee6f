"""Reconciliation's way in: a settled payment the channel's file reports is recorded exactly
as its notice would have been — once."""

from decimal import Decimal

import pytest

from payments import ledger, services
from payments.models import JournalEntry, Payment
from tests.payments.fakes import FakeBackend
from tests.payments.test_services import account, start

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fake_channels():
    FakeBackend.reset()
    yield
    FakeBackend.reset()


def test_a_settled_payment_is_recorded_once_with_its_capture():
    account("fa")
    attempt = start().attempts.get()
    evidence = {"settlement_file": 7, "line_no": 3}

    first = services.payment_confirm_settled(
        attempt=attempt,
        amount=Decimal("100.00"),
        currency="CNY",
        channel_trade_no="CH1",
        evidence=evidence,
    )
    again = services.payment_confirm_settled(
        attempt=attempt, amount=Decimal("100.00"), currency="CNY", channel_trade_no="CH1"
    )

    assert first == ("applied", "succeeded") and again[0] == "duplicate"
    payment = Payment.objects.get()
    assert payment.status == "succeeded" and payment.attempts.get().channel_trade_no == "CH1"
    assert JournalEntry.objects.filter(kind="payment_captured").count() == 1
    assert ledger.journal_total() == 0


def test_a_settled_amount_that_differs_from_the_attempt_is_refused_and_flagged_moving_no_money():
    account("fa")
    attempt = start().attempts.get()
    result, detail = services.payment_confirm_settled(
        attempt=attempt, amount=Decimal("99.00"), currency="CNY"
    )
    assert result == "rejected" and "does not match" in detail
    assert Payment.objects.get().status == "pending"
    assert "99.00" in Payment.objects.get().attempts.get().flagged  # for staff to look at
    assert not JournalEntry.objects.exists()
