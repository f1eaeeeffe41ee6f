"""Funds arriving: a statement's net is expected in the bank; arrivals are imported or recorded,
matched, posted from the channel's receivable to the bank, and late or short ones alert."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from payments import ledger
from payments.models import ChannelAccount
from reconciliation import treasury
from reconciliation.models import (
    AccountPolicy,
    BankAccount,
    FundsArrival,
    ReconciliationAlert,
    SettlementFile,
    Statement,
)

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 24)
DUE = dt.date(2026, 11, 25)


@pytest.fixture
def bank(db):
    return BankAccount.objects.create(
        code="icbc-main", name="ICBC 基本户", bank="ICBC", number_tail="8821"
    )


def channel(code: str, bank: BankAccount) -> ChannelAccount:
    account = ChannelAccount.objects.create(
        code=code,
        name=code,
        backend="alipay",
        base_url="http://testserver/",
        merchant_id=f"M-{code}",
    )
    AccountPolicy.objects.create(account=account, bank_account=bank)
    return account


def statement(account, net: str, *, day=DAY, due=DUE) -> Statement:
    file = SettlementFile.objects.create(
        channel_code=account.code,
        day=day,
        name=f"{account.code}-{day}",
        sha256=f"{account.pk}{day}".ljust(64, "0"),
        size=1,
    )
    return Statement.objects.create(
        account=account,
        day=day,
        file=file,
        net=Decimal(net),
        gross=Decimal(net),
        expected_settlement_date=due,
    )


def csv_file(*lines: str) -> io.BytesIO:
    return io.BytesIO(
        ("交易日期,贷方金额,借方金额,对方户名,摘要\n" + "\n".join(lines) + "\n").encode("gbk")
    )


def test_a_bank_statement_import_marks_the_days_settlement_arrived(bank):
    alipay, wechat = channel("alipay", bank), channel("wechatpay", bank)
    ours = statement(alipay, "1234.56")
    other = statement(wechat, "1234.56")
    arrivals = treasury.bank_statement_import(
        bank_account=bank,
        stream=csv_file(
            '2026-11-25,"1,234.56",,支付宝（中国）网络技术有限公司,alipay 结算 20261124',
            "2026-11-25,,300.00,某供应商,付款",  # a debit: not an arrival
        ),
    )
    [arrival] = arrivals
    assert arrival.statement == ours and arrival.source == "import"
    assert treasury.statement_position(ours, today=DUE).status == "arrived"
    assert treasury.statement_position(other, today=DUE + dt.timedelta(days=1)).status == "late"
    assert ledger.balance(ledger.bank_cash("icbc-main")) == Decimal("1234.56")
    assert ledger.balance(ledger.channel_receivable("alipay")) == Decimal("-1234.56")
    # the same statement again adds nothing
    treasury.bank_statement_import(
        bank_account=bank,
        stream=csv_file(
            '2026-11-25,"1,234.56",,支付宝（中国）网络技术有限公司,alipay 结算 20261124',
        ),
    )
    assert FundsArrival.objects.count() == 1


def test_a_short_arrival_is_flagged_and_alerts(bank):
    alipay = channel("alipay", bank)
    day = statement(alipay, "500.00")
    arrival = treasury.arrival_record(
        bank_account=bank, value_date=DUE, amount=Decimal("480.00"), reference="alipay"
    )
    assert arrival.statement == day
    assert treasury.statement_position(day).status == "short"
    alert = ReconciliationAlert.objects.get(kind="funds_short")
    assert "short by ¥20.00" in alert.text


def test_money_not_arrived_by_its_date_alerts_once(bank):
    alipay = channel("alipay", bank)
    statement(alipay, "500.00")
    assert treasury.treasury_check(today=DUE) == []
    [alert] = treasury.treasury_check(today=DUE + dt.timedelta(days=1))
    assert alert.kind == "funds_late" and "¥500.00 expected on 2026-11-25" in alert.text
    assert treasury.treasury_check(today=DUE + dt.timedelta(days=2)) == []


def test_a_statement_that_cannot_be_read_is_refused_whole(bank):
    channel("alipay", bank)
    with pytest.raises(treasury.ImportRefused, match="line 3"):
        treasury.bank_statement_import(
            bank_account=bank,
            stream=csv_file(
                "2026-11-25,100.00,,x,alipay",
                "yesterday,100.00,,x,alipay",
            ),
        )
    assert not FundsArrival.objects.exists()
    with pytest.raises(treasury.ImportRefused, match="交易日期"):
        treasury.bank_statement_import(bank_account=bank, stream=io.BytesIO(b"when,what\n1,2\n"))


def test_treasury_view_and_import_page(admin_client, bank):
    alipay = channel("alipay", bank)
    statement(alipay, "1234.56")
    upload = SimpleUploadedFile("icbc.csv", csv_file("20261125,1234.56,,支付宝,alipay").getvalue())
    response = admin_client.post(
        reverse("admin:reconciliation_fundsarrival_import"),
        {"bank_account": bank.pk, "statement": upload},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert "1 arrivals imported, 1 matched to a settlement." in response.content.decode()
    page = admin_client.get(
        reverse("admin:reconciliation_treasurystatement_changelist"),
        {"funds": "arrived"},
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert "¥1,234.56" in page and "arrived" in page and "ICBC 基本户" in page
