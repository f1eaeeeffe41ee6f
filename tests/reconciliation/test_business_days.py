"""Settlement cycles count the channel's business days: weekends and holidays off."""

import datetime as dt

import pytest

from reconciliation.calendar import business_day_add
from reconciliation.models import Holiday

pytestmark = pytest.mark.django_db

FRIDAY = dt.date(2026, 9, 25)


def test_a_weekend_is_skipped():
    assert business_day_add(FRIDAY, 1) == dt.date(2026, 9, 28)  # Monday
    assert business_day_add(dt.date(2026, 9, 26), 1) == dt.date(2026, 9, 28)  # from a Saturday
    assert business_day_add(dt.date(2026, 9, 22), 1) == dt.date(2026, 9, 23)


def test_holidays_are_skipped_and_make_up_days_worked():
    for day in range(1, 8):  # National Day week
        Holiday.objects.create(day=dt.date(2026, 10, day), name="国庆节")
    Holiday.objects.create(day=dt.date(2026, 9, 27), name="国庆节调休", workday=True)  # a Sunday
    assert business_day_add(FRIDAY, 1) == dt.date(2026, 9, 27)
    assert business_day_add(FRIDAY, 3) == dt.date(2026, 9, 29)
    assert business_day_add(dt.date(2026, 9, 30), 1) == dt.date(2026, 10, 8)
    assert business_day_add(dt.date(2026, 10, 3), 0) == dt.date(2026, 10, 8)


def test_another_calendars_holidays_do_not_count():
    Holiday.objects.create(calendar="HK", day=dt.date(2026, 9, 28), name="x")
    assert business_day_add(FRIDAY, 1) == dt.date(2026, 9, 28)
    assert business_day_add(FRIDAY, 1, calendar="HK") == dt.date(2026, 9, 29)
