"""The epay / 易支付 aggregator: MD5 signing against hand-built vectors, creation through the
simulator, the GET notice believed only once the order query confirms it, forged notices
refused without effect, failover of Alipay traffic and the day's export reconciled."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
import uuid
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments import health, ledger, services
from payments.accounts import backend_for
from payments.channels.aggregator import wire
from payments.channels.aggregator.settlement import AggregatorExport
from payments.channels.base import (
    ChannelDeclined,
    ClientInfo,
    CreateRequest,
    RefundRequest,
    SettlementFileError,
)
from payments.models import Attempt, JournalEntry, Notification, Payment
from payments.payables import PayableFacts
from payments.sandbox import tasks as sandbox_tasks
from payments.sandbox.aggregator.gateway import AggregatorSandbox
from payments.sandbox.aggregator.protocol import epay_sign
from payments.sandbox.models import SandboxFault, SandboxNotification, SandboxTrade
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db

RETURN_URL = "http://testserver/orders/QQ1/"


# ---------------------------------------------------------------------------------------------
# Signing: fixed vectors built by hand


VECTOR = {
    "pid": "1001",
    "type": "qqpay",
    "out_trade_no": "20261203ABCDEF01",
    "notify_url": "http://testserver/payments/notify/aggregator/",
    "return_url": "",
    "name": "礼品卡",
    "money": "88.00",
    "sign_type": "MD5",
}
VECTOR_KEY = "89unJUB8HZ54Hj7x4nUj56HN4nUzUJ8i"


def test_the_md5_sign_is_md5_of_the_sorted_non_empty_params_with_the_key_appended():
    text = (
        "money=88.00&name=礼品卡&notify_url=http://testserver/payments/notify/aggregator/"
        "&out_trade_no=20261203ABCDEF01&pid=1001&type=qqpay"
    )
    expected = hashlib.md5((text + VECTOR_KEY).encode("utf-8")).hexdigest()  # noqa: S324
    assert wire.sign_content(VECTOR) == text  # empty return_url and sign_type left out
    assert wire.md5_sign(VECTOR, VECTOR_KEY) == expected
    assert wire.md5_sign({**VECTOR, "sign": "whatever"}, VECTOR_KEY) == expected
    # the simulator's own implementation agrees
    assert epay_sign(VECTOR, VECTOR_KEY) == expected


def test_a_published_style_vector():
    params = {"pid": "1", "type": "alipay", "money": "1.00", "name": "a", "out_trade_no": "1"}
    assert (
        wire.md5_sign(params, "k")
        == hashlib.md5(  # noqa: S324
            b"money=1.00&name=a&out_trade_no=1&pid=1&type=alipayk"
        ).hexdigest()
    )
    assert wire.md5_verify({**params, "sign": wire.md5_sign(params, "k").upper()}, "k")
    assert not wire.md5_verify({**params, "sign": wire.md5_sign(params, "other")}, "k")
    assert not wire.md5_verify(params, "k")  # no sign at all


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture
def agg():
    return sandbox_account("aggregator", fee_percent=Decimal("1.000"))


def start(method: str, amount: str = "88.00", device: str = "desktop"):
    return services.payment_start(
        buyer=UserFactory(),
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal(amount),
        currency="CNY",
        method=method,
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.7", device=device),
        return_url=RETURN_URL,
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
    )


def state():
    return (
        list(Payment.objects.values_list("pk", "status")),
        list(Attempt.objects.values_list("pk", "status")),
        JournalEntry.objects.count(),
    )


def notice_params(trade: SandboxTrade, key: str, **changes) -> dict[str, str]:
    params = {
        "pid": trade.merchant_id,
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "type": trade.extra["type"],
        "name": trade.subject,
        "money": f"{trade.amount:.2f}",
        "trade_status": "TRADE_SUCCESS",
    }
    params.update(changes)
    params["sign"] = hashlib.md5(  # noqa: S324 - the protocol's own hash, built by hand
        ("&".join(f"{k}={params[k]}" for k in sorted(params) if params[k]) + key).encode()
    ).hexdigest()
    params["sign_type"] = "MD5"
    return params


def get_notice(client, params: dict[str, str], code: str = "aggregator"):
    return client.get(f"/payments/notify/{code}/?{urlencode(params)}")


# ---------------------------------------------------------------------------------------------
# Creation


def test_desktop_creation_goes_through_mapi_and_phone_through_the_submit_page(client, agg):
    backend = backend_for(agg)
    request = CreateRequest(
        out_trade_no="20261203AGG00001",
        amount=Decimal("12.30"),
        currency="CNY",
        subject="礼品卡",
        method="qqpay",
        expires_at=timezone.now() + dt.timedelta(minutes=5),
        client=ClientInfo(device="desktop"),
    )
    result = backend.create(request)
    assert result.action.type == "qr" and "/sandbox/aggregator/cashier/" in result.action.qr
    trade = SandboxTrade.objects.get(channel="aggregator", out_trade_no="20261203AGG00001")
    assert (trade.amount, trade.extra["type"], result.channel_trade_no) == (
        Decimal("12.30"),
        "qqpay",
        trade.trade_no,
    )
    assert trade.notify_url == "http://testserver/payments/notify/aggregator/"

    phone = backend.create(
        CreateRequest(
            **{
                **request.__dict__,
                "out_trade_no": "20261203AGG00002",
                "method": "wechatpay",
                "client": ClientInfo(device="phone"),
            }
        )
    )
    url = urlsplit(phone.action.url)
    assert phone.action.type == "redirect" and url.path.endswith("/sandbox/aggregator/submit.php")
    params = dict(parse_qsl(url.query))
    assert params["type"] == "wxpay" and params["pid"] == "1001" and params["money"] == "12.30"
    assert params["sign"] == epay_sign(params, agg.credentials["key"])
    response = client.get(f"{url.path}?{url.query}")
    assert response.status_code == 302 and "/cashier/" in response["Location"]


def test_a_method_epay_has_no_type_for_is_refused_before_any_call(agg):
    with pytest.raises(ChannelDeclined) as caught:
        backend_for(agg).create(
            CreateRequest(
                out_trade_no="X1",
                amount=Decimal("1.00"),
                currency="CNY",
                subject="x",
                method="paypal",
                expires_at=timezone.now(),
            )
        )
    assert caught.value.code == "TYPE_NOT_SUPPORTED"
    assert not SandboxTrade.objects.exists()


# ---------------------------------------------------------------------------------------------
# Paying with QQ Wallet through the simulator


def test_paying_with_qq_wallet_is_notified_by_get_confirmed_and_applied_once(
    client, agg, django_capture_on_commit_callbacks
):
    payment = start("qqpay")
    assert payment.status == "pending", (payment.failure_code, payment.failure_reason)
    attempt = payment.attempts.get()
    assert attempt.account == agg
    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(attempt.action, "approve")
    payment.refresh_from_db()
    attempt.refresh_from_db()
    assert payment.status == "succeeded" and attempt.status == "succeeded"
    assert attempt.channel_trade_no and attempt.fee == Decimal("0.88")
    note = Notification.objects.get(outcome="applied")
    assert note.method == "GET" and b"trade_status=TRADE_SUCCESS" in bytes(note.body)
    assert ledger.journal_total() == 0
    assert ledger.balance(ledger.channel_receivable("aggregator")) == Decimal("87.12")

    # the aggregator re-sends: acknowledged with `success`, nothing changes
    before = state()
    sent = SandboxNotification.objects.get(channel="aggregator")
    assert sent.delivered
    sent.delivered = False
    sent.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert sandbox_tasks.deliver(sent.pk)
    assert state() == before
    assert Notification.objects.filter(outcome="duplicate").count() == 1


# ---------------------------------------------------------------------------------------------
# Forged notices change nothing


@pytest.fixture
def waiting(agg):
    payment = start("qqpay")
    attempt = payment.attempts.get()
    trade = SandboxTrade.objects.get(channel="aggregator", out_trade_no=attempt.out_trade_no)
    return payment, attempt, trade


def test_a_notice_with_a_bad_sign_is_refused(client, agg, waiting):
    _, _, trade = waiting
    before = state()
    response = get_notice(client, notice_params(trade, "not-the-key"))
    assert response.content == b"fail"
    assert state() == before
    note = Notification.objects.get()
    assert note.outcome == "rejected" and "bad signature" in note.detail and note.flagged


def test_a_correctly_signed_success_the_order_query_does_not_confirm_is_refused(
    client, agg, waiting
):
    """Someone with the key (MD5 keys leak) claims the buyer paid: the aggregator's own
    order query says the trade is unpaid, so nothing is delivered."""
    _, _, trade = waiting
    before = state()
    response = get_notice(client, notice_params(trade, agg.credentials["key"]))
    assert response.content == b"fail" and state() == before
    assert "order query" in Notification.objects.get().detail


def test_a_signed_notice_with_the_wrong_amount_is_refused(client, agg, waiting):
    _, _, trade = waiting
    AggregatorSandbox().settle(trade, approve=False, decline_key="timeout")  # stays unnotified
    SandboxTrade.objects.filter(pk=trade.pk).update(status="paid", paid_at=timezone.now())
    before = state()
    response = get_notice(client, notice_params(trade, agg.credentials["key"], money="0.01"))
    assert response.content == b"fail" and state() == before
    assert "contradicts" in Notification.objects.get().detail


def test_a_notice_for_another_pid_is_refused(client, agg, waiting):
    _, _, trade = waiting
    other = notice_params(trade, agg.credentials["key"], pid="1002")
    before = state()
    assert get_notice(client, other).content == b"fail" and state() == before
    assert "pid" in Notification.objects.get().detail


def test_a_replayed_notice_changes_nothing(
    client, agg, waiting, django_capture_on_commit_callbacks
):
    payment, _, trade = waiting
    with django_capture_on_commit_callbacks(execute=True):
        AggregatorSandbox().settle(trade, approve=True)
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    genuine = bytes(SandboxNotification.objects.get().body).decode()
    before = state()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.get(f"/payments/notify/aggregator/?{genuine}").content == b"success"
    assert state() == before
    assert Notification.objects.filter(outcome="applied").count() == 1


# ---------------------------------------------------------------------------------------------
# Failover: the direct Alipay account is down


class _NoExploration(random.Random):
    """Routing's Thompson sample replaced by each account's mean: the proven direct account
    leads, where a sample of the untried aggregator's flat prior would now and then win."""

    def betavariate(self, alpha, beta):
        return alpha / (alpha + beta)


