"""The buyer's order page: one page from choosing a method to seeing the codes.

Payments are set up in the states the platform leaves them in (pending with an action,
failed with a reason, challenge, …) so each page state is tested on its own; the journeys
through real channels are in tests/browser/ and at the end of this module.
"""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from marketplace import checkout
from marketplace.code_formats import CodeInput
from marketplace.models import Brand, Order, RevealAudit
from marketplace.services import checkout as checkout_service
from marketplace.services import listing_create, order_create, order_payment_succeeded
from payments import ledger
from payments.client import Client as PaymentClient
from payments.client import DeviceInfo, RegionInfo
from payments.models import Attempt, ChannelAccount, Method, Payment
from payments.ordering import checkout_context, rank_methods
from payments.services import PaymentError
from payments.states import AttemptStatus, PaymentStatus
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
)
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
HTMX = {"HTTP_HX_REQUEST": "true"}


# --- set-up ---------------------------------------------------------------------------------------


@pytest.fixture
def channels():
    """One healthy account per method, as seed_demo configures them."""
    rows = [
        ("alipay", [Method.ALIPAY]),
        ("wechatpay", [Method.WECHATPAY]),
        ("unionpay", [Method.UNIONPAY]),
        ("ecny", [Method.ECNY]),
        ("paypal", [Method.PAYPAL]),
        ("card", [Method.CARD, Method.CARD_INSTALMENTS]),
        ("balance", [Method.BALANCE]),
    ]
    return {
        code: ChannelAccount.objects.create(
            code=code,
            name=code,
            backend=code,
            methods=methods,
            base_url=f"http://testserver/sandbox/{code}/",
        )
        for code, methods in rows
    }


@pytest.fixture
def brand():
    return Brand.objects.create(
        name="Test Card", slug="test-card", category="shopping", guarantee_hours=72
    )


def make_order(
    brand, buyer, *, price="95.00", face="100.00", codes=("TESTCODE000001",), quantity=1
):
    seller = UserFactory()
    listing = listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal(face),
        price=Decimal(price),
        codes=[CodeInput(code=c, pin="1234") for c in codes],
    )
    return order_create(buyer=buyer, listing=listing, quantity=quantity)


@pytest.fixture
def buyer():
    return UserFactory(username="buyer")


@pytest.fixture
def order(brand, buyer, channels):
    return make_order(brand, buyer)


@pytest.fixture
def buyer_client(client, buyer):
    client.force_login(buyer)
    return client


def url(order, name="order_detail"):
    return reverse(f"marketplace:{name}", args=[order.number])


def make_payment(
    order,
    *,
    method=Method.ALIPAY,
    status=PaymentStatus.PENDING,
    action=None,
    account="alipay",
    **fields,
):
    payment = Payment.objects.create(
        reference=order.payment_reference,
        buyer=order.buyer,
        method=method,
        amount=order.amount,
        currency=order.currency,
        status=status,
        expires_at=order.expires_at,
        **fields,
    )
    Attempt.objects.create(
        payment=payment,
        account=ChannelAccount.objects.get(code=account),
        method=method,
        amount=order.amount,
        status=AttemptStatus.PENDING if status == PaymentStatus.PENDING else AttemptStatus.FAILED,
        action=action or {},
    )
    return payment


QR_ACTION = {
    "type": "qr",
    "url": "http://testserver/sandbox/alipay/cashier/T1/",
    "qr": "https://qr.alipay.com/bax0001",
}


def method_ids(html: str, prefix: str) -> list[str]:
    return re.findall(rf'data-testid="{prefix}([a-z_]+)"', html)


def first_group(html: str) -> str:
    return html.split('class="more-methods"')[0]


# --- who may see it -------------------------------------------------------------------------------


