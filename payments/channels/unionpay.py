"""UnionPay online payment (银联全渠道 / ACP 5.1.0), gateway B2C consumption (CHANNELS.md §3).

Wire rules this module follows:

* Messages are ``application/x-www-form-urlencoded`` key/value maps; synchronous responses
  come back as a raw ``k=v&k=v`` string (values not URL-encoded, ``{…}`` values may contain
  ``&``) — §3.1.
* ``signMethod=01``: put ``certId`` in the map, drop empty values, sort by key, join ``k=v``
  with ``&``, take the **lowercase hex** SHA-256 of that string, then SHA256withRSA over the
  bytes of the hex string, base64 — §3.2. Responses and notifications carry the signer's
  certificate in ``signPubKeyCert``; it must chain to the configured UnionPay root/middle CA
  and name 中国银联股份有限公司 as its owner before its key is trusted (official SDK
  ``CertUtil.verifyCertificate``).
* Front-end consumption is a browser form post to ``frontTransReq.do`` (no synchronous
  answer); the result arrives as a backUrl POST, acknowledged with HTTP 200 — §3.3.
* Status query (txnType 00) identifies the order by ``orderId`` + ``txnTime``; ``respCode``
  / ``origRespCode`` 03/04/05 mean "still unknown, ask again" — §3.3.
* File transfer (txnType 76, fileType 00) returns ``fileContent`` = base64(zlib(ZIP)); the ZIP
  holds the fixed-width ZM detail file and the GBK RD summary — §3.4.

The attempt reference (``channel_trade_no``) is the order's ``txnTime`` until UnionPay
assigns a ``queryId`` (notification, query, file): ACP needs ``orderId`` + ``txnTime`` to
query an order and the ``queryId`` (``origQryId``) to refund it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any, ClassVar
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from payments.channels import http
from payments.channels.base import (
    Action,
    ChannelBackend,
    ChannelDeclined,
    ChannelError,
    ChannelUnavailable,
    CreateRequest,
    CreateResult,
    ErrorSpec,
    FileTotals,
    Notice,
    NotificationRejected,
    NotifyReply,
    QueryResult,
    RefundRequest,
    RefundResult,
    SettlementFile,
    SettlementFileError,
    SettlementLine,
    from_minor,
    to_minor,
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

SUCCESS_CODES = frozenset({"00", "A6"})  # A6 = 有缺陷的成功 (official demo treats it as paid)
UNKNOWN_CODES = frozenset({"03", "04", "05"})  # §3.3: result unknown → query again
#: synchronous codes that say nothing about the money: keep the request pending and retry
SYSTEM_CODES = frozenset({"02", "06", "10", "11", "13", "31", "32", "37", "39", "43", "99"})


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
    """SHA256withRSA over sha256hex(string-to-sign) with the given key."""
    try:
        signature = base64.b64decode(fields.get("signature", ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    if not signature:
        return False
    try:
        public_key.verify(signature, sign_digest(fields), padding.PKCS1v15(), hashes.SHA256())
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


_spec = ErrorSpec.of


_OTHER_CARD_ZH, _OTHER_CARD_EN = (
    "请换一张银联卡，或选择其他支付方式。",
    "Try another UnionPay card, or choose another payment method.",
)

#: ACP response codes (平台接入接口规范 第5部分 附录 应答码; public copy of the table in
#: CHANNELS.md §3.3 sources). Buyer-side refusals do not count against the channel.
ERROR_CODES: dict[str, ErrorSpec] = {
    "01": _spec(
        "failover",
        True,
        "交易失败，详情请咨询95516",
        "UnionPay refused the transaction",
        "请稍后再试或换一种支付方式。",
        "Try again later or choose another method.",
    ),
    "02": _spec(
        "failover",
        True,
        "系统未开放或暂时关闭，请稍后再试",
        "UnionPay is closed or temporarily unavailable",
    ),
    "03": _spec(
        "query",
        True,
        "交易通讯超时，请发起查询交易",
        "UnionPay timed out; the result is being checked",
    ),
    "04": _spec(
        "query",
        True,
        "交易状态未明，请查询对账结果",
        "The result is not known yet; it is being checked",
    ),
    "05": _spec(
        "query",
        False,
        "交易已受理，请稍后查询交易结果",
        "Accepted by UnionPay; the result follows shortly",
    ),
    "06": _spec("failover", True, "系统繁忙，请稍后再试", "UnionPay is busy"),
    "10": _spec("failover", True, "报文格式错误", "UnionPay rejected the message format"),
    "11": _spec("failover", True, "验证签名失败", "UnionPay could not verify our signature"),
    "12": _spec("query", False, "重复交易", "This order was already sent to UnionPay"),
    "13": _spec("failover", True, "报文交易要素缺失", "A required field was missing"),
    "30": _spec(
        "final",
        False,
        "交易未通过，请尝试使用其他银联卡支付或联系95516",
        "The card was not accepted",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "31": _spec(
        "failover", True, "商户状态不正确", "The merchant account is not active at UnionPay"
    ),
    "32": _spec(
        "failover", True, "无此交易权限", "The merchant account may not make this transaction"
    ),
    "33": _spec(
        "failover",
        False,
        "交易金额超限",
        "The amount is over UnionPay's limit for this merchant",
        "请换一种支付方式。",
        "Choose another payment method.",
    ),
    "34": _spec("query", False, "查无此交易", "UnionPay has no record of this order yet"),
    "35": _spec(
        "final",
        False,
        "原交易不存在或状态不正确",
        "The original payment cannot be refunded in its current state",
    ),
    "36": _spec(
        "final", False, "与原交易信息不符", "The refund does not match the original payment"
    ),
    "37": _spec(
        "failover", True, "已超过最大查询次数或操作过于频繁", "Too many requests to UnionPay"
    ),
    "38": _spec(
        "final",
        False,
        "银联风险受限",
        "UnionPay's risk control declined the payment",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "39": _spec(
        "failover",
        True,
        "交易不在受理时间范围内",
        "UnionPay does not accept this transaction at this time",
    ),
    "45": _spec(
        "final",
        False,
        "原交易已被成功退货或已被成功撤销",
        "The payment was already refunded or cancelled",
    ),
    "60": _spec(
        "final",
        False,
        "交易失败，详情请咨询您的发卡行",
        "Your bank declined the payment",
        "请联系发卡行，或换一张卡。",
        "Contact your bank, or use another card.",
    ),
    "61": _spec(
        "final",
        False,
        "输入的卡号无效，请确认后输入",
        "The card number is not valid",
        "请核对卡号后重试。",
        "Check the card number and try again.",
    ),
    "62": _spec(
        "failover",
        False,
        "交易失败，发卡银行不支持该商户，请更换其他银行卡",
        "Your bank does not support this merchant",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "63": _spec(
        "final",
        False,
        "卡状态不正确",
        "The card is blocked or not active",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "64": _spec(
        "final",
        False,
        "卡上的余额不足",
        "Insufficient funds on the card",
        "余额不足——请换一张卡或其他支付方式。",
        "Balance too low — try another card or method.",
    ),
    "65": _spec(
        "final",
        False,
        "输入的密码、有效期或CVN2有误，交易失败",
        "Wrong PIN, expiry date or CVN2",
        "请核对后重试。",
        "Check the details and try again.",
    ),
    "66": _spec(
        "final",
        False,
        "持卡人身份信息或手机号输入不正确，验证失败",
        "The ID or phone number does not match the bank's record",
        "请使用在银行预留的手机号，或换一张卡。",
        "Use the phone number registered with your bank, or another card.",
    ),
    "67": _spec(
        "final",
        False,
        "密码输入次数超限",
        "Too many wrong PIN attempts",
        "请稍后再试或换一张卡。",
        "Try later or use another card.",
    ),
    "68": _spec(
        "final",
        False,
        "您的银行卡暂不支持该业务，请向您的银行或95516咨询",
        "Your card does not support online payment",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "69": _spec(
        "final",
        False,
        "您的输入超时，交易失败",
        "The payment timed out while waiting for you",
        "请重新发起支付。",
        "Please start the payment again.",
    ),
    "71": _spec(
        "final",
        False,
        "动态口令或短信验证码校验失败",
        "The SMS code was wrong",
        "请重新获取验证码后重试。",
        "Request a new code and try again.",
    ),
    "73": _spec(
        "final", False, "支付卡已超过有效期", "The card has expired", _OTHER_CARD_ZH, _OTHER_CARD_EN
    ),
    "77": _spec(
        "final",
        False,
        "银行卡未开通认证支付",
        "The card is not enabled for online payment",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "78": _spec(
        "final",
        False,
        "发卡行交易权限受限，详情请咨询您的发卡行",
        "Your bank restricts this transaction",
        "请联系发卡行或换一张卡。",
        "Contact your bank or use another card.",
    ),
    "81": _spec(
        "final",
        False,
        "月累计交易笔数(金额)超限",
        "The card's monthly limit is reached",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "98": _spec("final", False, "文件不存在", "The settlement file does not exist (yet)"),
    "99": _spec("failover", True, "通用错误", "UnionPay general error"),
    "UNSUPPORTED_CURRENCY": _spec(
        "failover",
        False,
        "银联在线支付仅支持人民币",
        "UnionPay online accepts CNY only",
        "请换一种支付方式。",
        "Choose another payment method.",
    ),
}


# ---------------------------------------------------------------------------------------------
# The backend


class UnionPayBackend(ChannelBackend):
    """ACP 5.1.0 gateway payments (跳转网关支付, bizType 000201)."""

    code = "unionpay"
    # Largest genuine notice: form fields plus the signing certificate, ~2–4 KB.
    max_notification_bytes = 16 * 1024
    methods = ("unionpay",)
    display_name = "UnionPay online (ACP 5.1.0)"
    #: ACP has no "close" for an unpaid front order; the payTimeout we send ends it instead.
    supports_close = False
    error_codes: ClassVar[Mapping[str, ErrorSpec]] = ERROR_CODES

    @property
    def credentials(self) -> Credentials:
        return Credentials.from_mapping(self.account.credentials)

    @property
    def base_url(self) -> str:
        url = self.account.base_url
        return url if url.endswith("/") else url + "/"

    def _common(self) -> dict[str, str]:
        return {
            "version": VERSION,
            "encoding": "UTF-8",
            "signMethod": SIGN_METHOD_RSA,
            "accessType": "0",
            "merId": self.account.merchant_id,
        }

    def _signed(self, fields: Mapping[str, str]) -> dict[str, str]:
        creds = self.credentials
        return sign({**self._common(), **fields}, creds.private_key, creds.cert_id)

    def verify_message(self, fields: Mapping[str, str]) -> None:
        """Trust ``fields`` only if ``signPubKeyCert`` is UnionPay's and signs them; raises
        ValueError naming the problem."""
        cert_pem = fields.get("signPubKeyCert", "")
        if not cert_pem or not fields.get("signature"):
            raise ValueError("unsigned message (no signature / signPubKeyCert)")
        cert = verify_signing_cert(cert_pem, self.credentials.trusted_ca_pem)
        if not verify(fields, cert.public_key()):
            raise ValueError("signature does not match the message")

    def _post(
        self, base_url: str, path: str, fields: Mapping[str, str], *, idempotent: bool
    ) -> dict[str, str]:
        message = self._signed(fields)
        response = http.send(base_url, "POST", path, data=message, idempotent=idempotent)
        if response.status_code != 200:
            raise ChannelUnavailable(
                f"UnionPay answered HTTP {response.status_code}",
                code=f"HTTP_{response.status_code}",
            )
        try:
            answer = parse_response(response.content.decode("utf-8"))
        except UnicodeDecodeError:
            raise ChannelUnavailable(
                "UnionPay answered a body that is not UTF-8", code="BAD_RESPONSE"
            ) from None
        if "respCode" not in answer:
            raise ChannelUnavailable("UnionPay answered without respCode", code="BAD_RESPONSE")
        try:
            self.verify_message(answer)
        except ValueError as exc:
            raise ChannelError(
                f"UnionPay response rejected: {exc}", code="BAD_SIGNATURE", raw=answer
            ) from None
        return answer

    @staticmethod
    def _raise_system(answer: Mapping[str, str]) -> None:
        code = answer.get("respCode", "")
        message = f"UnionPay {code}: {answer.get('respMsg', '')}"
        if code in {"02", "06", "37", "99"}:
            raise ChannelUnavailable(message, code=code, raw=dict(answer))
        raise ChannelError(message, code=code, raw=dict(answer))

    # -- paying --------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> CreateResult:
        """Build the signed front-end consumption form (txnType 01/01, bizType 000201) that the
        buyer's browser posts to ``frontTransReq.do`` (§3.1, official Form_6_2_FrontConsume)."""
        if request.currency != "CNY":
            raise ChannelDeclined(
                f"UnionPay online accepts CNY, not {request.currency}", code="UNSUPPORTED_CURRENCY"
            )
        if not ORDER_ID_RE.fullmatch(request.out_trade_no):
            raise ChannelDeclined("orderId must be 8-32 letters and digits", code="10")
        sent_at = txn_time()
        fields = {
            "txnType": "01",
            "txnSubType": "01",
            "bizType": "000201",
            "channelType": "08" if request.client.device == "phone" else "07",
            "orderId": request.out_trade_no,
            "txnTime": sent_at,
            "txnAmt": str(to_minor(request.amount)),
            "currencyCode": CURRENCY_CNY,
            "backUrl": self.account.notify_url,
            "frontUrl": request.return_url or self.account.return_url,
            "payTimeout": txn_time(request.expires_at),
        }
        action = Action(
            type="form", url=f"{self.base_url}{FRONT_TRANS}", fields=self._signed(fields)
        )
        return CreateResult(action=action, channel_trade_no=sent_at)

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        """Verify a backUrl POST (consumption txnType 01 or refund txnType 04). ACP carries no
        notification timestamp, so there is none to check; the signature covers every field."""
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("malformed body: not a UTF-8 form") from None
        fields = dict(pairs)
        if len(fields) != len(pairs):
            raise NotificationRejected("malformed body: a field appears twice")
        missing = [
            k
            for k in ("merId", "orderId", "txnType", "respCode", "txnAmt", "signature")
            if not fields.get(k)
        ]
        if missing:
            raise NotificationRejected(f"malformed body: missing {', '.join(missing)}")
        try:
            self.verify_message(fields)
        except ValueError as exc:
            raise NotificationRejected(f"bad signature: {exc}") from None
        if fields["merId"] != self.account.merchant_id:
            raise NotificationRejected(
                f"notification for merchant {fields['merId']}, this account is {self.account.merchant_id}"
            )
        kind = {"01": "payment", "04": "refund"}.get(fields["txnType"])
        if kind is None:
            raise NotificationRejected(
                f"unknown event: txnType {fields['txnType']}/{fields.get('txnSubType', '')}"
            )
        if not fields["txnAmt"].isdigit():
            raise NotificationRejected("malformed body: txnAmt is not an amount in fen")
        if fields.get("currencyCode", CURRENCY_CNY) != CURRENCY_CNY:
            raise NotificationRejected(
                f"unexpected currencyCode {fields['currencyCode']} (only 156/CNY is used)"
            )
        ok = fields["respCode"] in SUCCESS_CODES
        occurred = _trace_moment(fields.get("traceTime", ""), fields.get("txnTime", ""))
        common = {
            "outcome": "succeeded" if ok else "failed",
            "amount": from_minor(fields["txnAmt"]),
            "currency": "CNY",
            "merchant_id": fields["merId"],
            "occurred_at": occurred,
            "error_code": "" if ok else fields["respCode"],
            "raw": fields,
        }
        if kind == "payment":
            return Notice(
                kind="payment",
                out_trade_no=fields["orderId"],
                channel_trade_no=fields.get("queryId", ""),
                **common,
            )
        return Notice(
            kind="refund",
            out_trade_no=fields.get("reqReserved", ""),
            refund_no=fields["orderId"],
            channel_refund_no=fields.get("queryId", ""),
            channel_trade_no=fields.get("origQryId", ""),
            **common,
        )

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """UnionPay stops re-sending on HTTP 200; the official demo writes ``ok`` (§3.3)."""
        if accepted:
            return NotifyReply(status=200, body=b"ok", content_type="text/plain")
        return NotifyReply(status=400, body=b"fail", content_type="text/plain")

    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        """交易状态查询 (txnType 00) by orderId + txnTime (§3.3). ``respCode=34`` (查无此交易)
        means the buyer has not submitted a card yet: still pending."""
        if not TXN_TIME_RE.fullmatch(channel_trade_no or ""):
            raise ChannelError(
                "a UnionPay status query needs the order's txnTime (the reference create() returned)",
                code="NO_TXNTIME",
            )
        answer = self._post(
            self.base_url,
            QUERY_TRANS,
            {
                "txnType": "00",
                "txnSubType": "00",
                "bizType": "000000",
                "channelType": "07",
                "orderId": out_trade_no,
                "txnTime": channel_trade_no,
            },
            idempotent=True,
        )
        code = answer["respCode"]
        if code == "34":
            return QueryResult(outcome="pending", error_code=code, raw=answer)
        if code in UNKNOWN_CODES:
            return QueryResult(outcome="unknown", error_code=code, raw=answer)
        if code != "00":
            self._raise_system(answer)
        orig = answer.get("origRespCode", "")
        amount = from_minor(answer["txnAmt"]) if answer.get("txnAmt", "").isdigit() else None
        if orig in SUCCESS_CODES:
            return QueryResult(
                outcome="succeeded",
                amount=amount,
                currency="CNY",
                channel_trade_no=answer.get("queryId", ""),
                paid_at=_trace_moment(answer.get("traceTime", ""), answer.get("txnTime", "")),
                raw=answer,
            )
        if orig in UNKNOWN_CODES:
            return QueryResult(outcome="pending", amount=amount, error_code=orig, raw=answer)
        return QueryResult(outcome="failed", amount=amount, error_code=orig, raw=answer)

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """Nothing to call: ACP front orders cannot be closed; UnionPay refuses them after the
        ``payTimeout`` sent with the order (official demo comment on payTimeout)."""

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        """退货 (txnType 04) at backTransReq.do; partial refunds allowed, their sum ≤ the payment.

        ``respCode=00`` only means 受理 (accepted): the result arrives as a backUrl notification
        (txnType 04), so the outcome here is "pending". A repeated refund number is answered
        ``12`` (重复交易) — the first request stands, also "pending"."""
        if not QUERY_ID_RE.fullmatch(request.channel_trade_no or ""):
            raise ChannelError(
                "a UnionPay refund needs the payment's queryId as origQryId", code="NO_QUERY_ID"
            )
        if not ORDER_ID_RE.fullmatch(request.refund_no):
            raise ChannelDeclined("refund orderId must be 8-32 letters and digits", code="10")
        answer = self._post(
            self.base_url,
            BACK_TRANS,
            {
                "txnType": "04",
                "txnSubType": "00",
                "bizType": "000201",
                "channelType": "07",
                "orderId": request.refund_no,
                "origQryId": request.channel_trade_no,
                "txnTime": txn_time(),
                "txnAmt": str(to_minor(request.amount)),
                "backUrl": self.account.notify_url,
                # 请求方保留域: echoed in the notification, ties the refund to our attempt
                "reqReserved": request.out_trade_no
                if ORDER_ID_RE.fullmatch(request.out_trade_no)
                else "",
            },
            idempotent=True,
        )
        code = answer["respCode"]
        if code == "00" or code in UNKNOWN_CODES or code == "12":
            return RefundResult(
                outcome="pending",
                channel_refund_no=answer.get("queryId", ""),
                error_code="" if code == "00" else code,
                raw=answer,
            )
        if code in SYSTEM_CODES:
            self._raise_system(answer)
        return RefundResult(outcome="failed", error_code=code, raw=answer)

    def query_refund(self, request: RefundRequest) -> RefundResult:
        """A refund's status query needs its own txnTime, which the refund request does not
        carry; re-sending it with a new txnTime could open a second refund. UnionPay reports
        the result by backUrl notification and in the next ZM file (交易代码 S30), so this
        answers "pending" without calling UnionPay."""
        return RefundResult(outcome="pending", error_code="NOTIFY_PENDING")

    # -- settlement ----------------------------------------------------------------------------
    def download_settlement(self, day: dt.date) -> bytes:
        """文件传输 (txnType 76, fileType 00, settleDate MMDD) → the ZIP ``{merId}_{yyyyMMdd}.zip``
        exactly as UnionPay packs it (base64 and zlib layers removed, §3.4)."""
        creds = self.credentials
        base = creds.file_download_url or self.base_url
        answer = self._post(
            base if base.endswith("/") else base + "/",
            "",
            {
                "txnType": "76",
                "txnSubType": "01",
                "bizType": "000000",
                "channelType": "07",
                "txnTime": txn_time(),
                "settleDate": day.strftime("%m%d"),
                "fileType": "00",
            },
            idempotent=True,
        )
        code = answer["respCode"]
        if code == "98":
            raise ChannelDeclined(
                f"UnionPay has no settlement file for {day}", code="98", raw=answer
            )
        if code != "00":
            self._raise_system(answer)
        try:
            return zlib.decompress(base64.b64decode(answer.get("fileContent", ""), validate=True))
        except (binascii.Error, ValueError, zlib.error) as exc:
            raise ChannelError(
                f"UnionPay fileContent cannot be decoded: {exc}", code="BAD_FILE"
            ) from None

    @classmethod
    def open_settlement(cls, stream: IO[bytes]) -> SettlementFile:
        return ZMSettlementFile(stream)


