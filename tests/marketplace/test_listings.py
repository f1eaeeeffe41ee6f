from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from marketplace import vault
from marketplace.code_formats import CodeInput, parse_paste
from marketplace.errors import CodesInvalid, ListingUnavailable
from marketplace.models import CardCode, Listing
from marketplace.services import (
    card_code_withdraw,
    listing_codes_add,
    listing_create,
    listing_update,
)
from tests.marketplace.factories import BrandFactory, CardCodeFactory

pytestmark = pytest.mark.django_db


def create(seller, brand, codes, price="92.00"):
    return listing_create(seller=seller, brand=brand, face_value=Decimal("100.00"), price=Decimal(price), codes=codes)


def test_listing_is_created_with_encrypted_codes(seller, brand):
    listing = create(seller, brand, [CodeInput("ABCDEF123456", "1234"), CodeInput("ZYXW-9876-5432")])
    codes = list(listing.codes.order_by("id"))
    assert [c.status for c in codes] == ["available", "available"]
    assert vault.decrypt(codes[1].code_encrypted) == "ZYXW98765432"  # stored without separators
    assert vault.decrypt(codes[0].pin_encrypted) == "1234"


def test_bulk_upload_errors_name_each_line_and_nothing_is_saved(seller, brand):
    entries = parse_paste("GOODCODE000001\nbad!\n\nGOODCODE000002\nGOODCODE000001\nSHORT\n")
    with pytest.raises(CodesInvalid) as caught:
        create(seller, brand, entries)
    by_line = {entries[i].line: " ".join(msgs) for i, msgs in caught.value.errors.items()}
    assert set(by_line) == {2, 5, 6}
    assert "characters" in by_line[2]
    assert "already in this batch at line 1" in by_line[5]
    assert "has 5 characters" in by_line[6]
    assert not Listing.objects.exists() and not CardCode.objects.exists()


def test_a_code_listed_anywhere_on_the_marketplace_is_refused(seller, brand):
    CardCodeFactory(plain="TAKENCODE12345")
    with pytest.raises(CodesInvalid) as caught:
        create(seller, brand, [CodeInput("FRESHCODE12345"), CodeInput("takencode-12345")])
    assert caught.value.errors == {1: ["This code is already listed on Cardex."]}
    assert CardCode.objects.count() == 1


def test_price_above_face_value_is_refused(seller, brand):
    with pytest.raises(ValidationError) as caught:
        create(seller, brand, [CodeInput("ABCDEF123456")], price="100.01")
    assert "price" in caught.value.message_dict
    assert not Listing.objects.exists()


def test_an_empty_batch_is_refused(seller, brand):
    with pytest.raises(CodesInvalid):
        create(seller, brand, [])


def test_ten_thousand_lines_upload_in_one_batch(seller, brand):
    entries = parse_paste("\n".join(f"BULKCODE{i:08d}" for i in range(10_000)))
    listing = create(seller, brand, entries)
    assert listing.codes.count() == 10_000


def test_adding_codes_to_someone_elses_listing_is_refused(listing, buyer):
    with pytest.raises(ListingUnavailable):
        listing_codes_add(listing=listing, seller=buyer, codes=[CodeInput("NEWCODE123456")])


def test_adding_codes_validates_against_the_brand_format(listing, seller):
    assert listing_codes_add(listing=listing, seller=seller, codes=[CodeInput("NEWCODE123456")]) == 1
    with pytest.raises(CodesInvalid):
        listing_codes_add(listing=listing, seller=seller, codes=[CodeInput("NEWCODE123457"), CodeInput("x")])
    assert listing.codes.count() == 6


def test_reprice_pause_and_withdraw(listing, seller):
    listing_update(listing=listing, seller=seller, price=Decimal("90.00"))
    listing_update(listing=listing, seller=seller, status=Listing.Status.PAUSED)
    listing.refresh_from_db()
    assert (listing.price, listing.status) == (Decimal("90.00"), "paused")
    listing_update(listing=listing, seller=seller, status=Listing.Status.WITHDRAWN)
    assert set(listing.codes.values_list("status", flat=True)) == {"withdrawn"}
    with pytest.raises(ListingUnavailable):
        listing_update(listing=listing, seller=seller, status=Listing.Status.ACTIVE)


def test_reprice_above_face_value_changes_nothing(listing, seller):
    with pytest.raises(ValidationError):
        listing_update(listing=listing, seller=seller, price=Decimal("150.00"))
    listing.refresh_from_db()
    assert listing.price == Decimal("92.00")


def test_one_unsold_code_can_be_withdrawn(listing, seller):
    code = listing.codes.first()
    card_code_withdraw(code=code, seller=seller)
    assert listing.codes.filter(status="withdrawn").count() == 1


def test_inactive_brand_takes_no_new_listings(seller):
    brand = BrandFactory(active=False)
    with pytest.raises(ListingUnavailable):
        create(seller, brand, [CodeInput("ABCDEF123456")])
