import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from marketplace import postings, vault
from marketplace.models import CardCode, Order, RevealAudit
from marketplace.services import order_create, seller_funds_mature
from marketplace.tasks import mature_seller_funds
from payments import ledger, signals
from payments.models import JournalEntry, Payment, Refund
from tests.marketplace.conftest import (
    announce_success,
    capture,
    journal_is_balanced,
    with_attempt,
)
from tests.marketplace.factories import succeeded_payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(listing, buyer):
    return order_create(buyer=buyer, listing=listing, quantity=2)


def lapse(order):
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))


def test_payment_success_delivers_the_order(order, pay, listing):
    payment = pay(order)
    assert order.status == "delivered"
    assert order.payment_public_id == payment.public_id
    assert order.paid_at and order.delivered_at
    assert order.guarantee_until - order.delivered_at == dt.timedelta(hours=72)
    codes = CardCode.objects.filter(order=order)
    assert set(codes.values_list("status", flat=True)) == {"sold"} and codes.count() == 2


def test_delivery_posts_the_sale_and_clears_the_received_money(order, pay, listing):
    pay(order)
    entry = JournalEntry.objects.get(key=f"sale:{order.number}")
    assert entry.kind == "sale"
    assert ledger.balance(ledger.CLEARING) == 0
    assert ledger.balance(postings.seller_pending(listing.seller_id), natural=True) == Decimal(
        "174.80"
    )  # 2 × (92 − 4.60)
    assert ledger.balance(ledger.PLATFORM_REVENUE, natural=True) == Decimal("9.20")
    assert journal_is_balanced()


def test_delivery_email_links_to_the_order_and_carries_no_code_by_default(
    order, listing, mailoutbox
):
    announce_success(succeeded_payment(order), mail=True)  # queued after the commit
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert f"/orders/{order.number}/" in mail.body
    html = mail.alternatives[0][0]
    for code in CardCode.objects.filter(order=order):
        plain = vault.decrypt(code.code_encrypted)
        assert plain not in mail.body and plain not in html
    assert not RevealAudit.objects.filter(order=order).exists()


def test_delivery_email_carries_the_codes_when_the_buyer_opted_in_and_is_audited(
    order, listing, mailoutbox
):
    order.buyer.email_codes = True
    order.buyer.save(update_fields=["email_codes"])
    announce_success(succeeded_payment(order), mail=True)
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == [order.buyer.email] and order.number in mail.subject
    delivered = [vault.decrypt(c.code_encrypted) for c in CardCode.objects.filter(order=order)]
    assert all(code in mail.body for code in delivered)
    audit = RevealAudit.objects.get(order=order)
    assert (audit.channel, audit.user, audit.codes) == ("email", order.buyer, 2)


def test_the_same_success_announced_twice_changes_nothing(order, pay, refunds):
    payment = pay(order)
    with transaction.atomic():
        signals.payment_succeeded.send(sender=Payment, payment=payment)
    assert JournalEntry.objects.filter(kind="sale").count() == 1
    assert refunds.calls == []


def test_late_success_re_reserves_and_delivers_when_stock_allows(order, pay, refunds, listing):
    lapse(order)
    from marketplace.services import order_reservations_release

    order_reservations_release()
    order.refresh_from_db()
    assert order.status == "expired" and not order.codes.exists()
    pay(order)
    assert order.status == "delivered"
    assert order.codes.filter(status="sold").count() == 2
    assert "reserved again" in order.note
    assert refunds.calls == []
    assert journal_is_balanced()


def test_success_after_expiry_before_the_release_task_still_delivers(order, pay):
    lapse(order)
    pay(order)
    assert order.status == "delivered"


def test_late_success_without_stock_is_refunded_and_recorded(order, pay, refunds, listing, buyer):
    lapse(order)
    from marketplace.services import order_reservations_release

    order_reservations_release()
    order_create(buyer=buyer, listing=listing, quantity=4)  # someone else took the stock
    payment = pay(order)
    assert order.status == "expired"
    assert "refunded" in order.note
    assert refunds.calls == [
        {
            "payment": payment,
            "amount": order.amount,
            "reason": refunds.calls[0]["reason"],
            "origin": "shop",
        }
    ]
    assert not order.codes.exists()
    assert CardCode.objects.filter(status="sold").count() == 0
    assert journal_is_balanced()


def test_a_refused_automatic_refund_still_keeps_the_success_and_says_so(
    order, pay, refunds, listing, buyer
):
    refunds.fail = True
    lapse(order)
    from marketplace.services import order_reservations_release

    order_reservations_release()
    order_create(buyer=buyer, listing=listing, quantity=5)
    pay(order)
    assert "staff must refund" in order.note


def test_the_refund_of_a_late_payment_is_asked_for_only_after_the_success_commits(
    order, refunds, listing, buyer, django_capture_on_commit_callbacks
):
    from marketplace.services import order_reservations_release

    lapse(order)
    order_reservations_release()
    order_create(buyer=buyer, listing=listing, quantity=5)
    payment = succeeded_payment(order)
    with django_capture_on_commit_callbacks() as after_commit, transaction.atomic():
        capture(payment)
        signals.payment_succeeded.send(sender=Payment, payment=payment)
        assert refunds.calls == []  # not from inside the platform's locked transaction
    assert refunds.calls == []
    for callback in after_commit:
        callback()
    assert [(c["payment"], c["origin"]) for c in refunds.calls] == [(payment, "shop")]


