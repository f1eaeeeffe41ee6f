import pytest
from django.contrib.auth.models import Group

from marketplace import postings
from marketplace.models import Dispute, Payout
from marketplace.services import dispute_open, order_create, payout_request
from payments import ledger
from tests.accounts.factories import UserFactory
from tests.marketplace.factories import PayoutDestinationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(listing, buyer, pay):
    order = order_create(buyer=buyer, listing=listing, quantity=2)
    pay(order)
    return order


def staff_in(group: str):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_admin_pages_show_no_secret(admin_client, delivered, listing):
    for url in (
        "/admin/marketplace/order/",
        f"/admin/marketplace/order/{delivered.pk}/change/",
        "/admin/marketplace/listing/",
        f"/admin/marketplace/listing/{listing.pk}/change/",
        "/admin/marketplace/cardcode/",
        "/admin/marketplace/revealaudit/",
        "/admin/marketplace/brand/",
        "/admin/marketplace/dispute/",
        "/admin/marketplace/payout/",
        "/admin/marketplace/payoutdestination/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert not any(plain in html for plain in listing.plains), url


def test_support_decides_a_dispute_from_the_admin(client, delivered, refunds):
    code = delivered.codes.first()
    dispute = dispute_open(
        order=delivered, buyer=delivered.buyer, code_id=code.pk, reason="invalid", note="no"
    )
    client.force_login(staff_in("Support"))
    response = client.post(
        "/admin/marketplace/dispute/",
        {"action": "refund_buyer", "_selected_action": [dispute.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert Dispute.objects.get().status == "refunded" and len(refunds.calls) == 1


def test_finance_approves_and_pays_out_from_the_admin(client, seller):
    ledger.post(
        key="t:avail",
        kind="t",
        lines=[(ledger.CLEARING, 50), (postings.seller_available(seller.pk), -50)],
    )
    payout = payout_request(
        seller=seller, destination=PayoutDestinationFactory(seller=seller), amount="40.00"
    )
    client.force_login(staff_in("Finance"))
    for action in ("approve", "mark_paid"):
        client.post(
            "/admin/marketplace/payout/", {"action": action, "_selected_action": [payout.pk]}
        )
    assert Payout.objects.get().status == "paid"


def test_support_can_look_orders_up_but_not_touch_payouts(client, delivered):
    client.force_login(staff_in("Support"))
    assert client.get(f"/admin/marketplace/order/{delivered.pk}/change/").status_code == 200
    assert client.get("/admin/marketplace/payout/").status_code == 403


def test_support_re_sends_the_delivery_email(client, delivered, mailoutbox):
    mailoutbox.clear()  # the first one left at delivery
    client.force_login(staff_in("Support"))
    client.post(
        "/admin/marketplace/order/",
        {"action": "resend_delivery_email", "_selected_action": [delivered.pk]},
    )
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [delivered.buyer.email]
    assert f"/orders/{delivered.number}/" in mailoutbox[0].body
    assert not delivered.reveals.exists(), "the default mail links to the order; it reveals nothing"


def test_support_re_sends_the_codes_to_a_buyer_who_opted_in(client, delivered, mailoutbox):
    delivered.buyer.email_codes = True
    delivered.buyer.save(update_fields=["email_codes"])
    mailoutbox.clear()
    client.force_login(staff_in("Support"))
    client.post(
        "/admin/marketplace/order/",
        {"action": "resend_delivery_email", "_selected_action": [delivered.pk]},
    )
    assert len(mailoutbox) == 1
    assert delivered.reveals.get().channel == "email"


def test_risk_withdraws_a_suspicious_listing_from_the_admin(client, listing):
    client.force_login(staff_in("Risk"))
    client.post(
        "/admin/marketplace/listing/", {"action": "withdraw", "_selected_action": [listing.pk]}
    )
    listing.refresh_from_db()
    assert listing.status == "withdrawn"
    assert set(listing.codes.values_list("status", flat=True)) == {"withdrawn"}
