"""The acquirer protocol's envelope: constants, SM2/SM3 signing and verification (on
Tongsuo), Beijing timestamps, merchant credentials and a parsed answer
(docs/channels/ecny.md)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from tongsuopy.crypto import hashes as sm_hashes
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import InvalidSignature as SMInvalidSignature
from tongsuopy.crypto.serialization import Encoding, PublicFormat

from payments.channels.base import (
    ChannelError,
)

BEIJING = ZoneInfo("Asia/Shanghai")
VERSION = "1.0"
SIGN_METHOD = "SM2"
TIME_FORMAT = "%Y%m%d%H%M%S"

API = "polypay/v1.0/mchorders/"
CREATE, QUERY, CLOSE = API + "qrcodeapply", API + "orderquery", API + "close"
REFUND, REFUND_QUERY, STATEMENT = API + "refund", API + "refundquery", API + "statement"

#: platform method → the bank's pay type (``payMethod`` of ``qrcodeapply``)
PAY_METHODS: Mapping[str, str] = {
    "ecny": "ECNY",
    "alipay": "ALIPAY",
    "wechatpay": "WECHAT",
    "unionpay": "UNIONPAY",
}

#: a notification is signed once and re-sent byte-identical on every retry, so the replay
#: window must cover the bank's whole retry schedule (≈ 22 h); clocks may be 5 min apart.
NOTIFY_MAX_AGE = dt.timedelta(hours=24)
CLOCK_SKEW = dt.timedelta(minutes=5)
#: the bank refuses requests whose reqTime is further than this from its clock
REQUEST_TOLERANCE = dt.timedelta(minutes=5)

# ---------------------------------------------------------------------------------------------
# SM2 / SM3 (GB/T 32918, GB/T 32905) on Tongsuo's C implementation (tongsuopy). Its signature
# covers Z_A with the default signer id of GB/T 35276 ("1234567812345678"), as banks and
# OpenSSL's ``distid`` do.

SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
_SM3WITHSM2 = ec.ECDSA(sm_hashes.SM3())


def public_point(public_hex: str) -> str:
    """128 hex digits x‖y of an uncompressed public key ('04' prefix optional), checked to
    lie on the curve (no invalid-curve keys)."""
    text = public_hex.strip().lower()
    if len(text) == 130 and text.startswith("04"):
        text = text[2:]
    if not re.fullmatch(r"[0-9a-f]{128}", text):
        raise ValueError("an SM2 public key is 64 bytes x‖y in hex (optionally prefixed 04)")
    x, y = int(text[:64], 16), int(text[64:], 16)
    if (y * y - (x * x * x + _A * x + _B)) % _P:
        raise ValueError("the SM2 public key is not a point on the curve")
    return text


@functools.lru_cache(maxsize=64)
def _private_key(private_hex: str) -> ec.EllipticCurvePrivateKey:
    d = int(private_hex, 16)
    if not 1 <= d < SM2_N - 1:
        raise ValueError("SM2 private key out of range")
    return ec.derive_private_key(d, ec.SM2())


@functools.lru_cache(maxsize=64)
def _public_key(public_hex: str) -> ec.EllipticCurvePublicKey:
    point = bytes.fromhex("04" + public_point(public_hex))
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SM2(), point)


def sm2_public_of(private_hex: str) -> str:
    public = _private_key(private_hex).public_key()
    return public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex()


def sm2_keypair() -> tuple[str, str]:
    """(private key hex, public key hex '04'‖x‖y) from the OS CSPRNG."""
    private_hex = f"{secrets.randbelow(SM2_N - 2) + 1:064x}"
    return private_hex, sm2_public_of(private_hex)


def sm2_sign(private_hex: str, public_hex: str, message: bytes) -> str:
    """SM3withSM2 over ``message``; base64 of DER SEQUENCE{r, s}. ``public_hex`` must be the
    key's own public half (Z_A is computed from it)."""
    key = _private_key(private_hex)
    if sm2_public_of(private_hex) != "04" + public_point(public_hex):
        raise ValueError("the SM2 public key does not belong to the private key")
    return base64.b64encode(key.sign(message, _SM3WITHSM2)).decode("ascii")


def sm2_verify(public_hex: str, message: bytes, signature: str) -> bool:
    try:
        der = base64.b64decode(signature, validate=True)
        r, s = decode_dss_signature(der)
        key = _public_key(public_hex)
    except (ValueError, binascii.Error, TypeError):
        return False
    if not (1 <= r < SM2_N and 1 <= s < SM2_N):
        return False
    try:
        key.verify(der, message, _SM3WITHSM2)
    except (SMInvalidSignature, InvalidSignature, ValueError, TypeError):
        return False
    return True


def sm3_hex(data: bytes) -> str:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize().hex()


def sign_string(envelope: Mapping[str, Any]) -> str:
    """Every top-level member but ``sign`` with a non-empty string value, sorted, k=v&k=v."""
    return "&".join(
        f"{k}={envelope[k]}"
        for k in sorted(envelope)
        if k != "sign" and isinstance(envelope[k], str) and envelope[k]
    )


def sign_envelope(envelope: Mapping[str, str], private_hex: str, public_hex: str) -> dict[str, str]:
    message = {k: v for k, v in envelope.items() if k != "sign"}
    message["sign"] = sm2_sign(private_hex, public_hex, sign_string(message).encode("utf-8"))
    return message


def verify_envelope(envelope: Mapping[str, Any], public_hex: str) -> bool:
    signature = envelope.get("sign")
    return isinstance(signature, str) and sm2_verify(
        public_hex, sign_string(envelope).encode("utf-8"), signature
    )


def beijing_now() -> dt.datetime:
    return dt.datetime.now(BEIJING)


def stamp(moment: dt.datetime | None = None) -> str:
    return (moment or beijing_now()).astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING)


def compact_json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# Credentials and calls


@dataclass(frozen=True)
class Credentials:
    """Merchant SM2 key pair (hex) and the bank's SM2 public key (hex)."""

    private_key: str
    public_key: str
    bank_public_key: str

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Credentials:
        try:
            private = str(data["merchant_private_key"]).strip().lower()
            public = str(data.get("merchant_public_key") or sm2_public_of(private))
            return cls(
                private,
                "04" + public_point(public),
                "04" + public_point(str(data["bank_public_key"])),
            )
        except (KeyError, ValueError) as exc:
            raise ChannelError(
                f"e-CNY credentials are incomplete or invalid: {exc}", code="CONFIG"
            ) from None


@dataclass(frozen=True)
class Answer:
    ok: bool
    code: str
    message: str
    biz: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
