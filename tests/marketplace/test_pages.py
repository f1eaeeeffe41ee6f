import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from marketplace.models import Brand, CardCode, Listing, Order
from tests.accounts.factories import UserFactory
from tests.marketplace.factories import BrandFactory, CardCodeFactory, ListingFactory, stock

pytestmark = pytest.mark.django_db


def shop(n_listings: int) -> None:
    brands = [BrandFactory(category=c) for c in ("shopping", "game", "voucher")]
    sellers = [UserFactory() for _ in range(3)]
    for i in range(n_listings):
        listing = ListingFactory(
            seller=sellers[i % 3],
            brand=brands[i % 3],
            face_value="100.00",
            price=f"{80 + i % 15}.00",
        )
        stock(listing, 2)


def catalogue_queries(client, django_assert_max_num_queries, budget: int) -> int:
    with django_assert_max_num_queries(budget) as captured:
        response = client.get("/?sort=discount")
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_catalogue_query_count_does_not_grow_with_the_catalogue(
    client, django_assert_max_num_queries
):
    shop(3)
    small = catalogue_queries(client, django_assert_max_num_queries, 10)
    shop(40)
    large = catalogue_queries(client, django_assert_max_num_queries, 10)
    assert small == large


def test_catalogue_shows_face_value_price_discount_stock_and_seller_rating(client, listing):
    html = client.get("/").content.decode()
    assert html.count('data-testid="listing"') == 1
    assert "¥100.00" in html and "¥92.00" in html and "8% off" in html
    assert re.search(r'data-testid="stock">\s*5\s*<', html)
    assert "new seller" in html
    assert not any(plain in html for plain in listing.plains)


def test_catalogue_filters_by_category_and_sorts_by_price(client):
    game = BrandFactory(category="game", name="Game Points")
    cheap = ListingFactory(brand=game, face_value="50.00", price="45.00")
    dear = ListingFactory(brand=game, face_value="100.00", price="95.00")
    shopping = ListingFactory(face_value="100.00", price="80.00")
    for item in (cheap, dear, shopping):
        stock(item, 1)
    listings = client.get("/?category=game&sort=-price").context["listings"]
    assert [item.pk for item in listings] == [dear.pk, cheap.pk]
    listings = client.get("/?q=game+points&face_value_min=60").context["listings"]
    assert [item.pk for item in listings] == [dear.pk]


def test_buying_from_the_listing_page_redirects_to_the_order_page(client, listing, buyer):
    page = client.get(f"/listings/{listing.pk}/").content.decode()
    assert 'data-testid="buy"' in page
    client.force_login(buyer)
    response = client.post(f"/listings/{listing.pk}/", {"quantity": 2})
    order = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/orders/{order.number}/"
    assert order.quantity == 2 and order.buyer == buyer


def test_buying_more_than_the_stock_says_so_and_reserves_nothing(client, listing, buyer):
    client.force_login(buyer)
    response = client.post(f"/listings/{listing.pk}/", {"quantity": 9})
    assert response.status_code == 409
    assert "Only 5 codes are available" in response.content.decode()
    assert not Order.objects.exists()


def test_an_anonymous_buyer_is_asked_to_log_in(client, listing):
    response = client.post(f"/listings/{listing.pk}/", {"quantity": 1})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_my_orders_lists_only_mine(client, listing, buyer):
    from marketplace.services import order_create

    mine = order_create(buyer=buyer, listing=listing, quantity=1)
    theirs = order_create(buyer=UserFactory(), listing=listing, quantity=1)
    client.force_login(buyer)
    html = client.get("/orders/").content.decode()
    assert mine.number in html and theirs.number not in html


def test_sell_page_creates_a_listing_from_pasted_codes(client, seller, brand):
    client.force_login(seller)
    assert client.get("/sell/new/").status_code == 200
    response = client.post(
        "/sell/new/",
        {
            "brand": brand.pk,
            "face_value": "100.00",
            "price": "90.00",
            "codes": "WEBCODE0000001\nWEBCODE0000002,1234\n",
        },
    )
    listing = Listing.objects.get(seller=seller)
    assert response.status_code == 302 and response["Location"] == f"/sell/listings/{listing.pk}/"
    assert listing.codes.count() == 2


