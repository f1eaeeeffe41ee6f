"""Notify endpoints take unauthenticated POSTs: forged, replayed, oversized or floods of them
must neither change a payment nor fill the disk, and genuine notices still apply, kept raw."""

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from payments import ledger, services
from payments.channels.base import ClientInfo
from payments.intake import UNVERIFIED_KEEP_BYTES
from payments.models import ChannelAccount, Notification, NotificationRefusal
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account
from tests.payments.fakes import FakeBackend, notification

pytestmark = pytest.mark.django_db

TWO_MB = 2 * 1024 * 1024


@pytest.fixture(autouse=True)
def fake_channels():
    FakeBackend.reset()
    yield
    FakeBackend.reset()


@pytest.fixture
def fake_account():
    return ChannelAccount.objects.create(
        code="fa",
        name="fa",
        backend="fake",
        methods=["alipay"],
        fee_percent=Decimal("0.60"),
        base_url="https://fake.example/",
        merchant_id="M1",
    )


@pytest.fixture
def attempt(fake_account):
    payment = services.payment_start(
        buyer=UserFactory(),
        reference="test:N1",
        amount=Decimal("100.00"),
        currency="CNY",
        method="alipay",
        subject="Test",
        client=ClientInfo(ip="10.0.0.1"),
        return_url="http://testserver/",
        expires_at=timezone.now() + timedelta(minutes=15),
    )
    return payment.attempts.get()


def _post(client, code, body, **headers):
    return client.post(
        f"/payments/notify/{code}/", body, content_type="application/json", **headers
    )


def stored_bytes() -> int:
    """What the notification tables hold on disk (PostgreSQL) or in their columns (SQLite)."""
    tables = [Notification._meta.db_table, NotificationRefusal._meta.db_table]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT " + " + ".join(["pg_total_relation_size(%s)"] * len(tables)), tables
            )
            return cursor.fetchone()[0]
    rows = Notification.objects.values_list("body", "headers", "detail")
    return sum(len(bytes(b)) + len(str(h)) + len(d) for b, h, d in rows)


def test_ten_random_2mb_posts_do_not_grow_the_tables(client, fake_account, attempt):
    before = stored_bytes()
    for _ in range(10):
        response = _post(client, "fa", os.urandom(TWO_MB))
        assert response.status_code == 413
    assert stored_bytes() - before <= 64 * 1024
    assert not Notification.objects.exists()
    refusal = NotificationRefusal.objects.get()
    assert (refusal.reason, refusal.channel_code, refusal.count) == ("too_large", "fa", 10)
    assert refusal.bytes == 10 * TWO_MB


def test_ten_random_2mb_posts_to_made_up_accounts_store_nothing(client):
    for n in range(10):
        assert _post(client, f"made-up-{n}", os.urandom(TWO_MB)).status_code == 404
    assert not Notification.objects.exists()
    refusal = NotificationRefusal.objects.get()
    assert (refusal.reason, refusal.channel_code, refusal.count) == ("unknown_account", "", 10)


def test_the_limit_is_the_channels_own(client):
    sandbox_account("alipay", code="ali")
    limit = 16 * 1024
    assert _post(client, "ali", b"x" * (limit + 1)).status_code == 413
    assert _post(client, "ali", b"x" * limit).status_code != 413


def test_an_unverifiable_body_is_kept_cut_short_and_flagged(client, fake_account, attempt):
    garbage = os.urandom(40 * 1024)
    response = _post(client, "fa", garbage, HTTP_X_FAKE_SIGNATURE="0" * 64)
    assert response.status_code == 400
    note = Notification.objects.get()
    assert note.flagged and note.outcome == "rejected"
    assert note.body_truncated and note.body_size == len(garbage)
    assert bytes(note.body) == garbage[:UNVERIFIED_KEEP_BYTES]