def test_with_direct_alipay_down_alipay_traffic_fails_over_to_the_aggregator(
    client, agg, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(health, "random", SimpleNamespace(Random=_NoExploration))
    direct = sandbox_account("alipay")
    for _ in range(40):
        health.health_record(direct, "alipay", Decimal("88.00"), "succeeded")
    SandboxFault.objects.create(channel="alipay", down=True)

    payment = start("alipay")
    assert payment.status == "pending", (payment.failure_code, payment.failure_reason)
    first, second = payment.attempts.order_by("created_at", "pk")
    assert (first.account.code, first.status) == ("alipay", "failed")
    assert (second.account.code, second.status) == ("aggregator", "pending")
    trade = SandboxTrade.objects.get(channel="aggregator", out_trade_no=second.out_trade_no)
    assert trade.extra["type"] == "alipay"

    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(second.action, "approve")
    payment.refresh_from_db()
    second.refresh_from_db()
    assert payment.status == "succeeded" and second.status == "succeeded"
    assert ledger.balance(ledger.channel_receivable("alipay")) == 0


def test_with_the_aggregator_down_creation_fails_and_nothing_is_open(agg):
    SandboxFault.objects.create(channel="aggregator", down=True)
    payment = start("qqpay")
    assert payment.status == "failed" and payment.failure_reason
    assert not SandboxTrade.objects.exists()


# ---------------------------------------------------------------------------------------------
# Refunds and the daily export


def paid(client, capture) -> Attempt:
    payment = start("qqpay")
    attempt = payment.attempts.get()
    with capture(execute=True):
        Payer(client).decide(attempt.action, "approve")
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    return attempt


def test_a_refund_is_idempotent_by_its_number_and_bounded_by_what_was_paid(
    client, agg, django_capture_on_commit_callbacks
):
    attempt = paid(client, django_capture_on_commit_callbacks)
    backend = backend_for(agg)
    request = RefundRequest(
        refund_no="RF1",
        out_trade_no=attempt.out_trade_no,
        channel_trade_no=attempt.channel_trade_no,
        amount=Decimal("8.00"),
        total_amount=Decimal("88.00"),
        currency="CNY",
    )
    first = backend.refund(request)
    assert first.outcome == "succeeded" and first.channel_refund_no
    assert backend.refund(request).channel_refund_no == first.channel_refund_no
    too_much = backend.refund(
        RefundRequest(**{**request.__dict__, "refund_no": "RF2", "amount": Decimal("80.01")})
    )
    assert too_much.outcome == "failed"
    trade = SandboxTrade.objects.get(out_trade_no=attempt.out_trade_no)
    assert trade.refunds.count() == 1


def test_the_days_export_reconciles(client, agg, django_capture_on_commit_callbacks, tmp_path):
    attempts = [paid(client, django_capture_on_commit_callbacks) for _ in range(2)]
    day = timezone.now().astimezone(wire.BEIJING).date()
    content = backend_for(agg).download_settlement(day)
    export = AggregatorExport(io.BytesIO(content), merchant_id="1001")
    lines = list(export.lines())
    assert [line.out_trade_no for line in lines] == [a.out_trade_no for a in attempts]
    assert export.totals.gross == Decimal("176.00") and export.totals.fees == Decimal("1.76")

    path = tmp_path / f"aggregator-{day}.csv"
    path.write_bytes(content)
    out = io.StringIO()
    call_command("reconcile_file", "--channel", "aggregator", str(path), "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["date"] == day.isoformat() and result["file_totals_agree"] is True
    assert (result["payments"], result["matched"]) == (2, 2)
    assert (result["gross"], result["fees"], result["net"]) == ("176.00", "1.76", "174.24")
    assert not any(result["discrepancies"].values())


EXPORT = (
    "# epay export,pid=1001,date=2026-12-03\n"
    "kind,trade_no,out_trade_no,refund_no,type,money,fee,time\n"
    "payment,T1,O1,,qqpay,88.00,0.88,2026-12-03 10:00:00\n"
    "refund,T1,O1,RF1,qqpay,8.00,-0.08,2026-12-03 11:00:00\n"
)


def test_the_export_parser_reads_payments_refunds_and_checks_the_totals():
    text = EXPORT + "# totals,payments=1,refunds=1,gross=88.00,refunded=8.00,fees=0.80\n"
    export = AggregatorExport(io.BytesIO(text.encode()))
    lines = list(export.lines())
    assert [(line.kind, line.amount, line.fee, line.refund_no) for line in lines] == [
        ("payment", Decimal("88.00"), Decimal("0.88"), ""),
        ("refund", Decimal("8.00"), Decimal("-0.08"), "RF1"),
    ]
    assert export.totals.day == dt.date(2026, 12, 3) and export.totals.merchant_id == "1001"


@pytest.mark.parametrize(
    "text, problem",
    [
        (EXPORT, "without its totals"),
        (EXPORT + "# totals,payments=1,refunds=1,gross=88.01,refunded=8.00,fees=0.80\n", "gross"),
        ("kind,trade_no\n", "preamble"),
    ],
)
def test_a_truncated_or_inconsistent_export_is_refused(text, problem):
    with pytest.raises(SettlementFileError, match=problem):
        list(AggregatorExport(io.BytesIO(text.encode())).lines())


def test_an_export_of_another_pid_is_refused():
    text = EXPORT + "# totals,payments=1,refunds=1,gross=88.00,refunded=8.00,fees=0.80\n"
    with pytest.raises(SettlementFileError, match="pid"):
        list(AggregatorExport(io.BytesIO(text.encode()), merchant_id="2002").lines())


# ---------------------------------------------------------------------------------------------
# Configuration: QQ Wallet only through an aggregator account


def account_form(backend: str, methods: list[str]):
    from payments.admin import ChannelAccountForm

    return ChannelAccountForm(
        data={
            "code": f"{backend}-x",
            "name": "x",
            "backend": backend,
            "methods": methods,
            "enabled": "on",
            "weight": "1.00",
            "currency": "CNY",
            "fee_percent": "1.000",
            "fee_fixed": "0.00",
            "min_amount": "0.01",
            "max_amount": "50000.00",
            "settlement_days": "1",
            "merchant_id": "1001",
            "base_url": "https://pay.example/",
        }
    )


def test_only_an_aggregator_account_may_serve_qq_wallet():
    refused = account_form("alipay", ["alipay", "qqpay"])
    assert not refused.is_valid() and "qqpay" in str(refused.errors["methods"])
    accepted = account_form("aggregator", ["qqpay", "alipay"])
    assert accepted.is_valid(), accepted.errors
