"""A shop day on the sandbox Alipay channel: sellers, stocked listings, buyers who order and pay
at the channel — with or without the channel's notification reaching us — and the day's pull."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from marketplace.models import Order
from marketplace.services import order_create, order_pay
from payments.channels.base import ClientInfo
from payments.models import Payment
from reconciliation import services
from tests.accounts.factories import UserFactory
from tests.marketplace.factories import BrandFactory, ListingFactory, stock
from tests.payments.factories import sandbox_account
from tests.payments.sandbox_payer import Payer


@pytest.fixture
def alipay(db):
    return sandbox_account("alipay")


@pytest.fixture
def brand(db):
    return BrandFactory(slug="test-card", name="Test Card", commission_percent=Decimal("5.00"))


def listing_of(seller, brand, *, price: str, codes: int = 5):
    listing = ListingFactory(
        seller=seller, brand=brand, face_value=Decimal("100.00"), price=Decimal(price)
    )
    listing.plains = stock(listing, codes)
    return listing


class Shop:
    """Buyers ordering and paying at the sandbox channel through the real platform."""

    def __init__(self, client, captured):
        self.client, self.captured = client, captured

    def order(self, listing, quantity: int = 1, buyer=None) -> Order:
        return order_create(buyer=buyer or UserFactory(), listing=listing, quantity=quantity)

    def start(self, order: Order) -> Payment:
        payment = order_pay(
            order=order,
            buyer=order.buyer,
            method="alipay",
            client=ClientInfo(ip="203.0.113.7", device="desktop"),
            return_url=f"http://testserver/orders/{order.number}/",
        )
        assert payment.status == "pending", payment.status
        return payment

    def pay(self, payment: Payment, *, notified: bool = True) -> Payment:
        """The buyer approves at the channel. ``notified=False``: the channel took the money
        but its notification never reached us (a lost callback)."""
        attempt = payment.attempts.get()
        with self.captured(execute=notified):
            Payer(self.client).decide(attempt.action, "approve")
        payment.refresh_from_db()
        return payment

    def buy(self, listing, quantity: int = 1, *, notified: bool = True) -> tuple[Order, Payment]:
        order = self.order(listing, quantity)
        payment = self.pay(self.start(order), notified=notified)
        order.refresh_from_db()
        return order, payment


@pytest.fixture
def shop(client, alipay, django_capture_on_commit_callbacks):
    return Shop(client, django_capture_on_commit_callbacks)


def pull_today() -> dict:
    [entry] = services.settlement_pull(codes=["alipay"], day=timezone.localdate())
    assert entry["status"] == "reconciled", entry
    return entry["result"]


def expire(order: Order) -> None:
    from marketplace.services import order_reservations_release

    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    order_reservations_release()
    order.refresh_from_db()


@pytest.fixture(autouse=True)
def _english(settings):
    """Finance's messages are asserted in English whatever translations exist."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    """Raw settlement files go to storage: a directory of the test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
