import datetime as dt
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from marketplace.integrity import integrity_report
from marketplace.models import CardCode, Order
from marketplace.services import order_create
from marketplace.tasks import integrity_check
from payments.models import JournalEntry, JournalLine, LedgerAccount
from tests.marketplace.factories import succeeded_payment

pytestmark = pytest.mark.django_db

CONTRACT_CHECKS = {
    "codes_sold_twice",
    "ledger_unbalanced",
    "paid_not_delivered_or_refunded",
    "expired_reservations_holding_stock",
}


def run_json(capsys) -> tuple[dict, int]:
    code = 0
    try:
        call_command("integrity_check", "--json")
    except SystemExit as exc:
        code = exc.code
    return json.loads(capsys.readouterr().out), code


def test_a_healthy_shop_passes_every_check(capsys, listing, buyer, pay):
    pay(order_create(buyer=buyer, listing=listing, quantity=2))
    report, code = run_json(capsys)
    assert report["ok"] is True and code == 0
    assert set(report["checks"]) >= CONTRACT_CHECKS
    assert all(value == 0 for value in report["checks"].values())


def test_a_paid_order_that_was_neither_delivered_nor_refunded_fails_the_check(
    capsys, listing, buyer
):
    order = order_create(buyer=buyer, listing=listing, quantity=1)
    succeeded_payment(order)  # the platform took the money but the shop never heard of it
    report, code = run_json(capsys)
    assert report["ok"] is False and code == 1
    assert report["checks"]["paid_not_delivered_or_refunded"] == 1


def test_reservations_held_by_an_expired_order_fail_the_check(listing, buyer):
    order = order_create(buyer=buyer, listing=listing, quantity=2)
    Order.objects.filter(pk=order.pk).update(status="expired")
    assert integrity_report()["checks"]["expired_reservations_holding_stock"] == 2


def test_a_code_sold_outside_a_delivery_fails_the_check(listing, buyer):
    order = order_create(buyer=buyer, listing=listing, quantity=1)
    CardCode.objects.filter(order=order).update(status="sold")
    assert integrity_report()["checks"]["codes_sold_twice"] == 1


def test_an_unbalanced_entry_fails_the_check():
    entry = JournalEntry.objects.create(key="broken", kind="test")
    JournalLine.objects.create(
        entry=entry, account=LedgerAccount.objects.create(code="x", kind="asset"), amount="1.00"
    )
    assert (
        integrity_report()["checks"]["ledger_unbalanced"] == 2
    )  # the entry, and the journal as a whole


def test_the_nightly_task_alerts_admins_when_a_check_fails(
    settings, mailoutbox, listing, buyer, caplog
):
    settings.ADMINS = [("Ops", "ops@example.com")]
    order = order_create(buyer=buyer, listing=listing, quantity=1)
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - dt.timedelta(hours=2))
    report = integrity_check.delay().get()
    assert report["ok"] is False
    assert len(mailoutbox) == 1 and "Integrity check failed" in mailoutbox[0].subject
    assert "integrity check failed" in caplog.text


def test_the_readable_output_names_failing_checks(capsys, listing, buyer):
    call_command("integrity_check")
    out = capsys.readouterr().out
    assert "all checks passed" in out and "ledger_unbalanced" in out


def test_refunds_owed_to_buyers_must_match_the_refunds_waiting_for_their_channel(listing, buyer):
    from decimal import Decimal

    from payments import ledger

    order = order_create(buyer=buyer, listing=listing, quantity=1)
    from payments.models import ChannelAccount

    payment = succeeded_payment(order)
    account = ChannelAccount.objects.create(
        code="fa", name="fa", backend="fake", methods=["alipay"], base_url="https://fake.example/"
    )
    attempt = payment.attempts.create(
        account=account, method="alipay", amount=payment.amount, status="succeeded"
    )
    refund = payment.refunds.create(attempt=attempt, amount=Decimal("10.00"), status="pending")
    assert (
        integrity_report()["checks"]["refunds_in_flight_mismatch"] == 1
    )  # waiting, but never posted
    ledger.post(
        key=f"refund-sent:{refund.refund_no}",
        kind="refund_sent",
        lines=[(ledger.CLEARING, Decimal("10.00")), (ledger.REFUNDS_IN_FLIGHT, Decimal("-10.00"))],
    )
    assert integrity_report()["checks"]["refunds_in_flight_mismatch"] == 0
