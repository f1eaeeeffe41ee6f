"""Clearing of seller amounts: when the channel's file confirms a payment was settled, the
sellers' money from the orders it paid is cleared — per statement and seller, as a report."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from marketplace import clearing as shop_clearing
from payments import services as payment_services
from payments.channels.base import ClientInfo
from payments.models import JournalEntry
from payments.payables import PayableFacts
from reconciliation import exceptions_queue
from reconciliation.models import Discrepancy, SellerClearing, SettlementLine, Statement
from tests.accounts.factories import UserFactory
from tests.payments.sandbox_payer import Payer
from tests.reconciliation.conftest import listing_of, pull_today

pytestmark = pytest.mark.django_db


@pytest.fixture
def sellers(db):
    return UserFactory(username="sally-seller"), UserFactory(username="sam-seller")


@pytest.fixture
def listings(sellers, brand):
    sally, sam = sellers
    return listing_of(sally, brand, price="92.00"), listing_of(sam, brand, price="45.50")


def clearings() -> dict[str, tuple]:
    return {
        c.seller.username: (c.orders, c.gross, c.commission, c.net, c.currency)
        for c in SellerClearing.objects.select_related("seller")
    }


def matched_order_amounts(statement: Statement) -> Decimal:
    """What the file's matched payment lines add up to (every payment of these days is an
    order's)."""
    lines = SettlementLine.objects.filter(
        file=statement.file, kind="payment", discrepancies__isnull=True
    )
    return sum((line.amount for line in lines), Decimal("0"))


def top_up(client, captured, amount: str):
    """A payment that pays no order (a wallet top-up): settled, but nobody's sale."""
    payment = payment_services.payment_start(
        buyer=UserFactory(),
        reference=f"topup:{uuid.uuid4().hex[:16]}",
        amount=Decimal(amount),
        currency="CNY",
        method="alipay",
        subject="Top-up",
        client=ClientInfo(ip="203.0.113.9", device="desktop"),
        return_url="http://testserver/wallet/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
    )
    with captured(execute=True):
        Payer(client).decide(payment.attempts.get().action, "approve")


def test_each_seller_clears_the_orders_the_file_settled(shop, listings, client):
    sally_listing, sam_listing = listings
    shop.buy(sally_listing, 2)  # 184.00, commission 2 × 4.60
    shop.buy(sally_listing, 1)  # 92.00, commission 4.60
    shop.buy(sam_listing, 3)  # 136.50, commission 3 × 2.28
    top_up(client, shop.captured, "50.00")
    entries = JournalEntry.objects.count()

    result = pull_today()

    assert result["matched"] == 4 and not any(result["discrepancies"].values())
    assert clearings() == {
        "sally-seller": (2, Decimal("276.00"), Decimal("13.80"), Decimal("262.20"), "CNY"),
        "sam-seller": (1, Decimal("136.50"), Decimal("6.84"), Decimal("129.66"), "CNY"),
    }
    statement = Statement.objects.get()
    assert {c.statement for c in SellerClearing.objects.all()} == {statement}
    cleared = sum(c.gross for c in statement.clearings.all())
    assert cleared == statement.gross - Decimal("50.00")  # all but the top-up
    assert cleared == sum(c.net + c.commission for c in statement.clearings.all())
    assert JournalEntry.objects.count() == entries  # a report: no money moves


def test_clearing_sums_to_the_statements_matched_order_amounts(shop, listings):
    sally_listing, sam_listing = listings
    shop.buy(sally_listing, 1)
    shop.buy(sam_listing, 2)
    shop.buy(
        sam_listing, 1, notified=False
    )  # the channel took it, we did not hear: not settled for us

    pull_today()

    statement = Statement.objects.get()
    assert Discrepancy.objects.get().kind == "status_mismatch"
    assert (
        sum(c.gross for c in statement.clearings.all())
        == matched_order_amounts(statement)
        == Decimal("183.00")
    )
    assert clearings()["sam-seller"][0] == 1


def test_a_payment_confirmed_from_the_queue_joins_the_days_clearing(shop, listings):
    sally_listing, _ = listings
    shop.buy(sally_listing, 1)
    shop.buy(sally_listing, 1, notified=False)
    pull_today()
    assert clearings()["sally-seller"][:2] == (1, Decimal("92.00"))

    with shop.captured(execute=True):
        exceptions_queue.discrepancy_confirm_payment(
            discrepancy=Discrepancy.objects.get(), by=UserFactory(is_staff=True)
        )

    assert clearings()["sally-seller"][:2] == (2, Decimal("184.00"))


def test_re_running_the_day_replaces_its_clearing(shop, listings):
    sally_listing, sam_listing = listings
    shop.buy(sally_listing, 1)
    shop.buy(sam_listing, 1)
    pull_today()
    first = clearings()
    first_ids = set(SellerClearing.objects.values_list("pk", flat=True))

    shop.buy(sam_listing, 1)  # more of the day arrives before the final run
    pull_today()

    assert SellerClearing.objects.count() == 2 and Statement.objects.count() == 1
    assert not first_ids & set(SellerClearing.objects.values_list("pk", flat=True))
    assert clearings()["sally-seller"] == first["sally-seller"]
    assert clearings()["sam-seller"][:2] == (2, Decimal("91.00"))

    pull_today()
    assert SellerClearing.objects.count() == 2


def test_a_refunded_late_payment_clears_nothing(shop, listings):
    from tests.reconciliation.conftest import expire

    sally_listing, _ = listings
    order, _payment = shop.buy(sally_listing, 5, notified=False)
    expire(order)
    shop.order(sally_listing, 1)
    pull_today()
    with shop.captured(execute=True):
        exceptions_queue.discrepancy_confirm_payment(
            discrepancy=Discrepancy.objects.get(), by=UserFactory(is_staff=True)
        )
    order.refresh_from_db()
    assert order.status == "refunded"
    assert not SellerClearing.objects.exists()


def test_the_shop_answers_which_orders_a_payment_paid(shop, listings):
    sally_listing, _ = listings
    order, payment = shop.buy(sally_listing, 2)
    assert list(shop_clearing.orders_paid_by([payment.public_id])) == [order]
    [row] = shop_clearing.seller_amounts([payment.public_id])
    assert (row.seller_id, row.orders, row.gross, row.commission, row.net) == (
        sally_listing.seller_id,
        1,
        Decimal("184.00"),
        Decimal("9.20"),
        Decimal("174.80"),
    )
    assert shop_clearing.seller_amounts([uuid.uuid4()]) == []
