"""The site's answer when a request fails on our side. A database that is away (restarting,
failing over, its pool exhausted) is a 503 that says to try again shortly, with
``Retry-After`` — a temporary state, not a bug — and JSON on the API. Everything else is the
usual 500 page. Neither page touches the database."""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _
from django.views import defaults

log = logging.getLogger("cardex.request")

RETRY_AFTER_SECONDS = 5


def _database_away(exc: BaseException | None) -> bool:
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def server_error(request, template_name: str = defaults.ERROR_500_TEMPLATE_NAME):
    if not _database_away(sys.exc_info()[1]):
        return defaults.server_error(request, template_name)
    log.warning("database unavailable: answered 503", extra={"path": request.path})
    message = _("The service is briefly unavailable. Nothing was charged: try again in a moment.")
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=503)
    else:
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


# The simulators' own process (config.sandbox_urls) answers failures as a provider would:
# plain text, nothing of the shop's pages (which link the shop's URLs it does not serve).
def _plain(text: str, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def provider_bad_request(request, exception=None):
    return _plain("Bad request", 400)


def provider_forbidden(request, exception=None):
    return _plain("Forbidden", 403)


def provider_not_found(request, exception=None):
    return _plain("Not found", 404)


def provider_server_error(request):
    if not _database_away(sys.exc_info()[1]):
        return _plain("Internal error", 500)
    response = _plain("Service unavailable", 503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
