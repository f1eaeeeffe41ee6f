"""Shop fixtures: people, a stocked listing, and a payment platform that announces success
the way the real one does (capture posted to the journal, then ``payment_succeeded``)."""

from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.db import transaction

from payments import ledger, signals
from payments.models import Attempt, ChannelAccount, Payment
from tests.accounts.factories import UserFactory
from tests.marketplace.factories import BrandFactory, ListingFactory, stock, succeeded_payment


@pytest.fixture
def seller(db):
    return UserFactory(username="sally-seller")


@pytest.fixture
def buyer(db):
    return UserFactory(username="bob-buyer")


@pytest.fixture
def brand(db):
    return BrandFactory(slug="test-card", name="Test Card")


@pytest.fixture
def listing(seller, brand):
    listing = ListingFactory(
        seller=seller, brand=brand, face_value=Decimal("100.00"), price=Decimal("92.00")
    )
    listing.plains = stock(listing, 5)
    return listing


@dataclass
class RefundRecorder:
    calls: list = field(default_factory=list)
    fail: bool = False

    def __call__(self, *, payment, amount, reason, origin="staff", requested_by=None):
        if self.fail:
            raise RuntimeError("channel refused the refund")
        self.calls.append(
            {"payment": payment, "amount": Decimal(amount), "reason": reason, "origin": origin}
        )
        return None


@pytest.fixture
def refunds(monkeypatch):
    """Stands in for ``payments.services.refund_request`` and records what the shop asked."""
    from payments import services

    recorder = RefundRecorder()
    monkeypatch.setattr(services, "refund_request", recorder)
    return recorder


def capture(payment: Payment) -> None:
    """What the platform posts when a channel took the money (before announcing it)."""
    ledger.post(
        key=f"capture:{payment.public_id}",
        kind="payment_captured",
        reference=payment.reference,
        lines=[
            (ledger.channel_receivable("test"), payment.amount),
            (ledger.CLEARING, -payment.amount),
        ],
    )


def announce_success(payment: Payment, *, mail: bool = False) -> None:
    """The platform's announcement in its transaction, then what the shop left for after
    its commit: a refund request, and — with ``mail`` — the codes' e-mail."""
    from django.test import TestCase

    after_commit = TestCase.captureOnCommitCallbacks(execute=True)
    with _codes_mailed(mail), after_commit, transaction.atomic():
        capture(payment)
        signals.payment_succeeded.send(sender=Payment, payment=payment)


@contextmanager
def _codes_mailed(mail: bool):
    """Without ``mail`` the delivered order's e-mail is not queued (its reveal is audited,
    which most tests do not want to count)."""
    from marketplace import signals as shop_signals
    from marketplace import tasks

    uid = "marketplace.tasks.order_delivered"
    if not mail:
        shop_signals.order_delivered.disconnect(dispatch_uid=uid)
    try:
        yield
    finally:
        if not mail:
            shop_signals.order_delivered.connect(tasks.queue_delivery_email, dispatch_uid=uid)


@pytest.fixture
def pay():
    """``pay(order, **payment_fields)``: a succeeded payment of the order, announced."""

    def _pay(order, **fields) -> Payment:
        payment = succeeded_payment(order, **fields)
        announce_success(payment)
        order.refresh_from_db()
        return payment

    return _pay


def with_attempt(payment: Payment) -> Attempt:
    """Give a payment the succeeded attempt the real refund_request needs."""
    account, _ = ChannelAccount.objects.get_or_create(
        code="test",
        defaults={
            "name": "test",
            "backend": "alipay",
            "methods": ["alipay"],
            "base_url": "http://testserver/sandbox/alipay/",
        },
    )
    return Attempt.objects.create(
        payment=payment,
        account=account,
        method=payment.method,
        amount=payment.amount,
        status="succeeded",
    )


def journal_is_balanced() -> bool:
    """The whole journal sums to zero and so does every entry (summed exactly, in Python:
    SQLite's SUM over decimals is a float sum)."""
    from django.conf import settings

    from payments.models import JournalLine

    per_entry: dict[int, Decimal] = {}
    for entry_id, amount in JournalLine.objects.values_list("entry_id", "amount"):
        per_entry[entry_id] = per_entry.get(entry_id, Decimal("0")) + amount
    exact = all(total == 0 for total in per_entry.values())
    platform_says = ledger.unbalanced_entries() == 0 if settings.IS_POSTGRES else True
    return ledger.journal_total() == 0 and exact and platform_says


@pytest.fixture(autouse=True)
def _english(request, settings):
    """The shop's messages are asserted in English whatever translations exist (the checkout
    page's tests choose their own language)."""
    from django.utils import translation

    if request.node.path.name == "test_checkout.py":
        yield
        return
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield
