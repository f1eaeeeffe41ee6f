"""ACP 5.1.0 as the simulated UnionPay writes and checks it, implemented here from the
specification (CHANNELS.md §3.1–3.2) and not borrowed from the backend, so a mistake in the
backend's signing or message format is caught by the round trip instead of mirrored.

Signature (signMethod 01): drop blank fields, put ``certId`` in, sort by key, join ``k=v``
with ``&``, SHA-256 as lowercase hex, SHA256withRSA (PKCS#1 v1.5) over the ASCII bytes of that
hex string, base64 — the official SDK's ``SDKUtil.signBySecureKey`` / ``validate`` steps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

BEIJING = ZoneInfo("Asia/Shanghai")
VERSION = "5.1.0"
SIGN_METHOD_RSA = "01"
CURRENCY_CNY = "156"
UNIONPAY_CN_NAME = "中国银联股份有限公司"
TXN_TIME_RE = re.compile(r"\d{14}")
ORDER_ID_RE = re.compile(r"[0-9A-Za-z]{8,32}")

#: ZM record layout: 42 fixed-width fields, one space between them (official parseZMFile)
ZM_WIDTHS = (
    3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2,
    6, 2, 4, 32, 1, 21, 15, 1, 15, 32, 13, 13, 8, 32, 13, 13, 12, 2, 1, 32, 98,
)  # fmt: skip
ZM_RECORD_LENGTH = 607

#: respMsg / origRespMsg texts of the codes the simulator answers (ACP 应答码表)
RESP_MSG = {
    "00": "成功[0000000]",
    "10": "报文格式错误",
    "11": "验证签名失败",
    "12": "重复交易",
    "13": "报文交易要素缺失",
    "31": "商户状态不正确",
    "32": "无此交易权限",
    "33": "交易金额超限",
    "34": "查无此交易",
    "35": "原交易不存在或状态不正确",
    "38": "银联风险受限",
    "64": "卡上的余额不足",
    "66": "持卡人身份信息或手机号输入不正确，验证失败",
    "69": "您的输入超时，交易失败",
    "98": "文件不存在",
}


def _digest(fields: Mapping[str, str]) -> bytes:
    pairs = sorted(
        (key, value) for key, value in fields.items() if key != "signature" and value != ""
    )
    text = "&".join(f"{key}={value}" for key, value in pairs)
    return hashlib.sha256(text.encode("utf-8")).hexdigest().lower().encode("ascii")


def sign_message(fields: Mapping[str, str], key: rsa.RSAPrivateKey, cert_id: str) -> dict[str, str]:
    """The message as sent: blank fields left out, ``certId`` and ``signature`` added."""
    message = {k: v for k, v in fields.items() if k != "signature" and v not in ("", None)}
    message["certId"] = cert_id
    raw = key.sign(_digest(message), padding.PKCS1v15(), hashes.SHA256())
    message["signature"] = base64.b64encode(raw).decode("ascii")
    return message


def verify_message(fields: Mapping[str, str], public_key: rsa.RSAPublicKey) -> bool:
    """Whether ``signature`` is the signer's over the other non-blank fields."""
    try:
        raw = base64.b64decode(fields.get("signature", ""), validate=True)
        public_key.verify(raw, _digest(fields), padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return bool(raw)


def render_answer(fields: Mapping[str, str]) -> str:
    """A synchronous answer as UnionPay writes it: ``k=v&k=v``, values not URL-encoded."""
    return "&".join(f"{key}={value}" for key, value in fields.items())
