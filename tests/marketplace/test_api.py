import pytest
from rest_framework.test import APIClient

from marketplace.models import CardCode, Listing, Order, RevealAudit
from payments.models import ChannelAccount, IdempotencyRecord, Method, Payment
from tests.accounts.factories import PASSWORD, UserFactory
from tests.marketplace.factories import BrandFactory, CardCodeFactory, ListingFactory, stock
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def as_user(user) -> APIClient:
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json"
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_brands_list_is_paginated_and_public(api, brand):
    body = api.get("/api/v1/brands/").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert {"id", "name", "slug", "category"} <= set(body["results"][0])


def test_listings_show_stock_and_never_a_secret(api, listing):
    response = api.get(f"/api/v1/listings/?brand={listing.brand_id}")
    row = response.json()["results"][0]
    assert (row["id"], row["brand"], row["face_value"], row["price"], row["stock"]) == (
        listing.pk,
        listing.brand_id,
        "100.00",
        "92.00",
        5,
    )
    text = response.content.decode()
    assert not any(plain in text for plain in listing.plains)
    assert not {"code", "codes", "pin", "code_encrypted", "pin_encrypted", "fingerprint"} & set(row)
    assert "encrypted" not in text and "fingerprint" not in text


def test_listings_filter_by_category_and_face_value_and_sort_by_discount(api, seller):
    game = BrandFactory(category="game")
    cheap = ListingFactory(brand=game, face_value="50.00", price="40.00")
    dear = ListingFactory(brand=game, face_value="100.00", price="99.00")
    other = ListingFactory(face_value="100.00", price="50.00")
    for item in (cheap, dear, other):
        stock(item, 1)
    ids = [
        r["id"]
        for r in api.get("/api/v1/listings/?category=game&ordering=discount").json()["results"]
    ]
    assert ids == [cheap.pk, dear.pk]
    ids = [
        r["id"]
        for r in api.get("/api/v1/listings/?face_value=100.00&ordering=price").json()["results"]
    ]
    assert ids == [other.pk, dear.pk]
    assert api.get("/api/v1/listings/?face_value=abc").status_code == 400


def test_sold_out_listings_are_not_offered(api, seller, brand):
    ListingFactory(seller=seller, brand=brand)
    assert api.get("/api/v1/listings/").json()["count"] == 0


