from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from marketplace import postings
from marketplace.errors import PayoutRefused
from marketplace.models import Payout
from marketplace.postings import seller_payouts_requested
from marketplace.selectors import seller_balances
from marketplace.services import (
    payout_approve,
    payout_destination_create,
    payout_mark_paid,
    payout_reject,
    payout_request,
)
from payments import ledger
from tests.accounts.factories import UserFactory
from tests.marketplace.conftest import journal_is_balanced
from tests.marketplace.factories import PayoutDestinationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rich_seller(seller):
    """A seller with 300.00 available (matured sales), as the journal says."""
    ledger.post(
        key="test:matured",
        kind="seller_funds_mature",
        lines=[
            (postings.seller_pending(seller.pk), Decimal("300.00")),
            (postings.seller_available(seller.pk), Decimal("-300.00")),
        ],
    )
    ledger.post(
        key="test:sale",
        kind="sale",
        lines=[
            (ledger.CLEARING, Decimal("300.00")),
            (postings.seller_pending(seller.pk), Decimal("-300.00")),
        ],
    )
    return seller


@pytest.fixture
def destination(rich_seller):
    return PayoutDestinationFactory(seller=rich_seller)


@pytest.fixture
def finance(db):
    return UserFactory(username="fiona-finance", is_staff=True)


def test_payout_within_the_available_balance_is_requested(rich_seller, destination):
    payout = payout_request(seller=rich_seller, destination=destination, amount="120.50")
    assert payout.status == "requested"
    balances = seller_balances(seller_id=rich_seller.pk)
    assert (balances.available, balances.payouts_requested) == (
        Decimal("179.50"),
        Decimal("120.50"),
    )
    assert journal_is_balanced()


def test_payout_above_the_available_balance_is_refused_and_changes_nothing(
    rich_seller, destination
):
    with pytest.raises(PayoutRefused) as caught:
        payout_request(seller=rich_seller, destination=destination, amount="300.01")
    assert "at most 300.00" in caught.value.message
    assert not Payout.objects.exists()
    assert seller_balances(seller_id=rich_seller.pk).available == Decimal("300.00")


def test_two_requests_cannot_spend_the_same_balance(rich_seller, destination):
    payout_request(seller=rich_seller, destination=destination, amount="200.00")
    with pytest.raises(PayoutRefused):
        payout_request(seller=rich_seller, destination=destination, amount="200.00")
    assert Payout.objects.count() == 1


@pytest.mark.parametrize("amount", ["0", "-5", "1.005", "abc"])
def test_nonsense_amounts_are_refused(rich_seller, destination, amount):
    with pytest.raises(PayoutRefused):
        payout_request(seller=rich_seller, destination=destination, amount=amount)


def test_someone_elses_destination_is_refused(rich_seller):
    with pytest.raises(PayoutRefused):
        payout_request(seller=rich_seller, destination=PayoutDestinationFactory(), amount="10.00")


def test_finance_approves_and_marks_paid(rich_seller, destination, finance):
    payout = payout_request(seller=rich_seller, destination=destination, amount="100.00")
    with pytest.raises(PayoutRefused):
        payout_mark_paid(payout=payout, staff=finance, reference="X")  # approve first
    payout_approve(payout=payout, staff=finance)
    payout = payout_mark_paid(payout=payout, staff=finance, reference="BANK-REF-1")
    assert (payout.status, payout.reference, payout.decided_by) == ("paid", "BANK-REF-1", finance)
    balances = seller_balances(seller_id=rich_seller.pk)
    assert (balances.available, balances.payouts_requested, balances.paid_out) == (
        Decimal("200.00"),
        Decimal("0.00"),
        Decimal("100.00"),
    )
    assert ledger.balance(seller_payouts_requested(rich_seller.pk)) == 0
    assert journal_is_balanced()


def test_a_rejected_payout_goes_back_to_available(rich_seller, destination, finance):
    payout = payout_request(seller=rich_seller, destination=destination, amount="100.00")
    payout_reject(payout=payout, staff=finance, note="Account name does not match")
    assert seller_balances(seller_id=rich_seller.pk).available == Decimal("300.00")
    with pytest.raises(PayoutRefused):
        payout_approve(payout=payout, staff=finance)
    assert journal_is_balanced()


def test_destinations_need_a_bank_name_for_bank_accounts_and_are_unique(seller):
    with pytest.raises(ValidationError):
        payout_destination_create(
            seller=seller, kind="bank", holder_name="Li Si", account="6222020200112233"
        )
    payout_destination_create(
        seller=seller,
        kind="bank",
        holder_name="Li Si",
        account="6222 0202 0011 2233",
        bank_name="ICBC",
    )
    with pytest.raises(ValidationError):
        payout_destination_create(
            seller=seller,
            kind="bank",
            holder_name="Li Si",
            account="6222020200112233",
            bank_name="ICBC",
        )


def test_dashboard_payout_forms(client, rich_seller, destination):
    client.force_login(rich_seller)
    client.post("/sell/payouts/request/", {"destination": destination.pk, "amount": "500.00"})
    assert not Payout.objects.exists()
    response = client.post(
        "/sell/payouts/request/", {"destination": destination.pk, "amount": "50.00"}, follow=True
    )
    assert Payout.objects.get().amount == Decimal("50.00")
    assert "Payout of 50.00 requested" in response.content.decode()
    client.post(
        "/sell/payouts/destinations/",
        {"kind": "alipay", "holder_name": "Sally", "account": "sally@example.com"},
    )
    assert rich_seller.payout_destinations.count() == 2
