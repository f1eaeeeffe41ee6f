"""The day across every channel account, per channel and in total, as CSV and XLSX."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from payments.models import ChannelAccount
from reconciliation import exports
from reconciliation.models import SettlementFile, Statement

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 24)


@pytest.fixture
def day(db):
    for n, (code, gross, refunded, fees) in enumerate(
        [("alipay", "1000.00", "100.00", "6.00"), ("wechatpay", "500.50", "0.00", "3.00")]
    ):
        account = ChannelAccount.objects.create(
            code=code, name=code, backend="alipay", base_url="http://t/"
        )
        file = SettlementFile.objects.create(
            channel_code=code, day=DAY, name=code, sha256=str(n) * 64, size=1
        )
        gross, refunded, fees = Decimal(gross), Decimal(refunded), Decimal(fees)
        Statement.objects.create(
            account=account,
            day=DAY,
            file=file,
            count=10 + n,
            gross=gross,
            refunded=refunded,
            fees=fees,
            net=gross - refunded - fees,
            expected_settlement_date=DAY + dt.timedelta(days=1),
        )


def test_per_channel_and_total(day):
    header, rows = exports.daily_statement(DAY)
    assert [row[1] for row in rows] == ["alipay", "wechatpay", "total"]
    assert rows[-1][3:] == [
        21,
        Decimal("1500.50"),
        Decimal("100.00"),
        Decimal("9.00"),
        Decimal("1391.50"),
    ]


def test_csv_and_xlsx_exports(admin_client, day):
    url = reverse("admin:reconciliation_statement_changelist")
    ids = list(Statement.objects.values_list("pk", flat=True))
    response = admin_client.post(url, {"action": "export_daily_csv", "_selected_action": ids})
    text = b"".join(response.streaming_content).decode()
    assert "2026-11-24,total,CNY,21,1500.50,100.00,9.00,1391.50" in text
    response = admin_client.post(url, {"action": "export_daily_xlsx", "_selected_action": ids})
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[-1][1] == "合计" or values[-1][1] == "total"
    assert values[-1][7] == pytest.approx(1391.5)
