"""The payment platform's promises: route, fail over, apply each notice exactly once,
refund within what was paid, and keep the journal balanced."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments import ledger, services, signals
from payments.channels.base import ClientInfo
from payments.models import (
    Attempt,
    ChannelAccount,
    Notification,
    NotificationRefusal,
    Payment,
    Refund,
)
from tests.accounts.factories import UserFactory
from tests.payments.fakes import FakeBackend, notification

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fake_channels():
    FakeBackend.reset()
    yield
    FakeBackend.reset()


def account(code, *, fee="0.60", weight="1.00", methods=("alipay",), **kw):
    return ChannelAccount.objects.create(
        code=code,
        name=code,
        backend="fake",
        methods=list(methods),
        fee_percent=Decimal(fee),
        weight=Decimal(weight),
        base_url="https://fake.example/",
        merchant_id=kw.pop("merchant_id", "M1"),
        **kw,
    )


def start(buyer=None, amount="100.00", method="alipay", reference="test:T1", minutes=15, **extra):
    return services.payment_start(
        buyer=buyer or UserFactory(),
        reference=reference,
        amount=Decimal(amount),
        currency="CNY",
        method=method,
        subject="Test",
        client=ClientInfo(ip="10.0.0.1", device="desktop"),
        return_url="http://testserver/orders/T1/",
        expires_at=timezone.now() + timedelta(minutes=minutes),
        **extra,
    )


def post_notice(client, code, body, headers):
    return client.post(
        f"/payments/notify/{code}/", body, content_type="application/json", **headers
    )


def journal_is_balanced():
    return ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0


def test_payment_is_opened_at_a_channel_with_an_action_for_the_buyer():
    account("fa")
    payment = start()
    assert payment.status == "pending"
    attempt = payment.attempts.get()
    assert attempt.action["type"] == "redirect"
    assert attempt.routing["winner"] == "fa" and attempt.routing["candidates"]


def test_the_ranking_the_buyer_was_shown_is_kept_with_the_payment_from_its_creation():
    account("fa")
    shown = {"order": ["alipay", "card"], "signals": {"device": "desktop"}}
    payment = start(ordering=shown)
    stored = Payment.objects.get(pk=payment.pk).client
    assert stored["ordering"] == shown
    assert stored["ip"] == "10.0.0.1"


def test_unreachable_channel_fails_over_to_the_next_account_without_the_buyer_starting_over():
    account("fa")
    account("fb")
    FakeBackend.sequence.append("unavailable")  # whichever account routing tries first
    payment = start()
    assert payment.status == "pending"
    attempts = list(payment.attempts.order_by("created_at").values_list("account__code", "status"))
    assert [status for _, status in attempts] == ["failed", "pending"]
    assert {code for code, _ in attempts} == {"fa", "fb"}


def test_hard_decline_does_not_fail_over_and_tells_the_buyer_why():
    account("fa")
    account("fb")
    FakeBackend.sequence.append("decline:NO_MONEY")
    payment = start()
    assert payment.status == "failed"
    assert payment.attempts.count() == 1
    assert payment.failure_code == "NO_MONEY" and payment.failure_reason


def test_soft_decline_fails_over():
    account("fa")
    account("fb")
    FakeBackend.sequence.append("decline:SOFT")
    payment = start()
    assert payment.status == "pending" and payment.attempts.count() == 2


def test_timeout_is_queried_and_closed_before_another_channel_is_tried():
    account("fa")
    account("fb")
    FakeBackend.sequence.append("timeout")
    payment = start()
    first = payment.attempts.order_by("created_at").first()
    assert first.out_trade_no in FakeBackend.closed
    assert first.status == "cancelled"
    assert payment.attempts.count() == 2
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_timeout_that_cannot_be_closed_stops_failover_so_the_buyer_cannot_pay_twice():
    account("fa")
    account("fb")
    FakeBackend.sequence.append("timeout")
    FakeBackend.close_fails = True
    payment = start()
    assert payment.attempts.count() == 1
    assert payment.attempts.get().status == "unknown"
    assert payment.status == "pending"


def test_no_channel_for_the_method_fails_with_a_reason():
    payment = start(method="paypal")
    assert payment.status == "failed" and payment.failure_reason


def test_success_notice_is_applied_once_and_repeats_change_nothing(client):
    account("fa")
    seen = []
    signals.payment_succeeded.connect(
        lambda sender, payment, **kw: seen.append(payment.pk), weak=False, dispatch_uid="t1"
    )
    try:
        payment = start()
        attempt = payment.attempts.get()
        body, headers = notification(attempt.out_trade_no, "100.00", merchant_id="M1")
        for _ in range(3):
            response = post_notice(client, "fa", body, headers)
            assert response.status_code == 200 and response.content == b"OK"
    finally:
        signals.payment_succeeded.disconnect(dispatch_uid="t1")
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert seen == [payment.pk]
    outcomes = sorted(Notification.objects.values_list("outcome", flat=True))
    assert outcomes == ["applied", "duplicate", "duplicate"]
    assert ledger.balance(ledger.channel_receivable("fa")) == Decimal("99.40")  # amount − fee
    assert journal_is_balanced()


def test_forged_notice_is_refused_flagged_and_changes_nothing(client):
    account("fa")
    payment = start()
    attempt = payment.attempts.get()
    body, headers = notification(attempt.out_trade_no, "100.00")
    headers["HTTP_X_FAKE_SIGNATURE"] = "0" * 64
    response = post_notice(client, "fa", body, headers)
    assert response.status_code == 400
    note = Notification.objects.get()
    assert note.outcome == "rejected" and note.flagged and "signature" in note.detail
    assert bytes(note.body) == body  # stored raw
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_notice_with_a_different_amount_is_refused_and_flagged(client):
    account("fa")
    payment = start()
    attempt = payment.attempts.get()
    body, headers = notification(attempt.out_trade_no, "1.00")
    assert post_notice(client, "fa", body, headers).status_code == 400
    attempt.refresh_from_db()
    assert attempt.status == "pending" and attempt.flagged
    assert Notification.objects.get().flagged


def test_notice_from_another_merchant_is_refused(client):
    account("fa", merchant_id="M1")
    payment = start()
    body, headers = notification(
        payment.attempts.get().out_trade_no, "100.00", merchant_id="SOMEONE-ELSE"
    )
    assert post_notice(client, "fa", body, headers).status_code == 400
    assert Payment.objects.get().status == "pending"


def test_notice_for_an_unknown_account_is_refused_and_only_counted(client):
    response = client.post("/payments/notify/nope/", b"{}", content_type="application/json")
    assert response.status_code == 404
    assert not Notification.objects.exists()
    refusal = NotificationRefusal.objects.get()
    assert (refusal.reason, refusal.channel_code, refusal.count) == ("unknown_account", "", 1)


def test_each_process_looks_an_account_up_once_and_sees_its_changes_at_once(client):
    fa = account("fa", merchant_id="M1")
    payment = start()
    out_trade_no = payment.attempts.get().out_trade_no
    with CaptureQueriesContext(connection) as queries:
        for _ in range(2):
            assert (
                post_notice(
                    client, "fa", *notification(out_trade_no, "100.00", "pending", merchant_id="M1")
                ).status_code
                == 200
            )
    assert sum("payments_channelaccount" in q["sql"] for q in queries.captured_queries) == 1

    fa.merchant_id = "M2"  # staff change the account: the next notice is judged by the new row
    fa.save()
    assert (
        post_notice(
            client, "fa", *notification(out_trade_no, "100.00", merchant_id="M1")
        ).status_code
        == 400
    )
    assert Payment.objects.get().status == "pending"


def test_the_notification_hot_path_has_a_fixed_statement_budget(client, django_assert_num_queries):
    """Raw row, locks on the payment and its attempts, the attempt, the journal entry and its
    lines, the payment, the notification's outcome; a repeat: raw row, the locks, its outcome."""
    account("fa")
    warm, payment = start(reference="test:W"), start(reference="test:T2")
    assert (
        post_notice(
            client, "fa", *notification(warm.attempts.get().out_trade_no, "100.00")
        ).status_code
        == 200
    )
    body, headers = notification(payment.attempts.get().out_trade_no, "100.00")
    # + 2: inside the test's transaction the apply transaction is a savepoint and its release.
    with django_assert_num_queries(8 + 2):
        assert post_notice(client, "fa", body, headers).status_code == 200
    with django_assert_num_queries(4 + 2):
        assert post_notice(client, "fa", body, headers).status_code == 200


