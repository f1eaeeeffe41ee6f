"""Exports equal the list they come from, read in Chinese, and cannot smuggle formulas."""

import csv
import io
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from openpyxl import load_workbook

from backoffice.exports import neutralise
from payments import ledger
from tests.accounts.factories import UserFactory
from tests.backoffice.conftest import staff_client
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def csv_rows(response) -> list[list[str]]:
    text = body(response).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def payments():
    PaymentFactory(
        status="succeeded", amount=Decimal("1234.56"), method="alipay", reference="order:A"
    )
    PaymentFactory(
        status="succeeded", amount=Decimal("20.00"), method="wechatpay", reference="order:B"
    )
    PaymentFactory(
        status="failed",
        amount=Decimal("7.00"),
        method="alipay",
        reference='=HYPERLINK("http://evil")',
    )


def test_payments_csv_has_chinese_headers_labels_and_equals_the_filtered_list(finance):
    payments()
    listed = finance.get("/admin/payments/payment/", {"status__exact": "succeeded"})
    expected = sum(p.amount for p in listed.context["cl"].queryset)
    rows = csv_rows(
        finance.get("/admin/export/payments.payment.csv", {"status__exact": "succeeded"})
    )
    header, data = rows[0], rows[1:]
    assert header[:5] == ["创建时间", "业务标识", "买家", "支付方式", "状态"]
    amount = header.index("金额")
    assert len(data) == listed.context["cl"].result_count == 2
    assert sum(Decimal(r[amount]) for r in data) == expected == Decimal("1254.56")
    assert {r[3] for r in data} == {"支付宝", "微信支付"} and {r[4] for r in data} == {"成功"}


def test_a_cell_a_spreadsheet_would_evaluate_is_neutralised(finance):
    payments()
    rows = csv_rows(finance.get("/admin/export/payments.payment.csv", {"status__exact": "failed"}))
    assert rows[1][1] == '\'=HYPERLINK("http://evil")'
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert neutralise(f"{start}1+1") == f"'{start}1+1"
    assert neutralise(Decimal("-62.64")) == Decimal("-62.64")  # a number stays a number


def test_payments_xlsx_opens_with_numbers_in_yuan_and_totals_equal_the_list(finance):
    payments()
    response = finance.get("/admin/export/payments.payment.xlsx", {"status__exact": "succeeded"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(body(response))).active
    rows = list(sheet.iter_rows(values_only=True))
    amount = rows[0].index("金额")
    assert sum(Decimal(str(r[amount])) for r in rows[1:]) == Decimal("1254.56")
    assert sheet.cell(row=2, column=amount + 1).number_format == '"¥"#,##0.00'


def test_journal_lines_export_equals_the_entries_listed_and_balances(finance):
    for n in range(3):
        ledger.post(
            key=f"capture:{n}",
            kind="payment_captured",
            reference=f"order:{n}",
            lines=[
                (ledger.channel_receivable("alipay"), Decimal("10.00")),
                (ledger.CLEARING, Decimal("-10.00")),
            ],
        )
    rows = csv_rows(finance.get("/admin/export/payments.journalentry.csv", {"q": "capture:1"}))
    header, data = rows[0], rows[1:]
    debit, credit = header.index("借方"), header.index("贷方")
    assert len(data) == 2
    assert sum(Decimal(r[debit] or 0) for r in data) == sum(Decimal(r[credit] or 0) for r in data)
    assert {r[header.index("类型")] for r in data} == {"支付到账"}


def test_a_date_range_narrows_the_export_and_a_bad_date_is_refused(finance):
    payments()
    rows = csv_rows(
        finance.get(
            "/admin/export/payments.payment.csv", {"since": "2001-01-01", "until": "2001-01-31"}
        )
    )
    assert rows[1:] == []
    assert (
        finance.get("/admin/export/payments.payment.csv", {"since": "yesterday"}).status_code == 404
    )


@pytest.mark.parametrize(
    "label",
    [
        "payments.payment",
        "payments.refund",
        "payments.journalentry",
        "marketplace.payout",
        "reconciliation.discrepancy",
        "marketplace.order",
    ],
)
@pytest.mark.parametrize(
    ("group", "allowed"), [("Finance", True), ("Support", False), ("Risk", False)]
)
def test_who_may_export_each_list(client, label, group, allowed):
    staff_client(client, group)
    for fmt in ("csv", "xlsx"):
        response = client.get(f"/admin/export/{label}.{fmt}")
        assert response.status_code == (200 if allowed else 403), (label, fmt)


def test_every_export_is_in_the_audit_trail(finance):
    payments()
    body(finance.get("/admin/export/payments.payment.csv", {"status__exact": "succeeded"}))
    entry = LogEntry.objects.get(additional_data__event="export")
    assert entry.actor == finance.user and entry.additional_data["rows"] == "2"
    assert "status__exact=succeeded" in entry.additional_data["filters"]


def test_the_list_page_offers_export_links_of_what_is_filtered(finance, client):
    page = finance.get("/admin/payments/payment/", {"status__exact": "succeeded"}).content.decode()
    assert "/admin/export/payments.payment.xlsx?status__exact=succeeded" in page
    staff_client(client, "Support")
    assert "/admin/export/" not in client.get("/admin/payments/payment/").content.decode()
    UserFactory()
