"""Staff of each group, logged in, for the back-office tests."""

import pytest

from tests.accounts.factories import UserFactory
from tests.browser.conftest import browser  # noqa: F401 -- the suite's Chromium, for screenshots


def staff_client(client, group: str | None):
    if group == "superuser":
        user = UserFactory(is_staff=True, is_superuser=True)
    elif group:
        user = UserFactory(is_staff=True, groups=[group])
    else:
        user = UserFactory(is_staff=True)
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def finance(client):
    return staff_client(client, "Finance")


@pytest.fixture
def support(client):
    return staff_client(client, "Support")


@pytest.fixture
def risk_staff(client):
    return staff_client(client, "Risk")
