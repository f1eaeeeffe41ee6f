"""Alipay open platform (支付宝开放平台) with RSA2 keys — CHANNELS.md §1.

What this module speaks, and why it looks the way it does:

* Requests are the gateway's form parameters (``app_id, method, charset, sign_type, timestamp,
  version, biz_content`` …) signed with the merchant's application private key: every non-empty
  parameter except ``sign`` (``sign_type`` included), sorted by key, joined as ``k=v`` with
  ``&`` and NOT URL-encoded, SHA256withRSA, base64 (§1.2).
* Synchronous answers are verified over the exact raw text of the ``*_response`` object, never
  a re-serialisation (§1.3).
* Notifications are form posts verified with ``sign`` and ``sign_type`` removed (§1.4); the
  reply is the literal ``success`` (or ``fail``).
* Which cashier: ``alipay.trade.precreate`` (a QR the checkout renders inline) on desktop,
  ``alipay.trade.wap.pay`` (a redirect into the Alipay app/H5 cashier) on phones and
  ``alipay.trade.page.pay`` (a redirect to the desktop cashier) when the device is unknown.
  For the two redirect flows the backend only builds the signed gateway URL; Alipay opens the
  trade when the buyer's browser arrives there.
* The daily trade bill (§1.7) is a ZIP of GBK CSV files; :class:`AlipayBill` streams its
  业务明细 file and checks the footer totals (and, inside the ZIP, the 汇总 file's fees).

The backend never knows whether ``base_url`` points at Alipay or at the local sandbox.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import IO, Any, ClassVar
from urllib.parse import parse_qsl, quote_plus, urlsplit
from zoneinfo import ZoneInfo

from payments.channels import http
from payments.channels.base import (
    CENT,
    Action,
    ChannelBackend,
    ChannelDeclined,
    ChannelTimeout,
    ChannelUnavailable,
    CreateRequest,
    CreateResult,
    ErrorSpec,
    FileTotals,
    Notice,
    NotificationRejected,
    NotifyReply,
    Outcome,
    QueryResult,
    ReadOnceSettlementFile,
    RefundRequest,
    RefundResult,
    SettlementFileError,
    SettlementLine,
    peek_stream,
)
from payments.channels.signing import sha256_rsa_sign, sha256_rsa_verify

#: Alipay's clocks, bills and notification times are Beijing time.
BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SIGN_TYPE = "RSA2"

#: trade_status → contract outcome (§1.5). TRADE_CLOSED of a trade that was paid (it carries a
#: payment time) means "fully refunded", which is still a succeeded payment — see _outcome().
TRADE_STATUS: Mapping[str, Outcome] = {
    "WAIT_BUYER_PAY": "pending",
    "TRADE_SUCCESS": "succeeded",
    "TRADE_FINISHED": "succeeded",
    "TRADE_CLOSED": "closed",
}

SUCCESS_CODE = "10000"
#: error code of a payment notice/query for a trade Alipay closed unpaid (no sub_code exists)
CLOSED_CODE = "TRADE_CLOSED"
UNKNOWN_CODE = "20000"  # service unavailable: the outcome is unknown, query again (§1.3)


# ---------------------------------------------------------------------------------------------
# RSA2 primitives


def sign_content(params: Mapping[str, Any], *, exclude: tuple[str, ...] = ("sign",)) -> str:
    """The string-to-sign: non-empty params minus ``exclude``, sorted by key, ``k=v`` joined
    with ``&``, values not URL-encoded; dict/list values as compact JSON (§1.2 steps 1-3).

    Requests exclude only ``sign``; notifications exclude ``sign`` and ``sign_type`` (§1.4).
    """
    parts = []
    for key in sorted(params):
        if key in exclude:
            continue
        value = params[key]
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if value is None or value == "":
            continue
        parts.append(f"{key}={value}")
    return "&".join(parts)


# RSA2 = SHA256withRSA over the UTF-8 bytes, base64 without newlines (§1.2 step 4).
rsa2_sign = sha256_rsa_sign
rsa2_verify = sha256_rsa_verify


def response_content(raw_text: str, response_key: str) -> str | None:
    """The exact raw text of the ``response_key`` object inside a synchronous answer — the
    bytes Alipay signed (§1.3). Found with a JSON-aware scan, so braces inside strings are safe."""
    marker = f'"{response_key}"'
    pos = raw_text.find(marker)
    if pos < 0:
        return None
    colon = raw_text.find(":", pos + len(marker))
    if colon < 0:
        return None
    start = colon + 1
    while start < len(raw_text) and raw_text[start] in " \t\r\n":
        start += 1
    try:
        _, end = json.JSONDecoder().raw_decode(raw_text, start)
    except ValueError:
        return None
    return raw_text[start:end]


# ---------------------------------------------------------------------------------------------
# Small conversions


def yuan(amount: Decimal) -> str:
    """Alipay amounts are yuan strings with two decimals; sub-cent amounts are refused."""
    quantized = amount.quantize(CENT)
    if quantized != amount:
        raise ValueError(f"amount {amount} has more than two decimal places")
    return format(quantized, "f")


def beijing_time(moment: dt.datetime) -> str:
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing(text: str) -> dt.datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` Beijing time; ``gmt_refund`` also carries milliseconds."""
    for pattern in (TIME_FORMAT, TIME_FORMAT + ".%f"):
        try:
            return dt.datetime.strptime(text.strip(), pattern).replace(tzinfo=BEIJING)
        except (ValueError, AttributeError):
            continue
    return None


