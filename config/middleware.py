"""Request-wide guards: response headers Django's SecurityMiddleware does not set itself,
and a cap on how large a request body may be."""

from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext as _


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY and not request.path.startswith("/api/schema/"):
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
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
                status=413, content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
