"""A WeChat Pay day with every kind of discrepancy, reconciled set-based from storage."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from bench.wechat_bill import BillRow, write_bill
from payments.models import Attempt, ChannelAccount, Refund
from reconciliation import services
from reconciliation.models import (
    Discrepancy,
    ReconcileRun,
    SettlementFile,
    SettlementLine,
    Statement,
)
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db

MCHID = "1900000109"
DAY = dt.date(2026, 11, 24)
NOON = timezone.make_aware(dt.datetime.combine(DAY, dt.time(12)))


@pytest.fixture
def wechat(db):
    return ChannelAccount.objects.create(
        code="wechatpay",
        name="WeChat Pay",
        backend="wechatpay",
        merchant_id=MCHID,
        base_url="http://testserver/sandbox/wechatpay/",
        settlement_days=1,
    )


def attempt(
    account, no: str, amount: str, *, fee: str = "0.60", status: str = "succeeded", when=NOON
) -> Attempt:
    return Attempt.objects.create(
        payment=PaymentFactory(amount=Decimal(amount)),
        account=account,
        method="wechatpay",
        out_trade_no=no,
        amount=Decimal(amount),
        fee=Decimal(fee),
        status=status,
        succeeded_at=when if status == "succeeded" else None,
    )


def refund(of: Attempt, no: str, amount: str, *, status: str = "succeeded") -> Refund:
    return Refund.objects.create(
        payment=of.payment,
        attempt=of,
        refund_no=no,
        amount=Decimal(amount),
        status=status,
        settled_at=NOON if status == "succeeded" else None,
    )


def pay(no: str, amount: str, fee: str = "0.60") -> BillRow:
    return BillRow("payment", no, Decimal(amount), Decimal(fee), NOON)


def back(no: str, refund_no: str, amount: str) -> BillRow:
    return BillRow("refund", no, Decimal(amount), Decimal("0"), NOON, refund_no=refund_no)


@pytest.fixture
def day(wechat):
    """Ours: eight attempts and four refunds. The channel's bill: one of every kind."""
    ok = attempt(wechat, "OK000001", "100.00")
    attempt(wechat, "AMT00001", "50.00")
    attempt(wechat, "STA00001", "30.00", status="pending")
    attempt(wechat, "FEE00001", "40.00", fee="0.30")
    attempt(wechat, "DUP00001", "20.00")
    lost = attempt(wechat, "LOST0001", "70.00")
    attempt(wechat, "YDAY0001", "70.00", when=NOON - dt.timedelta(days=1))  # not this day
    refunded = attempt(wechat, "REF00001", "90.00")
    refund(ok, "RF000001", "10.00")
    refund(refunded, "RF000002", "15.00")
    refund(refunded, "RF000003", "5.00", status="pending")
    gone = refund(refunded, "RF000004", "7.00")
    rows = [
        pay("OK000001", "100.00"),
        pay("AMT00001", "51.00"),
        pay("STA00001", "30.00"),
        pay("FEE00001", "40.00", fee="0.31"),
        pay("DUP00001", "20.00"),
        pay("DUP00001", "20.00"),
        pay("NOTOURS1", "12.00"),
        pay("REF00001", "90.00"),
        back("OK000001", "RF000001", "10.00"),
        back("REF00001", "RF000002", "16.00"),
        back("REF00001", "RF000003", "5.00"),
        back("NOTOURS1", "RF999999", "2.00"),
    ]
    return {"lost": lost, "gone": gone, "rows": rows}


def bill(rows) -> bytes:
    out = io.BytesIO()
    write_bill(out, MCHID, rows)
    return out.getvalue()


def reconcile(wechat, content: bytes, name: str = "bill.csv"):
    file = services.settlement_file_store(account=wechat, content=content, name=name, day=DAY)
    return file, services.settlement_file_reconcile(settlement_file=file, account=wechat)