def test_the_order_page_is_the_buyers_alone(client, order):
    client.force_login(UserFactory())
    for name in ("order_detail", "order_status"):
        assert client.get(url(order, name)).status_code == 404
    for name in ("order_pay", "order_challenge", "order_check"):
        assert client.post(url(order, name), {"method": "alipay"}).status_code == 404
    assert not Payment.objects.exists()


def test_staff_cannot_open_a_buyers_order_page_either(client, order):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(url(order)).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, order):
    response = client.get(url(order))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_pages_with_codes_are_never_cached(buyer_client, order):
    assert "no-store" in buyer_client.get(url(order))["Cache-Control"]


def test_paying_needs_the_csrf_token(buyer, order):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(buyer)
    assert strict.post(url(order, "order_pay"), {"method": "alipay"}).status_code == 403


# --- before paying --------------------------------------------------------------------------------


def test_the_page_states_amount_fee_guarantee_and_time_left(buyer_client, order):
    html = buyer_client.get(url(order), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "¥95.00" in html
    assert "72 hours" in html
    assert "data-countdown" in html and 'data-remaining="' in html
    assert 'data-testid="order-status"' in html


def test_the_method_list_shows_two_to_five_first_in_ranked_order_and_the_rest_behind_more(
    buyer_client, order
):
    html = buyer_client.get(url(order), HTTP_USER_AGENT=DESKTOP_UA).content.decode()
    shown = method_ids(first_group(html), "method-")
    assert 2 <= len(shown) <= 5
    everything = method_ids(html, "method-")
    assert len(everything) > len(shown)
    assert 'data-testid="more-methods"' in html
    assert 'data-testid="pay"' in html
    ranking = rank_methods(
        checkout_context(
            user=order.buyer,
            amount=order.amount,
            currency=order.currency,
            device=DeviceInfo("desktop"),
            region=RegionInfo(),
        )
    )
    assert everything == ranking.codes


def test_a_phone_puts_wallet_apps_first(buyer_client, order):
    html = buyer_client.get(url(order), HTTP_USER_AGENT=PHONE_UA).content.decode()
    assert method_ids(html, "method-")[0] in {"alipay", "wechatpay"}


def test_the_first_usable_method_is_preselected_so_one_click_pays(buyer_client, order):
    html = buyer_client.get(url(order)).content.decode()
    first = method_ids(html, "method-")[0]
    assert re.search(rf'value="{first}" checked', html)


def test_a_method_over_its_limit_is_shown_disabled_with_the_reason(buyer_client, order, channels):
    ChannelAccount.objects.filter(code="wechatpay").update(max_amount=Decimal("50.00"))
    html = buyer_client.get(url(order)).content.decode()
    item = html.split('data-testid="method-wechatpay"')[1].split("</label>")[0]
    assert "disabled" in item and "¥50.00" in item


def test_a_method_without_a_healthy_channel_is_not_offered(buyer_client, order, channels):
    from payments.models import ChannelHealth

    ChannelHealth.objects.create(account=channels["alipay"], breaker=ChannelHealth.Breaker.OPEN)
    html = buyer_client.get(url(order)).content.decode()
    assert "method-alipay" not in html


def test_the_balance_option_shows_the_available_balance(buyer_client, order, buyer):
    ledger.post(
        key=f"topup:{uuid.uuid4()}",
        kind="topup",
        lines=[
            (ledger.CLEARING, Decimal("120.00")),
            (ledger.buyer_wallet(buyer.pk), Decimal("-120.00")),
        ],
    )
    html = buyer_client.get(url(order), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    item = html.split('data-testid="method-balance"')[1].split("</label>")[0]
    assert "Available: ¥120.00" in item


def test_staff_buyers_see_why_each_method_is_where_it_is(client, brand, channels):
    staff = UserFactory(is_staff=True)
    order = make_order(brand, staff)
    client.force_login(staff)
    html = client.get(url(order), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert html.count('class="why staff-only"') >= len(method_ids(html, "method-"))
    assert "score" in html


def test_ordinary_buyers_do_not_see_the_ranking_reasons(buyer_client, order):
    assert "staff-only" not in buyer_client.get(url(order)).content.decode()


def test_large_orders_offer_instalment_plans_with_their_fees(client, brand, buyer, channels):
    order = make_order(brand, buyer, price="2000.00", face="2000.00")
    client.force_login(buyer)
    html = client.get(url(order), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert method_ids(html, "method-")[:2] == ["card_instalments", "card"]
    plans = html.split('data-testid="instalment-plans"')[1].split("</fieldset>")[0]
    assert "fee ¥45.00" in plans and "12 ×" in plans


# --- paying ---------------------------------------------------------------------------------------


@pytest.fixture
def fake_pay(monkeypatch):
    """order_pay as the shop's service answers it, without a channel: records what the one
    way in hands it after its checks."""
    calls = []

    def answer(action, status=PaymentStatus.PENDING):
        def order_pay(*, order, buyer, method, client, return_url, instalments=None, ordering=None):
            calls.append(
                {
                    "method": method,
                    "client": client,
                    "return_url": return_url,
                    "instalments": instalments,
                    "ordering": ordering,
                }
            )
            return make_payment(
                order,
                method=method,
                status=status,
                action=action,
                account="card" if "card" in method else method,
                client={"ordering": ordering} if ordering else {},
            )

        monkeypatch.setattr(checkout_service, "order_pay", order_pay)
        return calls

    return answer


def test_paying_with_htmx_swaps_in_the_qr_panel_without_a_page(buyer_client, order, fake_pay):
    calls = fake_pay(QR_ACTION)
    response = buyer_client.post(url(order, "order_pay"), {"method": "alipay"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.startswith('<div id="checkout-body"')
    assert "<svg" in html and 'class="qr-code"' in html
    assert QR_ACTION["qr"] in html and QR_ACTION["url"] in html
    assert 'hx-swap-oob="true"' in html and 'data-testid="order-status"' in html
    assert calls[0]["return_url"] == f"http://testserver/orders/{order.number}/"


def test_the_client_passed_to_the_platform_describes_the_buyers_device_and_region(
    buyer_client, order, fake_pay, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    calls = fake_pay(QR_ACTION)
    buyer_client.post(
        url(order, "order_pay"),
        {"method": "alipay"},
        HTTP_USER_AGENT=PHONE_UA,
        HTTP_X_COUNTRY_CODE="HK",
        HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.2",
        **HTMX,
    )
    client_info = calls[0]["client"]
    assert isinstance(client_info, PaymentClient)
    assert (client_info.device, client_info.region, client_info.ip) == ("phone", "HK", "10.0.0.2")


def test_without_javascript_a_redirect_channel_sends_the_buyer_there(buyer_client, order, fake_pay):
    fake_pay({"type": "redirect", "url": "https://paypal.example/approve/1"})
    response = buyer_client.post(url(order, "order_pay"), {"method": "paypal"})
    assert (
        response.status_code == 302 and response["Location"] == "https://paypal.example/approve/1"
    )


def test_with_htmx_a_redirect_channel_is_followed_by_the_browser(buyer_client, order, fake_pay):
    fake_pay({"type": "redirect", "url": "https://paypal.example/approve/1"})
    response = buyer_client.post(url(order, "order_pay"), {"method": "paypal"}, **HTMX)
    assert response["HX-Redirect"] == "https://paypal.example/approve/1"


def test_without_javascript_a_qr_payment_comes_back_to_the_page_showing_the_panel(
    buyer_client, order, fake_pay
):
    fake_pay(QR_ACTION)
    response = buyer_client.post(url(order, "order_pay"), {"method": "alipay"})
    assert response.status_code == 302 and response["Location"] == url(order)
    html = buyer_client.get(url(order)).content.decode()
    assert "<svg" in html and 'data-state="pending"' in html


def test_a_form_post_channel_gets_an_auto_submitting_form_with_a_button(
    buyer_client, order, fake_pay
):
    fake_pay(
        {
            "type": "form",
            "url": "https://gateway.example/frontTransReq.do",
            "fields": {"orderId": "X1", "signature": "s"},
        }
    )
    html = buyer_client.post(
        url(order, "order_pay"), {"method": "unionpay"}, **HTMX
    ).content.decode()
    form = html.split('action="https://gateway.example/frontTransReq.do"')[1].split("</form>")[0]
    assert "data-auto-submit" in form and 'name="orderId" value="X1"' in form
    assert 'type="submit"' in form
    # Coming back to the page later does not post the form again by itself.
    assert "data-auto-submit" not in buyer_client.get(url(order)).content.decode()


def test_a_card_widget_links_to_the_acquirers_hosted_page_without_an_iframe(
    buyer_client, order, fake_pay
):
    fake_pay(
        {
            "type": "widget",
            "url": "https://acquirer.example/hosted/cs_1",
            "widget": {"session": "cs_1"},
        }
    )
    html = buyer_client.post(url(order, "order_pay"), {"method": "card"}, **HTMX).content.decode()
    assert 'href="https://acquirer.example/hosted/cs_1"' in html and "<iframe" not in html


def test_instalments_pass_the_chosen_plan(buyer_client, order, fake_pay):
    calls = fake_pay({"type": "widget", "url": "https://acquirer.example/hosted/cs_2"})
    buyer_client.post(
        url(order, "order_pay"), {"method": "card_instalments", "instalments": "6"}, **HTMX
    )
    assert calls[0]["instalments"] == 6
    response = buyer_client.post(
        url(order, "order_pay"),
        {"method": "card_instalments", "instalments": "5"},
        HTTP_ACCEPT_LANGUAGE="en",
        **HTMX,
    )
    notice = response.content.decode().split('data-testid="checkout-notice">')[1]
    assert len(calls) == 1
    assert notice.startswith("5 months is not an instalment plan offered for this order")


def test_the_plan_radios_of_instalments_do_not_travel_with_another_method(
    buyer_client, order, fake_pay
):
    calls = fake_pay(QR_ACTION)
    buyer_client.post(url(order, "order_pay"), {"method": "alipay", "instalments": "3"}, **HTMX)
    assert calls[0]["method"] == "alipay" and calls[0]["instalments"] is None


def test_a_method_that_is_not_offered_is_refused_without_starting_a_payment(
    buyer_client, order, fake_pay
):
    calls = fake_pay(QR_ACTION)
    for method in ("balance", "bitcoin", ""):  # balance: the wallet is empty
        html = buyer_client.post(
            url(order, "order_pay"), {"method": method}, **HTMX
        ).content.decode()
        assert 'data-testid="checkout-notice"' in html
    assert calls == []


def test_a_refusal_by_the_platform_is_shown_in_place(buyer_client, order, monkeypatch):
    def refuse(**kwargs):
        raise PaymentError("amount must be positive")

    monkeypatch.setattr(checkout_service, "order_pay", refuse)
    html = buyer_client.post(url(order, "order_pay"), {"method": "alipay"}, **HTMX).content.decode()
    assert 'data-testid="checkout-notice"' in html


def test_the_ranking_the_buyer_saw_is_kept_on_the_payment(buyer_client, order, fake_pay):
    fake_pay(QR_ACTION)
    buyer_client.post(url(order, "order_pay"), {"method": "alipay"}, **HTMX)
    stored = Payment.objects.get().client["ordering"]
    assert stored["order"][0] and stored["methods"][0]["reasons"]


def test_an_expired_reservation_cannot_be_paid(buyer_client, order, fake_pay):
    calls = fake_pay(QR_ACTION)
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    html = buyer_client.post(url(order, "order_pay"), {"method": "alipay"}, **HTMX).content.decode()
    assert calls == [] and 'data-state="closed"' in html


# --- live status ----------------------------------------------------------------------------------


def seen_key(html: str) -> str:
    from urllib.parse import unquote

    return unquote(re.search(r"\?seen=([^\"]+)\"", html).group(1))


def test_the_status_polls_every_two_seconds_while_waiting(buyer_client, order):
    make_payment(order, action=QR_ACTION)
    html = buyer_client.get(url(order)).content.decode()
    assert 'hx-trigger="every 2s"' in html and "/status/?seen=" in html


def test_the_status_poll_answers_only_the_status_while_nothing_changes(buyer_client, order):
    make_payment(order, action=QR_ACTION)
    key = seen_key(buyer_client.get(url(order)).content.decode())
    html = buyer_client.get(url(order, "order_status"), {"seen": key}, **HTMX).content.decode()
    assert 'data-testid="order-status"' in html and "checkout-body" not in html


def test_the_status_poll_brings_the_new_body_when_the_payment_changes(buyer_client, order):
    payment = make_payment(order, action=QR_ACTION)
    key = seen_key(buyer_client.get(url(order)).content.decode())
    Payment.objects.filter(pk=payment.pk).update(
        status=PaymentStatus.FAILED,
        failure_reason="Insufficient funds",
        failure_guidance="Try another card",
    )
    html = buyer_client.get(url(order, "order_status"), {"seen": key}, **HTMX).content.decode()
    assert '<div id="checkout-body"' in html and 'hx-swap-oob="true"' in html
    assert 'data-testid="payment-error"' in html


def test_a_decline_shows_the_reason_with_guidance_and_the_next_best_method_one_click_away(
    buyer_client, order, fake_pay
):
    make_payment(
        order,
        status=PaymentStatus.FAILED,
        failure_code="NO_MONEY",
        failure_reason="Insufficient funds",
        failure_guidance="Try another card or method",
    )
    html = buyer_client.get(url(order)).content.decode()
    error = html.split('data-testid="payment-error"')[1].split("</p>")[0]
    assert "Insufficient funds" in error and "Try another card or method" in error
    next_method = re.search(
        r'name="method" value="([a-z_]+)">\s*(?:<input[^>]*>)?\s*'
        r'<button[^>]*data-testid="pay-next"',
        html,
    )
    assert next_method and next_method.group(1) != "alipay"
    calls = fake_pay(QR_ACTION)
    buyer_client.post(url(order, "order_pay"), {"method": next_method.group(1)}, **HTMX)
    assert calls[0]["method"] == next_method.group(1)


def test_a_timeout_says_so_and_offers_to_check_again(buyer_client, order, monkeypatch):
    payment = make_payment(order, action=QR_ACTION, failure_code="TIMEOUT")
    Attempt.objects.filter(payment=payment).update(status=AttemptStatus.UNKNOWN)
    html = buyer_client.get(url(order)).content.decode()
    assert 'data-testid="payment-timeout"' in html and 'data-testid="check-again"' in html
    asked = []
    monkeypatch.setattr(
        checkout, "attempt_query", lambda *, attempt_id: asked.append(attempt_id) or "pending"
    )
    response = buyer_client.post(url(order, "order_check"), **HTMX)
    assert asked == [payment.attempts.get().pk] and response.status_code == 200


def test_an_expired_payment_is_a_timeout_with_the_methods_to_pay_again(buyer_client, order):
    make_payment(order, status=PaymentStatus.EXPIRED)
    html = buyer_client.get(url(order)).content.decode()
    assert 'data-testid="payment-timeout"' in html and 'data-testid="pay"' in html


def test_a_risk_challenge_asks_for_the_one_time_code_in_place(buyer_client, order, monkeypatch):
    payment = make_payment(order, status=PaymentStatus.CHALLENGE)
    html = buyer_client.get(url(order)).content.decode()
    assert 'data-testid="challenge-code"' in html and 'autocomplete="one-time-code"' in html
    answers = []

    def answer(*, payment, code):
        answers.append(code)
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.PENDING)
        Attempt.objects.filter(payment=payment).update(action=QR_ACTION)
        return payment

    monkeypatch.setattr(checkout, "payment_challenge_answer", answer)
    html = buyer_client.post(
        url(order, "order_challenge"), {"code": "123456"}, **HTMX
    ).content.decode()
    assert answers == ["123456"] and "<svg" in html and payment.pk


def test_a_wrong_one_time_code_says_so_and_asks_again(buyer_client, order, monkeypatch):
    make_payment(order, status=PaymentStatus.CHALLENGE)

    def wrong(*, payment, code):
        raise PaymentError("the code is not right")

    monkeypatch.setattr(checkout, "payment_challenge_answer", wrong)
    html = buyer_client.post(
        url(order, "order_challenge"), {"code": "000000"}, **HTMX
    ).content.decode()
    assert 'data-testid="checkout-notice"' in html and 'data-testid="challenge-code"' in html


def test_a_payment_held_for_review_says_so(buyer_client, order):
    make_payment(order, status=PaymentStatus.REVIEW)
    html = buyer_client.get(url(order)).content.decode()
    assert 'data-state="review"' in html and 'data-testid="pay"' not in html


def test_a_blocked_payment_shows_its_reason_and_offers_no_other_method(buyer_client, order):
    make_payment(
        order, status=PaymentStatus.BLOCKED, failure_reason="This payment cannot be accepted."
    )
    html = buyer_client.get(url(order)).content.decode()
    assert (
        'data-testid="payment-error"' in html
        and "pay-next" not in html
        and 'data-testid="pay"' not in html
    )


# --- delivery -------------------------------------------------------------------------------------


def pay_and_deliver(order):
    payment = make_payment(order, status=PaymentStatus.SUCCEEDED)
    Payment.objects.filter(pk=payment.pk).update(succeeded_at=timezone.now())
    payment.refresh_from_db()
    order_payment_succeeded(payment=payment)
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    return payment


def test_delivered_codes_appear_with_copy_buttons_and_each_reveal_is_audited(buyer_client, order):
    pay_and_deliver(order)
    html = buyer_client.get(
        url(order), HTTP_USER_AGENT=DESKTOP_UA, REMOTE_ADDR="198.51.100.7"
    ).content.decode()
    assert re.search(r'data-testid="card-code">TESTCODE000001<', html)
    assert 'data-copy="TESTCODE000001"' in html and 'data-testid="card-pin">1234<' in html
    assert 'data-testid="report-code"' in html
    audit = RevealAudit.objects.get(order=order)
    assert (audit.user, audit.channel, audit.ip, audit.user_agent) == (
        order.buyer,
        "web",
        "198.51.100.7",
        DESKTOP_UA,
    )
    buyer_client.get(url(order))
    assert RevealAudit.objects.filter(order=order).count() == 2


def status_tag(html: str) -> str:
    return re.search(r'<div id="order-status"[^>]*>', html).group(0)


def test_codes_arrive_through_the_status_poll_the_moment_payment_is_confirmed(buyer_client, order):
    make_payment(order, action=QR_ACTION)
    key = seen_key(buyer_client.get(url(order)).content.decode())
    assert not RevealAudit.objects.exists()
    pay_and_deliver(order)
    html = buyer_client.get(url(order, "order_status"), {"seen": key}, **HTMX).content.decode()
    assert 'data-testid="card-code"' in html and 'hx-swap-oob="true"' in html
    assert "hx-trigger" not in status_tag(html), "polling stops once the codes are delivered"
    assert RevealAudit.objects.filter(order=order).count() == 1


def test_nothing_of_another_buyers_order_leaks_through_the_status_poll(client, order):
    pay_and_deliver(order)
    client.force_login(UserFactory())
    response = client.get(url(order, "order_status"), {"seen": "x"}, **HTMX)
    assert response.status_code == 404 and b"TESTCODE" not in response.content
    assert not RevealAudit.objects.exists()


def test_the_page_speaks_english_and_simplified_chinese(buyer_client, order):
    english = buyer_client.get(url(order), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    chinese = buyer_client.get(url(order), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert '<html lang="en">' in english and '<html lang="zh-hans">' in chinese


# --- real platform, in process --------------------------------------------------------------------
# The backends talk to the sandbox through the in-process WSGI transport (tests/conftest.py);
# the sandbox's notification comes back to /payments/notify/ the same way.


@pytest.fixture
def sandbox_order(brand, buyer):
    from payments.sandbox.provisioning import demo_channels_ensure

    demo_channels_ensure()
    # one provider per method, so the cashier and its wording are the direct channel's
    ChannelAccount.objects.filter(code__in=["bank-polypay", "aggregator"]).update(enabled=False)
    return make_order(brand, buyer)


@pytest.fixture
def cashier_decides(django_capture_on_commit_callbacks):
    """A payer on the sandbox cashier page; its notification is delivered on commit."""

    def decide(action_url: str, *, approve: bool) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            _cashier_post(Client(), action_url, approve=approve)

    return decide


def _cashier_post(client, action_url: str, *, approve: bool) -> None:
    path = action_url.removeprefix("http://testserver")
    response = client.post(
        path, {"decision": "approve" if approve else "decline", "reason": "insufficient_funds"}
    )
    assert response.status_code in {200, 302}


def test_paying_by_qr_in_the_sandbox_brings_the_codes_through_the_poll(
    buyer_client, sandbox_order, cashier_decides
):
    order = sandbox_order
    html = buyer_client.post(
        url(order, "order_pay"), {"method": "alipay"}, HTTP_USER_AGENT=DESKTOP_UA, **HTMX
    ).content.decode()
    assert "<svg" in html
    key = seen_key(html)
    action = Payment.objects.get(reference=order.payment_reference).attempts.get().action
    cashier_decides(action["url"], approve=True)
    html = buyer_client.get(url(order, "order_status"), {"seen": key}, **HTMX).content.decode()
    assert 'data-testid="card-code">TESTCODE000001<' in html
    assert RevealAudit.objects.filter(order=order, channel="web").count() == 1


def test_a_sandbox_decline_shows_the_channels_reason_and_guidance(
    buyer_client, sandbox_order, cashier_decides
):
    order = sandbox_order
    html = buyer_client.post(
        url(order, "order_pay"), {"method": "alipay"}, HTTP_USER_AGENT=DESKTOP_UA, **HTMX
    ).content.decode()
    key = seen_key(html)
    action = Payment.objects.get(reference=order.payment_reference).attempts.get().action
    cashier_decides(action["url"], approve=False)
    html = buyer_client.get(
        url(order, "order_status"), {"seen": key}, HTTP_ACCEPT_LANGUAGE="en", **HTMX
    ).content.decode()
    error = html.split('data-testid="payment-error"')[1].split("</p>")[0]
    payment = Payment.objects.get(reference=order.payment_reference)
    # stored as learnt (the default language), shown in the viewer's: English here
    assert payment.status == PaymentStatus.FAILED and payment.failure_code
    assert "The payment was not completed in Alipay" in error
    assert 'data-testid="pay-next"' in html


def test_succeeding_with_a_method_that_was_not_first_puts_it_first_next_time(
    buyer_client, brand, buyer, sandbox_order, cashier_decides
):
    before = method_ids(
        buyer_client.get(url(sandbox_order), HTTP_USER_AGENT=DESKTOP_UA).content.decode(), "method-"
    )
    chosen = "wechatpay" if before[0] != "wechatpay" else "alipay"
    assert chosen in before[1:]
    buyer_client.post(
        url(sandbox_order, "order_pay"), {"method": chosen}, HTTP_USER_AGENT=DESKTOP_UA, **HTMX
    )
    action = Payment.objects.get(reference=sandbox_order.payment_reference).attempts.get().action
    cashier_decides(action["url"], approve=True)
    assert Order.objects.get(pk=sandbox_order.pk).status == Order.Status.DELIVERED
    second = make_order(brand, buyer, codes=("TESTCODE000002",))
    after = method_ids(
        buyer_client.get(url(second), HTTP_USER_AGENT=DESKTOP_UA).content.decode(), "method-"
    )
    assert after[0] == chosen


def test_paying_from_the_wallet_delivers_the_codes_in_the_same_swap(buyer_client, order):
    ledger.post(
        key=f"topup:{uuid.uuid4()}",
        kind="topup",
        lines=[
            (ledger.CLEARING, Decimal("500.00")),
            (ledger.buyer_wallet(order.buyer_id), Decimal("-500.00")),
        ],
    )
    html = buyer_client.get(url(order)).content.decode()
    assert "method-balance" in first_group(html)
    response = buyer_client.post(url(order, "order_pay"), {"method": "balance"}, **HTMX)
    html = response.content.decode()
    assert 'data-testid="card-code">TESTCODE000001<' in html
    assert Order.objects.get(pk=order.pk).status == Order.Status.DELIVERED
    assert ledger.balance(ledger.buyer_wallet(order.buyer_id), natural=True) == Decimal("405.00")


def test_an_open_page_asks_the_channel_on_a_short_cadence_so_a_decline_shows_in_seconds(
    buyer_client, order, monkeypatch
):
    """The buyer looking at a pending QR learns the outcome within seconds: the poll asks the
    channel about the open attempt, at most once per interval per attempt (provider limits)."""
    import datetime as dt

    from django.core.cache import cache
    from django.utils import timezone

    from marketplace import checkout

    cache.clear()
    queued: list[int] = []
    monkeypatch.setattr(checkout, "_query_in_background", queued.append)
    payment = make_payment(order, action=QR_ACTION)
    attempt = payment.attempts.get()
    key = seen_key(buyer_client.get(url(order)).content.decode())
    buyer_client.get(url(order, "order_status"), {"seen": key}, **HTMX)
    assert queued == [], "an attempt seconds old is left to its notification"
    Attempt.objects.filter(pk=attempt.pk).update(
        created_at=timezone.now() - dt.timedelta(seconds=6)
    )
    for _ in range(3):
        buyer_client.get(url(order, "order_status"), {"seen": key}, **HTMX)
    assert queued == [attempt.pk], "one query per interval, however often the page polls"
    cache.delete(checkout.poll_query_key(attempt.pk))  # the interval has passed
    buyer_client.get(url(order, "order_status"), {"seen": key}, **HTMX)
    assert queued == [attempt.pk, attempt.pk]


def test_a_refund_shows_on_the_order_with_amount_date_and_where_the_money_goes(buyer_client, order):
    from django.utils import timezone

    from payments.models import Refund
    from payments.states import RefundStatus

    payment = make_payment(order, status=PaymentStatus.SUCCEEDED)
    attempt = payment.attempts.get()
    Payment.objects.filter(pk=payment.pk).update(refunded_amount=Decimal("30.00"))
    Refund.objects.create(
        payment=payment,
        attempt=attempt,
        amount=Decimal("30.00"),
        status=RefundStatus.SUCCEEDED,
        reason="bad code",
        settled_at=timezone.now(),
    )
    Refund.objects.create(
        payment=payment,
        attempt=attempt,
        amount=Decimal("12.50"),
        status=RefundStatus.PENDING,
    )
    html = buyer_client.get(url(order), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-testid="refunds"' in html
    assert "¥30.00" in html and "¥12.50" in html
    assert timezone.localdate().isoformat() in html
    assert "back to Alipay" in html
