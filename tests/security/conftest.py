"""People and things an attacker aims at: a seller with a listing, its buyer, a stranger."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from marketplace import services
from tests.accounts.factories import UserFactory
from tests.marketplace.factories import BrandFactory, ListingFactory, stock


@pytest.fixture
def seller(db):
    return UserFactory(username="sally-seller")


@pytest.fixture
def buyer(db):
    return UserFactory(username="bob-buyer")


@pytest.fixture
def stranger(db):
    return UserFactory(username="mallory")


@pytest.fixture
def listing(seller):
    brand = BrandFactory(slug="test-card", name="Test Card")
    listing = ListingFactory(
        seller=seller, brand=brand, face_value=Decimal("100.00"), price=Decimal("92.00")
    )
    listing.plains = stock(listing, 10)
    return listing


@pytest.fixture
def order(buyer, listing):
    return services.order_create(buyer=buyer, listing=listing, quantity=1)


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def tight_rates(settings):
    """Every action rate down to 3 a minute, so a test can spend one quickly."""

    def tighten(*scopes: str, rate: str = "3/min"):
        settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, **dict.fromkeys(scopes, rate)}

    return tighten


@pytest.fixture
def delivered(order):
    """The buyer's order, paid and delivered (its code revealable to the buyer only)."""
    from tests.marketplace.conftest import announce_success
    from tests.marketplace.factories import succeeded_payment

    announce_success(succeeded_payment(order))
    order.refresh_from_db()
    return order


@pytest.fixture
def dispute(delivered, buyer):
    return services.dispute_open(
        order=delivered,
        buyer=buyer,
        code_id=delivered.codes.get().pk,
        reason="invalid",
        note="Does not work",
    )


def logged_in(user, **kwargs):
    from django.test import Client

    client = Client(**kwargs)
    client.force_login(user)
    return client
