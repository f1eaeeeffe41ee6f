"""What the simulated WeChat Pay shares across its endpoints: the error answer, WeChat's
side of the signatures (the sandbox's own code, not the backend's), the sealed notification
resource, amounts and times as WeChat writes them, simulated identifiers, and the check of
a merchant's Authorization header."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
import string
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.encoding import escape_uri_path

from payments.sandbox import keys
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxTrade,
)

CHANNEL = "wechatpay"
BEIJING = ZoneInfo("Asia/Shanghai")
SCHEME = "WECHATPAY2-SHA256-RSA2048"
CENT = Decimal("0.01")
MAX_CLOCK_SKEW = 300


class ApiError(Exception):
    """A WeChat Pay error answer: HTTP status + ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ---------------------------------------------------------------------------------------------
# Keys, signatures, encryption (WeChat's side)


def _platform_private_key():
    return keys.provider_private_key(CHANNEL)


def platform_public_key_id() -> str:
    """A stable ``PUB_KEY_ID_…`` for the sandbox platform key."""
    digest = hashlib.sha256(keys.provider_public_pem(CHANNEL).encode()).hexdigest()
    return "PUB_KEY_ID_01" + str(int(digest, 16))[:30]


def rfc3339(moment: dt.datetime | None = None) -> str:
    return (moment or timezone.now()).astimezone(BEIJING).isoformat(timespec="seconds")


def sign_headers(body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """``Wechatpay-*`` headers over ``TIMESTAMP\\nNONCE\\nBODY\\n`` (§2.2)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(16)
    message = f"{stamp}\n{nonce}\n{body.decode('utf-8')}\n".encode()
    signature = base64.b64encode(
        _platform_private_key().sign(message, padding.PKCS1v15(), hashes.SHA256())
    ).decode()
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": platform_public_key_id(),
        "Wechatpay-Signature-Type": SCHEME,
    }


def encrypt_resource(plaintext: bytes, apiv3_key: str, associated_data: str) -> dict[str, str]:
    """AEAD_AES_256_GCM: base64(ciphertext‖tag) with a 12-character ASCII nonce (§2.3)."""
    nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
    sealed = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(sealed).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def json_bytes(data: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(data), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def answer(status: int, data: Mapping[str, Any] | None = None) -> HttpResponse:
    body = json_bytes(data) if data is not None else b""
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in sign_headers(body).items():
        response[name] = value
    response["Request-ID"] = uuid.uuid4().hex
    return response


def fen(amount: Decimal) -> int:
    return int(Decimal(amount).quantize(CENT) * 100)


def yuan(amount: Decimal) -> str:
    return format(Decimal(amount).quantize(CENT), "f")


def digits(seed: str, count: int) -> str:
    return str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[-count:].rjust(count, "0")


def new_transaction_id() -> str:
    """28 digits like WeChat's (42000 + 5 digits + yyyyMMdd + 10 digits)."""
    day = timezone.now().astimezone(BEIJING).strftime("%Y%m%d")
    return (
        "42000"
        + "".join(secrets.choice(string.digits) for _ in range(5))
        + day
        + "".join(secrets.choice(string.digits) for _ in range(10))
    )


def new_refund_id() -> str:
    day = timezone.now().astimezone(BEIJING).strftime("%Y%m%d")
    return (
        "503"
        + "".join(secrets.choice(string.digits) for _ in range(8))
        + day
        + "".join(secrets.choice(string.digits) for _ in range(10))
    )


def openid(trade: SandboxTrade) -> str:
    return (
        "oSBX"
        + base64.urlsafe_b64encode(hashlib.sha256(trade.trade_no.encode()).digest()).decode()[:24]
    )


def new_apiv3_key() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


def authenticate(request: HttpRequest) -> SandboxMerchant:
    """Verify ``Authorization`` the way WeChat does (§2.1): scheme, registered serial,
    a timestamp within 5 minutes, SHA256withRSA over the canonical request."""
    scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
    if scheme != SCHEME:
        raise ApiError(
            401, "SIGN_ERROR", "Authorization 缺失或认证类型不是 WECHATPAY2-SHA256-RSA2048"
        )
    attrs = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    for name in ("mchid", "nonce_str", "timestamp", "serial_no", "signature"):
        if not attrs.get(name):
            raise ApiError(401, "SIGN_ERROR", f"Authorization 缺少 {name}")
    merchant = SandboxMerchant.objects.filter(channel=CHANNEL, merchant_id=attrs["mchid"]).first()
    if merchant is None:
        raise ApiError(400, "MCH_NOT_EXISTS", "商户号不存在")
    if attrs["serial_no"] != merchant.config.get("serial_no"):
        raise ApiError(401, "SIGN_ERROR", "商户证书序列号有误")
    try:
        stamp = int(attrs["timestamp"])
    except ValueError:
        raise ApiError(401, "SIGN_ERROR", "timestamp 格式错误") from None
    if abs(time.time() - stamp) >= MAX_CLOCK_SKEW:
        raise ApiError(401, "SIGN_ERROR", "请求时间戳与服务器时间相差超过5分钟")
    query = request.META.get("QUERY_STRING", "")
    canonical = escape_uri_path(request.path) + (f"?{query}" if query else "")
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "PARAM_ERROR", "请求体须为 UTF-8") from None
    message = f"{request.method}\n{canonical}\n{stamp}\n{attrs['nonce_str']}\n{body}\n"
    try:
        key = serialization.load_pem_public_key(merchant.config["public_key"].encode())
        key.verify(
            base64.b64decode(attrs["signature"], validate=True),
            message.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError, TypeError, KeyError):
        raise ApiError(401, "SIGN_ERROR", "签名错误") from None
    return merchant
