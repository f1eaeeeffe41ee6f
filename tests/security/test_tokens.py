"""API token policy: a password change kills the old token; an optional lifetime."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.accounts.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _token(username, password=PASSWORD) -> str:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


def _orders(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/orders/")


def test_a_token_works_until_the_password_changes():
    user = UserFactory(username="seller-bot")
    token = _token("seller-bot")
    assert _orders(token).status_code == 200
    user.set_password("a-brand-new-secret-77")
    user.save()
    assert _orders(token).status_code == 401
    fresh = _token("seller-bot", "a-brand-new-secret-77")
    assert fresh != token
    assert _orders(fresh).status_code == 200


def test_changing_the_password_on_the_site_revokes_the_token():
    user = UserFactory(username="seller-bot")
    token = _token("seller-bot")
    client = Client()
    client.force_login(user)
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "Zx-98-lkj-qwe",
            "new_password2": "Zx-98-lkj-qwe",
        },
    )
    assert response.status_code == 302
    assert not Token.objects.filter(key=token).exists()


def test_saving_a_user_without_a_new_password_keeps_the_token():
    user = UserFactory(username="seller-bot")
    token = _token("seller-bot")
    user.display_name = "Bot"
    user.save()
    assert _orders(token).status_code == 200


def test_tokens_do_not_expire_by_default():
    UserFactory(username="seller-bot")
    token = _token("seller-bot")
    Token.objects.filter(key=token).update(created=timezone.now() - timedelta(days=3650))
    assert _orders(token).status_code == 200


def test_with_a_ttl_an_old_token_is_refused_and_a_new_one_issued(settings):
    settings.API_TOKEN_TTL = 3600
    UserFactory(username="seller-bot")
    token = _token("seller-bot")
    assert _orders(token).status_code == 200
    Token.objects.filter(key=token).update(created=timezone.now() - timedelta(seconds=3601))
    response = _orders(token)
    assert response.status_code == 401
    assert "过期" in response.json()["detail"]
    fresh = _token("seller-bot")
    assert fresh != token and _orders(fresh).status_code == 200


def test_the_token_call_refuses_a_wrong_password_with_a_message():
    UserFactory(username="seller-bot")
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "seller-bot", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["non_field_errors"]
    assert not Token.objects.exists()


def test_an_unknown_token_and_a_deactivated_users_token_are_refused():
    user = UserFactory(username="seller-bot")
    token = _token("seller-bot")
    assert _orders("0" * 40).status_code == 401
    user.is_active = False
    user.save()
    assert _orders(token).status_code == 401


def test_the_token_and_its_user_are_read_in_one_statement_as_the_orm_reads_them(
    django_assert_num_queries,
):
    from accounts.authentication import token_with_user

    UserFactory(
        username="seller-bot",
        display_name="Bot",
        preferred_currency="USD",
        last_login=timezone.now() - timedelta(hours=2),
    )
    key = _token("seller-bot")
    expected = Token.objects.select_related("user").get(key=key)
    with django_assert_num_queries(1):
        user, token = token_with_user(key)
        assert token.user is user  # cached: no second read
    assert (token.key, token.user_id, token.created) == (key, expected.user_id, expected.created)
    fields = [f.attname for f in type(user)._meta.concrete_fields]
    assert [getattr(user, f) for f in fields] == [getattr(expected.user, f) for f in fields]
    assert user.last_login is not None and user.last_login.tzinfo is not None
    assert not user._state.adding and not token._state.adding
    assert token_with_user("0" * 40) is None
