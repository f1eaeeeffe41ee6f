"""Foreign currencies, unit by unit: minor-unit rounding, the rate table and its staleness,
what channel accounts may charge, the journal's exchange differences and refund shares."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone
from django.utils.translation import override

from payments import fx, ledger
from payments.models import Attempt, ChannelAccount, FxRate, JournalLine
from payments.money import format_money, round_minor
from payments.services import postings
from tests.payments.factories import DEFAULT_METHODS, PaymentFactory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("13.8704", "USD", "13.87"),
        ("13.875", "USD", "13.88"),  # half-up, never banker's rounding
        ("2071.13", "JPY", "2071.00"),  # no decimals
        ("2071.5", "JPY", "2072.00"),
        ("1.23456", "KWD", "1.235"),  # three decimals
        ("12.785", "EUR", "12.79"),
    ],
)
def test_amounts_round_half_up_to_the_currencys_minor_unit(amount, currency, expected):
    assert round_minor(D(amount), currency) == D(expected)
    assert str(round_minor(D(amount), currency)) == expected


def test_the_cny_price_converts_at_cny_per_unit():
    assert fx.to_foreign(D("99.00"), D("7.1375"), "USD") == D("13.87")
    assert fx.to_foreign(D("99.00"), D("0.0478"), "JPY") == D("2071.00")
    assert fx.to_cny(D("13.87"), D("7.1375")) == D("99.00")  # 98.997125
    assert fx.to_cny(D("2071"), D("0.0478")) == D("98.99")  # 98.9938


def test_money_is_shown_with_the_currencys_own_decimals():
    assert format_money(D("2071.00"), "JPY") == "JP¥2,071"
    assert format_money(D("13.87"), "USD") == "US$13.87"
    assert format_money(D("-62.64")) == "-¥62.64"


def rate(currency="USD", value="7.1375", age=dt.timedelta(0)):
    return FxRate.objects.create(currency=currency, rate=D(value), as_of=timezone.now() - age)


def test_a_fresh_rate_quotes_with_its_time_and_source():
    row = rate()
    quote = fx.quote("usd")
    assert (quote.currency, quote.rate, quote.at) == ("USD", D("7.1375"), row.as_of)
    assert quote.source == "rate table"
    price = fx.price(D("99.00"), "USD")
    local = timezone.localtime(row.as_of).strftime("%H:%M")
    with override("en"):
        assert price.text == f"US$13.87 ≈ ¥99.00 at 7.1375, rate of {local}"


@override_settings(PAYMENTS_FX_MAX_AGE=3600)
def test_a_rate_older_than_the_max_age_is_refused_in_the_buyers_language():
    rate(age=dt.timedelta(hours=2))
    with override("en"), pytest.raises(fx.RateUnavailable) as english:
        fx.quote("USD")
    assert "out of date" in english.value.message and "Nothing was charged" in english.value.message
    with override("zh-hans"), pytest.raises(fx.RateUnavailable) as chinese:
        fx.quote("USD")
    assert "汇率" in chinese.value.message


def test_no_rate_at_all_is_refused():
    with override("en"), pytest.raises(fx.RateUnavailable, match="no exchange rate for GBP"):
        fx.quote("GBP")


class FixedRates:
    """A provider plug-in as a feed would be: answers every currency at 7.0 as of now."""

    def quote(self, currency):
        return fx.Quote(currency=currency, rate=D("7.0"), at=timezone.now(), source="feed")


@override_settings(PAYMENTS_FX_PROVIDER="tests.payments.test_fx.FixedRates")
def test_the_rate_source_is_the_class_the_setting_names():
    quote = fx.quote("CHF")
    assert (quote.rate, quote.source) == (D("7.0"), "feed")


@override_settings(PAYMENTS_FX_MAX_AGE=3600)
def test_an_offer_prices_every_currency_from_one_read_of_the_rates(django_assert_num_queries):
    """The checkout prices in all its currencies at once: one query for the table, each
    currency without a fresh rate kept aside with the buyer's message."""
    rate("USD", "7.1375")
    rate("EUR", "7.741")
    rate("GBP", "9.0", age=dt.timedelta(hours=2))
    with django_assert_num_queries(1), override("en"):
        prices, unavailable = fx.prices(D("99.00"), ["EUR", "GBP", "JPY", "usd"])
    assert list(prices) == ["EUR", "USD"]
    assert prices["USD"].amount == fx.price(D("99.00"), "USD").amount == D("13.87")
    assert prices["EUR"].quote.rate == D("7.741")
    assert "out of date" in unavailable["GBP"] and "no exchange rate for JPY" in unavailable["JPY"]


@override_settings(PAYMENTS_FX_PROVIDER="tests.payments.test_fx.FixedRates")
def test_a_rate_source_with_only_quote_prices_each_currency_it_is_asked():
    prices, unavailable = fx.prices(D("70.00"), ["CHF", "USD"])
    assert {code: price.amount for code, price in prices.items()} == {
        "CHF": D("10.00"),
        "USD": D("10.00"),
    }
    assert unavailable == {}