def test_an_unverifiable_request_keeps_only_a_bounded_set_of_headers(client, fake_account):
    headers = {f"HTTP_X_JUNK_{n}": "j" * 4000 for n in range(80)}
    _post(client, "fa", b"{}", **headers)
    note = Notification.objects.get()
    assert len(note.headers) <= 30
    assert all(len(value) <= 256 for value in note.headers.values())


def test_an_address_sending_forgeries_is_refused_then_only_counted(
    client, fake_account, attempt, settings
):
    settings.PAYMENTS_NOTIFY_FAILURES_PER_MINUTE = 5
    for n in range(5):
        body, headers = notification(attempt.out_trade_no, "100.00", nonce=n)
        headers["HTTP_X_FAKE_SIGNATURE"] = "f" * 64
        assert _post(client, "fa", body, **headers).status_code == 400
    for _ in range(20):
        assert _post(client, "fa", os.urandom(8 * 1024)).status_code == 429
    assert Notification.objects.count() == 5
    refusal = NotificationRefusal.objects.get(reason="rate_limited")
    assert refusal.count == 20 and refusal.last_remote_addr == "127.0.0.1"
    # the channel itself, from its own address, still gets through
    provider = Client(REMOTE_ADDR="198.51.100.20")
    body, headers = notification(attempt.out_trade_no, "100.00")
    assert _post(provider, "fa", body, **headers).status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"


def test_the_failure_rate_follows_the_client_behind_our_proxy(fake_account, attempt, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.PAYMENTS_NOTIFY_FAILURES_PER_MINUTE = 3
    proxy = Client(REMOTE_ADDR="10.0.0.2")
    for _ in range(3):
        _post(proxy, "fa", b"{}", HTTP_X_FORWARDED_FOR="203.0.113.66")
    assert _post(proxy, "fa", b"{}", HTTP_X_FORWARDED_FOR="203.0.113.66").status_code == 429
    body, headers = notification(attempt.out_trade_no, "100.00")
    response = _post(proxy, "fa", body, HTTP_X_FORWARDED_FOR="198.51.100.20", **headers)
    assert response.status_code == 200


def test_a_forged_notice_changes_nothing(client, fake_account, attempt):
    body, headers = notification(attempt.out_trade_no, "100.00")
    headers["HTTP_X_FAKE_SIGNATURE"] = "0" * 64
    assert _post(client, "fa", body, **headers).status_code == 400
    attempt.refresh_from_db()
    assert attempt.status == "pending" and attempt.payment.status == "pending"
    assert ledger.journal_total() == 0 and not ledger.unbalanced_entries()


def test_a_genuine_notice_still_applies_and_is_kept_whole(client, fake_account, attempt):
    body, headers = notification(attempt.out_trade_no, "100.00", padding="p" * 8000)
    assert _post(client, "fa", body, **headers).status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    note = Notification.objects.get()
    assert bytes(note.body) == body and not note.body_truncated and note.body_size == len(body)
    assert note.headers.get("X-Fake-Signature") == headers["HTTP_X_FAKE_SIGNATURE"]


def test_a_replayed_notice_is_acknowledged_and_changes_nothing(client, fake_account, attempt):
    body, headers = notification(attempt.out_trade_no, "100.00")
    assert _post(client, "fa", body, **headers).status_code == 200
    receivable = ledger.balance(ledger.channel_receivable("fa"))
    for _ in range(5):
        assert _post(client, "fa", body, **headers).status_code == 200
    assert ledger.balance(ledger.channel_receivable("fa")) == receivable
    outcomes = sorted(Notification.objects.values_list("outcome", flat=True))
    assert outcomes == ["applied"] + ["duplicate"] * 5


def test_a_notice_with_another_amount_is_refused(client, fake_account, attempt):
    body, headers = notification(attempt.out_trade_no, "0.01")
    _post(client, "fa", body, **headers)
    attempt.refresh_from_db()
    assert attempt.status == "pending"
    assert Notification.objects.get().outcome == "rejected"
