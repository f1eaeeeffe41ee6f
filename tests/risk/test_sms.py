"""A buyer with no e-mail passes a challenge by SMS: the code goes through the configured
sender — in sandbox mode the simulator of an SMS provider's HTTP API — and typing it releases
the payment (issue 18's acceptance)."""

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from payments import services
from payments.channels.base import ClientInfo
from payments.payables import PayableFacts
from payments.presenters import payment_as_dict
from risk import sms
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account

pytestmark = pytest.mark.django_db

KEY = "test-sms-key"


@pytest.fixture
def provider(settings):
    """The sender speaks HTTP to the simulator served by this test's app."""
    settings.RISK_SMS_SENDER = "risk.sms.HttpSender"
    settings.RISK_SMS_URL = "http://testserver/sandbox/sms/"
    settings.RISK_SMS_API_KEY = KEY
    settings.RISK_SMS_HTTP_TRANSPORT = "tests.conftest.wsgi_transport"


def _start(buyer):
    return services.payment_start(
        buyer=buyer,
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal("2500.00"),
        currency="CNY",
        method="alipay",
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.7", device="desktop", user_agent="t"),
        return_url="http://testserver/orders/X/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        # a brand-new account's large first purchase: challenged
        risk_facts=PayableFacts(account_age_days=0, good_orders=0),
    )


def test_a_buyer_without_e_mail_passes_a_challenge_by_sms_in_the_simulator(
    client, provider, django_capture_on_commit_callbacks, mailoutbox
):
    sandbox_account("alipay")
    buyer = UserFactory(email="", phone="+86 138 0013 8000")
    with django_capture_on_commit_callbacks(execute=True):
        payment = _start(buyer)
    assert payment.status == "challenge" and not mailoutbox
    with translation.override("en"):
        assert "text message" in payment_as_dict(payment)["challenge"]["how"]

    inbox = client.get("/sandbox/sms/v1/messages", {"to": "+8613800138000"}).json()["messages"]
    assert len(inbox) == 1 and inbox[0]["text"].startswith("[Cardex]")
    code = re.search(r"\b(\d{6})\b", inbox[0]["text"]).group(1)
    assert "SMS to" in client.get("/sandbox/sms/inbox/", {"to": "+8613800138000"}).content.decode()

    payment = services.payment_challenge_answer(payment=payment, code=code)
    assert payment.status == "pending"  # released and opened at the channel


def test_the_simulator_refuses_a_wrong_key_a_bad_number_and_an_empty_text(client, provider):
    post = lambda body, key=KEY: client.post(  # noqa: E731
        "/sandbox/sms/v1/messages",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert post({"to": "+8613800138000", "text": "x"}, key="wrong").status_code == 401
    assert post({"to": "call me", "text": "x"}).json()["error"]["code"] == "invalid_number"
    assert post({"to": "+8613800138000", "text": " "}).json()["error"]["code"] == "invalid_text"
    assert post({"text": "x"}).status_code == 400
    assert client.get("/sandbox/sms/v1/messages", {"to": "+8613800138000"}).json() == {
        "messages": []
    }


def test_a_refused_message_is_an_sms_error_without_the_text(settings, provider):
    settings.RISK_SMS_API_KEY = KEY
    settings.RISK_SMS_URL = "http://testserver/sandbox/sms/nowhere/"
    with pytest.raises(sms.SmsError) as refused:
        sms.sms_send("+8613800138000", "Your code is 123456")
    assert "123456" not in str(refused.value)
    assert not sms.sms_send_quietly("+8613800138000", "Your code is 123456")


def test_the_console_and_memory_senders(settings, capsys):
    settings.RISK_SMS_SENDER = "risk.sms.ConsoleSender"
    sms.sms_send("+86 138-0013-8000", "hello")
    assert "SMS to +8613800138000: hello" in capsys.readouterr().out
    settings.RISK_SMS_SENDER = "risk.sms.MemorySender"
    sms.MemorySender.outbox.clear()
    sms.sms_send("13800138000", "hi")
    assert sms.MemorySender.outbox == [("13800138000", "hi")]
    with pytest.raises(sms.SmsError):
        sms.sms_send("", "hi")


@pytest.mark.parametrize(
    ("raw", "number"),
    [("+86 138 0013 8000", "+8613800138000"), ("(138) 0013-8000", "13800138000"), ("abc", "")],
)
def test_phone_number(raw, number):
    assert sms.phone_number(raw) == number
