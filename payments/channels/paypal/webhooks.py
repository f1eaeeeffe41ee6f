"""Offline webhook verification (CRC32 scheme of PayPal's SDK, CHANNELS.md §4.2): the
transmission headers, the signing certificate — fetched only from PayPal or the account's
own base URL, chained to the configured CA — and the SHA256withRSA signature."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import threading
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.utils import timezone

from payments.channels import http
from payments.channels.base import (
    AccountConfig,
    NotificationRejected,
)
from payments.channels.paypal.wire import parse_time

#: Webhook transmissions older than this are refused as stale (replay protection). Every
#: delivery try is a new transmission with its own id, time and signature.
TRANSMISSION_MAX_AGE = dt.timedelta(minutes=15)
#: ...and ones dated further than this in the future (clock skew between PayPal and us).
TRANSMISSION_MAX_SKEW = dt.timedelta(minutes=5)

SUPPORTED_AUTH_ALGO = "SHA256withRSA"


# Webhook certificate PEMs per URL: (pem, monotonic fetch time). Verification runs every time.
_certs: dict[str, tuple[bytes, float]] = {}
_certs_lock = threading.Lock()
CERT_CACHE_SECONDS = 3600


def clear_certificates() -> None:
    """Forget cached signing certificates (tests, key rotation)."""
    with _certs_lock:
        _certs.clear()


def verify_webhook(account: AccountConfig, headers: Mapping[str, str], body: bytes) -> dict:
    """The event of a webhook whose transmission is fresh and whose signature verifies under
    PayPal's certificate for this account's webhook_id; NotificationRejected otherwise."""
    names = (
        "paypal-transmission-id",
        "paypal-transmission-time",
        "paypal-transmission-sig",
        "paypal-cert-url",
        "paypal-auth-algo",
    )
    missing = [name.upper() for name in names if not headers.get(name)]
    if missing:
        raise NotificationRejected(
            f"not a signed PayPal webhook: missing header(s) {', '.join(missing)}"
        )
    transmission_id, transmission_time, signature, cert_url, algo = (
        headers[name] for name in names
    )
    if algo != SUPPORTED_AUTH_ALGO:
        raise NotificationRejected(
            f"unsupported PAYPAL-AUTH-ALGO {algo!r} (expected {SUPPORTED_AUTH_ALGO})"
        )
    sent_at = parse_time(transmission_time)
    if sent_at is None:
        raise NotificationRejected(f"malformed PAYPAL-TRANSMISSION-TIME {transmission_time!r}")
    now = timezone.now()
    if sent_at < now - TRANSMISSION_MAX_AGE:
        raise NotificationRejected(
            f"stale PayPal transmission: PAYPAL-TRANSMISSION-TIME {transmission_time} is more than "
            f"{int(TRANSMISSION_MAX_AGE.total_seconds() // 60)} minutes old"
        )
    if sent_at > now + TRANSMISSION_MAX_SKEW:
        raise NotificationRejected(
            f"PAYPAL-TRANSMISSION-TIME {transmission_time} lies in the future"
        )
    webhook_id = account.credentials.get("webhook_id")
    if not webhook_id:
        raise NotificationRejected(f"PayPal account {account.code!r} has no webhook_id configured")
    certificate = webhook_certificate(account, cert_url)
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise NotificationRejected("malformed PAYPAL-TRANSMISSION-SIG (not base64)") from None
    message = expected_signature_string(transmission_id, transmission_time, str(webhook_id), body)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise NotificationRejected("PayPal webhook certificate does not hold an RSA key")
    try:
        public_key.verify(raw_signature, message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise NotificationRejected(
            "bad PayPal webhook signature: PAYPAL-TRANSMISSION-SIG does not verify for this body "
            "and webhook_id"
        ) from None
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise NotificationRejected("malformed PayPal webhook body: not JSON") from None
    if not isinstance(event, dict):
        raise NotificationRejected("malformed PayPal webhook body: not a JSON object")
    return event


def check_cert_url(account: AccountConfig, cert_url: str) -> None:
    """Fetch signing certificates only from the account's own base URL or PayPal's hosts —
    never from wherever a forged header points (SSRF)."""
    parts = urlsplit(cert_url)
    if parts.username or parts.password or "/../" in parts.path or parts.path.endswith("/.."):
        raise NotificationRejected(f"PAYPAL-CERT-URL {cert_url!r} is not allowed")
    base = urlsplit(account.base_url)
    base_path = base.path if base.path.endswith("/") else base.path + "/"
    if (parts.scheme, parts.netloc) == (base.scheme, base.netloc) and parts.path.startswith(
        base_path
    ):
        return
    host = (parts.hostname or "").lower()
    if (
        parts.scheme == "https"
        and parts.port in (None, 443)
        and (host == "paypal.com" or host.endswith(".paypal.com"))
    ):
        return
    raise NotificationRejected(
        f"PAYPAL-CERT-URL host {host or cert_url!r} is not PayPal's nor this account's base URL"
    )


def webhook_certificate(account: AccountConfig, cert_url: str) -> x509.Certificate:
    """The signing certificate at ``cert_url`` once it chains to ``webhook_ca_pem``."""
    check_cert_url(account, cert_url)
    now = time.monotonic()
    with _certs_lock:
        cached = _certs.get(cert_url)
    if cached and now - cached[1] < CERT_CACHE_SECONDS:
        pem = cached[0]
    else:
        parts = urlsplit(cert_url)
        response = http.send(f"{parts.scheme}://{parts.netloc}", "GET", cert_url, idempotent=True)
        if response.status_code != 200:
            raise NotificationRejected(f"PAYPAL-CERT-URL answered HTTP {response.status_code}")
        pem = response.content
        with _certs_lock:
            if len(_certs) > 64:
                _certs.clear()
            _certs[cert_url] = (pem, now)
    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise NotificationRejected("PAYPAL-CERT-URL did not serve a PEM certificate") from None
    ca_pem = account.credentials.get("webhook_ca_pem")
    if not ca_pem:
        raise NotificationRejected(
            f"PayPal account {account.code!r} has no webhook_ca_pem configured"
        )
    try:
        anchors = x509.load_pem_x509_certificates(str(ca_pem).encode())
    except ValueError:
        raise NotificationRejected("webhook_ca_pem is not a PEM certificate") from None
    verify_certificate_chain(chain, anchors, now=timezone.now())
    return chain[0]


def expected_signature_string(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> str:
    """``transmission_id|transmission_time|webhook_id|crc32`` with the CRC32 of the raw body as
    an unsigned decimal (PayPal SDK ``_get_expected_sig``, CHANNELS.md §4.2)."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{binascii.crc32(body) & 0xFFFFFFFF}"


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_validity(certificate: x509.Certificate, now: dt.datetime, what: str) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise NotificationRejected(
            f"{what} {_common_name(certificate)!r} is expired or not yet valid"
        )


