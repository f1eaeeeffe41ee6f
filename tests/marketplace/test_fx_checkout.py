"""A buyer abroad pays in their own currency through the sandbox: the API and the order page
show the same converted price before paying, the channel is asked for the foreign amount,
the journal keeps CNY with the exchange difference, refunds return the same foreign amount,
and a stale rate or a method that cannot charge the currency changes nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from payments import fx, ledger
from payments.models import FxRate, JournalLine, Payment, Refund
from payments.sandbox.models import SandboxRefund, SandboxTrade
from payments.sandbox.provisioning import demo_channels_ensure
from tests.accounts.factories import UserFactory
from tests.marketplace.factories import BrandFactory
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db

ABROAD = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}
USD_RATE = Decimal("7.1375")  # the demo rate table's


@pytest.fixture
def shop():
    demo_channels_ensure()
    from payments.models import ChannelAccount

    ChannelAccount.objects.filter(code__in=["bank-polypay", "aggregator"]).update(enabled=False)
    brand = BrandFactory(slug="test-card", name="Test Card", code_min_length=10, code_max_length=32)
    seller, buyer = APIClient(), APIClient()
    seller.force_authenticate(UserFactory(username="fx-seller"))
    buyer_user = UserFactory(username="fx-buyer", email="buyer@example.com")
    buyer.force_authenticate(buyer_user)
    return brand, seller, buyer, buyer_user


def order_of(shop, code="FXCODE000001"):
    brand, seller, buyer, _user = shop
    listing = seller.post(
        "/api/v1/listings/",
        {
            "brand": brand.pk,
            "face_value": "100.00",
            "price": "92.00",
            "codes": [{"code": code, "pin": "1234"}],
        },
        format="json",
    )
    assert listing.status_code == 201, listing.content
    order = buyer.post(
        "/api/v1/orders/", {"listing": listing.json()["id"], "quantity": 1}, format="json"
    )
    assert order.status_code == 201, order.content
    return order.json()["number"]


def pay(buyer, number, method, currency=None):
    body = {"method": method} if currency is None else {"method": method, "currency": currency}
    return buyer.post(f"/api/v1/orders/{number}/pay/", body, format="json", **ABROAD)


def test_the_api_and_the_page_show_the_same_converted_price_before_paying(shop, client):
    number = order_of(shop)
    data = shop[2].get(f"/api/v1/orders/{number}/", **ABROAD).json()
    offer = data["currencies"]
    assert offer["currency"] == "CNY" and offer["preferred_currency"] == "USD"
    usd = next(p for p in offer["prices"] if p["currency"] == "USD")
    assert usd["amount"] == "12.89" == str(fx.to_foreign(Decimal("92.00"), USD_RATE, "USD"))
    assert (usd["cny_amount"], usd["rate"]) == ("92.00", "7.1375")
    assert {"card", "paypal"} <= set(usd["methods"]) and "alipay" not in usd["methods"]
    assert usd["text"].startswith("US$12.89 ≈ ¥92.00 at 7.1375, rate of ")

    client.force_login(shop[3])
    page = client.get(f"/orders/{number}/", **ABROAD).content.decode()
    assert usd["text"] in page
    assert 'name="currency"' in page and '<option value="USD" selected>' in page


def test_a_buyer_abroad_sees_card_and_paypal_first(shop, client):
    number = order_of(shop)
    client.force_login(shop[3])
    page = client.get(f"/orders/{number}/", **ABROAD).content.decode()
    at = {m: page.index(f'value="{m}"') for m in ("card", "paypal", "alipay", "wechatpay")}
    assert max(at["card"], at["paypal"]) < min(at["alipay"], at["wechatpay"]), at


@pytest.mark.parametrize(
    ("method", "currency"), [("card", "USD"), ("paypal", "USD"), ("paypal", None)]
)
def test_paying_in_usd_charges_the_foreign_amount_and_the_journal_keeps_cny(
    shop, client, django_capture_on_commit_callbacks, method, currency
):
    number = order_of(shop, f"FX{method.upper()}{currency or 'AUTO'}01")
    answer = pay(shop[2], number, method, currency)
    assert answer.status_code == 200, answer.content
    payment_data = answer.json()["payment"]
    charge = payment_data["charge"]
    assert (charge["currency"], charge["amount"], charge["rate"]) == ("USD", "12.89", "7.1375")
    assert payment_data["amount"] == "92.00" and payment_data["currency"] == "CNY"

    payment = Payment.objects.get(public_id=payment_data["id"])
    attempt = payment.attempts.get()
    assert (attempt.amount, attempt.currency) == (Decimal("92.00"), "CNY")
    assert (attempt.charge_amount, attempt.charge_currency) == (Decimal("12.89"), "USD")
    assert attempt.fx_rate == USD_RATE and attempt.fx_rate_at is not None
    assert attempt.fx_source == "sandbox demo rate"
    trade = SandboxTrade.objects.get(out_trade_no=attempt.out_trade_no)
    assert (trade.amount, trade.currency) == (Decimal("12.89"), "USD")

    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(payment_data["action"], "approve")
    order = shop[2].get(f"/api/v1/orders/{number}/").json()
    assert order["status"] == "delivered", order
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and not attempt.flagged

    receivable = JournalLine.objects.get(
        entry__key=f"capture:{attempt.out_trade_no}",
        account__code=ledger.channel_receivable(attempt.account.code),
        amount__gt=0,
    )
    # US$12.89 at 7.1375 is ¥92.00 (92.002375): no exchange difference on this one
    assert receivable.amount == Decimal("92.00") and receivable.currency == "CNY"
    assert (receivable.foreign_amount, receivable.foreign_currency) == (Decimal("12.89"), "USD")
    assert ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0


@pytest.mark.parametrize("method", ["card", "paypal"])
def test_refunds_return_the_same_usd_amount_in_part_and_in_full(
    shop, client, django_capture_on_commit_callbacks, method
):
    from payments import services

    number = order_of(shop, f"FXREFUND{method.upper()}")
    payment_data = pay(shop[2], number, method, "USD").json()["payment"]
    with django_capture_on_commit_callbacks(execute=True):
        Payer(client).decide(payment_data["action"], "approve")
    payment = Payment.objects.get(public_id=payment_data["id"])
    clerk = UserFactory(is_staff=True, groups=["Finance"])

    with django_capture_on_commit_callbacks(execute=True):
        part = services.refund_request(
            payment=payment, amount=Decimal("30.00"), reason="goodwill", requested_by=clerk
        )
    part.refresh_from_db()
    # 30/92 of US$12.89 = 4.2033 → US$4.20
    assert (part.amount, part.charge_amount, part.charge_currency) == (
        Decimal("30.00"),
        Decimal("4.20"),
        "USD",
    )
    assert part.status == "succeeded", part.error
    with django_capture_on_commit_callbacks(execute=True):
        rest = services.refund_request(
            payment=payment, amount=Decimal("62.00"), reason="goodwill", requested_by=clerk
        )
    rest.refresh_from_db()
    assert rest.charge_amount == Decimal("8.69") and rest.status == "succeeded", rest.error
    at_channel = SandboxRefund.objects.filter(
        trade__out_trade_no=payment.attempts.get().out_trade_no
    )
    assert sorted(r.amount for r in at_channel) == [Decimal("4.20"), Decimal("8.69")]
    assert sum(r.charge_amount for r in Refund.objects.filter(payment=payment)) == Decimal("12.89")
    payment.refresh_from_db()
    assert payment.status == "refunded" and payment.refunded_amount == Decimal("92.00")
    # the channel holds nothing for this payment but its fee (booked in CNY from the fee
    # expected in USD); the refunds' roundings at the capture's rate (US$4.20 = ¥29.98 for
    # ¥30.00, US$8.69 = ¥62.02 for ¥62.00) cancel out
    attempt = payment.attempts.get()
    assert attempt.fee == fx.to_cny(attempt.charge_fee, USD_RATE)
    assert ledger.balance(ledger.channel_receivable(method)) == -attempt.fee
    fx_lines = JournalLine.objects.filter(account__code=ledger.FX_DIFFERENCES)
    assert sorted(line.amount for line in fx_lines) == [Decimal("-0.02"), Decimal("0.02")]
    assert ledger.balance(ledger.FX_DIFFERENCES) == 0
    assert ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0

    client.force_login(shop[3])
    page = client.get(f"/orders/{number}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "US$12.89 ≈ ¥92.00 at 7.1375" in page  # what was charged, on the order
    assert "(US$4.20)" in page and "(US$8.69)" in page  # and what each refund returned


def test_a_stale_rate_is_refused_in_the_buyers_language_and_nothing_is_charged(shop, client):
    FxRate.objects.filter(currency="USD").update(
        as_of=FxRate.objects.get(currency="USD").as_of - dt.timedelta(days=2)
    )
    number = order_of(shop, "FXSTALE00001")
    answer = pay(shop[2], number, "card", "USD")
    assert answer.status_code == 400, answer.content
    assert (
        "out of date" in answer.json()["detail"]
        and "Nothing was charged" in answer.json()["detail"]
    )
    assert not Payment.objects.exists() and not SandboxTrade.objects.exists()
    assert shop[2].get(f"/api/v1/orders/{number}/").json()["status"] == "awaiting_payment"
    # the page says so before paying; in CNY it still pays
    client.force_login(shop[3])
    page = client.get(f"/orders/{number}/", **ABROAD).content.decode()
    assert 'data-testid="fx-unavailable-USD"' in page and "out of date" in page
    assert pay(shop[2], number, "card").status_code == 200


def test_a_method_that_cannot_charge_the_currency_is_refused_naming_what_it_can(shop):
    number = order_of(shop, "FXALIPAY0001")
    answer = pay(shop[2], number, "alipay", "USD")
    assert answer.status_code == 400
    body = answer.json()
    assert body["allowed"] == ["CNY"] and "cannot charge USD" in body["detail"]
    assert not Payment.objects.exists()


def test_the_page_and_the_api_charge_the_same(shop, client):
    number = order_of(shop, "FXPAGE000001")
    client.force_login(shop[3])
    response = client.post(
        f"/orders/{number}/pay/", {"method": "card", "currency": "USD"}, **ABROAD
    )
    assert response.status_code in (200, 302), response.content
    payment = Payment.objects.get()
    assert (payment.charge_amount, payment.charge_currency, payment.fx_rate) == (
        Decimal("12.89"),
        "USD",
        USD_RATE,
    )


def test_a_buyer_at_home_is_told_paypal_charges_usd_and_pays_the_converted_amount(shop, client):
    number = order_of(shop, "FXCHINA00001")
    client.force_login(shop[3])
    home = {"HTTP_ACCEPT_LANGUAGE": "en"}  # no region: the price stays in CNY
    page = client.get(f"/orders/{number}/", **home).content.decode()
    assert '<option value="CNY" selected>' in page
    assert "PayPal charges US$12.89 ≈ ¥92.00 at 7.1375" in page
    answer = shop[2].post(
        f"/api/v1/orders/{number}/pay/", {"method": "paypal"}, format="json", **home
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["payment"]["charge"]["amount"] == "12.89"


def test_a_buyer_who_prefers_euros_in_their_settings_sees_euros_first(shop, client):
    user = shop[3]
    client.force_login(user)
    response = client.post(
        "/accounts/settings/",
        {"display_name": "", "email": user.email, "preferred_currency": "EUR"},
    )
    assert response.status_code == 302, response.content
    user.refresh_from_db()  # a real API request reads its user afresh; this client holds one
    number = order_of(shop, "FXEURO000001")
    data = shop[2].get(f"/api/v1/orders/{number}/", HTTP_ACCEPT_LANGUAGE="en").json()
    assert data["currencies"]["preferred_currency"] == "EUR"
    euro = next(p for p in data["currencies"]["prices"] if p["currency"] == "EUR")
    assert set(euro["methods"]) == {"card", "card_instalments"}  # PayPal charges USD only
    assert euro["amount"] == str(fx.to_foreign(Decimal("92.00"), Decimal("7.7410"), "EUR"))
    # the preference places the buyer abroad: card and PayPal lead, priced in euros
    page = client.get(f"/orders/{number}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    at = {m: page.index(f'value="{m}"') for m in ("card", "paypal", "alipay", "wechatpay")}
    assert max(at["card"], at["paypal"]) < min(at["alipay"], at["wechatpay"]), at
    assert '<option value="EUR" selected>' in page and euro["text"] in page


def test_a_rate_that_changed_since_it_was_shown_is_refused_with_the_new_price(shop, client):
    import re

    number = order_of(shop, "FXRATECHG001")
    client.force_login(shop[3])
    page = client.get(f"/orders/{number}/", **ABROAD).content.decode()
    shown = re.search(r'name="fx_rates" value="([^"]*)"', page).group(1)
    assert "USD:7.1375" in shown
    FxRate.objects.filter(currency="USD").update(rate=Decimal("7.2000"))

    response = client.post(
        f"/orders/{number}/pay/",
        {"method": "card", "currency": "USD", "fx_rates": shown},
        follow=True,
        **ABROAD,
    )
    text = response.content.decode()
    assert "rate changed since the page was shown" in text and "US$12.78" in text
    assert not Payment.objects.exists()

    api = shop[2]
    stale = pay_with_rate(api, number, "7.1375")
    assert stale.status_code == 400 and stale.json()["allowed"] == ["7.2000"]
    assert not Payment.objects.exists()
    fresh = pay_with_rate(api, number, "7.2000")
    assert fresh.status_code == 200 and fresh.json()["payment"]["charge"]["amount"] == "12.78"


def pay_with_rate(api, number, rate):
    body = {"method": "card", "currency": "USD", "rate": rate}
    return api.post(f"/api/v1/orders/{number}/pay/", body, format="json", **ABROAD)


WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47 NetType/WIFI Language/en"
)


def test_inside_wechat_an_english_buyer_starts_in_cny_so_wechat_pay_just_pays(shop):
    number = order_of(shop)
    headers = {**ABROAD, "HTTP_USER_AGENT": WECHAT_UA}
    data = shop[2].get(f"/api/v1/orders/{number}/", **headers).json()
    # WeChat Pay leads inside WeChat and charges only CNY: nothing foreign is preselected
    assert data["currencies"]["preferred_currency"] == "CNY"
    # while the same buyer in an ordinary browser is offered their own currency first
    assert (
        shop[2]
        .get(f"/api/v1/orders/{number}/", **ABROAD)
        .json()["currencies"]["preferred_currency"]
        == "USD"
    )


def test_while_a_payment_waits_at_its_channel_the_order_poll_carries_no_offer(
    shop, django_assert_max_num_queries
):
    """A client polling for the outcome of a payment it started is not made to compute the
    checkout offer; once that payment fails, the buyer can choose again and the prices are
    back."""
    buyer = shop[2]
    number = order_of(shop)
    started = pay(buyer, number, "alipay")
    assert started.status_code in (200, 201) and started.json()["payment"]["status"] == "pending"
    with django_assert_max_num_queries(2):  # the order, whether a payment waits
        polled = buyer.get(f"/api/v1/orders/{number}/", **ABROAD)
    assert polled.status_code == 200 and "currencies" not in polled.json()
    assert polled.json()["status"] == "awaiting_payment"
    Payment.objects.filter(reference=f"order:{number}").update(status="failed")
    again = buyer.get(f"/api/v1/orders/{number}/", **ABROAD).json()
    assert again["currencies"]["preferred_currency"] == "USD"