def test_decline_notice_fails_the_payment_with_the_channels_reason(client):
    account("fa")
    payment = start()
    body, headers = notification(
        payment.attempts.get().out_trade_no, "100.00", outcome="failed", error_code="NO_MONEY"
    )
    assert post_notice(client, "fa", body, headers).status_code == 200
    payment.refresh_from_db()
    assert payment.status == "failed" and payment.failure_code == "NO_MONEY"


def test_success_after_expiry_is_not_lost(client):
    account("fa")
    payment = start()
    attempt = payment.attempts.get()
    Payment.objects.filter(pk=payment.pk).update(status="expired")
    Attempt.objects.filter(pk=attempt.pk).update(status="expired")
    body, headers = notification(attempt.out_trade_no, "100.00")
    assert post_notice(client, "fa", body, headers).status_code == 200
    payment.refresh_from_db()
    assert payment.status == "succeeded"


def test_two_attempts_of_one_payment_both_succeeding_refunds_the_later_automatically(
    client, django_capture_on_commit_callbacks
):
    account("fa")
    account("fb")
    FakeBackend.script["fa"].append("decline:SOFT")
    FakeBackend.script["fb"].append("decline:SOFT")
    payment = start()  # both "declined", yet both channels later report the money taken
    first, second = payment.attempts.order_by("created_at")
    # the "failed" first attempt was in fact paid at the channel, then the second too
    for attempt in (second, first):
        body, headers = notification(attempt.out_trade_no, "100.00")
        with django_capture_on_commit_callbacks(execute=True):
            assert post_notice(client, attempt.account.code, body, headers).status_code == 200
    refund = Refund.objects.get()
    assert (
        refund.origin == "double_charge"
        and refund.status == "succeeded"
        and refund.attempt == first
    )
    first.refresh_from_db()
    assert first.flagged
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.refunded_amount == 0
    assert journal_is_balanced()


