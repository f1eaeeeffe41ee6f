"""The UnionPay backend: the gateway flows (pay, notify, query, refund, settlement file)
over the wire module (CHANNELS.md §3)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import zlib
from collections.abc import Mapping
from typing import IO, ClassVar
from urllib.parse import parse_qsl

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
from payments.channels.unionpay.errors import (
    ERROR_CODES,
    SUCCESS_CODES,
    SYSTEM_CODES,
    UNKNOWN_CODES,
)
from payments.channels.unionpay.settlement import ZMSettlementFile
from payments.channels.unionpay.wire import (
    BACK_TRANS,
    CURRENCY_CNY,
    FRONT_TRANS,
    ORDER_ID_RE,
    QUERY_ID_RE,
    QUERY_TRANS,
    SIGN_METHOD_RSA,
    TXN_TIME_RE,
    VERSION,
    Credentials,
    parse_response,
    sign,
    trace_moment,
    txn_time,
    verify,
    verify_signing_cert,
)

# ---------------------------------------------------------------------------------------------
# The backend


class UnionPayBackend(ChannelBackend):
    """ACP 5.1.0 gateway payments (跳转网关支付, bizType 000201)."""

    code = "unionpay"
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
                f"notification for merchant {fields['merId']}, "
                f"this account is {self.account.merchant_id}"
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
        occurred = trace_moment(fields.get("traceTime", ""), fields.get("txnTime", ""))
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
                "a UnionPay status query needs the order's txnTime "
                "(the reference create() returned)",
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
                paid_at=trace_moment(answer.get("traceTime", ""), answer.get("txnTime", "")),
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
        ``12`` (重复交易) — the first request stands, also "pending".

        The refund's reference (``channel_refund_no``) is the txnTime sent, until the notice or
        a query brings UnionPay's queryId: a status query needs orderId + txnTime (§3.3)."""
        if not QUERY_ID_RE.fullmatch(request.channel_trade_no or ""):
            raise ChannelError(
                "a UnionPay refund needs the payment's queryId as origQryId", code="NO_QUERY_ID"
            )
        if not ORDER_ID_RE.fullmatch(request.refund_no):
            raise ChannelDeclined("refund orderId must be 8-32 letters and digits", code="10")
        sent_at = txn_time()
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
                "txnTime": sent_at,
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
                # a duplicate (12) was sent earlier with another txnTime: keep that one's
                channel_refund_no="" if code == "12" else sent_at,
                error_code="" if code == "00" else code,
                raw=answer,
            )
        if code in SYSTEM_CODES:
            self._raise_system(answer)
        return RefundResult(outcome="failed", error_code=code, raw=answer)

    def query_refund(self, request: RefundRequest) -> RefundResult:
        """交易状态查询 (txnType 00) of the refund by its orderId (the refund number) + the
        txnTime :meth:`refund` sent (§3.3), for a refund whose notice was lost.

        Without that txnTime (the refund's answer never arrived) nothing is called: re-sending
        the refund with a new txnTime could open a second one, so the notice or the next ZM
        file (交易代码 S30) decides. ``34`` (查无此交易) and 03/04/05 keep it pending."""
        sent_at = request.channel_refund_no
        if not TXN_TIME_RE.fullmatch(sent_at or ""):
            return RefundResult(outcome="pending", error_code="NO_TXNTIME")
        answer = self._post(
            self.base_url,
            QUERY_TRANS,
            {
                "txnType": "00",
                "txnSubType": "00",
                "bizType": "000000",
                "channelType": "07",
                "orderId": request.refund_no,
                "txnTime": sent_at,
            },
            idempotent=True,
        )
        code = answer["respCode"]
        if code == "34" or code in UNKNOWN_CODES:
            return RefundResult(outcome="pending", error_code=code, raw=answer)
        if code != "00":
            self._raise_system(answer)
        orig = answer.get("origRespCode", "")
        if orig in SUCCESS_CODES:
            return RefundResult(
                outcome="succeeded", channel_refund_no=answer.get("queryId", ""), raw=answer
            )
        if orig in UNKNOWN_CODES:
            return RefundResult(outcome="pending", error_code=orig, raw=answer)
        return RefundResult(outcome="failed", error_code=orig, raw=answer)

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
