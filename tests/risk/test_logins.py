"""Log-ins are scored by the same engine as payments: a new device or a region the account
never used, or a burst of log-ins across accounts from one address, tells the owner by
e-mail, steps the account's next payment up, and shows in the risk admin. The owner sees
their sessions and ends the others."""

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from payments import services
from payments.channels.base import ClientInfo
from payments.payables import PayableFacts
from risk.models import Login
from tests.accounts.factories import PASSWORD, UserFactory
from tests.payments.factories import sandbox_account

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _behind_our_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 1  # the proxy says where the visitor is
    settings.REGION_HEADER = "HTTP_X_COUNTRY_CODE"


def _browser(ip: str, region: str) -> Client:
    """A browser of its own (its own device cookie) at an address in a region."""
    return Client(HTTP_X_FORWARDED_FOR=ip, HTTP_X_COUNTRY_CODE=region)


def _log_in(browser: Client, user) -> None:
    browser.get("/accounts/login/")  # the device cookie is set on the first page
    response = browser.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:300]


def _pay(buyer):
    return services.payment_start(
        buyer=buyer,
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal("88.00"),
        currency="CNY",
        method="alipay",
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.7", device="desktop", user_agent="t"),
        return_url="http://testserver/orders/X/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
    )


def test_the_first_log_in_and_the_same_device_again_are_quiet(mailoutbox):
    user = UserFactory()
    home = _browser("203.0.113.20", "CN")
    _log_in(home, user)
    home.post("/accounts/logout/")
    _log_in(home, user)
    assert list(Login.objects.values_list("decision", flat=True)) == ["allow", "allow"]
    assert Login.objects.first().device.startswith("d-")
    assert not mailoutbox


def test_a_log_in_from_a_new_device_and_region_mails_the_owner_and_steps_the_next_payment_up(
    django_capture_on_commit_callbacks, mailoutbox
):
    sandbox_account("alipay")
    user = UserFactory()
    _log_in(_browser("203.0.113.21", "CN"), user)
    assert _pay(user).status == "pending"  # a trusted buyer pays without friction

    with django_capture_on_commit_callbacks(execute=True):
        _log_in(_browser("198.51.100.21", "RU"), user)
    login = Login.objects.first()
    assert set(login.reasons) == {"login_new_device", "login_new_region"}
    assert login.decision in {"review", "block"} and login.region == "RU"
    assert [m.to for m in mailoutbox] == [[user.email]]
    assert "RU" in mailoutbox[0].body

    payment = _pay(user)
    assert payment.status == "challenge"
    assert "suspicious_login" in payment.risk["reasons"]


def test_passing_the_step_up_ends_the_suspicion(django_capture_on_commit_callbacks, mailoutbox):
    from payments.services import payment_challenge_answer

    sandbox_account("alipay")
    user = UserFactory()
    _log_in(_browser("203.0.113.22", "CN"), user)
    _log_in(_browser("198.51.100.22", "CN"), user)  # new device
    with django_capture_on_commit_callbacks(execute=True):
        payment = _pay(user)
    assert payment.status == "challenge"
    code = re.search(r"\b(\d{6})\b", mailoutbox[-1].body).group(1)
    payment_challenge_answer(payment=payment, code=code)
    assert _pay(user).status == "pending"


def test_a_burst_of_log_ins_across_accounts_from_one_address_is_flagged():
    address = "192.0.2.77"
    for _ in range(5):
        _log_in(_browser(address, "CN"), UserFactory())
    target = UserFactory(email="")
    _log_in(_browser(address, "CN"), target)
    login = Login.objects.filter(user_ref=str(target.pk)).get()
    assert "login_ip_burst" in login.reasons and login.decision != "allow"


def test_staff_see_the_unusual_log_ins_in_the_risk_admin(admin_client):
    user = UserFactory()
    _log_in(_browser("203.0.113.23", "CN"), user)
    _log_in(_browser("198.51.100.23", "JP"), user)
    response = admin_client.get("/admin/risk/login/?decision__exact=review")
    assert response.status_code == 200
    assert b"login_new_region" in response.content
    assert b"session_key" not in response.content


def test_the_owner_sees_their_sessions_and_ends_the_others():
    user = UserFactory()
    laptop, phone = _browser("203.0.113.24", "CN"), _browser("203.0.113.25", "CN")
    _log_in(laptop, user)
    _log_in(phone, user)
    page = laptop.get("/risk/sessions/")
    assert page.status_code == 200
    assert page.content.count(b"<tr>") == 3  # the header and two sessions
    assert page.content.count(b'data-testid="this-session"') == 1 and b"CN" in page.content

    response = laptop.post("/risk/sessions/")
    assert response.status_code == 302
    assert Session.objects.count() == 1
    assert phone.get("/accounts/settings/").status_code == 302  # logged out
    assert laptop.get("/accounts/settings/").status_code == 200
    assert laptop.get("/risk/sessions/").content.count(b"<tr>") == 2


def test_the_sessions_page_needs_a_log_in(client):
    response = client.get("/risk/sessions/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_log_ins_without_a_web_request_are_not_scored(client):
    client.force_login(UserFactory())
    assert not Login.objects.exists()


def test_ending_the_others_counts_only_sessions_still_alive():
    from risk.services import sessions_end_others

    user = UserFactory()
    laptop, old_phone, phone = (_browser(f"203.0.113.{n}", "CN") for n in (30, 31, 32))
    _log_in(laptop, user)
    _log_in(old_phone, user)
    old_phone.post("/accounts/logout/")  # that session is gone already
    _log_in(phone, user)
    current = laptop.session.session_key
    assert sessions_end_others(user_ref=str(user.pk), keep_session_key=current) == 1
    assert sessions_end_others(user_ref=str(user.pk), keep_session_key=current) == 0
