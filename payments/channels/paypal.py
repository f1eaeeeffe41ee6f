"""PayPal: Orders v2 checkout, signed webhooks and the STL settlement report.

Wire protocol (CHANNELS.md §4.1–4.3):

* OAuth2 client credentials (``POST /v1/oauth2/token``, HTTP Basic ``client_id:client_secret``);
  the bearer token is cached per account until shortly before ``expires_in`` runs out.
* ``POST /v2/checkout/orders`` with ``intent=CAPTURE``; ``custom_id`` and ``invoice_id`` carry
  our ``out_trade_no``; the buyer is redirected to the order's ``approve`` link.
* PayPal only *approves* an order; the merchant must capture it. We capture in two places,
  both idempotent through the ``PayPal-Request-Id`` header ``capture-<order id>``:
  ``parse_notification`` for ``CHECKOUT.ORDER.APPROVED`` captures synchronously and reports the
  capture's outcome, and ``query`` captures an order it finds ``APPROVED`` (so a lost webhook
  cannot leave an approved order uncaptured). ``PAYMENT.CAPTURE.COMPLETED`` maps to succeeded
  again (the platform applies notices idempotently), ``…DENIED``/``…DECLINED`` to failed,
  ``PAYMENT.CAPTURE.REFUNDED`` to a refund notice.
* Webhooks are verified offline (CRC32 scheme of PayPal's SDK, §4.2): the string
  ``transmission_id|transmission_time|webhook_id|crc32(body)`` must verify with
  SHA256withRSA under the certificate at ``PAYPAL-CERT-URL``. The certificate is fetched only
  from the account's own ``base_url`` or an https ``*.paypal.com`` host, must chain to the CA
  certificates configured in ``webhook_ca_pem``, be in its validity period and carry a common
  name ending in ``.paypal.com``.
* Settlement: the STL report (§4.3), CSV records RH/FH/SH/CH/SB/SF/SC/RF/RC/FF with unsigned
  amounts in minor units and DR/CR direction columns. See :class:`StlFile`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import IO, Any, ClassVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.utils import timezone

from payments.channels import http
from payments.channels.base import (
    CENT,
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
    Outcome,
    QueryResult,
    RefundOutcome,
    RefundRequest,
    RefundResult,
    ReplayableSettlementFile,
    SettlementFileError,
    SettlementLine,
    header_map,
    to_minor,
)

#: PayPal amounts in these currencies carry no decimals ("JPY 100", not "100.00").
ZERO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})

#: Webhook transmissions older than this are refused as stale (replay protection). Every
#: delivery try is a new transmission with its own id, time and signature.
TRANSMISSION_MAX_AGE = dt.timedelta(minutes=15)
#: ...and ones dated further than this in the future (clock skew between PayPal and us).
TRANSMISSION_MAX_SKEW = dt.timedelta(minutes=5)

SUPPORTED_AUTH_ALGO = "SHA256withRSA"

# Settlement report (STL, CHANNELS.md §4.3)
STL_VERSION = "009"
STL_COLUMNS = (
    "Transaction ID",
    "Invoice ID",
    "PayPal Reference ID",
    "PayPal Reference ID Type",
    "Transaction Event Code",
    "Transaction Initiation Date",
    "Transaction Completion Date",
    "Transaction Debit or Credit",
    "Gross Transaction Amount",
    "Gross Transaction Currency",
    "Fee Debit or Credit",
    "Fee Amount",
    "Fee Currency",
    "Custom Field",
    "Consumer ID",
    "Payment Tracking ID",
    "Store ID",
    "Bank Reference ID",
    "Credit Transactional Fee",
    "Credit Promotional Fee",
    "Credit Term",
)
STL_REQUIRED_COLUMNS = STL_COLUMNS[:14]
STL_DATE_FORMAT = "%Y/%m/%d %H:%M:%S %z"
#: T-codes read as money received for a sale (T00xx "PayPal account-to-account payment" family).
STL_PAYMENT_CODE_PREFIX = "T00"
#: T-codes read as a refund of an earlier payment.
STL_REFUND_CODES = frozenset({"T1107"})


def stl_file_name(day: dt.date, sequence: int = 1) -> str:
    """``STL-yyyymmdd.sequenceNumber.version.format`` (§4.3, spec 7.0.1)."""
    return f"STL-{day:%Y%m%d}.{sequence:02d}.{STL_VERSION}.CSV"


# ---------------------------------------------------------------------------------------------
# Error codes (Orders v2 / Payments v2 "issue" values, OAuth errors)


_spec = ErrorSpec.of


PAYPAL_ERROR_CODES: dict[str, ErrorSpec] = {
    "INSTRUMENT_DECLINED": _spec(
        "final", False, "PayPal 账户所选的付款方式被拒绝", "The funding source chosen in PayPal was declined",
        "请在 PayPal 中换一种付款方式（银行卡或余额）或改用其他支付方式。",
        "Choose another funding source in PayPal, or pay with another method.",
    ),
    "PAYER_ACTION_REQUIRED": _spec(
        "step_up", False, "PayPal 要求付款人完成验证", "PayPal needs the payer to complete a verification step",
        "请回到 PayPal 完成验证后再付款。", "Return to PayPal, complete the verification and pay again.",
    ),
    "TRANSACTION_REFUSED": _spec(
        "final", False, "PayPal 拒绝了这笔交易", "PayPal refused this transaction",
        "请改用其他支付方式。", "Please pay with another method.",
    ),
    "PAYER_CANNOT_PAY": _spec(
        "final", False, "该 PayPal 账户无法向本商户付款", "This PayPal account cannot pay this merchant",
        "请改用其他支付方式。", "Please pay with another method.",
    ),
    "PAYER_ACCOUNT_RESTRICTED": _spec(
        "final", False, "付款人的 PayPal 账户受限", "The payer's PayPal account is restricted",
        "请联系 PayPal 或改用其他支付方式。", "Contact PayPal or pay with another method.",
    ),
    "PAYER_ACCOUNT_LOCKED_OR_CLOSED": _spec(
        "final", False, "付款人的 PayPal 账户已锁定或关闭", "The payer's PayPal account is locked or closed",
        "请改用其他支付方式。", "Please pay with another method.",
    ),
    "COMPLIANCE_VIOLATION": _spec(
        "final", False, "交易未通过 PayPal 合规审查", "The transaction failed PayPal's compliance checks",
        "请改用其他支付方式。", "Please pay with another method.",
    ),
    "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED": _spec(
        "final", False, "付款尝试次数过多", "Too many payment attempts",
        "请稍后再试或改用其他支付方式。", "Try again later or pay with another method.",
    ),
    "ORDER_NOT_APPROVED": _spec(
        "query", False, "付款人尚未在 PayPal 确认付款", "The payer has not approved the order in PayPal yet",
        "请在 PayPal 页面完成付款确认。", "Finish approving the payment on the PayPal page.",
    ),
    "ORDER_ALREADY_CAPTURED": _spec("query", False, "订单已扣款", "The order was already captured"),
    "DUPLICATE_INVOICE_ID": _spec("query", False, "该订单号已在 PayPal 付过款", "PayPal already holds a payment for this invoice id"),
    "RESOURCE_NOT_FOUND": _spec("query", False, "PayPal 找不到该订单或交易", "PayPal cannot find this order or transaction"),
    "INVALID_RESOURCE_ID": _spec("query", False, "PayPal 找不到该订单或交易", "PayPal cannot find this order or transaction"),
    "CURRENCY_NOT_SUPPORTED": _spec(
        "failover", False, "该 PayPal 账户不支持此币种", "This PayPal account does not accept the currency",
        "请改用其他支付方式。", "Please pay with another method.",
    ),
    "DECIMAL_PRECISION": _spec("failover", False, "金额小数位数不符合 PayPal 要求", "The amount has more decimals than PayPal allows for the currency"),
    "PAYEE_ACCOUNT_RESTRICTED": _spec("failover", True, "商户 PayPal 账户受限", "The merchant's PayPal account is restricted"),
    "PAYEE_ACCOUNT_LOCKED_OR_CLOSED": _spec("failover", True, "商户 PayPal 账户已锁定或关闭", "The merchant's PayPal account is locked or closed"),
    "PERMISSION_DENIED": _spec("failover", True, "PayPal 拒绝了商户的调用权限", "PayPal denied the merchant's API permission"),
    "AUTHENTICATION_FAILURE": _spec("failover", True, "PayPal 接口认证失败", "PayPal API authentication failed"),
    "invalid_client": _spec("failover", True, "PayPal 客户端凭证无效", "The PayPal client credentials are invalid"),
    "RATE_LIMIT_REACHED": _spec("failover", True, "PayPal 请求过于频繁", "PayPal rate limit reached", "请稍后再试。", "Please try again shortly."),
    "INTERNAL_SERVER_ERROR": _spec("failover", True, "PayPal 系统错误", "PayPal internal error", "请稍后再试或改用其他支付方式。", "Try again later or use another method."),
    "CAPTURE_FULLY_REFUNDED": _spec("final", False, "该笔付款已全额退款", "The payment is already fully refunded"),
    "REFUND_AMOUNT_EXCEEDED": _spec("final", False, "退款金额超过可退金额", "The refund exceeds the amount still refundable"),
    "REFUND_TIME_LIMIT_EXCEEDED": _spec("final", False, "已超过 PayPal 允许的退款期限", "PayPal's refund time limit has passed"),
    "REFUND_NOT_ALLOWED": _spec("final", False, "PayPal 不允许对该笔付款退款", "PayPal does not allow a refund of this payment"),
    "PARTIAL_REFUND_NOT_ALLOWED": _spec("final", False, "该笔付款不支持部分退款", "This payment cannot be partially refunded"),
    "REFUND_FAILED_INSUFFICIENT_FUNDS": _spec("final", False, "商户 PayPal 余额不足，无法退款", "The merchant's PayPal balance is too low for the refund", "请为 PayPal 账户充值后重试。", "Top up the PayPal balance and retry."),
    "TIMEOUT": _spec("query", True, "PayPal 响应超时", "PayPal did not answer in time"),
    "UNAVAILABLE": _spec("failover", True, "无法连接 PayPal", "PayPal could not be reached"),
}


# ---------------------------------------------------------------------------------------------
# Small helpers


_ci_headers = header_map


def format_amount(amount: Decimal, currency: str) -> str:
    """Decimal → PayPal's amount ``value`` string for ``currency``."""
    if currency.upper() in ZERO_DECIMAL_CURRENCIES:
        if amount != amount.to_integral_value():
            raise ChannelDeclined(f"{currency} amounts take no decimals at PayPal: {amount}", code="DECIMAL_PRECISION")
        return str(int(amount))
    try:
        to_minor(amount)
    except ValueError as exc:
        raise ChannelDeclined(str(exc), code="DECIMAL_PRECISION") from None
    return str(amount.quantize(CENT))


