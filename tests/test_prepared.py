"""A prepared read returns exactly what the ORM's own read returns, in one statement, and
refuses a query whose values it could not bind the same way."""

from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F
from django.db.transaction import TransactionManagementError

from config.prepared import PreparedRead
from marketplace.models import Listing
from payments.models import Payment
from tests.marketplace.factories import ListingFactory
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def _listing_with_brand_and_seller(seller_id, brand_slug):
    return Listing.objects.select_related("brand", "seller").filter(
        seller_id=seller_id, brand__slug=brand_slug
    )


LISTING = PreparedRead(_listing_with_brand_and_seller, seller_id=int, brand_slug=str)


def _fields(obj):
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_it_builds_the_same_objects_the_orm_builds_with_their_related_rows():
    listing = ListingFactory(face_value=Decimal("100.00"), price=Decimal("92.50"))
    ListingFactory(seller=listing.seller)  # another brand: not matched

    prepared = LISTING.get(seller_id=listing.seller_id, brand_slug=listing.brand.slug)
    orm = _listing_with_brand_and_seller(listing.seller_id, listing.brand.slug).get()

    assert _fields(prepared) == _fields(orm)
    assert prepared.price == Decimal("92.50") and isinstance(prepared.created_at.year, int)
    assert _fields(prepared.brand) == _fields(orm.brand)
    assert _fields(prepared.seller) == _fields(orm.seller)
    assert not prepared._state.adding and prepared._state.db == "default"


def test_related_rows_come_with_it_at_no_further_query(django_assert_num_queries):
    listing = ListingFactory()
    LISTING.get(seller_id=listing.seller_id, brand_slug=listing.brand.slug)  # compiled
    with django_assert_num_queries(1):
        found = LISTING.get(seller_id=listing.seller_id, brand_slug=listing.brand.slug)
        assert found.brand.slug == listing.brand.slug
        assert found.seller.username == listing.seller.username


def test_values_are_bound_per_call_and_coerced_like_a_lookup():
    first, second = ListingFactory(), ListingFactory()
    assert LISTING.get(seller_id=first.seller_id, brand_slug=first.brand.slug).pk == first.pk
    assert LISTING.get(seller_id=str(second.seller_id), brand_slug=second.brand.slug).pk == (
        second.pk
    )
    assert LISTING.all(seller_id=first.seller_id, brand_slug=second.brand.slug) == []
    assert LISTING.first(seller_id=first.seller_id, brand_slug=second.brand.slug) is None


def test_the_queryset_is_compiled_once_per_connection():
    built = []

    def build(pk):
        built.append(pk)
        return Listing.objects.filter(pk=pk)

    read = PreparedRead(build, pk=int)
    listings = [ListingFactory() for _ in range(3)]
    assert [read.get(pk=x.pk).pk for x in listings] == [x.pk for x in listings]
    assert len(built) == 3  # the shape (model, locking), then two compiles with stand-ins
    assert listings[0].pk not in built


def test_get_raises_as_the_orm_does():
    listing = ListingFactory()
    ListingFactory(seller=listing.seller, brand=listing.brand)
    read = PreparedRead(
        lambda seller_id: Listing.objects.filter(seller_id=seller_id), seller_id=int
    )
    with pytest.raises(Listing.MultipleObjectsReturned, match="returned 2"):
        read.get(seller_id=listing.seller_id)
    with pytest.raises(Listing.DoesNotExist):
        read.get(seller_id=listing.seller_id + 1000)


def test_json_columns_and_annotations_come_back_as_python_values():
    payment = PaymentFactory(client={"ip": "10.0.0.1", "device": "mobile"})
    read = PreparedRead(
        lambda pk: Payment.objects.filter(pk=pk).annotate(doubled=F("amount") * 2), pk=int
    )
    found = read.get(pk=payment.pk)
    assert found.client == {"ip": "10.0.0.1", "device": "mobile"}
    assert found.public_id == payment.public_id
    assert found.doubled == payment.amount * 2


@pytest.mark.django_db(transaction=True)
def test_a_locking_read_needs_a_transaction_as_select_for_update_does():
    listing = ListingFactory()
    read = PreparedRead(lambda pk: Listing.objects.select_for_update().filter(pk=pk), pk=int)
    with transaction.atomic():
        assert read.get(pk=listing.pk).pk == listing.pk
    with pytest.raises(TransactionManagementError):
        read.get(pk=listing.pk)


@pytest.mark.parametrize(
    "build",
    [
        lambda slug: Listing.objects.filter(brand__slug__icontains=slug),
        lambda slug: Listing.objects.filter(brand__slug=slug).values_list("pk", named=True),
        lambda slug: Listing.objects.filter(brand__slug=slug).prefetch_related("codes"),
        lambda slug: Listing.objects.all(),  # the keyword never reaches the SQL
    ],
    ids=["transformed", "named-tuples", "prefetch", "unused"],
)
def test_a_value_that_would_not_bind_as_a_plain_parameter_is_refused(build):
    ListingFactory()
    with pytest.raises(ImproperlyConfigured):
        PreparedRead(build, slug=str).all(slug="x")


def test_exists_asks_as_the_orm_does(django_assert_num_queries):
    listing = ListingFactory()
    read = PreparedRead(lambda slug: Listing.objects.filter(brand__slug=slug), slug=str)
    assert read.exists(slug=listing.brand.slug)
    with django_assert_num_queries(1) as captured:
        assert not read.exists(slug="no-such-brand")
    assert "LIMIT 1" in captured.captured_queries[0]["sql"]


def test_values_and_values_lists_come_back_as_the_orm_gives_them():
    listing = ListingFactory(price=Decimal("92.50"))
    build = {
        "dicts": lambda pk: Listing.objects.filter(pk=pk).values("price", "brand__slug"),
        "tuples": lambda pk: Listing.objects.filter(pk=pk).values_list("price", "created_at"),
        "flat": lambda pk: Listing.objects.filter(pk=pk).values_list("price", flat=True),
    }
    for shape, make in build.items():
        assert PreparedRead(make, pk=int).all(pk=listing.pk) == list(make(listing.pk)), shape
    dicts = PreparedRead(build["dicts"], pk=int).get(pk=listing.pk)
    assert dicts == {"price": Decimal("92.50"), "brand__slug": listing.brand.slug}


def test_an_integer_beyond_any_column_matches_nothing_instead_of_failing():
    listing = ListingFactory()
    read = PreparedRead(lambda pk: Listing.objects.filter(pk=pk), pk=int)
    assert read.all(pk=10**30) == [] and not read.exists(pk=-(10**30))
    with pytest.raises(Listing.DoesNotExist):
        read.get(pk=2**63)
    assert read.get(pk=listing.pk) == listing


def test_a_small_integer_column_binds_like_any_other():
    listing = ListingFactory()  # brands have small-integer keys
    read = PreparedRead(
        lambda brand_id: Listing.objects.filter(brand_id=brand_id).values_list("pk", flat=True),
        brand_id=int,
    )
    assert read.all(brand_id=listing.brand_id) == [listing.pk]


def test_a_constant_equal_to_a_stand_in_is_kept_as_the_constant():
    listing = ListingFactory()
    read = PreparedRead(
        lambda pk: Listing.objects.filter(pk=pk).exclude(seller_id=30_000), pk=int
    )  # 30_000: the first integer stand-in
    assert read.get(pk=listing.pk) == listing
    plan = next(iter(read._plans.values()))
    assert plan.slots.count("pk") == 1 and (30_000,) in plan.slots
