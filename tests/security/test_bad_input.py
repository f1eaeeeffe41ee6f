"""Malformed and oversized input — uploads, non-finite and out-of-range numbers — is a 4xx with
a message, never a 500, and nothing is saved."""

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from marketplace.models import CardCode, Listing, Order, Payout
from payments.models import Payment
from tests.marketplace.factories import PayoutDestinationFactory
from tests.security.conftest import api_as, logged_in

pytestmark = pytest.mark.django_db

NON_FINITE = ["NaN", "nan", "Infinity", "-Infinity", "inf", "1e999999", "-1e999999", "sNaN"]
OUT_OF_RANGE = ["-1", "0", "1e12", "99999999999.99", "12.345"]


def _new_listing(client, listing, **fields):
    data = {"brand": listing.brand_id, "face_value": "50.00", "price": "45.00", **fields}
    return client.post("/sell/new/", data)


@pytest.mark.parametrize("value", NON_FINITE + ["abc", "1,5"])
def test_listing_filters_refuse_non_finite_face_values(client, listing, value):
    response = client.get("/api/v1/listings/", {"face_value": value})
    assert response.status_code == 400
    assert response.json()


@pytest.mark.parametrize("value", NON_FINITE + OUT_OF_RANGE)
def test_catalogue_filters_never_fail_on_odd_numbers(client, listing, value):
    response = client.get("/", {"face_value_min": value, "face_value_max": value})
    assert response.status_code in {200, 400}


@pytest.mark.parametrize("field", ["face_value", "price"])
@pytest.mark.parametrize("value", NON_FINITE + OUT_OF_RANGE)
def test_api_listing_refuses_odd_amounts_and_saves_nothing(seller, listing, field, value):
    before = (Listing.objects.count(), CardCode.objects.count())
    body = {
        "brand": listing.brand_id,
        "face_value": "100.00",
        "price": "90.00",
        "codes": [{"code": "ODDNUMBER0000001"}],
        field: value,
    }
    response = api_as(seller).post("/api/v1/listings/", body, format="json")
    assert response.status_code == 400, (field, value, response.content)
    assert field in response.json()
    assert (Listing.objects.count(), CardCode.objects.count()) == before


@pytest.mark.parametrize("value", NON_FINITE + ["-1", "0", "1e9", "1.5", ""])
def test_order_quantity_must_be_a_sane_integer(buyer, listing, value):
    response = api_as(buyer).post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": value}, format="json"
    )
    assert response.status_code == 400
    page = logged_in(buyer).post(f"/listings/{listing.pk}/", {"quantity": value})
    assert page.status_code == 400
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "value", ["abc", "1.5e3", True, None, [], {}, 10**30, -(10**30), "99999999999999999999"]
)
def test_an_order_of_an_unknown_or_malformed_listing_is_a_400_naming_it(buyer, listing, value):
    before = Order.objects.count()
    response = api_as(buyer).post(
        "/api/v1/orders/", {"listing": value, "quantity": 1}, format="json"
    )
    assert response.status_code == 400, (value, response.content)
    assert response.json()["listing"]
    assert Order.objects.count() == before


@pytest.mark.parametrize("value", NON_FINITE + ["-1"])
def test_site_forms_refuse_odd_amounts(seller, listing, value):
    client = logged_in(seller)
    destination = PayoutDestinationFactory(seller=seller)
    client.post(f"/sell/listings/{listing.pk}/update/", {"action": "reprice", "price": value})
    client.post("/sell/payouts/request/", {"destination": destination.pk, "amount": value})
    assert client.get("/sell/net/", {"brand": listing.brand_id, "price": value}).status_code < 500
    response = _new_listing(client, listing, face_value=value, codes="ODDNUMBER0000002")
    assert response.status_code == 400
    listing.refresh_from_db()
    assert listing.price == 92 and not Payout.objects.exists()
    assert Listing.objects.count() == 1


@pytest.mark.parametrize("value", NON_FINITE + ["-1", "1e9"])
def test_wallet_top_up_refuses_odd_amounts(buyer, value):
    response = logged_in(buyer).post("/wallet/", {"amount": value, "method": "alipay"})
    assert response.status_code == 200
    assert not Payment.objects.exists()


def test_pay_refuses_a_non_numeric_instalment_plan(buyer, order):
    response = api_as(buyer).post(
        f"/api/v1/orders/{order.number}/pay/",
        {"method": "card_instalments", "instalments": "NaN"},
        format="json",
    )
    assert response.status_code == 400
    assert not Payment.objects.exists()


def test_a_code_file_over_2_mb_is_refused_unread(seller, listing):
    big = SimpleUploadedFile("codes.csv", b"A" * (2 * 1024 * 1024 + 1), content_type="text/csv")
    response = logged_in(seller).post(
        "/sell/new/",
        {"brand": listing.brand_id, "face_value": "50.00", "price": "45.00", "codes_file": big},
    )
    assert response.status_code == 400
    assert "2 MB" in response.content.decode()
    assert Listing.objects.count() == 1


def test_a_request_over_the_size_cap_is_refused_before_it_is_read(seller, listing, settings):
    settings.MAX_REQUEST_BYTES = 1024 * 1024
    big = SimpleUploadedFile("codes.csv", os.urandom(1024 * 1024 + 10), content_type="text/csv")
    response = logged_in(seller).post(f"/sell/listings/{listing.pk}/", {"codes_file": big})
    assert response.status_code == 413
    assert "MB" in response.content.decode()
    assert listing.codes.count() == 10


@pytest.mark.parametrize(
    "content",
    [
        os.urandom(4096),
        b'CODE0000000001,1234\n"CODE0000000002,1234\nCODE0000000003,1234\n',
        b"\xff\xfe\x00\x00garbage",
        b"",
        b",,,\n,,,\n",
    ],
    ids=["random bytes", "unterminated quote", "bad encoding", "empty", "only commas"],
)
def test_a_malformed_code_file_is_refused_with_a_message(seller, listing, content):
    upload = SimpleUploadedFile("codes.csv", content, content_type="text/csv")
    response = logged_in(seller).post(f"/sell/listings/{listing.pk}/", {"codes_file": upload})
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode() or "error" in response.content.decode()
    assert listing.codes.count() == 10


def test_an_unterminated_quote_is_refused_naming_its_line(seller, listing):
    content = b'CODE0000000001,1234\n"CODE0000000002,1234\nCODE0000000003,1234\n'
    upload = SimpleUploadedFile("codes.csv", content, content_type="text/csv")
    response = logged_in(seller).post(f"/sell/listings/{listing.pk}/", {"codes_file": upload})
    assert "第 2 行" in response.content.decode()


def test_too_many_codes_through_the_api_are_refused(seller, listing):
    from marketplace.code_formats import MAX_CODES_PER_UPLOAD

    codes = [{"code": f"BULKCODE{n:08d}"} for n in range(MAX_CODES_PER_UPLOAD + 1)]
    response = api_as(seller).post(
        "/api/v1/listings/",
        {"brand": listing.brand_id, "face_value": "100.00", "price": "90.00", "codes": codes},
        format="json",
    )
    assert response.status_code in {400, 413}
    assert Listing.objects.count() == 1


def test_malformed_json_is_a_400(buyer):
    response = api_as(buyer).post(
        "/api/v1/orders/", b'{"listing": 1, "quantity": ', content_type="application/json"
    )
    assert response.status_code == 400
