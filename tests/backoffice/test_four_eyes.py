"""Payouts: each step keeps who did it and when; no decision is overwritten; nobody approves
or pays their own payout."""

from decimal import Decimal

import pytest
from auditlog.models import LogEntry

from marketplace import postings
from marketplace.errors import PayoutRefused
from marketplace.models import Payout
from marketplace.services import payout_approve, payout_mark_paid, payout_reject, payout_request
from payments import ledger
from tests.accounts.factories import UserFactory
from tests.marketplace.factories import PayoutDestinationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def payout():
    seller = UserFactory()
    ledger.post(
        key="t:avail",
        kind="seller_funds_mature",
        lines=[
            (ledger.CLEARING, Decimal("300.00")),
            (postings.seller_available(seller.pk), Decimal("-300.00")),
        ],
    )
    destination = PayoutDestinationFactory(seller=seller)
    return payout_request(seller=seller, destination=destination, amount="100.00")


def finance_user(name):
    return UserFactory(username=name, is_staff=True, groups=["Finance"])


def test_approval_then_rejection_keeps_both_who_and_when(payout):
    approver, rejecter = finance_user("wang"), finance_user("li")
    payout_approve(payout=payout, staff=approver)
    payout = payout_reject(payout=payout, staff=rejecter, note="bank account closed")
    assert (payout.approved_by, payout.rejected_by, payout.decided_by) == (
        approver,
        rejecter,
        approver,
    )
    assert payout.approved_at and payout.rejected_at and payout.note == "bank account closed"


def test_marking_paid_records_who_paid(payout):
    approver, payer = finance_user("wang"), finance_user("zhao")
    payout_approve(payout=payout, staff=approver)
    payout = payout_mark_paid(payout=payout, staff=payer, reference="BANK-1")
    assert (payout.approved_by, payout.paid_by, payout.status) == (approver, payer, "paid")


def test_a_decision_is_final(payout):
    finance = finance_user("wang")
    payout_reject(payout=payout, staff=finance, note="no")
    with pytest.raises(PayoutRefused):
        payout_approve(payout=payout, staff=finance_user("li"))
    payout.refresh_from_db()
    assert payout.status == Payout.Status.REJECTED and payout.rejected_by == finance


def test_nobody_approves_or_pays_their_own_payout(payout):
    seller = payout.seller
    seller.is_staff = True
    seller.save()
    with pytest.raises(PayoutRefused):
        payout_approve(payout=payout, staff=seller)
    payout_approve(payout=payout, staff=finance_user("wang"))
    with pytest.raises(PayoutRefused):
        payout_mark_paid(payout=payout, staff=seller, reference="SELF")
    payout.refresh_from_db()
    assert payout.status == Payout.Status.APPROVED and payout.paid_by is None


def test_each_payout_step_through_admin_is_in_the_audit_trail(client, payout):
    approver = finance_user("wang")
    client.force_login(approver)
    client.post(
        "/admin/marketplace/payout/", {"action": "approve", "_selected_action": [payout.pk]}
    )
    payout.refresh_from_db()
    assert payout.approved_by == approver
    actions = LogEntry.objects.get_for_object(payout)
    assert actions.filter(action=LogEntry.Action.ACCESS, actor=approver).exists()
    assert actions.filter(action=LogEntry.Action.UPDATE, actor=approver).exists()
