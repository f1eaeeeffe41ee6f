"""A channel's notice about a refund Cardex never sent it — one still awaiting Finance's
approval, one Finance declined, or one Cardex does not know at all — is refused and flagged
for staff, never acknowledged as a repeat, and moves no money or refund state. Proven through
the shared path (notify view and notice_apply) and end to end with every channel whose
simulator notifies refunds."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from payments import ledger, services
from payments.accounts import backend_for
from payments.channels.base import ClientInfo, Notice, RefundRequest
from payments.models import ChannelAccount, JournalEntry, Notification, Refund
from payments.payables import PayableFacts
from payments.sandbox.alipay import protocol as alipay_protocol
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account
from tests.payments.fakes import FakeBackend, notification
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fake_channels():
    FakeBackend.reset()
    yield
    FakeBackend.reset()


def start(method: str = "alipay", amount: str = "100.00"):
    return services.payment_start(
        buyer=UserFactory(),
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal(amount),
        currency="CNY",
        method=method,
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.7", device="desktop"),
        return_url="http://testserver/orders/RF1/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
    )


@pytest.fixture
def fake_account():
    return ChannelAccount.objects.create(
        code="fa",
        name="fa",
        backend="fake",
        methods=["alipay"],
        fee_percent=Decimal("0.60"),
        weight=Decimal("1.00"),
        base_url="https://fake.example/",
        merchant_id="M1",
    )


@pytest.fixture
def paid(client, fake_account):
    payment = start()
    attempt = payment.attempts.get()
    body, headers = notification(attempt.out_trade_no, "100.00")
    assert post(client, body, headers).status_code == 200
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    return payment


def post(client, body, headers):
    return client.post("/payments/notify/fa/", body, content_type="application/json", **headers)


def refund_notice(client, payment, refund_no: str, outcome: str = "succeeded", amount="30.00"):
    body, headers = notification(
        payment.attempts.get().out_trade_no,
        amount,
        outcome,
        kind="refund",
        refund_no=refund_no,
    )
    return post(client, body, headers)


def finance_clerk():
    return UserFactory(is_staff=True, groups=["Finance"])


def awaiting_approval(payment, amount="30.00") -> Refund:
    refund = services.refund_request(
        payment=payment,
        amount=Decimal(amount),
        reason="support",
        requested_by=UserFactory(is_staff=True, groups=["Support"]),
    )
    assert refund.status == "requested"
    return refund


def snapshot(payment):
    payment.refresh_from_db()
    return (
        list(Refund.objects.order_by("pk").values_list("pk", "status", "channel_refund_no")),
        payment.status,
        payment.refunded_amount,
        JournalEntry.objects.count(),
    )


# ---------------------------------------------------------------------------------------------
# The shared path


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "pending"])
def test_a_notice_for_a_refund_awaiting_approval_is_refused_flagged_and_changes_nothing(
    client, paid, outcome
):
    refund = awaiting_approval(paid)
    before = snapshot(paid)
    response = refund_notice(client, paid, refund.refund_no, outcome)
    assert response.status_code == 400 and response.content == b"FAIL"  # not acknowledged
    assert snapshot(paid) == before
    refund.refresh_from_db()
    assert refund.status == "requested" and refund.settled_at is None
    note = Notification.objects.latest("pk")
    assert note.outcome == "rejected" and note.flagged and note.refund == refund
    assert "never sent" in note.detail and "requested" in note.detail
    assert FakeBackend.refunds == {}  # and nothing went to the channel
    assert ledger.journal_total() == 0


def test_a_success_notice_for_a_refund_finance_declined_is_refused_and_flagged(client, paid):
    refund = awaiting_approval(paid)
    services.refund_decide(
        refund=refund, approve=False, by=finance_clerk(), reason="no proof of a bad code"
    )
    before = snapshot(paid)
    response = refund_notice(client, paid, refund.refund_no)
    assert response.content == b"FAIL" and snapshot(paid) == before
    note = Notification.objects.latest("pk")
    assert note.flagged and "never sent" in note.detail and "declined" in note.detail
    refund.refresh_from_db()
    assert refund.status == "declined"


def test_a_success_notice_for_a_refund_nobody_made_is_refused_and_flagged(client, paid):
    before = snapshot(paid)
    response = refund_notice(client, paid, "RF20261204UNKNOWN01")
    assert response.content == b"FAIL" and snapshot(paid) == before
    note = Notification.objects.latest("pk")
    assert note.outcome == "rejected" and note.flagged and "unknown refund" in note.detail


def test_a_refund_that_was_sent_is_settled_by_the_channel_and_its_repeat_acknowledged(
    client, paid, django_capture_on_commit_callbacks
):
    """The contrast: once Finance approves, the refund goes out (the fake channel settles it
    at once) and the channel's notice about it is a harmless repeat, not flagged."""
    refund = awaiting_approval(paid)
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_decide(refund=refund, approve=True, by=finance_clerk())
    refund.refresh_from_db()
    paid.refresh_from_db()
    assert refund.status == "succeeded" and paid.refunded_amount == Decimal("30.00")
    assert FakeBackend.refunds == {refund.refund_no: Decimal("30.00")}
    assert refund_notice(client, paid, refund.refund_no).status_code == 200
    note = Notification.objects.latest("pk")
    assert note.outcome == "duplicate" and not note.flagged


