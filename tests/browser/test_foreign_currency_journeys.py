"""A buyer abroad in real Chromium: the order page shows the price in US dollars next to the
CNY one before paying, and the buyer pays in USD by PayPal and by card through the sandbox;
the journal balances in CNY with the foreign amounts recorded."""

import re
from decimal import Decimal

import pytest

from tests.browser.pages import DESKTOP, buy, complete_payment, log_in, methods_shown, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.django_db(transaction=True),
]

# A buyer in the United States reading English: the trusted proxy says where they are.
ABROAD = {**DESKTOP, "extra_http_headers": {"X-Country-Code": "US"}}


@pytest.mark.parametrize("method", ["paypal", "card"])
def test_a_buyer_abroad_sees_both_amounts_and_pays_in_usd(browser, shop, site, method):
    from payments import ledger
    from payments.models import JournalLine, Payment
    from payments.sandbox.models import SandboxTrade

    if method not in shop["payable"]:
        pytest.skip(f"no sandbox channel for {method} in this tree")
    page = browser.new_context(**ABROAD).new_page()
    log_in(page, site.url, "buyer")
    buy(page, site.url)

    shown = methods_shown(page)
    assert {"card", "paypal"} <= set(shown[:2]), shown  # card and PayPal lead abroad
    price = page.get_by_test_id("fx-price-USD")
    # ¥95.00 at the demo rate 7.1375 is US$13.31 (13.3100…)
    assert re.match(r"US\$13\.31 ≈ ¥95\.00 at 7\.1375, rate of \d\d:\d\d", price.inner_text()), (
        price.inner_text()
    )
    assert page.get_by_test_id("currency").input_value() == "USD"
    shot(page, f"checkout-abroad-{method}")

    page.get_by_test_id(f"method-{method}").click()
    page.get_by_test_id("pay").click()
    complete_payment(browser, page, approve=True)
    page.get_by_test_id("card-code").first.wait_for(timeout=20_000)
    assert page.get_by_test_id("order-status").get_attribute("data-state") == "delivered"
    shot(page, f"delivery-abroad-{method}")

    payment = Payment.objects.get(method=method)
    attempt = payment.attempts.get(status="succeeded")
    assert (payment.amount, payment.currency) == (Decimal("95.00"), "CNY")
    assert (attempt.charge_amount, attempt.charge_currency) == (Decimal("13.31"), "USD")
    assert attempt.fx_rate == Decimal("7.1375") and attempt.fx_rate_at is not None
    trade = SandboxTrade.objects.get(out_trade_no=attempt.out_trade_no)
    assert (trade.amount, trade.currency) == (Decimal("13.31"), "USD")
    line = JournalLine.objects.get(
        entry__key=f"capture:{attempt.out_trade_no}",
        account__code=ledger.channel_receivable(attempt.account.code),
        amount__gt=0,
    )
    # US$13.31 at 7.1375 = ¥95.00 (94.999…): what the channel holds, in CNY
    assert (line.amount, line.foreign_amount, line.foreign_currency) == (
        Decimal("95.00"),
        Decimal("13.31"),
        "USD",
    )
    assert ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0
