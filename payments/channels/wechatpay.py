"""WeChat Pay APIv3 (微信支付) for a direct merchant — CHANNELS.md §2.

What this module speaks, and why it looks the way it does:

* Every request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,
  timestamp=…,serial_no=…,signature=…`` where the signature is SHA256withRSA with the
  merchant's API key over ``METHOD\\nCANONICAL_URL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` and the
  canonical URL is the raw path plus query (§2.1).
* Answers and notifications are signed by the platform (``Wechatpay-Timestamp/-Nonce/
  -Signature/-Serial``) over ``TIMESTAMP\\nNONCE\\nBODY\\n``; a timestamp 5 minutes or more
  away from now is refused (§2.2). The platform key is the "微信支付公钥" (``PUB_KEY_ID_…``)
  or a platform certificate, chosen by ``Wechatpay-Serial``.
* Notification resources are AES-256-GCM encrypted with the 32-byte APIv3 key (§2.3); the
  reply is 204 with no body on success, 4xx with ``{"code":"FAIL","message":…}`` otherwise.
* Cashier: Native pay (``code_url``, a QR rendered inline) on desktop and unknown devices, H5
  (``h5_url``, a redirect) on phones when the buyer's IP is known (H5 requires it).
* The trade bill (§2.5, §2.6) is requested gzipped, its SHA-1 (over the uncompressed text)
  checked, and :class:`WechatBill` streams it: header line, backtick-prefixed rows, two summary
  lines; BOM or not, CRLF or LF, gzip or plain, ALL/SUCCESS/REFUND (and the legacy) layouts.

The backend never knows whether ``base_url`` points at api.mch.weixin.qq.com or at the sandbox.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import secrets
import time
import zlib
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import IO, Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.channels import http
from payments.channels.base import (
    Action,
    ChannelBackend,
    ChannelDeclined,
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
    RefundOutcome,
    RefundRequest,
    RefundResult,
    SettlementFileError,
    SettlementLine,
    from_minor,
    header_map,
    peek_stream,
    to_minor,
)
from payments.channels.signing import sha256_rsa_sign, sha256_rsa_verify

BEIJING = ZoneInfo("Asia/Shanghai")
SCHEME = "WECHATPAY2-SHA256-RSA2048"
MAX_CLOCK_SKEW = 300  # seconds: "reject if |now - timestamp| >= 5 minutes" (§2.2)
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"  # WeChat's deliberate bad-signature probes (§2.2)

#: trade_state → contract outcome (§2.4). REFUND means "paid, then (partly) refunded".
TRADE_STATE: Mapping[str, Outcome] = {
    "SUCCESS": "succeeded",
    "REFUND": "succeeded",
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "ACCEPT": "pending",
    "CLOSED": "closed",
    "REVOKED": "closed",
    "PAYERROR": "failed",
}
REFUND_STATUS: Mapping[str, RefundOutcome] = {
    "SUCCESS": "succeeded",
    "PROCESSING": "pending",
    "CLOSED": "failed",
    "ABNORMAL": "failed",
}
EVENTS = {"TRANSACTION.SUCCESS", "REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"}


# ---------------------------------------------------------------------------------------------
# Signatures and encryption


# SHA256withRSA (PKCS#1 v1.5) over the UTF-8 message, base64 (§2.1, §2.2); the merchant key
# and the 微信支付公钥 may be PEM or bare base64, platform certificates PEM.
sign_message = sha256_rsa_sign
verify_message = sha256_rsa_verify


def request_message(method: str, canonical_url: str, timestamp: str, nonce: str, body: str) -> str:
    """``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` — every line ends with ``\\n``, an empty
    body (GET) still contributes its line (§2.1)."""
    return f"{method}\n{canonical_url}\n{timestamp}\n{nonce}\n{body}\n"


def canonical_url(url: str) -> str:
    """The raw path plus ``?query`` the server sees — what the signature covers (§2.1)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def authorization(*, mchid: str, serial_no: str, private_key: str, method: str, url: str, body: str,
                  timestamp: str | None = None, nonce: str | None = None) -> str:
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or secrets.token_hex(16).upper()
    signature = sign_message(request_message(method, canonical_url(url), timestamp, nonce, body), private_key)
    return f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",timestamp="{timestamp}",serial_no="{serial_no}"'


def decrypt_resource(*, ciphertext: str, nonce: str, associated_data: str, apiv3_key: str) -> bytes:
    """AEAD_AES_256_GCM with the APIv3 key (32 ASCII bytes); input is base64(ciphertext‖tag) (§2.3)."""
    key = apiv3_key.encode("utf-8")
    if len(key) != 32:
        raise ValueError("the APIv3 key must be 32 bytes")
    return AESGCM(key).decrypt(nonce.encode("utf-8"), base64.b64decode(ciphertext, validate=True), associated_data.encode("utf-8"))


normalise_headers = header_map


# ---------------------------------------------------------------------------------------------
# The backend




_spec = ErrorSpec.of


ERROR_CODES: Mapping[str, ErrorSpec] = {
    # the buyer's own problems (the cashier's decline reasons)
    "NOTENOUGH": _spec(
        "final", False, "零钱或银行卡余额不足", "The WeChat balance or card has too little money",
        "请充值或换一张银行卡，或改用其他支付方式", "Top up, use another card, or use another payment method"),
    "ACCOUNT_ERROR": _spec(
        "final", False, "付款账户异常（如手机号与银行预留信息不符）",
        "The paying account failed the bank's checks (e.g. phone number does not match the bank's record)",
        "请核对银行预留手机号，或改用其他支付方式", "Check the phone number registered with your bank, or use another payment method"),
    "TRADE_ERROR": _spec(
        "final", False, "微信支付风控拒绝了本次交易", "WeChat Pay's risk control declined this payment",
        "请改用其他支付方式", "Please use another payment method"),
    "USERPAYING": _spec(
        "query", False, "用户尚未完成支付（需要输入密码）", "The buyer has not finished paying yet",
        "请在微信中完成支付，或重新发起", "Finish the payment in WeChat, or start again"),
    "PAYERROR": _spec(
        "final", False, "微信支付失败", "WeChat Pay could not take the payment",
        "请重试或改用其他支付方式", "Try again or use another payment method"),
    "ORDER_CLOSED": _spec("final", False, "订单已关闭", "The order was closed", "请重新下单", "Start the payment again"),
    "ORDERPAID": _spec("query", False, "订单已支付", "The order is already paid"),
    "ORDER_NOT_EXIST": _spec("query", False, "订单不存在", "WeChat Pay does not know this order"),
    "OUT_TRADE_NO_USED": _spec("failover", True, "商户订单号重复", "The order number was used with other details"),
    "RULE_LIMIT": _spec("failover", False, "业务规则限制", "WeChat Pay's rules refused this payment",
                        "请改用其他支付方式", "Please use another payment method"),
    "BANKERROR": _spec("failover", True, "银行系统异常", "The bank's system failed", "请稍后重试", "Try again shortly"),
    # the merchant's set-up and WeChat's own health
    "PARAM_ERROR": _spec("failover", True, "请求参数错误", "WeChat Pay rejected the request's parameters"),
    "INVALID_REQUEST": _spec("failover", True, "请求不符合业务规则", "WeChat Pay refused the request"),
    "SIGN_ERROR": _spec("failover", True, "签名错误（商户私钥或证书序列号不符）", "WeChat Pay rejected our signature"),
    "NO_AUTH": _spec("failover", True, "商户无此接口权限", "The merchant may not use this WeChat Pay API"),
    "APPID_MCHID_NOT_MATCH": _spec("failover", True, "AppID 与商户号不匹配", "The app id does not belong to this merchant id"),
    "MCH_NOT_EXISTS": _spec("failover", True, "商户号不存在", "WeChat Pay does not know this merchant id"),
    "FREQUENCY_LIMITED": _spec("failover", True, "请求频率超限", "Too many requests to WeChat Pay", "请稍后重试", "Try again shortly"),
    "SYSTEM_ERROR": _spec("failover", True, "微信支付系统错误", "WeChat Pay had a system error", "请稍后重试", "Try again shortly"),
    "RESPONSE_SIGNATURE_INVALID": _spec("failover", True, "微信支付应答验签失败", "WeChat Pay's answer failed signature verification"),
    "MISCONFIGURED": _spec("failover", True, "微信支付渠道账户配置不完整", "The WeChat Pay channel account is missing credentials"),
    "CURRENCY_NOT_SUPPORTED": _spec("failover", False, "该微信支付账户只收人民币", "This WeChat Pay account accepts CNY only"),
    # refunds
    "NOT_ENOUGH": _spec("final", True, "商户账户可用余额不足，无法退款", "The merchant's WeChat Pay balance is too low to refund",
                        "请财务充值后重试", "Finance must top up the account, then retry"),
    "RESOURCE_NOT_EXISTS": _spec("final", False, "订单或退款单不存在", "WeChat Pay does not know this order or refund"),
    "USER_ACCOUNT_ABNORMAL": _spec("final", False, "用户账户异常，无法原路退款", "The buyer's account cannot receive the refund",
                                   "请联系买家线下退款", "Refund the buyer another way"),
    # bills
    "NO_STATEMENT_EXIST": _spec("final", False, "账单文件不存在（当日无交易）", "No bill for that day (no trades)"),
    "STATEMENT_CREATING": _spec("query", False, "账单生成中", "The bill is still being generated", "次日 10 点后再下载", "Download after 10:00 the next day"),
    "BILL_HASH_MISMATCH": _spec("final", True, "账单文件摘要校验失败", "The downloaded bill does not match its SHA-1"),
}


class WechatPayBackend(ChannelBackend):
    """WeChat Pay APIv3, direct merchant (普通商户).

    Credentials (the ChannelAccount's encrypted dict): ``private_key`` (merchant API private
    key, apiclient_key.pem), ``serial_no`` (the merchant API certificate's serial number),
    ``apiv3_key`` (32 characters), and either ``platform_public_key`` + ``platform_public_key_id``
    (微信支付公钥 mode, ``PUB_KEY_ID_…``) or ``platform_certificates`` (serial → PEM).
    ``merchant_id`` is the mchid, ``app_id`` the appid bound to it.
    """

    code: ClassVar[str] = "wechatpay"
    # Largest genuine notice: JSON with the encrypted resource, ~1 KB.
    max_notification_bytes = 16 * 1024
    methods: ClassVar[tuple[str, ...]] = ("wechatpay",)
    display_name: ClassVar[str] = "微信支付 WeChat Pay"
    error_codes: ClassVar[Mapping[str, ErrorSpec]] = ERROR_CODES

    # -- credentials ---------------------------------------------------------------------------
    def _credential(self, name: str) -> str:
        value = self.account.credentials.get(name)
        if not value:
            raise ChannelDeclined(f"WeChat Pay account {self.account.code!r} has no {name} credential", code="MISCONFIGURED")
        return str(value)

    def platform_keys(self) -> dict[str, str]:
        """Platform verification keys by ``Wechatpay-Serial``."""
        found: dict[str, str] = {}
        creds = self.account.credentials
        if creds.get("platform_public_key") and creds.get("platform_public_key_id"):
            found[str(creds["platform_public_key_id"])] = str(creds["platform_public_key"])
        for serial, pem in dict(creds.get("platform_certificates") or {}).items():
            found[str(serial).upper()] = str(pem)
        return found

    def verify_platform_signature(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
        """Check ``Wechatpay-*`` headers over ``TIMESTAMP\\nNONCE\\nBODY\\n`` (§2.2); raise
        ValueError naming the problem (missing header, unknown serial, stale, bad signature)."""
        found = normalise_headers(headers)
        for name in ("wechatpay-timestamp", "wechatpay-nonce", "wechatpay-signature", "wechatpay-serial"):
            if not found.get(name):
                raise ValueError(f"missing {name.title()} header")
        signature = found["wechatpay-signature"]
        if signature.startswith(PROBE_PREFIX):
            raise ValueError("bad signature: a WECHATPAY/SIGNTEST probe")
        serial = found["wechatpay-serial"]
        keys = self.platform_keys()
        key = keys.get(serial) or keys.get(serial.upper())
        if key is None:
            raise ValueError(f"unknown platform key serial {serial!r}")
        try:
            stamp = int(found["wechatpay-timestamp"])
        except ValueError:
            raise ValueError("malformed Wechatpay-Timestamp header") from None
        if abs((time.time() if now is None else now) - stamp) >= MAX_CLOCK_SKEW:
            raise ValueError(f"stale timestamp {stamp}: 5 minutes or more from now")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("body is not UTF-8") from None
        if not verify_message(f"{stamp}\n{found['wechatpay-nonce']}\n{text}\n", signature, key):
            raise ValueError("bad signature: does not verify with the WeChat Pay platform key")

    # -- transport -----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.account.base_url.rstrip("/") + path

    def send(self, method: str, url: str, *, body: Mapping[str, Any] | None = None, idempotent: bool = False,
             verify: bool = True) -> tuple[int, bytes]:
        """One signed call; 2xx answers are verified, 4xx become ChannelDeclined with WeChat's
        ``code`` (429 → ChannelUnavailable); 5xx and transport failures are raised by http.send."""
        text = json.dumps(dict(body), ensure_ascii=False, separators=(",", ":")) if body is not None else ""
        headers = {
            "Accept": "application/json",
            "Authorization": authorization(
                mchid=self.account.merchant_id, serial_no=self._credential("serial_no"),
                private_key=self._credential("private_key"), method=method, url=url, body=text,
            ),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        parts = urlsplit(url)
        response = http.send(f"{parts.scheme}://{parts.netloc}", method, url, idempotent=idempotent,
                             content=text.encode("utf-8") if body is not None else None, headers=headers)
        if 200 <= response.status_code < 300:
            if verify:
                try:
                    self.verify_platform_signature(response.headers, response.content)
                except ValueError as exc:
                    raise ChannelUnavailable(f"WeChat Pay's answer to {method} {parts.path} is not trusted: {exc}",
                                             code="RESPONSE_SIGNATURE_INVALID") from None
            return response.status_code, response.content
        try:
            error = json.loads(response.content or b"{}")
        except ValueError:
            error = {}
        code = str(error.get("code") or f"HTTP_{response.status_code}")
        message = f"WeChat Pay {method} {parts.path}: {error.get('message') or code}"
        if response.status_code == 429:
            raise ChannelUnavailable(message, code=code, raw=error)
        raise ChannelDeclined(message, code=code, raw=error)

    def call(self, method: str, path: str, *, body: Mapping[str, Any] | None = None, idempotent: bool = False) -> dict[str, Any]:
        _, content = self.send(method, self.url(path), body=body, idempotent=idempotent)
        if not content:
            return {}
        try:
            answer = json.loads(content)
        except ValueError:
            raise ChannelUnavailable(f"WeChat Pay's answer to {path} is not JSON", code="BAD_RESPONSE") from None
        return answer if isinstance(answer, dict) else {}

    # -- paying --------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> CreateResult:
        """Native (QR) by default; H5 on phones when the buyer's IP is known (§2.5)."""
        if request.currency != "CNY":
            raise ChannelDeclined(f"WeChat Pay takes CNY, not {request.currency}", code="CURRENCY_NOT_SUPPORTED")
        body: dict[str, Any] = {
            "appid": self.account.app_id,
            "mchid": self.account.merchant_id,
            "description": (request.subject or request.out_trade_no)[:127],
            "out_trade_no": request.out_trade_no,
            "time_expire": request.expires_at.astimezone(BEIJING).isoformat(timespec="seconds"),
            "notify_url": self.account.notify_url,
            "amount": {"total": to_minor(request.amount), "currency": "CNY"},
        }
        if request.client.device == "phone" and request.client.ip:
            body["scene_info"] = {"payer_client_ip": request.client.ip, "h5_info": {"type": "Wap"}}
            answer = self.call("POST", "/v3/pay/transactions/h5", body=body)
            h5_url = str(answer.get("h5_url", ""))
            if not h5_url:
                raise ChannelUnavailable("WeChat Pay H5 answered without an h5_url", code="BAD_RESPONSE")
            return_url = request.return_url or self.account.return_url
            if return_url:  # WeChat sends the buyer back to redirect_url appended to h5_url
                h5_url += ("&" if "?" in h5_url else "?") + urlencode({"redirect_url": return_url})
            return CreateResult(action=Action(type="redirect", url=h5_url))
        answer = self.call("POST", "/v3/pay/transactions/native", body=body)
        code_url = str(answer.get("code_url", ""))
        if not code_url:
            raise ChannelUnavailable("WeChat Pay native answered without a code_url", code="BAD_RESPONSE")
        return CreateResult(action=Action(type="qr", url=code_url, qr=code_url))

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        """Verify the platform signature and freshness (§2.2), decrypt the resource with the
        APIv3 key (§2.3), and check the merchant (and app) are this account's."""
        try:
            self.verify_platform_signature(headers, body)
        except ValueError as exc:
            raise NotificationRejected(str(exc)) from None
        try:
            envelope = json.loads(body)
            event = str(envelope["event_type"])
            resource = envelope["resource"]
            if not isinstance(resource, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise NotificationRejected("malformed notification: not a WeChat Pay event envelope") from None
        if event not in EVENTS:
            raise NotificationRejected(f"unknown event type {event!r}")
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise NotificationRejected(f"unsupported resource algorithm {resource.get('algorithm')!r}")
        apiv3_key = self.account.credentials.get("apiv3_key")
        if not apiv3_key:
            raise NotificationRejected(f"account {self.account.code!r} has no apiv3_key to decrypt with")
        try:
            plaintext = decrypt_resource(
                ciphertext=str(resource.get("ciphertext", "")), nonce=str(resource.get("nonce", "")),
                associated_data=str(resource.get("associated_data") or ""), apiv3_key=str(apiv3_key),
            )
            data = json.loads(plaintext)
            if not isinstance(data, dict):
                raise TypeError
        except (InvalidTag, ValueError, TypeError):
            raise NotificationRejected("cannot decrypt the resource with the APIv3 key (wrong key or tampered)") from None
        mchid = str(data.get("mchid", ""))
        if self.account.merchant_id and mchid != self.account.merchant_id:
            raise NotificationRejected(f"notification for another merchant: mchid {mchid!r}, expected {self.account.merchant_id!r}")
        try:
            if event == "TRANSACTION.SUCCESS":
                return self._transaction_notice(data)
            return self._refund_notice(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise NotificationRejected(f"malformed {event} resource: {exc}") from None

    def _transaction_notice(self, data: Mapping[str, Any]) -> Notice:
        if self.account.app_id and data.get("appid") and data["appid"] != self.account.app_id:
            raise NotificationRejected(f"notification for appid {data['appid']!r}, not this account's {self.account.app_id!r}")
        state = str(data["trade_state"])
        if state not in TRADE_STATE:
            raise NotificationRejected(f"unknown trade_state {state!r}")
        amount = data["amount"]
        return Notice(
            kind="payment",
            out_trade_no=str(data["out_trade_no"]),
            outcome=TRADE_STATE[state],
            amount=from_minor(int(amount["total"])),
            currency=str(amount.get("currency") or "CNY"),
            merchant_id=str(data["mchid"]),
            channel_trade_no=str(data.get("transaction_id", "")),
            occurred_at=_rfc3339(data.get("success_time")),
            error_code="" if state == "SUCCESS" else state,
            raw=dict(data),
        )

    def _refund_notice(self, data: Mapping[str, Any]) -> Notice:
        status = str(data["refund_status"])
        if status not in REFUND_STATUS:
            raise NotificationRejected(f"unknown refund_status {status!r}")
        amount = data["amount"]
        return Notice(
            kind="refund",
            out_trade_no=str(data["out_trade_no"]),
            outcome=REFUND_STATUS[status],
            amount=from_minor(int(amount["refund"])),
            currency=str(amount.get("currency") or "CNY"),
            merchant_id=str(data["mchid"]),
            channel_trade_no=str(data.get("transaction_id", "")),
            refund_no=str(data["out_refund_no"]),
            channel_refund_no=str(data.get("refund_id", "")),
            occurred_at=_rfc3339(data.get("success_time")),
            error_code="" if status == "SUCCESS" else status,
            raw=dict(data),
        )

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """204 without a body stops the retries; a 4xx with ``{"code":"FAIL",…}`` keeps them (§2.3)."""
        if accepted:
            return NotifyReply(status=204, body=b"", content_type="application/json")
        body = json.dumps({"code": "FAIL", "message": message or "失败"}, ensure_ascii=False).encode("utf-8")
        return NotifyReply(status=400, body=body, content_type="application/json")

    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        mchid = quote(self.account.merchant_id, safe="")
        if out_trade_no:
            path = f"/v3/pay/transactions/out-trade-no/{_segment(out_trade_no)}?mchid={mchid}"
        else:
            path = f"/v3/pay/transactions/id/{_segment(channel_trade_no)}?mchid={mchid}"
        try:
            answer = self.call("GET", path, idempotent=True)
        except ChannelDeclined as exc:
            if exc.code == "ORDER_NOT_EXIST":  # the create never reached WeChat Pay
                return QueryResult(outcome="failed", error_code=exc.code, raw=exc.raw or {})
            raise
        state = str(answer.get("trade_state", ""))
        amount = answer.get("amount") or {}
        return QueryResult(
            outcome=TRADE_STATE.get(state, "unknown"),
            amount=from_minor(int(amount["total"])) if "total" in amount else None,
            currency=str(amount.get("currency", "")),
            channel_trade_no=str(answer.get("transaction_id", "")),
            paid_at=_rfc3339(answer.get("success_time")),
            error_code="" if TRADE_STATE.get(state) in ("succeeded", "pending") else state,
            raw=answer,
        )

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """``POST …/out-trade-no/{no}/close`` (204); an order WeChat never saw needs no closing."""
        try:
            self.call("POST", f"/v3/pay/transactions/out-trade-no/{_segment(out_trade_no)}/close",
                      body={"mchid": self.account.merchant_id}, idempotent=True)
        except ChannelDeclined as exc:
            if exc.code != "ORDER_NOT_EXIST":
                raise

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        """``POST /v3/refund/domestic/refunds`` keyed by ``out_refund_no`` (= refund_no). WeChat
        usually answers PROCESSING; REFUND.SUCCESS (or the refund query) completes it."""
        body: dict[str, Any] = {
            "out_trade_no": request.out_trade_no,
            "out_refund_no": request.refund_no,
            "notify_url": self.account.notify_url,
            "amount": {"refund": to_minor(request.amount), "total": to_minor(request.total_amount), "currency": "CNY"},
        }
        if request.reason:
            body["reason"] = request.reason[:80]
        try:
            answer = self.call("POST", "/v3/refund/domestic/refunds", body=body, idempotent=True)
        except ChannelDeclined as exc:
            return RefundResult(outcome="failed", error_code=exc.code, raw=exc.raw or {})
        return _refund_result(answer)

    def query_refund(self, request: RefundRequest) -> RefundResult:
        try:
            answer = self.call("GET", f"/v3/refund/domestic/refunds/{_segment(request.refund_no)}", idempotent=True)
        except ChannelDeclined as exc:
            return RefundResult(outcome="failed", error_code=exc.code, raw=exc.raw or {})
        return _refund_result(answer)

    # -- settlement ----------------------------------------------------------------------------
    def download_settlement(self, day: dt.date) -> bytes:
        """``GET /v3/bill/tradebill`` (ALL, GZIP), then the signed GET of ``download_url``
        (answers are not signed); the SHA-1 is checked over the uncompressed bill (§2.5).
        A day without trades raises ChannelDeclined ``NO_STATEMENT_EXIST``, as WeChat does."""
        query = urlencode({"bill_date": day.isoformat(), "bill_type": "ALL", "tar_type": "GZIP"})
        answer = self.call("GET", f"/v3/bill/tradebill?{query}", idempotent=True)
        url = str(answer.get("download_url", ""))
        if not url:
            raise ChannelUnavailable("WeChat Pay answered without a download_url", code="BAD_RESPONSE")
        _, content = self.send("GET", url, idempotent=True, verify=False)
        if str(answer.get("hash_type", "SHA1")).upper() == "SHA1" and answer.get("hash_value"):
            try:
                plain = gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content
            except (OSError, EOFError, zlib.error):
                raise ChannelUnavailable("the downloaded bill is not valid gzip", code="BILL_HASH_MISMATCH") from None
            if hashlib.sha1(plain).hexdigest().lower() != str(answer["hash_value"]).lower():
                raise ChannelUnavailable("the downloaded bill does not match its SHA-1", code="BILL_HASH_MISMATCH")
        return content

    @classmethod
    def open_settlement(cls, stream: IO[bytes], *, merchant_id: str = "") -> WechatBill:
        """The bill text (gzip or plain, BOM or not, CRLF or LF). With ``merchant_id`` a bill
        of another mchid is refused."""
        return WechatBill.open(stream, merchant_id=merchant_id)


def _segment(value: str) -> str:
    """A path segment percent-encoded like the canonical URL servers rebuild (RFC 3986
    sub-delims, ``:`` and ``@`` stay literal), so the signed path is the path received."""
    return quote(value, safe=":@&+$,!~*'()")


def _refund_result(answer: Mapping[str, Any]) -> RefundResult:
    status = str(answer.get("status", ""))
    return RefundResult(
        outcome=REFUND_STATUS.get(status, "pending"),
        channel_refund_no=str(answer.get("refund_id", "")),
        error_code="" if status in ("SUCCESS", "PROCESSING") else status,
        raw=dict(answer),
    )


def _rfc3339(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# The trade bill (§2.6)

SUMMARY_FIRST = "总交易单数"
REQUIRED_COLUMNS = ("交易时间", "商户号", "微信订单号", "商户订单号", "交易状态")
#: summary field → the row column it totals (ALL/SUCCESS/REFUND and the legacy 2014 layout)
SUMMARY_SUMS = {
    "应结订单总金额": "应结订单金额",
    "退款总金额": "退款金额",
    "充值券退款总金额": "充值券退款金额",
    "手续费总金额": "手续费",
    "订单总金额": "订单金额",
    "申请退款总金额": "申请退款金额",
    "总交易额": "总金额",
    "总退款金额": "退款金额",
    "总代金券或立减优惠退款金额": "代金券或立减优惠退款金额",
}
REFUND_STATES = {"REFUND", "REVOKED"}
LINE_STATUS = {"SUCCESS": "succeeded", "PROCESSING": "pending", "": "succeeded"}


def _fields(text: str) -> list[str]:
    """A data or summary line: every field is prefixed with a backtick (§2.6)."""
    if not text.startswith("`"):
        raise ValueError("fields are not backtick-prefixed")
    return text[1:].split(",`")


