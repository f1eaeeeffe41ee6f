"""The journal: balanced, immutable, idempotent entries; balances are sums of lines."""

from decimal import Decimal

import pytest

from payments import ledger
from payments.models import JournalEntry, JournalLine, LedgerAccount

pytestmark = pytest.mark.django_db

D = Decimal


def capture(key="capture:T1", source="channel:fa:receivable", amount="100.00", fee="0.60"):
    return ledger.post(
        key=key,
        kind="payment_captured",
        reference="test:T1",
        memo="fa T1",
        lines=[
            (source, D(amount)),
            (ledger.CLEARING, -D(amount)),
            (ledger.channel_fees("fa"), D(fee)),
            (source, -D(fee)),
        ],
    )


def test_an_entry_posts_its_lines_in_order_and_creates_the_accounts_it_needs():
    entry = capture()

    lines = list(entry.lines.order_by("pk").values_list("account__code", "amount", "currency"))
    assert lines == [
        ("channel:fa:receivable", D("100.00"), "CNY"),
        ("payments:clearing", D("-100.00"), "CNY"),
        ("channel:fa:fees", D("0.60"), "CNY"),
        ("channel:fa:receivable", D("-0.60"), "CNY"),
    ]
    kinds = dict(LedgerAccount.objects.values_list("code", "kind"))
    assert kinds == {
        "channel:fa:receivable": "asset",
        "payments:clearing": "liability",
        "channel:fa:fees": "expense",
    }
    assert (entry.key, entry.kind, entry.reference, entry.memo) == (
        "capture:T1",
        "payment_captured",
        "test:T1",
        "fa T1",
    )
    assert JournalEntry.objects.get(pk=entry.pk).posted_at == entry.posted_at
    assert ledger.balance("channel:fa:receivable") == D("99.40")
    assert ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0


def test_posting_the_same_key_again_returns_the_first_entry_and_changes_nothing():
    first = capture()
    again = capture(amount="999.00")  # a repeat is recognised by its key alone

    assert again.pk == first.pk
    assert JournalEntry.objects.count() == 1 and JournalLine.objects.count() == 4
    assert ledger.balance(ledger.CLEARING) == D("-100.00")


def test_an_unbalanced_entry_is_refused_and_writes_nothing():
    with pytest.raises(ledger.UnbalancedEntry, match="sum to 0.01"):
        ledger.post(
            key="bad",
            kind="x",
            lines=[(ledger.CLEARING, D("1.00")), (ledger.PLATFORM_REVENUE, D("-0.99"))],
        )
    with pytest.raises(ledger.UnbalancedEntry, match="no non-zero lines"):
        ledger.post(key="empty", kind="x", lines=[(ledger.CLEARING, D("0"))])
    assert not JournalEntry.objects.exists() and not LedgerAccount.objects.exists()


def test_owner_accounts_are_linked_to_their_user(django_user_model):
    buyer = django_user_model.objects.create_user("wallet-owner", password="x")
    ledger.post(
        key="topup:1",
        kind="wallet_topup",
        lines=[(ledger.CLEARING, D("50")), (ledger.buyer_wallet(buyer.pk), D("-50"))],
    )

    wallet = LedgerAccount.objects.get(code=ledger.buyer_wallet(buyer.pk))
    assert (wallet.owner_id, wallet.kind) == (buyer.pk, "liability")
    assert ledger.balance(wallet.code, natural=True) == D("50.00")


def test_entries_are_immutable():
    entry = capture()
    entry.memo = "rewritten"
    with pytest.raises(Exception, match="immutable"):
        entry.save()
    with pytest.raises(Exception, match="immutable"):
        entry.delete()


def test_a_posting_to_known_accounts_is_two_statements(django_assert_num_queries):
    """On the notification hot path: the entry and its lines, account ids resolved in SQL."""
    capture(key="warm-up")
    with django_assert_num_queries(2):
        capture(key="capture:T2")
    with django_assert_num_queries(
        2
    ):  # a repeat: the refused insert and the read of the first entry
        capture(key="capture:T2")


def test_refunds_already_on_their_way_are_moved_in_flight_once(django_user_model):
    """The data migration that introduced payments:refunds-in-flight."""
    import importlib

    from django.apps import apps

    from payments.models import Attempt, ChannelAccount, Payment, Refund

    migration = importlib.import_module("payments.migrations.0007_refunds_in_flight_for_pending")
    buyer = django_user_model.objects.create_user("old-buyer", password="x")
    payment = Payment.objects.create(
        reference="order:OLD", buyer=buyer, method="alipay", amount=D("50.00"), status="succeeded"
    )
    account = ChannelAccount.objects.create(
        code="fa", name="fa", backend="fake", methods=["alipay"], base_url="https://fake.example/"
    )
    attempt = Attempt.objects.create(
        payment=payment, account=account, method="alipay", amount=D("50.00"), status="succeeded"
    )
    Refund.objects.create(payment=payment, attempt=attempt, amount=D("20.00"), status="pending")
    Refund.objects.create(payment=payment, attempt=attempt, amount=D("5.00"), status="succeeded")

    for _ in range(2):
        migration.post_refunds_sent(apps, None)

    assert ledger.balance(ledger.REFUNDS_IN_FLIGHT, natural=True) == D("20.00")
    assert ledger.unbalanced_entries() == 0


def test_an_account_opened_concurrently_between_the_two_inserts_still_gets_its_line(
    monkeypatch, django_user_model
):
    """A concurrent first posting opens an account after this posting's line insert skipped
    it; the entry must still get that line (found under load: entries short of one line)."""
    seller = ledger.buyer_wallet(django_user_model.objects.create(username="s7").pk)
    ledger.account(ledger.CLEARING)
    real_insert = ledger._insert_lines

    def insert_then_a_rival_opens_the_account(entry_id, lines, currency):
        inserted = real_insert(entry_id, lines, currency)
        ledger.account(seller)  # committed by the other poster meanwhile
        return inserted

    monkeypatch.setattr(ledger, "_insert_lines", insert_then_a_rival_opens_the_account)
    entry = ledger.post(
        key="sale:R1",
        kind="sale",
        lines=[(ledger.CLEARING, D("9.50")), (seller, -D("9.50"))],
    )
    assert sorted(entry.lines.values_list("account__code", "amount")) == sorted(
        [
            ("payments:clearing", D("9.50")),
            (seller, D("-9.50")),
        ]
    )
    assert ledger.unbalanced_entries() == 0
