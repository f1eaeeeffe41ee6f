"""The epay / 易支付 wire format: MD5 (v1) or SHA256withRSA (v2) signing of the sorted
non-empty parameters, the ``type`` names aggregators give methods, yuan strings, the
aggregator's Beijing-time timestamps and v2's unix ``timestamp``."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from payments.channels.base import CENT
from payments.channels.signing import sha256_rsa_sign, sha256_rsa_verify

BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SIGN_TYPE = "MD5"
#: epay v2 (``api/pay/*``): SHA256withRSA, merchant private key out, platform public key in
RSA_SIGN_TYPE = "RSA"
SIGN_TYPES = (SIGN_TYPE, RSA_SIGN_TYPE)
#: how far a v2 answer's ``timestamp`` may be from our clock (the SDKs' 300 s)
TIMESTAMP_TOLERANCE = dt.timedelta(seconds=300)
#: what the signature does not cover
NOT_SIGNED = ("sign", "sign_type")
#: the only trade_status a notification carries (epay notifies successes only)
TRADE_SUCCESS = "TRADE_SUCCESS"

#: Cardex method → the aggregator's ``type``
PAY_TYPES: Mapping[str, str] = {"alipay": "alipay", "wechatpay": "wxpay", "qqpay": "qqpay"}
METHODS_BY_TYPE: Mapping[str, str] = {v: k for k, v in PAY_TYPES.items()}


def sign_content(params: Mapping[str, object]) -> str:
    """Every parameter but ``sign``/``sign_type`` whose value is not empty, sorted by key
    (ASCII), joined as ``k=v`` with ``&``, values not URL-encoded."""
    return "&".join(
        f"{key}={params[key]}"
        for key in sorted(params)
        if key not in NOT_SIGNED and params[key] is not None and str(params[key]) != ""
    )


def md5_sign(params: Mapping[str, object], key: str) -> str:
    """lower-case hex MD5 of the sign content with the merchant key appended directly."""
    return hashlib.md5((sign_content(params) + key).encode("utf-8")).hexdigest()  # noqa: S324


def md5_verify(params: Mapping[str, object], key: str) -> bool:
    given = str(params.get("sign") or "").lower()
    return bool(given) and hmac.compare_digest(given, md5_sign(params, key))


def rsa_sign(params: Mapping[str, object], private_key: str) -> str:
    """v2: base64 SHA256withRSA (PKCS#1 v1.5) of the same sign content MD5 signs."""
    return sha256_rsa_sign(sign_content(params), private_key)


def rsa_verify(params: Mapping[str, object], public_key: str) -> bool:
    given = str(params.get("sign") or "")
    return bool(given) and sha256_rsa_verify(sign_content(params), given, public_key)


def unix_timestamp(moment: dt.datetime) -> str:
    """v2's ``timestamp``: whole seconds since the epoch, as a string."""
    return str(int(moment.timestamp()))


def timestamp_fresh(text: object, now: dt.datetime) -> bool:
    """Whether a v2 ``timestamp`` lies within the tolerance of ``now``."""
    try:
        moment = dt.datetime.fromtimestamp(int(str(text)), tz=dt.UTC)
    except (ValueError, OverflowError, OSError):
        return False
    return abs(moment - now) <= TIMESTAMP_TOLERANCE


def yuan(amount: Decimal) -> str:
    quantized = amount.quantize(CENT)
    if quantized != amount:
        raise ValueError(f"amount {amount} has more than two decimal places")
    return format(quantized, "f")


def parse_money(text: str, *, what: str = "money") -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError(f"{what} {text!r} is not an amount") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{what} {text!r} is not an amount")
    return value.quantize(CENT)


def parse_beijing(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(text).strip(), TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        return None
