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
    return listing_create(
        seller=seller, brand=brand, face_value=Decimal("100.00"), price=Decimal(price), codes=codes
    )


def test_listing_is_created_with_encrypted_codes(seller, brand):
    listing = create(
        seller, brand, [CodeInput("ABCDEF123456", "1234"), CodeInput("ZYXW-9876-5432")]
    )
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
    assert (
        listing_codes_add(listing=listing, seller=seller, codes=[CodeInput("NEWCODE123456")]) == 1
    )
    with pytest.raises(CodesInvalid):
        listing_codes_add(
            listing=listing, seller=seller, codes=[CodeInput("NEWCODE123457"), CodeInput("x")]
        )
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


# --- risk screens each upload (DESIGN.md §6: a new seller dumping many high-value codes) ----------


def many_codes(n: int, prefix: str = "DUMP") -> list[CodeInput]:
    return [CodeInput(f"{prefix}{i:08d}", "1234") for i in range(n)]


def test_an_ordinary_upload_goes_on_sale_and_is_assessed(seller, brand):
    from risk.models import Assessment

    listing = create(seller, brand, many_codes(3))
    assert listing.status == "active"
    assessment = Assessment.objects.get(subject=f"listing-upload:{listing.pk}")
    assert assessment.decision == "allow" and assessment.features["upload_codes"] == 3


def test_a_new_seller_dumping_high_value_codes_waits_for_an_analyst(seller, brand):
    from risk.models import Assessment

    listing = listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal("1000.00"),
        price=Decimal("900.00"),
        codes=many_codes(12),
    )
    listing.refresh_from_db()
    assert (
        listing.status == "under_review" and listing.codes.filter(status="available").count() == 12
    )
    assessment = Assessment.objects.get(subject=f"listing-upload:{listing.pk}")
    assert assessment.decision == "review" and "high_value_dump" in assessment.reasons


def test_an_upload_risk_blocks_is_withdrawn_whole(seller, brand):
    from risk.models import ListEntry

    ListEntry.objects.create(kind="block", field="user", value=str(seller.pk))
    listing = create(seller, brand, many_codes(2))
    listing.refresh_from_db()
    assert listing.status == "withdrawn" and not listing.codes.filter(status="available").exists()


def test_a_score_high_enough_to_block_still_only_holds_the_listing_for_an_analyst(seller, brand):
    from risk.models import Assessment

    listing = listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal("1000.00"),
        price=Decimal("900.00"),
        codes=many_codes(250),
    )
    listing.refresh_from_db()
    assert Assessment.objects.get(subject=f"listing-upload:{listing.pk}").decision == "block"
    assert (
        listing.status == "under_review" and listing.codes.filter(status="available").count() == 250
    )


def test_adding_codes_is_screened_too(seller, brand):
    listing = create(seller, brand, many_codes(2))
    listing_codes_add(listing=listing, seller=seller, codes=many_codes(12, "MORE"))
    listing.refresh_from_db()
    assert listing.status == "active"  # 1,400 in 24 h: small for anyone
    listing_codes_add(listing=listing, seller=seller, codes=many_codes(120, "LOTS"))
    listing.refresh_from_db()
    assert (
        listing.status == "under_review"
    )  # 13,400 of face value in a day from a seller with no sales


def test_risk_staff_release_a_held_listing_in_admin(client, seller, brand):
    from tests.accounts.factories import UserFactory

    listing = listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal("1000.00"),
        price=Decimal("900.00"),
        codes=many_codes(12),
    )
    client.force_login(UserFactory(is_staff=True, groups=["Risk"]))
    client.post(
        "/admin/marketplace/listing/", {"action": "release", "_selected_action": [listing.pk]}
    )
    listing.refresh_from_db()
    assert listing.status == "active"


def test_the_seller_is_told_why_a_held_upload_is_not_on_sale(client, seller, brand):
    client.force_login(seller)
    paste = "\n".join(f"HELD{i:08d},1234" for i in range(12))
    response = client.post(
        "/sell/new/",
        {"brand": brand.pk, "face_value": "1000.00", "price": "900.00", "codes": paste},
        follow=True,
    )
    assert b"goes on sale once our team has checked" in response.content
