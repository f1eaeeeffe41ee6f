"""Real Chromium through Playwright against pytest-django's live server.

The backends reach the live server's sandbox over loopback HTTP (no in-process transport),
and the sandbox delivers its notifications over HTTP too (Celery eager), exactly as a
provider would. Debian's /usr/bin/chromium is used; a browser is never downloaded.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.browser.pages import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
]


def pytest_configure(config):
    # pytest-xdist registers this marker itself; with ``-p no:xdist`` --strict-markers needs it.
    config.addinivalue_line(
        "markers", "xdist_group(name): run the group's tests on one xdist worker"
    )


@pytest.fixture
def browser(monkeypatch):
    """A fresh Chromium per test (Playwright's sync API runs an event loop in this thread,
    so the ORM calls of the test itself need Django's async-safety check relaxed)."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium, or "
            f"make browser)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def site(live_server, settings, transactional_db):
    """The live server as the site: return and notify URLs point at it, channel HTTP goes over
    real loopback sockets."""
    from payments.channels import http

    settings.SITE_URL = live_server.url
    settings.PAYMENTS_HTTP_TRANSPORT = None
    settings.ALLOWED_HOSTS = ["*"]
    settings.TRUSTED_PROXY_COUNT = 1  # as behind the production proxy: X-Country-Code is trusted
    settings.REGION_HEADER = "HTTP_X_COUNTRY_CODE"
    http.reset_clients()
    yield live_server
    http.reset_clients()


def sandbox_methods() -> set[str]:
    """Methods a test can pay in this tree: a registered backend with a sandbox provider
    (paid through the cashier), plus the wallet (settles in-process)."""
    from payments.channels import registry
    from payments.sandbox import core
    from payments.sandbox.provisioning import DEMO_ACCOUNTS

    registry.autodiscover()
    backends = set(registry.backend_codes())
    providers = set(core.providers())
    return {
        str(method)
        for _code, backend, _name, methods, *_rest in DEMO_ACCOUNTS
        if backend in backends and (backend in providers or backend == "balance")
        for method in methods
    }


@pytest.fixture
def shop(site):
    """Demo channels on the live server's sandbox, a brand with listings, a buyer."""
    from marketplace.code_formats import CodeInput
    from marketplace.models import Brand
    from marketplace.services import listing_create
    from payments.models import ChannelAccount
    from payments.sandbox.provisioning import demo_channels_ensure
    from tests.accounts.factories import UserFactory

    demo_channels_ensure()
    payable = sandbox_methods()
    # Only methods a test can actually complete are offered (the others' channels may not
    # exist in this tree yet).
    for account in ChannelAccount.objects.all():
        if not set(account.methods) & payable:
            account.enabled = False
            account.save(update_fields=["enabled"])
    brand = Brand.objects.get_or_create(
        slug="test-card", defaults={"name": "Test Card", "category": "shopping"}
    )[0]
    seller = UserFactory(username="seller")
    listing = listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal("100.00"),
        price=Decimal("95.00"),
        codes=[CodeInput(code=f"BROWSERCODE{i:04d}", pin=f"{1000 + i}") for i in range(6)],
    )
    buyer = UserFactory(username="buyer", password=PASSWORD)
    return {
        "listing": listing,
        "buyer": buyer,
        "seller": seller,
        "payable": payable,
        "brand": brand,
    }
