"""WeChat Pay APIv3's wire format (CHANNELS.md §2.1-§2.4): the request signature and its
Authorization header, the canonical URL it covers, the platform's signed answers, the
AES-256-GCM notification resource, and the trade and refund states."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Mapping
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.channels.base import (
    Outcome,
    RefundOutcome,
    header_map,
)
from payments.channels.signing import sha256_rsa_sign, sha256_rsa_verify

BEIJING = ZoneInfo("Asia/Shanghai")
SCHEME = "WECHATPAY2-SHA256-RSA2048"
MAX_CLOCK_SKEW = 300  # seconds: "reject if |now - timestamp| >= 5 minutes" (§2.2)
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"  # WeChat's deliberate bad-signature probes (§2.2)

#: trade_state → contract outcome (§2.4). REFUND means "paid, then (partly) refunded".
TRADE_STATE: Mapping[str, Outcome] = {
    "SUCCESS": "succeeded",
    "REFUND": "succeeded",
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "ACCEPT": "pending",
    "CLOSED": "closed",
    "REVOKED": "closed",
    "PAYERROR": "failed",
}
REFUND_STATUS: Mapping[str, RefundOutcome] = {
    "SUCCESS": "succeeded",
    "PROCESSING": "pending",
    "CLOSED": "failed",
    "ABNORMAL": "failed",
}
EVENTS = {"TRANSACTION.SUCCESS", "REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"}


# ---------------------------------------------------------------------------------------------
# Signatures and encryption


# SHA256withRSA (PKCS#1 v1.5) over the UTF-8 message, base64 (§2.1, §2.2); the merchant key
# and the 微信支付公钥 may be PEM or bare base64, platform certificates PEM.
sign_message = sha256_rsa_sign
verify_message = sha256_rsa_verify


def request_message(method: str, canonical_url: str, timestamp: str, nonce: str, body: str) -> str:
    """``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` — every line ends with ``\\n``, an empty
    body (GET) still contributes its line (§2.1)."""
    return f"{method}\n{canonical_url}\n{timestamp}\n{nonce}\n{body}\n"


def canonical_url(url: str) -> str:
    """The raw path plus ``?query`` the server sees — what the signature covers (§2.1)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def authorization(
    *,
    mchid: str,
    serial_no: str,
    private_key: str,
    method: str,
    url: str,
    body: str,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> str:
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or secrets.token_hex(16).upper()
    signature = sign_message(
        request_message(method, canonical_url(url), timestamp, nonce, body), private_key
    )
    return (
        f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


def decrypt_resource(*, ciphertext: str, nonce: str, associated_data: str, apiv3_key: str) -> bytes:
    """AEAD_AES_256_GCM with the APIv3 key (32 ASCII bytes); input is base64(ciphertext‖tag)
    (§2.3)."""
    key = apiv3_key.encode("utf-8")
    if len(key) != 32:
        raise ValueError("the APIv3 key must be 32 bytes")
    return AESGCM(key).decrypt(
        nonce.encode("utf-8"),
        base64.b64decode(ciphertext, validate=True),
        associated_data.encode("utf-8"),
    )


normalise_headers = header_map


def path_segment(value: str) -> str:
    """A path segment percent-encoded like the canonical URL servers rebuild (RFC 3986
    sub-delims, ``:`` and ``@`` stay literal), so the signed path is the path received."""
    return quote(value, safe=":@&+$,!~*'()")
