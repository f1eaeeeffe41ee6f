"""Card acquiring through a Stripe-style API: PaymentIntents, ``Stripe-Signature`` webhooks and
the Reporting API's itemized balance-change report.

Wire protocol (CHANNELS.md §4.4–4.6):

* Form-encoded calls with ``Authorization: Bearer <secret key>``; amounts in the currency's
  smallest unit (zero-decimal currencies such as JPY/KRW have none); ``Idempotency-Key`` is
  ``out_trade_no`` for ``POST /v1/payment_intents`` and ``refund_no`` for ``POST /v1/refunds``,
  so both are safe to re-send.
* The buyer pays on the acquirer's card page (action type "widget"): its URL comes from the
  account's ``hosted_page_url`` template and the widget params are what a card element needs —
  ``publishable_key``, the PaymentIntent's ``client_secret`` and id — never the secret key.
  Instalments: the intent is created with
  ``payment_method_options[card][installments][enabled]=true``; the chosen plan
  (``{count, interval: month, type: fixed_count}``) travels with the widget params and the page
  URL because Stripe accepts ``installments[plan]`` only when the intent is confirmed.
* Webhooks carry ``Stripe-Signature: t=…,v1=…``: HMAC-SHA256 over ``"{t}.{raw body}"`` with the
  endpoint secret (``whsec_…``); any matching ``v1`` is accepted (constant-time compare) and
  ``t`` must lie within 300 s of now (stripe-python ``_webhook.py``).
* Settlement: a report run of ``balance_change_from_activity.itemized.3`` with an explicit
  column list (``REPORT_COLUMNS``), polled until it succeeds, then its CSV file downloaded with
  the secret key. Report amounts are in MAJOR units. See :class:`StripeReport`.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import IO, Any, ClassVar
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings

from payments.channels import http
from payments.channels.base import (
    CENT,
    Action,
    ChannelBackend,
    ChannelDeclined,
    ChannelError,
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
    RefundOutcome,
    RefundRequest,
    RefundResult,
    ReplayableSettlementFile,
    SettlementFileError,
    SettlementLine,
    header_map,
)

API_VERSION = "2024-06-20"
WEBHOOK_TOLERANCE = 300  # seconds; stripe-python Webhook.DEFAULT_TOLERANCE
REPORT_TYPE = "balance_change_from_activity.itemized.3"
#: The report columns we ask for, so the acquirer and our parser agree (§4.6: "always pass an
#: explicit columns list"). ``payment_metadata[merchant_id]`` is the account id we put in every
#: PaymentIntent's metadata: it is how a report names its merchant.
REPORT_COLUMNS = (
    "balance_transaction_id",
    "created_utc",
    "created",
    "available_on_utc",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
    "description",
    "payment_intent_id",
    "charge_id",
    "payment_method_type",
    "card_brand",
    "payment_metadata[out_trade_no]",
    "payment_metadata[merchant_id]",
    "refund_metadata[refund_no]",
)
REPORT_REQUIRED_COLUMNS = ("balance_transaction_id", "currency", "gross", "fee", "net", "reporting_category")
REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

#: Stripe's zero- and three-decimal currencies; every other currency has two decimals.
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def exponent(currency: str) -> int:
    currency = currency.upper()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def to_units(amount: Decimal, currency: str) -> int:
    """Major units → the API's integer smallest unit; refuses amounts finer than the currency."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ChannelDeclined(f"{amount} {currency} has more decimals than the currency allows", code="amount_invalid")
    return int(scaled)


def from_units(value: int | str, currency: str) -> Decimal:
    return Decimal(int(value)).scaleb(-exponent(currency)).quantize(CENT)


# ---------------------------------------------------------------------------------------------
# Error codes (card_error decline codes and API error codes)


_spec = ErrorSpec.of


_OTHER_CARD_ZH, _OTHER_CARD_EN = "请换一张卡或改用其他支付方式。", "Try another card or another payment method."