def test_lost_callback_is_recovered_by_the_query_task():
    account("fa")
    payment = start()
    attempt = payment.attempts.get()
    FakeBackend.query_answers[attempt.out_trade_no] = "succeeded"
    Attempt.objects.filter(pk=attempt.pk).update(
        next_query_at=timezone.now() - timedelta(seconds=1)
    )
    from payments.tasks import query_pending_attempts

    assert query_pending_attempts() == 1
    payment.refresh_from_db()
    assert payment.status == "succeeded"


def test_query_task_backs_off_while_pending_and_closes_after_expiry():
    account("fa")
    payment = start(minutes=15)
    attempt = payment.attempts.get()
    assert services.attempt_query(attempt_id=attempt.pk) == "pending"
    attempt.refresh_from_db()
    assert attempt.query_count == 1 and attempt.next_query_at > timezone.now()
    Payment.objects.filter(pk=payment.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert services.attempt_query(attempt_id=attempt.pk) == "expired"
    assert attempt.out_trade_no in FakeBackend.closed
    assert Payment.objects.get(pk=payment.pk).status == "expired"


def _paid_payment(client):
    account("fa")
    payment = start()
    body, headers = notification(payment.attempts.get().out_trade_no, "100.00")
    post_notice(client, "fa", body, headers)
    payment.refresh_from_db()
    return payment


def test_partial_then_full_refund_and_nothing_above_what_was_paid(
    client, django_capture_on_commit_callbacks
):
    payment = _paid_payment(client)
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_request(
            payment=payment,
            amount=Decimal("30.00"),
            reason="one bad code",
            requested_by=services.SYSTEM,
        )
    payment.refresh_from_db()
    assert payment.status == "partially_refunded" and payment.refunded_amount == Decimal("30.00")
    with pytest.raises(services.PaymentError):
        services.refund_request(
            payment=payment,
            amount=Decimal("70.01"),
            reason="too much",
            requested_by=services.SYSTEM,
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_request(
            payment=payment, amount=Decimal("70.00"), reason="rest", requested_by=services.SYSTEM
        )
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.refunded_amount == payment.amount
    assert sum(FakeBackend.refunds.values()) == Decimal("100.00")
    assert journal_is_balanced()


def test_a_refund_on_its_way_is_owed_to_the_buyer_until_the_channel_answers(client):
    payment = _paid_payment(client)
    clearing = ledger.balance(ledger.CLEARING, natural=True)
    sent = services.refund_request(
        payment=payment,
        amount=Decimal("30.00"),
        reason="one bad code",
        requested_by=services.SYSTEM,
    )
    # Not sent yet (the test's transaction never commits): owed, out of clearing.
    assert ledger.balance(ledger.REFUNDS_IN_FLIGHT, natural=True) == Decimal("30.00")
    assert ledger.balance(ledger.CLEARING, natural=True) == clearing - Decimal("30.00")

    services.refund_send(refund_id=sent.pk)  # the channel confirms
    assert ledger.balance(ledger.REFUNDS_IN_FLIGHT) == 0
    assert ledger.balance(ledger.channel_receivable("fa")) == Decimal(
        "69.40"
    )  # 99.40 received − 30 back

    refused = services.refund_request(
        payment=payment, amount=Decimal("20.00"), reason="another", requested_by=services.SYSTEM
    )
    services.refund_settle(refused.pk, "failed", error="REFUND_REJECTED")
    assert ledger.balance(ledger.REFUNDS_IN_FLIGHT) == 0
    assert ledger.balance(ledger.CLEARING, natural=True) == clearing - Decimal(
        "30.00"
    )  # the 20 came back
    assert journal_is_balanced()


def test_refund_of_an_unpaid_payment_is_refused():
    account("fa")
    payment = start()
    with pytest.raises(services.PaymentError):
        services.refund_request(
            payment=payment, amount=Decimal("1.00"), reason="x", requested_by=services.SYSTEM
        )


def test_balance_wallet_pays_at_once_and_refunds_back_to_the_wallet(
    django_capture_on_commit_callbacks,
):
    ChannelAccount.objects.create(
        code="balance",
        name="b",
        backend="balance",
        methods=["balance"],
        base_url="https://internal.invalid/",
        fee_percent=0,
    )
    buyer = UserFactory()
    ledger.post(
        key="seed-topup",
        kind="wallet_topup",
        lines=[(ledger.CLEARING, Decimal("150")), (ledger.buyer_wallet(buyer.id), Decimal("-150"))],
    )
    payment = start(buyer=buyer, method="balance")
    assert payment.status == "succeeded"
    assert ledger.balance(ledger.buyer_wallet(buyer.id), natural=True) == Decimal("50.00")
    second = start(buyer=buyer, method="balance", reference="test:T2")
    assert second.status == "failed" and second.failure_code == "INSUFFICIENT_BALANCE"
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_request(
            payment=payment,
            amount=Decimal("100.00"),
            reason="dispute",
            requested_by=services.SYSTEM,
        )
    assert ledger.balance(ledger.buyer_wallet(buyer.id), natural=True) == Decimal("150.00")
    assert journal_is_balanced()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_copies_of_one_notice_credit_once(client):
    account("fa")
    payment = start()
    attempt = payment.attempts.get()
    body, headers = notification(attempt.out_trade_no, "100.00")
    barrier = threading.Barrier(10)
    codes = []

    def deliver():
        from django.test import Client

        try:
            barrier.wait()
            codes.append(post_notice(Client(), "fa", body, headers).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 10
    assert Notification.objects.filter(outcome="applied").count() == 1
    assert Notification.objects.filter(outcome="duplicate").count() == 9
    assert ledger.balance(ledger.channel_receivable("fa")) == Decimal("99.40")
    assert journal_is_balanced()


def test_out_of_order_notices_never_move_a_paid_payment_back(client):
    account("fa")
    payment = start()
    out_trade_no = payment.attempts.get().out_trade_no
    for outcome in ["succeeded", "pending", "closed", "failed", "succeeded"]:
        body, headers = notification(out_trade_no, "100.00", outcome=outcome)
        assert post_notice(client, "fa", body, headers).status_code == 200
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.attempts.get().status == "succeeded"
    assert Notification.objects.filter(outcome="applied").count() == 1
    assert journal_is_balanced()


def test_switching_methods_closes_the_earlier_pending_payment_at_its_channel():
    account("fa", methods=("alipay", "wechatpay"))
    buyer = UserFactory()
    first = start(buyer=buyer, reference="test:switch")
    second = start(buyer=buyer, reference="test:switch", method="wechatpay")
    first.refresh_from_db()
    assert first.status == "cancelled" and first.failure_code == "SUPERSEDED"
    assert first.attempts.get().out_trade_no in FakeBackend.closed
    assert second.status == "pending"


def test_an_earlier_payment_that_cannot_be_closed_stays_pending():
    account("fa", methods=("alipay", "wechatpay"))
    buyer = UserFactory()
    first = start(buyer=buyer, reference="test:switch2")
    FakeBackend.close_fails = True
    start(buyer=buyer, reference="test:switch2", method="wechatpay")
    first.refresh_from_db()
    assert first.status == "pending"


@pytest.mark.postgres
def test_applying_a_notice_locks_only_its_own_rows_never_the_channel_account(client):
    """A row lock taken through a join would also lock the channel account's row and make every
    notification of that account wait for the one before it."""
    from django.test.utils import CaptureQueriesContext

    account("fa")
    payment = start()
    body, headers = notification(payment.attempts.get().out_trade_no, "100.00")
    with CaptureQueriesContext(connection) as queries:
        assert post_notice(client, "fa", body, headers).status_code == 200
    locking = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert locking, "the apply must lock the payment and the attempt"
    for sql in locking:
        assert "JOIN" not in sql or "FOR UPDATE OF" in sql, sql


def test_a_timeout_on_a_channel_that_cannot_close_stops_failover():
    account("fa")
    account("fb")
    FakeBackend.sequence.append("timeout")
    FakeBackend.supports_close = False
    try:
        payment = start()
    finally:
        FakeBackend.supports_close = True
    assert payment.attempts.count() == 1
    assert payment.attempts.get().status == "unknown"
    assert FakeBackend.closed == []


def test_switching_methods_leaves_a_trade_that_cannot_be_closed_open():
    account("fa", methods=("alipay", "wechatpay"))
    buyer = UserFactory()
    first = start(buyer=buyer, reference="test:switch3")
    FakeBackend.supports_close = False
    try:
        start(buyer=buyer, reference="test:switch3", method="wechatpay")
    finally:
        FakeBackend.supports_close = True
    first.refresh_from_db()
    assert first.status == "pending" and first.attempts.get().status == "pending"
