"""Everything a buyer or seller can name by id or number is theirs alone: another person who
guesses the name gets a 404 (never a 403 that confirms it exists), and nothing changes."""

import pytest

from marketplace.models import CardCode, Dispute, Listing, Order, Payout, RevealAudit
from payments.models import Payment
from tests.marketplace.factories import ListingFactory, PayoutDestinationFactory, stock
from tests.payments.factories import PaymentFactory
from tests.security.conftest import api_as, logged_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/orders/{n}/", "/orders/{n}/status/"])
def test_another_buyers_order_pages_are_404(order, stranger, path):
    assert logged_in(stranger).get(path.format(n=order.number)).status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/orders/{n}/pay/", "/orders/{n}/challenge/", "/orders/{n}/check/", "/orders/{n}/cancel/"],
)
def test_another_buyers_order_cannot_be_acted_on(order, stranger, path):
    response = logged_in(stranger).post(path.format(n=order.number), {"method": "alipay"})
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == Order.Status.AWAITING_PAYMENT
    assert not Payment.objects.exists()


def test_another_buyers_codes_are_not_revealed_on_the_page_or_the_api(delivered, listing, stranger):
    plain = listing.plains
    page = logged_in(stranger).get(f"/orders/{delivered.number}/")
    api = api_as(stranger).get(f"/api/v1/orders/{delivered.number}/")
    assert page.status_code == api.status_code == 404
    assert not any(p in page.content.decode() + api.content.decode() for p in plain)
    assert not RevealAudit.objects.exists()


def test_the_seller_cannot_reveal_the_code_they_sold(delivered, seller):
    assert logged_in(seller).get(f"/orders/{delivered.number}/").status_code == 404
    assert api_as(seller).get(f"/api/v1/orders/{delivered.number}/").status_code == 404
    assert not RevealAudit.objects.exists()


@pytest.mark.parametrize("action", ["pay", "cancel"])
def test_another_buyers_order_cannot_be_acted_on_through_the_api(order, stranger, action):
    response = api_as(stranger).post(
        f"/api/v1/orders/{order.number}/{action}/", {"method": "alipay"}, format="json"
    )
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == Order.Status.AWAITING_PAYMENT


def test_another_buyers_order_is_not_in_my_list(order, stranger):
    assert api_as(stranger).get("/api/v1/orders/").json()["count"] == 0
    assert order.number not in logged_in(stranger).get("/orders/").content.decode()


def test_another_buyers_dispute_cannot_be_opened(delivered, stranger):
    client = logged_in(stranger)
    code = delivered.codes.get()
    assert client.get(f"/orders/{delivered.number}/dispute/").status_code == 404
    response = client.post(
        f"/orders/{delivered.number}/dispute/",
        {"code": code.pk, "reason": "invalid", "note": "mine now"},
    )
    assert response.status_code == 404
    assert not Dispute.objects.exists()


def test_another_sellers_dispute_cannot_be_answered(dispute, stranger):
    response = logged_in(stranger).post(
        f"/sell/disputes/{dispute.pk}/answer/", {"answer": "the buyer is lying"}
    )
    assert response.status_code == 404
    dispute.refresh_from_db()
    assert dispute.seller_answer == "" and dispute.status == Dispute.Status.OPEN


def test_the_buyer_cannot_answer_as_the_seller(dispute, buyer):
    logged_in(buyer).post(f"/sell/disputes/{dispute.pk}/answer/", {"answer": "all fine"})
    dispute.refresh_from_db()
    assert dispute.seller_answer == ""


def test_another_sellers_listing_cannot_be_seen_or_changed(listing, stranger):
    client = logged_in(stranger)
    code = listing.codes.first()
    assert client.get(f"/sell/listings/{listing.pk}/").status_code == 404
    assert (
        client.post(f"/sell/listings/{listing.pk}/", {"codes": "STOLENCODE000001"}).status_code
        == 404
    )
    assert (
        client.post(
            f"/sell/listings/{listing.pk}/update/", {"action": "reprice", "price": "1.00"}
        ).status_code
        == 404
    )
    withdraw = client.post(f"/sell/listings/{listing.pk}/update/", {"action": "withdraw"})
    assert withdraw.status_code == 404
    assert client.post(f"/sell/listings/{listing.pk}/codes/{code.pk}/withdraw/").status_code == 404
    listing.refresh_from_db()
    code.refresh_from_db()
    assert listing.price == 92 and listing.status == Listing.Status.ACTIVE
    assert code.status == CardCode.Status.AVAILABLE
    assert listing.codes.count() == 10


def test_a_code_of_another_listing_cannot_be_withdrawn_through_my_own(listing, stranger):
    mine = ListingFactory(seller=stranger, brand=listing.brand)
    stock(mine, 1, prefix="MINEMINE")
    theirs = listing.codes.first()
    response = logged_in(stranger).post(f"/sell/listings/{mine.pk}/codes/{theirs.pk}/withdraw/")
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == CardCode.Status.AVAILABLE


def test_anonymous_visitors_are_sent_to_log_in_not_shown_a_listing(listing, client):
    response = client.get(f"/sell/listings/{listing.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_payout_cannot_go_to_another_sellers_account(seller, stranger):
    theirs = PayoutDestinationFactory(seller=seller)
    logged_in(stranger).post("/sell/payouts/request/", {"destination": theirs.pk, "amount": "1.00"})
    assert not Payout.objects.exists()


def test_another_persons_payment_is_404_on_the_api_and_the_wallet(buyer, stranger):
    payment = PaymentFactory(buyer=buyer, reference="topup:abc", status="challenge")
    api = api_as(stranger)
    assert api.get(f"/api/v1/payments/{payment.public_id}/").status_code == 404
    assert (
        api.post(f"/api/v1/payments/{payment.public_id}/challenge/", {"code": "123456"}).status_code
        == 404
    )
    assert logged_in(stranger).get(f"/wallet/topups/{payment.public_id}/").status_code == 404
    payment.refresh_from_db()
    assert payment.status == "challenge" and not payment.risk