def _amount(text: str, column: str) -> Decimal:
    try:
        value = Decimal(text.strip() or "0")
    except InvalidOperation:
        raise ValueError(f"{column} {text!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{column} {text!r} is not an amount")
    return value


def _bill_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text.replace("：", ":").strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


class WechatBill(ReadOnceSettlementFile):
    """A streaming reader of one trade bill. After the summary line it compares every summary
    total (count — also written like ``45.0`` — and each amount) with the sums of the rows and
    raises :class:`SettlementFileError` naming the line when they disagree."""

    def __init__(self, stream: IO[bytes], *, merchant_id: str = ""):
        self._stream = stream
        self._expected_merchant = merchant_id
        self.layout = ""

    @classmethod
    def open(cls, stream: IO[bytes], *, merchant_id: str = "") -> WechatBill:
        head, stream = _peek(stream, 2)
        if head == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        return cls(stream, merchant_id=merchant_id)

    _read_errors = (EOFError, zlib.error, gzip.BadGzipFile)
    _read_error_message = "the gzip stream is corrupt or truncated"

    def _parse(self) -> Iterator[SettlementLine]:
        columns: list[str] | None = None
        summary_names: list[str] | None = None
        summary: tuple[int, list[str]] | None = None
        merchant = ""
        count = 0
        sums: dict[str, Decimal] = {}
        line_no = 0
        for line_no, raw in enumerate(self._stream, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise SettlementFileError("line is not valid UTF-8 (wrong encoding?)", line_no=line_no) from None
            if line_no == 1:
                text = text.lstrip("\ufeff")
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            if summary is not None:
                raise SettlementFileError("data after the summary lines", line_no=line_no)
            if columns is None:
                columns = [c.strip() for c in text.split(",")]
                missing = [c for c in REQUIRED_COLUMNS if c not in columns]
                if missing or text.startswith("`"):
                    raise SettlementFileError(
                        f"not a WeChat Pay trade bill: the header lacks {', '.join(missing) or 'column names'}", line_no=line_no)
                self.layout = _layout(columns)
                sums = {c: Decimal(0) for c in columns if c in SUMMARY_SUMS.values()}
                continue
            if summary_names is not None:
                try:
                    values = _fields(text)
                except ValueError:
                    raise SettlementFileError("the summary values are not backtick-prefixed", line_no=line_no) from None
                if len(values) != len(summary_names):
                    raise SettlementFileError(f"expected {len(summary_names)} summary values, found {len(values)}", line_no=line_no)
                summary = (line_no, values)
                continue
            if text.startswith(SUMMARY_FIRST):
                summary_names = [c.strip() for c in text.split(",")]
                continue
            try:
                values = _fields(text)
            except ValueError:
                raise SettlementFileError("a data line whose fields are not backtick-prefixed", line_no=line_no) from None
            if len(values) != len(columns):
                raise SettlementFileError(f"expected {len(columns)} fields, found {len(values)} (truncated line?)", line_no=line_no)
            row = dict(zip(columns, values, strict=True))
            row_merchant = row["商户号"]
            if self._expected_merchant and row_merchant != self._expected_merchant:
                raise SettlementFileError(f"the bill belongs to merchant {row_merchant}, not {self._expected_merchant}", line_no=line_no)
            if merchant and row_merchant != merchant:
                raise SettlementFileError(f"merchant {row_merchant} differs from the bill's {merchant}", line_no=line_no)
            merchant = row_merchant
            try:
                for column in sums:
                    sums[column] += _amount(row[column], column)
                yield self._line(line_no, row)
            except ValueError as exc:
                raise SettlementFileError(str(exc), line_no=line_no) from None
            count += 1
        if columns is None:
            raise SettlementFileError("empty file: not a WeChat Pay bill")
        if summary is None:
            raise SettlementFileError("the summary lines are missing (file truncated)", line_no=line_no)
        self._totals = self._check_summary(summary_names or [], summary, count=count, sums=sums, merchant=merchant)

    def _line(self, line_no: int, row: Mapping[str, str]) -> SettlementLine:
        state = row["交易状态"]
        if state == "SUCCESS":
            kind = "payment"
            amount_column = next(c for c in ("订单金额", "总金额", "应结订单金额") if c in row)
            when = _bill_time(row["交易时间"])
            status = "succeeded"
        elif state in REFUND_STATES:
            kind = "refund"
            amount_column = "申请退款金额" if "申请退款金额" in row else "退款金额"
            when = _bill_time(row.get("退款成功时间", "")) or _bill_time(row.get("退款申请时间", "")) or _bill_time(row["交易时间"])
            status = LINE_STATUS.get(row.get("退款状态", ""), "failed")
        else:
            raise ValueError(f"unknown 交易状态 {state!r}")
        return SettlementLine(
            line_no=line_no,
            kind=kind,
            out_trade_no=row["商户订单号"],
            channel_trade_no=row["微信订单号"],
            amount=abs(_amount(row[amount_column], amount_column)),
            fee=_amount(row.get("手续费", "0"), "手续费"),
            currency=row.get("货币种类") or "CNY",
            occurred_at=when,
            refund_no=row.get("商户退款单号", "") if kind == "refund" else "",
            status=status,
            raw=dict(row),
        )

    def _check_summary(self, names: list[str], summary: tuple[int, list[str]], *, count: int,
                       sums: Mapping[str, Decimal], merchant: str) -> FileTotals:
        line_no, values = summary
        stated = dict(zip(names, values, strict=True))
        try:
            lines = Decimal(stated[SUMMARY_FIRST])
        except (KeyError, InvalidOperation):
            raise SettlementFileError(f"cannot read {SUMMARY_FIRST}", line_no=line_no) from None
        if lines != lines.to_integral_value() or int(lines) != count:
            raise SettlementFileError(f"summary says {stated[SUMMARY_FIRST]} lines, the bill has {count}", line_no=line_no)
        amounts: dict[str, Decimal] = {}
        for name, column in SUMMARY_SUMS.items():
            if name not in stated:
                continue
            try:
                amounts[name] = _amount(stated[name], name)
            except ValueError as exc:
                raise SettlementFileError(str(exc), line_no=line_no) from None
            expected = sums.get(column, Decimal(0))
            if amounts[name] != expected:
                raise SettlementFileError(f"summary {name} is {amounts[name]}, the rows add up to {expected}", line_no=line_no)

        def first(*keys: str) -> Decimal | None:
            return next((amounts[k] for k in keys if k in amounts), None)

        return FileTotals(
            merchant_id=merchant,
            day=None,  # the bill text does not name its day; the download request does
            lines=int(lines),
            gross=first("订单总金额", "总交易额", "应结订单总金额"),
            refunded=first("申请退款总金额", "退款总金额", "总退款金额"),
            fees=first("手续费总金额"),
        )


def _layout(columns: list[str]) -> str:
    if "退款申请时间" in columns:
        return "REFUND"
    if "总金额" in columns:
        return "LEGACY"
    if "退款金额" in columns:
        return "ALL"
    return "SUCCESS"


_peek = peek_stream
