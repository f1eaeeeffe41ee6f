"""The sandbox's OAuth2 client-credentials tokens: HMAC-signed, carrying the merchant and
the expiry, so no token table is needed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

from django.http import HttpRequest, JsonResponse

from payments.sandbox import keys
from payments.sandbox.models import (
    SandboxMerchant,
)
from payments.sandbox.paypal.resources import CHANNEL, TOKEN_TTL


def _token_secret() -> bytes:
    return keys.provider_file("paypal-token.secret", lambda: secrets.token_hex(32)).encode()


def issue_token(merchant_id: str, *, ttl: int = TOKEN_TTL) -> str:
    payload = (
        base64.urlsafe_b64encode(f"{merchant_id}|{int(time.time()) + ttl}".encode())
        .decode()
        .rstrip("=")
    )
    mac = hmac.new(_token_secret(), payload.encode(), hashlib.sha256).hexdigest()[:40]
    return f"A21AA{payload}.{mac}"


def _token_merchant(token: str) -> SandboxMerchant | None:
    if not token.startswith("A21AA") or "." not in token:
        return None
    payload, mac = token[5:].rsplit(".", 1)
    expected = hmac.new(_token_secret(), payload.encode(), hashlib.sha256).hexdigest()[:40]
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        merchant_id, expires = (
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().rsplit("|", 1)
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if int(expires) < time.time():
        return None
    return SandboxMerchant.objects.filter(channel=CHANNEL, merchant_id=merchant_id).first()


def authenticate(request: HttpRequest) -> SandboxMerchant | JsonResponse:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return JsonResponse(
            {
                "error": "invalid_token",
                "error_description": "No access token in the Authorization header",
            },
            status=401,
        )
    merchant = _token_merchant(header[7:].strip())
    if merchant is None:
        return JsonResponse(
            {
                "error": "invalid_token",
                "error_description": "Token signature verification failed or token expired",
            },
            status=401,
        )
    return merchant
