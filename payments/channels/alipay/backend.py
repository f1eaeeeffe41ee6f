"""The Alipay backend: opening trades (precreate QR, wap/page pay links), verifying
notifications, queries, closing, refunds and the bill download (CHANNELS.md §1.1-§1.6)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any, ClassVar
from urllib.parse import parse_qsl, quote_plus, urlsplit

from payments.channels import http
from payments.channels.alipay.errors import ERROR_CODES
from payments.channels.alipay.settlement import AlipayBill
from payments.channels.alipay.wire import (
    BEIJING,
    CLOSED_CODE,
    SIGN_TYPE,
    SUCCESS_CODE,
    TRADE_STATUS,
    UNKNOWN_CODE,
    beijing_time,
    notification_content,
    parse_amount,
    parse_beijing,
    response_content,
    rsa2_sign,
    rsa2_verify,
    sign_content,
    yuan,
)
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
    Notice,
    NotificationRejected,
    NotifyReply,
    Outcome,
    QueryResult,
    RefundRequest,
    RefundResult,
)


class AlipayBackend(ChannelBackend):
    """Alipay direct merchant, public-key mode (``alipay_public_key``; certificate mode is not
    used).

    Credentials (the ChannelAccount's encrypted dict):
    ``app_private_key`` (the application's RSA2 private key, PEM or bare base64) and
    ``alipay_public_key`` (Alipay's public key shown in the open-platform console).
    ``merchant_id`` is the 16-digit partner id (PID, ``seller_id`` in notifications) and
    ``app_id`` the open-platform application id.
    """

    # Largest genuine notice: form fields, ~1 KB; fund_bill_list and vouchers stay a few KB.
    max_notification_bytes = 16 * 1024

    code: ClassVar[str] = "alipay"
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
            raise ChannelDeclined(
                f"Alipay account {self.account.code!r} has no {name} credential",
                code="MISCONFIGURED",
            )
        return str(value)

    def signed_params(
        self, method: str, biz_content: Mapping[str, Any], **extra: str
    ) -> dict[str, str]:
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
        """A signed GET URL for the browser flows (page/wap pay): every value
        ``quote_plus``-ed (§1.2 step 5)."""
        params = self.signed_params(method, biz_content, **extra)
        query = "&".join(f"{k}={quote_plus(v)}" for k, v in params.items())
        return f"{self.gateway_url}?{query}"

    def call(
        self, method: str, biz_content: Mapping[str, Any], *, idempotent: bool = False, **extra: str
    ) -> dict[str, Any]:
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
            raise ChannelUnavailable(
                f"Alipay answered HTTP {response.status_code} to {method}",
                code=f"HTTP_{response.status_code}",
            )
        try:
            text = response.content.decode("utf-8")
            document = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            raise ChannelUnavailable(
                f"Alipay's answer to {method} is not JSON", code="BAD_RESPONSE"
            ) from None
        key = method.replace(".", "_") + "_response"
        if "error_response" in document or key not in document:
            error = document.get("error_response") or {}
            code = str(error.get("sub_code") or error.get("code") or "BAD_RESPONSE")
            raise ChannelDeclined(
                f"Alipay refused {method}: {error.get('sub_msg') or error.get('msg') or code}",
                code=code,
                raw=error,
            )
        raw_inner = response_content(text, key)
        inner = json.loads(raw_inner) if raw_inner else {}
        code = str(inner.get("code", ""))
        signature = document.get("sign") or ""
        if signature:
            if not rsa2_verify(raw_inner or "", signature, self._credential("alipay_public_key")):
                raise ChannelUnavailable(
                    f"Alipay's answer to {method} failed signature verification",
                    code="RESPONSE_SIGNATURE_INVALID",
                )
        elif code == SUCCESS_CODE:
            # an unsigned "success" could be anyone's; only refusals may come unsigned
            raise ChannelUnavailable(
                f"Alipay's answer to {method} is not signed", code="RESPONSE_SIGNATURE_INVALID"
            )
        if code == SUCCESS_CODE:
            return inner
        sub_code = str(inner.get("sub_code") or code or "BAD_RESPONSE")
        message = f"Alipay {method}: {inner.get('sub_msg') or inner.get('msg') or sub_code}"
        if code == UNKNOWN_CODE:
            raise ChannelTimeout(message, code=sub_code, raw=inner)
        raise ChannelDeclined(message, code=sub_code, raw=inner)

    # -- paying --------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> CreateResult:
        """Desktop → precreate QR (rendered inline); phone → wap.pay; unknown → page.pay.

        Inside Alipay's own app (``AlipayClient`` in the user agent, whatever the screen
        size) always wap.pay, opened in the same page: the app takes the wap cashier into its
        own payment sheet, with no QR (a phone cannot scan its own screen) and no jump to
        another app; ``quit_url`` and ``return_url`` bring the buyer back to the order page.
        """
        if request.currency != "CNY":
            raise ChannelDeclined(
                f"Alipay takes CNY, not {request.currency}", code="CURRENCY_NOT_SUPPORTED"
            )
        biz: dict[str, Any] = {
            "out_trade_no": request.out_trade_no,
            "total_amount": yuan(request.amount),
            "subject": (request.subject or request.out_trade_no)[:256],
            "time_expire": beijing_time(request.expires_at),
        }
        return_url = request.return_url or self.account.return_url
        notify_url = self.account.notify_url
        in_app = in_alipay(request.client.user_agent)
        if request.client.device == "desktop" and not in_app:
            answer = self.call("alipay.trade.precreate", biz, notify_url=notify_url)
            qr_code = str(answer.get("qr_code", ""))
            if not qr_code:
                raise ChannelUnavailable(
                    "Alipay precreate answered without a qr_code", code="BAD_RESPONSE"
                )
            return CreateResult(action=Action(type="qr", url=qr_code, qr=qr_code))
        if request.client.device == "phone" or in_app:
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
        ``sign``/``sign_type`` (empty values kept); then the app id and seller (PID) must be
        this account's.

        Alipay's scheme carries no freshness window (it retries for 25 h), so only the
        signature binds the message. A refund-flavoured trade_status_sync (``out_biz_no`` +
        ``gmt_refund``) becomes a refund notice for that refund: see :meth:`_refund_notice`.
        """
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise NotificationRejected(
                "malformed notification: body is not UTF-8 form data"
            ) from None
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise NotificationRejected("malformed notification: body is not a form") from None
        params = dict(pairs)
        if len(params) != len(pairs):
            raise NotificationRejected("malformed notification: repeated parameters")
        for name in (
            "sign",
            "sign_type",
            "out_trade_no",
            "trade_status",
            "total_amount",
            "notify_type",
        ):
            if not params.get(name):
                raise NotificationRejected(f"malformed notification: missing {name}")
        if params["sign_type"] != SIGN_TYPE:
            raise NotificationRejected(
                f"unsupported sign_type {params['sign_type']!r} (expected RSA2)"
            )
        public_key = self.account.credentials.get("alipay_public_key")
        if not public_key:
            raise NotificationRejected(
                f"account {self.account.code!r} has no alipay_public_key to verify with"
            )
        if not rsa2_verify(notification_content(params), params["sign"], str(public_key)):
            raise NotificationRejected(
                "bad signature: the notification does not verify with Alipay's public key"
            )
        if self.account.app_id and params.get("app_id") != self.account.app_id:
            raise NotificationRejected(
                f"notification for app_id {params.get('app_id')!r}, "
                f"not this account's {self.account.app_id!r}"
            )
        if self.account.merchant_id and params.get("seller_id") != self.account.merchant_id:
            raise NotificationRejected(
                "notification for another merchant: "
                f"seller_id {params.get('seller_id')!r}, expected {self.account.merchant_id!r}"
            )
        if params["notify_type"] != "trade_status_sync":
            raise NotificationRejected(f"unknown notify_type {params['notify_type']!r}")
        status = params["trade_status"]
        if status not in TRADE_STATUS:
            raise NotificationRejected(f"unknown trade_status {status!r}")
        try:
            amount = parse_amount(params["total_amount"], what="total_amount").quantize(CENT)
            refund_fee = (
                parse_amount(params["refund_fee"], what="refund_fee").quantize(CENT)
                if params.get("refund_fee")
                else None
            )
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
            return self._refund_notice(params, refund_fee=refund_fee, common=common)
        outcome = _outcome(status, paid=bool(params.get("gmt_payment")))
        occurred = parse_beijing(
            params.get("gmt_payment") or params.get("gmt_close") or params.get("notify_time", "")
        )
        return Notice(
            kind="payment",
            outcome=outcome,
            amount=amount,
            occurred_at=occurred,
            error_code=_closed_code(outcome),
            **common,
        )

    def _refund_notice(
        self, params: Mapping[str, str], *, refund_fee: Decimal, common: Mapping[str, Any]
    ) -> Notice:
        """The notice's ``refund_fee`` is the trade's running refund total, not this refund's
        amount (a second partial refund of 20.00 after 30.00 says 50.00 — §1.6). The refund's
        own amount and state come from Alipay's signed refund query by ``out_biz_no``; it must
        fit within the total the notice states. A query Alipay cannot answer now raises, so
        the notice is answered ``fail`` and Alipay sends it again."""
        refund_no = params["out_biz_no"]
        biz = {"out_trade_no": params["out_trade_no"], "out_request_no": refund_no}
        if params.get("trade_no"):
            biz["trade_no"] = params["trade_no"]
        try:
            answer = self.call("alipay.trade.fastpay.refund.query", biz, idempotent=True)
        except ChannelDeclined as exc:
            raise NotificationRejected(
                f"refund notice for {refund_no!r}: Alipay's refund query refused it ({exc.code})"
            ) from None
        if not answer.get("refund_amount"):
            raise NotificationRejected(
                f"refund notice for {refund_no!r}, a refund Alipay's refund query does not know"
            )
        try:
            amount = parse_amount(str(answer["refund_amount"]), what="refund_amount").quantize(CENT)
        except ValueError as exc:
            raise NotificationRejected(f"malformed refund query answer: {exc}") from None
        if amount > refund_fee:
            raise NotificationRejected(
                f"refund_fee {refund_fee} (the trade's refunds so far) is below "
                f"refund {refund_no!r}'s amount {amount}"
            )
        done = answer.get("refund_status") in (None, "", "REFUND_SUCCESS")
        return Notice(
            kind="refund",
            outcome="succeeded" if done else "pending",
            amount=amount,
            refund_no=refund_no,
            occurred_at=parse_beijing(params["gmt_refund"]),
            **common,
        )

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """The literal ``success`` stops Alipay's retries; anything else (``fail``) keeps
        them (§1.4)."""
        return NotifyReply(
            status=200, body=b"success" if accepted else b"fail", content_type="text/plain"
        )

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
        biz: dict[str, Any] = {
            "out_trade_no": request.out_trade_no,
            "out_request_no": request.refund_no,
        }
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
            raise ChannelUnavailable(
                "Alipay answered without a bill_download_url", code="BAD_RESPONSE"
            )
        parts = urlsplit(url)
        response = http.send(f"{parts.scheme}://{parts.netloc}", "GET", url, idempotent=True)
        if response.status_code != 200 or not response.content:
            raise ChannelUnavailable(
                f"the Alipay bill download answered HTTP {response.status_code}",
                code=f"HTTP_{response.status_code}",
            )
        return response.content

    @classmethod
    def open_settlement(cls, stream: IO[bytes], *, merchant_id: str = "") -> AlipayBill:
        """The downloaded ZIP, or the bare 业务明细 CSV (GBK or UTF-8, CRLF or LF).

        With ``merchant_id`` (a 16-digit PID) a bill of another merchant is refused.
        """
        return AlipayBill.open(stream, merchant_id=merchant_id)


def in_alipay(user_agent: str) -> bool:
    """Whether the page is open in Alipay's in-app browser (it names itself ``AlipayClient``
    in the user agent, as payments.client reads it for ordering)."""
    return "AlipayClient" in (user_agent or "")


def _closed_code(outcome: str) -> str:
    """Alipay closes an unpaid trade without saying why (the payer declined, or it expired);
    the closure itself is the code, so the buyer gets the mapped reason and guidance."""
    return CLOSED_CODE if outcome == "closed" else ""


def _outcome(status: str, *, paid: bool) -> Outcome:
    if status == "TRADE_CLOSED" and paid:
        return "succeeded"  # paid, then fully refunded (§1.5): the payment itself succeeded
    return TRADE_STATUS[status]
