import factory
from django.utils import timezone

from marketplace import vault
from marketplace.models import Brand, CardCode, Category, Listing, PayoutDestination
from payments.models import Payment
from tests.accounts.factories import UserFactory
from tests.payments.factories import PaymentFactory


class BrandFactory(factory.django.DjangoModelFactory):
    """Like seed_demo's ``test-card``: 10–32 letters/digits, optional PIN of 4–8 digits."""

    class Meta:
        model = Brand
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Brand {n}")
    slug = factory.Sequence(lambda n: f"brand-{n}")
    category = Category.SHOPPING
    code_min_length = 10
    code_max_length = 32
    code_charset = "A-Za-z0-9"
    pin_required = False
    pin_min_length = 4
    pin_max_length = 8
    commission_percent = "5.00"
    guarantee_hours = 72


class ListingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Listing

    seller = factory.SubFactory(UserFactory)
    brand = factory.SubFactory(BrandFactory)
    face_value = "100.00"
    price = "92.00"


class CardCodeFactory(factory.django.DjangoModelFactory):
    """An encrypted code; ``plain``/``pin`` are the secrets it holds."""

    class Meta:
        model = CardCode
        exclude = ("plain", "pin")

    listing = factory.SubFactory(ListingFactory)
    plain = factory.Sequence(lambda n: f"TESTCODE{n:08d}")
    pin = ""
    code_encrypted = factory.LazyAttribute(lambda o: vault.encrypt(o.plain))
    pin_encrypted = factory.LazyAttribute(lambda o: vault.encrypt(o.pin))
    fingerprint = factory.LazyAttribute(lambda o: vault.fingerprint(o.plain))
    hint = factory.LazyAttribute(lambda o: vault.hint(o.plain))


def stock(listing: Listing, n: int, prefix: str | None = None) -> list[str]:
    """Put ``n`` available codes on ``listing``; returns their plaintexts."""
    prefix = prefix or f"L{listing.pk}X"
    plains = [f"{prefix}{i:08d}" for i in range(n)]
    for plain in plains:
        CardCodeFactory(listing=listing, plain=plain)
    return plains


class PayoutDestinationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PayoutDestination

    seller = factory.SubFactory(UserFactory)
    kind = PayoutDestination.Kind.ALIPAY
    holder_name = "Zhang San"
    account = factory.Sequence(lambda n: f"seller{n}@example.com")


def succeeded_payment(order, **fields) -> Payment:
    """A payment of ``order`` as the platform leaves it after a channel's success notice."""
    values = {
        "reference": order.payment_reference,
        "buyer": order.buyer,
        "amount": order.amount,
        "currency": order.currency,
        "status": "succeeded",
        "succeeded_at": timezone.now(),
    }
    values.update(fields)
    return PaymentFactory(**values)