CARD_ERROR_CODES: dict[str, ErrorSpec] = {
    "card_declined": _spec("final", False, "发卡行拒绝了这笔交易", "The card was declined", _OTHER_CARD_ZH, _OTHER_CARD_EN),
    "generic_decline": _spec("final", False, "发卡行拒绝了这笔交易", "The card was declined", _OTHER_CARD_ZH, _OTHER_CARD_EN),
    "insufficient_funds": _spec("final", False, "卡内余额或额度不足", "The card has insufficient funds", _OTHER_CARD_ZH, _OTHER_CARD_EN),
    "do_not_honor": _spec(
        "final", False, "发卡行拒绝了这笔交易（未说明原因）", "The issuer declined without giving a reason",
        "请联系发卡行，或换一张卡、改用其他支付方式。", "Contact your bank, or use another card or method.",
    ),
    "incorrect_cvc": _spec(
        "final", False, "卡片安全码（CVC）与发卡行记录不符", "The card's security code (CVC) does not match the issuer's record",
        "请核对卡背面的三位安全码后重试。", "Check the 3-digit code on the back of the card and try again.",
    ),
    "incorrect_number": _spec("final", False, "卡号不正确", "The card number is incorrect", "请核对卡号后重试。", "Check the card number and try again."),
    "expired_card": _spec("final", False, "卡片已过期", "The card has expired", "请使用有效期内的卡。", "Use a card that has not expired."),
    "fraudulent": _spec("final", False, "交易未通过风险审核", "The payment was declined by risk checks", _OTHER_CARD_ZH, _OTHER_CARD_EN),
    "lost_card": _spec("final", False, "发卡行拒绝了这笔交易", "The card was declined", _OTHER_CARD_ZH, _OTHER_CARD_EN),
    "stolen_card": _spec("final", False, "发卡行拒绝了这笔交易", "The card was declined", _OTHER_CARD_ZH, _OTHER_CARD_EN),
    "card_velocity_exceeded": _spec("final", False, "超过卡片的交易次数或额度限制", "The card's limit was exceeded", _OTHER_CARD_ZH, _OTHER_CARD_EN),
    "authentication_required": _spec(
        "step_up", False, "发卡行要求 3-D Secure 验证", "The issuer requires 3-D Secure authentication",
        "请完成银行的身份验证后再付款。", "Complete your bank's authentication and pay again.",
    ),
    "payment_intent_authentication_failure": _spec(
        "final", False, "3-D Secure 验证未通过", "3-D Secure authentication failed",
        "请重新付款并完成银行验证，或改用其他支付方式。", "Pay again and complete the bank's check, or use another method.",
    ),
    "processing_error": _spec("failover", True, "处理卡片时出错", "An error occurred while processing the card", "请稍后再试。", "Please try again shortly."),
    "issuer_not_available": _spec("failover", True, "无法连接发卡行", "The card issuer could not be reached", "请稍后再试。", "Please try again shortly."),
    "abandoned": _spec("final", False, "付款人未完成付款", "The payer did not finish paying", "如需购买请重新下单。", "Start the payment again if you still want the item."),
    "amount_too_small": _spec("failover", False, "金额低于该收单渠道的最低限额", "The amount is below the acquirer's minimum"),
    "amount_too_large": _spec("final", False, "金额超过可用额度或可退金额", "The amount exceeds what is allowed or still refundable"),
    "amount_invalid": _spec("failover", False, "金额格式不符合币种要求", "The amount does not fit the currency's decimals"),
    "charge_already_refunded": _spec("final", False, "该笔付款已全额退款", "The payment is already fully refunded"),
    "payment_intent_unexpected_state": _spec("query", False, "支付状态已变化，需要先查询", "The payment changed state; query it first"),
    "resource_missing": _spec("query", False, "收单方找不到该笔交易", "The acquirer cannot find this payment"),
    "parameter_missing": _spec("failover", False, "请求缺少必要参数", "A required parameter is missing"),
    "idempotency_error": _spec("query", True, "幂等键与先前请求的参数不一致", "The idempotency key was reused with other parameters"),
    "authentication_error": _spec("failover", True, "收单接口认证失败", "The acquirer rejected our API key"),
    "rate_limit": _spec("failover", True, "收单接口请求过于频繁", "The acquirer's rate limit was reached", "请稍后再试。", "Please try again shortly."),
    "api_error": _spec("failover", True, "收单方系统错误", "The acquirer had an internal error", "请稍后再试或改用其他支付方式。", "Try again later or use another method."),
    "TIMEOUT": _spec("query", True, "收单方响应超时", "The acquirer did not answer in time"),
    "UNAVAILABLE": _spec("failover", True, "无法连接收单方", "The acquirer could not be reached"),
}


# ---------------------------------------------------------------------------------------------
# Webhook signatures (CHANNELS.md §4.5)


