"""Suite-wide fixtures: eager Celery, channel HTTP routed to the in-process app (so backends
talk to the real sandbox endpoints without a network), per-run sandbox keys."""

import httpx
import pytest
from django.conf import settings

TEST_VAULT_KEYS = [
    "dGVzdC1vbmx5LWNhcmQtdmF1bHQta2V5LW51bWJlcjE=",
    "dGVzdC1vbmx5LWNhcmQtdmF1bHQta2V5LW51bWJlcjI=",
]


def wsgi_transport() -> httpx.BaseTransport:
    """Channel HTTP served by the in-process app. Like Django's test client, it keeps the
    request signals from closing the test's database connection (which would end the test
    transaction on PostgreSQL)."""
    from django.core.signals import request_finished, request_started
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    django_app = get_wsgi_application()

    def app(environ, start_response):
        # Nested inside a test-client request the receivers are already off: restore only
        # what this call took away.
        started = request_started.disconnect(close_old_connections)
        finished = request_finished.disconnect(close_old_connections)
        try:
            return list(django_app(environ, start_response))
        finally:
            if started:
                request_started.connect(close_old_connections)
            if finished:
                request_finished.connect(close_old_connections)

    return httpx.WSGITransport(app=app)


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords and not settings.IS_POSTGRES:
            item.add_marker(skip_pg)


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path_factory):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.PAYMENTS_HTTP_TRANSPORT = "tests.conftest.wsgi_transport"
    settings.SITE_URL = "http://testserver"
    settings.SANDBOX_KEY_DIR = tmp_path_factory.getbasetemp() / "sandbox-keys"
    settings.SANDBOX_NOTIFY_TIME_SCALE = 0
    settings.CATALOGUE_CACHE_SECONDS = 0  # tests read the stock they just changed
    from risk import rulebook

    rulebook.invalidate()  # rules and lists cached in memory must not outlive a test's rows
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CARD_VAULT_KEYS = TEST_VAULT_KEYS
    settings.CHANNEL_CREDENTIAL_KEYS = TEST_VAULT_KEYS
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    from django.core.cache import cache

    from payments import accounts
    from payments.channels import http

    http.reset_clients()
    accounts.forget_notification_accounts()  # each test's database starts without them
    cache.clear()
