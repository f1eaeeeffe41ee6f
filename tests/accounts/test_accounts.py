import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.roles import STAFF_GROUPS
from tests.accounts.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_staff_groups_exist_with_job_permissions():
    for name in STAFF_GROUPS:
        group = Group.objects.get(name=name)
        assert group.permissions.exists(), name
    finance = set(Group.objects.get(name="Finance").permissions.values_list("codename", flat=True))
    support = set(Group.objects.get(name="Support").permissions.values_list("codename", flat=True))
    assert "view_payment" in finance and "change_channelaccount" in finance
    assert "change_channelaccount" not in support, "support must not edit channel accounts"


def test_signup_creates_account_and_logs_in(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "newbuyer",
            "email": "n@example.com",
            "display_name": "N",
            "password1": "A-long-pass-123",
            "password2": "A-long-pass-123",
        },
    )
    assert response.status_code == 302
    assert client.get("/").context["user"].username == "newbuyer"


def test_login_page_accepts_username_and_password(client):
    UserFactory(username="alice")
    page = client.get("/accounts/login/")
    assert b'name="username"' in page.content and b'name="password"' in page.content
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302


def test_password_reset_sends_email(client, mailoutbox):
    UserFactory(username="bob", email="bob@example.com")
    client.post(reverse("password_reset"), {"email": "bob@example.com"})
    assert len(mailoutbox) == 1 and "bob" in mailoutbox[0].body


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_healthz_answers_503_when_database_fails(client, monkeypatch):
    from django.db import DatabaseError

    import config.views

    class Broken:
        def __enter__(self):
            raise DatabaseError("down")

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(config.views.connection, "cursor", lambda: Broken())
    assert client.get("/healthz").status_code == 503


def test_password_reset_page_is_the_sites_own(client):
    page = client.get(reverse("password_reset"), HTTP_ACCEPT_LANGUAGE="en")
    assert b"Send reset link" in page.content and b"Django site admin" not in page.content


def test_a_buyer_opts_in_to_codes_in_email_on_the_settings_page(client, db):
    user = UserFactory(email="a@example.com")
    assert user.email_codes is False
    client.force_login(user)
    assert client.get("/accounts/settings/").status_code == 200
    response = client.post(
        "/accounts/settings/",
        {"display_name": "Ann", "email": "a@example.com", "email_codes": "on"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email_codes is True and user.display_name == "Ann"


def test_codes_in_email_need_an_email_address(client, db):
    user = UserFactory(email="")
    client.force_login(user)
    response = client.post(
        "/accounts/settings/", {"display_name": "", "email": "", "email_codes": "on"}
    )
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.email_codes is False


def test_the_settings_page_needs_a_login(client, db):
    response = client.get("/accounts/settings/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