def _money(text: str, *, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ValueError(f"{what} {text!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{what} {text!r} is not an amount")
    return value


# ---------------------------------------------------------------------------------------------
# The backend




_spec = ErrorSpec.of


ERROR_CODES: Mapping[str, ErrorSpec] = {
    # the buyer's own problems (the cashier's decline reasons, §1 sandbox `declines`)
    "ACQ.BUYER_BALANCE_NOT_ENOUGH": _spec(
        "final", False, "买家支付宝余额不足", "The Alipay balance is too low",
        "请充值或在支付宝中换一张银行卡，或改用其他支付方式", "Top up, pick another card in Alipay, or use another payment method"),
    "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH": _spec(
        "final", False, "银行卡余额不足", "The bank card's balance is too low",
        "请在支付宝中换一张银行卡，或改用其他支付方式", "Choose another card in Alipay or use another payment method"),
    "ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT": _spec(
        "final", False, "买家身份信息与银行预留信息不符（未通过实名认证）",
        "The buyer's identity or phone number does not match the bank's record",
        "请核对银行预留手机号与实名信息，或改用其他支付方式",
        "Check the phone number registered with your bank, or use another payment method"),
    "ACQ.PAYMENT_REQUEST_HAS_RISK": _spec(
        "final", False, "支付宝风控拒绝了本次支付", "Alipay's risk control declined this payment",
        "请改用其他支付方式", "Please use another payment method"),
    "ACQ.TRADE_HAS_CLOSE": _spec(
        "final", False, "交易已关闭（超时未支付）", "The trade was closed (not paid in time)",
        "请重新下单后再支付", "Start the payment again"),
    CLOSED_CODE: _spec(
        "final", False, "支付宝未完成付款，交易已关闭", "The payment was not completed in Alipay and the trade is closed",
        "请重新发起支付，或改用其他支付方式", "Pay again, or choose another payment method"),
    "ACQ.BUYER_ENABLE_STATUS_FORBID": _spec(
        "final", False, "买家支付宝账户状态异常", "The buyer's Alipay account is restricted",
        "请联系支付宝客服，或改用其他支付方式", "Contact Alipay support or use another payment method"),
    "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR": _spec(
        "final", False, "买家付款日限额超限", "The buyer's daily Alipay limit is reached",
        "请明天再试或改用其他支付方式", "Try again tomorrow or use another payment method"),
    "ACQ.BUYER_SELLER_EQUAL": _spec(
        "final", False, "买卖家不能相同", "Buyer and seller are the same Alipay account",
        "请使用其他支付宝账户付款", "Pay with another Alipay account"),
    "ACQ.ERROR_BALANCE_PAYMENT_DISABLE": _spec(
        "final", False, "余额支付功能已关闭", "Balance payments are switched off in the buyer's Alipay",
        "请在支付宝中开启余额支付或换卡支付", "Enable balance payments in Alipay or pay by card"),
    # the trade's state
    "ACQ.TRADE_HAS_SUCCESS": _spec("query", False, "交易已支付", "The trade is already paid"),
    "ACQ.TRADE_NOT_EXIST": _spec("query", False, "交易不存在", "Alipay does not know this trade"),
    "ACQ.TRADE_STATUS_ERROR": _spec("final", False, "交易状态不允许此操作", "The trade's state does not allow this"),
    "ACQ.CONTEXT_INCONSISTENT": _spec(
        "failover", True, "同一商户订单号的交易信息不一致", "The trade was opened before with different details"),
    "ACQ.TOTAL_FEE_EXCEED": _spec(
        "failover", False, "订单金额超过限额", "The amount is above this Alipay account's limit",
        "请改用其他支付方式或分开购买", "Use another payment method or split the order"),
    "ACQ.EXIST_FORBIDDEN_WORD": _spec("failover", False, "订单信息含违禁词", "The order description contains a forbidden word"),
    # refunds
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": _spec("final", False, "退款金额超过可退金额", "The refund exceeds what is left to refund"),
    "ACQ.TRADE_NOT_ALLOW_REFUND": _spec("final", False, "当前交易不允许退款", "This trade can no longer be refunded"),
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": _spec(
        "final", True, "商户支付宝账户余额不足，无法退款", "The merchant's Alipay balance is too low to refund",
        "请财务为支付宝账户充值后重试", "Finance must top up the Alipay account, then retry"),
    "ACQ.REASON_TRADE_BEEN_FREEZEN": _spec("final", True, "交易已被冻结", "The trade is frozen by Alipay"),
    "REFUND_NOT_FOUND": _spec(
        "final", False, "支付宝查无此退款（未退款成功）", "Alipay has no such refund (it did not go through)",
        "可用同一退款请求号重新发起退款", "Retrying with the same refund number is safe"),
    # the merchant's set-up and Alipay's own health
    "ACQ.SYSTEM_ERROR": _spec("query", True, "支付宝系统繁忙", "Alipay is busy", "稍后重试", "Try again shortly"),
    "ACQ.INVALID_PARAMETER": _spec("failover", True, "请求参数无效", "Alipay rejected the request's parameters"),
    "ACQ.ACCESS_FORBIDDEN": _spec("failover", True, "商户无权使用该接口", "The merchant may not use this Alipay API"),
    "ACQ.PARTNER_ERROR": _spec("failover", True, "应用 APP_ID 填写错误", "The Alipay app id is wrong"),
    "isv.invalid-signature": _spec("failover", True, "请求签名无效（应用私钥与公钥不匹配）", "Alipay rejected our signature (key mismatch)"),
    "isv.invalid-app-id": _spec("failover", True, "无效的 APP_ID", "Alipay does not know this app id"),
    "isv.missing-signature": _spec("failover", True, "请求缺少签名", "The request carried no signature"),
    "isv.invalid-signature-type": _spec("failover", True, "签名类型无效", "Unsupported sign_type"),
    "isv.invalid-timestamp": _spec("failover", True, "请求时间戳无效", "The request timestamp was refused"),
    "isv.invalid-method": _spec("failover", True, "不存在的接口名称", "Unknown Alipay API method"),
    "isp.unknow-error": _spec("query", True, "支付宝服务暂不可用", "Alipay is temporarily unavailable", "稍后重试", "Try again shortly"),
    UNKNOWN_CODE: _spec("query", True, "支付宝服务暂不可用", "Alipay is temporarily unavailable", "稍后重试", "Try again shortly"),
    "RESPONSE_SIGNATURE_INVALID": _spec("failover", True, "支付宝应答验签失败", "Alipay's answer failed signature verification"),
    "MISCONFIGURED": _spec("failover", True, "支付宝渠道账户配置不完整", "The Alipay channel account is missing credentials"),
    "CURRENCY_NOT_SUPPORTED": _spec("failover", False, "该支付宝账户只收人民币", "This Alipay account accepts CNY only"),
    # bills
    "BILL_NOT_EXIST": _spec("final", False, "账单不存在（尚未生成）", "The bill does not exist yet", "次日 9 点后再下载", "Download after 09:00 the next day"),
    "isp.bill_not_exist": _spec("final", False, "账单不存在（尚未生成）", "The bill does not exist yet", "次日 9 点后再下载", "Download after 09:00 the next day"),
    "INVAILID_ARGUMENTS": _spec("final", False, "账单参数无效", "Invalid bill query arguments"),
}