def compute_signature(secret: str, timestamp: int, payload: bytes) -> str:
    """hex(HMAC-SHA256(secret, "{t}.{payload}"))."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def signature_header(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={compute_signature(secret, timestamp, payload)}"


def verify_signature(payload: bytes, header: str, secrets: Sequence[str], *, tolerance: int = WEBHOOK_TOLERANCE, now: float | None = None) -> int:
    """Check a ``Stripe-Signature`` header; return its timestamp or raise NotificationRejected.

    Accepts when ANY ``v1`` matches ANY of ``secrets`` (endpoint-secret rotation signs with both),
    compared in constant time; other schemes (``v0``) are ignored.
    """
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                timestamp = None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise NotificationRejected("malformed Stripe-Signature header: no timestamp t=")
    if not signatures:
        raise NotificationRejected("Stripe-Signature header has no v1 signature")
    expected = [compute_signature(secret, timestamp, payload).encode() for secret in secrets if secret]
    if not any(hmac.compare_digest(candidate, signature.encode()) for candidate in expected for signature in signatures):
        raise NotificationRejected("bad Stripe-Signature: no v1 signature matches this body and endpoint secret")
    now = time.time() if now is None else now
    if timestamp < now - tolerance:
        raise NotificationRejected(f"stale Stripe-Signature timestamp: t={timestamp} is more than {tolerance} s old")
    if timestamp > now + tolerance:
        raise NotificationRejected(f"Stripe-Signature timestamp t={timestamp} lies in the future")
    return timestamp


# ---------------------------------------------------------------------------------------------
# Helpers


_ci_headers = header_map


def _error_from(response) -> ChannelError:
    """Stripe's ``{"error": {type, code, decline_code, message}}`` → our exception."""
    try:
        data = response.json()
    except ValueError:
        data = {}
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("decline_code") or error.get("code") or error.get("type") or f"HTTP_{response.status_code}"
    if response.status_code == 401:
        code = "authentication_error"
    elif response.status_code == 429:
        code = "rate_limit"
    text = f"acquirer answered HTTP {response.status_code} {code}: {error.get('message', '')}".strip()
    if response.status_code in (401, 403, 429):
        return ChannelUnavailable(text, code=str(code), raw=data)
    return ChannelDeclined(text, code=str(code), raw=data)


def _timestamp(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def intent_outcome(intent: Mapping[str, Any]) -> tuple[Outcome, str]:
    """PaymentIntent status → (outcome, error code). A declined attempt sends the intent back to
    ``requires_payment_method`` with ``last_payment_error`` (§4.4)."""
    status = intent.get("status")
    error = intent.get("last_payment_error") or {}
    code = str(error.get("decline_code") or error.get("code") or "") if isinstance(error, dict) else ""
    if status == "succeeded":
        return "succeeded", ""
    if status == "canceled":
        return "closed", str(intent.get("cancellation_reason") or "")
    if status == "requires_payment_method" and code:
        return "failed", code
    if status in ("requires_payment_method", "requires_confirmation", "requires_action", "processing", "requires_capture"):
        return "pending", ""
    return "unknown", ""


_REFUND_OUTCOMES: dict[str, RefundOutcome] = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "failed",
}

_PAYMENT_EVENTS = frozenset({
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.created",
})
_REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"})


# ---------------------------------------------------------------------------------------------
# The backend


