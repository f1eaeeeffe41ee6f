"""Request-wide guards and records: response headers Django's SecurityMiddleware does not set
itself, a cap on how large a request body may be, request ids, request log lines and request
metrics."""

import logging
import time

from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext as _

from config import metrics
from config.logging import new_request_id, request_id

log = logging.getLogger("cardex.request")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY and not request.path.startswith("/api/schema/"):
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        return response


class RequestIdMiddleware:
    """First in the chain: gives each request an id (the proxy's X-Request-ID when it sends a
    sane one), returns it in the response, logs one JSON line per request and counts it for
    /metrics. Tasks queued while serving carry the id (config.celery)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = new_request_id(request.headers.get("X-Request-ID"))
        token = request_id.set(rid)
        started = time.perf_counter()
        response = self.get_response(request)  # Django turns exceptions into responses
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        metrics.HTTP_LATENCY.labels(route).observe(elapsed)
        response.headers["X-Request-ID"] = rid
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )
        request_id.reset(token)
        return response


class RequestSizeLimitMiddleware:
    """Refuse a body larger than MAX_REQUEST_BYTES (413) before Django reads it: without this a
    multipart upload of any size is spooled to a temporary file first, and the form's own
    2 MB check comes too late to protect the disk. Behind a proxy, set the proxy's limit too
    (nginx ``client_max_body_size``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        if size > settings.MAX_REQUEST_BYTES:
            return HttpResponse(
                _("The request is too large (at most %(mb)d MB).")
                % {"mb": settings.MAX_REQUEST_BYTES // (1024 * 1024)},
                status=413,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
