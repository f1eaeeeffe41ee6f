"""Outbound HTTP for channel backends: one pooled client per base URL, explicit timeouts,
retries with back-off only for idempotent calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from payments.channels.base import ChannelTimeout, ChannelUnavailable

_clients: dict[str, httpx.Client] = {}
_lock = threading.Lock()


def _transport() -> httpx.BaseTransport | None:
    spec = settings.PAYMENTS_HTTP_TRANSPORT
    if spec is None:
        return None
    factory = import_string(spec) if isinstance(spec, str) else spec
    return factory()


def client(base_url: str) -> httpx.Client:
    """A keep-alive client for one channel endpoint (connection pooling across requests)."""
    key = base_url.rstrip("/")
    transport_key = id(settings.PAYMENTS_HTTP_TRANSPORT)
    cache_key = f"{transport_key}|{key}"
    with _lock:
        found = _clients.get(cache_key)
        if found is None or found.is_closed:
            found = httpx.Client(
                base_url=key,
                timeout=httpx.Timeout(settings.PAYMENTS_HTTP_TIMEOUT, connect=5.0),
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
                transport=_transport(),
                headers={"User-Agent": "Cardex-Payments/1"},
            )
            _clients[cache_key] = found
        return found


def reset_clients() -> None:
    with _lock:
        for c in _clients.values():
            c.close()
        _clients.clear()


def send(
    base_url: str,
    method: str,
    url: str,
    *,
    idempotent: bool = False,
    retries: int = 2,
    backoff: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs,
) -> httpx.Response:
    """Send one request; map transport failures to ChannelUnavailable / ChannelTimeout.

    Only idempotent calls (queries, downloads, refunds keyed by refund number) are retried:
    re-sending a create could open a second trade at the channel.
    """
    tries = retries + 1 if idempotent else 1
    for attempt in range(tries):
        try:
            response = client(base_url).request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            error: Exception = ChannelTimeout(f"{method} {url} timed out", code="TIMEOUT")
            cause = exc
        except httpx.TransportError as exc:
            error = ChannelUnavailable(
                f"{method} {url} failed: {type(exc).__name__}", code="UNAVAILABLE"
            )
            cause = exc
        else:
            if response.status_code >= 500 and attempt + 1 < tries:
                sleep(backoff * (2**attempt))
                continue
            if response.status_code >= 500:
                raise ChannelUnavailable(
                    f"{method} {url} answered HTTP {response.status_code}",
                    code=f"HTTP_{response.status_code}",
                )
            return response
        if attempt + 1 < tries:
            sleep(backoff * (2**attempt))
            continue
        raise error from cause
    raise AssertionError("unreachable")
