"""The journal as Finance reads it: lines by debit and credit in ¥, a trial balance that
balances, links from what caused an entry to the entry and back."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from marketplace import postings
from payments import ledger
from payments.models import JournalEntry, LedgerAccount
from payments.selectors import trial_balance
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def sale(number: str, amount: str, seller) -> JournalEntry:
    ledger.post(
        key=f"capture:{number}",
        kind="payment_captured",
        reference=f"order:{number}",
        lines=[
            (ledger.channel_receivable("alipay"), Decimal(amount)),
            (ledger.CLEARING, -Decimal(amount)),
        ],
    )
    commission = (Decimal(amount) * Decimal("0.1")).quantize(Decimal("0.01"))
    return ledger.post(
        key=f"sale:{number}",
        kind="sale",
        reference=f"order:{number}",
        lines=[
            (ledger.CLEARING, Decimal(amount)),
            (postings.seller_pending(seller.pk), -(Decimal(amount) - commission)),
            (ledger.PLATFORM_REVENUE, -commission),
        ],
    )


def test_a_journal_entry_shows_its_lines_as_debit_and_credit_in_yuan(finance):
    seller = UserFactory(username="alice")
    entry = sale("A1", "1234.56", seller)
    page = finance.get(f"/admin/payments/journalentry/{entry.pk}/change/").content.decode()
    assert "¥1,234.56" in page and "¥1,111.10" in page and "¥123.46" in page
    assert "卖家 alice · 待结算（保障期内）" in page
    assert "借方合计 ¥1,234.56" in page and "贷方合计 ¥1,234.56" in page and "已平衡" in page
    assert "销售（卡密已交付）" in page
    assert "JournalLine object" not in page


def test_journal_list_filters_by_account_kind_and_reference(finance):
    seller = UserFactory()
    sale("B1", "100.00", seller)
    sale("B2", "50.00", seller)
    revenue = LedgerAccount.objects.get(code=ledger.PLATFORM_REVENUE)
    receivable = LedgerAccount.objects.get(code=ledger.channel_receivable("alipay"))

    def shown(query):
        response = finance.get("/admin/payments/journalentry/", query)
        assert response.status_code == 200
        return {entry.key for entry in response.context["cl"].result_list}

    assert shown({"kind": "sale"}) == {"sale:B1", "sale:B2"}
    assert shown({"account": receivable.pk}) == {"capture:B1", "capture:B2"}
    assert shown({"account": revenue.pk, "reference": "order:B2"}) == {"sale:B2"}
    assert shown({"q": "B1"}) == {"sale:B1", "capture:B1"}


def test_journal_list_amounts_and_account_balances_read_in_yuan(finance):
    sale("C1", "62.64", UserFactory())
    page = finance.get("/admin/payments/journalentry/").content.decode()
    assert "¥62.64" in page and "62.6400" not in page
    accounts = finance.get("/admin/payments/ledgeraccount/").content.decode()
    assert "¥62.64" in accounts and "-¥6.26" in accounts and "平台收入" in accounts


def test_trial_balance_totals_are_equal_and_balances_sum_to_zero(finance):
    seller = UserFactory()
    sale("D1", "80.00", seller)
    sale("D2", "19.99", seller)
    today = timezone.localdate().isoformat()
    response = finance.get(
        "/admin/payments/journalentry/trial-balance/", {"since": today, "until": today}
    )
    assert response.status_code == 200
    tb = response.context["tb"]
    assert tb.total_debit == tb.total_credit == Decimal("199.98")
    assert tb.total_closing == Decimal("0.00") and tb.balanced
    page = response.content.decode()
    assert "¥199.98" in page and "借贷相等" in page


def test_trial_balance_of_an_earlier_period_carries_later_money_nowhere():
    sale("E1", "10.00", UserFactory())
    now = timezone.now()
    tb = trial_balance(since=now - dt.timedelta(days=30), until=now - dt.timedelta(days=29))
    assert tb.rows == [] and tb.balanced


def test_trial_balance_refuses_a_period_that_ends_before_it_starts(finance):
    response = finance.get(
        "/admin/payments/journalentry/trial-balance/",
        {"since": "2026-12-02", "until": "2026-12-01"},
    )
    assert response.status_code == 200 and "结束日期早于开始日期" in response.content.decode()


def test_ledger_is_read_only_for_everyone_even_superusers(client):
    entry = sale("F1", "5.00", UserFactory())
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.post(f"/admin/payments/journalentry/{entry.pk}/delete/").status_code == 403
    assert client.get("/admin/payments/journalentry/add/").status_code == 403
    page = client.get(f"/admin/payments/journalentry/{entry.pk}/change/").content.decode()
    assert 'name="_save"' not in page


@pytest.mark.parametrize(
    ("group", "allowed"), [("Finance", True), ("Support", False), ("Risk", False)]
)
def test_only_finance_reads_the_ledger(client, group, allowed):
    from tests.backoffice.conftest import staff_client

    staff_client(client, group)
    entry = sale("G1", "5.00", UserFactory())
    expected = 200 if allowed else 403
    assert client.get("/admin/payments/journalentry/").status_code == expected
    assert client.get(f"/admin/payments/journalentry/{entry.pk}/change/").status_code == expected
    assert client.get("/admin/payments/journalentry/trial-balance/").status_code == expected
    assert client.get("/admin/payments/ledgeraccount/").status_code == expected


def test_entry_links_to_its_order_and_order_page_links_to_its_entries(finance):
    entry = sale("H1", "5.00", UserFactory())
    page = finance.get(f"/admin/payments/journalentry/{entry.pk}/change/").content.decode()
    assert "/admin/marketplace/order/?q=H1" in page
    url = "/admin/payments/journalentry/?reference=order%3AH1"
    response = finance.get(url)
    assert {e.key for e in response.context["cl"].result_list} == {"sale:H1", "capture:H1"}


def test_journal_list_page_queries_are_bounded(finance, django_assert_max_num_queries):
    seller = UserFactory()
    for n in range(30):
        sale(f"Q{n}", "10.00", seller)
    with django_assert_max_num_queries(15):
        assert finance.get("/admin/payments/journalentry/").status_code == 200
    with django_assert_max_num_queries(15):
        assert finance.get("/admin/payments/ledgeraccount/").status_code == 200
