"""The dashboard is the staff landing page: today / 7 / 30 days, queues, breakers, charts."""

import json
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from backoffice.dashboard import daily_series, staff_dashboard
from marketplace.models import Order
from payments.models import Refund
from tests.accounts.factories import UserFactory
from tests.backoffice.conftest import staff_client
from tests.marketplace.factories import ListingFactory
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def paid_order(amount: str, number: str, days_ago: int = 0) -> Order:
    listing = ListingFactory()
    paid_at = timezone.now() - timezone.timedelta(days=days_ago)
    return Order.objects.create(
        number=number,
        buyer=UserFactory(),
        listing=listing,
        quantity=1,
        unit_price=Decimal(amount),
        unit_commission=Decimal("1.00"),
        amount=Decimal(amount),
        status=Order.Status.DELIVERED,
        expires_at=paid_at,
        paid_at=paid_at,
    )


def test_dashboard_counts_today_seven_and_thirty_days():
    paid_order("1234.56", "T1")
    paid_order("100.00", "T2", days_ago=3)
    paid_order("50.00", "T3", days_ago=20)
    paid_order("9.99", "T4", days_ago=40)
    gmv, orders = staff_dashboard().figures[:2]
    assert gmv.values == {
        "today": Decimal("1234.56"),
        "7d": Decimal("1334.56"),
        "30d": Decimal("1384.56"),
    }
    assert orders.values == {"today": 1, "7d": 2, "30d": 3}
    assert "paid_at__gte=" in gmv.links["7d"] and gmv.links["7d"].startswith(
        "/admin/marketplace/order/"
    )


def test_daily_series_has_one_point_per_day_and_sums_to_the_thirty_day_figure():
    paid_order("10.00", "S1")
    paid_order("20.00", "S2", days_ago=2)
    series = daily_series(now=timezone.now())
    assert len(series["days"]) == len(series["gmv"]) == len(series["orders"]) == 30
    assert sum(series["gmv"]) == 30.0 and sum(series["orders"]) == 2


def test_every_waiting_number_links_to_its_filtered_list(finance):
    payment = PaymentFactory(status="succeeded", amount=Decimal("80.00"))
    from payments.models import Attempt, ChannelAccount

    account = ChannelAccount.objects.create(
        code="fa", name="fa", backend="fake", methods=["alipay"], base_url="https://fake.example/"
    )
    attempt = Attempt.objects.create(
        payment=payment,
        account=account,
        method="alipay",
        amount=Decimal("80.00"),
        status="succeeded",
    )
    Refund.objects.create(
        payment=payment, attempt=attempt, amount=Decimal("5.00"), status="requested"
    )
    board = staff_dashboard()
    refunds_waiting = board.waiting[0]
    assert refunds_waiting.count == 1 and refunds_waiting.url.endswith("status__exact=requested")
    response = finance.get(refunds_waiting.url)
    assert response.status_code == 200 and response.context["cl"].result_count == 1
    assert board.by_method[0].percent("today") == Decimal("100.0")
    assert board.by_account[0].label == "fa"


@pytest.mark.parametrize("group", ["Finance", "Risk", "Support", "superuser"])
def test_the_admin_index_is_the_dashboard_for_each_staff_group(client, group):
    staff_client(client, group)
    paid_order("1234.56", "I1")
    response = client.get("/admin/")
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="dashboard"' in page
    assert "¥1,234.56" in page and "今天" in page and "近 30 天" in page
    assert "vendor/uplot/uPlot.iife.min.js" in page
    # served from our static files, never a CDN (a random nonce may spell "cdn": read URLs)
    assert not re.search(r"""(?:src|href)=["'](?:https?:)?//""", page)
    spec = json.loads(
        page.split('id="chart-gmv-data" type="application/json">')[1].split("</script>")[0]
    )
    assert spec["series"][0]["values"][-1] == 1234.56


def test_dashboard_queries_are_bounded_however_many_orders(finance, django_assert_max_num_queries):
    for n in range(25):
        paid_order("10.00", f"B{n}", days_ago=n)
    with django_assert_max_num_queries(30):
        assert finance.get("/admin/").status_code == 200


def test_finance_sees_the_success_rate_panels_of_risk_monitoring_with_real_charts(finance):
    from tests.risk.factories import attempts

    attempts(3, status="succeeded", channel="ali-1")
    attempts(1, status="failed", channel="ali-1")
    response = finance.get("/risk/monitoring/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "支付成功率" in page and "争议率" not in page
    spec = json.loads(
        page.split('id="chart-metric-1-data" type="application/json">')[1].split("</script>")[0]
    )
    assert spec["series"][0]["values"][-1] == 75.0 and len(spec["days"]) == 14
    assert "vendor/uplot/uPlot.iife.min.js" in page


def test_risk_sees_every_panel_and_its_chart(risk_staff):
    from tests.risk.factories import attempts, delivered_order

    attempts(2, status="succeeded", channel="ali-1")
    delivered_order(channel="wx-1", method="wechatpay", dispute="open")
    page = risk_staff.get("/risk/monitoring/").content.decode()
    assert "争议率" in page and 'id="chart-metric-1-data"' in page
