"""The metrics contract: apps register sources, sources answer with plain data points, one
GROUP BY query each whatever the data."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from risk import monitoring
from tests.risk.factories import attempts, delivered_order

pytestmark = pytest.mark.django_db


def window(hours=2):
    now = timezone.now()
    return {"since": now - dt.timedelta(hours=hours), "until": now}


def totals_of(points, metric):
    return {
        (t.dimensions["channel"], t.dimensions["method"]): (t.numerator, t.denominator)
        for t in monitoring.totals([p for p in points if p.metric == metric]).values()
    }


def test_the_apps_that_own_the_data_register_their_metrics():
    assert {
        "payments.success_rate",
        "payments.first_attempt_success_rate",
        "marketplace.dispute_rate",
        "marketplace.fraud_rate",
    } <= set(monitoring.metric_names())
    assert monitoring.metric("payments.success_rate").dimensions == ("channel", "method")


def test_registering_again_replaces_instead_of_duplicating():
    def source(*, since, until, grain):
        return []

    monitoring.register("test.metric", label="one", source=source)
    monitoring.register("test.metric", label="two", source=source)
    try:
        assert monitoring.metric_names().count("test.metric") == 1
        assert monitoring.metric("test.metric").label == "two"
    finally:
        monitoring.unregister("test.metric")


def test_totals_add_points_up_per_dimensions_or_into_one_filtered_total():
    start = timezone.now()
    points = [
        monitoring.DataPoint.of(
            "m", period_start=start, numerator=9, denominator=10, channel="a", method="alipay"
        ),
        monitoring.DataPoint.of(
            "m",
            period_start=start - dt.timedelta(hours=1),
            numerator=1,
            denominator=10,
            channel="a",
            method="alipay",
        ),
        monitoring.DataPoint.of(
            "m", period_start=start, numerator=5, denominator=5, channel="b", method="card"
        ),
    ]
    split = monitoring.totals(points)
    assert split["channel=a,method=alipay"].percent == Decimal("50.00")
    assert split["channel=b,method=card"].percent == Decimal("100.00")
    one = monitoring.totals(points, where={"method": "alipay"}, split=False)
    assert list(one) == ["method=alipay"] and (
        one["method=alipay"].numerator,
        one["method=alipay"].denominator,
    ) == (10, 20)


def test_payment_success_rate_is_succeeded_over_finished_attempts_per_channel_and_method():
    attempts(3, status="succeeded", channel="ali-1")
    attempts(1, status="failed", channel="ali-1")
    attempts(2, status="expired", channel="ali-2")
    attempts(2, status="pending", channel="ali-1")  # not finished yet
    attempts(1, status="cancelled", channel="ali-1")  # closed by us: says nothing about the channel
    attempts(1, status="succeeded", channel="card-1", method="card")
    attempts(
        4, status="failed", channel="ali-1", at=timezone.now() - dt.timedelta(hours=5)
    )  # outside the window
    from payments import metrics

    points = list(metrics.attempt_outcomes(**window(), grain="hour"))
    assert totals_of(points, "payments.success_rate") == {
        ("ali-1", "alipay"): (3, 4),
        ("ali-2", "alipay"): (0, 2),
        ("card-1", "card"): (1, 1),
    }


def test_first_attempt_success_counts_payments_that_needed_no_failover():
    from payments import metrics
    from tests.payments.factories import PaymentFactory

    failed_over = PaymentFactory()
    attempts(1, status="failed", channel="ali-1", payment=failed_over)
    attempts(1, status="succeeded", channel="ali-2", payment=failed_over)
    attempts(2, status="succeeded", channel="ali-1")
    points = list(metrics.attempt_outcomes(**window(), grain="hour"))
    assert totals_of(points, "payments.first_attempt_success_rate") == {
        ("ali-1", "alipay"): (2, 3),
        ("ali-2", "alipay"): (0, 0),
    }
    assert totals_of(points, "payments.success_rate") == {
        ("ali-1", "alipay"): (2, 3),
        ("ali-2", "alipay"): (1, 1),
    }


def test_payment_points_are_per_hour_or_per_day():
    from payments import metrics

    now = timezone.localtime()
    attempts(2, status="succeeded", at=now - dt.timedelta(hours=3))
    attempts(1, status="failed", at=now - dt.timedelta(minutes=1))
    hourly = [
        p
        for p in metrics.attempt_outcomes(**window(hours=6), grain="hour")
        if p.metric == "payments.success_rate"
    ]
    assert sorted((p.numerator, p.denominator) for p in hourly) == [(0, 1), (2, 2)]
    assert all(p.period_start.minute == 0 and p.period_start.second == 0 for p in hourly)
    daily = [
        p
        for p in metrics.attempt_outcomes(**window(hours=48), grain="day")
        if p.metric == "payments.success_rate"
    ]
    assert all(timezone.localtime(p.period_start).hour == 0 for p in daily)
    assert sum(p.denominator for p in daily) == 3


def test_payment_metrics_take_one_query_however_many_attempts(django_assert_num_queries):
    from payments import metrics

    attempts(2, status="succeeded", channel="ali-1")
    with django_assert_num_queries(1):
        small = list(metrics.attempt_outcomes(**window(), grain="hour"))
    attempts(5, status="failed", channel="ali-2")
    attempts(5, status="succeeded", channel="card-1", method="card")
    with django_assert_num_queries(1):
        large = list(metrics.attempt_outcomes(**window(), grain="day"))
    assert len(large) > len(small)


def test_dispute_and_fraud_rates_are_over_orders_delivered_per_channel_and_method():
    from marketplace import metrics

    delivered_order(channel="ali-1")
    delivered_order(channel="ali-1", dispute="open")
    delivered_order(channel="ali-1", dispute="refunded")
    delivered_order(channel="ali-1", dispute="rejected")
    delivered_order(channel="card-1", method="card")
    delivered_order(
        channel="ali-1", dispute="open", at=timezone.now() - dt.timedelta(days=3)
    )  # outside
    points = list(metrics.delivered_order_outcomes(**window(hours=24), grain="day"))
    assert totals_of(points, "marketplace.dispute_rate") == {
        ("ali-1", "alipay"): (3, 4),
        ("card-1", "card"): (0, 1),
    }
    assert totals_of(points, "marketplace.fraud_rate") == {
        ("ali-1", "alipay"): (1, 4),
        ("card-1", "card"): (0, 1),
    }


def test_marketplace_metrics_take_one_query_however_many_orders(django_assert_num_queries):
    from marketplace import metrics

    delivered_order(dispute="open")
    with django_assert_num_queries(1):
        list(metrics.delivered_order_outcomes(**window(hours=24), grain="hour"))
    for _ in range(4):
        delivered_order(channel="card-1", method="card", dispute="refunded")
        delivered_order(channel="ali-2")
    with django_assert_num_queries(1):
        points = list(metrics.delivered_order_outcomes(**window(hours=24), grain="day"))
    assert len(points) == 6  # 3 channel × method groups, two metrics each


def test_a_collector_calls_a_shared_source_once_per_range(django_assert_num_queries):
    attempts(1, status="succeeded")
    collector = monitoring.Collector()
    span = window()
    with django_assert_num_queries(1):
        first = collector.points("payments.success_rate", **span, grain="hour")
        again = collector.points("payments.first_attempt_success_rate", **span, grain="hour")
    assert len(first) == len(again) == 1
    assert collector.points("no.such.metric", **span, grain="hour") == []
