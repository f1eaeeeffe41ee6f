from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import translation

from marketplace.templatetags.shop import discount, hours_as_days, yuan


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234.5"), "¥1,234.50"),
        (Decimal("0"), "¥0.00"),
        (Decimal("-62.64"), "-¥62.64"),
        ("1000000", "¥1,000,000.00"),
        (None, "—"),
    ],
)
def test_money_reads_with_the_yuan_sign_two_places_and_thousands(value, shown):
    assert yuan(value) == shown


@pytest.mark.parametrize(
    ("face", "price", "zh", "en"),
    [
        ("100.00", "88.00", "8.8折", "12% off"),
        ("100.00", "95.00", "9.5折", "5% off"),
        ("500.00", "455.00", "9.1折", "9% off"),
        ("100.00", "92.50", "9.25折", "7.5% off"),
    ],
)
def test_discount_is_said_in_zhe_in_chinese_and_percent_off_in_english(face, price, zh, en):
    listing = SimpleNamespace(face_value=Decimal(face), price=Decimal(price))
    with translation.override("zh-hans"):
        assert discount(listing) == zh
    with translation.override("en"):
        assert discount(listing) == en


def test_a_guarantee_window_of_whole_days_is_said_in_days():
    with translation.override("zh-hans"):
        assert hours_as_days(168) == "7 天"
        assert hours_as_days(36) == "36 小时"
    with translation.override("en"):
        assert hours_as_days(72) == "3 days" and hours_as_days(24) == "1 day"