def parse_amount(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _link(resource: Mapping[str, Any], rel: str) -> str:
    for link in resource.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == rel:
            return str(link.get("href", ""))
    return ""


def _first_unit(order: Mapping[str, Any]) -> dict:
    units = order.get("purchase_units") or []
    return units[0] if units and isinstance(units[0], dict) else {}


def _first_capture(order: Mapping[str, Any]) -> dict:
    captures = (_first_unit(order).get("payments") or {}).get("captures") or []
    return captures[0] if captures and isinstance(captures[0], dict) else {}


_CAPTURE_OUTCOMES: dict[str, Outcome] = {
    "COMPLETED": "succeeded",
    "PARTIALLY_REFUNDED": "succeeded",
    "REFUNDED": "succeeded",
    "PENDING": "pending",
    "DECLINED": "failed",
    "FAILED": "failed",
}
_ORDER_OUTCOMES: dict[str, Outcome] = {
    "CREATED": "pending",
    "SAVED": "pending",
    "PAYER_ACTION_REQUIRED": "pending",
    "APPROVED": "pending",
    "VOIDED": "closed",
}
_REFUND_OUTCOMES: dict[str, RefundOutcome] = {"COMPLETED": "succeeded", "PENDING": "pending", "FAILED": "failed", "CANCELLED": "failed"}


def order_outcome(order: Mapping[str, Any]) -> Outcome:
    """An order's state for the platform: a COMPLETED order can still hold a DECLINED capture,
    so the capture's status decides (§4.1)."""
    capture = _first_capture(order)
    if capture:
        return _CAPTURE_OUTCOMES.get(str(capture.get("status", "")), "unknown")
    return _ORDER_OUTCOMES.get(str(order.get("status", "")), "unknown")


def _error_from(response) -> ChannelError:
    """PayPal's error body → our exception; ``details[0].issue`` is the specific code."""
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    details = data.get("details") or []
    first = details[0] if details and isinstance(details[0], dict) else {}
    code = first.get("issue") or data.get("name") or data.get("error") or f"HTTP_{response.status_code}"
    message = first.get("description") or data.get("message") or data.get("error_description") or ""
    text = f"PayPal answered HTTP {response.status_code} {code}: {message}".strip()
    if response.status_code in (401, 403, 429):
        return ChannelUnavailable(text, code=str(code), raw=data)
    return ChannelDeclined(text, code=str(code), raw=data)


# OAuth tokens per (base_url, client_id): (token, monotonic expiry)
_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()
# Webhook certificate PEMs per URL: (pem, monotonic fetch time). Verification runs every time.
_certs: dict[str, tuple[bytes, float]] = {}
_certs_lock = threading.Lock()
CERT_CACHE_SECONDS = 3600


def clear_caches() -> None:
    """Forget cached tokens and certificates (tests, key rotation)."""
    with _tokens_lock:
        _tokens.clear()
    with _certs_lock:
        _certs.clear()


# ---------------------------------------------------------------------------------------------
# The backend


class PayPalBackend(ChannelBackend):
    """PayPal Checkout (Orders v2) for one REST app.

    Credentials: ``client_id``, ``client_secret`` (the REST app), ``webhook_id`` (the id PayPal
    gave the webhook registered for ``<SITE_URL>/payments/notify/<account code>/``) and
    ``webhook_ca_pem`` (the CA certificate(s) PayPal's webhook signing certificate must chain
    to). ``merchant_id`` is the PayPal merchant (payer) id, checked against webhook payees.
    """

    code = "paypal"
    # Largest genuine notice: webhook events with the full resource and links, up to ~10 KB.
    max_notification_bytes = 64 * 1024
    methods = ("paypal",)
    display_name = "PayPal"
    #: PayPal has no call that cancels an unapproved CAPTURE order; it expires by itself.
    supports_close = False
    error_codes: ClassVar[Mapping[str, ErrorSpec]] = PAYPAL_ERROR_CODES

    # -- plumbing ------------------------------------------------------------------------------
    def _credential(self, key: str) -> str:
        value = self.account.credentials.get(key)
        if not value:
            raise ChannelUnavailable(f"PayPal account {self.account.code!r} has no {key} configured", code="CONFIGURATION")
        return str(value)

    def _token(self, *, refresh: bool = False) -> str:
        """Client-credentials token, cached until 60 s before it expires."""
        client_id = self._credential("client_id")
        key = (self.account.base_url.rstrip("/"), client_id)
        now = time.monotonic()
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not refresh and cached[1] > now:
                return cached[0]
        response = http.send(
            self.account.base_url,
            "POST",
            "/v1/oauth2/token",
            auth=(client_id, self._credential("client_secret")),
            data={"grant_type": "client_credentials"},
            headers={"Accept": "application/json"},
            idempotent=True,
        )
        if response.status_code != 200:
            raise _error_from(response)
        try:
            data = response.json()
            token = str(data["access_token"])
            expires_in = int(data.get("expires_in", 0))
        except (ValueError, KeyError, TypeError):
            raise ChannelUnavailable("PayPal token answer is not the expected JSON", code="BAD_RESPONSE") from None
        with _tokens_lock:
            _tokens[key] = (token, now + max(expires_in - 60, 0))
        return token

    def _api(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> dict:
        """One REST call with the bearer token; a 401 refreshes the token once."""
        response = None
        for attempt in range(2):
            token = self._token(refresh=attempt > 0)
            request_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})}
            kwargs: dict[str, Any] = {"headers": request_headers, "idempotent": idempotent}
            if json_body is not None:
                kwargs["json"] = json_body
            response = http.send(self.account.base_url, method, path, **kwargs)
            if response.status_code != 401:
                break
        assert response is not None
        if 200 <= response.status_code < 300:
            if not response.content:
                return {}
            try:
                data = response.json()
            except ValueError:
                raise ChannelUnavailable(f"PayPal {method} {path} answered non-JSON", code="BAD_RESPONSE") from None
            if not isinstance(data, dict):
                raise ChannelUnavailable(f"PayPal {method} {path} answered unexpected JSON", code="BAD_RESPONSE")
            return data
        raise _error_from(response)

    def _get_order(self, order_id: str) -> dict:
        return self._api("GET", f"/v2/checkout/orders/{order_id}", idempotent=True)

    def _capture_order(self, order_id: str) -> dict:
        """Capture an approved order; repeating is safe (PayPal-Request-Id), and an order
        captured earlier is read back instead."""
        try:
            return self._api(
                "POST",
                f"/v2/checkout/orders/{order_id}/capture",
                json_body={},
                headers={"PayPal-Request-Id": f"capture-{order_id}", "Prefer": "return=representation"},
                idempotent=True,
            )
        except ChannelDeclined as exc:
            if exc.code == "ORDER_ALREADY_CAPTURED":
                return self._get_order(order_id)
            raise

    # -- paying --------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> CreateResult:
        """Create a CAPTURE order and send the buyer to its ``approve`` link (§4.1).

        ``PayPal-Request-Id = out_trade_no`` makes the create idempotent, so a timed-out create
        may be re-sent without opening a second order.
        """
        if request.method not in self.methods:
            raise ChannelDeclined(f"PayPal does not serve the method {request.method!r}", code="METHOD_NOT_SUPPORTED")
        currency = request.currency.upper()
        unit = {
            "reference_id": request.out_trade_no,
            "custom_id": request.out_trade_no,
            "invoice_id": request.out_trade_no,
            "amount": {"currency_code": currency, "value": format_amount(request.amount, currency)},
        }
        if request.subject:
            unit["description"] = request.subject[:127]
        body: dict[str, Any] = {"intent": "CAPTURE", "purchase_units": [unit]}
        return_url = request.return_url or self.account.return_url
        if return_url:
            body["application_context"] = {
                "return_url": return_url,
                "cancel_url": return_url,
                "user_action": "PAY_NOW",
                "shipping_preference": "NO_SHIPPING",
            }
        order = self._api(
            "POST",
            "/v2/checkout/orders",
            json_body=body,
            headers={"PayPal-Request-Id": request.out_trade_no, "Prefer": "return=representation"},
            idempotent=True,
        )
        approve = _link(order, "approve") or _link(order, "payer-action")
        if not order.get("id") or not approve:
            raise ChannelUnavailable("PayPal order answer has no id or approve link", code="BAD_RESPONSE", raw=order)
        return CreateResult(action=Action(type="redirect", url=approve), channel_trade_no=str(order["id"]))

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """PayPal stops retrying on any 2xx; anything else is retried (25 times over 3 days)."""
        return NotifyReply(status=200 if accepted else 400, body=b"")

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        """Verify a webhook (CRC32 + SHA256withRSA, §4.2) and turn it into a notice.

        ``CHECKOUT.ORDER.APPROVED`` is captured here, synchronously; a capture that PayPal
        refuses yields a failed notice carrying PayPal's issue code. A transport failure while
        capturing propagates (ChannelUnavailable/ChannelTimeout) so the endpoint answers non-2xx
        and PayPal redelivers.
        """
        event = self._verify_webhook(_ci_headers(headers), body)
        event_type = event.get("event_type")
        resource = event.get("resource")
        if not isinstance(event_type, str) or not isinstance(resource, dict):
            raise NotificationRejected("malformed PayPal webhook: no event_type or resource")
        self._check_payee(resource)
        try:
            if event_type == "CHECKOUT.ORDER.APPROVED":
                return self._approved_order_notice(resource, event)
            if event_type == "CHECKOUT.ORDER.COMPLETED":
                return self._order_notice(resource, order_outcome(resource), raw=event)
            if event_type in _CAPTURE_EVENTS:
                return self._capture_notice(resource, _CAPTURE_EVENTS[event_type], event)
            if event_type == "PAYMENT.CAPTURE.REFUNDED":
                return self._refund_notice(resource, event)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise NotificationRejected(f"malformed PayPal {event_type} resource: {type(exc).__name__}: {exc}") from None
        raise NotificationRejected(f"unknown PayPal event type {event_type!r}")

    def _approved_order_notice(self, order: dict, event: dict) -> Notice:
        order_id = str(order["id"])
        try:
            captured = self._capture_order(order_id)
        except ChannelDeclined as exc:
            outcome: Outcome = "pending" if exc.code == "ORDER_NOT_APPROVED" else "failed"
            return self._order_notice(order, outcome, raw={"event": event, "capture_error": exc.raw}, error_code=exc.code)
        return self._order_notice(captured, order_outcome(captured), raw={"event": event, "capture": captured})

    def _order_notice(self, order: Mapping[str, Any], outcome: Outcome, *, raw: Mapping[str, Any], error_code: str = "") -> Notice:
        unit = _first_unit(order)
        capture = _first_capture(order)
        amount = capture.get("amount") or unit["amount"]
        out_trade_no = unit.get("custom_id") or unit.get("invoice_id") or capture.get("custom_id")
        if not out_trade_no:
            raise NotificationRejected("PayPal order carries no custom_id/invoice_id")
        return Notice(
            kind="payment",
            out_trade_no=str(out_trade_no),
            outcome=outcome,
            amount=parse_amount(amount["value"]),
            currency=str(amount["currency_code"]),
            merchant_id=str((unit.get("payee") or {}).get("merchant_id", "")),
            channel_trade_no=str(order["id"]),
            occurred_at=_parse_time(capture.get("create_time") or order.get("update_time")),
            error_code=error_code or (str(capture.get("status", "")) if outcome == "failed" else ""),
            raw=raw,
        )

    def _capture_notice(self, capture: dict, outcome: Outcome, event: dict) -> Notice:
        out_trade_no = capture.get("custom_id") or capture.get("invoice_id")
        if not out_trade_no:
            raise NotificationRejected("PayPal capture carries no custom_id/invoice_id")
        related = (capture.get("supplementary_data") or {}).get("related_ids") or {}
        reason = (capture.get("status_details") or {}).get("reason", "")
        return Notice(
            kind="payment",
            out_trade_no=str(out_trade_no),
            outcome=outcome,
            amount=parse_amount(capture["amount"]["value"]),
            currency=str(capture["amount"]["currency_code"]),
            merchant_id=str((capture.get("payee") or {}).get("merchant_id", "")),
            channel_trade_no=str(related.get("order_id", "")),
            occurred_at=_parse_time(capture.get("create_time")),
            error_code=str(reason or capture.get("status", "")) if outcome == "failed" else "",
            raw=event,
        )

    def _refund_notice(self, refund: dict, event: dict) -> Notice:
        """PAYMENT.CAPTURE.REFUNDED: our refund request set invoice_id = refund_no and
        custom_id = out_trade_no."""
        refund_no, out_trade_no = refund.get("invoice_id"), refund.get("custom_id")
        if not refund_no or not out_trade_no:
            raise NotificationRejected("PayPal refund carries no invoice_id (refund_no) or custom_id (out_trade_no)")
        return Notice(
            kind="refund",
            out_trade_no=str(out_trade_no),
            outcome=_REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
            amount=parse_amount(refund["amount"]["value"]),
            currency=str(refund["amount"]["currency_code"]),
            merchant_id=str((refund.get("payer") or {}).get("merchant_id", "")),
            refund_no=str(refund_no),
            channel_refund_no=str(refund.get("id", "")),
            occurred_at=_parse_time(refund.get("create_time")),
            raw=event,
        )

    def _check_payee(self, resource: Mapping[str, Any]) -> None:
        """Refuse a resource whose payee (order/capture) or refunding payer is another merchant."""
        expected = self.account.merchant_id
        if not expected:
            return
        found = [
            (unit.get("payee") or {}).get("merchant_id")
            for unit in resource.get("purchase_units") or []
            if isinstance(unit, dict)
        ]
        found += [(resource.get("payee") or {}).get("merchant_id"), (resource.get("payer") or {}).get("merchant_id")]
        for merchant in found:
            if merchant and merchant != expected:
                raise NotificationRejected(f"PayPal webhook is for merchant {merchant}, not this account's {expected}")

    # -- webhook verification ------------------------------------------------------------------
    def _verify_webhook(self, headers: Mapping[str, str], body: bytes) -> dict:
        names = ("paypal-transmission-id", "paypal-transmission-time", "paypal-transmission-sig", "paypal-cert-url", "paypal-auth-algo")
        missing = [name.upper() for name in names if not headers.get(name)]
        if missing:
            raise NotificationRejected(f"not a signed PayPal webhook: missing header(s) {', '.join(missing)}")
        transmission_id, transmission_time, signature, cert_url, algo = (headers[name] for name in names)
        if algo != SUPPORTED_AUTH_ALGO:
            raise NotificationRejected(f"unsupported PAYPAL-AUTH-ALGO {algo!r} (expected {SUPPORTED_AUTH_ALGO})")
        sent_at = _parse_time(transmission_time)
        if sent_at is None:
            raise NotificationRejected(f"malformed PAYPAL-TRANSMISSION-TIME {transmission_time!r}")
        now = timezone.now()
        if sent_at < now - TRANSMISSION_MAX_AGE:
            raise NotificationRejected(
                f"stale PayPal transmission: PAYPAL-TRANSMISSION-TIME {transmission_time} is more than "
                f"{int(TRANSMISSION_MAX_AGE.total_seconds() // 60)} minutes old"
            )
        if sent_at > now + TRANSMISSION_MAX_SKEW:
            raise NotificationRejected(f"PAYPAL-TRANSMISSION-TIME {transmission_time} lies in the future")
        webhook_id = self.account.credentials.get("webhook_id")
        if not webhook_id:
            raise NotificationRejected(f"PayPal account {self.account.code!r} has no webhook_id configured")
        certificate = self._webhook_certificate(cert_url)
        try:
            raw_signature = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise NotificationRejected("malformed PAYPAL-TRANSMISSION-SIG (not base64)") from None
        message = expected_signature_string(transmission_id, transmission_time, str(webhook_id), body)
        public_key = certificate.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise NotificationRejected("PayPal webhook certificate does not hold an RSA key")
        try:
            public_key.verify(raw_signature, message.encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise NotificationRejected(
                "bad PayPal webhook signature: PAYPAL-TRANSMISSION-SIG does not verify for this body and webhook_id"
            ) from None
        try:
            event = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise NotificationRejected("malformed PayPal webhook body: not JSON") from None
        if not isinstance(event, dict):
            raise NotificationRejected("malformed PayPal webhook body: not a JSON object")
        return event

    def _check_cert_url(self, cert_url: str) -> None:
        """Fetch signing certificates only from the account's own base URL or PayPal's hosts —
        never from wherever a forged header points (SSRF)."""
        parts = urlsplit(cert_url)
        if parts.username or parts.password or "/../" in parts.path or parts.path.endswith("/.."):
            raise NotificationRejected(f"PAYPAL-CERT-URL {cert_url!r} is not allowed")
        base = urlsplit(self.account.base_url)
        base_path = base.path if base.path.endswith("/") else base.path + "/"
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc) and parts.path.startswith(base_path):
            return
        host = (parts.hostname or "").lower()
        if parts.scheme == "https" and parts.port in (None, 443) and (host == "paypal.com" or host.endswith(".paypal.com")):
            return
        raise NotificationRejected(f"PAYPAL-CERT-URL host {host or cert_url!r} is not PayPal's nor this account's base URL")

    def _webhook_certificate(self, cert_url: str) -> x509.Certificate:
        self._check_cert_url(cert_url)
        now = time.monotonic()
        with _certs_lock:
            cached = _certs.get(cert_url)
        if cached and now - cached[1] < CERT_CACHE_SECONDS:
            pem = cached[0]
        else:
            parts = urlsplit(cert_url)
            response = http.send(f"{parts.scheme}://{parts.netloc}", "GET", cert_url, idempotent=True)
            if response.status_code != 200:
                raise NotificationRejected(f"PAYPAL-CERT-URL answered HTTP {response.status_code}")
            pem = response.content
            with _certs_lock:
                if len(_certs) > 64:
                    _certs.clear()
                _certs[cert_url] = (pem, now)
        try:
            chain = x509.load_pem_x509_certificates(pem)
        except ValueError:
            raise NotificationRejected("PAYPAL-CERT-URL did not serve a PEM certificate") from None
        ca_pem = self.account.credentials.get("webhook_ca_pem")
        if not ca_pem:
            raise NotificationRejected(f"PayPal account {self.account.code!r} has no webhook_ca_pem configured")
        try:
            anchors = x509.load_pem_x509_certificates(str(ca_pem).encode())
        except ValueError:
            raise NotificationRejected("webhook_ca_pem is not a PEM certificate") from None
        verify_certificate_chain(chain, anchors, now=timezone.now())
        return chain[0]

    # -- status --------------------------------------------------------------------------------
    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        """``GET /v2/checkout/orders/{id}``; an APPROVED order is captured on the spot (the
        same idempotent capture the webhook path uses) so lost webhooks cannot strand money.

        Orders are addressed by PayPal's id only; without it the outcome is "unknown".
        """
        if not channel_trade_no:
            return QueryResult(outcome="unknown", raw={"reason": "PayPal orders can only be queried by order id"})
        try:
            order = self._get_order(channel_trade_no)
        except ChannelDeclined as exc:
            if exc.code in ("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID"):
                return QueryResult(outcome="closed", error_code=exc.code, raw=exc.raw or {})
            raise
        unit = _first_unit(order)
        custom = unit.get("custom_id") or unit.get("invoice_id")
        if custom and custom != out_trade_no:
            raise ChannelDeclined(f"PayPal order {channel_trade_no} belongs to {custom}, not {out_trade_no}", code="ORDER_MISMATCH", raw=order)
        error_code = ""
        if order.get("status") == "APPROVED" and not _first_capture(order):
            try:
                order = self._capture_order(channel_trade_no)
            except ChannelDeclined as exc:
                if exc.code != "ORDER_NOT_APPROVED":
                    return self._query_result(order, "failed", error_code=exc.code)
        outcome = order_outcome(order)
        if outcome == "failed":
            error_code = str(_first_capture(order).get("status", ""))
        return self._query_result(order, outcome, error_code=error_code)

    @staticmethod
    def _query_result(order: Mapping[str, Any], outcome: Outcome, *, error_code: str = "") -> QueryResult:
        unit = _first_unit(order)
        capture = _first_capture(order)
        amount = capture.get("amount") or unit.get("amount") or {}
        return QueryResult(
            outcome=outcome,
            amount=parse_amount(amount["value"]) if amount.get("value") is not None else None,
            currency=str(amount.get("currency_code", "")),
            channel_trade_no=str(order.get("id", "")),
            paid_at=_parse_time(capture.get("create_time")) if outcome == "succeeded" else None,
            error_code=error_code,
            raw=dict(order),
        )

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """No call: PayPal cannot cancel a CAPTURE order; an unapproved one expires on its own.

        If the buyer approves after we gave up, the webhook still captures it and the platform's
        late-success rule (deliver if stock allows, otherwise refund) applies.
        """
        return None

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        """``POST /v2/payments/captures/{capture_id}/refund``; ``PayPal-Request-Id = refund_no``
        makes repeats return the same refund. The refund carries ``invoice_id = refund_no`` and
        ``custom_id = out_trade_no`` so webhooks and the STL file name both."""
        order = self._get_order(request.channel_trade_no)
        capture = _first_capture(order)
        if not capture.get("id"):
            raise ChannelDeclined(f"PayPal order {request.channel_trade_no} has no capture to refund", code="RESOURCE_NOT_FOUND", raw=order)
        currency = request.currency.upper()
        body: dict[str, Any] = {
            "amount": {"value": format_amount(request.amount, currency), "currency_code": currency},
            "invoice_id": request.refund_no,
            "custom_id": request.out_trade_no,
        }
        if request.reason:
            body["note_to_payer"] = request.reason[:255]
        refund = self._api(
            "POST",
            f"/v2/payments/captures/{capture['id']}/refund",
            json_body=body,
            headers={"PayPal-Request-Id": request.refund_no, "Prefer": "return=representation"},
            idempotent=True,
        )
        return RefundResult(
            outcome=_REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
            channel_refund_no=str(refund.get("id", "")),
            raw=refund,
        )

    def query_refund(self, request: RefundRequest) -> RefundResult:
        """Read the order's refunds and find ours by ``invoice_id = refund_no`` (no re-send)."""
        order = self._get_order(request.channel_trade_no)
        refunds = (_first_unit(order).get("payments") or {}).get("refunds") or []
        for refund in refunds:
            if isinstance(refund, dict) and refund.get("invoice_id") == request.refund_no:
                return RefundResult(
                    outcome=_REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
                    channel_refund_no=str(refund.get("id", "")),
                    raw=refund,
                )
        return RefundResult(outcome="failed", error_code="RESOURCE_NOT_FOUND", raw={"refunds": refunds})

    # -- settlement ----------------------------------------------------------------------------
    def download_settlement(self, day: dt.date) -> bytes:
        """The day's STL file from ``<base_url>/ppreports/outgoing/STL-yyyymmdd.01.009.CSV``.

        Live PayPal publishes STL files only on its SFTP server (reports.paypal.com,
        ``/ppreports/outgoing``); there this call fails and an operator fetches the file by SFTP
        and runs ``reconcile_file --channel paypal``. The sandbox serves the same path over HTTP.
        """
        token = self._token()
        response = http.send(
            self.account.base_url,
            "GET",
            f"/ppreports/outgoing/{stl_file_name(day)}",
            headers={"Authorization": f"Bearer {token}"},
            idempotent=True,
        )
        if response.status_code == 404:
            raise ChannelUnavailable(
                f"no STL file for {day} at {self.account.base_url} (live PayPal delivers STL by SFTP only)",
                code="REPORT_NOT_AVAILABLE",
            )
        if response.status_code != 200:
            raise _error_from(response)
        return response.content

    @classmethod
    def open_settlement(cls, stream: IO[bytes], *, merchant_id: str | None = None) -> StlFile:
        """Parse an STL file; with ``merchant_id`` a file of another PayPal account is refused."""
        return StlFile(stream, merchant_id=merchant_id)


