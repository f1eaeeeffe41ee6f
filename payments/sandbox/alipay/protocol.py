"""What the simulated Alipay shares across its endpoints: the error answer, Alipay's side of
RSA2 (the sandbox's own code, not the backend's, so a signing bug on either side shows), the
time and amount formats and the simulated identifiers (trade numbers, buyers)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from decimal import Decimal
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.utils import timezone

from payments.sandbox import keys
from payments.sandbox.models import SandboxTrade

CHANNEL = "alipay"
BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CENT = Decimal("0.01")


class GatewayError(Exception):
    """An Alipay error answer: ``code`` (40001/40002/40004/20000) and ``sub_code``."""

    MESSAGES = {
        "40001": "Missing Required Arguments",
        "40002": "Invalid Arguments",
        "40004": "Business Failed",
        "20000": "Service Currently Unavailable",
    }

    def __init__(self, code: str, sub_code: str, sub_msg: str):
        super().__init__(sub_msg)
        self.code, self.sub_code, self.sub_msg = code, sub_code, sub_msg

    def body(self) -> dict[str, str]:
        return {
            "code": self.code,
            "msg": self.MESSAGES.get(self.code, "Failed"),
            "sub_code": self.sub_code,
            "sub_msg": self.sub_msg,
        }


def business(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError("40004", sub_code, sub_msg)


# ---------------------------------------------------------------------------------------------
# Keys and signatures (Alipay's side)


def _alipay_private_key():
    return keys.provider_private_key(CHANNEL)


def string_to_sign(params: Mapping[str, str], exclude: tuple[str, ...]) -> str:
    """A request's: empty values are left out (§1.2)."""
    return "&".join(
        f"{k}={params[k]}" for k in sorted(params) if k not in exclude and params[k] != ""
    )


def notification_string_to_sign(params: Mapping[str, str]) -> str:
    """A notification's: everything Alipay sends but ``sign`` and ``sign_type``, empty values
    as ``k=`` (§1.4)."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type"))


def sign(content: str) -> str:
    return base64.b64encode(
        _alipay_private_key().sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())
    ).decode()


def verify(content: str, signature: str, public_pem: str) -> bool:
    try:
        key = serialization.load_pem_public_key(public_pem.encode())
        key.verify(
            base64.b64decode(signature, validate=True),
            content.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def beijing(moment: dt.datetime | None = None) -> str:
    return (moment or timezone.now()).astimezone(BEIJING).strftime(TIME_FORMAT)


def yuan(amount: Decimal) -> str:
    return format(Decimal(amount).quantize(CENT), "f")


def digits(seed: str, count: int) -> str:
    value = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return str(value)[-count:].rjust(count, "0")


def new_trade_no() -> str:
    """28 digits like Alipay's (yyyyMMdd + 22001 + 15 digits)."""
    return (
        timezone.now().astimezone(BEIJING).strftime("%Y%m%d")
        + "22001"
        + "".join(secrets.choice("0123456789") for _ in range(15))
    )


def buyer_of(trade: SandboxTrade) -> tuple[str, str]:
    """A stable simulated buyer (user id, masked logon id) for a trade."""
    return "2088" + digits(trade.trade_no, 12), f"sbx***@{digits(trade.trade_no, 3)}.sandbox.com"
