"""Suite-wide fixtures: eager Celery, channel HTTP routed to the in-process app (so backends
talk to the real sandbox endpoints without a network), per-run sandbox keys."""

import httpx
import pytest
from django.conf import settings

TEST_VAULT_KEYS = ["dGVzdC1vbmx5LWNhcmQtdmF1bHQta2V5LW51bWJlcjE=", "dGVzdC1vbmx5LWNhcmQtdmF1bHQta2V5LW51bWJlcjI="]


def wsgi_transport() -> httpx.BaseTransport:
    from django.core.wsgi import get_wsgi_application

    return httpx.WSGITransport(app=get_wsgi_application())


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
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CARD_VAULT_KEYS = TEST_VAULT_KEYS
    settings.CHANNEL_CREDENTIAL_KEYS = TEST_VAULT_KEYS
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    from payments import http

    http.reset_clients()
