import pytest

from marketplace import vault
from marketplace.errors import OrderNotFound
from marketplace.models import CardCode, RevealAudit
from marketplace.services import order_codes_reveal, order_create
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_buyer_sees_delivered_codes_and_each_reveal_is_audited(listing, buyer, pay):
    order = order_create(buyer=buyer, listing=listing, quantity=2)
    pay(order)
    revealed = order_codes_reveal(
        order=order, user=buyer, channel="web", ip="198.51.100.7", user_agent="Firefox"
    )
    expected = [
        vault.decrypt(c.code_encrypted) for c in CardCode.objects.filter(order=order).order_by("id")
    ]
    assert [r.code for r in revealed] == expected
    audit = RevealAudit.objects.get()
    assert (audit.order, audit.user, audit.channel, audit.ip, audit.user_agent, audit.codes) == (
        order,
        buyer,
        "web",
        "198.51.100.7",
        "Firefox",
        2,
    )
    order_codes_reveal(order=order, user=buyer, channel="api")
    assert RevealAudit.objects.count() == 2


def test_nothing_is_revealed_before_delivery(listing, buyer):
    order = order_create(buyer=buyer, listing=listing, quantity=1)
    assert order_codes_reveal(order=order, user=buyer, channel="web") == []
    assert not RevealAudit.objects.exists()


def test_nobody_else_sees_the_codes_not_even_staff(listing, buyer, pay):
    order = order_create(buyer=buyer, listing=listing, quantity=1)
    pay(order)
    for other in (UserFactory(), UserFactory(is_staff=True, is_superuser=True), None):
        with pytest.raises(OrderNotFound):
            order_codes_reveal(order=order, user=other, channel="web")
    assert not RevealAudit.objects.exists()