class AlipayBackend(ChannelBackend):
    """Alipay direct merchant, public-key mode (``alipay_public_key``; certificate mode is not used).

    Credentials (the ChannelAccount's encrypted dict):
    ``app_private_key`` (the application's RSA2 private key, PEM or bare base64) and
    ``alipay_public_key`` (Alipay's public key shown in the open-platform console).
    ``merchant_id`` is the 16-digit partner id (PID, ``seller_id`` in notifications) and
    ``app_id`` the open-platform application id.
    """

    code: ClassVar[str] = "alipay"
    # Largest genuine notice: form fields, ~1 KB; fund_bill_list and vouchers stay a few KB.
    max_notification_bytes = 16 * 1024
    methods: ClassVar[tuple[str, ...]] = ("alipay",)
    display_name: ClassVar[str] = "支付宝 Alipay"
    error_codes: ClassVar[Mapping[str, ErrorSpec]] = ERROR_CODES

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        return self.account.base_url.rstrip("/") + "/gateway.do"

    def _credential(self, name: str) -> str:
        value = self.account.credentials.get(name)
        if not value:
            raise ChannelDeclined(f"Alipay account {self.account.code!r} has no {name} credential", code="MISCONFIGURED")
        return str(value)

    def signed_params(self, method: str, biz_content: Mapping[str, Any], **extra: str) -> dict[str, str]:
        """The gateway parameters for one call, ``sign`` included (§1.1, §1.2)."""
        params: dict[str, str] = {
            "app_id": self.account.app_id,
            "method": method,
            "charset": "utf-8",
            "sign_type": SIGN_TYPE,
            "timestamp": beijing_time(dt.datetime.now(tz=BEIJING)),
            "version": "1.0",
            "biz_content": json.dumps(dict(biz_content), ensure_ascii=False, separators=(",", ":")),
        }
        params.update({k: v for k, v in extra.items() if v})
        params["sign"] = rsa2_sign(sign_content(params), self._credential("app_private_key"))
        return params

    def gateway_link(self, method: str, biz_content: Mapping[str, Any], **extra: str) -> str:
        """A signed GET URL for the browser flows (page/wap pay): every value ``quote_plus``-ed (§1.2 step 5)."""
        params = self.signed_params(method, biz_content, **extra)
        query = "&".join(f"{k}={quote_plus(v)}" for k, v in params.items())
        return f"{self.gateway_url}?{query}"

    def call(self, method: str, biz_content: Mapping[str, Any], *, idempotent: bool = False, **extra: str) -> dict[str, Any]:
        """One API call: POST the signed form, verify the answer over the raw ``*_response``
        text (§1.3), and turn non-10000 codes into errors (``20000`` → unknown outcome).
        ``extra`` are gateway parameters such as ``notify_url``."""
        params = self.signed_params(method, biz_content, **extra)
        response = http.send(
            self.account.base_url,
            "POST",
            self.gateway_url,
            idempotent=idempotent,
            data=params,
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            raise ChannelUnavailable(f"Alipay answered HTTP {response.status_code} to {method}", code=f"HTTP_{response.status_code}")
        try:
            text = response.content.decode("utf-8")
            document = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            raise ChannelUnavailable(f"Alipay's answer to {method} is not JSON", code="BAD_RESPONSE") from None
        key = method.replace(".", "_") + "_response"
        if "error_response" in document or key not in document:
            error = document.get("error_response") or {}
            code = str(error.get("sub_code") or error.get("code") or "BAD_RESPONSE")
            raise ChannelDeclined(f"Alipay refused {method}: {error.get('sub_msg') or error.get('msg') or code}", code=code, raw=error)
        raw_inner = response_content(text, key)
        inner = json.loads(raw_inner) if raw_inner else {}
        code = str(inner.get("code", ""))
        signature = document.get("sign") or ""
        if signature:
            if not rsa2_verify(raw_inner or "", signature, self._credential("alipay_public_key")):
                raise ChannelUnavailable(f"Alipay's answer to {method} failed signature verification", code="RESPONSE_SIGNATURE_INVALID")
        elif code == SUCCESS_CODE:
            # an unsigned "success" could be anyone's; only refusals may come unsigned
            raise ChannelUnavailable(f"Alipay's answer to {method} is not signed", code="RESPONSE_SIGNATURE_INVALID")
        if code == SUCCESS_CODE:
            return inner
        sub_code = str(inner.get("sub_code") or code or "BAD_RESPONSE")
        message = f"Alipay {method}: {inner.get('sub_msg') or inner.get('msg') or sub_code}"
        if code == UNKNOWN_CODE:
            raise ChannelTimeout(message, code=sub_code, raw=inner)
        raise ChannelDeclined(message, code=sub_code, raw=inner)

    # -- paying --------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> CreateResult:
        """Desktop → precreate QR (rendered inline); phone → wap.pay; unknown → page.pay."""
        if request.currency != "CNY":
            raise ChannelDeclined(f"Alipay takes CNY, not {request.currency}", code="CURRENCY_NOT_SUPPORTED")
        biz: dict[str, Any] = {
            "out_trade_no": request.out_trade_no,
            "total_amount": yuan(request.amount),
            "subject": (request.subject or request.out_trade_no)[:256],
            "time_expire": beijing_time(request.expires_at),
        }
        return_url = request.return_url or self.account.return_url
        notify_url = self.account.notify_url
        if request.client.device == "desktop":
            answer = self.call("alipay.trade.precreate", biz, notify_url=notify_url)
            qr_code = str(answer.get("qr_code", ""))
            if not qr_code:
                raise ChannelUnavailable("Alipay precreate answered without a qr_code", code="BAD_RESPONSE")
            return CreateResult(action=Action(type="qr", url=qr_code, qr=qr_code))
        if request.client.device == "phone":
            method, product = "alipay.trade.wap.pay", "QUICK_WAP_WAY"
            if return_url:
                biz["quit_url"] = return_url
        else:
            method, product = "alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"
        biz["product_code"] = product
        url = self.gateway_link(method, biz, notify_url=notify_url, return_url=return_url)
        return CreateResult(action=Action(type="redirect", url=url))

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        """Verify an async notify (§1.4): form body, RSA2 over the sorted params without
        ``sign``/``sign_type``; then the app id and seller (PID) must be this account's.

        Alipay's scheme carries no freshness window (it retries for 25 h), so only the
        signature binds the message. A refund-flavoured trade_status_sync (``out_biz_no`` +
        ``gmt_refund``) becomes a refund notice whose amount is Alipay's cumulative
        ``refund_fee`` for the trade.
        """
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise NotificationRejected("malformed notification: body is not UTF-8 form data") from None
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise NotificationRejected("malformed notification: body is not a form") from None
        params = dict(pairs)
        if len(params) != len(pairs):
            raise NotificationRejected("malformed notification: repeated parameters")
        for name in ("sign", "sign_type", "out_trade_no", "trade_status", "total_amount", "notify_type"):
            if not params.get(name):
                raise NotificationRejected(f"malformed notification: missing {name}")
        if params["sign_type"] != SIGN_TYPE:
            raise NotificationRejected(f"unsupported sign_type {params['sign_type']!r} (expected RSA2)")
        public_key = self.account.credentials.get("alipay_public_key")
        if not public_key:
            raise NotificationRejected(f"account {self.account.code!r} has no alipay_public_key to verify with")
        if not rsa2_verify(sign_content(params, exclude=("sign", "sign_type")), params["sign"], str(public_key)):
            raise NotificationRejected("bad signature: the notification does not verify with Alipay's public key")
        if self.account.app_id and params.get("app_id") != self.account.app_id:
            raise NotificationRejected(f"notification for app_id {params.get('app_id')!r}, not this account's {self.account.app_id!r}")
        if self.account.merchant_id and params.get("seller_id") != self.account.merchant_id:
            raise NotificationRejected(f"notification for another merchant: seller_id {params.get('seller_id')!r}, expected {self.account.merchant_id!r}")
        if params["notify_type"] != "trade_status_sync":
            raise NotificationRejected(f"unknown notify_type {params['notify_type']!r}")
        status = params["trade_status"]
        if status not in TRADE_STATUS:
            raise NotificationRejected(f"unknown trade_status {status!r}")
        try:
            amount = _money(params["total_amount"], what="total_amount").quantize(CENT)
            refund_fee = _money(params["refund_fee"], what="refund_fee").quantize(CENT) if params.get("refund_fee") else None
        except ValueError as exc:
            raise NotificationRejected(f"malformed notification: {exc}") from None
        common = {
            "out_trade_no": params["out_trade_no"],
            "currency": params.get("trans_currency") or "CNY",
            "merchant_id": params.get("seller_id", ""),
            "channel_trade_no": params.get("trade_no", ""),
            "raw": params,
        }
        if params.get("out_biz_no") and params.get("gmt_refund") and refund_fee is not None:
            return Notice(
                kind="refund", outcome="succeeded", amount=refund_fee, refund_no=params["out_biz_no"],
                occurred_at=parse_beijing(params["gmt_refund"]), **common,
            )
        outcome = _outcome(status, paid=bool(params.get("gmt_payment")))
        occurred = parse_beijing(params.get("gmt_payment") or params.get("gmt_close") or params.get("notify_time", ""))
        return Notice(kind="payment", outcome=outcome, amount=amount, occurred_at=occurred, error_code=_closed_code(outcome), **common)

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """The literal ``success`` stops Alipay's retries; anything else (``fail``) keeps them (§1.4)."""
        return NotifyReply(status=200, body=b"success" if accepted else b"fail", content_type="text/plain")

    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        """``alipay.trade.query``. ``ACQ.TRADE_NOT_EXIST`` is "pending": precreate and
        page/wap trades only exist at Alipay once the buyer scans or opens the cashier."""
        biz = {"out_trade_no": out_trade_no} if out_trade_no else {"trade_no": channel_trade_no}
        try:
            answer = self.call("alipay.trade.query", biz, idempotent=True)
        except ChannelDeclined as exc:
            if exc.code == "ACQ.TRADE_NOT_EXIST":
                return QueryResult(outcome="pending", error_code=exc.code, raw=exc.raw or {})
            raise
        status = str(answer.get("trade_status", ""))
        if status not in TRADE_STATUS:
            return QueryResult(outcome="unknown", error_code=status, raw=answer)
        amount = answer.get("total_amount")
        outcome = _outcome(status, paid=bool(answer.get("send_pay_date")))
        return QueryResult(
            outcome=outcome,
            error_code=_closed_code(outcome),
            amount=Decimal(str(amount)).quantize(CENT) if amount else None,
            currency=str(answer.get("trans_currency") or "CNY"),
            channel_trade_no=str(answer.get("trade_no", "")),
            paid_at=parse_beijing(str(answer.get("send_pay_date", ""))),
            raw=answer,
        )

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """``alipay.trade.close``; a trade Alipay never opened needs no closing."""
        biz = {"out_trade_no": out_trade_no} if out_trade_no else {"trade_no": channel_trade_no}
        try:
            self.call("alipay.trade.close", biz, idempotent=True)
        except ChannelDeclined as exc:
            if exc.code != "ACQ.TRADE_NOT_EXIST":
                raise

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        """``alipay.trade.refund`` keyed by ``out_request_no`` (= refund_no), so a repeat is
        harmless (§1.6). ``fund_change=Y`` is a completed refund; ``N`` (a repeat, or money
        not moved yet) is confirmed with the refund query. Business refusals come back as
        ``failed`` with Alipay's sub_code."""
        biz: dict[str, Any] = {
            "out_trade_no": request.out_trade_no,
            "refund_amount": yuan(request.amount),
            "out_request_no": request.refund_no,
        }
        if request.channel_trade_no:
            biz["trade_no"] = request.channel_trade_no
        if request.reason:
            biz["refund_reason"] = request.reason[:256]
        try:
            answer = self.call("alipay.trade.refund", biz, idempotent=True)
        except ChannelDeclined as exc:
            if exc.code == "ACQ.SYSTEM_ERROR":
                return RefundResult(outcome="pending", error_code=exc.code, raw=exc.raw or {})
            return RefundResult(outcome="failed", error_code=exc.code, raw=exc.raw or {})
        if answer.get("fund_change") == "Y":
            return RefundResult(outcome="succeeded", raw=answer)
        return self.query_refund(request)

    def query_refund(self, request: RefundRequest) -> RefundResult:
        """``alipay.trade.fastpay.refund.query``: data with ``refund_status`` empty or
        REFUND_SUCCESS is a completed refund; no data means Alipay never took it."""
        biz: dict[str, Any] = {"out_trade_no": request.out_trade_no, "out_request_no": request.refund_no}
        if request.channel_trade_no:
            biz["trade_no"] = request.channel_trade_no
        try:
            answer = self.call("alipay.trade.fastpay.refund.query", biz, idempotent=True)
        except ChannelDeclined as exc:
            return RefundResult(outcome="failed", error_code=exc.code, raw=exc.raw or {})
        if not answer.get("refund_amount"):
            return RefundResult(outcome="failed", error_code="REFUND_NOT_FOUND", raw=answer)
        if answer.get("refund_status") in (None, "", "REFUND_SUCCESS"):
            return RefundResult(outcome="succeeded", raw=answer)
        return RefundResult(outcome="pending", raw=answer)

    # -- settlement ----------------------------------------------------------------------------
    def download_settlement(self, day: dt.date) -> bytes:
        """``alipay.data.dataservice.bill.downloadurl.query`` (bill_type=trade), then GET the
        short-lived ``bill_download_url``: the ZIP exactly as Alipay serves it (§1.6, §1.7)."""
        answer = self.call(
            "alipay.data.dataservice.bill.downloadurl.query",
            {"bill_type": "trade", "bill_date": day.isoformat()},
            idempotent=True,
        )
        url = str(answer.get("bill_download_url", ""))
        if not url:
            raise ChannelUnavailable("Alipay answered without a bill_download_url", code="BAD_RESPONSE")
        parts = urlsplit(url)
        response = http.send(f"{parts.scheme}://{parts.netloc}", "GET", url, idempotent=True)
        if response.status_code != 200 or not response.content:
            raise ChannelUnavailable(f"the Alipay bill download answered HTTP {response.status_code}", code=f"HTTP_{response.status_code}")
        return response.content

    @classmethod
    def open_settlement(cls, stream: IO[bytes], *, merchant_id: str = "") -> AlipayBill:
        """The downloaded ZIP, or the bare 业务明细 CSV (GBK or UTF-8, CRLF or LF).

        With ``merchant_id`` (a 16-digit PID) a bill of another merchant is refused.
        """
        return AlipayBill.open(stream, merchant_id=merchant_id)


def _closed_code(outcome: str) -> str:
    """Alipay closes an unpaid trade without saying why (the payer declined, or it expired);
    the closure itself is the code, so the buyer gets the mapped reason and guidance."""
    return CLOSED_CODE if outcome == "closed" else ""


def _outcome(status: str, *, paid: bool) -> Outcome:
    if status == "TRADE_CLOSED" and paid:
        return "succeeded"  # paid, then fully refunded (§1.5): the payment itself succeeded
    return TRADE_STATUS[status]


# ---------------------------------------------------------------------------------------------
# The trade bill (§1.7)

DETAIL_TITLE = "#支付宝业务明细查询"
SUMMARY_TITLE = "#支付宝业务汇总查询"
DETAIL_END = "业务明细列表结束"
DETAIL_SUFFIX = "_业务明细.csv"
SUMMARY_SUFFIX = "_业务明细(汇总).csv"

COL_TRADE_NO = "支付宝交易号"
COL_OUT_TRADE_NO = "商户订单号"
COL_TYPE = "业务类型"
COL_CREATED = "创建时间"
COL_FINISHED = "完成时间"
COL_ORDER_AMOUNT = "订单金额（元）"
COL_RECEIVED = "商家实收（元）"
COL_MERCHANT_DISCOUNT = "商家优惠（元）"
COL_REFUND_NO = "退款批次号/请求号"
COL_FEE = "服务费（元）"

REQUIRED_COLUMNS = (COL_TRADE_NO, COL_OUT_TRADE_NO, COL_TYPE, COL_ORDER_AMOUNT, COL_RECEIVED, COL_REFUND_NO, COL_FEE)

KIND_BY_TYPE = {"交易": "payment", "退款": "refund"}

_ACCOUNT_RE = re.compile(r"^#账号[:：]\s*\[?(\d+)\]?")
_START_RE = re.compile(r"起始日期[:：]\s*\[(\d{4})年(\d{1,2})月(\d{1,2})日")
_COUNT_RE = re.compile(r"(\d+)笔")
_AMOUNT_RE = re.compile(r"共(-?[\d.]+)元")


def _normalise_header(name: str) -> str:
    return name.strip().strip("\t").replace("(", "（").replace(")", "）")


def _cells(text: str) -> list[str]:
    """One CSV line's cells with Alipay's anti-Excel TAB suffix removed (§1.7)."""
    row = next(csv.reader([text]), [])
    return [cell.replace("\t", "").strip() for cell in row]


def merchant_of_account(account: str) -> str:
    """``#账号`` holds the 16-digit PID followed by ``0156`` (the CNY currency code)."""
    return account[:16] if len(account) == 20 and account.endswith("0156") else account


class AlipayBill(ReadOnceSettlementFile):
    """A streaming reader of one 业务明细 file (plus, from the ZIP, its 汇总 file's totals).

    After the last line it compares the footer (``#交易合计`` / ``#退款合计``: counts by
    ``(\\d+)笔`` and amounts by ``共(-?[\\d.]+)元``) and the 汇总 file's 合计 row with the sums
    of the lines, and raises :class:`SettlementFileError` naming the line when they disagree.
    """

    def __init__(self, detail: IO[bytes], *, summary: bytes | None = None, merchant_id: str = "", keep_open: Any = None):
        self._detail = detail
        self._summary = summary
        self._expected_merchant = merchant_id
        self._keep_open = keep_open  # the ZipFile the detail stream reads from

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, stream: IO[bytes], *, merchant_id: str = "") -> AlipayBill:
        head, stream = _peek(stream, 4)
        if not head:
            raise SettlementFileError("empty file: not an Alipay bill")
        if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
            return cls._open_zip(stream, merchant_id=merchant_id)
        return cls(stream, merchant_id=merchant_id)

    @classmethod
    def _open_zip(cls, stream: IO[bytes], *, merchant_id: str) -> AlipayBill:
        if not _seekable(stream):
            stream = io.BytesIO(stream.read())
        try:
            archive = zipfile.ZipFile(stream, metadata_encoding="gbk")  # names: GBK, no UTF-8 flag (§1.7)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise SettlementFileError(f"not a readable ZIP (truncated or corrupt): {exc}") from None
        detail = summary = None
        for info in archive.infolist():
            if info.filename.endswith(SUMMARY_SUFFIX):
                summary = info
            elif info.filename.endswith(DETAIL_SUFFIX):
                detail = info
        if detail is None:
            names = ", ".join(i.filename for i in archive.infolist()) or "nothing"
            raise SettlementFileError(f"the ZIP holds no …{DETAIL_SUFFIX} trade bill (found {names})")
        try:
            summary_bytes = archive.read(summary) if summary is not None else None
            detail_stream = archive.open(detail)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise SettlementFileError(f"the ZIP entry cannot be read (corrupt): {exc}") from None
        return cls(detail_stream, summary=summary_bytes, merchant_id=merchant_id, keep_open=archive)

    _read_errors = (zipfile.BadZipFile, EOFError, OSError)

    # -- parsing -----------------------------------------------------------------------------
    def _parse(self) -> Iterator[SettlementLine]:
        encoding = ""
        account = ""
        day: dt.date | None = None
        columns: dict[str, int] | None = None
        ended = False
        footer_trade: tuple[int, str] | None = None
        footer_refund: tuple[int, str] | None = None
        sums = {"payment": [0, Decimal(0), Decimal(0), Decimal(0)], "refund": [0, Decimal(0), Decimal(0), Decimal(0)]}
        fee_sum = Decimal(0)
        deduction_convention = False
        line_no = 0
        for line_no, raw in enumerate(self._detail, start=1):
            if line_no == 1:
                encoding = _detect_encoding(raw)
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                raise SettlementFileError(f"line is not valid {encoding.upper()} text (wrong encoding?)", line_no=line_no) from None
            text = text.lstrip("\ufeff").rstrip("\r\n")
            if not text.strip():
                continue
            if line_no == 1:
                if text.strip() != DETAIL_TITLE:
                    raise SettlementFileError(f"not an Alipay 业务明细 bill: first line is {text[:40]!r}", line_no=1)
                continue
            if text.startswith("#"):
                if columns is None:
                    found = _ACCOUNT_RE.match(text)
                    if found:
                        account = found.group(1)
                        merchant = merchant_of_account(account)
                        if self._expected_merchant and merchant != self._expected_merchant:
                            raise SettlementFileError(
                                f"the bill belongs to merchant {merchant}, not {self._expected_merchant}", line_no=line_no)
                    started = _START_RE.search(text)
                    if started:
                        day = dt.date(int(started.group(1)), int(started.group(2)), int(started.group(3)))
                    continue
                if DETAIL_END in text:
                    ended = True
                elif text.startswith("#交易合计"):
                    footer_trade = (line_no, text)
                elif text.startswith("#退款合计"):
                    footer_refund = (line_no, text)
                continue
            if ended:
                raise SettlementFileError("data after the end of the detail list", line_no=line_no)
            if columns is None:
                names = [_normalise_header(c) for c in _cells(text)]
                missing = [c for c in REQUIRED_COLUMNS if c not in names]
                if missing:
                    raise SettlementFileError(f"the column header lacks {', '.join(missing)}", line_no=line_no)
                columns = {name: i for i, name in enumerate(names)}
                width = len(names)
                continue
            cells = _cells(text)
            if len(cells) != width:
                raise SettlementFileError(f"expected {width} columns, found {len(cells)} (truncated line?)", line_no=line_no)
            row = {name: cells[i] for name, i in columns.items()}
            kind = KIND_BY_TYPE.get(row[COL_TYPE])
            if kind is None:
                raise SettlementFileError(f"unknown 业务类型 {row[COL_TYPE]!r}", line_no=line_no)
            try:
                order_amount = _money(row[COL_ORDER_AMOUNT], what=COL_ORDER_AMOUNT)
                received = _money(row[COL_RECEIVED], what=COL_RECEIVED)
                fee = _money(row[COL_FEE] or "0", what=COL_FEE)
                discount = _money(row.get(COL_MERCHANT_DISCOUNT) or "0", what=COL_MERCHANT_DISCOUNT)
            except ValueError as exc:
                raise SettlementFileError(str(exc), line_no=line_no) from None
            bucket = sums[kind]
            bucket[0] += 1
            bucket[1] += received
            bucket[2] += order_amount
            bucket[3] += discount
            fee_sum += fee
            if kind == "payment" and fee < 0:
                deduction_convention = True
            yield SettlementLine(
                line_no=line_no,
                kind=kind,
                out_trade_no=row[COL_OUT_TRADE_NO],
                channel_trade_no=row[COL_TRADE_NO],
                amount=abs(order_amount),
                # sign-agnostic: a charge on payments, a return on refunds (§1.7 leaves 服务费's sign open)
                fee=abs(fee) if kind == "payment" else -abs(fee),
                currency="CNY",
                occurred_at=parse_beijing(row.get(COL_FINISHED, "")) or parse_beijing(row.get(COL_CREATED, "")),
                refund_no=row[COL_REFUND_NO] if kind == "refund" else "",
                raw=row,
            )
        last = line_no
        if last == 0:
            raise SettlementFileError("empty file: not an Alipay bill")
        if columns is None:
            raise SettlementFileError("the bill ends before its column header (truncated)", line_no=last)
        if not ended:
            raise SettlementFileError("the detail list has no end marker (file truncated)", line_no=last)
        if footer_trade is None or footer_refund is None:
            which = "#交易合计" if footer_trade is None else "#退款合计"
            raise SettlementFileError(f"missing footer line {which} (file truncated)", line_no=last)
        if not account:
            raise SettlementFileError("the bill names no #账号 (merchant)", line_no=2)
        payments, gross = _check_footer(footer_trade, sums["payment"], refund=False)
        refunds, refunded = _check_footer(footer_refund, sums["refund"], refund=True)
        fees = None
        if self._summary is not None:
            summary_fee = _check_summary(self._summary, payments=payments, refunds=refunds, fee_sum=fee_sum)
            fees = -summary_fee if deduction_convention else summary_fee
        self._totals = FileTotals(
            merchant_id=merchant_of_account(account),
            day=day,
            payments=payments,
            refunds=refunds,
            lines=payments + refunds,
            gross=gross,
            refunded=abs(refunded),
            fees=fees,
        )


