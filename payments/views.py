import ipaddress

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from payments import intake, services
from payments.client import request_ip

_SKIPPED_HEADERS = {"cookie", "authorization"}


def _client_ip(request) -> str | None:
    """The sender's address as payments.client reads it (TRUSTED_PROXY_COUNT), or None when
    that is not an IP address. The per-address failure rate depends on it: the proxy's own
    address would let one forger silence every channel."""
    try:
        return str(ipaddress.ip_address(request_ip(request)))
    except ValueError:
        return None


@csrf_exempt  # channels sign their own messages; a CSRF token cannot apply
@require_http_methods(["GET", "POST"])
def notify(request, account_code):
    """Inbound channel notifications: screened before the body is read (unknown account, too
    large, an address sending forgeries), then verified, stored, applied once and answered in
    the channel's own format. epay aggregators notify by GET: the query string is the body."""
    remote_addr = _client_ip(request)
    if request.method == "GET":
        body = request.META.get("QUERY_STRING", "").encode()
        announced = len(body)
    else:
        body = None
        try:
            announced = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            announced = 0
    refusal = intake.notification_screen(
        account_code=account_code, size=announced, remote_addr=remote_addr
    )
    if refusal is None and body is None:
        body = request.body
        if len(body) > announced:  # no or a wrong Content-Length: screen the real size
            refusal = intake.notification_screen(
                account_code=account_code, size=len(body), remote_addr=remote_addr
            )
    if refusal is not None:
        return _reply(refusal)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIPPED_HEADERS}
    return _reply(
        services.notification_receive(
            account_code=account_code,
            headers=headers,
            body=body,
            remote_addr=remote_addr,
            method=request.method,
        )
    )


def _reply(reply) -> HttpResponse:
    return HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)