class CardBackend(ChannelBackend):
    """A card acquirer that speaks Stripe's API.

    Credentials: ``secret_key`` (sk_…), ``publishable_key`` (pk_…), ``webhook_secret`` (whsec_…;
    a list during rotation) and ``hosted_page_url`` (the card page, ``{id}`` and
    ``{client_secret}`` are filled in). ``merchant_id`` is the acquirer account id; it is written
    into every intent's metadata and checked in webhooks and settlement reports.
    """

    code = "card"
    # Largest genuine notice: event objects with the charge embedded, up to ~10 KB.
    max_notification_bytes = 64 * 1024
    methods = ("card", "card_instalments")
    display_name = "Card"
    error_codes: ClassVar[Mapping[str, ErrorSpec]] = CARD_ERROR_CODES
    #: report runs: how often and how long to wait for ``status == succeeded``
    report_poll_attempts: ClassVar[int] = 30
    report_poll_interval: ClassVar[float] = 2.0
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    # -- plumbing ------------------------------------------------------------------------------
    def _credential(self, key: str) -> str:
        value = self.account.credentials.get(key)
        if not value:
            raise ChannelUnavailable(f"card account {self.account.code!r} has no {key} configured", code="CONFIGURATION")
        return str(value)

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._credential('secret_key')}", "Stripe-Version": API_VERSION}

    def _api(
        self,
        method: str,
        path: str,
        *,
        data: Sequence[tuple[str, str]] | None = None,
        params: Sequence[tuple[str, str]] | None = None,
        idempotency_key: str = "",
        idempotent: bool = False,
    ) -> dict:
        headers = self._auth_headers()
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        kwargs: dict[str, Any] = {"headers": headers, "idempotent": idempotent}
        if data is not None:
            # ordered, repeatable keys (``a[]``, ``a[0]``) as Stripe's own clients send them
            kwargs["content"] = urlencode(list(data)).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if params is not None:
            kwargs["params"] = list(params)
        response = http.send(self.account.base_url, method, path, **kwargs)
        if 200 <= response.status_code < 300:
            try:
                body = response.json()
            except ValueError:
                raise ChannelUnavailable(f"acquirer {method} {path} answered non-JSON", code="api_error") from None
            if not isinstance(body, dict):
                raise ChannelUnavailable(f"acquirer {method} {path} answered unexpected JSON", code="api_error")
            return body
        raise _error_from(response)

    # -- paying --------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> CreateResult:
        """Create a PaymentIntent (Idempotency-Key = out_trade_no) and hand the card page its
        widget params (§4.4)."""
        if request.method not in self.methods:
            raise ChannelDeclined(f"the card channel does not serve {request.method!r}", code="parameter_missing")
        if request.method == "card_instalments" and not request.instalments:
            raise ChannelDeclined("card_instalments needs the number of instalments", code="parameter_missing")
        currency = request.currency.upper()
        data: list[tuple[str, str]] = [
            ("amount", str(to_units(request.amount, currency))),
            ("currency", currency.lower()),
            ("payment_method_types[]", "card"),
            ("metadata[out_trade_no]", request.out_trade_no),
            ("metadata[merchant_id]", self.account.merchant_id),
        ]
        if request.subject:
            data.append(("description", request.subject[:1000]))
        if request.instalments:
            data += [
                ("payment_method_options[card][installments][enabled]", "true"),
                ("metadata[installments]", str(request.instalments)),
            ]
        intent = self._api("POST", "/v1/payment_intents", data=data, idempotency_key=request.out_trade_no, idempotent=True)
        intent_id, client_secret = str(intent.get("id", "")), str(intent.get("client_secret", ""))
        if not intent_id or not client_secret:
            raise ChannelUnavailable("PaymentIntent answer lacks id or client_secret", code="api_error", raw=intent)
        widget: dict[str, Any] = {
            "publishable_key": self._credential("publishable_key"),
            "client_secret": client_secret,
            "payment_intent": intent_id,
        }
        query: dict[str, str] = {}
        if request.instalments:
            widget["installments"] = {"enabled": True, "plan": {"count": request.instalments, "interval": "month", "type": "fixed_count"}}
            query["installments"] = str(request.instalments)
        return_url = request.return_url or self.account.return_url
        if return_url:
            query["return_url"] = return_url
        url = self._credential("hosted_page_url").replace("{id}", intent_id).replace("{client_secret}", client_secret)
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        return CreateResult(action=Action(type="widget", url=url, widget=widget), channel_trade_no=intent_id)

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """Any 2xx stops the acquirer's retries; we answer 200 ``{"received": true}``."""
        if accepted:
            return NotifyReply(status=200, body=b'{"received": true}', content_type="application/json")
        return NotifyReply(status=400, body=b'{"received": false}', content_type="application/json")

    def _webhook_secrets(self) -> list[str]:
        value = self.account.credentials.get("webhook_secret")
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, (list, tuple)):
            return [str(part) for part in value if part]
        return []

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        """Verify ``Stripe-Signature`` (§4.5) and map the event to a payment or refund notice."""
        header = _ci_headers(headers).get("stripe-signature")
        if not header:
            raise NotificationRejected("not a signed card webhook: no Stripe-Signature header")
        secrets = self._webhook_secrets()
        if not secrets:
            raise NotificationRejected(f"card account {self.account.code!r} has no webhook_secret configured")
        verify_signature(body, header, secrets)
        try:
            event = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise NotificationRejected("malformed card webhook body: not JSON") from None
        if not isinstance(event, dict) or event.get("object") != "event":
            raise NotificationRejected("malformed card webhook body: not an event object")
        account = event.get("account")
        if account and self.account.merchant_id and account != self.account.merchant_id:
            raise NotificationRejected(f"card webhook is for account {account}, not {self.account.merchant_id}")
        live_key = str(self.account.credentials.get("secret_key", "")).startswith("sk_live_")
        if "livemode" in event and bool(event["livemode"]) != live_key:
            raise NotificationRejected(f"{'test' if live_key else 'live'}-mode event sent to a {'live' if live_key else 'test'}-mode account")
        event_type = event.get("type")
        obj = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
        if not isinstance(event_type, str) or not isinstance(obj, dict):
            raise NotificationRejected("malformed card webhook: no type or data.object")
        try:
            if event_type in _PAYMENT_EVENTS:
                return self._intent_notice(obj, event)
            if event_type in _REFUND_EVENTS:
                return self._refund_notice(obj, event)
            if event_type == "charge.refunded":
                return self._refund_notice(self._newest_refund(obj), event)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise NotificationRejected(f"malformed {event_type} object: {type(exc).__name__}: {exc}") from None
        raise NotificationRejected(f"unknown card webhook event type {event_type!r}")

    def _check_metadata_merchant(self, metadata: Mapping[str, Any]) -> None:
        merchant = metadata.get("merchant_id")
        if merchant and self.account.merchant_id and merchant != self.account.merchant_id:
            raise NotificationRejected(f"card webhook names merchant {merchant}, not {self.account.merchant_id}")

    def _intent_notice(self, intent: dict, event: dict) -> Notice:
        metadata = intent.get("metadata") or {}
        out_trade_no = metadata.get("out_trade_no")
        if not out_trade_no:
            raise NotificationRejected("PaymentIntent has no metadata[out_trade_no]")
        self._check_metadata_merchant(metadata)
        outcome, code = intent_outcome(intent)
        currency = str(intent["currency"]).upper()
        units = intent.get("amount_received") if outcome == "succeeded" and intent.get("amount_received") else intent["amount"]
        return Notice(
            kind="payment",
            out_trade_no=str(out_trade_no),
            outcome=outcome,
            amount=from_units(units, currency),
            currency=currency,
            merchant_id=str(metadata.get("merchant_id", "")),
            channel_trade_no=str(intent["id"]),
            occurred_at=_timestamp(event.get("created")),
            error_code=code if outcome == "failed" else "",
            raw=event,
        )

    def _refund_notice(self, refund: Mapping[str, Any], event: dict) -> Notice:
        metadata = refund.get("metadata") or {}
        refund_no, out_trade_no = metadata.get("refund_no"), metadata.get("out_trade_no")
        if not refund_no or not out_trade_no:
            raise NotificationRejected("refund has no metadata[refund_no] / metadata[out_trade_no]: not made by Cardex")
        self._check_metadata_merchant(metadata)
        currency = str(refund["currency"]).upper()
        return Notice(
            kind="refund",
            out_trade_no=str(out_trade_no),
            outcome=_REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
            amount=from_units(refund["amount"], currency),
            currency=currency,
            merchant_id=str(metadata.get("merchant_id", "")),
            channel_trade_no=str(refund.get("payment_intent") or ""),
            refund_no=str(refund_no),
            channel_refund_no=str(refund["id"]),
            occurred_at=_timestamp(refund.get("created")),
            error_code=str(refund.get("failure_reason") or ""),
            raw=event,
        )

    def _newest_refund(self, charge: Mapping[str, Any]) -> Mapping[str, Any]:
        """``charge.refunded`` is a snapshot of the charge: its newest refund is the one that
        triggered it. API versions after 2022-11-15 omit ``refunds``; then list them."""
        refunds = ((charge.get("refunds") or {}).get("data")) if isinstance(charge.get("refunds"), dict) else None
        if not refunds:
            listing = self._api("GET", "/v1/refunds", params=[("charge", str(charge["id"])), ("limit", "1")], idempotent=True)
            refunds = listing.get("data") or []
        if not refunds or not isinstance(refunds[0], dict):
            raise NotificationRejected(f"charge.refunded for {charge.get('id')} lists no refund")
        return refunds[0]

    # -- status --------------------------------------------------------------------------------
    def _find_intent(self, out_trade_no: str, channel_trade_no: str) -> dict | None:
        if channel_trade_no:
            try:
                return self._api("GET", f"/v1/payment_intents/{channel_trade_no}", params=[("expand[]", "latest_charge")], idempotent=True)
            except ChannelDeclined as exc:
                if exc.code == "resource_missing":
                    return None
                raise
        found = self._api(
            "GET", "/v1/payment_intents/search", params=[("query", f"metadata['out_trade_no']:'{out_trade_no}'")], idempotent=True
        )
        data = found.get("data") or []
        return data[0] if data and isinstance(data[0], dict) else None

    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        """``GET /v1/payment_intents/{id}`` (or a metadata search when the create's answer was
        lost); declined attempts read as failed with their decline code."""
        intent = self._find_intent(out_trade_no, channel_trade_no)
        if intent is None:
            return QueryResult(outcome="closed" if channel_trade_no else "unknown", error_code="resource_missing")
        owner = (intent.get("metadata") or {}).get("out_trade_no")
        if owner and owner != out_trade_no:
            raise ChannelDeclined(f"PaymentIntent {intent.get('id')} belongs to {owner}, not {out_trade_no}", code="resource_missing", raw=intent)
        outcome, code = intent_outcome(intent)
        currency = str(intent.get("currency", "")).upper()
        charge = intent.get("latest_charge")
        paid_at = _timestamp(charge.get("created")) if isinstance(charge, dict) and outcome == "succeeded" else None
        return QueryResult(
            outcome=outcome,
            amount=from_units(intent["amount"], currency) if currency and "amount" in intent else None,
            currency=currency,
            channel_trade_no=str(intent.get("id", "")),
            paid_at=paid_at,
            error_code=code,
            raw=intent,
        )

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """``POST /v1/payment_intents/{id}/cancel`` (reason ``abandoned``); cancelling twice is
        fine, cancelling a succeeded intent raises ChannelDeclined so the caller queries."""
        if not channel_trade_no:
            intent = self._find_intent(out_trade_no, "")
            if intent is None:
                return
            channel_trade_no = str(intent["id"])
        try:
            self._api("POST", f"/v1/payment_intents/{channel_trade_no}/cancel", data=[("cancellation_reason", "abandoned")], idempotent=True)
        except ChannelDeclined as exc:
            error = (exc.raw or {}).get("error") or {} if isinstance(exc.raw, dict) else {}
            if exc.code == "payment_intent_unexpected_state" and (error.get("payment_intent") or {}).get("status") == "canceled":
                return
            if exc.code == "resource_missing":
                return
            raise

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        """``POST /v1/refunds`` with Idempotency-Key = refund_no; metadata carries refund_no
        and out_trade_no so webhooks and reports name both."""
        currency = request.currency.upper()
        data = [
            ("payment_intent", request.channel_trade_no),
            ("amount", str(to_units(request.amount, currency))),
            ("metadata[refund_no]", request.refund_no),
            ("metadata[out_trade_no]", request.out_trade_no),
            ("metadata[merchant_id]", self.account.merchant_id),
        ]
        if request.reason:
            data.append(("metadata[reason]", request.reason[:500]))
        refund = self._api("POST", "/v1/refunds", data=data, idempotency_key=request.refund_no, idempotent=True)
        return RefundResult(
            outcome=_REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
            channel_refund_no=str(refund.get("id", "")),
            error_code=str(refund.get("failure_reason") or ""),
            raw=refund,
        )

    def query_refund(self, request: RefundRequest) -> RefundResult:
        """List the intent's refunds and find ours by ``metadata[refund_no]`` (no re-send)."""
        listing = self._api(
            "GET", "/v1/refunds", params=[("payment_intent", request.channel_trade_no), ("limit", "100")], idempotent=True
        )
        for refund in listing.get("data") or []:
            if isinstance(refund, dict) and (refund.get("metadata") or {}).get("refund_no") == request.refund_no:
                return RefundResult(
                    outcome=_REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
                    channel_refund_no=str(refund.get("id", "")),
                    error_code=str(refund.get("failure_reason") or ""),
                    raw=refund,
                )
        return RefundResult(outcome="failed", error_code="resource_missing", raw=listing)

    # -- settlement ----------------------------------------------------------------------------
    def download_settlement(self, day: dt.date) -> bytes:
        """Run ``balance_change_from_activity.itemized.3`` for ``day`` (settings.TIME_ZONE) with
        ``REPORT_COLUMNS``, wait for it, and download its CSV as delivered (§4.6)."""
        zone = settings.TIME_ZONE
        start = dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(zone))
        end = start + dt.timedelta(days=1)
        data = [
            ("report_type", REPORT_TYPE),
            ("parameters[interval_start]", str(int(start.timestamp()))),
            ("parameters[interval_end]", str(int(end.timestamp()))),
            ("parameters[timezone]", zone),
        ] + [(f"parameters[columns][{index}]", column) for index, column in enumerate(REPORT_COLUMNS)]
        run = self._api(
            "POST", "/v1/reporting/report_runs", data=data, idempotency_key=f"report-{self.account.merchant_id}-{day.isoformat()}", idempotent=True
        )
        for _attempt in range(self.report_poll_attempts):
            status = run.get("status")
            if status == "succeeded":
                break
            if status == "failed":
                raise ChannelUnavailable(f"report run {run.get('id')} failed: {run.get('error')}", code="report_run_failed", raw=run)
            self.sleep(self.report_poll_interval)
            run = self._api("GET", f"/v1/reporting/report_runs/{run['id']}", idempotent=True)
        else:
            raise ChannelTimeout(f"report run {run.get('id')} still {run.get('status')}", code="TIMEOUT", raw=run)
        url = str(((run.get("result") or {}).get("url")) or "")
        if not url:
            raise ChannelUnavailable(f"report run {run.get('id')} has no result file", code="api_error", raw=run)
        self._check_file_url(url)
        parts = urlsplit(url)
        response = http.send(f"{parts.scheme}://{parts.netloc}", "GET", url, headers=self._auth_headers(), idempotent=True)
        if response.status_code != 200:
            raise _error_from(response)
        return response.content

    def _check_file_url(self, url: str) -> None:
        """Send the secret key only to the API's own host or Stripe's file host."""
        parts, base = urlsplit(url), urlsplit(self.account.base_url)
        host = (parts.hostname or "").lower()
        if parts.username or parts.password:
            raise ChannelUnavailable(f"report file URL {url!r} is not allowed", code="api_error")
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return
        if parts.scheme == "https" and (host == "stripe.com" or host.endswith(".stripe.com")):
            return
        raise ChannelUnavailable(f"report file URL host {host!r} is neither the API host nor *.stripe.com", code="api_error")

    @classmethod
    def open_settlement(cls, stream: IO[bytes], *, merchant_id: str | None = None) -> StripeReport:
        """Parse a report CSV; with ``merchant_id`` rows of another account are refused."""
        return StripeReport(stream, merchant_id=merchant_id)


