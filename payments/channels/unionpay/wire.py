"""ACP 5.1.0 messages: constants, the SHA256withRSA(sha256hex) signature, UnionPay's
signing-certificate checks, the raw ``k=v&k=v`` answers, merchant credentials and
Beijing timestamps (CHANNELS.md §3.1–3.2)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from payments.channels.base import (
    ChannelError,
)

BEIJING = ZoneInfo("Asia/Shanghai")
VERSION = "5.1.0"
SIGN_METHOD_RSA = "01"
CURRENCY_CNY = "156"
#: the owner name UnionPay's signing certificates carry in the third ``@`` part of their CN
UNIONPAY_CN_NAME = "中国银联股份有限公司"

FRONT_TRANS = "gateway/api/frontTransReq.do"
BACK_TRANS = "gateway/api/backTransReq.do"
QUERY_TRANS = "gateway/api/queryTrans.do"

TXN_TIME_RE = re.compile(r"\d{14}")
QUERY_ID_RE = re.compile(r"[0-9A-Za-z]{21}")
ORDER_ID_RE = re.compile(r"[0-9A-Za-z]{8,32}")


# ---------------------------------------------------------------------------------------------
# Signing (§3.2)


def sign_string(fields: Mapping[str, str]) -> str:
    """The ACP string-to-sign: every field but ``signature``, sorted by key, ``k=v`` joined by
    ``&``, values as they are (SDK ``coverMap2String``)."""
    return "&".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "signature")


def sign_digest(fields: Mapping[str, str]) -> bytes:
    """What RSA signs under 5.1.0: the ASCII bytes of the lowercase hex SHA-256 of the string."""
    return hashlib.sha256(sign_string(fields).encode("utf-8")).hexdigest().encode("ascii")


def sign(fields: Mapping[str, str], private_key: rsa.RSAPrivateKey, cert_id: str) -> dict[str, str]:
    """Return the message with ``certId`` and ``signature`` added; empty values are dropped
    first, as the SDK's ``filterBlank`` does before signing."""
    message = {k: v for k, v in fields.items() if v not in ("", None) and k != "signature"}
    message["certId"] = cert_id
    raw = private_key.sign(sign_digest(message), padding.PKCS1v15(), hashes.SHA256())
    message["signature"] = base64.b64encode(raw).decode("ascii")
    return message


