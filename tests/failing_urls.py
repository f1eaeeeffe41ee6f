"""Views that fail the ways a request can fail on our side, for tests/test_errors.py."""

from django.db import OperationalError
from django.urls import path

from config import urls as site_urls


def database_away(request):
    raise OperationalError("connection to server at 127.0.0.1, port 5432 failed")


def pool_exhausted(request):
    from psycopg_pool import PoolTimeout

    raise PoolTimeout("couldn't get a connection after 10.00 sec")


def bug(request):
    raise ZeroDivisionError


handler500 = "config.errors.server_error"
urlpatterns = [
    path("shop/away/", database_away),
    path("api/v1/away/", database_away),
    path("api/v1/pool/", pool_exhausted),
    path("shop/bug/", bug),
    *site_urls.urlpatterns,  # the error pages' layout links to the site's pages
]
