"""End-to-end acceptance of the payment platform with the real backends and sandboxes.

Each test starts a payment with ``payments.services.payment_start`` (a ``test:`` reference, so
no shop is involved), then acts as the payer on the page the channel's action leads to: the
shared sandbox cashier, UnionPay's gateway form, the card acquirer's hosted card page and its
3-D Secure challenge. The payer finds the form holding the ``sandbox-approve`` (or
``sandbox-decline``) button and submits it as a browser would. Channel HTTP runs in-process
(tests/conftest.py), and the sandbox's notification reaches ``/payments/notify/<account>/`` on
commit. What every channel must give: a paid payment, a balanced journal, the raw notification
stored and applied once (retries change nothing); a decline with the channel's reason and
guidance; failover to another account serving the method when a channel is down; and the
payment settled by the query task when notifications are lost.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone

from payments import health, ledger, services, signals, tasks
from payments.channels.base import ClientInfo
from payments.channels.registry import backend_class
from payments.errors import buyer_message, error_spec
from payments.models import Attempt, ChannelAccount, JournalEntry, Notification
from payments.payables import PayableFacts
from payments.sandbox import tasks as sandbox_tasks
from payments.sandbox.models import SandboxFault, SandboxNotification, SandboxTrade
from payments.sandbox.provisioning import demo_channels_ensure
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db

RETURN_URL = "http://testserver/orders/ACCEPT1/"


# ---------------------------------------------------------------------------------------------
# Cases


@dataclass(frozen=True)
class Case:
    account: str  # channel account code
    backend: str
    method: str
    amount: str = "88.00"
    device: str = "desktop"
    #: pages the payer must pass (path fragments, in order)
    pages: tuple[str, ...] = ()
    #: how the channel reports a payer's decline: its notification, or only its query API
    decline_by: str = "notification"
    decline_code: str = ""

    @property
    def id(self) -> str:
        return f"{self.account}-{self.method}-{self.amount}-{self.device}"


CASES = [
    Case("alipay", "alipay", "alipay", pages=("/cashier/",), decline_code="TRADE_CLOSED"),
    Case(
        "alipay",
        "alipay",
        "alipay",
        device="phone",
        pages=("/cashier/",),
        decline_code="TRADE_CLOSED",
    ),
    Case(
        "wechatpay",
        "wechatpay",
        "wechatpay",
        pages=("/cashier/",),
        decline_by="query",
        decline_code="PAYERROR",
    ),
    Case(
        "wechatpay",
        "wechatpay",
        "wechatpay",
        device="phone",
        pages=("/cashier/",),
        decline_by="query",
        decline_code="PAYERROR",
    ),
    Case(
        "unionpay",
        "unionpay",
        "unionpay",
        pages=("/cashier/",),
        decline_by="query",
        decline_code="64",
    ),
    Case("ecny", "ecny", "ecny", pages=("/cashier/",), decline_code="BALANCE_NOT_ENOUGH"),
    Case("paypal", "paypal", "paypal", pages=("/cashier/",), decline_code="INSTRUMENT_DECLINED"),
    Case("card", "card", "card", pages=("/elements/",), decline_code="insufficient_funds"),
    Case(
        "card",
        "card",
        "card",
        amount="1200.00",
        pages=("/elements/", "/3ds/"),
        decline_code="insufficient_funds",
    ),
    Case(
        "card",
        "card",
        "card_instalments",
        amount="3600.00",
        pages=("/elements/", "/3ds/"),
        decline_code="insufficient_funds",
    ),
    Case("bank-polypay", "ecny", "alipay", pages=("/cashier/",), decline_code="BALANCE_NOT_ENOUGH"),
    Case(
        "bank-polypay", "ecny", "wechatpay", pages=("/cashier/",), decline_code="BALANCE_NOT_ENOUGH"
    ),
]


def provision(case: Case) -> ChannelAccount:
    """The case's account alone serves its method (sandbox_account, as seed_demo does)."""
    if case.account == case.backend:
        return sandbox_account(case.backend)
    return sandbox_account(
        case.backend, code=case.account, merchant_id="POLYACCEPT0001", methods=[case.method]
    )


def start(method: str, amount: str = "88.00", device: str = "desktop", buyer=None):
    return services.payment_start(
        buyer=buyer or UserFactory(),
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal(amount),
        currency="CNY",
        method=method,
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.7", device=device, user_agent=f"acceptance/{device}"),
        return_url=RETURN_URL,
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        # an established buyer: these tests are about channels, not the risk engine's step-up
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
    )


def journal_balanced() -> bool:
    return ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0


def run_query_task(captured) -> None:
    """Beat's lost-callback sweep, with every open attempt due now."""
    Attempt.objects.filter(status__in=["pending", "unknown", "created"]).update(
        next_query_at=timezone.now() - dt.timedelta(seconds=1)
    )
    with captured(execute=True):
        tasks.query_pending_attempts.delay()


