"""Self-dealing: a buyer and a seller sharing a device, an address range (/24) or a payout
account are linked; a payment between them is flagged, and a seller whose codes keep going
to linked accounts is a ring (issue 18's acceptance: one device, one buys the other's
listing)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from marketplace.code_formats import CodeInput
from marketplace.models import Brand
from marketplace.services import checkout as checkout_service
from marketplace.services import listing_create, order_create
from payments.client import Client as PaymentClient
from payments.models import ChannelAccount, Method
from risk import engine, history, services
from risk.models import Sighting
from tests.accounts.factories import PASSWORD, UserFactory
from tests.marketplace.factories import PayoutDestinationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def alipay():
    return ChannelAccount.objects.create(
        code="alipay",
        name="alipay",
        backend="alipay",
        methods=[Method.ALIPAY],
        base_url="http://testserver/sandbox/alipay/",
    )


def _listing(seller, code="SELFDEAL00001"):
    brand, _ = Brand.objects.get_or_create(
        slug="test-card", defaults={"name": "Test Card", "category": "shopping"}
    )
    return listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal("100.00"),
        price=Decimal("95.00"),
        codes=[CodeInput(code=code, pin="1234")],
    )


def _buy(buyer, listing, *, device: str, ip: str = "203.0.113.50"):
    order = order_create(buyer=buyer, listing=listing, quantity=1)
    return checkout_service.order_checkout_pay(
        order=order,
        buyer=buyer,
        method="alipay",
        client=PaymentClient(ip=ip, user_agent="t", device="desktop", device_id=device),
        return_url="http://testserver/",
    )


def _log_in(browser: Client, user) -> str:
    browser.get("/accounts/login/")
    browser.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    browser.post("/accounts/logout/")
    return browser.cookies["cx_device"].value.split(":")[0]


def test_a_buyer_and_seller_on_one_device_are_flagged_when_one_buys_the_others_listing():
    seller, buyer = UserFactory(), UserFactory()
    one_browser = Client(REMOTE_ADDR="198.51.100.60")
    _log_in(one_browser, seller)
    device = _log_in(one_browser, buyer)  # the same browser: the same device id

    payment = _buy(buyer, _listing(seller), device=device)
    assert "self_dealing_device" in payment.risk["reasons"]
    assert payment.risk["decision"] in {"challenge", "review", "block"}


def test_a_stranger_on_another_device_is_not_flagged():
    seller, buyer = UserFactory(), UserFactory()
    _log_in(Client(REMOTE_ADDR="198.51.100.61"), seller)
    device = _log_in(Client(REMOTE_ADDR="192.0.2.61"), buyer)
    payment = _buy(buyer, _listing(seller), device=device, ip="192.0.2.61")
    assert not [r for r in payment.risk["reasons"] if r.startswith("self_dealing")]


def test_one_address_range_is_a_weaker_link():
    seller, buyer = UserFactory(), UserFactory()
    services.sighting_record(user_ref=str(seller.pk), ip="203.0.113.9")
    payment = _buy(buyer, _listing(seller), device="d-buyer", ip="203.0.113.200")
    assert "self_dealing_ip_range" in payment.risk["reasons"]
    assert "self_dealing_device" not in payment.risk["reasons"]


def test_one_payout_account_links_a_buyer_who_also_sells():
    seller, buyer = UserFactory(), UserFactory()
    PayoutDestinationFactory(seller=seller, kind="alipay", account="ring@example.com")
    PayoutDestinationFactory(seller=buyer, kind="alipay", account=" RING@example.com")
    assert Sighting.objects.filter(field="payout").values("value").distinct().count() == 1
    assert "ring@example.com" not in str(list(Sighting.objects.values_list("value")))
    payment = _buy(buyer, _listing(seller), device="d-buyer", ip="192.0.2.70")
    assert "self_dealing_payout" in payment.risk["reasons"]
    assert payment.risk["decision"] in {"review", "block"}


def test_a_sellers_codes_bought_back_by_linked_accounts_again_and_again_is_a_ring():
    seller = UserFactory()
    services.sighting_record(user_ref=str(seller.pk), device="d-ring")
    facts = {"amount": Decimal("95"), "seller_ref": str(seller.pk), "device": "d-ring"}
    for n in range(2):
        engine.assess(engine.TransactionFacts(subject=f"payment:{n}", user_ref=f"9{n}", **facts))
    result = engine.assess(engine.TransactionFacts(subject="payment:3", user_ref="93", **facts))
    assert result.features["seller_buybacks_30d"] == 2
    assert "seller_buyback_ring" in result.reasons
    old = timezone.now() - dt.timedelta(days=engine.BUYBACK_DAYS + 1)
    from risk.models import Assessment

    Assessment.objects.update(created_at=old)
    again = engine.assess(engine.TransactionFacts(subject="payment:4", user_ref="94", **facts))
    assert "seller_buyback_ring" not in again.reasons


def test_a_sighting_needs_its_account():
    with pytest.raises(ValueError):
        services.sighting_record(user_ref="", device="d-1")
    assert not Sighting.objects.exists()


def test_the_seller_is_never_linked_to_themselves():
    services.sighting_record(user_ref="5", device="d-1")
    assert history.shared_keys("5", "5", [("device", "d-1")]) == set()
