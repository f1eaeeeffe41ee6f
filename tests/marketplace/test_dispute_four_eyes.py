"""Support's decision for the buyer is a refund request waiting for Finance: no money leaves
on Support's word; the dispute reads "refund awaiting approval" until Finance approves; a
decline undoes the decision and reopens the dispute."""

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry

from marketplace import postings
from marketplace.models import CardCode, Dispute
from marketplace.services import dispute_open, dispute_reject, order_create, seller_funds_mature
from payments import ledger
from payments import services as payment_services
from payments.models import Refund
from tests.accounts.factories import UserFactory
from tests.marketplace.conftest import journal_is_balanced, with_attempt

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(listing, buyer, pay):
    order = order_create(buyer=buyer, listing=listing, quantity=2)
    with_attempt(pay(order))
    return order


@pytest.fixture
def dispute(delivered):
    return dispute_open(
        order=delivered,
        buyer=delivered.buyer,
        code_id=delivered.codes.order_by("id").first().pk,
        reason="used",
        note="Issuer says it was used.",
    )


def decide_for_buyer(client, dispute, user):
    client.force_login(user)
    return client.post(
        "/admin/marketplace/dispute/",
        {"action": "refund_buyer", "_selected_action": [dispute.pk]},
        follow=True,
    )


def support_user():
    return UserFactory(username="support-chen", is_staff=True, groups=["Support"])


def finance_user(name="finance-wang"):
    return UserFactory(username=name, is_staff=True, groups=["Finance"])


def test_supports_decision_asks_for_a_refund_and_sends_nothing(client, dispute, listing):
    support = support_user()
    decide_for_buyer(client, dispute, support)
    dispute.refresh_from_db()
    refund = dispute.refund
    assert refund.status == "requested" and refund.requested_by == support
    assert refund.amount == Decimal("92.00") and refund.approved_by is None
    assert dispute.status == "refunded" and dispute.refund_awaiting_approval
    assert dispute.get_status_shown() == "refund awaiting approval"
    page = client.get("/admin/marketplace/dispute/").content.decode()
    assert "refund awaiting approval" in page
    events = LogEntry.objects.get_for_object(refund).filter(
        actor=support, action=LogEntry.Action.ACCESS
    )
    assert [e.additional_data["event"] for e in events] == ["refund_request"]
    # auditlog's own row of the change names the same person
    assert (
        LogEntry.objects.get_for_object(refund)
        .filter(actor=support, action=LogEntry.Action.CREATE)
        .exists()
    )


def test_finance_approves_and_only_then_the_refund_goes_to_the_channel(client, dispute):
    decide_for_buyer(client, dispute, support_user())
    dispute.refresh_from_db()
    finance = finance_user()
    payment_services.refund_decide(refund=dispute.refund, approve=True, by=finance)
    refund = Refund.objects.get(pk=dispute.refund_id)
    assert refund.status == "pending" and refund.approved_by == finance
    dispute.refresh_from_db()
    assert dispute.get_status_shown() == "refunded to buyer"


def test_support_cannot_approve_the_refund_its_decision_asked_for(client, dispute):
    support = support_user()
    decide_for_buyer(client, dispute, support)
    dispute.refresh_from_db()
    with pytest.raises(payment_services.PaymentError):
        payment_services.refund_decide(refund=dispute.refund, approve=True, by=support)
    assert Refund.objects.get(pk=dispute.refund_id).status == "requested"


def test_finance_declining_reopens_the_dispute_and_undoes_the_decision(
    client, dispute, delivered, listing
):
    pending = postings.seller_pending(listing.seller_id)
    before = ledger.balance(pending, natural=True)
    decide_for_buyer(client, dispute, support_user())
    dispute.refresh_from_db()
    assert ledger.balance(pending, natural=True) == before - Decimal("87.40")
    payment_services.refund_decide(
        refund=dispute.refund, approve=False, by=finance_user(), reason="issuer says unused"
    )
    dispute.refresh_from_db()
    delivered.refresh_from_db()
    assert dispute.status == "open" and dispute.decided_by is None
    assert "issuer says unused" in dispute.decision_note
    assert CardCode.objects.get(pk=dispute.code_id).status == "sold"
    assert delivered.status == "disputed"
    assert ledger.balance(pending, natural=True) == before
    assert journal_is_balanced()
    # Support decides again, this time for the seller.
    dispute_reject(dispute=dispute, staff=support_user_2(), note="code was fine")
    dispute.refresh_from_db()
    assert dispute.status == "rejected"


def support_user_2():
    return UserFactory(username="support-li", is_staff=True, groups=["Support"])


def test_deciding_for_the_buyer_again_after_a_decline_posts_again(client, dispute, listing):
    pending = postings.seller_pending(listing.seller_id)
    before = ledger.balance(pending, natural=True)
    decide_for_buyer(client, dispute, support_user())
    dispute.refresh_from_db()
    payment_services.refund_decide(
        refund=dispute.refund, approve=False, by=finance_user(), reason="check with issuer"
    )
    decide_for_buyer(client, dispute, support_user_2())
    dispute.refresh_from_db()
    assert dispute.status == "refunded" and dispute.refund.status == "requested"
    assert ledger.balance(pending, natural=True) == before - Decimal("87.40")
    assert Refund.objects.count() == 2 and journal_is_balanced()


def test_the_sellers_money_does_not_mature_while_the_refund_awaits_finance(
    client, dispute, delivered, listing
):
    decide_for_buyer(client, dispute, support_user())
    later = delivered.guarantee_until + dt.timedelta(hours=1)
    assert seller_funds_mature(now=later) == 0
    dispute.refresh_from_db()
    payment_services.refund_decide(refund=dispute.refund, approve=True, by=finance_user())
    assert seller_funds_mature(now=later) == 1


def test_the_buyer_reads_refund_awaiting_approval(client, dispute, delivered):
    decide_for_buyer(client, dispute, support_user())
    client.force_login(delivered.buyer)
    page = client.get(f"/orders/{delivered.number}/dispute/").content.decode()
    assert "refund awaiting approval" in page
    assert Dispute.objects.get().refund.status == "requested"
