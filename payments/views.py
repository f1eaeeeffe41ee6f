import ipaddress

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments import intake, services

_SKIPPED_HEADERS = {"cookie", "authorization"}


def _client_ip(request) -> str | None:
    """The sender's address: behind TRUSTED_PROXY_COUNT proxies, the entry the outermost of
    ours appended to X-Forwarded-For (what is left of it can be forged), else REMOTE_ADDR.
    The per-address failure rate depends on it: the proxy's own address would let one
    forger silence every channel."""
    address = request.META.get("REMOTE_ADDR") or ""
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= count:
            address = hops[-count]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


@csrf_exempt  # channels sign their own messages; a CSRF token cannot apply
@require_POST
def notify(request, account_code):
    """Inbound channel notifications: screened before the body is read (unknown account, too
    large, an address sending forgeries), then verified, stored, applied once and answered in
    the channel's own format."""
    remote_addr = _client_ip(request)
    try:
        announced = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        announced = 0
    refusal = intake.notification_screen(
        account_code=account_code, size=announced, remote_addr=remote_addr
    )
    if refusal is None:
        body = request.body
        if len(body) > announced:  # no or a wrong Content-Length: screen the real size
            refusal = intake.notification_screen(
                account_code=account_code, size=len(body), remote_addr=remote_addr
            )
    if refusal is not None:
        return _reply(refusal)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIPPED_HEADERS}
    return _reply(services.notification_receive(
        account_code=account_code, headers=headers, body=body, remote_addr=remote_addr,
    ))


def _reply(reply) -> HttpResponse:
    return HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)
