"""Password guessing on the three log-in doors: the site, the admin and the API token call.

After many wrong passwords the right one is refused too (429, a Chinese message), until the
cool-off passes or staff unlock the account.
"""

import pytest
from axes.models import AccessAttempt
from django.test import Client

from tests.accounts.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

GUESSES = 600


def _site_login(client, password):
    return client.post("/accounts/login/", {"username": "victim", "password": password})


def _admin_login(client, password):
    return client.post("/admin/login/?next=/admin/", {"username": "victim", "password": password})


def _api_login(client, password):
    return client.post(
        "/api/v1/auth/token/",
        {"username": "victim", "password": password},
        content_type="application/json",
    )


DOORS = {"site": _site_login, "admin": _admin_login, "api": _api_login}


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def victim():
    return UserFactory(username="victim", is_staff=True, is_superuser=True)


@pytest.mark.parametrize("door", DOORS)
def test_600_wrong_passwords_then_the_right_one_is_refused(client, victim, door):
    login = DOORS[door]
    for n in range(GUESSES):
        response = login(client, f"wrong-{n}")
        assert response.status_code in {200, 400, 429}
        assert not _logged_in(client)
    response = login(client, PASSWORD)
    assert response.status_code == 429
    assert not _logged_in(client)
    if door == "api":
        assert "token" not in response.json()


@pytest.mark.parametrize("door", DOORS)
def test_lockout_alone_refuses_the_right_password(client, victim, door, settings):
    """With the per-address rate out of the way, django-axes' lock-out still holds."""
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login-ip": "100000/hour"}
    login = DOORS[door]
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(client, f"wrong-{n}")
    response = login(client, PASSWORD)
    assert response.status_code == 429
    assert not _logged_in(client)
    assert "登录" in response.content.decode()
    assert int(response["Retry-After"]) > 0


def test_lockout_page_tells_the_visitor_in_chinese(client, victim):
    for n in range(5):
        _site_login(client, f"wrong-{n}")
    page = _site_login(client, PASSWORD)
    text = page.content.decode()
    assert page.status_code == 429
    assert 'data-testid="locked-out"' in text
    assert "正确的密码" in text


def test_a_few_wrong_passwords_do_not_lock(client, victim, settings):
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        _site_login(client, f"wrong-{n}")
    assert _site_login(client, PASSWORD).status_code == 302
    assert _logged_in(client)


def test_lockout_is_per_address_so_the_owner_elsewhere_still_logs_in(victim):
    attacker, owner = Client(REMOTE_ADDR="203.0.113.9"), Client(REMOTE_ADDR="198.51.100.7")
    for n in range(20):
        _site_login(attacker, f"wrong-{n}")
    assert _site_login(attacker, PASSWORD).status_code == 429
    assert _site_login(owner, PASSWORD).status_code == 302


def test_one_address_cannot_walk_through_many_usernames(client, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login-ip": "10/hour"}
    for n in range(10):
        UserFactory(username=f"user-{n}")
        client.post("/accounts/login/", {"username": f"user-{n}", "password": "guess"})
    UserFactory(username="lucky")
    response = client.post("/accounts/login/", {"username": "lucky", "password": PASSWORD})
    assert response.status_code == 429
    assert "请" in response.content.decode()
    assert not _logged_in(client)


def test_staff_unlock_from_the_user_admin_lets_the_right_password_in(victim):
    support = UserFactory(username="helpdesk", is_staff=True, groups=["Support"])
    attacker = Client()
    for n in range(5):
        _site_login(attacker, f"wrong-{n}")
    assert AccessAttempt.objects.filter(username="victim").exists()
    staff = Client()
    staff.force_login(support)
    response = staff.post(
        "/admin/accounts/user/",
        {"action": "unlock_login", "_selected_action": [victim.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert not AccessAttempt.objects.filter(username="victim").exists()
    assert _site_login(attacker, PASSWORD).status_code == 302


def test_staff_without_the_unlock_permission_cannot_unlock(victim):
    finance = UserFactory(username="cashier", is_staff=True, groups=["Finance"])
    for n in range(5):
        _site_login(Client(), f"wrong-{n}")
    staff = Client()
    staff.force_login(finance)
    staff.post("/admin/accounts/user/", {"action": "unlock_login", "_selected_action": [victim.pk]})
    assert AccessAttempt.objects.filter(username="victim").exists()