@pytest.fixture
def succeeded_signals():
    seen: list[int] = []

    def receiver(sender, payment, **kwargs):
        seen.append(payment.pk)

    signals.payment_succeeded.connect(receiver, weak=False, dispatch_uid="acceptance-succeeded")
    yield seen
    signals.payment_succeeded.disconnect(dispatch_uid="acceptance-succeeded")


# ---------------------------------------------------------------------------------------------
# Paying, once


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_paying_through_the_sandbox_succeeds_once(
    client, django_capture_on_commit_callbacks, succeeded_signals, case
):
    account = provision(case)
    payment = start(case.method, case.amount, case.device)
    assert payment.status == "pending", (payment.failure_code, payment.failure_reason)
    attempt = payment.attempts.get()
    assert attempt.account == account and attempt.status == "pending" and attempt.action["url"]

    payer = Payer(client)
    with django_capture_on_commit_callbacks(execute=True):
        pages = payer.decide(attempt.action, "approve")
    assert [p for p in case.pages if any(p in page for page in pages)] == list(case.pages), pages

    payment.refresh_from_db()
    attempt.refresh_from_db()
    assert payment.status == "succeeded" and payment.succeeded_at
    assert attempt.status == "succeeded" and attempt.channel_trade_no
    assert succeeded_signals == [payment.pk]
    trade = SandboxTrade.objects.get(channel=case.backend, out_trade_no=attempt.out_trade_no)
    assert trade.status == "paid" and trade.amount == Decimal(case.amount)
    if case.method == "card_instalments":
        assert trade.extra["installments_plan"]["count"] == payment.instalments == 3

    # the money: captured into this account's receivable, its fee booked, the journal balanced
    assert journal_balanced()
    assert JournalEntry.objects.filter(key=f"capture:{attempt.out_trade_no}").exists()
    receivable = ledger.balance(ledger.channel_receivable(account.code))
    assert receivable == Decimal(case.amount) - attempt.fee
    assert ledger.balance(ledger.channel_fees(account.code)) == attempt.fee

    # the notification: stored raw, at the account's own notify URL, applied exactly once
    applied = Notification.objects.filter(account=account, outcome="applied")
    assert applied.count() == 1
    note = applied.get()
    assert note.attempt == attempt and bytes(note.body) and note.headers and not note.flagged
    sent = SandboxNotification.objects.filter(channel=case.backend)
    assert sent.exists() and all(n.delivered for n in sent)
    assert {n.url for n in sent} == {f"http://testserver/payments/notify/{account.code}/"}

    # the channel retries (every notification it sent, again): acknowledged, nothing changes
    entries = JournalEntry.objects.count()
    last = Notification.objects.order_by("-pk").values_list("pk", flat=True).first()
    sent.update(delivered=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert all(sandbox_tasks.deliver(n.pk) for n in sent.order_by("pk"))
    repeats = Notification.objects.filter(pk__gt=last)
    assert repeats.count() == sent.count()
    assert set(repeats.values_list("outcome", flat=True)) == {"duplicate"}
    assert Notification.objects.filter(account=account, outcome="applied").count() == 1
    assert not Notification.objects.filter(outcome__in=["rejected", "error"]).exists()
    assert JournalEntry.objects.count() == entries and journal_balanced()
    payment.refresh_from_db()
    assert payment.status == "succeeded" and succeeded_signals == [payment.pk]
    assert payment.attempts.count() == 1


# ---------------------------------------------------------------------------------------------
# The payer declines


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_decline_fails_the_payment_with_the_channels_reason_and_guidance(
    client, django_capture_on_commit_callbacks, case
):
    provision(case)
    payment = start(case.method, case.amount, case.device)
    attempt = payment.attempts.get()
    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(attempt.action, "decline", reason="insufficient_funds")
    payment.refresh_from_db()
    if case.decline_by == "query":
        # the channel notifies successes only: the decline is learnt by the query task
        assert payment.status == "pending"
        assert not Notification.objects.exists()
        run_query_task(django_capture_on_commit_callbacks)
        payment.refresh_from_db()
    else:
        assert Notification.objects.filter(outcome="applied", attempt=attempt).count() == 1

    assert payment.status == "failed"
    assert payment.failure_code == case.decline_code
    mapped = backend_class(case.backend).error_codes[case.decline_code]
    assert mapped.action == "final" and not mapped.counts_against_channel
    expected = buyer_message(error_spec(case.backend, case.decline_code), case.decline_code)
    assert payment.failure_reason == expected.reason and payment.failure_reason in (
        mapped.reason_zh,
        mapped.reason_en,
    )
    assert payment.failure_guidance == expected.guidance and payment.failure_guidance
    assert payment.attempts.get().status in ("failed", "cancelled")
    assert not JournalEntry.objects.exists() and journal_balanced()


# ---------------------------------------------------------------------------------------------
# A channel is down: another account serving the method takes the payment


@pytest.mark.parametrize("method", ["alipay", "wechatpay"])
def test_with_the_direct_channel_down_the_bank_aggregator_takes_the_payment(
    client, django_capture_on_commit_callbacks, method
):
    accounts = {a.code: a for a in demo_channels_ensure()}
    direct, bank = accounts[method], accounts["bank-polypay"]
    assert method in bank.methods and bank.weight < direct.weight
    # the bank alone is the alternative here: the epay aggregator, which serves Alipay too,
    # fails over on its own in tests/payments/channels/test_aggregator.py
    ChannelAccount.objects.filter(code="aggregator").update(enabled=False)
    # the direct channel has been healthy (so routing prefers it), then its gateway goes down
    for _ in range(40):
        health.health_record(direct, method, Decimal("88.00"), "succeeded")
    SandboxFault.objects.create(channel=method, down=True)

    payment = start(method)
    assert payment.status == "pending", (payment.failure_code, payment.failure_reason)
    first, second = payment.attempts.order_by("created_at", "pk")
    assert (first.account.code, first.status) == (method, "failed")
    assert first.error_code.startswith("HTTP_5") and first.routing["winner"] == method
    assert first.routing["order"][:2] == [method, "bank-polypay"]
    assert (second.account.code, second.status) == ("bank-polypay", "pending")
    assert second.routing["winner"] == "bank-polypay"
    assert any(c["code"] == method and c.get("excluded") for c in second.routing["candidates"])
    # routing's health learnt of the outage from the real outcome
    assert health.health_summary(direct)["counts"] == {"succeeded": 40, "error": 1}

    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(second.action, "approve")
    payment.refresh_from_db()
    second.refresh_from_db()
    assert payment.status == "succeeded" and second.status == "succeeded"
    note = Notification.objects.get(outcome="applied")
    assert (note.channel_code, note.attempt) == ("bank-polypay", second)
    assert journal_balanced()
    assert (
        ledger.balance(ledger.channel_receivable("bank-polypay")) == Decimal("88.00") - second.fee
    )
    assert second.fee == Decimal("0.70")  # the bank's 0.80 %
    assert health.health_summary(bank)["counts"] == {"succeeded": 1}
    assert ledger.balance(ledger.channel_receivable(method)) == 0
    # the bank itself was never down: its own switch is separate
    assert not SandboxFault.objects.filter(channel="ecny").exists()


def test_with_every_account_for_the_method_down_the_buyer_is_told_why(
    django_capture_on_commit_callbacks,
):
    demo_channels_ensure()
    SandboxFault.objects.create(channel="alipay", down=True)
    SandboxFault.objects.create(channel="ecny", down=True)
    SandboxFault.objects.create(channel="aggregator", down=True)
    payment = start("alipay")
    assert payment.status == "failed" and payment.failure_reason and payment.failure_guidance
    assert sorted(payment.attempts.values_list("account__code", "status")) == [
        ("aggregator", "failed"),
        ("alipay", "failed"),
        ("bank-polypay", "failed"),
    ]


# ---------------------------------------------------------------------------------------------
# Lost notifications (掉单): the query task settles the payment


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_lost_notification_is_recovered_by_the_query_task(
    client, django_capture_on_commit_callbacks, succeeded_signals, case
):
    provision(case)
    SandboxFault.objects.create(channel=case.backend, lose_notifications=True)
    payment = start(case.method, case.amount, case.device)
    attempt = payment.attempts.get()
    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(attempt.action, "approve")
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert not Notification.objects.exists() and not SandboxNotification.objects.exists()
    assert (
        SandboxTrade.objects.get(channel=case.backend, out_trade_no=attempt.out_trade_no).status
        == "paid"
    )

    # not due yet: the sweep leaves it alone
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.query_pending_attempts.delay().get() == 0
    run_query_task(django_capture_on_commit_callbacks)
    payment.refresh_from_db()
    attempt.refresh_from_db()
    assert payment.status == "succeeded" and attempt.status == "succeeded"
    assert succeeded_signals == [payment.pk]
    assert journal_balanced()
    assert JournalEntry.objects.filter(key=f"capture:{attempt.out_trade_no}").exists()
    # a second sweep finds nothing open
    run_query_task(django_capture_on_commit_callbacks)
    assert succeeded_signals == [payment.pk] and journal_balanced()


# ---------------------------------------------------------------------------------------------
# Refunds after a sandbox payment


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_partial_then_full_refund_reaches_the_channel_and_balances(
    client, django_capture_on_commit_callbacks, case
):
    provision(case)
    payment = start(case.method, case.amount, case.device)
    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(payment.attempts.get().action, "approve")
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    amount = Decimal(case.amount)
    part = (amount / 4).quantize(Decimal("0.01"))
    for value in (part, amount - part):
        with django_capture_on_commit_callbacks(execute=True):
            refund = services.refund_request(
                payment=payment, amount=value, reason="acceptance", requested_by=services.SYSTEM
            )
        refund.refresh_from_db()
        if refund.status == "pending":  # answered PROCESSING: the chase task settles it
            with django_capture_on_commit_callbacks(execute=True):
                tasks.resend_pending_refunds.delay()
            refund.refresh_from_db()
        assert refund.status == "succeeded", (refund.error, refund.status)
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.refunded_amount == amount
    assert journal_balanced()
    assert not Notification.objects.filter(outcome__in=["rejected", "error"]).exists()