# ---------------------------------------------------------------------------------------------
# The itemized balance-change report


class StripeReport(ReplayableSettlementFile):
    """A streaming reader of ``balance_change_from_activity.itemized.3`` CSVs (§4.6).

    Stripe report CSVs have a header row and no footer, so the file cannot state its own
    totals; instead every row must satisfy ``gross − fee = net`` (amounts in major units, at
    most the currency's decimals), the sums over the file must too, the last line must end with
    a line break (a cut-off file does not) and every row must have the header's field count.
    ``reporting_category`` ``charge`` rows (positive gross) are payments, ``refund`` rows
    (negative gross) refunds; other categories (fees, payouts, disputes…) count toward the
    sums but are not yielded. ``payment_metadata[merchant_id]`` — our account id, set on every
    intent — must be the same on every row that has it (and equal ``merchant_id`` when given);
    rows' local ``created`` dates must all be one day, which becomes ``totals.day``. UTF-8 with
    or without BOM, LF or CRLF. ``totals`` are the sums of the yielded lines.
    """

    def __init__(self, stream: IO[bytes], *, merchant_id: str | None = None):
        super().__init__(stream, merchant_id=merchant_id)
        self._last_raw = b""

    def _text_lines(self) -> Iterator[str]:
        for number, raw in enumerate(self._stream, start=1):
            self._last_raw = raw
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SettlementFileError(f"report is not UTF-8 (byte {exc.start} of the line)", line_no=number) from None

    def _parse(self) -> Iterator[SettlementLine]:
        reader = csv.reader(self._text_lines(), strict=True)
        header: list[str] | None = None
        merchant = ""
        day: dt.date | None = None
        payments = refunds = 0
        gross_total = refunded_total = fees_total = Decimal("0")
        sum_gross = sum_fee = sum_net = Decimal("0")
        line_no = 0
        try:
            for record in reader:
                line_no = reader.line_num
                if not record or all(not field.strip() for field in record):
                    continue
                if header is None:
                    header = [name.strip() for name in record]
                    missing = [name for name in REPORT_REQUIRED_COLUMNS if name not in header]
                    if missing:
                        raise SettlementFileError(f"not an itemized balance report: header lacks {', '.join(missing)}", line_no=line_no)
                    continue
                if len(record) != len(header):
                    if not self._last_raw.endswith(b"\n"):
                        raise SettlementFileError("truncated report: the last line is cut off", line_no=line_no)
                    raise SettlementFileError(f"row has {len(record)} fields, the header {len(header)}", line_no=line_no)
                row = dict(zip(header, (field.strip() for field in record), strict=True))
                currency = row["currency"].upper()
                if len(currency) != 3 or not currency.isalpha():
                    raise SettlementFileError(f"currency {row['currency']!r} is not an ISO code", line_no=line_no)
                gross, fee, net = (_report_amount(row[name], name, currency, line_no) for name in ("gross", "fee", "net"))
                if gross - fee != net:
                    raise SettlementFileError(f"gross {gross} − fee {fee} is not net {net}", line_no=line_no)
                sum_gross, sum_fee, sum_net = sum_gross + gross, sum_fee + fee, sum_net + net
                row_merchant = row.get("payment_metadata[merchant_id]", "")
                if row_merchant:
                    if self._merchant_id and row_merchant != self._merchant_id:
                        raise SettlementFileError(f"row of account {row_merchant}, not {self._merchant_id}", line_no=line_no)
                    if merchant and row_merchant != merchant:
                        raise SettlementFileError(f"rows of two accounts: {merchant} and {row_merchant}", line_no=line_no)
                    merchant = row_merchant
                created_local = _report_time(row.get("created", ""), "created", line_no)
                created_utc = _report_time(row.get("created_utc", ""), "created_utc", line_no)
                row_day = created_local.date() if created_local else None
                if row_day:
                    if day and row_day != day:
                        raise SettlementFileError(f"rows of more than one day: {day} and {row_day}", line_no=line_no)
                    day = row_day
                category = row["reporting_category"]
                if category == "charge":
                    if gross <= 0:
                        raise SettlementFileError(f"charge row with gross {gross}", line_no=line_no)
                    kind, amount = "payment", gross
                    payments += 1
                    gross_total += gross
                elif category == "refund":
                    if gross >= 0:
                        raise SettlementFileError(f"refund row with gross {gross}", line_no=line_no)
                    kind, amount = "refund", -gross
                    refunds += 1
                    refunded_total += amount
                else:
                    continue
                fees_total += fee
                yield SettlementLine(
                    line_no=line_no,
                    kind=kind,
                    out_trade_no=row.get("payment_metadata[out_trade_no]", ""),
                    channel_trade_no=row.get("payment_intent_id", "") or row.get("charge_id", ""),
                    amount=amount.quantize(CENT),
                    fee=fee.quantize(CENT),
                    currency=currency,
                    occurred_at=created_utc.replace(tzinfo=dt.UTC) if created_utc else None,
                    refund_no=row.get("refund_metadata[refund_no]", "") if kind == "refund" else "",
                    raw=row,
                )
        except csv.Error as exc:
            raise SettlementFileError(f"malformed CSV in report: {exc}", line_no=reader.line_num or line_no) from None
        if header is None:
            raise SettlementFileError("empty report: no header row")
        if self._last_raw and not self._last_raw.endswith(b"\n"):
            raise SettlementFileError("truncated report: the last line has no line end", line_no=line_no)
        if sum_gross - sum_fee != sum_net:
            raise SettlementFileError(f"report sums disagree: gross {sum_gross} − fee {sum_fee} is not net {sum_net}", line_no=line_no)
        self._totals = FileTotals(
            merchant_id=merchant or (self._merchant_id or ""),
            day=day,
            payments=payments,
            refunds=refunds,
            lines=payments + refunds,
            gross=gross_total.quantize(CENT),
            refunded=refunded_total.quantize(CENT),
            fees=fees_total.quantize(CENT),
        )


def _report_amount(value: str, name: str, currency: str, line_no: int) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise SettlementFileError(f"{name} {value!r} is not a number", line_no=line_no) from None
    if not amount.is_finite():
        raise SettlementFileError(f"{name} {value!r} is not a number", line_no=line_no)
    places = exponent(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise SettlementFileError(f"{name} {value} has more than {places} decimals for {currency}", line_no=line_no)
    return amount


def _report_time(value: str, name: str, line_no: int) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, REPORT_TIME_FORMAT)
    except ValueError:
        raise SettlementFileError(f"{name} {value!r} is not yyyy-mm-dd HH:MM:SS", line_no=line_no) from None