def test_a_refund_word_from_a_query_or_a_file_about_an_unsent_refund_is_refused_too(paid):
    """notice_apply without a notification (the platform asked, or read a settlement file)."""
    refund = awaiting_approval(paid)
    before = snapshot(paid)
    result, detail = services.notice_apply(
        account=paid.attempts.get().account,
        notice=Notice(
            kind="refund",
            out_trade_no=paid.attempts.get().out_trade_no,
            outcome="succeeded",
            amount=Decimal("30.00"),
            currency="CNY",
            refund_no=refund.refund_no,
        ),
    )
    assert result == "rejected" and "never sent" in detail
    assert snapshot(paid) == before


# ---------------------------------------------------------------------------------------------
# End to end: the channel itself says it refunded what Cardex never sent


REFUND_NOTIFYING_CHANNELS = ["alipay", "wechatpay", "unionpay", "ecny", "paypal", "card"]


def alipay_refund_notice(account, attempt, refund: Refund) -> bytes:
    """Alipay's refund notice (the trade's notice with ``out_biz_no``, ``gmt_refund`` and the
    running ``refund_fee``), signed with the Alipay simulator's key: its simulator sends no
    refund notices of its own, as Alipay sends them only where the merchant asked."""
    params = {
        "notify_time": "2026-12-04 10:00:00",
        "notify_type": "trade_status_sync",
        "notify_id": "n-refund",
        "app_id": account.app_id,
        "charset": "utf-8",
        "version": "1.0",
        "trade_no": attempt.channel_trade_no,
        "out_trade_no": attempt.out_trade_no,
        "seller_id": account.merchant_id,
        "trade_status": "TRADE_SUCCESS",
        "total_amount": f"{attempt.amount:.2f}",
        "refund_fee": f"{refund.amount:.2f}",
        "gmt_refund": "2026-12-04 09:59:58.123",
        "out_biz_no": refund.refund_no,
        "gmt_payment": "2026-12-04 09:00:00",
    }
    content = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    signed = {**params, "sign_type": "RSA2", "sign": alipay_protocol.sign(content)}
    return urlencode(signed).encode()


