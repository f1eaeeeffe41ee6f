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
