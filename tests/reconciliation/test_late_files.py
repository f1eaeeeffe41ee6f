"""Files late or missing, refused files and too many discrepancies: retried, then alerted."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json

import httpx
import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from bench.wechat_bill import BillRow, write_bill
from payments.channels.base import ChannelError
from payments.channels.registry import backend_class
from payments.models import ChannelAccount
from reconciliation import services
from reconciliation.models import AccountPolicy, ReconciliationAlert, SettlementDay
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

MCHID = "1900000109"
DAY = dt.date(2026, 11, 24)
END_OF_DAY = timezone.make_aware(dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time()))


@pytest.fixture
def wechat(db):
    account = ChannelAccount.objects.create(
        code="wechatpay",
        name="WeChat Pay",
        backend="wechatpay",
        merchant_id=MCHID,
        base_url="http://testserver/sandbox/wechatpay/",
    )
    AccountPolicy.objects.create(
        account=account,
        deadline_hours=10,
        first_retry_minutes=30,
        max_retry_minutes=120,
        alert_discrepancies=2,
        alert_amount=1000,
        alert_emails="treasury@example.com",
    )
    return account


@pytest.fixture
def hook(settings):
    sent: list[httpx.Request] = []
    settings.RISK_ALERT_WEBHOOK_URL = "https://hooks.example.com/T0KEN"
    settings.RISK_ALERT_WEBHOOK_SECRET = "s3cret"
    settings.RISK_ALERT_EMAILS = ["ops@example.com"]
    settings.RISK_ALERT_HTTP_TRANSPORT = lambda: httpx.MockTransport(
        lambda request: sent.append(request) or httpx.Response(200)
    )
    return sent


@pytest.fixture
def finance(db):
    return UserFactory(
        username="fiona", email="fiona@example.com", is_staff=True, groups=["Finance"]
    )


def bill(rows: int) -> bytes:
    out = io.BytesIO()
    noon = dt.datetime.combine(DAY, dt.time(12))
    write_bill(out, MCHID, (BillRow("payment", f"U{i:07d}", 10, 0, noon) for i in range(rows)))
    return out.getvalue()


class Channel:
    """The channel's download: not published until ``publish``."""

    def __init__(self):
        self.content: bytes | None = None

    def download(self, day):
        if self.content is None:
            raise ChannelError("the bill does not exist yet", code="NO_STATEMENT_EXIST")
        return self.content


@pytest.fixture
def channel(monkeypatch):
    channel = Channel()
    monkeypatch.setattr(
        backend_class("wechatpay"),
        "download_settlement",
        lambda backend, day: channel.download(day),
    )
    return channel


def at(hours: float) -> dt.datetime:
    return END_OF_DAY + dt.timedelta(hours=hours)


def test_a_file_not_yet_published_is_retried_with_back_off(wechat, channel):
    entry = services.settlement_day_try(account=wechat, day=DAY, now=at(0))
    assert entry["status"] == "no_file" and "NO_STATEMENT_EXIST" in entry["error"]
    sday = SettlementDay.objects.get(account=wechat, day=DAY)
    assert sday.status == "waiting" and sday.tries == 1 and sday.deadline == at(10)
    assert sday.next_try_at == at(0.5)
    waits = []
    for _ in range(3):
        now = sday.next_try_at
        services.settlement_retry_due(now=now)
        sday.refresh_from_db()
        waits.append((sday.next_try_at - now).total_seconds() / 60)
    assert waits == [60, 120, 120]  # 30 min doubling, at most two hours
    assert sday.tries == 4 and sday.next_try_at == at(5.5)
    assert services.settlement_retry_due(now=at(5.4)) == []  # not due yet: nothing tried
    channel.content = bill(2)
    [entry] = services.settlement_retry_due(now=at(5.5))
    assert entry["status"] == "reconciled" and entry["result"]["lines"] == 2
    sday.refresh_from_db()
    assert sday.status == "reconciled" and sday.next_try_at is None and sday.file is not None
    assert not ReconciliationAlert.objects.filter(kind="file_missing").exists()


def test_the_last_try_is_at_the_deadline_after_which_finance_is_alerted(
    wechat, channel, finance, hook
):
    services.settlement_day_try(account=wechat, day=DAY, now=at(0))
    SettlementDay.objects.filter(account=wechat, day=DAY).update(next_try_at=at(9.5))
    services.settlement_retry_due(now=at(9.5))
    sday = SettlementDay.objects.get()
    assert sday.next_try_at == at(10) and sday.status == "waiting"
    [entry] = services.settlement_retry_due(now=at(10))
    assert entry["missing"] is True
    sday.refresh_from_db()
    assert sday.status == "missing" and sday.next_try_at is None
    alert = ReconciliationAlert.objects.get(kind="file_missing")
    assert "no settlement file by its deadline 2026-11-25 10:00" in alert.text
    [message] = mail.outbox
    assert set(message.to) == {"fiona@example.com", "treasury@example.com", "ops@example.com"}
    [request] = hook
    body = json.loads(request.content)
    assert body["event"] == "reconciliation.file_missing" and body["day"] == "2026-11-24"
    digest = hmac.new(b"s3cret", request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-Cardex-Signature"] == f"sha256={digest}"
    # a missing day is not tried again by the beat, nor alerted twice when pulled by hand
    assert services.settlement_retry_due(now=at(20)) == []
    services.settlement_pull(codes=["wechatpay"], day=DAY)
    assert ReconciliationAlert.objects.count() == 1 and len(mail.outbox) == 1


def test_admin_shows_the_missing_day(admin_client, wechat, channel):
    SettlementDay.objects.create(
        account=wechat,
        day=DAY,
        status="missing",
        tries=7,
        deadline=at(10),
        last_error="NO_STATEMENT_EXIST",
    )
    page = admin_client.get(
        reverse("admin:reconciliation_settlementday_changelist"), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert page.status_code == 200 and "missing" in page.content.decode()


def test_a_refused_file_alerts_once(wechat, channel, hook):
    channel.content = bill(3).replace(b"`3,", b"`4,")  # the summary disagrees with the rows
    [entry] = services.settlement_pull(codes=["wechatpay"], day=DAY)
    assert entry["status"] == "failed"
    assert SettlementDay.objects.get().status == "failed"
    alert = ReconciliationAlert.objects.get()
    assert alert.kind == "file_refused" and "summary says 4 lines" in alert.text
    services.settlement_pull(codes=["wechatpay"], day=DAY)
    assert ReconciliationAlert.objects.count() == 1 and len(hook) == 1


def test_discrepancies_above_the_threshold_alert(wechat, channel, hook):
    channel.content = bill(2)  # two orders that are not ours: at the threshold, no alert
    services.settlement_pull(codes=["wechatpay"], day=DAY)
    assert not ReconciliationAlert.objects.exists()
    channel.content = bill(3)
    services.settlement_pull(codes=["wechatpay"], day=DAY)
    alert = ReconciliationAlert.objects.get()
    assert alert.kind == "discrepancies" and "3 discrepancies (¥30.00)" in alert.text


def test_a_large_amount_alerts_even_when_few(wechat, channel):
    AccountPolicy.objects.filter(account=wechat).update(alert_discrepancies=100, alert_amount=15)
    channel.content = bill(2)
    services.settlement_pull(codes=["wechatpay"], day=DAY)
    assert ReconciliationAlert.objects.get().kind == "discrepancies"
