"""The risk desk's monitoring page: rates per channel × method over time, alerts on top,
for Risk staff only."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from risk import alerts
from tests.accounts.factories import UserFactory
from tests.risk.factories import MonitorFactory, attempts, delivered_order

pytestmark = pytest.mark.django_db

URL = "/risk/monitoring/"


@pytest.fixture
def analyst(client):
    client.force_login(UserFactory(is_staff=True, groups=["Risk"]))
    return client


def test_risk_staff_see_success_and_dispute_rates_per_channel_and_method(analyst):
    attempts(3, status="succeeded", channel="ali-1")
    attempts(1, status="failed", channel="ali-1")
    attempts(
        2,
        status="succeeded",
        channel="card-1",
        method="card",
        at=timezone.now() - dt.timedelta(days=3),
    )
    delivered_order(channel="wx-1", method="wechatpay", dispute="open")
    delivered_order(channel="wx-1", method="wechatpay")
    page = analyst.get(URL, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Payment success rate" in html and "Dispute rate" in html
    assert "75.00%" in html and "(3/4)" in html  # ali-1 × alipay over 24 h and 14 days
    assert "card-1" in html  # only in the daily series: three days ago
    assert "50.00%" in html and "(1/2)" in html  # disputes
    assert html.count("<svg") >= 4 and 'role="img"' in html
    assert "No open alerts" in html


def test_open_alerts_are_shown_above_the_series(analyst):
    MonitorFactory(name="alipay conversion", lower_bound=Decimal("80"))
    attempts(5, status="failed")
    alerts.monitors_evaluate()
    html = analyst.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "alipay conversion" in html
    assert html.index("alipay conversion") < html.index("Payment success rate")


def test_the_page_reads_a_fixed_number_of_queries(analyst, django_assert_max_num_queries):
    attempts(2, status="succeeded")
    delivered_order()
    analyst.get(URL)  # warm the session and permission caches of the first request
    # session + user + groups/permissions + open alerts + 2 ranges × 2 shared sources
    with django_assert_max_num_queries(9):
        analyst.get(URL)
    for channel in ("ali-2", "ali-3", "ali-4"):
        attempts(3, status="failed", channel=channel)
        delivered_order(channel=channel, dispute="open")
    with django_assert_max_num_queries(9):
        assert analyst.get(URL).status_code == 200


def test_a_superuser_may_look_too(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(URL).status_code == 200


@pytest.mark.parametrize(
    "groups,is_staff", [(["Support"], True), (["Finance"], False), (["Risk"], False), ([], False)]
)
def test_other_people_are_refused(client, groups, is_staff):
    client.force_login(UserFactory(is_staff=is_staff, groups=groups))
    assert client.get(URL).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
