"""Risk factories, and builders of the payments/marketplace rows the metric sources read."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from marketplace.models import Dispute, Order
from payments.models import Attempt, ChannelAccount
from risk.models import Monitor
from tests.accounts.factories import UserFactory
from tests.marketplace.factories import CardCodeFactory, ListingFactory
from tests.payments.factories import PaymentFactory


class MonitorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Monitor

    name = factory.Sequence(lambda n: f"monitor {n}")
    metric = "payments.success_rate"
    lower_bound = Decimal("80.00")
    min_sample = 5
    window_hours = 1


def account(code: str = "ali-1", methods=("alipay",)) -> ChannelAccount:
    found, _ = ChannelAccount.objects.get_or_create(
        code=code,
        defaults={
            "name": code,
            "backend": "alipay",
            "methods": list(methods),
            "base_url": "https://ch.example/",
        },
    )
    return found


def attempts(
    n: int,
    *,
    status: str,
    channel: str = "ali-1",
    method: str = "alipay",
    at: dt.datetime | None = None,
    payment=None,
):
    """``n`` attempts (each of its own payment unless one is given) created at ``at``."""
    made = []
    for _ in range(n):
        pay = payment or PaymentFactory(method=method)
        attempt = Attempt.objects.create(
            payment=pay, account=account(channel), method=method, amount=pay.amount, status=status
        )
        made.append(attempt)
    if at is None:
        # A few minutes ago, but never before the current local hour: a test that reads
        # "this hour" or "today" must not straddle a boundary when it runs just after one.
        now = timezone.now()
        this_hour = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
        at = max(now - dt.timedelta(minutes=5), this_hour)
    when = at
    Attempt.objects.filter(pk__in=[a.pk for a in made]).update(created_at=when)
    return made


def delivered_order(
    *,
    channel: str = "ali-1",
    method: str = "alipay",
    at: dt.datetime | None = None,
    dispute: str | None = None,
) -> Order:
    """A delivered order paid through ``channel``/``method``; ``dispute`` is a dispute status."""
    listing = ListingFactory()
    payment = PaymentFactory(method=method, status="succeeded")
    Attempt.objects.create(
        payment=payment,
        account=account(channel),
        method=method,
        amount=payment.amount,
        status="succeeded",
    )
    when = at or timezone.now() - dt.timedelta(hours=1)
    order = Order.objects.create(
        buyer=UserFactory(),
        listing=listing,
        quantity=1,
        unit_price=listing.price,
        amount=listing.price,
        status=Order.Status.DELIVERED,
        expires_at=when,
        paid_at=when,
        delivered_at=when,
        guarantee_until=when + dt.timedelta(hours=72),
        payment_public_id=payment.public_id,
    )
    code = CardCodeFactory(listing=listing, status="sold", order=order)
    if dispute:
        Dispute.objects.create(
            order=order, code=code, reason=Dispute.Reason.USED, note="used", status=dispute
        )
    return order