def verify_certificate_chain(
    chain: list[x509.Certificate], anchors: list[x509.Certificate], *, now: dt.datetime
) -> None:
    """The leaf (first certificate) must be valid now, name a ``*.paypal.com`` host and chain —
    through CA certificates served with it, if any — to one of ``anchors`` (§4.2)."""
    if not chain:
        raise NotificationRejected("PAYPAL-CERT-URL served no certificate")
    leaf = chain[0]
    _check_validity(leaf, now, "PayPal webhook certificate")
    if not _common_name(leaf).lower().endswith(".paypal.com"):
        raise NotificationRejected(
            f"PayPal webhook certificate is for {_common_name(leaf)!r}, not a .paypal.com host"
        )
    current, intermediates = leaf, [c for c in chain[1:] if _is_ca(c)]
    for _depth in range(5):
        for anchor in anchors:
            if current.issuer == anchor.subject and _issued_by(current, anchor):
                _check_validity(anchor, now, "PayPal CA certificate")
                return
        parent = next(
            (c for c in intermediates if current.issuer == c.subject and _issued_by(current, c)),
            None,
        )
        if parent is None:
            break
        _check_validity(parent, now, "PayPal intermediate certificate")
        current = parent
    raise NotificationRejected(
        "PayPal webhook certificate does not chain to the configured webhook_ca_pem"
    )


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