def verify(fields: Mapping[str, str], public_key: rsa.RSAPublicKey) -> bool:
    """SHA256withRSA over sha256hex(string-to-sign) with the given key. Blank fields are left
    out first, as the official demo's ``getAllRequestParam`` removes them before
    ``AcpService.validate``: UnionPay signs only the fields it fills."""
    try:
        signature = base64.b64decode(fields.get("signature", ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    if not signature:
        return False
    try:
        filled = {k: v for k, v in fields.items() if v not in ("", None)}
        public_key.verify(signature, sign_digest(filled), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def load_certificates(pem: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"not a PEM certificate bundle: {exc}") from None


def owner_of(cert: x509.Certificate) -> str:
    """The third ``@``-separated part of the subject CN (SDK ``getIdentitiesFromCertficate``)."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not names:
        return ""
    parts = str(names[0].value).split("@")
    return parts[2] if len(parts) > 2 else ""


def verify_signing_cert(
    cert_pem: str, trusted_ca_pem: str, *, now: dt.datetime | None = None
) -> x509.Certificate:
    """Accept ``signPubKeyCert`` only if it is valid now, chains to the trusted UnionPay
    root through the configured middle certificate(s), and is owned by UnionPay.

    Raises ValueError naming the problem. Mirrors the SDK: validity, PKIX chain to the root
    anchor (revocation off), then the CN owner check."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("signPubKeyCert is not a PEM certificate") from None
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ValueError("signPubKeyCert is outside its validity period")
    anchors = load_certificates(trusted_ca_pem)
    chain = cert
    for _depth in range(len(anchors) + 1):
        issuer = next(
            (ca for ca in anchors if ca.subject == chain.issuer and _issued_by(chain, ca)), None
        )
        if issuer is None:
            raise ValueError("signPubKeyCert does not chain to the configured UnionPay CA")
        if not issuer.not_valid_before_utc <= now <= issuer.not_valid_after_utc:
            raise ValueError("a UnionPay CA certificate in the chain has expired")
        if not _is_ca(issuer):
            raise ValueError("a certificate in the chain is not a CA")
        if issuer.subject == issuer.issuer:  # reached the root anchor
            break
        chain = issuer
    else:
        raise ValueError("signPubKeyCert chain is too long")
    if owner_of(cert) != UNIONPAY_CN_NAME:
        raise ValueError(f"signPubKeyCert belongs to {owner_of(cert)!r}, not {UNIONPAY_CN_NAME}")
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise ValueError("signPubKeyCert does not hold an RSA key")
    return cert


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def parse_response(text: str) -> dict[str, str]:
    """Parse a synchronous ACP answer (raw ``k=v&k=v``, not URL-encoded; a value wrapped in
    ``{}`` or ``[]`` may contain ``&`` and ``=`` — SDK ``convertResultStringToMap``)."""
    result: dict[str, str] = {}
    key, value, in_key, depth = [], [], True, 0
    closing = {"{": "}", "[": "]"}
    opener = ""
    for ch in text.strip():
        if in_key:
            if ch == "=":
                in_key = False
            else:
                key.append(ch)
            continue
        if depth == 0 and ch == "&":
            result["".join(key)] = "".join(value)
            key, value, in_key = [], [], True
            continue
        if depth == 0 and not value and ch in closing:
            opener, depth = ch, 1
        elif depth and ch == opener:
            depth += 1
        elif depth and ch == closing.get(opener):
            depth -= 1
        value.append(ch)
    if key:
        result["".join(key)] = "".join(value)
    return result


def render_response(fields: Mapping[str, str]) -> str:
    """The inverse of :func:`parse_response` (what UnionPay writes back)."""
    return "&".join(f"{k}={v}" for k, v in fields.items())


# ---------------------------------------------------------------------------------------------
# Credentials


@dataclass(frozen=True)
class Credentials:
    """What a merchant configures: its signing key + that certificate's serial (certId),
    and the UnionPay root + middle CA certificates that vouch for UnionPay's signing cert."""

    private_key: rsa.RSAPrivateKey
    cert_id: str
    trusted_ca_pem: str
    file_download_url: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Credentials:
        """Accept either a PEM key + certId, or the ``.pfx`` UnionPay issues (base64) with its
        password — the certId is then the certificate's serial in decimal, as the SDK reads it."""
        trusted = str(data.get("trusted_ca_pem", ""))
        if not trusted:
            raise ChannelError(
                "UnionPay credentials lack trusted_ca_pem (root + middle CA)", code="CONFIG"
            )
        if data.get("sign_cert_pfx"):
            blob = base64.b64decode(str(data["sign_cert_pfx"]))
            password = str(data.get("sign_cert_password", "")).encode() or None
            key, cert, _ = pkcs12.load_key_and_certificates(blob, password)
            if key is None or cert is None:
                raise ChannelError("the .pfx holds no key/certificate pair", code="CONFIG")
            cert_id = str(cert.serial_number)
        else:
            key = serialization.load_pem_private_key(
                str(data.get("sign_private_key", "")).encode(), password=None
            )
            cert_id = str(data.get("sign_cert_id", ""))
        if not isinstance(key, rsa.RSAPrivateKey) or not cert_id.isdigit():
            raise ChannelError(
                "UnionPay credentials need an RSA signing key and its certId", code="CONFIG"
            )
        return cls(key, cert_id, trusted, str(data.get("file_download_url", "")))


def beijing_now() -> dt.datetime:
    return dt.datetime.now(BEIJING)


def txn_time(moment: dt.datetime | None = None) -> str:
    return (moment or beijing_now()).astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def trace_moment(trace_time: str, order_time: str) -> dt.datetime | None:
    """traceTime is MMDDhhmmss (no year): give it the year that puts it nearest the order's
    txnTime (an order sent on 31 Dec may be paid on 1 Jan)."""
    if not TXN_TIME_RE.fullmatch(order_time or ""):
        return None
    base = dt.datetime.strptime(order_time, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    if not re.fullmatch(r"\d{10}", trace_time or ""):
        return base
    return with_year(trace_time, base)


def with_year(mmddhhmmss: str, anchor: dt.datetime) -> dt.datetime | None:
    """The moment MMDDhhmmss within half a year of ``anchor`` (Beijing); None if invalid."""
    for year in (anchor.year, anchor.year + 1, anchor.year - 1):
        try:
            moment = dt.datetime.strptime(f"{year}{mmddhhmmss}", "%Y%m%d%H%M%S").replace(
                tzinfo=BEIJING
            )
        except ValueError:
            continue
        if abs(moment - anchor) <= dt.timedelta(days=183):
            return moment
    return None
