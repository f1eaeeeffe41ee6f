import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.utils import timezone

from marketplace.errors import ListingUnavailable, OrderNotFound, OrderNotPayable, OutOfStock
from marketplace.models import CardCode, Listing, Order
from marketplace.selectors import order_for_buyer
from marketplace.services import order_cancel, order_create, order_pay, order_reservations_release
from marketplace.tasks import release_expired_reservations
from payments.payables import PayableFacts, PayableRef
from tests.accounts.factories import UserFactory
from tests.marketplace.factories import ListingFactory, stock

pytestmark = pytest.mark.django_db


def test_order_reserves_codes_for_the_reservation_window(listing, buyer, settings):
    settings.ORDER_RESERVATION_MINUTES = 15
    order = order_create(buyer=buyer, listing=listing, quantity=3)
    assert order.status == "awaiting_payment"
    assert order.amount == Decimal("276.00") and order.unit_price == Decimal("92.00")
    assert order.unit_commission == Decimal("4.60")  # 5% of 92.00
    assert abs((order.expires_at - timezone.now()) - dt.timedelta(minutes=15)) < dt.timedelta(
        seconds=5
    )
    reserved = CardCode.objects.filter(order=order)
    assert reserved.count() == 3 and set(reserved.values_list("status", flat=True)) == {"reserved"}
    assert listing.codes.filter(status="available").count() == 2


def test_order_numbers_are_long_and_unguessable(listing, buyer):
    numbers = {order_create(buyer=buyer, listing=listing, quantity=1).number for _ in range(3)}
    assert len(numbers) == 3 and all(len(n) == 16 for n in numbers)


def test_not_enough_stock_is_an_error_and_reserves_nothing(listing, buyer):
    with pytest.raises(OutOfStock) as caught:
        order_create(buyer=buyer, listing=listing, quantity=6)
    assert caught.value.available == 5 and "Only 5" in caught.value.message
    assert not Order.objects.exists()
    assert listing.codes.filter(status="available").count() == 5


@pytest.mark.parametrize("quantity", [0, -1, 101])
def test_quantity_outside_bounds_is_refused(listing, buyer, quantity):
    with pytest.raises(OrderNotPayable):
        order_create(buyer=buyer, listing=listing, quantity=quantity)


def test_paused_listing_and_own_listing_cannot_be_bought(listing, buyer, seller):
    with pytest.raises(ListingUnavailable):
        order_create(buyer=seller, listing=listing, quantity=1)
    Listing.objects.filter(pk=listing.pk).update(status="paused")
    with pytest.raises(ListingUnavailable):
        order_create(buyer=buyer, listing=listing, quantity=1)


def test_cancel_gives_codes_back(listing, buyer):
    order = order_create(buyer=buyer, listing=listing, quantity=2)
    order_cancel(order=order, buyer=buyer)
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert listing.codes.filter(status="available").count() == 5


def test_lapsed_reservations_are_released_by_the_beat_task(listing, buyer):
    lapsed = order_create(buyer=buyer, listing=listing, quantity=2)
    fresh = order_create(buyer=buyer, listing=listing, quantity=1)
    Order.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert release_expired_reservations.delay().get() == 1
    lapsed.refresh_from_db()
    fresh.refresh_from_db()
    assert (lapsed.status, fresh.status) == ("expired", "awaiting_payment")
    assert listing.codes.filter(status="available").count() == 4
    assert order_reservations_release() == 0


def test_codes_of_a_withdrawn_listing_are_withdrawn_when_the_reservation_lapses(
    listing, buyer, seller
):
    from marketplace.services import listing_update

    order = order_create(buyer=buyer, listing=listing, quantity=1)
    listing_update(listing=listing, seller=seller, status=Listing.Status.WITHDRAWN)
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    order_reservations_release()
    assert set(listing.codes.values_list("status", flat=True)) == {"withdrawn"}


def test_buyer_sees_only_their_own_orders(listing, buyer):
    order = order_create(buyer=buyer, listing=listing, quantity=1)
    assert order_for_buyer(buyer=buyer, number=order.number) == order
    with pytest.raises(OrderNotFound):
        order_for_buyer(buyer=UserFactory(), number=order.number)


def test_order_pay_hands_the_order_to_the_payment_platform(listing, buyer, monkeypatch):
    from payments import services as payment_services
    from payments.client import Client

    seen = {}

    def fake_start(**kwargs):
        seen.update(kwargs)
        return "payment"

    monkeypatch.setattr(payment_services, "payment_start", fake_start)
    order = order_create(buyer=buyer, listing=listing, quantity=2)
    client = Client(ip="203.0.113.9", user_agent="pytest")
    assert (
        order_pay(order=order, buyer=buyer, method="alipay", client=client, return_url="http://x/")
        == "payment"
    )
    assert seen["reference"] == PayableRef.order(order.number)
    assert str(seen["reference"]) == f"order:{order.number}" == order.payment_reference
    assert seen["amount"] == Decimal("184.00") and seen["currency"] == "CNY"
    assert seen["expires_at"] == order.expires_at and seen["client"] is client
    facts = seen["risk_facts"]
    assert isinstance(facts, PayableFacts)
    assert facts.seller_id == listing.seller_id and facts.brand_high_risk is False
    assert (facts.account_age_days, facts.good_orders, facts.disputes) == (0, 0, 0)


def test_an_expired_or_foreign_order_cannot_be_paid(listing, buyer):
    from payments.client import Client

    order = order_create(buyer=buyer, listing=listing, quantity=1)
    with pytest.raises(OrderNotFound):
        order_pay(order=order, buyer=UserFactory(), method="alipay", client=Client(), return_url="")
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(OrderNotPayable):
        order_pay(order=order, buyer=buyer, method="alipay", client=Client(), return_url="")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_forty_concurrent_buyers_racing_for_ten_codes_get_exactly_ten_orders():
    listing = ListingFactory()
    stock(listing, 10)
    buyers = [UserFactory() for _ in range(40)]
    start = threading.Barrier(40)

    def buy(buyer):
        start.wait()
        try:
            return order_create(buyer=buyer, listing=listing, quantity=1).number
        except OutOfStock:
            return None
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(buy, buyers))

    assert connection.vendor == "postgresql"
    assert sum(r is not None for r in results) == 10
    assert Order.objects.count() == 10
    held = list(CardCode.objects.values_list("order_id", flat=True))
    assert None not in held and len(set(held)) == 10  # every code reserved, each for one order
