"""The 404 and 403 pages are the site's own: its header and footer, in the reader's language,
a way back to the catalogue; and the sign-up form keeps help text under its inputs and each
error next to its field, like the rest of the site's forms."""

from __future__ import annotations

import pytest

from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "heading"), [("zh-hans", "页面不存在"), ("en", "Page not found")]
)
def test_the_404_page_is_the_sites_own_in_the_readers_language(client, language, heading):
    client.cookies["django_language"] = language
    response = client.get("/listings/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'data-testid="error-404"' in html and f"<h1>{heading}</h1>" in html
    assert 'class="site-header' in html and 'href="/"' in html


@pytest.mark.parametrize(
    ("language", "heading"), [("zh-hans", "您无权打开此页面"), ("en", "You may not open this page")]
)
def test_the_403_page_is_the_sites_own_in_the_readers_language(client, language, heading):
    client.force_login(UserFactory())
    client.cookies["django_language"] = language
    response = client.get("/risk/monitoring/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'data-testid="error-403"' in html and f"<h1>{heading}</h1>" in html
    assert 'class="site-header' in html


def test_sign_up_shows_each_error_next_to_its_field_and_help_under_the_input(client):
    UserFactory(username="taken")
    client.cookies["django_language"] = "en"
    response = client.post(
        "/accounts/signup/",
        {"username": "taken", "password1": "x", "password2": "y"},
    )
    assert response.status_code in (200, 400)
    html = response.content.decode()
    field = html.split('<div class="field has-error">', 1)
    assert len(field) == 2, "no field is marked as in error"
    username_block = html.split('for="id_username"', 1)[1].split("</div>", 1)[0]
    assert 'class="error-text" id="id_username_error"' in username_block
    password_block = html.split('for="id_password1"', 1)[1].split("</div>", 1)[0]
    assert 'id="id_password1_help"' in password_block
    # the help is under the input, as the shop's other forms have it
    assert password_block.index("<input") < password_block.index('id="id_password1_help"')
