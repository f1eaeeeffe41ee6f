"""Request-wide guards and records: response headers Django's SecurityMiddleware does not set
itself, a cap on how large a request body may be, request ids, request log lines and request
metrics."""

import functools
import logging
import secrets
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from django.utils.translation import gettext as _

from config import metrics
from config.logging import new_request_id, request_id

log = logging.getLogger("cardex.request")


def csp_allow(
    request, sources: Mapping[str, Iterable[str]], *, nonce: bool = False, popups: bool = False
) -> None:
    """Widen this response's Content-Security-Policy by ``sources`` (directive → sources),
    for a page that embeds a provider's script (PayPal's buttons); with ``nonce`` the
    request's ``csp_nonce`` is allowed in ``script-src`` for the inline scripts such an SDK
    writes; with ``popups`` the page keeps a handle on the provider's popup window
    (``Cross-Origin-Opener-Policy: same-origin-allow-popups``). Every other page keeps the
    base policy."""
    extra = getattr(request, "csp_sources", None)
    if extra is None:
        extra = request.csp_sources = {}
    for directive, values in sources.items():
        extra.setdefault(directive, [])
        extra[directive] += [v for v in values if v not in extra[directive]]
    if nonce:
        request.csp_wants_nonce = True
    if popups:
        request.csp_popups = True


def csp_policy(base: str, extra: Mapping[str, Iterable[str]], nonce: str = "") -> str:
    """``base`` with ``extra`` sources appended per directive; a directive the base lacks
    starts from ``default-src`` (what applied to it before)."""
    directives: dict[str, list[str]] = {}
    for part in base.split(";"):
        name, *values = part.split()
        if name:
            directives[name] = values
    for name, values in extra.items():
        current = directives.setdefault(name, list(directives.get("default-src", [])))
        current += [v for v in values if v not in current]
    if nonce:
        directives.setdefault("script-src", list(directives.get("default-src", [])))
        directives["script-src"].append(f"'nonce-{nonce}'")
    return "; ".join(" ".join([name, *values]) for name, values in directives.items())


def simulators_origin() -> str:
    """The origin (scheme://host[:port]) the simulators are served from when they run as a
    process of their own in sandbox mode (SANDBOX_URL, `make serve`); '' otherwise."""
    if not settings.PAYMENTS_SANDBOX or not settings.SANDBOX_URL:
        return ""
    parts = urlsplit(settings.SANDBOX_URL)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy() -> str:
    """CONTENT_SECURITY_POLICY, with the simulators' own origin allowed for scripts and
    fetches in sandbox mode when they are served apart: their stand-ins of the providers'
    in-page scripts (the WeixinJSBridge) load from there and post back to it. Exactly that
    origin and those two directives; nothing changes outside sandbox mode."""
    policy = settings.CONTENT_SECURITY_POLICY
    origin = simulators_origin()
    if not policy or not origin:
        return policy
    return _with_origin(policy, origin)


@functools.lru_cache(maxsize=16)
def _with_origin(policy: str, origin: str) -> str:
    """Built once per policy and origin, not at every response."""
    directives = [d.strip() for d in policy.split(";") if d.strip()]
    names = [d.split()[0] for d in directives]
    for name in ("script-src", "connect-src"):
        if name in names:
            i = names.index(name)
            if origin not in directives[i].split()[1:]:
                directives[i] = f"{directives[i]} {origin}"
        else:
            fallback = directives[names.index("default-src")] if "default-src" in names else ""
            sources = fallback.split()[1:] or ["'self'"]
            directives.append(" ".join([name, *sources, origin]))
            names.append(name)
    return "; ".join(directives)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(18)
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY and not request.path.startswith("/api/schema/"):
            policy = content_security_policy()
            extra = getattr(request, "csp_sources", None)
            if extra or getattr(request, "csp_wants_nonce", False):
                nonce = request.csp_nonce if getattr(request, "csp_wants_nonce", False) else ""
                policy = csp_policy(policy, extra or {}, nonce)
            response.headers.setdefault("Content-Security-Policy", policy)
        if getattr(request, "csp_popups", False):
            # SecurityMiddleware, further out, only sets its same-origin default when unset
            response.headers["Cross-Origin-Opener-Policy"] = "same-origin-allow-popups"
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