_CAPTURE_EVENTS: dict[str, Outcome] = {
    "PAYMENT.CAPTURE.COMPLETED": "succeeded",
    "PAYMENT.CAPTURE.PENDING": "pending",
    "PAYMENT.CAPTURE.DENIED": "failed",
    "PAYMENT.CAPTURE.DECLINED": "failed",
}


def expected_signature_string(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> str:
    """``transmission_id|transmission_time|webhook_id|crc32`` with the CRC32 of the raw body as
    an unsigned decimal (PayPal SDK ``_get_expected_sig``, CHANNELS.md §4.2)."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{binascii.crc32(body) & 0xFFFFFFFF}"


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_validity(certificate: x509.Certificate, now: dt.datetime, what: str) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise NotificationRejected(f"{what} {_common_name(certificate)!r} is expired or not yet valid")


def verify_certificate_chain(chain: list[x509.Certificate], anchors: list[x509.Certificate], *, now: dt.datetime) -> None:
    """The leaf (first certificate) must be valid now, name a ``*.paypal.com`` host and chain —
    through CA certificates served with it, if any — to one of ``anchors`` (§4.2)."""
    if not chain:
        raise NotificationRejected("PAYPAL-CERT-URL served no certificate")
    leaf = chain[0]
    _check_validity(leaf, now, "PayPal webhook certificate")
    if not _common_name(leaf).lower().endswith(".paypal.com"):
        raise NotificationRejected(f"PayPal webhook certificate is for {_common_name(leaf)!r}, not a .paypal.com host")
    current, intermediates = leaf, [c for c in chain[1:] if _is_ca(c)]
    for _depth in range(5):
        for anchor in anchors:
            if current.issuer == anchor.subject and _issued_by(current, anchor):
                _check_validity(anchor, now, "PayPal CA certificate")
                return
        parent = next((c for c in intermediates if current.issuer == c.subject and _issued_by(current, c)), None)
        if parent is None:
            break
        _check_validity(parent, now, "PayPal intermediate certificate")
        current = parent
    raise NotificationRejected("PayPal webhook certificate does not chain to the configured webhook_ca_pem")


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# STL settlement report


class StlFile(ReplayableSettlementFile):
    """A streaming reader of PayPal's Settlement Report (STL, version 009; CHANNELS.md §4.3).

    Layout: ``RH`` (generation time, window, account id, version), ``FH`` (file sequence), then
    per section ``SH`` (period start/end, account id), ``CH`` (column names), ``SB`` rows,
    ``SF`` (per currency: total gross CR, total gross DR, total fee CR, total fee DR, all in
    minor units), ``SC`` (SB count); then ``RF`` (the same four totals per currency for the
    report), ``RC`` (SB count of the report) and ``FF`` (SB count of this file). The trailer
    field lists are our reading of the spec structure (§4.3 marks them unverified); every
    trailer record is checked against the sums of the SB rows it covers.

    Columns are looked up by the names in ``CH``, not by position. SB rows with T-code
    ``T00xx`` credited to us are payments, ``T1107`` debits are refunds; other rows (transfers,
    withdrawals, holds…) count toward the trailer checks but are not yielded. ``Custom Field``
    is our ``out_trade_no``; a refund's ``Invoice ID`` is our ``refund_no``; a payment's
    ``PayPal Reference ID`` of type ``ODR`` is the order id (else its Transaction ID is used).
    Amounts are unsigned minor units (×100 for every currency, spec: "100,00 yen and $100.00
    USD are both represented as 10000"). UTF-8 with or without BOM, LF or CRLF.

    ``totals`` adds up the payment and refund lines after the trailer records have agreed
    with every row; currencies are added together (one-currency accounts are the norm).
    """

    _replay_error = "the STL stream cannot be read twice"

    # -- parsing -------------------------------------------------------------------------------
    def _text_lines(self) -> Iterator[str]:
        for number, raw in enumerate(self._stream, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SettlementFileError(f"STL file is not UTF-8 (byte {exc.start} of the line)", line_no=number) from None

    def _parse(self) -> Iterator[SettlementLine]:
        reader = csv.reader(self._text_lines(), strict=True)
        state = _StlState()
        line_no = 0
        try:
            for record in reader:
                line_no = reader.line_num
                if not record or all(not field.strip() for field in record):
                    continue
                kind = record[0]
                if state.finished:
                    raise SettlementFileError(f"record {kind!r} after the FF file footer", line_no=line_no)
                handler = getattr(self, f"_record_{kind.lower()}", None) if kind in _STL_RECORDS else None
                if handler is None:
                    raise SettlementFileError(f"unknown STL record type {kind[:10]!r}", line_no=line_no)
                line = handler(state, record, line_no)
                if line is not None:
                    yield line
        except csv.Error as exc:
            raise SettlementFileError(f"malformed CSV in STL file: {exc}", line_no=reader.line_num or line_no) from None
        if not state.seen_rh:
            raise SettlementFileError("empty file: no RH report header")
        if not state.finished:
            raise SettlementFileError("truncated STL file: it ends without the FF file footer", line_no=line_no)
        self._totals = FileTotals(
            merchant_id=state.account_id,
            day=state.day,
            payments=state.payments,
            refunds=state.refunds,
            lines=state.payments + state.refunds,
            gross=state.gross,
            refunded=state.refunded,
            fees=state.fees,
        )

    def _record_rh(self, state: _StlState, record: list[str], line_no: int) -> None:
        if state.seen_rh:
            raise SettlementFileError("second RH report header", line_no=line_no)
        if len(record) < 5:
            raise SettlementFileError("RH record has fewer than 5 fields", line_no=line_no)
        state.seen_rh = True
        state.account_id = record[3].strip()
        if not state.account_id:
            raise SettlementFileError("RH record has no account id", line_no=line_no)
        if self._merchant_id and state.account_id != self._merchant_id:
            raise SettlementFileError(
                f"STL file is for PayPal account {state.account_id}, not {self._merchant_id}", line_no=line_no
            )
        return None

    def _require_rh(self, state: _StlState, kind: str, line_no: int) -> None:
        if not state.seen_rh:
            raise SettlementFileError(f"not a PayPal STL file: {kind} before the RH report header", line_no=line_no)

    def _record_fh(self, state: _StlState, record: list[str], line_no: int) -> None:
        self._require_rh(state, "FH", line_no)
        return None

    def _record_sh(self, state: _StlState, record: list[str], line_no: int) -> None:
        self._require_rh(state, "SH", line_no)
        if state.in_section:
            raise SettlementFileError("SH before the previous section's SC", line_no=line_no)
        if len(record) < 4:
            raise SettlementFileError("SH record has fewer than 4 fields", line_no=line_no)
        start = _stl_time(record[1], "SH period start", line_no)
        accounts = [field.strip() for field in record[3:5] if field.strip()]
        for account in accounts:
            if account != state.account_id:
                raise SettlementFileError(f"section for account {account} in a report of {state.account_id}", line_no=line_no)
        if state.day is None:
            state.day = start.date()
        state.in_section = True
        state.section = _Sums()
        state.columns = {}
        return None

    def _record_ch(self, state: _StlState, record: list[str], line_no: int) -> None:
        if not state.in_section:
            raise SettlementFileError("CH column header outside a section", line_no=line_no)
        columns = {name.strip(): index for index, name in enumerate(record) if index}
        missing = [name for name in STL_REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise SettlementFileError(f"CH lacks column(s): {', '.join(missing)}", line_no=line_no)
        state.columns = columns
        state.width = len(record)
        return None

    def _record_sb(self, state: _StlState, record: list[str], line_no: int) -> SettlementLine | None:
        if not state.columns:
            raise SettlementFileError("SB row before the CH column header", line_no=line_no)
        if not (len(record) == state.width or (len(record) == state.width + 1 and not record[-1].strip())):
            raise SettlementFileError(f"SB row has {len(record)} fields, CH names {state.width}", line_no=line_no)

        def col(name: str) -> str:
            index = state.columns.get(name)
            return record[index].strip() if index is not None and index < len(record) else ""

        direction = col("Transaction Debit or Credit")
        if direction not in ("DR", "CR"):
            raise SettlementFileError(f"Transaction Debit or Credit is {direction!r}, not DR/CR", line_no=line_no)
        gross = _stl_int(col("Gross Transaction Amount"), "Gross Transaction Amount", line_no)
        currency = col("Gross Transaction Currency")
        if len(currency) != 3:
            raise SettlementFileError(f"Gross Transaction Currency {currency!r} is not an ISO code", line_no=line_no)
        fee = _stl_int(col("Fee Amount") or "0", "Fee Amount", line_no)
        fee_direction = col("Fee Debit or Credit")
        if fee and fee_direction not in ("DR", "CR"):
            raise SettlementFileError(f"Fee Debit or Credit is {fee_direction!r}, not DR/CR", line_no=line_no)
        fee_currency = col("Fee Currency") or currency
        state.add(currency, gross, direction, fee_currency, fee, fee_direction)

        code = col("Transaction Event Code")
        if code.startswith(STL_PAYMENT_CODE_PREFIX) and direction == "CR":
            kind = "payment"
        elif code in STL_REFUND_CODES and direction == "DR":
            kind = "refund"
        else:
            return None
        amount = Decimal(gross) / 100
        fee_amount = (Decimal(fee) / 100) * (-1 if fee_direction == "CR" else 1)
        custom, invoice = col("Custom Field"), col("Invoice ID")
        reference, reference_type = col("PayPal Reference ID"), col("PayPal Reference ID Type")
        transaction_id = col("Transaction ID")
        completed = col("Transaction Completion Date") or col("Transaction Initiation Date")
        occurred = _stl_time(completed, "Transaction Completion Date", line_no) if completed else None
        if kind == "payment":
            state.payments += 1
            state.gross += amount
            out_trade_no, refund_no = custom or invoice, ""
            channel_trade_no = reference if reference and reference_type == "ODR" else transaction_id
        else:
            state.refunds += 1
            state.refunded += amount
            out_trade_no = custom or invoice
            refund_no = invoice if invoice and invoice != out_trade_no else ""
            channel_trade_no = reference or transaction_id
        state.fees += fee_amount
        raw = {name: record[index] for name, index in state.columns.items() if index < len(record)}
        return SettlementLine(
            line_no=line_no,
            kind=kind,
            out_trade_no=out_trade_no,
            channel_trade_no=channel_trade_no,
            amount=amount.quantize(CENT),
            fee=fee_amount.quantize(CENT),
            currency=currency,
            occurred_at=occurred,
            refund_no=refund_no,
            raw=raw,
        )

    def _record_sf(self, state: _StlState, record: list[str], line_no: int) -> None:
        if not state.in_section:
            raise SettlementFileError("SF section footer outside a section", line_no=line_no)
        _check_footer("SF", record, state.section, state.section_footers, line_no)
        return None

    def _record_sc(self, state: _StlState, record: list[str], line_no: int) -> None:
        if not state.in_section:
            raise SettlementFileError("SC section count outside a section", line_no=line_no)
        _check_count("SC", record, state.section.count, line_no)
        _check_all_footed("SF", state.section, state.section_footers, line_no)
        state.in_section = False
        state.section_footers = set()
        state.columns = {}
        return None

    def _record_rf(self, state: _StlState, record: list[str], line_no: int) -> None:
        self._close_body(state, "RF", line_no)
        _check_footer("RF", record, state.report, state.report_footers, line_no)
        return None

    def _record_rc(self, state: _StlState, record: list[str], line_no: int) -> None:
        self._close_body(state, "RC", line_no)
        _check_count("RC", record, state.report.count, line_no)
        _check_all_footed("RF", state.report, state.report_footers, line_no)
        state.report_counted = True
        return None

    def _record_ff(self, state: _StlState, record: list[str], line_no: int) -> None:
        self._close_body(state, "FF", line_no)
        if not state.report_counted:
            raise SettlementFileError("FF file footer before the RC report count", line_no=line_no)
        _check_count("FF", record, state.report.count, line_no)
        state.finished = True
        return None

    def _close_body(self, state: _StlState, kind: str, line_no: int) -> None:
        self._require_rh(state, kind, line_no)
        if state.in_section:
            raise SettlementFileError(f"{kind} inside a section that has no SC count", line_no=line_no)


_STL_RECORDS = frozenset({"RH", "FH", "SH", "CH", "SB", "SF", "SC", "RF", "RC", "FF"})


class _Sums:
    """Per-currency totals of SB rows, in minor units."""

    def __init__(self) -> None:
        self.count = 0
        self.by_currency: dict[str, list[int]] = {}

    def add(self, currency: str, gross: int, direction: str, fee_currency: str, fee: int, fee_direction: str) -> None:
        self.count += 1
        row = self.by_currency.setdefault(currency, [0, 0, 0, 0])
        row[0 if direction == "CR" else 1] += gross
        if fee:
            fee_row = self.by_currency.setdefault(fee_currency, [0, 0, 0, 0])
            fee_row[2 if fee_direction == "CR" else 3] += fee


class _StlState:
    def __init__(self) -> None:
        self.seen_rh = self.in_section = self.report_counted = self.finished = False
        self.account_id = ""
        self.day: dt.date | None = None
        self.columns: dict[str, int] = {}
        self.width = 0
        self.section = _Sums()
        self.report = _Sums()
        self.section_footers: set[str] = set()
        self.report_footers: set[str] = set()
        self.payments = self.refunds = 0
        self.gross = self.refunded = self.fees = Decimal("0")

    def add(self, currency: str, gross: int, direction: str, fee_currency: str, fee: int, fee_direction: str) -> None:
        self.section.add(currency, gross, direction, fee_currency, fee, fee_direction)
        self.report.add(currency, gross, direction, fee_currency, fee, fee_direction)


_FOOTER_FIELDS = ("total gross credit", "total gross debit", "total fee credit", "total fee debit")


def _check_footer(kind: str, record: list[str], sums: _Sums, seen: set[str], line_no: int) -> None:
    if len(record) < 6:
        raise SettlementFileError(f"{kind} record has fewer than 6 fields", line_no=line_no)
    currency = record[1].strip()
    if currency in seen:
        raise SettlementFileError(f"second {kind} for {currency}", line_no=line_no)
    seen.add(currency)
    stated = [_stl_int(record[i] or "0", f"{kind} {_FOOTER_FIELDS[i - 2]}", line_no) for i in range(2, 6)]
    actual = sums.by_currency.get(currency, [0, 0, 0, 0])
    for name, said, summed in zip(_FOOTER_FIELDS, stated, actual, strict=True):
        if said != summed:
            raise SettlementFileError(
                f"{kind} {currency} {name} is {said} but the SB rows add up to {summed}", line_no=line_no
            )


def _check_all_footed(kind: str, sums: _Sums, seen: set[str], line_no: int) -> None:
    missing = sorted(set(sums.by_currency) - seen)
    if missing:
        raise SettlementFileError(f"no {kind} totals for currency {', '.join(missing)}", line_no=line_no)


def _check_count(kind: str, record: list[str], counted: int, line_no: int) -> None:
    if len(record) < 2:
        raise SettlementFileError(f"{kind} record has no count", line_no=line_no)
    stated = _stl_int(record[1], f"{kind} count", line_no)
    if stated != counted:
        raise SettlementFileError(f"{kind} says {stated} SB rows but the file holds {counted}", line_no=line_no)


def _stl_int(value: str, what: str, line_no: int) -> int:
    value = value.strip()
    if not value.isdigit():
        raise SettlementFileError(f"{what} {value!r} is not an unsigned whole number", line_no=line_no)
    return int(value)


def _stl_time(value: str, what: str, line_no: int) -> dt.datetime:
    try:
        return dt.datetime.strptime(value.strip(), STL_DATE_FORMAT)
    except ValueError:
        raise SettlementFileError(f"{what} {value!r} is not yyyy/MM/dd HH:mm:ss ±hhmm", line_no=line_no) from None
