"""Every state-changing form refuses a post without the CSRF token (a forged cross-site
submit): 403, and nothing changes."""

import pytest
from django.test import Client

from accounts.models import User
from marketplace.models import CardCode, Dispute, Listing, Order, Payout, PayoutDestination
from payments.models import Payment
from tests.accounts.factories import PASSWORD
from tests.marketplace.factories import PayoutDestinationFactory

pytestmark = pytest.mark.django_db


def snapshot():
    """What any of these forms could change."""
    return (
        User.objects.count(),
        list(User.objects.order_by("pk").values_list("password", "is_active")),
        list(Order.objects.order_by("pk").values_list("status")),
        list(Listing.objects.order_by("pk").values_list("price", "status")),
        list(CardCode.objects.order_by("pk").values_list("status")),
        list(Dispute.objects.order_by("pk").values_list("status", "seller_answer")),
        Payout.objects.count(),
        PayoutDestination.objects.count(),
        Payment.objects.count(),
    )


def forged(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def world(seller, buyer, listing, delivered, dispute):
    destination = PayoutDestinationFactory(seller=seller)
    return {
        "order": delivered,
        "listing": listing,
        "code": listing.codes.filter(status="available").first(),
        "dispute": dispute,
        "destination": destination,
    }


FORMS = {
    # name: (who, path, data)
    "login": (None, "/accounts/login/", lambda w: {"username": "bob-buyer", "password": PASSWORD}),
    "signup": (
        None,
        "/accounts/signup/",
        lambda w: {
            "username": "csrf-victim",
            "password1": "A-long-pass-123",
            "password2": "A-long-pass-123",
        },
    ),
    "logout": ("buyer", "/accounts/logout/", lambda w: {}),
    "password change": (
        "buyer",
        "/accounts/password_change/",
        lambda w: {
            "old_password": PASSWORD,
            "new_password1": "Zx-98-lkj-qwe",
            "new_password2": "Zx-98-lkj-qwe",
        },
    ),
    "buy": ("buyer", "/listings/{listing}/", lambda w: {"quantity": 1}),
    "cancel order": ("buyer", "/orders/{order}/cancel/", lambda w: {}),
    "open dispute": (
        "buyer",
        "/orders/{order}/dispute/",
        lambda w: {"code": w["order"].codes.first().pk, "reason": "used", "note": "x"},
    ),
    "pay": ("buyer", "/orders/{order}/pay/", lambda w: {"method": "alipay"}),
    "answer code": ("buyer", "/orders/{order}/challenge/", lambda w: {"code": "123456"}),
    "check payment": ("buyer", "/orders/{order}/check/", lambda w: {}),
    "top up": ("buyer", "/wallet/", lambda w: {"amount": "100.00", "method": "alipay"}),
    "new listing": (
        "seller",
        "/sell/new/",
        lambda w: {
            "brand": w["listing"].brand_id,
            "face_value": "50.00",
            "price": "45.00",
            "codes": "CSRFCODE00000001",
        },
    ),
    "add codes": ("seller", "/sell/listings/{listing}/", lambda w: {"codes": "CSRFCODE00000002"}),
    "reprice": (
        "seller",
        "/sell/listings/{listing}/update/",
        lambda w: {"action": "reprice", "price": "1.00"},
    ),
    "withdraw listing": (
        "seller",
        "/sell/listings/{listing}/update/",
        lambda w: {"action": "withdraw"},
    ),
    "withdraw code": ("seller", "/sell/listings/{listing}/codes/{code}/withdraw/", lambda w: {}),
    "answer dispute": ("seller", "/sell/disputes/{dispute}/answer/", lambda w: {"answer": "no"}),
    "add payout account": (
        "seller",
        "/sell/payouts/destinations/",
        lambda w: {"kind": "alipay", "holder_name": "Evil", "account": "evil@example.com"},
    ),
    "request payout": (
        "seller",
        "/sell/payouts/request/",
        lambda w: {"destination": w["destination"].pk, "amount": "1.00"},
    ),
    "api order (session)": (
        "buyer",
        "/api/v1/orders/",
        lambda w: {"listing": w["listing"].pk, "quantity": 1},
    ),
    "api cancel (session)": ("buyer", "/api/v1/orders/{order}/cancel/", lambda w: {}),
    "admin action": (
        "admin",
        "/admin/accounts/user/",
        lambda w: {
            "action": "delete_selected",
            "_selected_action": [w["order"].buyer_id],
            "post": "yes",
        },
    ),
}


@pytest.mark.parametrize("name", FORMS)
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    name, world, seller, buyer, django_user_model
):
    who, path, data = FORMS[name]
    users = {
        None: None,
        "buyer": buyer,
        "seller": seller,
        "admin": django_user_model.objects.create_superuser("root", "r@example.com", "x"),
    }
    path = path.format(
        order=world["order"].number,
        listing=world["listing"].pk,
        code=world["code"].pk,
        dispute=world["dispute"].pk,
    )
    before = snapshot()
    client = forged(users[who])
    response = client.post(path, data(world))
    assert response.status_code == 403, (name, response.status_code)
    assert snapshot() == before
    if who is not None:
        assert "_auth_user_id" in client.session, "still logged in: logout was refused"