def test_seller_creates_a_listing_with_codes(seller, brand):
    client = as_user(seller)
    response = client.post(
        "/api/v1/listings/",
        {
            "brand": brand.pk,
            "face_value": "100.00",
            "price": "92.00",
            "codes": [{"code": "APICODE0000001", "pin": "1234"}, {"code": "APICODE0000002"}],
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["stock"] == 2 and Listing.objects.get(pk=body["id"]).codes.count() == 2


def test_invalid_codes_answer_400_keyed_by_index_and_save_nothing(seller, brand):
    CardCodeFactory(plain="ALREADYLISTED01")
    response = as_user(seller).post(
        "/api/v1/listings/",
        {
            "brand": brand.pk,
            "face_value": "100.00",
            "price": "92.00",
            "codes": [
                {"code": "GOODCODE000001"},
                {"code": "bad"},
                {"code": "GOODCODE000003"},
                {"code": "ALREADYLISTED01"},
            ],
        },
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["codes"]
    assert set(errors) == {"1", "3"}
    assert all(isinstance(m, str) for msgs in errors.values() for m in msgs)
    assert not Listing.objects.filter(seller=seller).exists() and CardCode.objects.count() == 1


def test_malformed_code_objects_and_a_price_above_face_value_are_400(seller, brand):
    client = as_user(seller)
    response = client.post(
        "/api/v1/listings/",
        {"brand": brand.pk, "face_value": "100.00", "price": "92.00", "codes": [{"pin": "1"}]},
        format="json",
    )
    assert response.status_code == 400 and "0" in response.json()["codes"]
    response = client.post(
        "/api/v1/listings/",
        {"brand": brand.pk, "face_value": "100.00", "price": "120.00", "codes": ["GOODCODE000001"]},
        format="json",
    )
    assert response.status_code == 400 and "price" in response.json()


def test_anonymous_cannot_create_listings(api, brand):
    assert api.post("/api/v1/listings/", {}, format="json").status_code in (401, 403)


def test_buyer_orders_and_gets_201_with_the_contract_fields(listing, buyer):
    response = as_user(buyer).post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": 2}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert {"number", "status", "amount", "expires_at"} <= set(body)
    assert body["status"] == "awaiting_payment" and body["amount"] == "184.00"


def test_ordering_more_than_the_stock_is_409(listing, buyer):
    response = as_user(buyer).post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": 6}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["available"] == 5
    assert not Order.objects.exists()


def test_an_order_is_404_for_anyone_but_its_buyer(listing, buyer):
    number = (
        as_user(buyer)
        .post("/api/v1/orders/", {"listing": listing.pk, "quantity": 1}, format="json")
        .json()["number"]
    )
    assert as_user(UserFactory()).get(f"/api/v1/orders/{number}/").status_code == 404
    assert (
        as_user(UserFactory())
        .post(f"/api/v1/orders/{number}/pay/", {"method": "alipay"}, format="json")
        .status_code
        == 404
    )
    assert APIClient().get(f"/api/v1/orders/{number}/").status_code in (401, 403)


def test_codes_appear_only_once_delivered_and_each_read_is_audited(listing, buyer, pay):
    client = as_user(buyer)
    number = client.post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": 2}, format="json"
    ).json()["number"]
    assert "codes" not in client.get(f"/api/v1/orders/{number}/").json()
    pay(Order.objects.get(number=number))
    body = client.get(f"/api/v1/orders/{number}/", HTTP_USER_AGENT="cardex-bot/1").json()
    assert body["status"] == "delivered"
    assert len(body["codes"]) == 2 and all(set(c) == {"code", "pin"} for c in body["codes"])
    assert all(c["code"] in listing.plains for c in body["codes"])
    audit = RevealAudit.objects.get()
    assert (audit.channel, audit.user, audit.user_agent) == ("api", buyer, "cardex-bot/1")


def test_pay_answers_the_payment_as_the_platform_presents_it(listing, buyer, accounts, monkeypatch):
    from payments import services as payment_services

    def fake_start(**kwargs):
        return PaymentFactory(
            reference=kwargs["reference"],
            buyer=kwargs["buyer"],
            amount=kwargs["amount"],
            method=kwargs["method"],
            status="pending",
        )

    monkeypatch.setattr(payment_services, "payment_start", fake_start)
    client = as_user(buyer)
    number = client.post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": 1}, format="json"
    ).json()["number"]
    response = client.post(f"/api/v1/orders/{number}/pay/", {"method": "alipay"}, format="json")
    assert response.status_code == 200
    payment = response.json()["payment"]
    assert {"id", "status", "method", "channel", "action"} <= set(payment)
    assert (payment["status"], payment["method"]) == ("pending", "alipay")
    assert (
        client.post(
            f"/api/v1/orders/{number}/pay/", {"method": "bitcoin"}, format="json"
        ).status_code
        == 400
    )


def test_paying_a_cancelled_order_is_409(listing, buyer):
    client = as_user(buyer)
    number = client.post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": 1}, format="json"
    ).json()["number"]
    assert client.post(f"/api/v1/orders/{number}/cancel/").status_code == 200
    assert (
        client.post(
            f"/api/v1/orders/{number}/pay/", {"method": "alipay"}, format="json"
        ).status_code
        == 409
    )


