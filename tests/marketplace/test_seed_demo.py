import json

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from marketplace.code_formats import code_errors
from marketplace.models import Brand, CardCode, Listing

pytestmark = pytest.mark.django_db

ROLES = {"seller", "buyer", "finance", "risk", "support", "admin"}


def seed(capsys, *args) -> str:
    call_command("seed_demo", *args)
    return capsys.readouterr().out


def test_seed_demo_json_prints_exactly_the_logins(capsys):
    body = json.loads(seed(capsys, "--json"))
    assert set(body) == {"users"} and set(body["users"]) == ROLES
    for login in body["users"].values():
        assert set(login) == {"username", "password"}
        assert authenticate(username=login["username"], password=login["password"]) is not None


def test_seed_demo_is_idempotent(capsys):
    seed(capsys)
    counts = (Brand.objects.count(), Listing.objects.count(), CardCode.objects.count())
    seed(capsys)
    assert (Brand.objects.count(), Listing.objects.count(), CardCode.objects.count()) == counts


def test_seed_demo_makes_the_test_card_brand_staff_groups_and_stock(capsys):
    out = seed(capsys)
    assert "seller" in out and "admin" in out
    test_card = Brand.objects.get(slug="test-card")
    assert (
        code_errors(test_card, "A" * 10) == []
        and code_errors(test_card, "B" * 32, "12345678") == []
    )
    assert code_errors(test_card, "C" * 9) and code_errors(test_card, "D" * 12, "123")
    assert len({b.category for b in Brand.objects.all()}) >= 4
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    for role, group in (("finance", "Finance"), ("risk", "Risk"), ("support", "Support")):
        user = users.get(username=role)
        assert user.is_staff and user.groups.filter(name=group).exists()
    assert users.get(username="admin").is_superuser
    assert Listing.objects.filter(seller__username="seller", brand=test_card).exists()
    assert CardCode.objects.filter(status="available").count() >= 100


def test_the_demo_sellers_bulk_uploads_go_on_sale(capsys):
    """The demo sellers are allow-listed partners: a bulk upload is screened and still sold."""
    from decimal import Decimal

    from django.contrib.auth import get_user_model

    from marketplace.code_formats import CodeInput
    from marketplace.services import listing_create

    seed(capsys)
    seller = get_user_model().objects.get(username="seller")
    brand = Brand.objects.get(slug="test-card")
    codes = [CodeInput(f"BULKDEMO{i:08d}", "1234") for i in range(150)]
    listing = listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal("100.00"),
        price=Decimal("95.00"),
        codes=codes,
    )
    listing.refresh_from_db()
    assert listing.status == "active" and listing.codes.filter(status="available").count() == 150


def test_the_risk_desk_starts_with_monitors(capsys):
    from risk import alerts
    from risk.models import Monitor

    seed(capsys)
    seed(capsys)
    assert set(Monitor.objects.values_list("metric", flat=True)) == {
        "payments.success_rate",
        "marketplace.dispute_rate",
        "marketplace.fraud_rate",
    }
    assert not alerts.monitors_evaluate().skipped  # every metric they name is registered


def test_seed_demo_prints_the_address_the_site_is_served_on(capsys, settings):
    settings.SITE_URL = "http://127.0.0.1:8123"
    assert "http://127.0.0.1:8123/accounts/login/" in seed(capsys)


def test_a_bare_rerun_keeps_the_demo_accounts_where_the_server_runs(capsys, settings):
    from payments.models import ChannelAccount

    settings.SITE_URL, settings.SITE_URL_CONFIGURED = "http://127.0.0.1:8123", True
    seed(capsys)
    # another shell, no SITE_URL: the settings fall back to port 8000
    settings.SITE_URL, settings.SITE_URL_CONFIGURED = "http://127.0.0.1:8000", False
    seed(capsys)
    urls = set(ChannelAccount.objects.exclude(backend="balance").values_list("base_url", flat=True))
    assert urls and all(url.startswith("http://127.0.0.1:8123/sandbox/") for url in urls)
    card = ChannelAccount.objects.get(code="card")
    assert card.credentials["hosted_page_url"].startswith("http://127.0.0.1:8123/")


def test_seed_demo_points_the_accounts_at_simulators_served_apart(capsys, settings):
    from payments.models import ChannelAccount

    settings.SANDBOX_URL = "http://127.0.0.1:8124"
    seed(capsys)
    assert ChannelAccount.objects.get(code="alipay").base_url == (
        "http://127.0.0.1:8124/sandbox/alipay/"
    )
