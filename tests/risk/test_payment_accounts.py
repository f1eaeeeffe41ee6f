"""The payment-account key of risk's signals: the buyer's account at the channel, as the
channel's own answer names it (Alipay buyer_id, WeChat payer openid, card fingerprint,
PayPal payer_id), kept on the payment and looked up for the buyer's later payments."""

import uuid
from decimal import Decimal

import pytest

from payments.models import Payment
from payments.payables import PayableFacts
from payments.payer_refs import payer_ref
from payments.services.risk import _facts
from risk import engine, services
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("backend", "raw", "expected"),
    [
        (
            "alipay",
            {"buyer_id": "2088102177846880", "trade_status": "TRADE_SUCCESS"},
            "2088102177846880",
        ),
        ("alipay", {"buyer_user_id": "2088102177846881"}, "2088102177846881"),
        (
            "wechatpay",
            {"payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}},
            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        ),
        (
            "card",
            {
                "data": {
                    "object": {
                        "last_payment_error": {
                            "payment_method": {"card": {"fingerprint": "Xt5EWLLDS7FJjR1c"}}
                        },
                        "payment_method": "pm_1",
                    }
                }
            },
            "Xt5EWLLDS7FJjR1c",
        ),
        (
            "card",
            {
                "id": "pi_1",
                "latest_charge": {"payment_method_details": {"card": {"fingerprint": "Q1"}}},
            },
            "Q1",
        ),
        ("card", {"data": {"object": {"payment_method": "pm_only"}}}, "pm_only"),
        ("paypal", {"capture": {"payer": {"payer_id": "QYR5Z8XDVJNXQ"}}}, "QYR5Z8XDVJNXQ"),
        ("paypal", {"resource": {"payer": {"payer_id": "QYR5Z8XDVJNXR"}}}, "QYR5Z8XDVJNXR"),
    ],
)
def test_the_buyers_account_is_read_from_each_channels_answer(backend, raw, expected):
    assert payer_ref(backend, raw) == f"{backend}:{expected}"


def test_an_answer_naming_no_buyer_gives_no_key():
    assert payer_ref("alipay", {"trade_status": "TRADE_CLOSED"}) == ""
    assert payer_ref("unionpay", {"buyer_id": "x"}) == ""
    assert payer_ref("card", {"data": {"object": "not a dict"}}) == ""
    assert payer_ref("card", None) == ""


def _payment(buyer, *, account_ref: str = "", status: str = "succeeded") -> Payment:
    client = {"ip": "203.0.113.9", "device_id": f"d-{uuid.uuid4().hex[:8]}"}
    if account_ref:
        client["account_ref"] = account_ref
    return Payment.objects.create(
        reference=f"test:{uuid.uuid4().hex[:10]}",
        buyer=buyer,
        method="card",
        amount=Decimal("80.00"),
        status=status,
        client=client,
    )


def test_a_chargeback_on_a_card_steps_up_another_buyer_who_paid_with_that_card():
    fraudster, other = UserFactory(), UserFactory()
    services.chargeback_record(
        user_ref=str(fraudster.pk), account_ref="card:FP-STOLEN", source="card:dp_1"
    )
    _payment(other, account_ref="card:FP-STOLEN")
    payment = _payment(other, status="created")
    result = engine.assess(
        _facts(payment, PayableFacts(account_age_days=400, good_orders=12)), store=False
    )
    assert result.features["chargeback_weight"] >= 1
    assert "chargeback" in result.reasons and result.decision == "challenge"


def test_many_cards_lately_is_a_reason():
    buyer = UserFactory()
    for n in range(engine.MANY_PAYMENT_ACCOUNTS):
        _payment(buyer, account_ref=f"card:FP-{n}")
    payment = _payment(buyer, status="created")
    result = engine.assess(_facts(payment, PayableFacts()), store=False)
    assert result.features["payment_accounts"] == engine.MANY_PAYMENT_ACCOUNTS
    assert "many_payment_accounts" in result.reasons
