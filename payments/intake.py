"""The notify endpoint's guard: what an unauthenticated request may cost us in storage.

Channels post notifications to ``/payments/notify/<account>/`` without any log-in, so anyone
can. Before anything is stored a request is screened: an unknown account, a body larger than
the channel's ``max_notification_bytes`` or an address that has sent too many notices that
failed verification is refused and only counted (``NotificationRefusal``, one row per day,
account and reason). A notice that passes screening but fails verification keeps its first
``UNVERIFIED_KEEP_BYTES`` bytes and its size; a verified one is kept whole, raw.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from payments.accounts import notification_account
from payments.channels.base import ChannelBackend, NotifyReply
from payments.models import ChannelAccount, Notification, NotificationRefusal

log = logging.getLogger(__name__)

#: bytes of an unverified body kept for staff to see what was sent
UNVERIFIED_KEEP_BYTES = 1024
#: headers of an unverified request kept, and the length each value is cut to
UNVERIFIED_KEEP_HEADERS = 30
UNVERIFIED_HEADER_CHARS = 256
#: when the account is not known yet, the largest body the screen lets through
DEFAULT_MAX_BYTES = ChannelBackend.max_notification_bytes
FAILURE_WINDOW_SECONDS = 60


def max_body_bytes(backend: ChannelBackend | None) -> int:
    return backend.max_notification_bytes if backend is not None else DEFAULT_MAX_BYTES


def notification_screen(
    *, account_code: str, size: int, remote_addr: str | None
) -> NotifyReply | None:
    """The reply refusing this request before it is read or stored, or None to go on."""
    account, backend = notification_account(account_code)
    if account is None:
        refusal_count(
            account_code="",
            reason=NotificationRefusal.Reason.UNKNOWN_ACCOUNT,
            size=size,
            remote_addr=remote_addr,
        )
        return NotifyReply(status=404, body=b"unknown channel")
    if size > max_body_bytes(backend):
        refusal_count(
            account_code=account.code,
            reason=NotificationRefusal.Reason.TOO_LARGE,
            size=size,
            remote_addr=remote_addr,
        )
        return NotifyReply(status=413, body=b"notification too large")
    if remote_addr and _failures(remote_addr) >= settings.PAYMENTS_NOTIFY_FAILURES_PER_MINUTE:
        refusal_count(
            account_code=account.code,
            reason=NotificationRefusal.Reason.RATE_LIMITED,
            size=size,
            remote_addr=remote_addr,
        )
        return NotifyReply(status=429, body=b"too many failed notifications")
    return None


def refusal_count(*, account_code: str, reason: str, size: int, remote_addr: str | None) -> None:
    """Add one refused request to today's row for this account and reason."""
    now = timezone.now()
    key = {"day": timezone.localdate(now), "channel_code": account_code[:40], "reason": reason}
    changes = {
        "count": F("count") + 1,
        "bytes": F("bytes") + max(size, 0),
        "last_at": now,
        "last_remote_addr": remote_addr or None,
    }
    log.warning(
        "notification refused (%s) on %r from %s, %d bytes",
        reason,
        account_code or "?",
        remote_addr,
        size,
    )
    if NotificationRefusal.objects.filter(**key).update(**changes):
        return
    try:
        with transaction.atomic():
            NotificationRefusal.objects.create(
                **key,
                count=1,
                bytes=max(size, 0),
                last_at=now,
                last_remote_addr=remote_addr or None,
            )
    except IntegrityError:  # another request created today's row first
        NotificationRefusal.objects.filter(**key).update(**changes)


def _failure_key(remote_addr: str) -> str:
    return f"notify-fail:{remote_addr}:{int(time.time() // FAILURE_WINDOW_SECONDS)}"


def _failures(remote_addr: str) -> int:
    return cache.get(_failure_key(remote_addr), 0)


def failure_note(remote_addr: str | None) -> None:
    """One more notice from this address failed verification (counted for the screen)."""
    if not remote_addr:
        return
    key = _failure_key(remote_addr)
    if cache.add(key, 1, timeout=FAILURE_WINDOW_SECONDS * 2):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=FAILURE_WINDOW_SECONDS * 2)


def unverified_keep(
    *,
    account: ChannelAccount,
    account_code: str,
    method: str,
    headers: Mapping[str, str],
    body: bytes,
    remote_addr: str | None,
    outcome: str,
    detail: str,
) -> Notification:
    """Store a notice that failed verification: its size, the first bytes of its body and a
    bounded set of headers — enough for staff to see what came, not a way to fill the disk."""
    failure_note(remote_addr)
    kept_headers = {
        str(name)[:UNVERIFIED_HEADER_CHARS]: str(value)[:UNVERIFIED_HEADER_CHARS]
        for name, value in list(headers.items())[:UNVERIFIED_KEEP_HEADERS]
    }
    return Notification.objects.create(
        account=account,
        channel_code=account_code[:40],
        method=method,
        headers=kept_headers,
        body=body[:UNVERIFIED_KEEP_BYTES],
        body_size=len(body),
        body_truncated=len(body) > UNVERIFIED_KEEP_BYTES,
        remote_addr=remote_addr or None,
        outcome=outcome,
        detail=detail[:2000],
        flagged=True,
    )
