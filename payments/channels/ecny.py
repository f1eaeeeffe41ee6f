"""e-CNY (数字人民币) — and the wallets served next to it — through an acquiring bank's
aggregated-payment API (CHANNELS.md §5).

There is no public PBOC merchant API: merchants accept e-CNY through an operating institution
or acceptance-service institution, whose "polypay"-style API signs with SM2/SM3 (国密). The
wire format is therefore acquirer-specific; this module implements the documented protocol
in ``docs/channels/ecny.md`` and is the adapter to replace or extend for a real bank.

The same API serves the bank's other aggregated wallets: one order call with a pay type
(``payMethod``: ``ECNY``, ``ALIPAY``, ``WECHAT``, ``UNIONPAY``) answers that wallet's QR /
deeplink payload, so one backend serves the methods ``ecny``, ``alipay``, ``wechatpay`` and
``unionpay`` — a bank aggregator account is a second provider for a method next to the
direct channel. Which of them an account serves is its configuration (``methods``) and the
bank's contract (``PAY_METHOD_NOT_OPEN`` otherwise).

Protocol summary (full spec in the doc):

* JSON envelope over HTTPS POST: ``version``, ``encoding``, ``signMethod`` ("SM2"),
  ``merId``, ``appId``, ``reqTime`` / ``respTime`` / ``notifyTime`` (Beijing
  ``yyyyMMddHHmmss``), ``nonce``, ``bizContent`` (a JSON *string*), ``sign``.
* String-to-sign: every top-level member except ``sign`` whose value is a non-empty string,
  sorted by key, ``k=v`` joined with ``&``, UTF-8. Signature: SM2 with the SM3 digest of
  Z‖M (GB/T 32918.2, default user id ``1234567812345678``), ASN.1 DER (r, s), base64.
* Amounts in the API are integer fen strings (``txnAmt``); the reconciliation file is in
  yuan with two decimals.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any, ClassVar
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from gmssl import func, sm2, sm3

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
    money,
    to_minor,
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
# SM2 / SM3 (GB/T 32918, GB/T 32905) on top of gmssl

_CURVE = sm2.default_ecc_table
SM2_N = int(_CURVE["n"], 16)
_P, _A, _B = int(_CURVE["p"], 16), int(_CURVE["a"], 16), int(_CURVE["b"], 16)


def _point(public_hex: str) -> str:
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


def _crypt(private_hex: str, public_hex: str) -> sm2.CryptSM2:
    crypt = sm2.CryptSM2(private_key=private_hex, public_key="00")
    # set after construction: gmssl's constructor lstrips "04" characters, which corrupts
    # keys whose x coordinate starts with 0 or 4
    crypt.public_key = _point(public_hex)
    return crypt


def sm2_public_of(private_hex: str) -> str:
    d = int(private_hex, 16)
    if not 1 <= d < SM2_N - 1:
        raise ValueError("SM2 private key out of range")
    return "04" + sm2.CryptSM2(private_key=private_hex, public_key="00")._kg(d, _CURVE["g"])


def sm2_keypair() -> tuple[str, str]:
    """(private key hex, public key hex '04'‖x‖y) from the OS CSPRNG."""
    private_hex = f"{secrets.randbelow(SM2_N - 2) + 1:064x}"
    return private_hex, sm2_public_of(private_hex)


def sm2_sign(private_hex: str, public_hex: str, message: bytes) -> str:
    """SM3withSM2 over ``message``; base64 of DER SEQUENCE{r, s}. The per-signature nonce
    comes from ``secrets`` (gmssl's own default uses ``random``)."""
    crypt = _crypt(private_hex, public_hex)
    while True:
        nonce = f"{secrets.randbelow(SM2_N - 1) + 1:064x}"
        raw = crypt.sign_with_sm3(message, nonce)
        if raw:
            break
    r, s = int(raw[:64], 16), int(raw[64:], 16)
    return base64.b64encode(encode_dss_signature(r, s)).decode("ascii")


def sm2_verify(public_hex: str, message: bytes, signature: str) -> bool:
    try:
        r, s = decode_dss_signature(base64.b64decode(signature, validate=True))
        crypt = _crypt("00", public_hex)
    except (ValueError, binascii.Error, TypeError):
        return False
    if not (1 <= r < SM2_N and 1 <= s < SM2_N):
        return False
    try:
        return bool(crypt.verify_with_sm3(f"{r:064x}{s:064x}", message))
    except (ValueError, TypeError):
        return False


def sm3_hex(data: bytes) -> str:
    return sm3.sm3_hash(func.bytes_to_list(data))


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
# Error codes of the acquirer API (defined by this adapter's protocol; see docs/channels/ecny.md)


_spec = ErrorSpec.of


# The bank reports the declines of every wallet it aggregates with the same codes, so the
# buyer-facing texts name no particular wallet.
_OTHER_ZH, _OTHER_EN = (
    "请换一个钱包或银行卡，或选择其他支付方式。",
    "Use another wallet or card, or choose another payment method.",
)

ERROR_CODES: dict[str, ErrorSpec] = {
    "BALANCE_NOT_ENOUGH": _spec(
        "final",
        False,
        "钱包余额不足",
        "Your wallet balance is too low",
        "请先为钱包充值或换一张银行卡，或换一种支付方式。",
        "Top up the wallet or pick another card in it, or choose another method.",
    ),
    "WALLET_INFO_MISMATCH": _spec(
        "final",
        False,
        "钱包绑定的手机号或实名信息不一致",
        "The wallet's phone number or ID does not match its registration",
        "请使用本人实名的钱包，或换一种支付方式。",
        "Use a wallet registered in your own name, or choose another method.",
    ),
    "WALLET_LIMIT_EXCEEDED": _spec(
        "final",
        False,
        "超出钱包单笔或日累计支付限额",
        "The payment is over the wallet's limit",
        "请升级钱包等级或换一种支付方式。",
        "Upgrade the wallet level or choose another method.",
    ),
    "WALLET_STATUS_ERROR": _spec(
        "final",
        False,
        "钱包状态异常（冻结或注销）",
        "The wallet is frozen or closed",
        _OTHER_ZH,
        _OTHER_EN,
    ),
    "RISK_REJECT": _spec(
        "final",
        False,
        "交易被风险控制拒绝",
        "The payment was declined by risk control",
        _OTHER_ZH,
        _OTHER_EN,
    ),
    "PAY_TIMEOUT": _spec(
        "final",
        False,
        "用户支付超时",
        "The payment timed out while waiting for you",
        "请重新发起支付。",
        "Please start the payment again.",
    ),
    "ORDER_EXISTS": _spec(
        "failover", True, "商户订单号重复", "The order number was already used for another order"
    ),
    "ORDER_NOT_EXIST": _spec("query", False, "订单不存在", "The bank has no such order"),
    "ORDER_PAID": _spec("final", False, "订单已支付", "The order is already paid"),
    "ORDER_CLOSED": _spec(
        "final",
        False,
        "订单已关闭",
        "The order is closed",
        "请重新下单。",
        "Please place the order again.",
    ),
    "ORDER_NOT_PAID": _spec(
        "final", False, "订单未支付，不能退款", "The order is not paid and cannot be refunded"
    ),
    "REFUND_AMOUNT_EXCEED": _spec(
        "final", False, "退款金额超过可退金额", "The refund is larger than what is left to refund"
    ),
    "REFUND_CONFLICT": _spec(
        "final",
        False,
        "退款单号已用于不同的退款",
        "The refund number was already used for a different refund",
    ),
    "REFUND_NOT_EXIST": _spec("query", False, "退款不存在", "The bank has no such refund"),
    "BILL_NOT_EXIST": _spec("final", False, "对账单不存在", "No reconciliation file for that day"),
    "SIGN_ERROR": _spec("failover", True, "验签失败", "The bank could not verify our signature"),
    "PARAM_ERROR": _spec("failover", True, "参数错误", "The bank rejected a request parameter"),
    "TIMESTAMP_EXPIRED": _spec(
        "failover", True, "请求时间超出允许范围", "Our clock is too far from the bank's"
    ),
    "MER_NOT_EXIST": _spec("failover", True, "商户不存在", "The merchant is not known to the bank"),
    "APPID_MISMATCH": _spec(
        "failover", True, "APPID与商户不匹配", "The APPID does not belong to this merchant"
    ),
    "SYSTEM_ERROR": _spec(
        "failover",
        True,
        "银行系统繁忙",
        "The bank's system is busy",
        "请稍后再试或换一种支付方式。",
        "Try again later or choose another method.",
    ),
    "UNSUPPORTED_CURRENCY": _spec(
        "failover",
        False,
        "该银行渠道仅支持人民币",
        "This bank channel accepts CNY only",
        "请换一种支付方式。",
        "Choose another payment method.",
    ),
    "PAY_METHOD_NOT_OPEN": _spec(
        "failover",
        True,
        "商户未在收单银行开通该支付方式",
        "The merchant has not opened this wallet at the acquiring bank",
        "请换一种支付方式。",
        "Choose another payment method.",
    ),
    "UNSUPPORTED_METHOD": _spec(
        "failover",
        False,
        "该银行渠道不支持这种支付方式",
        "This bank channel does not serve this payment method",
        "请换一种支付方式。",
        "Choose another payment method.",
    ),
}
#: codes that say the bank did not process the call: retry later / fail over, money untouched
SYSTEM_CODES = frozenset(
    {
        "SYSTEM_ERROR",
        "SIGN_ERROR",
        "PARAM_ERROR",
        "TIMESTAMP_EXPIRED",
        "MER_NOT_EXIST",
        "APPID_MISMATCH",
    }
)


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
            return cls(private, "04" + _point(public), "04" + _point(str(data["bank_public_key"])))
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


class ECNYBackend(ChannelBackend):
    """Wallet payments by QR code / H5 cashier at the acquiring bank: e-CNY, and the Alipay,
    WeChat Pay and UnionPay QR the same aggregated API serves (``payMethod``)."""

    code = "ecny"
    # Largest genuine notice: signed JSON, under 1 KB.
    max_notification_bytes = 16 * 1024
    methods = tuple(PAY_METHODS)
    display_name = "Acquiring bank: e-CNY and aggregated QR (SM2)"
    error_codes: ClassVar[Mapping[str, ErrorSpec]] = ERROR_CODES

    @property
    def credentials(self) -> Credentials:
        return Credentials.from_mapping(self.account.credentials)

    @property
    def base_url(self) -> str:
        url = self.account.base_url
        return url if url.endswith("/") else url + "/"

    def envelope(self, biz: Mapping[str, Any]) -> dict[str, str]:
        creds = self.credentials
        message = {
            "version": VERSION,
            "encoding": "UTF-8",
            "signMethod": SIGN_METHOD,
            "merId": self.account.merchant_id,
            "appId": self.account.app_id,
            "reqTime": stamp(),
            "nonce": secrets.token_hex(16),
            "bizContent": compact_json(biz),
        }
        return sign_envelope(message, creds.private_key, creds.public_key)

    def _call(self, path: str, biz: Mapping[str, Any], *, idempotent: bool) -> Answer:
        body = json.dumps(self.envelope(biz), ensure_ascii=False).encode("utf-8")
        response = http.send(
            self.base_url,
            "POST",
            path,
            content=body,
            idempotent=idempotent,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        if response.status_code != 200:
            raise ChannelUnavailable(
                f"e-CNY bank answered HTTP {response.status_code}",
                code=f"HTTP_{response.status_code}",
            )
        try:
            data = json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ChannelUnavailable(
                "e-CNY bank answered a body that is not JSON", code="BAD_RESPONSE"
            ) from None
        if not isinstance(data, dict) or not verify_envelope(
            data, self.credentials.bank_public_key
        ):
            raise ChannelError(
                "e-CNY bank response signature does not verify", code="BAD_SIGNATURE", raw=data
            )
        if data.get("merId") not in ("", None, self.account.merchant_id):
            raise ChannelError(
                f"e-CNY bank answered for merchant {data.get('merId')}",
                code="BAD_RESPONSE",
                raw=data,
            )
        try:
            biz = json.loads(data["bizContent"]) if data.get("bizContent") else {}
        except ValueError:
            raise ChannelError(
                "e-CNY bank bizContent is not JSON", code="BAD_RESPONSE", raw=data
            ) from None
        ok = data.get("returnCode") == "SUCCESS"
        return Answer(
            ok, "" if ok else str(data.get("errCode", "")), str(data.get("errMsg", "")), biz, data
        )

    @staticmethod
    def _raise(answer: Answer, declined: bool = False) -> None:
        message = f"e-CNY bank {answer.code}: {answer.message}"
        if answer.code == "SYSTEM_ERROR":
            raise ChannelUnavailable(message, code=answer.code, raw=dict(answer.raw))
        if declined and answer.code not in SYSTEM_CODES:
            raise ChannelDeclined(message, code=answer.code, raw=dict(answer.raw))
        raise ChannelError(message, code=answer.code, raw=dict(answer.raw))

    # -- paying --------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> CreateResult:
        """qrcodeapply with the pay type of ``request.method``: the bank answers that wallet's
        QR payload / deeplink (``qrCode``) and its H5 cashier URL."""
        pay_method = PAY_METHODS.get(request.method)
        if pay_method is None:
            raise ChannelDeclined(
                f"the acquiring bank's API does not serve the method {request.method!r}",
                code="UNSUPPORTED_METHOD",
            )
        if request.currency != "CNY":
            raise ChannelDeclined(
                f"the acquiring bank accepts CNY, not {request.currency}",
                code="UNSUPPORTED_CURRENCY",
            )
        biz = {
            "orderId": request.out_trade_no,
            "txnAmt": str(to_minor(request.amount)),
            "currencyCode": "CNY",
            "body": request.subject[:128],
            "notifyUrl": self.account.notify_url,
            "returnUrl": request.return_url or self.account.return_url,
            "expireTime": stamp(request.expires_at),
            "termIp": request.client.ip,
            "payMethod": pay_method,
        }
        answer = self._call(CREATE, biz, idempotent=False)
        if not answer.ok:
            self._raise(answer, declined=True)
        qr, cashier = str(answer.biz.get("qrCode", "")), str(answer.biz.get("cashierUrl", ""))
        if not qr:
            raise ChannelError(
                "e-CNY bank returned no qrCode", code="BAD_RESPONSE", raw=dict(answer.raw)
            )
        echoed = str(answer.biz.get("payMethod") or pay_method)
        if echoed != pay_method:
            # a QR for another wallet than the buyer chose cannot be paid with it
            raise ChannelError(
                f"the bank answered a {echoed} order for a {pay_method} request",
                code="BAD_RESPONSE",
                raw=dict(answer.raw),
            )
        return CreateResult(
            action=Action(type="qr", url=cashier, qr=qr),
            channel_trade_no=str(answer.biz.get("bankOrderId", "")),
        )

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        """Verify an SM2-signed notification: signature, merchant, notifyTime within the replay
        window (24 h old at most, 5 min ahead at most), then PAY / REFUND content."""
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("malformed body: not UTF-8 JSON") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise NotificationRejected("malformed body: expected a JSON object of strings")
        missing = [
            k
            for k in ("merId", "notifyType", "notifyTime", "bizContent", "sign")
            if not data.get(k)
        ]
        if missing:
            raise NotificationRejected(f"malformed body: missing {', '.join(missing)}")
        if not verify_envelope(data, self.credentials.bank_public_key):
            raise NotificationRejected(
                "bad signature: SM2 signature does not verify with the bank's key"
            )
        if data["merId"] != self.account.merchant_id:
            raise NotificationRejected(
                f"notification for merchant {data['merId']}, this account is {self.account.merchant_id}"
            )
        try:
            sent = parse_stamp(data["notifyTime"])
        except ValueError:
            raise NotificationRejected("malformed body: notifyTime is not yyyyMMddHHmmss") from None
        now = beijing_now()
        if sent < now - NOTIFY_MAX_AGE or sent > now + CLOCK_SKEW:
            raise NotificationRejected(
                f"stale timestamp: notifyTime {data['notifyTime']} is outside the accepted window"
            )
        try:
            biz = json.loads(data["bizContent"])
        except ValueError:
            raise NotificationRejected("malformed body: bizContent is not JSON") from None
        if not isinstance(biz, dict):
            raise NotificationRejected("malformed body: bizContent is not an object")
        if data["notifyType"] == "PAY":
            return self._pay_notice(data, biz)
        if data["notifyType"] == "REFUND":
            return self._refund_notice(data, biz)
        raise NotificationRejected(f"unknown event: notifyType {data['notifyType']}")

    def _amount(self, biz: Mapping[str, Any], key: str) -> Decimal:
        value = str(biz.get(key, ""))
        if not value.isdigit():
            raise NotificationRejected(f"malformed body: {key} is not an amount in fen")
        return from_minor(value)

    def _pay_notice(self, data: Mapping[str, str], biz: Mapping[str, Any]) -> Notice:
        outcome = {"SUCCESS": "succeeded", "FAIL": "failed"}.get(str(biz.get("tradeState")))
        if outcome is None:
            raise NotificationRejected(
                f"unknown event: PAY with tradeState {biz.get('tradeState')!r}"
            )
        if not biz.get("orderId"):
            raise NotificationRejected("malformed body: PAY without orderId")
        return Notice(
            kind="payment",
            out_trade_no=str(biz["orderId"]),
            outcome=outcome,
            amount=self._amount(biz, "txnAmt"),
            currency=str(biz.get("currencyCode", "CNY")),
            merchant_id=data["merId"],
            channel_trade_no=str(biz.get("bankOrderId", "")),
            occurred_at=_moment(biz.get("payTime")),
            error_code="" if outcome == "succeeded" else str(biz.get("errCode", "")),
            raw={**data, "bizContent": biz},
        )

    def _refund_notice(self, data: Mapping[str, str], biz: Mapping[str, Any]) -> Notice:
        outcome = {"SUCCESS": "succeeded", "FAIL": "failed", "PROCESSING": "pending"}.get(
            str(biz.get("refundState"))
        )
        if outcome is None:
            raise NotificationRejected(
                f"unknown event: REFUND with refundState {biz.get('refundState')!r}"
            )
        if not biz.get("refundId"):
            raise NotificationRejected("malformed body: REFUND without refundId")
        return Notice(
            kind="refund",
            out_trade_no=str(biz.get("orderId", "")),
            outcome=outcome,
            amount=self._amount(biz, "refundAmt"),
            currency=str(biz.get("currencyCode", "CNY")),
            merchant_id=data["merId"],
            channel_trade_no=str(biz.get("bankOrderId", "")),
            refund_no=str(biz["refundId"]),
            channel_refund_no=str(biz.get("bankRefundId", "")),
            occurred_at=_moment(biz.get("refundTime")),
            error_code="" if outcome != "failed" else str(biz.get("errCode", "")),
            raw={**data, "bizContent": biz},
        )

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """The bank stops re-sending only on HTTP 200 with ``returnCode`` SUCCESS."""
        if accepted:
            body = {"returnCode": "SUCCESS", "errMsg": "OK"}
            return NotifyReply(
                status=200, body=compact_json(body).encode(), content_type="application/json"
            )
        body = {"returnCode": "FAIL", "errMsg": (message or "rejected")[:128]}
        return NotifyReply(
            status=400, body=compact_json(body).encode(), content_type="application/json"
        )

    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        """orderquery: NOTPAY → pending, SUCCESS → succeeded, FAIL → failed, CLOSED → closed.
        An order the bank never received is reported failed (ORDER_NOT_EXIST): it cannot be paid."""
        answer = self._call(
            QUERY, {"orderId": out_trade_no, "bankOrderId": channel_trade_no}, idempotent=True
        )
        if not answer.ok:
            if answer.code == "ORDER_NOT_EXIST":
                return QueryResult(outcome="failed", error_code=answer.code, raw=dict(answer.raw))
            self._raise(answer)
        biz = answer.biz
        outcome = {
            "NOTPAY": "pending",
            "SUCCESS": "succeeded",
            "FAIL": "failed",
            "CLOSED": "closed",
        }.get(str(biz.get("tradeState")), "unknown")
        amount = from_minor(biz["txnAmt"]) if str(biz.get("txnAmt", "")).isdigit() else None
        return QueryResult(
            outcome=outcome,
            amount=amount,
            currency=str(biz.get("currencyCode", "CNY")),
            channel_trade_no=str(biz.get("bankOrderId", "")),
            paid_at=_moment(biz.get("payTime")),
            error_code=str(biz.get("errCode", "")) if outcome == "failed" else "",
            raw=dict(answer.raw),
        )

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """close: an unpaid order can no longer be paid. Closing twice, or an order the bank
        never received, is fine; a paid order raises ChannelDeclined(ORDER_PAID)."""
        answer = self._call(
            CLOSE, {"orderId": out_trade_no, "bankOrderId": channel_trade_no}, idempotent=True
        )
        if answer.ok or answer.code in {"ORDER_NOT_EXIST", "ORDER_CLOSED"}:
            return
        self._raise(answer, declined=True)

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        """refund (partial allowed), idempotent by ``refundId`` at the bank: the same refundId
        with the same amount answers the existing refund."""
        biz = {
            "orderId": request.out_trade_no,
            "bankOrderId": request.channel_trade_no,
            "refundId": request.refund_no,
            "refundAmt": str(to_minor(request.amount)),
            "currencyCode": "CNY",
            "reason": request.reason[:128],
            "notifyUrl": self.account.notify_url,
        }
        return self._refund_result(self._call(REFUND, biz, idempotent=True))

    def query_refund(self, request: RefundRequest) -> RefundResult:
        """refundquery; a refund the bank never received is sent now (same refundId)."""
        answer = self._call(
            REFUND_QUERY,
            {"orderId": request.out_trade_no, "refundId": request.refund_no},
            idempotent=True,
        )
        if not answer.ok and answer.code == "REFUND_NOT_EXIST":
            return self.refund(request)
        return self._refund_result(answer)

    def _refund_result(self, answer: Answer) -> RefundResult:
        if not answer.ok:
            if answer.code in SYSTEM_CODES:
                self._raise(answer)
            return RefundResult(outcome="failed", error_code=answer.code, raw=dict(answer.raw))
        state = str(answer.biz.get("refundState"))
        outcome = {"SUCCESS": "succeeded", "PROCESSING": "pending", "FAIL": "failed"}.get(state)
        if outcome is None:
            raise ChannelError(
                f"e-CNY bank answered refundState {state!r}",
                code="BAD_RESPONSE",
                raw=dict(answer.raw),
            )
        return RefundResult(
            outcome=outcome,
            channel_refund_no=str(answer.biz.get("bankRefundId", "")),
            error_code=str(answer.biz.get("errCode", "")) if outcome == "failed" else "",
            raw=dict(answer.raw),
        )

    # -- settlement ----------------------------------------------------------------------------
    def download_settlement(self, day: dt.date) -> bytes:
        """statement: the day's reconciliation file, checked against the SM3 digest the bank
        signs into its answer, returned byte for byte."""
        answer = self._call(
            STATEMENT, {"billDate": day.strftime("%Y%m%d"), "billType": "TRADE"}, idempotent=True
        )
        if not answer.ok:
            if answer.code == "BILL_NOT_EXIST":
                raise ChannelDeclined(
                    f"no e-CNY reconciliation file for {day}",
                    code=answer.code,
                    raw=dict(answer.raw),
                )
            self._raise(answer)
        try:
            data = base64.b64decode(str(answer.biz.get("fileContent", "")), validate=True)
        except (binascii.Error, ValueError):
            raise ChannelError("e-CNY fileContent is not base64", code="BAD_FILE") from None
        if sm3_hex(data) != str(answer.biz.get("digest", "")).lower():
            raise ChannelError(
                "e-CNY reconciliation file does not match its SM3 digest", code="BAD_FILE"
            )
        return data

    @classmethod
    def open_settlement(cls, stream: IO[bytes]) -> SettlementFile:
        return ECNYSettlementFile(stream)


def _moment(value: Any) -> dt.datetime | None:
    try:
        return parse_stamp(str(value)) if value else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Reconciliation file: pipe-separated UTF-8, H header / D detail / T trailer records

FILE_TAG = "ECNY-RECON"
DETAIL_FIELDS = (
    "recordType",
    "txnType",
    "merId",
    "orderId",
    "bankOrderId",
    "refundId",
    "bankRefundId",
    "txnTime",
    "amount",
    "fee",
    "currency",
    "status",
)
TRAILER_FIELDS = (
    "recordType",
    "recordCount",
    "payCount",
    "payAmount",
    "refundCount",
    "refundAmount",
    "feeTotal",
    "netAmount",
)
_AMOUNT_RE = re.compile(r"-?\d+\.\d{2}")


class ECNYSettlementFile(SettlementFile):
    """``H|ECNY-RECON|1.0|merId|yyyyMMdd|generatedAt``, then
    ``D|PAY or REFUND|merId|orderId|bankOrderId|refundId|bankRefundId|txnTime|amount|fee|currency|status``
    lines, then ``T|recordCount|payCount|payAmount|refundCount|refundAmount|feeTotal|netAmount``.
    The trailer is compared with the sums of the D lines after the last one; a file without
    it is truncated; a D line of another merchant than the header's is refused."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self._header_no, header = self._first_line()
        parts = header.split("|")
        if len(parts) != 6 or parts[0] != "H" or parts[1] != FILE_TAG:
            raise SettlementFileError(
                "not an e-CNY reconciliation file: the first record must be H|ECNY-RECON|…",
                line_no=self._header_no,
            )
        if parts[2] != "1.0":
            raise SettlementFileError(
                f"unsupported file version {parts[2]!r}", line_no=self._header_no
            )
        try:
            self._day = dt.datetime.strptime(parts[4], "%Y%m%d").date()
        except ValueError:
            raise SettlementFileError(
                f"header date {parts[4]!r} is not yyyyMMdd", line_no=self._header_no
            ) from None
        self._merchant = parts[3]
        if not self._merchant:
            raise SettlementFileError("header has no merchant id", line_no=self._header_no)
        self._trailer: dict[str, Any] | None = None

    def _decode(self, raw: bytes, line_no: int) -> str:
        try:
            return raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise SettlementFileError(
                "line is not UTF-8 (wrong encoding?)", line_no=line_no
            ) from None

    def _first_line(self) -> tuple[int, str]:
        line_no = 0
        for raw in self._stream:
            line_no += 1
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            text = self._decode(raw, line_no)
            if text.strip():
                self._next_no = line_no
                return line_no, text
        raise SettlementFileError("empty file: no header record")

    @property
    def totals(self) -> FileTotals:
        trailer = self._trailer or {}
        return FileTotals(
            merchant_id=self._merchant,
            day=self._day,
            payments=trailer.get("payCount"),
            refunds=trailer.get("refundCount"),
            lines=trailer.get("recordCount"),
            gross=trailer.get("payAmount"),
            refunded=trailer.get("refundAmount"),
            fees=trailer.get("feeTotal"),
        )

    def lines(self) -> Iterator[SettlementLine]:
        sums = {
            "lines": 0,
            "payCount": 0,
            "refundCount": 0,
            "gross": Decimal("0.00"),
            "refunded": Decimal("0.00"),
            "fees": Decimal("0.00"),
        }
        line_no = self._next_no
        trailer_no = 0
        for raw in self._stream:
            line_no += 1
            text = self._decode(raw, line_no)
            if not text.strip():
                continue
            if trailer_no:
                raise SettlementFileError("records after the trailer", line_no=line_no)
            tag = text.split("|", 1)[0]
            if tag == "D":
                line = self._detail(text, line_no)
                sums["lines"] += 1
                if line.kind == "payment":
                    sums["payCount"] += 1
                    sums["gross"] += line.amount
                else:
                    sums["refundCount"] += 1
                    sums["refunded"] += line.amount
                sums["fees"] += line.fee
                yield line
            elif tag == "T":
                self._trailer = self._parse_trailer(text, line_no)
                trailer_no = line_no
            else:
                raise SettlementFileError(f"unknown record type {tag!r}", line_no=line_no)
        if not trailer_no:
            raise SettlementFileError(
                f"missing trailer record: the file ends at line {line_no} (truncated?)",
                line_no=line_no,
            )
        self._check(sums, trailer_no)

    def _detail(self, text: str, line_no: int) -> SettlementLine:
        parts = text.split("|")
        if len(parts) != len(DETAIL_FIELDS):
            raise SettlementFileError(
                f"detail record has {len(parts)} fields, expected {len(DETAIL_FIELDS)}",
                line_no=line_no,
            )
        row = dict(zip(DETAIL_FIELDS, parts, strict=True))
        kind = {"PAY": "payment", "REFUND": "refund"}.get(row["txnType"])
        if kind is None:
            raise SettlementFileError(f"unknown txnType {row['txnType']!r}", line_no=line_no)
        if row["merId"] != self._merchant:
            raise SettlementFileError(
                f"record for merchant {row['merId']}, file is for {self._merchant}", line_no=line_no
            )
        if row["status"] != "SUCCESS":
            raise SettlementFileError(
                f"status {row['status']!r}: the file lists completed money movements only",
                line_no=line_no,
            )
        amount, fee = _amount(row["amount"], "amount", line_no), _amount(row["fee"], "fee", line_no)
        if amount <= 0:
            raise SettlementFileError(
                "amount must be positive (the txnType gives the direction)", line_no=line_no
            )
        if not row["orderId"] or (kind == "refund" and not row["refundId"]):
            raise SettlementFileError("detail record lacks orderId / refundId", line_no=line_no)
        try:
            occurred = parse_stamp(row["txnTime"])
        except ValueError:
            raise SettlementFileError(
                f"txnTime {row['txnTime']!r} is not yyyyMMddHHmmss", line_no=line_no
            ) from None
        return SettlementLine(
            line_no=line_no,
            kind=kind,
            out_trade_no=row["orderId"],
            channel_trade_no=row["bankOrderId"],
            amount=amount,
            fee=fee,
            currency=row["currency"] or "CNY",
            occurred_at=occurred,
            refund_no=row["refundId"] if kind == "refund" else "",
            raw=row,
        )

    def _parse_trailer(self, text: str, line_no: int) -> dict[str, Any]:
        parts = text.split("|")
        if len(parts) != len(TRAILER_FIELDS):
            raise SettlementFileError(
                f"trailer has {len(parts)} fields, expected {len(TRAILER_FIELDS)}", line_no=line_no
            )
        row = dict(zip(TRAILER_FIELDS, parts, strict=True))
        out: dict[str, Any] = {}
        for key in ("recordCount", "payCount", "refundCount"):
            if not row[key].isdigit():
                raise SettlementFileError(
                    f"trailer {key} {row[key]!r} is not a count", line_no=line_no
                )
            out[key] = int(row[key])
        for key in ("payAmount", "refundAmount", "feeTotal", "netAmount"):
            out[key] = _amount(row[key], key, line_no)
        return out

    def _check(self, sums: Mapping[str, Any], line_no: int) -> None:
        t = self._trailer or {}
        problems = []
        for label, mine, theirs in (
            ("records", sums["lines"], t["recordCount"]),
            ("payments", sums["payCount"], t["payCount"]),
            ("refunds", sums["refundCount"], t["refundCount"]),
            ("payment amount", sums["gross"], t["payAmount"]),
            ("refund amount", sums["refunded"], t["refundAmount"]),
            ("fees", sums["fees"], t["feeTotal"]),
            ("net", sums["gross"] - sums["refunded"] - sums["fees"], t["netAmount"]),
        ):
            if mine != theirs:
                problems.append(f"{label}: lines sum to {mine}, trailer says {theirs}")
        if problems:
            raise SettlementFileError(
                "trailer totals do not match the detail records: " + "; ".join(problems),
                line_no=line_no,
            )


def _amount(text: str, name: str, line_no: int) -> Decimal:
    if not _AMOUNT_RE.fullmatch(text):
        raise SettlementFileError(
            f"{name} {text!r} is not a yuan amount with two decimals", line_no=line_no
        )
    try:
        return money(text)
    except InvalidOperation:
        raise SettlementFileError(f"{name} {text!r} is not a number", line_no=line_no) from None