@pytest.mark.parametrize("channel", REFUND_NOTIFYING_CHANNELS)
def test_a_channels_refund_notice_for_a_refund_awaiting_approval_is_flagged_end_to_end(
    client, django_capture_on_commit_callbacks, channel
):
    account = sandbox_account(channel)
    payment = start(method=channel, amount="88.00")
    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(payment.attempts.get().action, "approve")
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    refund = awaiting_approval(payment, "20.00")
    before = snapshot(payment)
    last = Notification.objects.order_by("-pk").values_list("pk", flat=True).first()

    # The refund reaches the channel under Cardex's refund number though Cardex never sent
    # it (someone holding the merchant's credentials, or the provider's console), and the
    # channel's correctly signed notice says it succeeded.
    attempt = payment.attempts.get()
    with django_capture_on_commit_callbacks(execute=True):
        backend_for(account).refund(
            RefundRequest(
                refund_no=refund.refund_no,
                out_trade_no=attempt.out_trade_no,
                channel_trade_no=attempt.channel_trade_no,
                amount=Decimal("20.00"),
                total_amount=attempt.amount,
                currency="CNY",
                reason="not through Cardex",
            )
        )
    if channel == "alipay":
        response = client.post(
            f"/payments/notify/{account.code}/",
            alipay_refund_notice(account, attempt, refund),
            content_type="application/x-www-form-urlencoded",
        )
        assert response.content == b"fail"
    notes = Notification.objects.filter(pk__gt=last or 0)
    assert notes.exists(), "the channel sent no refund notice"
    assert {(n.outcome, n.flagged, n.refund_id) for n in notes} == {("rejected", True, refund.pk)}
    assert all("never sent" in n.detail for n in notes)
    assert snapshot(payment) == before
    refund.refresh_from_db()
    assert refund.status == "requested" and refund.settled_at is None
    assert ledger.journal_total() == 0


# ---------------------------------------------------------------------------------------------
# A success for a refund held as failed: the money may have left after all


@pytest.fixture
def failed_refund(paid, monkeypatch, django_capture_on_commit_callbacks):
    """A refund the channel first answered as failed (Finance's own, sent at once)."""
    from payments.channels.base import RefundResult

    monkeypatch.setattr(
        FakeBackend,
        "refund",
        lambda self, request: RefundResult(outcome="failed", error_code="REFUND_REFUSED"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        refund = services.refund_request(
            payment=paid, amount=Decimal("30.00"), reason="goodwill", requested_by=finance_clerk()
        )
    refund.refresh_from_db()
    assert refund.status == "failed"
    return refund


def test_a_success_notice_for_a_refund_held_as_failed_is_flagged_for_finance(
    client, paid, failed_refund
):
    before = snapshot(paid)
    response = refund_notice(client, paid, failed_refund.refund_no)
    assert response.status_code == 400 and response.content == b"FAIL"  # not a repeat
    note = Notification.objects.latest("pk")
    assert note.outcome == "rejected" and note.flagged and note.refund == failed_refund
    assert "holds as failed" in note.detail and "Finance" in note.detail
    assert snapshot(paid) == before  # Finance decides; no money or refund state moves
    failed_refund.refresh_from_db()
    assert failed_refund.status == "failed" and failed_refund.settled_at is None


def test_a_success_for_a_failed_refund_learnt_by_query_is_refused_too(paid, failed_refund):
    before = snapshot(paid)
    result, detail = services.notice_apply(
        account=paid.attempts.get().account,
        notice=Notice(
            kind="refund",
            out_trade_no=paid.attempts.get().out_trade_no,
            outcome="succeeded",
            amount=Decimal("30.00"),
            currency="CNY",
            refund_no=failed_refund.refund_no,
        ),
    )
    assert result == "rejected" and "holds as failed" in detail
    assert snapshot(paid) == before


def test_a_failure_notice_repeated_for_a_failed_refund_is_a_harmless_repeat(
    client, paid, failed_refund
):
    """The contrast: the channel saying again that it failed agrees with us."""
    response = refund_notice(client, paid, failed_refund.refund_no, "failed")
    assert response.status_code == 200
    note = Notification.objects.latest("pk")
    assert note.outcome == "duplicate" and not note.flagged