def _check_footer(footer: tuple[int, str], bucket: list, *, refund: bool) -> tuple[int, Decimal]:
    line_no, text = footer
    counts = _COUNT_RE.findall(text)
    amounts = _AMOUNT_RE.findall(text)
    if not counts or not amounts:
        raise SettlementFileError(f"cannot read the footer {text!r}", line_no=line_no)
    count = int(counts[0])
    try:
        stated = [Decimal(a) for a in amounts]
    except InvalidOperation:
        raise SettlementFileError(f"cannot read the footer {text!r}", line_no=line_no) from None
    rows, received, ordered, discount = bucket
    label = "退款" if refund else "交易"
    if count != rows:
        raise SettlementFileError(f"footer says {count} {label} rows, the file has {rows}", line_no=line_no)
    # newer wording states 商家实收, the older one 交易金额 (= 订单金额)
    expected = received if "实收" in text else ordered
    if stated[0] not in (expected, -expected):
        raise SettlementFileError(f"footer says {label} total {stated[0]}, the rows add up to {expected}", line_no=line_no)
    if len(stated) > 1 and "优惠" in text and stated[1] not in (discount, -discount):
        raise SettlementFileError(f"footer says {label} 商家优惠 {stated[1]}, the rows add up to {discount}", line_no=line_no)
    return count, stated[0]