def test_idempotency_key_replays_the_first_answer(listing, buyer):
    client = as_user(buyer)
    first = client.post(
        "/api/v1/orders/",
        {"listing": listing.pk, "quantity": 1},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    again = client.post(
        "/api/v1/orders/",
        {"listing": listing.pk, "quantity": 1},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    other = client.post(
        "/api/v1/orders/",
        {"listing": listing.pk, "quantity": 2},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert other.status_code == 422
    assert IdempotencyRecord.objects.get().status_code == 201


def test_idempotency_keys_are_per_user(listing, buyer):
    as_user(buyer).post(
        "/api/v1/orders/",
        {"listing": listing.pk, "quantity": 1},
        format="json",
        HTTP_IDEMPOTENCY_KEY="same",
    )
    response = as_user(UserFactory()).post(
        "/api/v1/orders/",
        {"listing": listing.pk, "quantity": 1},
        format="json",
        HTTP_IDEMPOTENCY_KEY="same",
    )
    assert response.status_code == 201 and Order.objects.count() == 2


def test_schema_documents_the_shop_api(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in (
        "/api/v1/brands/",
        "/api/v1/listings/",
        "/api/v1/orders/",
        "/api/v1/orders/{number}/pay/",
    ):
        assert path in schema


def test_card_codes_list_nothing_in_the_sold_out_count(api, listing):
    CardCode.objects.update(status="withdrawn")
    assert api.get("/api/v1/listings/").json()["count"] == 0


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999999", "-5", "snan", "abc"])
@pytest.mark.parametrize("name", ["face_value", "face_value_min", "face_value_max"])
def test_a_face_value_filter_that_is_no_amount_is_a_400_with_a_message(api, name, raw):
    ListingFactory(face_value="100.00", price="90.00")
    response = api.get("/api/v1/listings/", {name: raw})
    assert response.status_code == 400
    assert response.json()[name]


# --- paying: the same offer as the order page -------------------------------------------------


@pytest.fixture
def accounts():
    """Alipay direct, and a card acquirer serving card and card instalments."""
    for code, methods in (
        ("alipay", [Method.ALIPAY]),
        ("card", [Method.CARD, Method.CARD_INSTALMENTS]),
    ):
        ChannelAccount.objects.create(
            code=code,
            name=code,
            backend=code,
            methods=methods,
            base_url=f"http://testserver/sandbox/{code}/",
        )


@pytest.fixture
def started(monkeypatch):
    """The platform's payment_start, answering a pending payment and recording its calls."""
    from payments import services as payment_services

    calls = []

    def fake_start(**kwargs):
        calls.append(kwargs)
        return PaymentFactory(
            reference=kwargs["reference"],
            buyer=kwargs["buyer"],
            amount=kwargs["amount"],
            method=kwargs["method"],
            instalments=kwargs["instalments"],
            client={"ordering": kwargs["ordering"]} if kwargs.get("ordering") else {},
            status="pending",
        )

    monkeypatch.setattr(payment_services, "payment_start", fake_start)
    return calls


def new_order(client, listing) -> str:
    return client.post(
        "/api/v1/orders/", {"listing": listing.pk, "quantity": 1}, format="json"
    ).json()["number"]


@pytest.mark.parametrize("months", [36, 24, 5, 1, 0])
def test_pay_refuses_an_instalment_plan_the_page_would_not_offer_with_a_400(
    listing, buyer, accounts, started, months
):
    client = as_user(buyer)
    number = new_order(client, listing)
    response = client.post(
        f"/api/v1/orders/{number}/pay/",
        {"method": "card_instalments", "instalments": months},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["allowed"] == [3, 6, 12]
    assert f"{months} months is not an instalment plan offered" in body["detail"]
    assert body["instalments"] == [body["detail"]]
    assert started == [] and not Payment.objects.exists()


@pytest.mark.parametrize(("sent", "charged"), [(6, 6), (12, 12), (None, 3)])
def test_pay_with_an_offered_plan_starts_it_and_no_plan_means_the_shortest(
    listing, buyer, accounts, started, sent, charged
):
    client = as_user(buyer)
    number = new_order(client, listing)
    data = (
        {"method": "card_instalments"}
        if sent is None
        else {"method": "card_instalments", "instalments": sent}
    )
    assert client.post(f"/api/v1/orders/{number}/pay/", data, format="json").status_code == 200
    assert started[0]["instalments"] == charged


def test_pay_refuses_a_plan_sent_with_a_method_that_has_none(listing, buyer, accounts, started):
    client = as_user(buyer)
    number = new_order(client, listing)
    response = client.post(
        f"/api/v1/orders/{number}/pay/", {"method": "alipay", "instalments": 6}, format="json"
    )
    assert response.status_code == 400 and response.json()["instalments"]
    assert started == []


def test_pay_refuses_a_method_no_channel_offers_for_this_order(listing, buyer, accounts, started):
    client = as_user(buyer)
    number = new_order(client, listing)
    response = client.post(f"/api/v1/orders/{number}/pay/", {"method": "wechatpay"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "This payment method is not available for this order."
    assert (
        body["method"] == [body["detail"]]
        and "alipay" in body["allowed"]
        and "wechatpay" not in body["allowed"]
    )
    assert started == [] and not Payment.objects.exists()


def test_pay_refuses_a_method_over_its_limit_saying_the_limit(listing, buyer, accounts, started):
    ChannelAccount.objects.filter(code="alipay").update(max_amount="50.00")
    client = as_user(buyer)
    number = new_order(client, listing)
    response = client.post(f"/api/v1/orders/{number}/pay/", {"method": "alipay"}, format="json")
    assert response.status_code == 400 and "¥50.00" in response.json()["detail"]
    assert started == []


def test_pay_keeps_the_ranking_the_buyer_was_offered_on_the_payment(
    listing, buyer, accounts, started
):
    client = as_user(buyer)
    number = new_order(client, listing)
    client.post(
        f"/api/v1/orders/{number}/pay/",
        {"method": "card"},
        format="json",
        HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Mobile",
    )
    stored = Payment.objects.get().client["ordering"]
    assert set(stored["order"]) == {"alipay", "card", "card_instalments"}
    assert stored["signals"]["device"] == "phone"


def test_a_catalogue_page_is_served_from_the_cache_for_a_moment(
    api, listing, settings, django_assert_num_queries
):
    """Buyers browse far more than sellers list: one page per query and language is kept for
    CATALOGUE_CACHE_SECONDS; another query, language or a cold cache reads the database."""
    from django.core.cache import cache

    settings.CATALOGUE_CACHE_SECONDS = 30
    cache.clear()
    url = f"/api/v1/listings/?brand={listing.brand_id}"
    first = api.get(url).json()
    with django_assert_num_queries(0):
        again = api.get(url).json()
    assert again == first and again["results"][0]["stock"] == 5
    assert api.get(url, HTTP_ACCEPT_LANGUAGE="en").json() == first  # read again, same rows
    other = api.get(f"/api/v1/listings/?brand={listing.brand_id}&ordering=price").json()
    assert other["results"][0]["id"] == listing.pk
    cache.clear()
    settings.CATALOGUE_CACHE_SECONDS = 0
    listing.codes.filter(status=CardCode.Status.AVAILABLE).first().delete()
    assert api.get(url).json()["results"][0]["stock"] == 4  # off: always the database


def test_an_order_serializer_builds_its_fields_once_yet_gives_each_instance_its_own(listing, buyer):
    from marketplace import services
    from marketplace.serializers import OrderDetailSerializer, OrderSerializer

    order = services.order_create(buyer=buyer, listing=listing, quantity=1)

    first, second = OrderSerializer(order), OrderSerializer(order)
    assert first.data == second.data and first.data["number"] == order.number
    assert first.fields["number"] is not second.fields["number"]
    assert set(OrderDetailSerializer(order).fields) == {*first.fields, "codes", "currencies"}
