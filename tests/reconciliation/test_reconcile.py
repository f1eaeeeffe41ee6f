"""Settlement files reconciled end to end: the real sample files, a sandbox day, broken files."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from payments import services as payment_services
from payments.channels.base import ClientInfo
from payments.models import Attempt, ChannelAccount
from payments.payables import PayableFacts
from reconciliation import services
from reconciliation.calendar import business_day_add
from reconciliation.models import Discrepancy, SettlementFile, SettlementLine, Statement
from tests.accounts.factories import UserFactory
from tests.payments.factories import PaymentFactory, sandbox_account
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parents[1] / "data"
UNIONPAY_ZIP = DATA / "unionpay" / "802310048993424_20150905.zip"
UNIONPAY_ZM = DATA / "unionpay" / "INN15090588ZM_802310048993424"
ALIPAY_GBK = DATA / "alipay" / "DERIVED_trade_detail_2019-09-16.gbk.csv"
WECHAT_BILL = (
    DATA / "wechatpay" / "v3_tradebill_ALL_2021-01-28__gunsluo_wechatpay-go_client_test.csv"
)
ALIPAY_PID = "2088000000000000"


def account(backend: str, merchant_id: str, code: str | None = None) -> ChannelAccount:
    return ChannelAccount.objects.create(
        code=code or backend,
        name=backend,
        backend=backend,
        merchant_id=merchant_id,
        base_url=f"http://testserver/sandbox/{backend}/",
        settlement_days=1,
    )


def reconcile(code: str, path: Path, *extra: str) -> dict:
    out = io.StringIO()
    call_command("reconcile_file", "--channel", code, *extra, str(path), "--json", stdout=out)
    return json.loads(out.getvalue())


def no_discrepancies(result: dict) -> bool:
    return not any(result["discrepancies"].values())


# ---------------------------------------------------------------------------------------------
# Real sample files, none of whose orders are ours


def test_unionpay_official_zip_reconciles_to_its_own_totals():
    acct = account("unionpay", "802310048993424")
    result = reconcile("unionpay", UNIONPAY_ZIP)
    assert result["channel"] == "unionpay" and result["date"] == "2015-09-05"
    assert (result["lines"], result["payments"], result["refunds"]) == (8, 8, 0)
    assert (result["gross"], result["refunded"], result["fees"]) == ("13227.00", "0.00", "79.36")
    assert result["net"] == "13147.64" and result["file_totals_agree"] is True
    assert result["matched"] == 0
    assert result["discrepancies"] == {
        "missing_ours": 8,
        "missing_channel": 0,
        "amount_mismatch": 0,
        "fee_mismatch": 0,
        "status_mismatch": 0,
        "duplicate": 0,
        "refund_missing_channel": 0,
    }
    statement = Statement.objects.get(account=acct, day=dt.date(2015, 9, 5))
    assert statement.count == 8 and statement.net == Decimal("13147.64")
    # a Saturday's T+1 is the Monday: the cycle counts business days
    assert statement.expected_settlement_date == dt.date(2015, 9, 7)
    assert SettlementFile.objects.get().status == "reconciled"


def test_bare_unionpay_zm_file_takes_its_day_from_its_name_and_states_no_totals():
    """The ZM detail alone has no footer: its day is in its name (INN yymmdd ..), and there are
    no totals to agree with, which the result says instead of claiming they agree."""
    account("unionpay", "802310048993424")
    result = reconcile("unionpay", UNIONPAY_ZM)
    assert result["date"] == "2015-09-05"
    assert (result["lines"], result["gross"], result["fees"]) == (8, "13227.00", "79.36")
    assert result["file_totals_agree"] == "no totals in this file"


def test_alipay_gbk_detail_file_reconciles_to_its_own_totals():
    account("alipay", ALIPAY_PID)
    result = reconcile("alipay", ALIPAY_GBK)
    assert result["date"] == "2019-09-16"
    assert (result["lines"], result["payments"], result["refunds"]) == (10, 6, 4)
    assert (result["gross"], result["refunded"]) == ("0.06", "0.04")
    assert result["discrepancies"]["missing_ours"] == 10 and result["matched"] == 0
    assert SettlementLine.objects.count() == 10


def test_a_bill_without_its_day_needs_date():
    account("wechatpay", "1601959334")
    with pytest.raises(CommandError, match="--date"):
        reconcile("wechatpay", WECHAT_BILL)
    result = reconcile("wechatpay", WECHAT_BILL, "--date", "2021-01-28")
    assert result["date"] == "2021-01-28" and result["lines"] == 3 and result["gross"] == "0.03"


def test_re_running_the_same_day_is_safe():
    account("unionpay", "802310048993424")
    first = reconcile("unionpay", UNIONPAY_ZIP)
    second = reconcile("unionpay", UNIONPAY_ZIP)
    assert first == second
    assert SettlementFile.objects.count() == 1
    assert SettlementLine.objects.count() == 8
    assert Discrepancy.objects.count() == 8
    assert Statement.objects.count() == 1


# ---------------------------------------------------------------------------------------------
# Files that cannot be trusted


def assert_refused(code: str, path: Path, needle: str) -> str:
    with pytest.raises(CommandError) as caught:
        reconcile(code, path)
    message = str(caught.value)
    assert "\n" not in message and needle in message, message
    file = SettlementFile.objects.get()
    assert file.status == "failed" and file.error == message
    assert not SettlementLine.objects.exists()
    assert not Discrepancy.objects.exists()
    assert not Statement.objects.exists()
    return message


def test_a_truncated_zip_is_refused_and_kept_as_failed(tmp_path):
    account("unionpay", "802310048993424")
    broken = tmp_path / "802310048993424_20150905.zip"
    broken.write_bytes(UNIONPAY_ZIP.read_bytes()[:200])
    assert_refused("unionpay", broken, broken.name)


def test_a_detail_file_cut_short_is_refused_with_its_line(tmp_path):
    account("alipay", ALIPAY_PID)
    text = ALIPAY_GBK.read_bytes().split(b"\n")
    broken = tmp_path / "cut.csv"
    # drop one data line: the footer totals no longer add up
    data_rows = [i for i, row in enumerate(text) if row.count(b",") > 10]
    del text[data_rows[2]]
    broken.write_bytes(b"\n".join(text))
    assert_refused("alipay", broken, "cut.csv")


def test_another_merchants_file_is_refused():
    account("alipay", "2088101122136241")
    assert_refused("alipay", ALIPAY_GBK, ALIPAY_GBK.name)


def test_another_merchants_unionpay_file_is_refused():
    account("unionpay", "802310048990000")
    assert_refused("unionpay", UNIONPAY_ZIP, "merchant")


# ---------------------------------------------------------------------------------------------
# A sandbox day, end to end


def pay(client, captured, amount: str = "88.00") -> Attempt:
    payment = payment_services.payment_start(
        buyer=UserFactory(),
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal(amount),
        currency="CNY",
        method="alipay",
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.7", device="desktop"),
        return_url="http://testserver/orders/R1/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
    )
    attempt = payment.attempts.get()
    with captured(execute=True):
        Payer(client).decide(attempt.action, "approve")
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    return attempt


@pytest.fixture
def sandbox_day(client, django_capture_on_commit_callbacks):
    acct = sandbox_account("alipay")
    attempts = [
        pay(client, django_capture_on_commit_callbacks, amount) for amount in ("88.00", "120.50")
    ]
    return acct, attempts, timezone.localdate()


def pull(day: dt.date) -> list[dict]:
    out = io.StringIO()
    call_command(
        "pull_settlements", "--channel", "alipay", "--date", day.isoformat(), "--json", stdout=out
    )
    return json.loads(out.getvalue())


def test_a_sandbox_day_pulls_and_matches_completely(sandbox_day):
    acct, attempts, day = sandbox_day
    [entry] = pull(day)
    assert entry["status"] == "reconciled", entry
    result = entry["result"]
    assert result["lines"] == result["payments"] == result["matched"] == 2
    assert result["gross"] == "208.50" and no_discrepancies(result)
    assert result["fees"] == f"{sum(a.fee for a in attempts):.2f}"
    statement = Statement.objects.get(account=acct, day=day)
    assert statement.expected_settlement_date == business_day_add(day, acct.settlement_days)
    # pulled again: same answer, nothing doubled
    assert pull(day)[0]["result"] == result
    assert SettlementLine.objects.count() == 2 and Statement.objects.count() == 1


def test_a_changed_amount_and_an_attempt_the_channel_lacks_are_found(sandbox_day):
    acct, attempts, day = sandbox_day
    Attempt.objects.filter(pk=attempts[0].pk).update(amount=Decimal("87.00"))
    lost = Attempt.objects.create(
        payment=PaymentFactory(),
        account=acct,
        method="alipay",
        amount=Decimal("10.00"),
        status="succeeded",
        succeeded_at=timezone.now(),
    )
    result = pull(day)[0]["result"]
    assert result["matched"] == 1
    assert result["discrepancies"]["amount_mismatch"] == 1
    assert result["discrepancies"]["missing_channel"] == 1
    missing = Discrepancy.objects.get(kind="missing_channel")
    assert missing.attempt == lost and missing.status == "open"
    mismatch = Discrepancy.objects.get(kind="amount_mismatch")
    assert (mismatch.expected, mismatch.actual) == (Decimal("87.00"), Decimal("88.00"))


def test_a_channel_without_a_file_is_reported_not_raised():
    sandbox_account("wechatpay")  # the sandbox, like WeChat Pay, keeps three months of bills
    report = services.settlement_pull(codes=["wechatpay"], day=dt.date(2020, 1, 1))
    assert [(entry["channel"], entry["status"]) for entry in report] == [("wechatpay", "no_file")]
    assert report[0]["error"] and not SettlementFile.objects.exists()


def test_an_empty_day_of_an_explicit_date_gives_an_empty_statement():
    acct = sandbox_account("unionpay")
    [entry] = services.settlement_pull(codes=["unionpay"], day=dt.date(2026, 1, 1))
    assert entry["status"] == "reconciled" and entry["result"]["date"] == "2026-01-01"
    assert entry["result"]["lines"] == 0 and Statement.objects.get(account=acct).net == 0


def test_the_beat_task_runs_the_pull(sandbox_day):
    from reconciliation.tasks import pull_settlements

    acct, _, day = sandbox_day
    pull_settlements.delay(["alipay"], day.isoformat())
    assert Statement.objects.get(account=acct, day=day).count == 2
