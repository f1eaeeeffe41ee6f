"""Risk staff edit monitors, read alerts and resolve them; assessments filter by kind."""

from decimal import Decimal

import pytest

from risk import alerts
from risk.engine import SellerFacts, TransactionFacts, assess, assess_seller
from risk.models import Alert, Monitor
from tests.accounts.factories import UserFactory
from tests.risk.factories import MonitorFactory, attempts

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst(client):
    client.force_login(UserFactory(is_staff=True, groups=["Risk"]))
    return client


def open_alert() -> Alert:
    MonitorFactory()
    attempts(5, status="failed")
    alerts.monitors_evaluate()
    return Alert.objects.get()


def test_risk_staff_add_a_monitor_in_admin(analyst):
    response = analyst.post(
        "/admin/risk/monitor/add/",
        {
            "name": "card conversion",
            "metric": "payments.success_rate",
            "enabled": "on",
            "dimensions": '{"method": "card"}',
            "per_dimension": "on",
            "window_hours": "2",
            "min_sample": "30",
            "lower_bound": "85",
            "upper_bound": "",
            "alert_emails": "risk@example.com",
            "webhook_url": "",
        },
    )
    assert response.status_code == 302, response.content
    monitor = Monitor.objects.get()
    assert monitor.dimensions == {"method": "card"} and monitor.lower_bound == Decimal("85")


def test_an_unknown_metric_is_refused_with_the_known_ones_listed(analyst):
    response = analyst.post(
        "/admin/risk/monitor/add/",
        {
            "name": "typo",
            "metric": "payments.sucess_rate",
            "dimensions": "{}",
            "window_hours": "1",
            "min_sample": "20",
            "lower_bound": "85",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200 and b"payments.success_rate" in response.content
    assert not Monitor.objects.exists()


def test_alerts_are_read_only_and_risk_staff_resolve_them(analyst):
    alert = open_alert()
    assert analyst.get("/admin/risk/alert/").status_code == 200
    page = analyst.get(f"/admin/risk/alert/{alert.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    analyst.post("/admin/risk/alert/", {"action": "resolve", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.resolved_at is not None and alert.resolved_by


def test_support_cannot_see_monitors_or_resolve_alerts(client):
    alert = open_alert()
    client.force_login(UserFactory(is_staff=True, groups=["Support"]))
    assert client.get("/admin/risk/monitor/").status_code == 403
    client.post("/admin/risk/alert/", {"action": "resolve", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.resolved_at is None


def test_assessments_filter_by_what_was_scored(analyst):
    assess(
        TransactionFacts(
            subject="payment:abc",
            user_ref="1",
            amount=Decimal("10"),
            account_age_days=90,
            good_orders=5,
        )
    )
    assess_seller(
        SellerFacts(
            subject="listing-upload:7",
            seller_ref="2",
            upload_codes=1,
            upload_face_value=Decimal("50"),
        )
    )
    page = analyst.get("/admin/risk/assessment/?subject_kind=listing-upload")
    assert page.status_code == 200
    assert b"listing-upload:7" in page.content and b"payment:abc" not in page.content
