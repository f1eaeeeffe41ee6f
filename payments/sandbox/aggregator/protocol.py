"""The simulated aggregator's own epay protocol code (independent of the backend's): the
MD5 (v1) and SHA256withRSA (v2) signs over sorted, non-empty parameters, its fee, times and
the export rows."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.utils import timezone

from payments.sandbox import keys

CHANNEL = "aggregator"
BEIJING = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")
#: the pay types this simulated aggregator runs (what a merchant may enable)
TYPES = ("alipay", "wxpay", "qqpay")
#: the sandbox aggregator's fee: 1 % of each payment, half-up to the fen; pro rata on refunds
FEE_RATE = Decimal("0.01")


#: v2: how far a request's ``timestamp`` may be from the aggregator's clock
TIMESTAMP_WINDOW = 300


def epay_content(params: Mapping[str, object]) -> str:
    """a=1&b=2…: parameters sorted by name, empty ones, sign and sign_type left out."""
    kept = []
    for name, value in sorted(params.items(), key=lambda item: item[0]):
        if name in {"sign", "sign_type"} or value is None or str(value) == "":
            continue
        kept.append(name + "=" + str(value))
    return "&".join(kept)


def epay_sign(params: Mapping[str, object], key: str) -> str:
    """v1: md5(a=1&b=2…KEY)."""
    digest = hashlib.new("md5", usedforsecurity=False)
    digest.update((epay_content(params) + key).encode("utf-8"))
    return digest.hexdigest()


def platform_sign(params: Mapping[str, object]) -> str:
    """v2: the aggregator signs its answers and notices with its platform private key."""
    private = keys.provider_private_key(CHANNEL)
    signature = private.sign(
        epay_content(params).encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
    )
    return base64.b64encode(signature).decode("ascii")


def platform_public_pem() -> str:
    return keys.provider_public_pem(CHANNEL)


def merchant_verify(params: Mapping[str, object], public_pem: str) -> bool:
    """v2: a request's sign must verify with the public key the merchant registered."""
    try:
        public = serialization.load_pem_public_key(public_pem.encode())
        public.verify(
            base64.b64decode(str(params.get("sign", "")), validate=True),
            epay_content(params).encode("utf-8"),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def timestamp_now() -> str:
    return str(int(time.time()))


def timestamp_ok(text: object) -> bool:
    try:
        return abs(time.time() - int(str(text))) <= TIMESTAMP_WINDOW
    except ValueError:
        return False


def fee_of(amount: Decimal) -> Decimal:
    return (Decimal(amount) * FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)


def yuan(amount: Decimal) -> str:
    return format(Decimal(amount).quantize(CENT), "f")


def beijing(moment: dt.datetime | None = None) -> str:
    return (moment or timezone.now()).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
