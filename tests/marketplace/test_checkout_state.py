"""The order page's selectors: one state per page, the offer only while the buyer can pay,
and nothing written by reading."""

import pytest

from marketplace.checkout_state import order_checkout_state, order_checkout_status
from marketplace.models import Order
from payments.client import Client
from payments.models import Method, Payment
from payments.states import PaymentStatus
from tests.marketplace import test_checkout as page_tests
from tests.marketplace.test_checkout import QR_ACTION, make_payment

# The order page's own fixtures: one healthy account per method, a ¥95.00 order.
brand = page_tests.brand
buyer = page_tests.buyer
channels = page_tests.channels
order = page_tests.order

pytestmark = pytest.mark.django_db

DESKTOP = Client(device="desktop")


def test_an_unpaid_order_offers_the_ranked_methods_with_the_first_preselected(order):
    page = order_checkout_state(order=order, client=DESKTOP)
    assert page.state == "choose"
    assert page.offer is not None and page.selected == page.offer.ranking.usable[0].method
    assert page.context()["amount_text"] == "¥95.00"


def test_a_decline_preselects_the_next_best_method(order):
    make_payment(order, status=PaymentStatus.FAILED, failure_reason="Insufficient funds")
    page = order_checkout_state(order=order, client=DESKTOP)
    assert page.state == "failed"
    assert page.next_best is not None and page.next_best.method != Method.ALIPAY
    assert page.selected == page.next_best.method
    assert page.payment_data["reason"] == "Insufficient funds"


def test_a_pending_qr_payment_keeps_its_method_and_draws_the_code(order):
    make_payment(order, action=QR_ACTION)
    page = order_checkout_state(order=order, client=DESKTOP)
    assert (page.state, page.selected, page.attempt_open) == ("pending", "alipay", True)
    assert page.panel["type"] == "qr" and "<svg" in page.panel["svg"]


def test_a_closed_order_offers_nothing(order):
    Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED)
    order.refresh_from_db()
    page = order_checkout_state(order=order, client=DESKTOP)
    assert (page.state, page.offer, page.live.polling) == ("closed", None, False)


def test_instalment_plans_come_with_the_offer_only_when_instalments_can_be_used(order, channels):
    plans = order_checkout_state(order=order, client=DESKTOP).offer.plans
    assert [plan.months for plan in plans] == [3, 6, 12]
    channels["card"].methods = [Method.CARD]
    channels["card"].save()
    assert order_checkout_state(order=order, client=DESKTOP).offer.plans == ()


def test_the_status_key_changes_when_the_payment_does(order):
    before = order_checkout_status(order=order).key
    payment = make_payment(order, action=QR_ACTION)
    pending = order_checkout_status(order=order).key
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.FAILED)
    assert len({before, pending, order_checkout_status(order=order).key}) == 3


def test_reading_the_page_state_writes_nothing(order, django_assert_max_num_queries):
    make_payment(order, action=QR_ACTION)
    with django_assert_max_num_queries(8) as captured:
        order_checkout_state(order=order, client=DESKTOP)
    assert all(q["sql"].lstrip().startswith("SELECT") for q in captured.captured_queries)