def test_a_refund_refused_after_commit_leaves_the_success_and_a_note_for_staff(
    order, refunds, listing, buyer, django_capture_on_commit_callbacks
):
    from marketplace.services import order_reservations_release

    refunds.fail = True
    lapse(order)
    order_reservations_release()
    order_create(buyer=buyer, listing=listing, quantity=5)
    payment = succeeded_payment(order)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        capture(payment)
        signals.payment_succeeded.send(sender=Payment, payment=payment)
    order.refresh_from_db()
    assert "staff must refund" in order.note
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


def test_a_second_payment_for_a_paid_order_is_refunded(order, pay, refunds):
    first = pay(order)
    second = pay(order)
    assert order.payment_public_id == first.public_id
    assert [(c["payment"], c["origin"]) for c in refunds.calls] == [(second, "shop")]
    assert CardCode.objects.filter(order=order, status="sold").count() == 2
    assert JournalEntry.objects.filter(kind="sale").count() == 1


def test_a_payment_of_the_wrong_amount_is_refunded_not_delivered(order, pay, refunds):
    payment = pay(order, amount=Decimal("1.00"))
    assert order.status == "awaiting_payment"
    assert refunds.calls[0]["payment"] == payment


def test_payments_of_other_things_are_ignored(order, refunds):
    from tests.payments.factories import PaymentFactory

    payment = PaymentFactory(reference="topup:42", status="succeeded")
    with transaction.atomic():
        signals.payment_succeeded.send(sender=Payment, payment=payment)
    assert refunds.calls == []


def test_real_refund_request_of_a_late_payment_then_refund_success_marks_the_order_refunded(
    order, listing, buyer, monkeypatch
):
    from marketplace.services import order_reservations_release
    from payments import services as payment_services
    from payments.services import refunds

    # The refund is requested after commit; its channel's answer is settled by hand below.
    monkeypatch.setattr(refunds, "refund_send", lambda **kwargs: "pending")

    lapse(order)
    order_reservations_release()
    order_create(buyer=buyer, listing=listing, quantity=5)
    payment = succeeded_payment(order)
    with_attempt(payment)
    announce_success(payment)
    refund = Refund.objects.get(payment=payment)
    assert (refund.amount, refund.origin, refund.status) == (order.amount, "shop", "pending")
    payment_services.refund_settle(refund.pk, "succeeded")
    order.refresh_from_db()
    assert order.status == "refunded"
    assert ledger.balance(ledger.CLEARING) == 0
    assert journal_is_balanced()


def test_a_full_refund_of_a_delivered_order_reverses_the_sale(order, listing):
    from payments import services as payment_services

    payment = succeeded_payment(order)
    with_attempt(payment)
    announce_success(payment)
    refund = payment_services.refund_request(
        payment=payment,
        amount=order.amount,
        reason="staff goodwill",
        requested_by=payment_services.SYSTEM,
    )
    payment_services.refund_settle(refund.pk, "succeeded")
    order.refresh_from_db()
    assert order.status == "refunded"
    assert ledger.balance(postings.seller_pending(listing.seller_id)) == 0
    assert ledger.balance(ledger.PLATFORM_REVENUE) == 0
    assert ledger.balance(ledger.CLEARING) == 0
    assert journal_is_balanced()


def test_a_payment_held_for_review_shows_on_the_order(order):
    from tests.payments.factories import PaymentFactory

    payment = PaymentFactory(
        reference=order.payment_reference, buyer=order.buyer, amount=order.amount, status="review"
    )
    signals.payment_status_changed.send(sender=Payment, payment=payment)
    order.refresh_from_db()
    assert order.status == "under_review"
    Payment.objects.filter(pk=payment.pk).update(status="pending")
    payment.refresh_from_db()
    signals.payment_status_changed.send(sender=Payment, payment=payment)
    order.refresh_from_db()
    assert order.status == "awaiting_payment"


def test_a_failed_payment_leaves_the_order_payable(order):
    from tests.payments.factories import PaymentFactory

    payment = PaymentFactory(
        reference=order.payment_reference, buyer=order.buyer, amount=order.amount, status="failed"
    )
    signals.payment_failed.send(sender=Payment, payment=payment)
    order.refresh_from_db()
    assert order.status == "awaiting_payment" and order.is_payable


def test_seller_money_matures_after_the_guarantee_window(order, pay, listing):
    pay(order)
    seller = listing.seller_id
    assert seller_funds_mature() == 0  # still inside the window
    later = order.guarantee_until + dt.timedelta(seconds=1)
    assert seller_funds_mature(now=later) == 1
    order.refresh_from_db()
    assert order.status == "completed" and order.completed_at
    assert ledger.balance(postings.seller_pending(seller)) == 0
    assert ledger.balance(postings.seller_available(seller), natural=True) == Decimal("174.80")
    assert seller_funds_mature(now=later) == 0
    assert JournalEntry.objects.filter(key=f"mature:{order.number}").count() == 1
    assert journal_is_balanced()


def test_the_mature_task_runs_the_service(order, pay):
    pay(order)
    Order.objects.filter(pk=order.pk).update(
        guarantee_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert mature_seller_funds.delay().get() == 1


def test_a_refunded_duplicate_capture_does_not_refund_the_order(order, pay):
    payment = pay(order)
    attempt = with_attempt(payment)
    refund = Refund.objects.create(
        payment=payment,
        attempt=attempt,
        amount=payment.amount,
        origin="double_charge",
        status="succeeded",
    )
    with transaction.atomic():
        signals.refund_succeeded.send(sender=Refund, refund=refund)
    order.refresh_from_db()
    assert order.status == "delivered"