def test_sell_page_names_each_bad_line_and_saves_nothing(client, seller, brand):
    CardCodeFactory(plain="TAKENCODE00001")
    client.force_login(seller)
    response = client.post(
        "/sell/new/",
        {
            "brand": brand.pk,
            "face_value": "100.00",
            "price": "90.00",
            "codes": "WEBCODE0000001\nnope\nWEBCODE0000001\nTAKENCODE00001\n",
        },
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "Line 2:" in html and "Line 3:" in html and "Line 4:" in html and "Line 1:" not in html
    assert "already listed on Cardex" in html
    assert not Listing.objects.filter(seller=seller).exists()


def test_sell_page_accepts_a_csv_upload(client, seller, brand):
    client.force_login(seller)
    upload = SimpleUploadedFile(
        "codes.csv", b"code,pin\nCSVCODE0000001,1234\nCSVCODE0000002,\n", content_type="text/csv"
    )
    response = client.post(
        "/sell/new/",
        {"brand": brand.pk, "face_value": "50.00", "price": "45.00", "codes_file": upload},
    )
    assert response.status_code == 302
    assert CardCode.objects.filter(listing__seller=seller).count() == 2


def test_sell_page_refuses_a_price_above_face_value(client, seller, brand):
    client.force_login(seller)
    response = client.post(
        "/sell/new/",
        {"brand": brand.pk, "face_value": "50.00", "price": "60.00", "codes": "WEBCODE0000001"},
    )
    assert response.status_code == 400 and "above the face value" in response.content.decode()


def test_net_after_commission_preview(client, seller, brand):
    client.force_login(seller)
    html = client.get(
        "/sell/net/", {"brand": brand.pk, "price": "100.00"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "¥95.00" in html and "¥5.00" in html


def test_seller_manages_a_listing_price_pause_and_codes(client, seller, listing):
    client.force_login(seller)
    page = client.get(f"/sell/listings/{listing.pk}/").content.decode()
    assert not any(plain in page for plain in listing.plains)
    client.post(f"/sell/listings/{listing.pk}/update/", {"action": "reprice", "price": "85.00"})
    client.post(f"/sell/listings/{listing.pk}/update/", {"action": "pause"})
    listing.refresh_from_db()
    assert (str(listing.price), listing.status) == ("85.00", "paused")
    client.post(f"/sell/listings/{listing.pk}/", {"codes": "ADDEDCODE00001"})
    assert listing.codes.count() == 6
    code = listing.codes.filter(status="available").first()
    client.post(f"/sell/listings/{listing.pk}/codes/{code.pk}/withdraw/")
    code.refresh_from_db()
    assert code.status == "withdrawn"


def test_someone_elses_listing_is_404_on_the_sell_pages(client, listing, buyer):
    client.force_login(buyer)
    assert client.get(f"/sell/listings/{listing.pk}/").status_code == 404


def test_seller_dashboard_shows_balances_listings_and_sales(client, seller, listing, buyer, pay):
    from marketplace.services import order_create

    pay(order_create(buyer=buyer, listing=listing, quantity=1))
    client.force_login(seller)
    html = client.get("/sell/").content.decode()
    assert "¥87.40" in html  # pending: 92.00 − 5% commission
    assert 'data-testid="balance-available">¥0.00' in html
    assert "Test Card" in html


def test_sell_requires_login(client):
    response = client.get("/sell/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_pages_render_in_english_and_chinese(client, listing):
    for language in ("en", "zh-hans"):
        client.cookies["django_language"] = language
        assert client.get("/").status_code == 200
        assert client.get(f"/listings/{listing.pk}/").status_code == 200


def test_upload_file_object_is_read_once(seller, brand):
    from marketplace.forms import ListingForm

    data = {"brand": brand.pk, "face_value": "10.00", "price": "9.00"}
    form = ListingForm(
        data, {"codes_file": SimpleUploadedFile("c.csv", io.BytesIO(b"FILECODE000001\n").read())}
    )
    assert form.is_valid(), form.errors
    assert [e.code for e in form.entries] == ["FILECODE000001"]


def test_the_net_preview_never_sends_the_codes(client, seller):
    client.force_login(seller)
    html = client.get("/sell/new/").content.decode()
    form_tag = re.search(r"<form method=\"post\"[^>]*>", html).group(0)
    assert "hx-get" not in form_tag
    assert 'hx-include="#id_brand, #id_price"' in html


def test_a_listing_of_someone_else_cannot_be_changed(client, listing, buyer):
    client.force_login(buyer)
    assert (
        client.post(f"/sell/listings/{listing.pk}/update/", {"action": "withdraw"}).status_code
        == 404
    )
    listing.refresh_from_db()
    assert listing.status == "active"


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "1e999999", "-1"])
def test_the_catalogue_answers_a_face_value_that_is_no_amount_with_the_form_error(client, raw):
    response = client.get("/", {"face_value_min": raw, "face_value_max": raw})
    assert response.status_code == 200
    assert response.context["form"].errors


def test_sell_page_lists_pasted_codes_with_full_width_separators(client, seller, brand):
    brand.pin_required = True
    brand.save()
    client.force_login(seller)
    response = client.post(
        "/sell/new/",
        {
            "brand": brand.pk,
            "face_value": "100.00",
            "price": "90.00",
            "codes": "WEBCODE0000001，1234\nWEBCODE0000002：5678\n",
        },
    )
    assert response.status_code == 302
    assert Listing.objects.get(seller=seller).codes.count() == 2


def test_sell_page_can_list_the_valid_lines_only_and_names_the_skipped_ones(client, seller, brand):
    CardCodeFactory(plain="TAKENCODE00001")
    client.force_login(seller)
    response = client.post(
        "/sell/new/",
        {
            "brand": brand.pk,
            "face_value": "100.00",
            "price": "90.00",
            "valid_only": "on",
            "codes": "WEBCODE0000001\nnope\nTAKENCODE00001\nWEBCODE0000002\n",
        },
        follow=True,
    )
    listing = Listing.objects.get(seller=seller)
    assert listing.codes.count() == 2
    html = response.content.decode()
    assert "2 lines were skipped" in html
    assert "Line 2:" in html and "Line 3:" in html and "already listed on Cardex" in html


def test_valid_lines_only_with_no_valid_line_saves_nothing(client, seller, brand):
    client.force_login(seller)
    response = client.post(
        "/sell/new/",
        {
            "brand": brand.pk,
            "face_value": "100.00",
            "price": "90.00",
            "valid_only": "on",
            "codes": "nope\nbad\n",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Line 1:" in html and "Line 2:" in html
    assert not Listing.objects.filter(seller=seller).exists()


def test_adding_codes_can_skip_the_invalid_lines(client, seller, listing):
    client.force_login(seller)
    before = listing.codes.count()
    response = client.post(
        f"/sell/listings/{listing.pk}/",
        {"valid_only": "on", "codes": "ADDCODE0000001\nnope\n"},
        follow=True,
    )
    assert listing.codes.count() == before + 1
    assert "1 line was skipped" in response.content.decode()


def test_seller_sees_each_code_masked_to_its_last_four_with_its_state(client, seller, brand):
    client.force_login(seller)
    client.post(
        "/sell/new/",
        {"brand": brand.pk, "face_value": "100.00", "price": "90.00", "codes": "WEBCODE0004321\n"},
    )
    listing = Listing.objects.get(seller=seller)
    page = client.get(f"/sell/listings/{listing.pk}/").content.decode()
    assert "****4321" in page and "WEBCODE0004321" not in page
    assert "Available" in page


def test_catalogue_search_finds_a_brand_by_its_chinese_or_english_name(client, seller):
    jd = BrandFactory(slug="jd-ecard", name="京东E卡", name_en="JD E-Card")
    stock(ListingFactory(seller=seller, brand=jd), 1)

    def found(query: str) -> int:
        return client.get("/", {"q": query}).content.decode().count('data-testid="listing"')

    assert [found(query) for query in ("京东", "jd e-card", "E卡")] == [1, 1, 1]
    assert found("星巴克") == 0


def test_seed_demo_brands_carry_chinese_and_english_names(db):
    from django.core.management import call_command

    call_command("seed_demo", stdout=io.StringIO())
    names = dict(Brand.objects.values_list("slug", "name"))
    english = dict(Brand.objects.values_list("slug", "name_en"))
    assert names["jd-ecard"] == "京东E卡" and english["jd-ecard"] == "JD E-Card"
    assert names["starbucks"] == "星巴克星礼卡" and names["steam-wallet"] == "Steam 钱包"


def test_net_preview_says_why_when_the_price_is_not_understood(client, seller, brand):
    client.force_login(seller)
    html = client.get(
        "/sell/net/", {"brand": brand.pk, "price": "12,5x"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Enter a price such as 45.00" in html


def test_catalogue_and_listing_say_discount_guarantee_and_money_like_a_chinese_shop(
    client, seller, settings
):
    settings.LANGUAGE_CODE = "zh-hans"
    brand = BrandFactory(slug="carrefour", name="家乐福购物卡", guarantee_hours=168)
    listing = ListingFactory(seller=seller, brand=brand, face_value="1000.00", price="880.00")
    stock(listing, 1)
    from django.utils import translation

    with translation.override("zh-hans"):
        catalogue = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        detail = client.get(
            f"/listings/{listing.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans"
        ).content.decode()
    assert "8.8折" in catalogue and "¥1,000.00" in catalogue and "¥880.00" in catalogue
    # the guarantee in days, never as hours (the page's own URLs may hold any number)
    assert "7 天" in detail and not re.search(r"168\s*(小时|hours?)", detail)
    assert "/api/docs/" not in catalogue


def test_payout_form_waits_for_available_money_then_offers_it_to_the_newest_account(client, seller):
    from decimal import Decimal
    from unittest import mock

    from marketplace.models import PayoutDestination
    from marketplace.selectors import SellerBalances

    PayoutDestination.objects.create(
        seller=seller, kind="alipay", holder_name="S", account="old@example.com"
    )
    newest = PayoutDestination.objects.create(
        seller=seller, kind="alipay", holder_name="S", account="new@example.com"
    )
    client.force_login(seller)
    html = client.get("/sell/").content.decode()
    assert 'data-testid="payout-nothing"' in html and 'name="amount"' not in html
    rich = SellerBalances(
        pending=Decimal("0"),
        available=Decimal("1234.50"),
        payouts_requested=Decimal("0"),
        paid_out=Decimal("0"),
    )
    with mock.patch("marketplace.selectors.seller_balances", return_value=rich):
        html = client.get("/sell/").content.decode()
    assert 'value="1234.50"' in html and "¥1,234.50" in html
    assert re.search(rf'<option value="{newest.pk}" selected>', html)


def test_pages_carry_a_favicon_and_favicon_ico_leads_to_it(client, db):
    html = client.get("/").content.decode()
    assert 'rel="icon"' in html and "favicon.svg" in html
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
