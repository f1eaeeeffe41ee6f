"""The acquirer protocol as the simulated bank speaks it, implemented here and not borrowed
from the backend: SM2 signatures (GB/T 32918.2) computed with plain integer arithmetic on the
recommended curve, SM3 from OpenSSL (through ``cryptography``), the envelope's string to sign
and its timestamps (docs/channels/ecny.md). A mistake in the backend's signing therefore fails
the round trip instead of being mirrored by the simulator.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

BEIJING = ZoneInfo("Asia/Shanghai")
VERSION = "1.0"
SIGN_METHOD = "SM2"
TIME_FORMAT = "%Y%m%d%H%M%S"
#: the bank refuses requests whose reqTime is further than this from its clock
REQUEST_TOLERANCE = dt.timedelta(minutes=5)
FILE_TAG = "ECNY-RECON"

# sm2p256v1, GB/T 32918.5
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
G = (
    0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)
#: the default signer id of GB/T 35276 (what banks and OpenSSL's ``distid`` use)
USER_ID = b"1234567812345678"

Point = tuple[int, int] | None


def _double(p: tuple[int, int, int]) -> tuple[int, int, int]:
    """Point doubling in Jacobian coordinates (X/Z², Y/Z³): no inversion per step."""
    x, y, z = p
    if not y:
        return 0, 1, 0
    yy = y * y % P
    s = 4 * x * yy % P
    zz = z * z % P
    m = (3 * x * x + A * zz * zz) % P
    x3 = (m * m - 2 * s) % P
    return x3, (m * (s - x3) - 8 * yy * yy) % P, 2 * y * z % P


def _add_jacobian(p: tuple[int, int, int], q: tuple[int, int, int]) -> tuple[int, int, int]:
    if not p[2]:
        return q
    if not q[2]:
        return p
    (x1, y1, z1), (x2, y2, z2) = p, q
    z1z1, z2z2 = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2z2 % P, x2 * z1z1 % P
    s1, s2 = y1 * z2 * z2z2 % P, y2 * z1 * z1z1 % P
    if u1 == u2:
        return _double(p) if s1 == s2 else (0, 1, 0)
    h, r = (u2 - u1) % P, (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    return x3, (r * (v - x3) - s1 * hhh) % P, h * z1 * z2 % P


def _mul(k: int, point: tuple[int, int]) -> Point:
    """k·point (double-and-add), back in affine coordinates; None for the point at infinity."""
    result, addend = (0, 1, 0), (point[0], point[1], 1)
    while k:
        if k & 1:
            result = _add_jacobian(result, addend)
        addend = _double(addend)
        k >>= 1
    x, y, z = result
    if not z:
        return None
    zinv = pow(z, -1, P)
    return x * zinv * zinv % P, y * zinv * zinv * zinv % P


def _add(p1: Point, p2: Point) -> Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        slope = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def _sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def sm3_hex(data: bytes) -> str:
    return _sm3(data).hex()


def _public(public_hex: str) -> tuple[int, int]:
    text = public_hex.strip().lower()
    if len(text) == 130 and text.startswith("04"):
        text = text[2:]
    if not re.fullmatch(r"[0-9a-f]{128}", text):
        raise ValueError("an SM2 public key is 64 bytes x‖y in hex (optionally prefixed 04)")
    x, y = int(text[:64], 16), int(text[64:], 16)
    if (y * y - x * x * x - A * x - B) % P:
        raise ValueError("the SM2 public key is not a point on the curve")
    return x, y


def _e(public: tuple[int, int], message: bytes) -> int:
    """e = SM3(Z_A ‖ M), Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA) — GB/T 32918.2 §5.5."""
    z = _sm3(
        (len(USER_ID) * 8).to_bytes(2, "big")
        + USER_ID
        + b"".join(v.to_bytes(32, "big") for v in (A, B, *G, *public))
    )
    return int.from_bytes(_sm3(z + message), "big")


def keypair() -> tuple[str, str]:
    """(private key hex, public key hex ``04``‖x‖y)."""
    d = secrets.randbelow(N - 2) + 1
    x, y = _mul(d, G)
    return f"{d:064x}", f"04{x:064x}{y:064x}"


def sign(private_hex: str, public_hex: str, message: bytes) -> str:
    """SM2 signature of ``message`` by the key pair; base64 of DER SEQUENCE{r, s}."""
    d = int(private_hex, 16)
    e = _e(_public(public_hex), message)
    while True:
        k = secrets.randbelow(N - 1) + 1
        x1, _y1 = _mul(k, G)  # k < N: never the point at infinity
        r = (e + x1) % N
        if r == 0 or r + k == N:
            continue
        s = pow(1 + d, -1, N) * (k - r * d) % N
        if s:
            return base64.b64encode(encode_dss_signature(r, s)).decode("ascii")


def verify(public_hex: str, message: bytes, signature: str) -> bool:
    try:
        public = _public(public_hex)
        r, s = decode_dss_signature(base64.b64decode(signature, validate=True))
    except (ValueError, binascii.Error, TypeError):
        return False
    if not (1 <= r < N and 1 <= s < N):
        return False
    t = (r + s) % N
    if t == 0:
        return False
    point = _add(_mul(s, G), _mul(t, public))
    return point is not None and (_e(public, message) + point[0]) % N == r


def string_to_sign(envelope: Mapping[str, Any]) -> str:
    """Top-level members but ``sign`` whose value is a non-empty string, sorted, ``k=v&…``."""
    members = {k: v for k, v in envelope.items() if k != "sign" and isinstance(v, str) and v}
    return "&".join(f"{key}={members[key]}" for key in sorted(members))


def sign_envelope(envelope: Mapping[str, str], private_hex: str, public_hex: str) -> dict[str, str]:
    message = {k: v for k, v in envelope.items() if k != "sign"}
    message["sign"] = sign(private_hex, public_hex, string_to_sign(message).encode("utf-8"))
    return message


def verify_envelope(envelope: Mapping[str, Any], public_hex: str) -> bool:
    signature = envelope.get("sign")
    if not isinstance(signature, str):
        return False
    return verify(public_hex, string_to_sign(envelope).encode("utf-8"), signature)


def beijing_now() -> dt.datetime:
    return dt.datetime.now(BEIJING)


def stamp(moment: dt.datetime | None = None) -> str:
    return (moment or beijing_now()).astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING)


def compact_json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
