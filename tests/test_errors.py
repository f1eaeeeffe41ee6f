"""A request that fails on our side: a database that is away is a 503 to retry, never a bare
500; a bug is still the 500 page (config/errors.py)."""

import pytest
from django.test import Client

pytestmark = [pytest.mark.urls("tests.failing_urls"), pytest.mark.django_db]


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


def test_the_site_points_its_500_handler_at_the_database_aware_one():
    from config import urls

    assert urls.handler500 == "config.errors.server_error"


def test_a_page_while_the_database_is_away_is_a_503_to_retry(client):
    response = client.get("/shop/away/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    page = response.content.decode()
    assert 'data-testid="error-503"' in page and "暂时无法使用" in page
    assert "127.0.0.1" not in page  # the database's address is not shown to the buyer


def test_the_api_answers_json_and_says_nothing_was_charged(client):
    for url in ("/api/v1/away/", "/api/v1/pool/"):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 503 and response["Retry-After"] == "5"
        assert response.json() == {
            "detail": "The service is briefly unavailable. Nothing was charged: try again in a "
            "moment."
        }


def test_a_bug_is_still_the_500_page(client):
    response = client.get("/shop/bug/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 500
    assert 'data-testid="error-500"' in response.content.decode()
    assert "Retry-After" not in response
