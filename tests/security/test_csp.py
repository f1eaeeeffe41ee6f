"""The Content-Security-Policy: the configured policy as it is, except that in sandbox mode
with the simulators served on their own origin (SANDBOX_URL, `make serve`) exactly that
origin may serve scripts and answer fetches — the stand-in bridge loads from there and posts
back to it. Nothing is added outside sandbox mode or for any other origin."""

from __future__ import annotations

import pytest

from config.middleware import content_security_policy

BASE = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'self'"
)


def directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in policy.split("; ")}


def test_the_simulators_origin_is_allowed_for_scripts_and_fetches_only(settings):
    settings.CONTENT_SECURITY_POLICY = BASE
    settings.PAYMENTS_SANDBOX = True
    settings.SANDBOX_URL = "http://127.0.0.1:8001"
    got = directives(content_security_policy())
    assert got["script-src"] == ["'self'", "http://127.0.0.1:8001"]
    assert got["connect-src"] == ["'self'", "http://127.0.0.1:8001"]
    untouched = {k: v for k, v in directives(BASE).items() if k != "script-src"}
    assert {k: v for k, v in got.items() if k not in {"script-src", "connect-src"}} == untouched


def test_only_the_origin_of_sandbox_url_not_its_path(settings):
    settings.CONTENT_SECURITY_POLICY = BASE
    settings.PAYMENTS_SANDBOX = True
    settings.SANDBOX_URL = "https://sandbox.example:9443/some/path"
    assert directives(content_security_policy())["script-src"] == [
        "'self'",
        "https://sandbox.example:9443",
    ]


@pytest.mark.parametrize(
    ("sandbox", "url"),
    [(False, "http://127.0.0.1:8001"), (True, ""), (True, "javascript:alert(1)")],
)
def test_nothing_is_added_outside_sandbox_mode_or_without_a_simulators_origin(
    settings, sandbox, url
):
    settings.CONTENT_SECURITY_POLICY = BASE
    settings.PAYMENTS_SANDBOX = sandbox
    settings.SANDBOX_URL = url
    assert content_security_policy() == BASE


def test_the_middleware_sends_it_on_a_page(rf, settings):
    """Through the middleware itself: a request through the URLconf here would import it
    with SANDBOX_URL set, and the in-process simulators would not be mounted for later tests."""
    from django.http import HttpResponse

    from config.middleware import ContentSecurityPolicyMiddleware

    settings.CONTENT_SECURITY_POLICY = BASE
    settings.PAYMENTS_SANDBOX = True
    settings.SANDBOX_URL = "http://127.0.0.1:8001"
    response = ContentSecurityPolicyMiddleware(lambda request: HttpResponse())(rf.get("/"))
    header = response.headers["Content-Security-Policy"]
    assert directives(header)["script-src"] == ["'self'", "http://127.0.0.1:8001"]
