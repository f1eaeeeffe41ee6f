"""A declined payment's reason is rendered in the viewer's language when it is shown, not in
the language that happened to be active when the decline was learnt (a notification or a
query runs outside any buyer's request, under the production default, Chinese)."""

import pytest
from django.utils import translation

from payments.models import Attempt, ChannelAccount
from payments.presenters import payment_as_dict
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def declined(code: str, *, stored_reason: str = "买家支付宝余额不足"):
    account = ChannelAccount.objects.create(
        code="alipay-main",
        name="Alipay",
        backend="alipay",
        methods=["alipay"],
        base_url="https://openapi.alipay.com/",
    )
    payment = PaymentFactory(status="failed", failure_code=code, failure_reason=stored_reason)
    Attempt.objects.create(
        payment=payment,
        account=account,
        method="alipay",
        amount=payment.amount,
        status="failed",
        error_code=code,
    )
    return payment


def test_a_channel_decline_learnt_in_chinese_reads_in_english_for_an_english_viewer(settings):
    assert settings.LANGUAGE_CODE.startswith("zh")  # the production default applied the decline
    payment = declined("ACQ.BUYER_BALANCE_NOT_ENOUGH")
    with translation.override("en"):
        data = payment_as_dict(payment)
    assert data["reason"] == "The Alipay balance is too low"
    assert data["guidance"].startswith("Top up")
    with translation.override("zh-hans"):
        assert payment_as_dict(payment)["reason"] == "买家支付宝余额不足"


@pytest.mark.parametrize(
    ("code", "english"),
    [
        ("RISK_BLOCKED", "This payment cannot be accepted."),
        ("REVIEW_BLOCKED", "Blocked after review."),
        ("CHALLENGE_FAILED", "Too many wrong codes."),
        ("NO_CHANNEL", "This payment method is not available right now"),
    ],
)
def test_the_platform_s_own_refusals_read_in_the_viewer_s_language(code, english):
    payment = PaymentFactory(status="blocked", failure_code=code, failure_reason="中文原因")
    with translation.override("en"):
        assert payment_as_dict(payment)["reason"] == english


def test_a_code_no_table_knows_keeps_the_words_stored_with_it(settings):
    payment = declined("SOMETHING_NEW", stored_reason="渠道原话")
    with translation.override("en"):
        data = payment_as_dict(payment)
    assert data["code"] == "SOMETHING_NEW" and data["reason"] == "渠道原话"
