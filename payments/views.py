from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from payments import services

_SKIPPED_HEADERS = {"cookie", "authorization"}


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@csrf_exempt  # channels sign their own messages; a CSRF token cannot apply
@require_http_methods(["GET", "POST"])
def notify(request, account_code):
    """Inbound channel notifications: stored raw, verified, applied once, answered in the
    channel's own format. epay aggregators notify by GET: the query string is the body."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIPPED_HEADERS}
    body = request.META.get("QUERY_STRING", "").encode() if request.method == "GET" else request.body
    reply = services.notification_receive(
        account_code=account_code, headers=headers, body=body, remote_addr=_client_ip(request),
        method=request.method,
    )
    return HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)
