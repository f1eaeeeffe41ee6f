from decimal import Decimal

import pytest

from payments.models import ChannelAccount, Refund
from tests.accounts.factories import UserFactory
from tests.payments.factories import PaymentFactory
from tests.payments.fakes import FakeBackend

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance(client):
    user = UserFactory(is_staff=True, groups=["Finance"])
    client.force_login(user)
    return client


def paid_payment():
    FakeBackend.reset()
    account = ChannelAccount.objects.create(code="fa", name="fa", backend="fake", methods=["alipay"], base_url="https://fake.example/")
    payment = PaymentFactory(status="succeeded", amount=Decimal("80.00"))
    payment.attempts.create(account=account, method="alipay", amount=Decimal("80.00"), status="succeeded")
    return payment


def test_finance_refunds_part_of_a_payment_in_admin(finance, django_capture_on_commit_callbacks):
    payment = paid_payment()
    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post(f"/admin/payments/payment/{payment.pk}/refund/", {"amount": "30.00", "reason": "one code bad"})
    assert response.status_code == 302
    refund = Refund.objects.get()
    assert refund.amount == Decimal("30.00") and refund.status == "succeeded"


def test_refund_above_what_is_left_is_refused_with_a_message(finance):
    payment = paid_payment()
    response = finance.post(f"/admin/payments/payment/{payment.pk}/refund/", {"amount": "80.01", "reason": "too much"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and b"exceeds" in response.content
    assert not Refund.objects.exists()


def test_support_cannot_edit_channel_accounts_and_credentials_are_never_shown(client):
    account = ChannelAccount(code="x", name="x", backend="fake", methods=["alipay"], base_url="https://fake.example/")
    account.credentials = {"private_key": "TOP-SECRET-KEY-MATERIAL"}
    account.save()
    support = UserFactory(is_staff=True, groups=["Support"])
    client.force_login(support)
    assert client.get(f"/admin/payments/channelaccount/{account.pk}/change/").status_code == 403
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.get(f"/admin/payments/channelaccount/{account.pk}/change/")
    assert page.status_code == 200
    assert b"TOP-SECRET-KEY-MATERIAL" not in page.content and b"private_key" in page.content


def test_staff_pages_of_the_platform_render(client):
    paid_payment()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for url in ["payment", "attempt", "refund", "notification", "errorcode", "channelhealth", "breakerevent", "journalentry", "ledgeraccount", "channelaccount"]:
        assert client.get(f"/admin/payments/{url}/").status_code == 200, url