def _trace_moment(trace_time: str, order_time: str) -> dt.datetime | None:
    """traceTime is MMDDhhmmss (no year): give it the year that puts it nearest the order's
    txnTime (an order sent on 31 Dec may be paid on 1 Jan)."""
    if not TXN_TIME_RE.fullmatch(order_time or ""):
        return None
    base = dt.datetime.strptime(order_time, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    if not re.fullmatch(r"\d{10}", trace_time or ""):
        return base
    return _with_year(trace_time, base)


def _with_year(mmddhhmmss: str, anchor: dt.datetime) -> dt.datetime | None:
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


# ---------------------------------------------------------------------------------------------
# Reconciliation file (§3.4)

#: ZM record layout: 42 fixed-width fields separated by one space (official parseZMFile).
ZM_WIDTHS = (
    3,
    11,
    11,
    6,
    10,
    19,
    12,
    4,
    2,
    21,
    2,
    32,
    2,
    6,
    10,
    13,
    13,
    4,
    15,
    2,
    2,
    6,
    2,
    4,
    32,
    1,
    21,
    15,
    1,
    15,
    32,
    13,
    13,
    8,
    32,
    13,
    13,
    12,
    2,
    1,
    32,
    98,
)
ZM_NAMES = (
    "交易代码",
    "代理机构标识码",
    "发送机构标识码",
    "系统跟踪号",
    "交易传输时间",
    "帐号",
    "交易金额",
    "商户类别",
    "终端类型",
    "查询流水号",
    "支付方式旧",
    "商户订单号",
    "支付卡类型",
    "原始交易的系统跟踪号",
    "原始交易日期时间",
    "商户手续费",
    "结算金额",
    "支付方式",
    "集团商户代码",
    "交易类型",
    "交易子类",
    "业务类型",
    "帐号类型",
    "账单类型",
    "账单号码",
    "交互方式",
    "原交易查询流水号",
    "商户代码",
    "分账入账方式",
    "二级商户代码",
    "二级商户简称",
    "二级商户分账入账金额",
    "清算净额",
    "终端号",
    "商户自定义域",
    "优惠金额",
    "发票金额",
    "分期付款附加手续费",
    "分期付款期数",
    "交易介质",
    "原始交易订单号",
    "保留使用",
)
ZM_RECORD_LENGTH = sum(ZM_WIDTHS) + len(ZM_WIDTHS) - 1  # 607
assert ZM_RECORD_LENGTH == 607

#: 交易代码 → direction. S22 消费 / S30 退货 per dax-pay UnionPayCode; S56 appears in UnionPay's
#: own sample on consumption records (交易类型 01, credited to the merchant, listed under 自助消费
#: in the RD summary) and is read as a payment — CHANNELS.md §3.4 marks its meaning unverified.
TXN_CODES = {"S22": "payment", "S56": "payment", "S30": "refund"}
#: fallback when the 交易代码 is not in the table: field 20 交易类型 (01 消费, 04 退货)
TXN_TYPES = {"01": "payment", "04": "refund"}

ZM_NAME_RE = re.compile(r"INN(\d{6})(\d{2})ZM_(\w+)")
ZIP_NAME_RE = re.compile(r"(\w+)_(\d{8})\.zip")
_SIGNED_RE = re.compile(r"([DC ])(\d{11,12})")


def _signed_amount(value: str, *, field: str, line_no: int) -> Decimal:
    """X+n12 amounts: 'D' debits the merchant, 'C' credits it (blank = credit)."""
    match = _SIGNED_RE.fullmatch(value)
    if not match:
        raise SettlementFileError(f"{field} {value.strip()!r} is not a D/C amount", line_no=line_no)
    amount = from_minor(match.group(2))
    return -amount if match.group(1) == "D" else amount


@dataclass(frozen=True)
class RDSummary:
    """The totals UnionPay's RD summary (中国银联全渠道商户交易汇总表) states for the day."""

    merchant_id: str
    day: dt.date | None
    count: int
    debit: Decimal  # 交易金额 借 — refunds debited to the merchant
    credit: Decimal  # 交易金额 贷 — payments credited to the merchant
    fee_debit: Decimal  # 费用 借 — fees charged
    fee_credit: Decimal  # 费用 贷 — fees returned
    net_debit: Decimal  # 资金清算差额 借
    net_credit: Decimal  # 资金清算差额 贷
    line_no: int  # the 总计 line


def parse_rd(data: bytes) -> RDSummary:
    """Read the first 总计 row (by 交易类型) and the header facts from the GBK RD summary.
    Later 总计 rows (by 卡性质) must agree with it."""
    try:
        text = data.decode("gbk")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettlementFileError("RD summary is not GBK text", line_no=line) from None
    text = text.lstrip("\ufeff")
    merchant = re.search(r"商户代码[:：]\s*(\S+)", text)
    if not merchant:
        raise SettlementFileError("RD summary has no 商户代码")
    day_match = re.search(r"清算日期[:：]\s*(\d{8})", text)
    day = dt.datetime.strptime(day_match.group(1), "%Y%m%d").date() if day_match else None
    totals: list[tuple[int, list[str]]] = []
    for no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("总计"):
            values = stripped[2:].replace(",", "").split()
            if (
                len(values) != 7
                or not values[0].isdigit()
                or not all(re.fullmatch(r"-?\d+\.\d{2}", v) for v in values[1:])
            ):
                raise SettlementFileError(
                    "RD 总计 row does not hold a count and six amounts", line_no=no
                )
            totals.append((no, values))
    if not totals:
        raise SettlementFileError("RD summary has no 总计 row (truncated?)")
    first_no, first = totals[0]
    for no, other in totals[1:]:
        if other != first:
            raise SettlementFileError("RD 总计 rows disagree with each other", line_no=no)
    amounts = [Decimal(v) for v in first[1:]]
    return RDSummary(merchant.group(1), day, int(first[0]), *amounts, line_no=first_no)


class ZMSettlementFile(SettlementFile):
    """A day's UnionPay reconciliation: the ZIP as delivered, or its bare ZM file.

    ZIP: the RD summary gives the file's totals (count, 交易金额 借/贷, 费用 借/贷, 清算差额);
    after the last ZM record they are compared with the sums of the records. A bare ZM file
    states no totals (no footer): each record is checked on its own instead — length, field
    formats, one merchant throughout, and 结算金额 = 交易金额 ∓ 手续费 = 清算净额 where no
    discount or split applies. ZME (差错) files in the ZIP are not read.
    """

    def __init__(self, stream: IO[bytes]):
        self._source_name = str(getattr(stream, "name", "") or "")
        self._rd: RDSummary | None = None
        self._day: dt.date | None = None
        self._merchant = ""
        seekable = bool(getattr(stream, "seekable", lambda: False)())
        start = stream.tell() if seekable else 0
        head = stream.read(4)
        if head.startswith(b"PK\x03\x04"):
            if seekable:
                stream.seek(start)
                source: IO[bytes] = stream
            else:
                source = io.BytesIO(head + stream.read())
            self._open_zip(source)
            self._reader = self._zip_lines
        else:
            match = ZM_NAME_RE.search(self._source_name)
            if match:
                self._day = _yymmdd(match.group(1))
                self._merchant = match.group(3)
            self._head, self._stream = head, stream
            self._reader = self._bare_lines

    def _open_zip(self, source: IO[bytes]) -> None:
        try:
            archive = zipfile.ZipFile(source)
            names = archive.namelist()
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
            raise SettlementFileError(f"not a readable ZIP (truncated?): {exc}") from None
        zm = [n for n in names if ZM_NAME_RE.fullmatch(n.rsplit("/", 1)[-1])]
        rd = [n for n in names if n.rsplit("/", 1)[-1].startswith("RD")]
        if len(zm) != 1:
            raise SettlementFileError(f"ZIP holds {len(zm)} ZM files, expected one")
        if len(rd) != 1:
            raise SettlementFileError(
                f"ZIP holds {len(rd)} RD summaries, expected one (totals missing)"
            )
        try:
            summary = parse_rd(archive.read(rd[0]))
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise SettlementFileError(
                f"RD summary cannot be unpacked (truncated?): {exc}"
            ) from None
        match = ZM_NAME_RE.fullmatch(zm[0].rsplit("/", 1)[-1])
        if match.group(3) != summary.merchant_id:
            raise SettlementFileError(
                f"ZM file is for merchant {match.group(3)}, RD summary for {summary.merchant_id}"
            )
        if summary.day and _yymmdd(match.group(1)) != summary.day:
            raise SettlementFileError(
                f"ZM file is for {_yymmdd(match.group(1))}, RD summary for {summary.day}"
            )
        named = ZIP_NAME_RE.fullmatch(self._source_name.replace("\\", "/").rsplit("/", 1)[-1])
        day_text = f"{summary.day:%Y%m%d}" if summary.day else ""
        if named and (
            named.group(1) != summary.merchant_id or (day_text and named.group(2) != day_text)
        ):
            raise SettlementFileError(
                f"ZIP {named.group(0)} holds the file of merchant {summary.merchant_id} for {summary.day}"
            )
        self._archive, self._zm_name, self._rd = archive, zm[0], summary
        self._day = summary.day or _yymmdd(match.group(1))
        self._merchant = summary.merchant_id

    def _zip_lines(self) -> Iterator[bytes]:
        with self._archive.open(self._zm_name) as member:
            yield from member

    def _bare_lines(self) -> Iterator[bytes]:
        buffer = self._head
        while True:
            newline = buffer.find(b"\n")
            if newline >= 0:
                yield buffer[: newline + 1]
                buffer = buffer[newline + 1 :]
                continue
            more = self._stream.readline()
            if not more:
                if buffer:
                    yield buffer
                return
            buffer += more

    @property
    def totals(self) -> FileTotals:
        rd = self._rd
        if rd is None:
            return FileTotals(merchant_id=self._merchant, day=self._day)
        return FileTotals(
            merchant_id=rd.merchant_id,
            day=self._day,
            lines=rd.count,
            gross=rd.credit,
            refunded=rd.debit,
            fees=rd.fee_debit - rd.fee_credit,
        )

    def lines(self) -> Iterator[SettlementLine]:
        sums = {
            "lines": 0,
            "gross": Decimal("0.00"),
            "refunded": Decimal("0.00"),
            "fees": Decimal("0.00"),
        }
        line_no = 0
        reader = self._reader()
        while True:
            try:
                raw = next(reader)
            except StopIteration:
                break
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise SettlementFileError(
                    f"ZM file cannot be unpacked (truncated?): {exc}", line_no=line_no + 1
                ) from None
            line_no += 1
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            line = self._parse_record(raw, line_no)
            sums["lines"] += 1
            sums["gross" if line.kind == "payment" else "refunded"] += line.amount
            sums["fees"] += line.fee
            yield line
        self._check(sums)

    def _parse_record(self, raw: bytes, line_no: int) -> SettlementLine:
        try:
            raw.decode("gbk")
        except UnicodeDecodeError:
            raise SettlementFileError(
                "ZM record is not ASCII/GBK text (wrong encoding?)", line_no=line_no
            ) from None
        if len(raw) < ZM_RECORD_LENGTH:
            raise SettlementFileError(
                f"ZM record has {len(raw)} bytes, expected {ZM_RECORD_LENGTH} (truncated?)",
                line_no=line_no,
            )
        values: list[str] = []
        pos = 0
        for width in ZM_WIDTHS:
            chunk = raw[pos : pos + width]
            try:
                values.append(chunk.decode("gbk"))
            except UnicodeDecodeError:
                raise SettlementFileError(
                    "a ZM field splits a GBK character (misaligned record)", line_no=line_no
                ) from None
            separator = raw[pos + width : pos + width + 1]
            if separator not in (b" ", b""):
                raise SettlementFileError(
                    f"ZM field {len(values)} is not followed by a space (misaligned record)",
                    line_no=line_no,
                )
            pos += width + 1
        fields = dict(zip(ZM_NAMES, values, strict=True))
        code = fields["交易代码"].strip()
        kind = TXN_CODES.get(code) or TXN_TYPES.get(fields["交易类型"].strip())
        if kind is None:
            raise SettlementFileError(
                f"unknown 交易代码 {code!r} (交易类型 {fields['交易类型'].strip()!r})",
                line_no=line_no,
            )
        merchant = fields["商户代码"].strip()
        if self._merchant and merchant != self._merchant:
            raise SettlementFileError(
                f"record for merchant {merchant}, file is for {self._merchant}", line_no=line_no
            )
        self._merchant = self._merchant or merchant
        amount_text = fields["交易金额"].strip()
        if not amount_text.isdigit():
            raise SettlementFileError(
                f"交易金额 {amount_text!r} is not an amount in fen", line_no=line_no
            )
        amount = from_minor(amount_text)
        fee = -_signed_amount(
            fields["商户手续费"], field="商户手续费", line_no=line_no
        )  # D = charged
        settle = _signed_amount(fields["结算金额"], field="结算金额", line_no=line_no)
        net = (
            _signed_amount(fields["清算净额"], field="清算净额", line_no=line_no)
            if fields["清算净额"].strip()
            else settle
        )
        plain = (
            not fields["分账入账方式"].strip()
            and _blank_or_zero(fields["优惠金额"])
            and _blank_or_zero(fields["二级商户分账入账金额"])
        )
        signed = amount if kind == "payment" else -amount
        if plain and (settle != signed - fee or net != settle):
            raise SettlementFileError(
                f"结算金额 {settle} ≠ 交易金额 {signed} − 手续费 {fee} (or 清算净额 {net} differs)",
                line_no=line_no,
            )
        refund = kind == "refund"
        return SettlementLine(
            line_no=line_no,
            kind=kind,
            out_trade_no=(
                fields["原始交易订单号"].strip() if refund else fields["商户订单号"].strip()
            ),
            channel_trade_no=(fields["原交易查询流水号"].strip() or fields["查询流水号"].strip())
            if refund
            else fields["查询流水号"].strip(),
            refund_no=fields["商户订单号"].strip() if refund else "",
            amount=amount,
            fee=fee,
            currency="CNY",
            occurred_at=_with_year(fields["交易传输时间"], _anchor(self._day))
            if self._day
            else None,
            raw={k: v.strip() for k, v in fields.items()},
        )

    def _check(self, counts: Mapping[str, Any]) -> None:
        rd = self._rd
        if rd is None:
            return
        where = rd.line_no
        problems = []
        if counts["lines"] != rd.count:
            problems.append(f"{counts['lines']} ZM records but RD 总计 says {rd.count}")
        if counts["gross"] != rd.credit:
            problems.append(
                f"payments sum to {counts['gross']} but RD 交易金额(贷) says {rd.credit}"
            )
        if counts["refunded"] != rd.debit:
            problems.append(
                f"refunds sum to {counts['refunded']} but RD 交易金额(借) says {rd.debit}"
            )
        if counts["fees"] != rd.fee_debit - rd.fee_credit:
            problems.append(
                f"fees sum to {counts['fees']} but RD 费用 says {rd.fee_debit - rd.fee_credit}"
            )
        net = counts["gross"] - counts["refunded"] - counts["fees"]
        if net != rd.net_credit - rd.net_debit:
            problems.append(f"net {net} but RD 资金清算差额 says {rd.net_credit - rd.net_debit}")
        if problems:
            raise SettlementFileError(
                f"RD summary 总计 (RD line {where}) does not match the ZM records: "
                + "; ".join(problems)
            )


def _blank_or_zero(value: str) -> bool:
    digits = value.strip().lstrip("DC ").strip()
    return not digits or set(digits) == {"0"}


def _yymmdd(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%y%m%d").date()


def _anchor(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=BEIJING)
