"""Settlement of foreign-currency payments: the card acquirer reports USD and JPY lines (and a
USD refund); each matches its attempt's charged amount and fee to the minor unit."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments import services as payment_services
from payments.channels.base import ClientInfo
from payments.models import Attempt, FxRate
from payments.payables import PayableFacts
from reconciliation import services
from reconciliation.models import Discrepancy, Statement
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db


def pay(client, captured, amount: str, currency: str) -> Attempt:
    payment = payment_services.payment_start(
        buyer=UserFactory(),
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal(amount),
        currency="CNY",
        method="card",
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.7", device="desktop", region="US"),
        return_url="http://testserver/orders/R1/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
        charge_currency=currency,
    )
    attempt = payment.attempts.get()
    with captured(execute=True):
        Payer(client).decide(attempt.action, "approve")
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    return attempt


@pytest.fixture
def foreign_day(client, django_capture_on_commit_callbacks):
    now = timezone.now()
    FxRate.objects.create(currency="USD", rate=Decimal("7.1375"), as_of=now)
    FxRate.objects.create(currency="JPY", rate=Decimal("0.0478"), as_of=now)
    acct = sandbox_account(
        "card", fee_percent=Decimal("0.600"), settlement_days=2, currencies=["CNY", "USD", "JPY"]
    )
    captured = django_capture_on_commit_callbacks
    usd = pay(client, captured, "99.00", "USD")  # US$13.87, fee 0.08
    jpy = pay(client, captured, "150.00", "JPY")  # JP¥3138, fee 19
    clerk = UserFactory(is_staff=True, groups=["Finance"])
    with captured(execute=True):
        refund = payment_services.refund_request(
            payment=usd.payment, amount=Decimal("33.00"), reason="goodwill", requested_by=clerk
        )
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.charge_amount == Decimal("4.62")
    return acct, usd, jpy, timezone.localdate()


def pull(day: dt.date) -> dict:
    out = io.StringIO()
    call_command(
        "pull_settlements", "--channel", "card", "--date", day.isoformat(), "--json", stdout=out
    )
    [entry] = json.loads(out.getvalue())
    return entry


def test_foreign_currency_lines_reconcile_to_the_minor_unit(foreign_day):
    _acct, usd, jpy, day = foreign_day
    assert (usd.charge_amount, usd.charge_fee) == (Decimal("13.87"), Decimal("0.08"))
    assert (jpy.charge_amount, jpy.charge_fee) == (Decimal("3138.00"), Decimal("19.00"))
    entry = pull(day)
    assert entry["status"] == "reconciled", entry
    result = entry["result"]
    assert result["payments"] == 2 and result["refunds"] == 1
    assert result["matched"] == 3 and not any(result["discrepancies"].values()), result
    # a file in three currencies states its day in CNY, each line at its attempt's rate:
    # US$13.87 × 7.1375 = ¥99.00, JP¥3138 × 0.0478 = ¥150.00, the US$4.62 refund ¥32.98
    statement = Statement.objects.get(account__code="card", day=day)
    assert statement.currency == "CNY"
    assert (statement.gross, statement.refunded) == (Decimal("249.00"), Decimal("32.98"))
    # and both payments count as settled for the sellers' clearing
    settled = {
        row["payment__public_id"] for row in services.settled_payment_ids(statement=statement)
    }
    assert settled == {usd.payment.public_id, jpy.payment.public_id}


def test_a_foreign_line_that_differs_from_the_charged_amount_is_found(foreign_day):
    _acct, usd, _jpy, day = foreign_day
    Attempt.objects.filter(pk=usd.pk).update(charge_amount=Decimal("13.86"))
    result = pull(day)["result"]
    assert result["discrepancies"]["amount_mismatch"] == 1
    mismatch = Discrepancy.objects.get(kind="amount_mismatch")
    assert (mismatch.expected, mismatch.actual) == (Decimal("13.86"), Decimal("13.87"))


def test_a_usd_settlement_arriving_converted_into_cny_books_the_exchange_difference(
    client, django_capture_on_commit_callbacks
):
    from payments import ledger
    from reconciliation import treasury
    from reconciliation.models import AccountPolicy, BankAccount

    FxRate.objects.create(currency="USD", rate=Decimal("7.1375"), as_of=timezone.now())
    acct = sandbox_account(
        "card", fee_percent=Decimal("0.600"), settlement_days=2, currencies=["USD"]
    )
    bank = BankAccount.objects.create(code="boc-cny", name="BOC", bank="BOC", number_tail="1")
    AccountPolicy.objects.create(account=acct, bank_account=bank)
    attempt = pay(client, django_capture_on_commit_callbacks, "99.00", "USD")
    day = timezone.localdate()
    assert pull(day)["status"] == "reconciled"
    statement = Statement.objects.get(account=acct, day=day)
    # a USD-only day is stated in USD: US$13.87 less the US$0.08 fee
    assert (statement.currency, statement.net) == ("USD", Decimal("13.79"))
    booked = ledger.balance(ledger.channel_receivable("card"))
    assert booked == Decimal("98.43")  # ¥99.00 less the fee at 7.1375 (¥0.57)

    # the bank converted it at a worse rate than the capture's: ¥98.10 arrive
    treasury.arrival_record(
        bank_account=bank,
        value_date=statement.expected_settlement_date,
        amount=Decimal("98.10"),
        reference="card settlement",
    )
    assert ledger.balance(ledger.channel_receivable("card")) == 0
    assert ledger.balance(ledger.bank_cash("boc-cny")) == Decimal("98.10")
    assert ledger.balance(ledger.FX_DIFFERENCES) == Decimal("0.33")  # a loss of 33 fen
    assert ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0
    assert attempt.charge_fee == Decimal("0.08")


def test_a_usd_settlement_into_a_usd_bank_account_moves_its_booked_cny(
    client, django_capture_on_commit_callbacks
):
    from payments import ledger
    from payments.models import JournalLine
    from reconciliation import treasury
    from reconciliation.models import AccountPolicy, BankAccount

    FxRate.objects.create(currency="USD", rate=Decimal("7.1375"), as_of=timezone.now())
    acct = sandbox_account(
        "card", fee_percent=Decimal("0.600"), settlement_days=2, currencies=["USD"]
    )
    bank = BankAccount.objects.create(
        code="hsbc-usd", name="HSBC USD", bank="HSBC", number_tail="2", currency="USD"
    )
    AccountPolicy.objects.create(account=acct, bank_account=bank)
    pay(client, django_capture_on_commit_callbacks, "99.00", "USD")
    day = timezone.localdate()
    pull(day)
    statement = Statement.objects.get(account=acct, day=day)
    arrival = treasury.arrival_record(
        bank_account=bank,
        value_date=statement.expected_settlement_date,
        amount=Decimal("13.79"),
        reference="card settlement",
    )
    assert treasury.statement_position(statement).status == "arrived"
    line = JournalLine.objects.get(entry__key=f"arrival:{arrival.pk}", amount__gt=0)
    assert (line.amount, line.currency) == (Decimal("98.43"), "CNY")
    assert (line.foreign_amount, line.foreign_currency) == (Decimal("13.79"), "USD")
    assert ledger.balance(ledger.channel_receivable("card")) == 0
    assert ledger.balance(ledger.FX_DIFFERENCES) == 0
    assert ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0
