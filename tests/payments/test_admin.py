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
    account = ChannelAccount.objects.create(
        code="fa", name="fa", backend="fake", methods=["alipay"], base_url="https://fake.example/"
    )
    payment = PaymentFactory(status="succeeded", amount=Decimal("80.00"))
    payment.attempts.create(
        account=account, method="alipay", amount=Decimal("80.00"), status="succeeded"
    )
    return payment


def test_finance_refunds_part_of_a_payment_in_admin(finance, django_capture_on_commit_callbacks):
    payment = paid_payment()
    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post(
            f"/admin/payments/payment/{payment.pk}/refund/",
            {"amount": "30.00", "reason": "one code bad"},
        )
    assert response.status_code == 302
    refund = Refund.objects.get()
    assert refund.amount == Decimal("30.00") and refund.status == "succeeded"


def test_refund_above_what_is_left_is_refused_with_a_message(finance):
    payment = paid_payment()
    response = finance.post(
        f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "80.01", "reason": "too much"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200 and b"exceeds" in response.content
    assert not Refund.objects.exists()


def test_support_cannot_edit_channel_accounts_and_credentials_are_never_shown(client):
    account = ChannelAccount(
        code="x", name="x", backend="fake", methods=["alipay"], base_url="https://fake.example/"
    )
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
    for url in [
        "payment",
        "attempt",
        "refund",
        "notification",
        "errorcode",
        "channelhealth",
        "breakerevent",
        "journalentry",
        "ledgeraccount",
        "channelaccount",
    ]:
        assert client.get(f"/admin/payments/{url}/").status_code == 200, url


# --- the review queue: payments risk held for an analyst -----------------------------------------


def held_payment(reference="test:R1", amount="600.00"):
    from datetime import timedelta

    from django.utils import timezone

    from payments import services
    from payments.channels.base import ClientInfo
    from risk.models import Rule

    FakeBackend.reset()
    ChannelAccount.objects.get_or_create(
        code="fa",
        defaults={
            "name": "fa",
            "backend": "fake",
            "methods": ["alipay"],
            "base_url": "https://fake.example/",
        },
    )
    Rule.objects.get_or_create(
        name="big orders",
        defaults={
            "reason_code": "big_amount",
            "feature": "amount",
            "operator": "gte",
            "value": "500",
            "score": 10,
            "action": "review",
        },
    )
    return services.payment_start(
        buyer=UserFactory(),
        reference=reference,
        amount=Decimal(amount),
        currency="CNY",
        method="alipay",
        subject="R",
        client=ClientInfo(ip="10.0.0.9"),
        return_url="",
        expires_at=timezone.now() + timedelta(minutes=15),
    )


@pytest.fixture
def analyst(client):
    client.force_login(UserFactory(is_staff=True, groups=["Risk"]))
    return client


def test_an_analyst_sees_why_a_payment_is_held(analyst):
    payment = held_payment()
    assert payment.status == "review"
    page = analyst.get("/admin/payments/payment/?status__exact=review", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert payment.reference.encode() in page.content and b"big_amount" in page.content
    assert b"Release for payment" in page.content and b"Block" in page.content


def test_releasing_a_held_payment_opens_it_at_a_channel_and_tells_the_shop(analyst):
    from payments import signals
    from risk.models import Assessment

    payment = held_payment()
    seen = []
    signals.payment_status_changed.connect(
        lambda sender, payment, **kw: seen.append(payment.status),
        weak=False,
        dispatch_uid="review-test",
    )
    try:
        response = analyst.post(
            "/admin/payments/payment/",
            {"action": "release_held", "_selected_action": [payment.pk]},
            HTTP_ACCEPT_LANGUAGE="en",
        )
    finally:
        signals.payment_status_changed.disconnect(dispatch_uid="review-test")
    assert response.status_code == 302
    payment.refresh_from_db()
    assert payment.status == "pending" and payment.attempts.get().status == "pending"
    assert payment.risk["review"] == "approved" and payment.risk["reviewed_by"]
    assert seen == ["pending"]  # the order leaves "under review" and shows the way to pay
    assessment = Assessment.objects.get(pk=payment.risk["assessment_id"])
    assert (assessment.review_outcome, assessment.reviewed_by) == (
        "allow",
        payment.risk["reviewed_by"],
    )


def test_blocking_a_held_payment_tells_the_buyer_and_asks_no_channel(analyst):
    payment = held_payment()
    analyst.post(
        "/admin/payments/payment/", {"action": "block_held", "_selected_action": [payment.pk]}
    )
    payment.refresh_from_db()
    assert payment.status == "blocked" and payment.failure_code == "REVIEW_BLOCKED"
    assert not payment.attempts.exists()


def test_only_held_payments_are_released_and_the_rest_are_named(analyst):
    paid, held = paid_payment(), held_payment()
    response = analyst.post(
        "/admin/payments/payment/",
        {"action": "release_held", "_selected_action": [held.pk, paid.pk]},
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any(paid.reference in m and "not held for review" in m for m in messages)
    paid.refresh_from_db()
    assert paid.status == "succeeded"


def test_only_risk_staff_may_decide_on_held_payments(client):
    payment = held_payment()
    client.force_login(UserFactory(is_staff=True, groups=["Support"]))
    page = client.get("/admin/payments/payment/", HTTP_ACCEPT_LANGUAGE="en")
    assert b"release_held" not in page.content
    client.post(
        "/admin/payments/payment/", {"action": "release_held", "_selected_action": [payment.pk]}
    )
    payment.refresh_from_db()
    assert payment.status == "review"


# --- refunds Support opens wait for Finance ------------------------------------------------------


@pytest.fixture
def support(client):
    client.force_login(UserFactory(is_staff=True, groups=["Support"]))
    return client


def test_a_refund_support_opens_waits_for_finance_and_reaches_no_channel(support):
    payment = paid_payment()
    response = support.post(
        f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "30.00", "reason": "buyer says code used"},
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )
    assert any("Finance" in str(m) for m in response.context["messages"])
    refund = Refund.objects.get()
    assert refund.status == "requested" and refund.requested_by is not None
    assert FakeBackend.refunds == {}  # nothing sent to the channel
    payment.refresh_from_db()
    assert payment.refunded_amount == 0


def test_a_requested_refund_counts_against_what_is_left(support):
    payment = paid_payment()
    support.post(
        f"/admin/payments/payment/{payment.pk}/refund/", {"amount": "60.00", "reason": "first"}
    )
    response = support.post(
        f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "30.00", "reason": "second"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert b"exceeds" in response.content and Refund.objects.count() == 1


def test_finance_approves_a_requested_refund_and_it_is_sent(
    support, client, django_capture_on_commit_callbacks
):
    payment = paid_payment()
    support.post(
        f"/admin/payments/payment/{payment.pk}/refund/", {"amount": "30.00", "reason": "code used"}
    )
    refund = Refund.objects.get()
    client.force_login(UserFactory(is_staff=True, groups=["Finance"]))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/payments/refund/",
            {"action": "approve_requested", "_selected_action": [refund.pk]},
        )
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.approved_by is not None
    assert FakeBackend.refunds == {refund.refund_no: Decimal("30.00")}


def test_finance_declines_a_requested_refund(support, client):
    payment = paid_payment()
    support.post(
        f"/admin/payments/payment/{payment.pk}/refund/", {"amount": "30.00", "reason": "code used"}
    )
    client.force_login(UserFactory(is_staff=True, groups=["Finance"]))
    client.post(
        "/admin/payments/refund/",
        {
            "action": "decline_requested",
            "_selected_action": [Refund.objects.get().pk],
            "reason": "the code works",
        },
    )
    refund = Refund.objects.get()
    assert refund.status == "declined" and FakeBackend.refunds == {}
    assert refund.decision_note == "the code works"
    # Declined money is free to refund again.
    client.force_login(UserFactory(is_staff=True, groups=["Support"]))
    client.post(
        f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "80.00", "reason": "whole order"},
    )
    assert Refund.objects.filter(status="requested", amount=Decimal("80.00")).exists()


def test_support_cannot_approve_its_own_refunds(support):
    payment = paid_payment()
    support.post(
        f"/admin/payments/payment/{payment.pk}/refund/", {"amount": "30.00", "reason": "code used"}
    )
    support.post(
        "/admin/payments/refund/",
        {"action": "approve_requested", "_selected_action": [Refund.objects.get().pk]},
    )
    assert Refund.objects.get().status == "requested"
