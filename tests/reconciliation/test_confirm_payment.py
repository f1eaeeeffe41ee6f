"""Confirm payment and deliver-or-refund: the channel's settlement file says a trade was paid
that we never heard about; Finance applies the file's evidence once, through the platform."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketplace.models import CardCode, Order
from payments import ledger
from payments.models import Attempt, JournalEntry, Payment, Refund
from reconciliation.exceptions_queue import DiscrepancyRefused, discrepancy_confirm_payment
from reconciliation.models import Discrepancy, SettlementFile, SettlementLine
from tests.accounts.factories import UserFactory
from tests.marketplace.conftest import journal_is_balanced
from tests.reconciliation.conftest import expire, listing_of, pull_today

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance(db):
    return UserFactory(username="fiona-finance", is_staff=True, groups=["Finance"])


@pytest.fixture
def listing(brand):
    return listing_of(UserFactory(username="sally-seller"), brand, price="92.00")


def the_discrepancy(kind: str = "status_mismatch") -> Discrepancy:
    return Discrepancy.objects.get(kind=kind)


def snapshot() -> tuple:
    """Everything the action could change."""
    return (
        sorted(Payment.objects.values_list("pk", "status", "refunded_amount")),
        sorted(Attempt.objects.values_list("pk", "status", "channel_trade_no", "flagged")),
        sorted(Order.objects.values_list("pk", "status", "payment_public_id", "note")),
        sorted(CardCode.objects.values_list("pk", "status", "order_id")),
        JournalEntry.objects.count(),
        Refund.objects.count(),
        sorted(
            Discrepancy.objects.values_list(
                "pk", "status", "note", "resolution", "resolved_by", "attempt"
            )
        ),
    )


def test_confirming_a_paid_trade_we_never_heard_of_delivers_the_codes_exactly_once(
    shop, listing, finance, mailoutbox
):
    order, payment = shop.buy(listing, 2, notified=False)
    assert payment.status == "pending" and order.status == "awaiting_payment"
    pull_today()
    discrepancy = the_discrepancy()
    assert discrepancy.attempt.payment == payment

    with shop.captured(execute=True):
        done = discrepancy_confirm_payment(
            discrepancy=discrepancy, by=finance, note="file of the day says paid"
        )

    assert (done.result, done.payment_status) == ("applied", "succeeded")
    order.refresh_from_db()
    assert order.status == "delivered" and order.payment_public_id == payment.public_id
    assert order.codes.filter(status="sold").count() == 2
    assert JournalEntry.objects.filter(key=f"sale:{order.number}").count() == 1
    assert (
        JournalEntry.objects.filter(kind="payment_captured", reference=payment.reference).count()
        == 1
    )
    assert len(mailoutbox) == 1  # the delivery e-mail
    assert ledger.balance(ledger.CLEARING) == 0 and journal_is_balanced()
    discrepancy.refresh_from_db()
    assert (
        discrepancy.status == "resolved"
        and discrepancy.resolved_by == finance
        and discrepancy.resolved_at
    )
    assert discrepancy.resolution == "applied: payment succeeded"
    assert "file of the day says paid" in discrepancy.note


def test_confirming_twice_changes_nothing_more(shop, listing, finance, mailoutbox):
    order, _payment = shop.buy(listing, notified=False)
    pull_today()
    discrepancy = the_discrepancy()
    with shop.captured(execute=True):
        discrepancy_confirm_payment(discrepancy=discrepancy, by=finance)
    before = snapshot()

    with (
        shop.captured(execute=True),
        pytest.raises(DiscrepancyRefused, match="already resolved"),
    ):
        discrepancy_confirm_payment(discrepancy=discrepancy, by=UserFactory(), note="again")
    assert snapshot() == before
    assert len(mailoutbox) == 1


def test_a_paid_trade_whose_order_lapsed_and_sold_out_is_refunded_automatically(
    shop, listing, finance
):
    order, payment = shop.buy(listing, 5, notified=False)
    expire(order)
    shop.order(listing, 1)  # the released stock is bought by someone else
    pull_today()

    with shop.captured(execute=True):
        done = discrepancy_confirm_payment(discrepancy=the_discrepancy(), by=finance)

    assert done.result == "applied"
    # the shop's refund is asked for once the confirmation commits, and named on it then
    resolution = the_discrepancy().resolution
    assert (
        resolution.startswith("applied: payment succeeded; refund ")
        and "460.00 pending" in resolution
    )
    order.refresh_from_db()
    assert order.status == "refunded" and order.payment_public_id is None
    assert not order.codes.exists()
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.refunded_amount == Decimal("460.00")
    refund = Refund.objects.get(payment=payment)
    # Nobody asked for this refund (the buyer paid for codes that are gone): it is the
    # system's, exempt from four eyes, and says so — Finance only confirmed the payment.
    assert refund.origin == "shop" and refund.requested_by_system
    assert refund.requested_by is None and refund.approved_by is None
    assert ledger.balance(ledger.CLEARING) == 0 and journal_is_balanced()


def test_a_paid_trade_of_an_order_already_paid_by_another_payment_is_refunded(
    shop, listing, finance
):
    order = shop.order(listing, 1)
    lost = shop.pay(shop.start(order), notified=False)
    paid = shop.pay(shop.start(order))  # the buyer paid again, and that one got through
    order.refresh_from_db()
    assert order.status == "delivered" and order.payment_public_id == paid.public_id
    pull_today()

    discrepancy = Discrepancy.objects.get(attempt__payment=lost)
    with shop.captured(execute=True):
        done = discrepancy_confirm_payment(discrepancy=discrepancy, by=finance)

    assert done.result == "applied"
    lost.refresh_from_db()
    assert lost.status == "refunded"
    order.refresh_from_db()
    assert order.status == "delivered" and order.payment_public_id == paid.public_id
    assert order.codes.filter(status="sold").count() == 1
    assert ledger.balance(ledger.CLEARING) == 0 and journal_is_balanced()


def test_a_payment_that_succeeded_meanwhile_is_resolved_as_duplicate(shop, listing, finance):
    order, payment = shop.buy(listing, notified=False)
    pull_today()
    from payments import services as payment_services

    attempt = payment.attempts.get()
    payment_services.attempt_query(attempt_id=attempt.pk)  # the query task caught it after the run
    order.refresh_from_db()
    assert order.status == "delivered"
    entries = JournalEntry.objects.count()

    done = discrepancy_confirm_payment(discrepancy=the_discrepancy(), by=finance)

    assert (done.result, done.resolution) == ("duplicate", "duplicate: payment succeeded")
    assert JournalEntry.objects.count() == entries
    assert the_discrepancy().status == "resolved"


# ---------------------------------------------------------------------------------------------
# Refused: nothing changes


@pytest.fixture
def other_kinds(alipay):
    """Open discrepancies the action must not touch, each on its own line."""
    file = SettlementFile.objects.create(
        channel_code="alipay", day="2026-01-02", name="f", content=b"x", sha256="1" * 64, size=1
    )
    ours = Attempt.objects.filter(account=alipay).first()

    def line(no: int, out_trade_no: str, amount: str, kind: str = "payment") -> SettlementLine:
        return SettlementLine.objects.create(
            file=file,
            line_no=no,
            kind=kind,
            out_trade_no=out_trade_no,
            amount=Decimal(amount),
            fee=Decimal("0"),
            currency="CNY",
        )

    return file, ours, line


@pytest.mark.parametrize(
    "kind", ["amount_mismatch", "fee_mismatch", "duplicate", "missing_channel"]
)
def test_other_kinds_are_refused_and_change_nothing(shop, listing, finance, other_kinds, kind):
    _order, payment = shop.buy(listing, notified=False)
    file, _, line = other_kinds
    attempt = payment.attempts.get()
    discrepancy = Discrepancy.objects.create(
        file=file, kind=kind, attempt=attempt, line=line(1, attempt.out_trade_no, "92.00")
    )
    before = snapshot()
    with pytest.raises(
        DiscrepancyRefused, match="Only a status mismatch or a payment missing on our side"
    ):
        discrepancy_confirm_payment(discrepancy=discrepancy, by=finance)
    assert snapshot() == before


def test_a_line_whose_amount_differs_from_our_attempt_is_for_a_human(
    shop, listing, finance, other_kinds
):
    _order, payment = shop.buy(listing, notified=False)
    file, _, line = other_kinds
    attempt = payment.attempts.get()
    discrepancy = Discrepancy.objects.create(
        file=file,
        kind="status_mismatch",
        attempt=attempt,
        line=line(1, attempt.out_trade_no, "91.00"),
    )
    before = snapshot()
    with pytest.raises(DiscrepancyRefused, match="amount mismatch is for a person"):
        discrepancy_confirm_payment(discrepancy=discrepancy, by=finance)
    assert snapshot() == before
    assert Attempt.objects.get(pk=attempt.pk).flagged == ""


def test_missing_ours_is_confirmed_when_the_attempt_exists_and_refused_when_it_does_not(
    shop, listing, finance, other_kinds
):
    order, payment = shop.buy(listing, notified=False)
    file, _, line = other_kinds
    attempt = payment.attempts.get()
    stranger = Discrepancy.objects.create(
        file=file, kind="missing_ours", line=line(1, "NOT-OURS-1", "10.00")
    )
    refund_line = Discrepancy.objects.create(
        file=file, kind="missing_ours", line=line(2, attempt.out_trade_no, "92.00", kind="refund")
    )
    before = snapshot()
    with pytest.raises(DiscrepancyRefused, match="no attempt NOT-OURS-1"):
        discrepancy_confirm_payment(discrepancy=stranger, by=finance)
    assert snapshot() == before

    with pytest.raises(DiscrepancyRefused, match="Only a payment line"):
        discrepancy_confirm_payment(discrepancy=refund_line, by=finance)
    assert snapshot() == before

    ours = Discrepancy.objects.create(
        file=file, kind="missing_ours", line=line(3, attempt.out_trade_no, "92.00")
    )
    with shop.captured(execute=True):
        done = discrepancy_confirm_payment(discrepancy=ours, by=finance)
    assert done.result == "applied"
    ours.refresh_from_db()
    assert ours.attempt == attempt and ours.status == "resolved"
    order.refresh_from_db()
    assert order.status == "delivered"


def test_written_off_items_are_refused(shop, listing, finance):
    shop.buy(listing, notified=False)
    pull_today()
    Discrepancy.objects.update(status="written_off")
    before = snapshot()
    with pytest.raises(DiscrepancyRefused, match="already written off"):
        discrepancy_confirm_payment(discrepancy=the_discrepancy(), by=finance)
    assert snapshot() == before


def test_a_notice_the_platform_rejects_changes_nothing(shop, listing, finance, monkeypatch):
    from payments import services as payment_services

    shop.buy(listing, notified=False)
    pull_today()
    monkeypatch.setattr(
        payment_services,
        "payment_confirm_settled",
        lambda **kwargs: ("rejected", "merchant mismatch"),
    )
    before = snapshot()
    with pytest.raises(DiscrepancyRefused, match="refused the channel's record: merchant mismatch"):
        discrepancy_confirm_payment(discrepancy=the_discrepancy(), by=finance)
    assert snapshot() == before


def test_a_payment_that_cannot_take_the_success_rolls_everything_back(shop, listing, finance):
    _order, payment = shop.buy(listing, notified=False)
    pull_today()
    Payment.objects.filter(pk=payment.pk).update(status="review")  # no success may land on it
    before = snapshot()
    with (
        shop.captured(execute=True),
        pytest.raises(DiscrepancyRefused, match="cannot take this success"),
    ):
        discrepancy_confirm_payment(discrepancy=the_discrepancy(), by=finance)
    assert snapshot() == before  # the capture posted on the way is gone too
    assert journal_is_balanced()
