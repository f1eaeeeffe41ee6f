from decimal import Decimal

import pytest

from payments import ledger
from payments.models import ChannelAccount
from tests.accounts.factories import UserFactory
from tests.payments.fakes import FakeBackend, notification

pytestmark = pytest.mark.django_db


def test_wallet_page_shows_the_balance_from_the_journal(client):
    buyer = UserFactory()
    ledger.post(
        key="t",
        kind="wallet_topup",
        lines=[(ledger.CLEARING, Decimal("42")), (ledger.buyer_wallet(buyer.id), Decimal("-42"))],
    )
    client.force_login(buyer)
    page = client.get("/wallet/")
    assert page.status_code == 200 and "¥42.00" in page.content.decode()


def test_top_up_through_another_method_credits_the_wallet_once_paid(client):
    FakeBackend.reset()
    ChannelAccount.objects.create(
        code="fa",
        name="fa",
        backend="fake",
        methods=["alipay"],
        base_url="https://fake.example/",
        fee_percent=0,
    )
    buyer = UserFactory()
    client.force_login(buyer)
    response = client.post("/wallet/", {"amount": "50.00", "method": "alipay"})
    assert response.status_code == 302
    status_page = client.get(response["Location"])
    assert b"fake.example/pay/" in status_page.content
    attempt = buyer.payments.get().attempts.get()
    body, headers = notification(attempt.out_trade_no, "50.00")
    client.post("/payments/notify/fa/", body, content_type="application/json", **headers)
    assert ledger.balance(ledger.buyer_wallet(buyer.id), natural=True) == Decimal("50.00")
    assert ledger.journal_total() == 0


def test_someone_elses_top_up_is_not_found(client):
    other = UserFactory()
    client.force_login(UserFactory())
    from payments.models import Payment

    payment = Payment.objects.create(
        reference="topup:x", buyer=other, method="alipay", amount=Decimal("1.00")
    )
    assert client.get(f"/wallet/topups/{payment.public_id}/").status_code == 404


def test_the_statement_names_each_movement_in_words_with_yuan_and_links_the_order(client, settings):
    from django.utils import translation

    buyer = UserFactory()
    wallet = ledger.buyer_wallet(buyer.id)
    ledger.post(
        key="t1",
        kind="wallet_topup",
        reference="topup:abc",
        lines=[(ledger.CLEARING, Decimal("1500")), (wallet, Decimal("-1500"))],
    )
    ledger.post(
        key="t2",
        kind="payment_captured",
        reference="order:N0RDER1234",
        lines=[(wallet, Decimal("880")), (ledger.CLEARING, Decimal("-880"))],
    )
    ledger.post(
        key="t3",
        kind="refund",
        reference="order:N0RDER1234",
        lines=[(ledger.CLEARING, Decimal("88")), (wallet, Decimal("-88"))],
    )
    client.force_login(buyer)
    with translation.override("en"):
        html = client.get("/wallet/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Top-up" in html and "Paid for an order" in html and "Refund" in html
    assert "¥1,500.00" in html and "-¥880.00" in html and "¥88.00" in html
    assert 'href="/orders/N0RDER1234/"' in html
    for raw in ("wallet_topup", "payment_captured"):
        assert raw not in html


def test_the_balance_channels_own_movements_link_the_order_they_paid_or_refunded(client):
    """The balance channel posts under the attempt's out_trade_no, not the payment's
    reference: the statement still finds the order through the attempt."""
    from payments.models import Attempt
    from tests.payments.factories import PaymentFactory

    buyer = UserFactory()
    wallet = ledger.buyer_wallet(buyer.id)
    payment = PaymentFactory(reference="order:BALANCE0001", buyer=buyer, method="balance")
    account = ChannelAccount.objects.create(
        code="bal", name="bal", backend="balance", methods=["balance"], base_url="", fee_percent=0
    )
    attempt = Attempt.objects.create(
        payment=payment, account=account, method="balance", amount=payment.amount
    )
    ledger.post(
        key="c1",
        kind="payment_captured",
        reference=attempt.out_trade_no,
        lines=[(wallet, Decimal("95")), (ledger.CLEARING, Decimal("-95"))],
    )
    ledger.post(
        key="r1",
        kind="refund",
        reference=attempt.out_trade_no,
        lines=[(ledger.CLEARING, Decimal("30")), (wallet, Decimal("-30"))],
    )
    client.force_login(buyer)
    html = client.get("/wallet/").content.decode()
    assert html.count('href="/orders/BALANCE0001/"') == 2
