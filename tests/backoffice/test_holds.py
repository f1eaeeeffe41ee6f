"""A risk hold only Risk can lift: the seller sees "under review" and cannot change it."""

import pytest
from auditlog.models import LogEntry

from marketplace.errors import ListingUnavailable
from marketplace.models import Listing
from marketplace.services import listing_update
from risk.models import Assessment
from tests.accounts.factories import UserFactory
from tests.backoffice.conftest import staff_client
from tests.marketplace.factories import ListingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def held():
    listing = ListingFactory(
        status=Listing.Status.UNDER_REVIEW, face_value="12000.00", price="11000.00"
    )
    Assessment.objects.create(
        subject=f"listing-upload:{listing.pk}",
        user_ref=str(listing.seller_id),
        score=95,
        decision="review",
        reasons=["new_seller_large_upload"],
    )
    return listing


@pytest.mark.parametrize("status", [Listing.Status.ACTIVE, Listing.Status.PAUSED])
def test_the_seller_cannot_lift_a_hold_through_the_service(held, status):
    with pytest.raises(ListingUnavailable):
        listing_update(listing=held, seller=held.seller, status=status)
    with pytest.raises(ListingUnavailable):
        listing_update(listing=held, seller=held.seller, price="10000.00")
    held.refresh_from_db()
    assert held.status == "under_review" and str(held.price) == "11000.00"


def test_the_seller_cannot_put_a_hold_on_either(held):
    listing = ListingFactory(seller=held.seller)
    with pytest.raises(ListingUnavailable):
        listing_update(listing=listing, seller=listing.seller, status=Listing.Status.UNDER_REVIEW)


def test_the_seller_page_says_under_review_and_offers_no_resume(client, held):
    client.force_login(held.seller)
    page = client.get(f"/sell/listings/{held.pk}/").content.decode()
    assert 'data-testid="under-review"' in page and 'value="resume"' not in page
    client.post(f"/sell/listings/{held.pk}/update/", {"action": "resume"})
    held.refresh_from_db()
    assert held.status == "under_review"


def test_the_seller_may_still_withdraw_a_held_listing(held):
    listing_update(listing=held, seller=held.seller, status=Listing.Status.WITHDRAWN)
    held.refresh_from_db()
    assert held.status == "withdrawn"


def test_risk_queue_shows_what_waits_with_score_and_reasons_and_risk_releases(client, held):
    ListingFactory(status=Listing.Status.ACTIVE)
    analyst = staff_client(client, "Risk").user
    response = client.get("/admin/marketplace/listing/", {"status__exact": "under_review"})
    assert [obj.pk for obj in response.context["cl"].result_list] == [held.pk]
    page = response.content.decode()
    assert "95 · new_seller_large_upload" in page and "审核中" in page
    client.post("/admin/marketplace/listing/", {"action": "release", "_selected_action": [held.pk]})
    held.refresh_from_db()
    assert held.status == "active"
    assert LogEntry.objects.get_for_object(held).filter(actor=analyst).exists()


def test_support_cannot_release_a_hold(client, held):
    staff_client(client, "Support")
    client.post("/admin/marketplace/listing/", {"action": "release", "_selected_action": [held.pk]})
    held.refresh_from_db()
    assert held.status == "under_review"
    UserFactory()