def AccountFactory(*, code, backend, currencies):  # noqa: N802 -- reads as the factories do
    return ChannelAccount.objects.create(
        code=code,
        name=code,
        backend=backend,
        methods=[str(m) for m in DEFAULT_METHODS[backend]],
        base_url="https://channel.example/",
        currencies=currencies,
    )


def test_card_and_paypal_accounts_may_list_foreign_currencies_cny_wallets_may_not():
    AccountFactory(code="card-x", backend="card", currencies=["CNY", "USD", "JPY"]).full_clean()
    AccountFactory(code="pp-x", backend="paypal", currencies=["USD"]).full_clean()
    with override("en"), pytest.raises(ValidationError, match="charges only CNY"):
        AccountFactory(code="wx-x", backend="wechatpay", currencies=["USD"]).full_clean()
    with override("en"), pytest.raises(ValidationError, match="cannot charge TWD"):
        AccountFactory(code="pp-y", backend="paypal", currencies=["TWD"]).full_clean()
    with override("en"), pytest.raises(ValidationError, match="three decimals"):
        AccountFactory(code="card-y", backend="card", currencies=["KWD"]).full_clean()


def foreign_attempt(cny="99.00", currency="JPY", rate_value="0.0478", fee="0.00"):
    payment = PaymentFactory(amount=D(cny), status="succeeded")
    charged = fx.to_foreign(D(cny), D(rate_value), currency)
    fields = {
        "charge_currency": currency,
        "charge_amount": charged,
        "fx_rate": D(rate_value),
        "fx_rate_at": timezone.now(),
        "fx_source": "rate table",
    }
    for name, value in fields.items():
        setattr(payment, name, value)
    payment.save()
    account = AccountFactory(code="card-fx", backend="card", currencies=["CNY", currency])
    return Attempt.objects.create(
        payment=payment,
        account=account,
        method="card",
        amount=D(cny),
        fee=D(fee),
        status="succeeded",
        **fields,
    )


def test_a_foreign_capture_balances_in_cny_with_the_rounding_as_an_exchange_difference():
    attempt = foreign_attempt()  # JP¥2071 at 0.0478 = ¥98.99 for a ¥99.00 order
    entry = postings.capture_post(attempt)
    lines = {line.account.code: line for line in entry.lines.select_related("account")}
    receivable = lines[ledger.channel_receivable("card-fx")]
    assert receivable.amount == D("98.99") and receivable.currency == "CNY"
    assert (receivable.foreign_amount, receivable.foreign_currency) == (D("2071.00"), "JPY")
    assert receivable.fx_rate == D("0.0478")
    assert lines[ledger.CLEARING].amount == D("-99.00")
    assert lines[ledger.FX_DIFFERENCES].amount == D("0.01")  # a loss of one fen
    assert ledger.unbalanced_entries() == 0 and ledger.journal_total() == 0


def test_refund_shares_add_up_to_exactly_what_was_charged():
    share = fx.refund_share
    common = {"cny_total": D("99.00"), "charged": D("13.87"), "currency": "USD"}
    first = share(cny_amount=D("33.00"), already=D("0"), committed=D("0"), **common)
    second = share(cny_amount=D("33.00"), already=first, committed=D("33.00"), **common)
    third = share(cny_amount=D("33.00"), already=first + second, committed=D("66.00"), **common)
    assert (first, second, third) == (D("4.62"), D("4.63"), D("4.62"))
    assert first + second + third == D("13.87")
    whole = share(cny_amount=D("99.00"), already=D("0"), committed=D("0"), **common)
    assert whole == D("13.87")


def test_a_foreign_refund_books_the_exchange_difference_back():
    attempt = foreign_attempt()
    postings.capture_post(attempt)
    refund = attempt.refunds.create(
        payment=attempt.payment,
        amount=D("99.00"),
        charge_amount=D("2071.00"),
        charge_currency="JPY",
        status="succeeded",
        reason="r",
    )
    postings.refund_sent_post(refund)
    postings.refund_post(refund)
    assert ledger.balance(ledger.channel_receivable("card-fx")) == 0
    assert ledger.balance(ledger.FX_DIFFERENCES) == 0
    assert ledger.balance(ledger.CLEARING) == D("0.00")
    assert ledger.unbalanced_entries() == 0
    sent = JournalLine.objects.get(
        entry__key=f"refund-sent:{refund.refund_no}", account__code=ledger.REFUNDS_IN_FLIGHT
    )
    assert (sent.foreign_amount, sent.foreign_currency) == (D("2071.00"), "JPY")


def test_finance_sets_a_rate_in_the_admin_and_it_records_who_and_when(client):
    from tests.accounts.factories import UserFactory

    clerk = UserFactory(is_staff=True, groups=["Finance"])
    client.force_login(clerk)
    before = timezone.now()
    response = client.post(
        "/admin/payments/fxrate/add/", {"currency": "usd", "rate": "7.2001", "source": ""}
    )
    assert response.status_code == 302, response.content
    row = FxRate.objects.get()
    assert (row.currency, row.rate, row.updated_by) == ("USD", D("7.2001"), clerk)
    assert row.as_of >= before and row.source == "rate table"
    assert fx.quote("USD").rate == D("7.2001")
    listing = client.get("/admin/payments/fxrate/").content.decode()
    assert "7.2001" in listing and clerk.username in listing
