import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from payments import services
from payments.channels.base import ClientInfo
from payments.models import ChannelAccount
from tests.accounts.factories import UserFactory
from tests.payments.fakes import FakeBackend

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer_api():
    FakeBackend.reset()
    ChannelAccount.objects.create(
        code="fa", name="fa", backend="fake", methods=["alipay"], base_url="https://fake.example/"
    )
    buyer = UserFactory()
    api = APIClient()
    api.force_authenticate(buyer)
    return buyer, api


def start(buyer):
    return services.payment_start(
        buyer=buyer,
        reference="test:api",
        amount=Decimal("10.00"),
        currency="CNY",
        method="alipay",
        subject="t",
        client=ClientInfo(),
        return_url="",
        expires_at=timezone.now() + timedelta(minutes=5),
    )


def test_buyer_reads_their_payment_with_its_action(buyer_api):
    buyer, api = buyer_api
    payment = start(buyer)
    body = api.get(f"/api/v1/payments/{payment.public_id}/").json()["payment"]
    assert (
        body["status"] == "pending"
        and body["channel"] == "fa"
        and body["action"]["type"] == "redirect"
    )


def test_someone_else_gets_404(buyer_api):
    buyer, _ = buyer_api
    payment = start(buyer)
    other = APIClient()
    other.force_authenticate(UserFactory())
    assert other.get(f"/api/v1/payments/{payment.public_id}/").status_code == 404


def test_challenge_answered_with_the_right_code_opens_the_payment(
    buyer_api, monkeypatch, mailoutbox, django_capture_on_commit_callbacks
):
    buyer, api = buyer_api
    buyer.email = "b@example.com"
    buyer.save()
    from risk import engine

    real = engine.assess
    monkeypatch.setattr(
        engine,
        "assess",
        lambda facts, **kw: engine.RiskResult(45, "challenge", ("new_device",), {}, None),
    )
    with django_capture_on_commit_callbacks(execute=True):
        payment = start(buyer)
    monkeypatch.setattr(engine, "assess", real)
    assert payment.status == "challenge"
    body = api.get(f"/api/v1/payments/{payment.public_id}/").json()["payment"]
    assert body["status"] == "challenge" and body["challenge"]["type"] == "one_time_code"
    code = re.search(r"\b(\d{6})\b", mailoutbox[0].body).group(1)
    wrong = api.post(
        f"/api/v1/payments/{payment.public_id}/challenge/",
        {"code": "000000" if code != "000000" else "111111"},
        format="json",
    )
    assert wrong.status_code == 400
    right = api.post(
        f"/api/v1/payments/{payment.public_id}/challenge/", {"code": code}, format="json"
    )
    assert right.status_code == 200 and right.json()["payment"]["status"] == "pending"