def test_every_kind_is_found_in_one_pass(wechat, day):
    file, result = reconcile(wechat, bill(day["rows"]))
    assert result.discrepancies == {
        "missing_ours": 2,
        "missing_channel": 1,
        "amount_mismatch": 2,
        "fee_mismatch": 1,
        "status_mismatch": 2,
        "duplicate": 1,
        "refund_missing_channel": 1,
    }
    assert (result.lines, result.payments, result.refunds) == (12, 8, 4)
    # matched: OK000001, DUP00001 (first), REF00001 and refund RF000001
    assert result.matched == 4
    missing = Discrepancy.objects.get(kind="missing_channel")
    assert missing.attempt == day["lost"] and missing.expected == Decimal("70.00")
    gone = Discrepancy.objects.get(kind="refund_missing_channel")
    assert gone.refund == day["gone"] and gone.attempt == day["gone"].attempt
    assert gone.expected == Decimal("7.00") and "RF000004" in gone.note
    fee = Discrepancy.objects.get(kind="fee_mismatch")
    assert (fee.expected, fee.actual) == (Decimal("0.30"), Decimal("0.31"))
    refund_amount = Discrepancy.objects.get(kind="amount_mismatch", refund__isnull=False)
    assert refund_amount.refund.refund_no == "RF000002"
    assert (refund_amount.expected, refund_amount.actual) == (Decimal("15.00"), Decimal("16.00"))
    duplicate = Discrepancy.objects.get(kind="duplicate")
    assert duplicate.line.line_no == 7 and duplicate.attempt.out_trade_no == "DUP00001"
    status = Discrepancy.objects.filter(kind="status_mismatch").order_by("line__line_no")
    assert [d.note for d in status] == [
        "the channel says paid, our attempt is pending",
        "the channel says refunded, our refund is pending",
    ]
    unknown = Discrepancy.objects.filter(kind="missing_ours").order_by("line__line_no")
    assert [d.note for d in unknown] == [
        "payment NOTOURS1 is not ours (dropped order?)",
        "refund RF999999 of NOTOURS1 is not ours",
    ]
    statement = Statement.objects.get(account=wechat, day=DAY)
    assert statement.matched == 4 and statement.discrepancies == 10


def test_the_raw_file_is_kept_in_storage_and_read_from_there(wechat, day):
    content = bill(day["rows"])
    file, _ = reconcile(wechat, content)
    file.refresh_from_db()
    assert file.raw.name.startswith("settlements/wechatpay/") and bytes(file.content) == b""
    with file.open_raw() as raw:
        assert raw.read() == content
    again = services.settlement_file_store(account=wechat, content=io.BytesIO(content), name="x")
    assert again.pk == file.pk and SettlementFile.objects.count() == 1


def test_a_run_records_its_progress_and_end(wechat, day):
    seen = []
    file = services.settlement_file_store(
        account=wechat, content=bill(day["rows"]), name="b", day=DAY
    )
    services.settlement_file_reconcile(
        settlement_file=file,
        account=wechat,
        progress=lambda run: seen.append(run.stage),
    )
    run = ReconcileRun.objects.get(file=file)
    assert run.status == "done" and run.lines_read == 12 and run.matched == 4
    assert run.bytes_read == run.size == file.size and run.percent == 100 and run.finished_at
    assert "reading" in seen and "matching" in seen


def test_a_bad_file_ends_its_run_as_failed_and_keeps_nothing(wechat, day):
    content = bill(day["rows"]).replace(b"`12,", b"`13,")  # the summary's count is wrong
    file = services.settlement_file_store(account=wechat, content=content, name="b", day=DAY)
    with pytest.raises(services.ReconcileError, match="summary says 13 lines"):
        services.settlement_file_reconcile(settlement_file=file, account=wechat)
    run = ReconcileRun.objects.get(file=file)
    assert run.status == "failed" and "summary says 13 lines" in run.error
    assert not SettlementLine.objects.exists() and not Discrepancy.objects.exists()


def test_a_new_file_for_the_day_replaces_the_earlier_result(wechat, day):
    first, _ = reconcile(wechat, bill(day["rows"]), "first.csv")
    fixed = [row for row in day["rows"] if row.out_trade_no != "NOTOURS1"]
    second, result = reconcile(wechat, bill(fixed), "second.csv")
    assert result.discrepancies["missing_ours"] == 0
    assert not SettlementLine.objects.filter(file=first).exists()
    assert not Discrepancy.objects.filter(file=first).exists()
    assert Statement.objects.get(account=wechat, day=DAY).file == second
    first.refresh_from_db()
    assert first.status == "stored"


def test_a_failed_re_run_leaves_the_days_earlier_result_whole(wechat, day):
    reconcile(wechat, bill(day["rows"]), "first.csv")
    before = (SettlementLine.objects.count(), Discrepancy.objects.count())
    broken = bill(day["rows"])[:-40]  # the summary cut short
    with pytest.raises(services.ReconcileError):
        reconcile(wechat, broken, "second.csv")
    assert (SettlementLine.objects.count(), Discrepancy.objects.count()) == before
    assert Statement.objects.get(account=wechat, day=DAY).file.name == "first.csv"


def test_the_command_streams_a_file_from_disk(wechat, day, tmp_path):
    path = tmp_path / "bill.csv"
    path.write_bytes(bill(day["rows"]))
    out = io.StringIO()
    call_command(
        "reconcile_file",
        "--channel",
        "wechatpay",
        "--date",
        DAY.isoformat(),
        str(path),
        "--json",
        stdout=out,
    )
    result = json.loads(out.getvalue())
    assert result["matched"] == 4 and result["discrepancies"]["refund_missing_channel"] == 1