def _check_summary(data: bytes, *, payments: int, refunds: int, fee_sum: Decimal) -> Decimal:
    """The 汇总 file's 合计 row must agree with the detail: order counts and 服务费."""
    encoding = _detect_encoding(data.split(b"\n", 1)[0], title=SUMMARY_TITLE)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise SettlementFileError(f"the 汇总 file is not valid {encoding.upper()} text") from None
    header: dict[str, int] | None = None
    for line_no, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = _cells(line)
        if header is None:
            header = {_normalise_header(c): i for i, c in enumerate(cells)}
            continue
        if cells and cells[0] == "合计":
            try:
                stated_payments = int(cells[header["交易订单总笔数"]])
                stated_refunds = int(cells[header["退款订单总笔数"]])
                stated_fee = Decimal(cells[header[COL_FEE]] or "0")
            except (KeyError, IndexError, ValueError, InvalidOperation):
                raise SettlementFileError(f"汇总 file line {line_no}: cannot read the 合计 row") from None
            if (stated_payments, stated_refunds) != (payments, refunds):
                raise SettlementFileError(
                    f"汇总 file line {line_no}: 合计 says {stated_payments} trades / {stated_refunds} refunds, "
                    f"the detail has {payments} / {refunds}")
            if stated_fee != fee_sum:
                raise SettlementFileError(f"汇总 file line {line_no}: 合计 服务费 {stated_fee}, the detail adds up to {fee_sum}")
            return stated_fee
    raise SettlementFileError("the 汇总 file has no 合计 row")


def _detect_encoding(first_line: bytes, *, title: str = DETAIL_TITLE) -> str:
    """UTF-8 (with or without BOM) or GBK, decided by the title line; else a wrong encoding."""
    stripped = first_line.rstrip(b"\r\n")
    for encoding in ("utf-8-sig", "gbk"):
        try:
            if stripped.decode(encoding).strip() == title:
                return "utf-8" if encoding == "utf-8-sig" else encoding
        except UnicodeDecodeError:
            continue
    raise SettlementFileError(
        f"not an Alipay bill in GBK or UTF-8: the first line is not {title} (wrong encoding or another file)", line_no=1)


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError):
        return False


_peek = peek_stream
