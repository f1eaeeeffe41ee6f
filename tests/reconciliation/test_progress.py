"""A run's progress: a bar on a terminal, nothing otherwise, and live in admin."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from bench.wechat_bill import BillRow, write_bill
from payments.models import ChannelAccount
from reconciliation import runs, services
from reconciliation.models import ReconcileRun, SettlementFile

MCHID = "1900000109"
DAY = dt.date(2026, 11, 24)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def wechat(db):
    return ChannelAccount.objects.create(
        code="wechatpay",
        name="WeChat Pay",
        backend="wechatpay",
        merchant_id=MCHID,
        base_url="http://testserver/sandbox/wechatpay/",
    )


def bill_file(tmp_path, lines: int = 30):
    noon = dt.datetime.combine(DAY, dt.time(12))
    path = tmp_path / "bill.csv"
    with path.open("wb") as out:
        write_bill(
            out, MCHID, (BillRow("payment", f"U{i:08d}", 10 + i, 0, noon) for i in range(lines))
        )
    return path


def run_command(path, *extra, stderr):
    out = io.StringIO()
    call_command(
        "reconcile_file",
        "--channel",
        "wechatpay",
        "--date",
        DAY.isoformat(),
        str(path),
        *extra,
        stdout=out,
        stderr=stderr,
    )
    return out.getvalue()


@pytest.mark.django_db
def test_a_terminal_gets_a_progress_bar(wechat, tmp_path):
    err = Terminal()
    out = run_command(bill_file(tmp_path), stderr=err)
    assert "30 lines (30 payments, 0 refunds)" in out
    bar = err.getvalue()
    assert "bill.csv" in bar and "100%" in bar and "30 lines" in bar and "matched 0" in bar


@pytest.mark.django_db
def test_json_or_no_terminal_stays_quiet(wechat, tmp_path):
    path = bill_file(tmp_path)
    err = Terminal()
    run_command(path, "--json", stderr=err)
    assert err.getvalue() == ""
    plain = io.StringIO()
    run_command(path, stderr=plain)
    assert plain.getvalue() == ""


@pytest.mark.django_db
def test_admin_shows_a_run_in_progress(admin_client, wechat):
    file = SettlementFile.objects.create(
        channel_code="wechatpay", name="big.csv", sha256="a" * 64, size=1000
    )
    now = timezone.now()
    ReconcileRun.objects.create(
        file=file,
        stage="reading",
        lines_read=123_456,
        bytes_read=420,
        size=1000,
        started_at=now,
        updated_at=now,
    )
    page = admin_client.get(
        reverse("admin:reconciliation_settlementfile_changelist"), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "reading 42% · 123,456 lines" in page.content.decode()
    page = admin_client.get(
        reverse("admin:reconciliation_reconcilerun_changelist"), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "reading 42% · 123,456 lines" in page.content.decode()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_progress_is_seen_by_others_before_the_run_commits(wechat, tmp_path, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    monkeypatch.setattr(runs.RunRecorder, "EVERY", 0)
    monkeypatch.setattr("reconciliation.loading.BATCH", 10)
    file = services.settlement_file_store(
        account=wechat,
        content=bill_file(tmp_path, 50).read_bytes(),
        name="b.csv",
        day=DAY,
    )
    seen: list[int] = []

    def look(run):
        if run.stage == "reading" and run.lines_read:
            # another connection, as admin's request would be
            def other():
                seen.append(ReconcileRun.objects.get(pk=run.pk).lines_read)
                connection.close()

            thread = threading.Thread(target=other)
            thread.start()
            thread.join()

    services.settlement_file_reconcile(settlement_file=file, account=wechat, progress=look)
    assert seen and seen[0] >= 10 and seen == sorted(seen)


@pytest.mark.django_db
def test_a_run_that_was_killed_shows_as_interrupted_once_the_file_is_run_again(wechat, tmp_path):
    file = services.settlement_file_store(
        account=wechat, content=bill_file(tmp_path).read_bytes(), name="b.csv", day=DAY
    )
    long_ago = timezone.now() - dt.timedelta(minutes=10)
    killed = ReconcileRun.objects.create(
        file=file,
        stage="reading",
        lines_read=12,
        size=file.size,
        started_at=long_ago,
        updated_at=long_ago,
    )
    services.settlement_file_reconcile(settlement_file=file, account=wechat)
    killed.refresh_from_db()
    assert killed.status == ReconcileRun.Status.FAILED and killed.finished_at
    assert killed.error.startswith("interrupted")
    assert list(file.runs.values_list("status", flat=True)) == ["done", "failed"]


@pytest.mark.django_db
def test_a_run_killed_seconds_ago_halfway_through_is_interrupted_too(wechat, tmp_path):
    file = services.settlement_file_store(
        account=wechat, content=bill_file(tmp_path).read_bytes(), name="b.csv", day=DAY
    )
    now = timezone.now()
    killed = ReconcileRun.objects.create(
        file=file,
        stage="reading",
        lines_read=15,
        bytes_read=file.size // 2,
        size=file.size,
        started_at=now,
        updated_at=now,
    )
    services.settlement_file_reconcile(settlement_file=file, account=wechat)
    killed.refresh_from_db()
    assert killed.status == ReconcileRun.Status.FAILED


@pytest.mark.django_db
def test_a_run_still_waiting_for_the_file_is_left_alone(wechat, tmp_path):
    file = services.settlement_file_store(
        account=wechat, content=bill_file(tmp_path).read_bytes(), name="b.csv", day=DAY
    )
    now = timezone.now()
    other = ReconcileRun.objects.create(
        file=file, stage="reading", size=file.size, started_at=now, updated_at=now
    )
    services.settlement_file_reconcile(settlement_file=file, account=wechat)
    other.refresh_from_db()
    assert other.status == ReconcileRun.Status.RUNNING
