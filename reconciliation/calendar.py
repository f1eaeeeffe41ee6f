"""Business days of a channel's calendar: weekends and staff-entered holidays are off, make-up
working days (调休) are on. Settlement cycles T+N count these days."""

from __future__ import annotations

import datetime as dt

from reconciliation.models import Holiday


def _exceptions(calendar: str, start: dt.date, end: dt.date) -> dict[dt.date, bool]:
    rows = Holiday.objects.filter(calendar=calendar, day__gte=start, day__lte=end)
    return dict(rows.values_list("day", "workday"))


def is_business_day(day: dt.date, exceptions: dict[dt.date, bool]) -> bool:
    if day in exceptions:
        return exceptions[day]
    return day.weekday() < 5


def business_day_add(day: dt.date, n: int, *, calendar: str = "CN") -> dt.date:
    """The n-th business day after ``day`` (T+N); with n = 0, ``day`` itself if it is a
    business day, else the next one. One query, however long the holidays run."""
    horizon = day + dt.timedelta(days=n * 2 + 40)  # longer than any run of days off
    exceptions = _exceptions(calendar, day, horizon)
    current = day
    if n == 0:
        while not is_business_day(current, exceptions):
            current += dt.timedelta(days=1)
        return current
    counted = 0
    while counted < n:
        current += dt.timedelta(days=1)
        if current > horizon:
            exceptions |= _exceptions(calendar, current, current + dt.timedelta(days=40))
            horizon = current + dt.timedelta(days=40)
        if is_business_day(current, exceptions):
            counted += 1
    return current
