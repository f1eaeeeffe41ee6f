"""The e-CNY / aggregated-QR backend: order, notification, query, close, refund and
statement flows over the wire module."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any, ClassVar

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
    Notice,
    NotificationRejected,
    NotifyReply,
    QueryResult,
    RefundRequest,
    RefundResult,
    SettlementFile,
    from_minor,
    to_minor,
)
from payments.channels.ecny.errors import ERROR_CODES, SYSTEM_CODES
from payments.channels.ecny.settlement import ECNYSettlementFile
from payments.channels.ecny.wire import (
    CLOCK_SKEW,
    CLOSE,
    CREATE,
    NOTIFY_MAX_AGE,
    PAY_METHODS,
    QUERY,
    REFUND,
    REFUND_QUERY,
    SIGN_METHOD,
    STATEMENT,
    VERSION,
    Answer,
    Credentials,
    beijing_now,
    compact_json,
    parse_stamp,
    sign_envelope,
    sm3_hex,
    stamp,
    verify_envelope,
)


class ECNYBackend(ChannelBackend):
    """Wallet payments by QR code / H5 cashier at the acquiring bank: e-CNY, and the Alipay,
    WeChat Pay and UnionPay QR the same aggregated API serves (``payMethod``)."""

    code = "ecny"
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
                f"notification for merchant {data['merId']}, "
                f"this account is {self.account.merchant_id}"
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
