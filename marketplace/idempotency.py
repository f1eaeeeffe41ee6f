"""``Idempotency-Key`` for state-changing API calls: a client that retries a POST (timeout,
lost answer) with the same key gets the first answer back instead of a second order.

Use :func:`idempotent` on a DRF view method, or mix :class:`IdempotentPostMixin` into a view.
Keys are per user; the same key with a different request body (or path) is refused (422),
and a repeat that arrives while the first is still running is told to retry (409). Answers
of 5xx are not stored, so a retry after a crash runs again.
"""

from __future__ import annotations

import functools
import hashlib
import json

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from payments.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 128


def _request_hash(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.path.encode())
    digest.update(b"\0")
    digest.update(json.dumps(request.data, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response_body, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(handler):
    """Decorate ``post``/``put``/``patch``/``delete`` of an APIView."""

    @functools.wraps(handler)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        user = request.user
        if not key or not getattr(user, "is_authenticated", False):
            return handler(self, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            return Response(
                {
                    "detail": _("The Idempotency-Key header is longer than %(n)d characters.")
                    % {"n": MAX_KEY_LENGTH}
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        fingerprint = _request_hash(request)
        record = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if record is None:
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        user=user,
                        key=key,
                        method=request.method,
                        path=request.path[:255],
                        request_hash=fingerprint,
                    )
            except IntegrityError:
                record = IdempotencyRecord.objects.get(user=user, key=key)
            else:
                return _run_and_store(self, handler, request, record, args, kwargs)
        if record.request_hash != fingerprint:
            return Response(
                {
                    "detail": _(
                        "This Idempotency-Key was used for a different request; use a new key."
                    )
                },
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        if record.status_code is None:
            return Response(
                {
                    "detail": _(
                        "A request with this Idempotency-Key is still being processed; retry "
                        "shortly."
                    )
                },
                status=status.HTTP_409_CONFLICT,
            )
        return _replay(record)

    return wrapper


def _run_and_store(view, handler, request, record, args, kwargs) -> Response:
    try:
        response = handler(view, request, *args, **kwargs)
    except Exception:
        record.delete()
        raise
    if response.status_code >= 500:
        record.delete()
        return response
    body = json.loads(JSONRenderer().render(response.data)) if response.data is not None else None
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=response.status_code, response_body=body
    )
    return response


class IdempotentPostMixin:
    """Makes an APIView's ``post`` honour ``Idempotency-Key``."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "post" in cls.__dict__:
            cls.post = idempotent(cls.__dict__["post"])
